//! The one place that builds the concrete parts (Redis, store, service, gateway, API) and wires
//! them into a running node. `start` takes its shutdown trigger from the caller, so tests run
//! several nodes in one process and drain or kill them at will.

use crate::chat::{self, Service};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::redis::RedisLayer;
use crate::store::{FileStore, Store, Timeouts};
use crate::{api, gateway, web};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A node that is up: its address, its parts and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `server.metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub service: Arc<Service>,
    gateway: Arc<gateway::Gateway>,
    /// Tells the background work to finish its current step and stop.
    drain: watch::Sender<bool>,
    /// Tells the HTTP listeners to stop accepting and close their connections.
    close: watch::Sender<bool>,
    sockets: watch::Sender<gateway::Ending>,
    servers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// How often a drain looks whether the node's WebSockets have all closed.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl Running {
    /// Graceful drain: fail readiness, close sockets with 4503, let background work finish its
    /// current step. The listener stays open meanwhile, answering 503 on `/readyz` and on new
    /// WebSocket upgrades, until the sockets are closed, the work is done and
    /// `server.drain_listen_seconds` have passed; then it closes. Everything within
    /// `server.drain_seconds`.
    pub async fn drain(self) {
        tracing::info!("draining");
        let started = tokio::time::Instant::now();
        let server = &self.service.settings.server;
        let deadline = started + Duration::from_secs(server.drain_seconds);
        // The listener closes one second before the deadline at the latest, so its open
        // connections get that second to finish.
        let listen_until = started
            + Duration::from_secs(server.drain_listen_seconds)
                .min(Duration::from_secs(server.drain_seconds.saturating_sub(1)));
        self.service.metrics.drains.inc();
        self.service
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.drain.send(true);
        let _ = self.sockets.send(gateway::Ending::Draining);
        let gateway = self.gateway.clone();
        let work = async {
            for b in self.background {
                let _ = b.await;
            }
            while gateway.open_connections() > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        if tokio::time::timeout_at(deadline, work).await.is_err() {
            tracing::warn!("drain deadline passed; exiting anyway");
        } else {
            tokio::time::sleep_until(listen_until).await;
        }
        tracing::info!("closing the listener");
        let _ = self.close.send(true);
        let servers = async {
            for s in self.servers {
                let _ = s.await;
            }
        };
        if tokio::time::timeout_at(deadline, servers).await.is_err() {
            tracing::warn!("drain deadline passed with HTTP connections open; exiting anyway");
        }
        self.service.redis.quit().await;
    }

    /// Stops everything at once, as a crash would (tests only use this to prove recovery):
    /// no drain, no clean-up, sockets dropped, background work cut mid-step.
    pub fn kill(self) {
        self.service.limits.halt();
        let _ = self.sockets.send(gateway::Ending::Killed);
        for s in self.servers {
            s.abort();
        }
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

/// Open connections on the metrics listener: scrapers, not the public.
const METRICS_CONNECTIONS: usize = 64;

/// Builds the chat service without serving anything (the `switchboard agent` commands act on
/// a running cluster through it). Fails if Redis or the store are unreachable.
pub async fn service(settings: Settings, node: &str) -> anyhow::Result<Arc<Service>> {
    let (service, _) = connect(Arc::new(settings), Some(node)).await?;
    Ok(service)
}

/// Connects Redis, the store and the file storage and builds the service; the node's name is
/// `node`, or made from the configuration.
async fn connect(
    settings: Arc<Settings>,
    node: Option<&str>,
) -> anyhow::Result<(Arc<Service>, String)> {
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
    let metrics = Arc::new(Metrics::new());
    let store = Store::connect_with(
        &settings.store.url,
        settings.store.max_connections,
        Timeouts::from_settings(&settings.store),
    )
    .await
    .context("opening the store")?
    .counting_timeouts_in(metrics.store_timeouts.clone());
    let files = FileStore::open(&settings.files.url).context("opening the file storage")?;
    tracing::info!(files = %files.location, "file storage");
    let node = match node {
        Some(n) => n.to_string(),
        None if settings.server.node_name.is_empty() => format!(
            "{}-{}",
            node_name(&settings),
            crate::chat::identity::new_id().get(..6).unwrap_or("")
        ),
        None => node_name(&settings),
    };
    let service = Service::new(settings, redis, store, files, metrics, node.clone());
    service.check_epoch().await?;
    tracing::info!(epoch = %service.epoch.current(), "redis epoch");
    Ok((service, node))
}

/// Builds the node and starts serving. Fails before listening if Redis or the store are unreachable.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let (service, node) = connect(Arc::new(settings), None).await?;
    let settings = service.settings.clone();

    let (drain_tx, drain_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(false);
    let (sockets_tx, sockets_rx) = watch::channel(gateway::Ending::Serving);
    let geoip = match settings.server.geoip_database.as_str() {
        "" => None,
        path => Some(gateway::GeoIp::open(path)?),
    };
    let gw = gateway::Gateway::new(service.clone(), sockets_rx, geoip);
    let metrics_apart = !settings.server.metrics_listen.is_empty();
    let mut router = api::routes(service.clone())
        .merge(gateway::routes(gw.clone()))
        .merge(web::routes());
    if !metrics_apart {
        router = router.merge(api::metrics_routes(service.clone()));
    }
    let router = router.layer(axum::extract::DefaultBodyLimit::max(
        settings.limits.max_body_bytes,
    ));

    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("binding {}", settings.server.listen))?;
    let addr = listener.local_addr()?;
    let options = gateway::http::HttpOptions::from_settings(&settings.server);
    let mut servers = vec![tokio::spawn(gateway::http::serve(
        listener,
        router,
        options,
        service.metrics.clone(),
        close_rx.clone(),
    ))];
    let mut metrics_addr = None;
    if metrics_apart {
        let listener = tokio::net::TcpListener::bind(&settings.server.metrics_listen)
            .await
            .with_context(|| format!("binding {}", settings.server.metrics_listen))?;
        metrics_addr = Some(listener.local_addr()?);
        tracing::info!(addr = ?metrics_addr, "metrics on their own listener");
        servers.push(tokio::spawn(gateway::http::serve(
            listener,
            api::metrics_routes(service.clone()),
            gateway::http::HttpOptions {
                max_connections: METRICS_CONNECTIONS,
                ..options
            },
            service.metrics.clone(),
            close_rx,
        )));
    }
    let background = vec![
        tokio::spawn(chat::listener::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::resync::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::epoch::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::timers::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::flush::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::visitors::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::visitor_list::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::monitor::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::gauges::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::availability::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::mail::run(service.clone(), drain_rx.clone())),
        tokio::spawn(chat::limits::run(service.limits.clone(), drain_rx.clone())),
        tokio::spawn(chat::webhooks::worker::run(
            service.clone(),
            drain_rx.clone(),
        )),
        tokio::spawn(chat::retention::run(service.clone(), drain_rx.clone())),
    ];
    tracing::info!(%addr, node, "listening");
    Ok(Running {
        addr,
        metrics_addr,
        service,
        gateway: gw,
        drain: drain_tx,
        close: close_tx,
        sockets: sockets_tx,
        servers,
        background,
    })
}
