//! A TCP proxy a test puts between a node and a dependency (PostgreSQL, Redis) to inject faults
//! on the path, never inside the code under test: forward, black-hole (accept, read, answer
//! nothing, forward nothing; what was held is delivered when forwarding resumes, as a healed
//! network path would), or hold the client's next message that contains a byte pattern until
//! the test releases it (the node then waits on its database exactly there, with whatever the
//! database already did in place: e.g. a transaction that holds its row locks).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A client-to-server pattern to hold: the first chunk (on any connection) that contains it
/// is kept back until `released` turns true.
struct Hold {
    pattern: Vec<u8>,
    /// Told once when a chunk is held.
    seen: Option<oneshot::Sender<()>>,
}

struct Shared {
    /// True while bytes flow; false while the path is black-holed.
    forwarding: watch::Sender<bool>,
    hold: Mutex<Option<Hold>>,
    /// Turns true when the test releases a held chunk.
    released: watch::Sender<bool>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Listens on a loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            forwarding: watch::channel(true).0,
            hold: Mutex::new(None),
            released: watch::channel(false).0,
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream, s.clone()));
            }
        });
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// Stops forwarding in both directions on every connection, existing and new: connections
    /// are accepted and read, and nothing is answered.
    pub fn black_hole(&self) {
        self.shared.forwarding.send_replace(false);
    }

    /// Forwards again, delivering what was held meanwhile.
    pub fn forward(&self) {
        self.shared.forwarding.send_replace(true);
    }

    /// Arms the proxy to hold the next client chunk containing `pattern`; the receiver is
    /// told when it holds one.
    pub fn hold_next(&self, pattern: &[u8]) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.shared.released.send_replace(false);
        *self.shared.hold.lock().unwrap() = Some(Hold {
            pattern: pattern.to_vec(),
            seen: Some(tx),
        });
        rx
    }

    /// Lets the held chunk through (and disarms the hold).
    pub fn release(&self) {
        self.shared.hold.lock().unwrap().take();
        self.shared.released.send_replace(true);
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    // A connection opened while the path is black-holed waits, as a SYN would be retried.
    let mut fwd = shared.forwarding.subscribe();
    if fwd.wait_for(|on| *on).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = tokio::spawn(pump(cr, sw, shared.clone(), true));
    let down = tokio::spawn(pump(sr, cw, shared, false));
    // Either side closing ends both, as a real connection would.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    client_to_server: bool,
) {
    let mut fwd = shared.forwarding.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if client_to_server && held(&shared, chunk) {
            let mut released = shared.released.subscribe();
            if released.wait_for(|r| *r).await.is_err() {
                return;
            }
        }
        if fwd.wait_for(|on| *on).await.is_err() {
            return;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// Whether this chunk is the one to hold (and if so, tells the test).
fn held(shared: &Shared, chunk: &[u8]) -> bool {
    let mut hold = shared.hold.lock().unwrap();
    let Some(h) = hold.as_mut() else {
        return false;
    };
    if h.seen.is_none() {
        return false; // already holding one
    }
    if !chunk.windows(h.pattern.len()).any(|w| w == h.pattern) {
        return false;
    }
    if let Some(tx) = h.seen.take() {
        let _ = tx.send(());
    }
    true
}
