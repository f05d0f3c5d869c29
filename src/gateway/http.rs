//! The HTTP server under the router: one accept loop, one task per connection running hyper's
//! HTTP/1 with a timer, so slow clients cannot hold a node's sockets: a request head must
//! arrive within `server.header_timeout_ms` (idle keep-alive included), a connection that moves
//! no byte for `server.http_idle_timeout_ms` is closed, and at most
//! `server.max_http_connections` connections that are not WebSockets are open at once. An
//! upgraded WebSocket leaves this accounting: it has its own pings, idle timeout and cap.

use crate::config;
use crate::metrics::Metrics;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

/// What a connection over the cap gets before it is closed (best effort: written only if the
/// socket takes it at once).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// A pause after a failed accept (out of file descriptors, most likely), so the loop does not
/// spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl HttpOptions {
    pub fn from_settings(s: &config::Server) -> HttpOptions {
        HttpOptions {
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            idle_timeout: Duration::from_millis(s.http_idle_timeout_ms),
            max_connections: s.max_http_connections,
        }
    }
}

/// Serves `router` on `listener` until `close` turns true (or its sender goes away); then
/// stops accepting, lets every open connection finish its current request, and returns once
/// all have closed. Upgraded WebSockets are not waited for: they end with the gateway.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: HttpOptions,
    metrics: Arc<Metrics>,
    mut close: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut last_warning: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = until_set(&mut close) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accepting a connection failed; pausing");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.edge.http_refused.inc();
            let _ = stream.try_write(REFUSAL);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            opts,
            permit,
            closing_rx.clone(),
            metrics.clone(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection task holds a permit until it ends: all of them back = all closed.
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// Returns once the flag is set or its sender is gone (the `Ref` that `wait_for` yields is
/// not `Send`, so it must not live in a `select!` of a spawned task).
async fn until_set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Counts an open HTTP connection for as long as its task runs.
struct Open(Arc<Metrics>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.edge.http_connections.dec();
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    opts: HttpOptions,
    _permit: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    metrics.edge.http_connections.inc();
    let _open = Open(metrics.clone());
    // Every frame is its own small write: without TCP_NODELAY, Nagle's algorithm would hold a
    // frame back until the previous one is acknowledged (WebSockets inherit this socket).
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let activity = Arc::new(Activity::default());
    activity.touch();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    if e.is_timeout() {
                        metrics.edge.http_timeouts.with_label_values(&["header"]).inc();
                    } else {
                        tracing::debug!(error = %e, %peer, "http connection ended with an error");
                    }
                }
                break;
            }
            // Dropping the connection closes the socket.
            _ = activity.idle_for(opts.idle_timeout) => {
                metrics.edge.http_timeouts.with_label_values(&["idle"]).inc();
                break;
            }
            _ = until_set(&mut closing), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since `EPOCH`.
#[derive(Default)]
struct Activity(AtomicU64);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

impl Activity {
    fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    /// Returns once no byte has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let limit_ms = limit.as_millis() as u64;
        loop {
            let since = now_ms().saturating_sub(self.0.load(Ordering::Relaxed));
            if since >= limit_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(limit_ms - since)).await;
        }
    }
}

/// The socket, noting each time a byte moves.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
