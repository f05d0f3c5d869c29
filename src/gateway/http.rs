//! The HTTP server under the router: one accept loop, one task per connection running hyper's
//! HTTP/1 with a timer, so slow clients cannot hold a node's sockets. A request head must be
//! complete within `server.header_timeout_ms` of its first byte (of the connection's start for
//! the first request: slowloris and silent sockets); a connection may sit idle between
//! requests, or move no byte while a request is in flight, for `server.http_idle_timeout_ms`
//! (longer than proxies keep idle upstream connections, so they never reuse one being
//! closed); at most `server.max_http_connections` connections that are not WebSockets are open
//! at once. An upgraded WebSocket leaves all this: it has its own pings, idle timeout and cap.

use crate::config;
use crate::metrics::Metrics;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
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
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        state: state.clone(),
    });
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            let busy = Busy::start(state.clone());
            async move {
                let response = router.call(req).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    axum::body::Body::new(Tracked {
                        inner: body,
                        _busy: busy,
                    })
                }))
            }
        })
    };
    let mut builder = http1::Builder::new();
    // hyper's own head timer runs while the connection waits for a request head: between
    // requests that is the keep-alive idle time. A started head has the shorter
    // `header_timeout`, kept by `ConnState`.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.idle_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    if e.is_timeout() {
                        metrics.edge.http_timeouts.with_label_values(&["idle"]).inc();
                    } else {
                        tracing::debug!(error = %e, %peer, "http connection ended with an error");
                    }
                }
                break;
            }
            // Dropping the connection closes the socket.
            kind = state.expired(opts) => {
                metrics.edge.http_timeouts.with_label_values(&[kind]).inc();
                break;
            }
            _ = until_set(&mut closing), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    state.watched.store(false, Ordering::Relaxed);
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds since `EPOCH`; never 0, which marks "not set" below.
fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64 + 1
}

/// What the timers of one connection look at, updated by its socket and its requests.
struct ConnState {
    /// When a byte last moved either way.
    activity: AtomicU64,
    /// When the request head now arriving started (the connection's start for the first
    /// one, else its first byte); 0 while no head is pending.
    head_since: AtomicU64,
    /// Requests whose response has not been sent completely.
    in_flight: AtomicUsize,
    /// Wakes the timers when a head starts or a request begins.
    changed: Notify,
    /// False once the connection's task has ended: an upgraded WebSocket keeps the socket,
    /// and its reads and writes need no more bookkeeping.
    watched: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        let now = now_ms();
        ConnState {
            activity: AtomicU64::new(now),
            head_since: AtomicU64::new(now),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
            watched: AtomicBool::new(true),
        }
    }

    /// Bytes came in: the first byte of a new request head starts its timer.
    fn read_some(&self) {
        if !self.watched.load(Ordering::Relaxed) {
            return;
        }
        let now = now_ms();
        self.activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_since
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        if self.watched.load(Ordering::Relaxed) {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// Returns which limit the connection broke, once it breaks one: `header` (a request head
    /// not complete in time) or `idle` (a request in flight that moved no byte in time).
    async fn expired(&self, opts: HttpOptions) -> &'static str {
        let header = opts.header_timeout.as_millis() as u64;
        let idle = opts.idle_timeout.as_millis() as u64;
        loop {
            let changed = self.changed.notified();
            let now = now_ms();
            let mut next = u64::MAX;
            let head = self.head_since.load(Ordering::Acquire);
            if head != 0 {
                if now >= head + header {
                    return "header";
                }
                next = next.min(head + header);
            }
            if self.in_flight.load(Ordering::Acquire) > 0 {
                let last = self.activity.load(Ordering::Relaxed);
                if now >= last + idle {
                    return "idle";
                }
                next = next.min(last + idle);
            }
            if next == u64::MAX {
                changed.await;
            } else {
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep(Duration::from_millis(next - now)) => {}
                }
            }
        }
    }
}

/// A request from its head until its response is sent (or dropped).
struct Busy(Arc<ConnState>);

impl Busy {
    fn start(state: Arc<ConnState>) -> Busy {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.head_since.store(0, Ordering::Release);
        state.activity.store(now_ms(), Ordering::Relaxed);
        state.changed.notify_one();
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted until hyper has sent or dropped it.
struct Tracked {
    inner: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's state each time a byte moves.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
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
            self.state.read_some();
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
            self.state.wrote_some();
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
            self.state.wrote_some();
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
