//! The one place that builds the concrete parts (Redis, store, service, gateway, API) and wires
//! them into a running node. `start` takes its shutdown trigger from the caller, so tests run
//! several nodes in one process and drain or kill them at will.

use crate::chat::{self, Service};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::redis::RedisLayer;
use crate::store::{FileStore, Store};
use crate::{api, gateway, web};
use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A node that is up: its address, its parts and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub service: Arc<Service>,
    drain: watch::Sender<bool>,
    sockets: watch::Sender<gateway::Ending>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Graceful drain: refuse new connections, fail readiness, close sockets with 4503,
    /// let background work finish its current step, exit within `server.drain_seconds`.
    pub async fn drain(self) {
        tracing::info!("draining");
        self.service.metrics.drains.inc();
        self.service
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.drain.send(true);
        let _ = self.sockets.send(gateway::Ending::Draining);
        let deadline = Duration::from_secs(self.service.settings.server.drain_seconds);
        let all = async {
            let _ = self.server.await;
            for b in self.background {
                let _ = b.await;
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("drain deadline passed; exiting anyway");
        }
        self.service.redis.quit().await;
    }

    /// Stops everything at once, as a crash would (tests only use this to prove recovery):
    /// no drain, no clean-up, sockets dropped, background work cut mid-step.
    pub fn kill(self) {
        self.service.limits.halt();
        let _ = self.sockets.send(gateway::Ending::Killed);
        self.server.abort();
        for b in self.background {
            b.abort();
        }
    }
}

pub fn node_name(settings: &Settings) -> String {
    if !settings.server.node_name.is_empty() {
        return settings.server.node_name.clone();
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

/// Builds the node and starts serving. Fails before listening if Redis or the store are unreachable.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let settings = Arc::new(settings);
    let redis = RedisLayer::connect(
        &settings.redis.url,
        &settings.redis.key_prefix,
        settings.redis.pool_size,
        settings.redis.subscriber_buffer,
    )
    .await
    .with_context(|| {
        if settings.redis.url.starts_with("rediss") {
            "connecting to redis over TLS (rediss://): does that port speak TLS, and is its \
             certificate signed by a CA this machine trusts (system store, or SSL_CERT_FILE)?"
        } else {
            "connecting to redis"
        }
    })?;
    tracing::info!(
        subscriber = redis.subscriber_name(),
        "redis: connected (the subscriber connection's CLIENT LIST name)"
    );
    let store = Store::connect(&settings.store.url, settings.store.max_connections)
        .await
        .context("opening the store")?;
    let files = FileStore::open(&settings.files.url).context("opening the file storage")?;
    tracing::info!(files = %files.location, "file storage");
    let metrics = Arc::new(Metrics::new());
    let node = if settings.server.node_name.is_empty() {
        format!(
            "{}-{}",
            node_name(&settings),
            crate::chat::identity::new_id().get(..6).unwrap_or("")
        )
    } else {
        node_name(&settings)
    };
    let service = Service::new(settings.clone(), redis, store, files, metrics, node.clone());

    let (drain_tx, drain_rx) = watch::channel(false);
    let (sockets_tx, sockets_rx) = watch::channel(gateway::Ending::Serving);
    let geoip = match settings.server.geoip_database.as_str() {
        "" => None,
        path => Some(gateway::GeoIp::open(path)?),
    };
    let gw = gateway::Gateway::new(service.clone(), sockets_rx, geoip);
    let router = api::routes(service.clone())
        .merge(gateway::routes(gw))
        .merge(web::routes())
        .layer(axum::extract::DefaultBodyLimit::max(
            settings.limits.max_body_bytes,
        ));

    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("binding {}", settings.server.listen))?;
    let addr = listener.local_addr()?;
    let mut stop = drain_rx.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|d| *d).await;
        };
        // Every frame is its own small write: without TCP_NODELAY, Nagle's algorithm would
        // hold a frame back until the previous one is acknowledged.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        if let Err(e) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        {
            tracing::error!(error = %e, "server stopped");
        }
    });
    let background = vec![
        tokio::spawn(chat::listener::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::resync::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::timers::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::flush::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::visitors::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::visitor_list::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::gauges::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::limits::run(service.limits.clone(), drain_rx.clone())),
    ];
    tracing::info!(%addr, node, "listening");
    Ok(Running {
        addr,
        service,
        drain: drain_tx,
        sockets: sockets_tx,
        server,
        background,
    })
}
