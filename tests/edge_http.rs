//! The HTTP edge against slow and hostile clients on real sockets: slowloris heads and silent
//! sockets are cut at `server.header_timeout_ms`, idle keep-alives and stalled bodies at
//! `server.http_idle_timeout_ms`, connections over `server.max_http_connections` are refused,
//! `/metrics` can live on its own listener, a client's Close is answered with a Close, and a
//! draining node answers 503 until its listener closes.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Whether the server has closed `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A connection that has had one request answered and is kept alive.
async fn after_one_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    s
}

/// Clients that send their request head a line at a time (slowloris), never send one, or
/// start a second request on a kept-alive connection and never finish it are all disconnected
/// at the header timeout, while a normal client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_at_the_header_timeout() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.header_timeout_ms = 1_000;
        s.server.http_idle_timeout_ms = 30_000;
    })
    .await;
    let node = cluster.node().await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(node.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut silent = TcpStream::connect(node.addr).await.unwrap();
    let mut second = after_one_request(node.addr).await;
    // The next request on the kept-alive connection starts and never ends.
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    slow.push(second);
    // Trickle one header line every 200 ms: each write is progress, none completes the head.
    let trickle = async {
        for i in 0..15 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for s in slow.iter_mut() {
                let _ = s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await;
            }
        }
    };
    let served = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        get(&format!("{}/healthz", http(&node)), None).await.0
    };
    let ((), status) = tokio::join!(trickle, served);
    assert_eq!(status, 200, "a normal client is served meanwhile");
    let mut open = 0;
    for s in slow.iter_mut() {
        if !closed_within(s, Duration::from_secs(2)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "slow request heads still open after 3 s");
    assert!(closed_within(&mut silent, Duration::from_secs(1)).await);
    let text = metrics_text(&http(&node)).await;
    assert!(
        metric(&text, "switchboard_http_timeouts_total{kind=\"header\"}") >= 22,
        "{text}"
    );
}

/// A kept-alive connection waiting for its next request is not cut by the (shorter) header
/// timeout, only at the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_at_the_idle_timeout() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.header_timeout_ms = 300;
        s.server.http_idle_timeout_ms = 1_500;
    })
    .await;
    let node = cluster.node().await;
    let mut kept = after_one_request(node.addr).await;
    assert!(
        !closed_within(&mut kept, Duration::from_millis(900)).await,
        "idle keep-alive cut at the header timeout"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(3)).await,
        "idle keep-alive still open"
    );
    let text = metrics_text(&http(&node)).await;
    assert_eq!(
        metric(&text, "switchboard_http_timeouts_total{kind=\"idle\"}"),
        1,
        "{text}"
    );
}

/// A body that stops arriving is cut at the idle timeout (the head was complete, so only the
/// idle timeout can end it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_at_the_idle_timeout() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.header_timeout_ms = 1_000;
        s.server.http_idle_timeout_ms = 1_000;
    })
    .await;
    let node = cluster.node().await;
    let mut s = TcpStream::connect(node.addr).await.unwrap();
    s.write_all(
        b"POST /api/visitor/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"tok",
    )
    .await
    .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(4)).await,
        "stalled upload still open"
    );
    let text = metrics_text(&http(&node)).await;
    assert_eq!(
        metric(&text, "switchboard_http_timeouts_total{kind=\"idle\"}"),
        1
    );
}

/// Over `server.max_http_connections` a new connection is refused at once; once the idle ones
/// are cut, the node serves again. An upgraded WebSocket does not hold an HTTP slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connections_over_the_cap_are_refused_until_idle_ones_go() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.max_http_connections = 10;
        s.server.header_timeout_ms = 1_500;
    })
    .await;
    let node = cluster.node().await;
    // WebSockets first: they leave the HTTP count once upgraded.
    let mut sockets = Vec::new();
    for _ in 0..12 {
        let (_, token) = visitor_token(&node).await;
        sockets.push(Client::visitor(&node, &token).await);
    }
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(node.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(node.addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), over.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
        "over the cap: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(closed_within(&mut over, Duration::from_millis(500)).await);
    // The idle ones are cut at the header timeout; then the node answers again.
    let status = eventually("healthz after the idle connections were cut", || async {
        let c = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let r = c
            .get(format!("{}/healthz", http(&node)))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(200)
    })
    .await;
    assert_eq!(status, 200);
    let text = metrics_text(&http(&node)).await;
    assert!(metric(&text, "switchboard_http_connections_refused_total") >= 1);
    // The WebSockets opened first still work.
    for s in sockets.iter_mut() {
        s.send(serde_json::json!({"type": "ping", "nonce": 7}))
            .await;
        s.expect("pong").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let shared = cluster.node().await;
    assert!(shared.metrics_addr.is_none());
    assert!(metrics_text(&http(&shared))
        .await
        .contains("switchboard_http_connections"));
    let apart = cluster
        .node_with(|s| s.server.metrics_listen = "127.0.0.1:0".into())
        .await;
    let metrics_url = format!("http://{}", apart.metrics_addr.expect("metrics address"));
    assert!(metrics_text(&metrics_url)
        .await
        .contains("switchboard_login_failures_total"));
    let (status, _) = get(&format!("{}/metrics", http(&apart)), None).await;
    assert_eq!(status, 404, "metrics still on the public listener");
    // The public listener serves everything else; the metrics one nothing else.
    assert_eq!(get(&format!("{}/readyz", http(&apart)), None).await.0, 200);
    assert_eq!(get(&format!("{metrics_url}/readyz"), None).await.0, 404);
}

/// RFC 6455 5.5.1: a Close from the client is answered with a Close carrying the same code,
/// so browsers see a clean close with their code instead of 1006.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_close_frame_is_answered_with_its_code() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let node = cluster.node().await;
    for code in [CloseCode::Normal, CloseCode::Away, CloseCode::Library(4000)] {
        let (_, token) = visitor_token(&node).await;
        let url = format!("ws://{}/ws/visitor?token={token}", node.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let welcome = ws.next().await.unwrap().unwrap();
        assert!(welcome.to_text().unwrap().contains("welcome"));
        ws.send(Message::Close(Some(CloseFrame {
            code,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        let reply = loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("answer in time")
            {
                Some(Ok(Message::Close(f))) => break f,
                Some(Ok(_)) => continue,
                other => panic!("no Close answered to {code:?}: {other:?}"),
            }
        };
        assert_eq!(reply.map(|f| f.code), Some(code));
        // The handshake is complete: the stream ends cleanly.
        assert!(ws.next().await.is_none());
    }
}

/// While a node drains, its listener stays open: `/readyz` and new upgrades get 503 (as the
/// docs promise), then the listener closes and connections are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_answers_503_until_its_listener_closes() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.drain_seconds = 6;
        s.server.drain_listen_seconds = 2;
    })
    .await;
    let node = cluster.node().await;
    let url = http(&node);
    let addr = node.addr;
    let (_, token) = visitor_token(&node).await;
    let mut visitor = Client::visitor(&node, &token).await;
    let drain = tokio::spawn(node.drain());
    assert_eq!(visitor.expect_close().await, 4503);
    let (status, body) = get(&format!("{url}/readyz"), None).await;
    assert_eq!((status, body["draining"].as_bool()), (503, Some(true)));
    let ws =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws/visitor?token={token}")).await;
    match ws {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 503)
        }
        other => panic!("upgrade during the drain: {:?}", other.map(|(_, r)| r)),
    }
    assert_eq!(
        get(&format!("{url}/healthz"), None).await.0,
        200,
        "the process still answers"
    );
    tokio::time::timeout(Duration::from_secs(8), drain)
        .await
        .expect("drain within its deadline")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener open after the drain"
    );
}
