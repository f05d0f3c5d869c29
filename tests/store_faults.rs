//! Faults between the nodes and the SQL store, injected on real processes and real sockets:
//! a node frozen (SIGSTOP) while its flush transaction holds row locks, and PostgreSQL
//! black-holed by a TCP proxy. Every SQL call is bounded (`store.*_timeout_ms`), so the rest
//! of the cluster keeps flushing, `/readyz` answers in time and names the store, chats go on
//! on Redis, and every transcript is written exactly once when the path heals.

mod common;

use common::fault_node::NodeProcess;
use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The PostgreSQL simple-query message `COMMIT`: 'Q', its length (4 + 7), the text, NUL.
/// sqlx ends a transaction with exactly this message.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// The test store's URL with its host and port replaced by the proxy's.
fn through(url: &str, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some("127.0.0.1")).unwrap();
    u.set_port(Some(proxy.addr.port())).unwrap();
    u.to_string()
}

fn pg_addr() -> SocketAddr {
    let u = url::Url::parse(&pg_url()).unwrap();
    let host = u.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", u.port().unwrap_or(5432))
        .parse()
        .expect("SWITCHBOARD_TEST_PG_URL names a loopback IP and port")
}

async fn post_to(base: &str, path: &str, body: Value, token: Option<&str>) -> Value {
    let (status, v) = post(&format!("{base}{path}"), body, token).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// An available agent connected to the node at `addr`.
async fn agent_at(addr: SocketAddr, username: &str) -> Client {
    let login = post_to(
        &format!("http://{addr}"),
        "/api/agent/login",
        json!({"username": username, "password": "secret-password"}),
        None,
    )
    .await;
    let mut a = Client::connect_to(addr, "agent", login["token"].as_str().unwrap()).await;
    a.expect("status").await;
    set_status(&mut a, "available").await;
    a
}

/// A visitor at `addr` whose chat the agent accepted; returns it with the chat id.
async fn chat_at(addr: SocketAddr, agent: &mut Client, email: &str) -> (Client, String) {
    let session = post_to(
        &format!("http://{addr}"),
        "/api/visitor/session",
        json!({}),
        None,
    )
    .await;
    let mut v = Client::connect_to(addr, "visitor", session["token"].as_str().unwrap()).await;
    let chat = v
        .request_chat(
            json!({"type": "request_chat", "name": "Vi", "email": email, "question": "q"}),
        )
        .await;
    accept_offer(agent, &mut v, &chat).await;
    (v, chat)
}

/// The visitor ends the chat; the agent sees it end.
async fn end(agent: &mut Client, visitor: &mut Client, chat: &str) {
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    let c = chat.to_string();
    agent
        .expect_where("chat_ended", move |f| {
            f["type"] == "chat_ended" && f["chat_id"] == c.as_str()
        })
        .await;
}

/// Polls until `done` holds, for at most `limit`; returns how long it took.
async fn within<F, Fut>(what: &str, limit: Duration, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

async fn flushed(cluster: &Cluster, chats: &[String]) -> bool {
    for c in chats {
        if cluster.store.message_by_chat(c).await.unwrap().is_none() {
            return false;
        }
    }
    true
}

fn jobs_pending(cluster: &Cluster) -> String {
    let jobs = format!("{}{{f}}:jobs", cluster.prefix);
    redis_cli(&["XPENDING", &jobs, "flush"])
}

/// Each chat's transcript is in SQL once: one Message carrying the chat's (typed, so
/// unverified) e-mail, and its contact (the chat's own visitor: a typed e-mail links to no
/// contact) has exactly one Interaction, so no flush ran twice.
async fn written_once(cluster: &Cluster, chats: &[String], emails: &[String]) {
    for (chat, email) in chats.iter().zip(emails) {
        let m = cluster.store.message_by_chat(chat).await.unwrap();
        let m = m.unwrap_or_else(|| panic!("{chat} not written"));
        assert_eq!(m.decision, "create");
        assert_eq!(m.visitor_email.as_deref(), Some(email.as_str()));
        let interactions = cluster
            .store
            .interactions_of_contact(m.contact_id)
            .await
            .unwrap();
        assert_eq!(interactions.len(), 1, "{email}: {interactions:?}");
    }
    for chat in chats {
        let left = cluster.chat_keys_left(chat).await;
        assert!(left.is_empty(), "{chat} still in Redis: {left:?}");
    }
}

/// A PostgreSQL cluster with short store bounds (lock waits 0.5 s), `/readyz` checks of 1 s and
/// a flush takeover after 1 s.
async fn short_bounds(statement_ms: u64, connect_ms: u64) -> Cluster {
    Cluster::with(Backend::Postgres, |s| {
        s.flush.claim_idle_ms = 1_000;
        s.server.ready_timeout_ms = 1_000;
        s.store.lock_timeout_ms = 500;
        s.store.statement_timeout_ms = statement_ms;
        s.store.connect_timeout_ms = connect_ms;
    })
    .await
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A node frozen in the middle of its flush transaction (its `COMMIT` held back by a proxy,
/// then the process stopped with SIGSTOP) holds row locks on its chat. Another node takes its
/// job over together with seven newly decided chats: the seven are written at once (the
/// locked chat's lock wait is bounded by `store.lock_timeout_ms` and it stays pending), and
/// the frozen chat is written by the takeover once PostgreSQL ends the frozen transaction
/// (`idle_in_transaction_session_timeout` = `store.statement_timeout_ms`), exactly once, before
/// the frozen node is even thawed.
///
/// How the freeze is placed: a SIGSTOP at a random moment would rarely land inside the
/// transaction, and a lock taken by the test itself would not be the node's. So the test
/// slows the node's database path instead: a TCP proxy of the test's holds back the first
/// `COMMIT` message the node sends after the chat is decided. At that moment the node has run
/// every statement of its flush (contact, interaction and message rows inserted and locked)
/// and waits for the commit, exactly as a node that stopped just before committing; then the
/// process is SIGSTOPped. Nothing in the code under test knows about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_node_mid_flush_does_not_stall_the_others() {
    let cluster = short_bounds(4_000, 2_000).await;
    cluster.agent("ann", 8).await;
    let proxy = Proxy::start(pg_addr()).await;
    let frozen =
        NodeProcess::start(&cluster, &through(&cluster.settings.store.url, &proxy), &[]).await;
    let mut agent = agent_at(frozen.addr, "ann").await;
    let mut chats = Vec::new();
    let mut emails = Vec::new();
    for i in 0..8 {
        let email = format!("frozen-{i}@example.com");
        let (mut v, chat) = chat_at(frozen.addr, &mut agent, &email).await;
        end(&mut agent, &mut v, &chat).await;
        chats.push(chat);
        emails.push(email);
    }

    // The first chat's flush runs up to its COMMIT, which the proxy holds.
    let held = proxy.hold_next(COMMIT);
    decide(&mut agent, &chats[0], "create").await;
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the node's flush reached COMMIT")
        .unwrap();
    let held_at = Instant::now();
    // The other seven are decided while that node's flush worker waits: their jobs queue up.
    for chat in &chats[1..] {
        decide(&mut agent, chat, "create").await;
    }
    frozen.freeze();
    let frozen_at = Instant::now();
    assert!(!flushed(&cluster, &chats[..1]).await);

    // Once the held job has been idle past flush.claim_idle_ms, a healthy node starts: its
    // first read takes the frozen node's job over and the seven new ones, in one batch.
    tokio::time::sleep(Duration::from_millis(1_300).saturating_sub(held_at.elapsed())).await;
    let healthy = cluster.node().await;
    let started = Instant::now();
    let others = within(
        "the seven other chats flushed by the healthy node",
        Duration::from_secs(15),
        || flushed(&cluster, &chats[1..]),
    )
    .await;
    within(
        "the frozen node's chat flushed by takeover",
        Duration::from_secs(20),
        || flushed(&cluster, &chats),
    )
    .await;
    let all = started.elapsed();
    let exposition = healthy.service.metrics.render();
    eprintln!(
        "frozen node: the 7 other chats flushed {:.2} s after the healthy node started \
         ({:.2} s after the freeze); the frozen node's chat {:.2} s after it started \
         (its transaction held {:.2} s before PostgreSQL ended it)",
        others.as_secs_f64(),
        (started - frozen_at + others).as_secs_f64(),
        all.as_secs_f64(),
        cluster.settings.store.statement_timeout_ms as f64 / 1000.0
    );
    assert!(
        metric(
            &exposition,
            "switchboard_flush_jobs_total{outcome=\"locked\"}"
        ) >= 1.0,
        "the takeover met the lock: {exposition}"
    );
    assert!(
        metric(
            &exposition,
            "switchboard_store_timeouts_total{kind=\"lock\"}"
        ) >= 1.0,
        "lock timeouts are counted"
    );

    // The frozen node resumes: its commit goes nowhere (PostgreSQL ended that transaction),
    // it does not write the chat again, and it serves again.
    frozen.thaw();
    proxy.release();
    within("no flush job pending", Duration::from_secs(15), || async {
        jobs_pending(&cluster).starts_with('0')
    })
    .await;
    within("the thawed node ready", Duration::from_secs(15), || async {
        get(&format!("{}/readyz", frozen.http()), None).await.0 == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    written_once(&cluster, &chats, &emails).await;
    healthy.drain().await;
    drop(frozen);
    cluster.cleanup().await;
}

/// PostgreSQL black-holed (a proxy that accepts and reads but never answers): `/readyz`
/// answers 503 within `server.ready_timeout_ms` and names the store, chats go on on Redis
/// (messages both ways, a new chat requested, accepted, ended and decided), and when packets
/// flow again every decided chat is flushed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_database_fails_readiness_in_time_and_chats_go_on() {
    let cluster = short_bounds(2_000, 1_000).await;
    cluster.agent("bo", 4).await;
    let proxy = Proxy::start(pg_addr()).await;
    let url = through(&cluster.settings.store.url, &proxy);
    let node = cluster.node_with(|s| s.store.url = url).await;
    let mut agent = agent_at(node.addr, "bo").await;
    let (mut v1, chat1) = chat_at(node.addr, &mut agent, "hole-1@example.com").await;
    let (status, _) = get(&format!("{}/readyz", http(&node)), None).await;
    assert_eq!(status, 200);

    proxy.black_hole();
    let asked = Instant::now();
    let resp = reqwest::Client::new()
        .get(format!("{}/readyz", http(&node)))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("/readyz answers");
    let readyz = asked.elapsed();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], json!(["store"]), "{body}");
    assert_eq!(body["redis"], true);
    assert!(
        readyz < Duration::from_secs(5),
        "/readyz took {readyz:?} with the store black-holed"
    );

    // Chats go on: messages both ways, a new chat from request to decision.
    v1.send(
        json!({"type": "send", "chat_id": chat1, "client_msg_id": "a", "text": "still there?"}),
    )
    .await;
    agent.expect_text("still there?").await;
    agent
        .send(json!({"type": "send", "chat_id": chat1, "client_msg_id": "b", "text": "yes"}))
        .await;
    v1.expect_text("yes").await;
    let (mut v2, chat2) = chat_at(node.addr, &mut agent, "hole-2@example.com").await;
    for (v, chat) in [(&mut v1, &chat1), (&mut v2, &chat2)] {
        end(&mut agent, v, chat).await;
        decide(&mut agent, chat, "create").await;
    }
    // Their flush cannot reach the store: each attempt gives up within its bound.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let chats = vec![chat1, chat2];
    let emails = vec![
        "hole-1@example.com".to_string(),
        "hole-2@example.com".into(),
    ];
    assert!(!flushed(&cluster, &chats[..1]).await && !flushed(&cluster, &chats[1..]).await);
    let exposition = node.service.metrics.render();
    let timeouts: f64 = ["call", "acquire"]
        .iter()
        .map(|k| {
            metric(
                &exposition,
                &format!("switchboard_store_timeouts_total{{kind=\"{k}\"}}"),
            )
        })
        .sum();
    assert!(timeouts >= 1.0, "store timeouts are counted: {exposition}");

    proxy.forward();
    let healed = Instant::now();
    let flush = within(
        "both chats flushed once packets flow",
        Duration::from_secs(30),
        || flushed(&cluster, &chats),
    )
    .await;
    within("no flush job pending", Duration::from_secs(15), || async {
        jobs_pending(&cluster).starts_with('0')
    })
    .await;
    within("ready again", Duration::from_secs(15), || async {
        get(&format!("{}/readyz", http(&node)), None).await.0 == 200
    })
    .await;
    eprintln!(
        "black-holed store: /readyz answered 503 in {:.2} s; after the path healed both chats \
         were flushed in {:.2} s and /readyz was 200 again by {:.2} s",
        readyz.as_secs_f64(),
        flush.as_secs_f64(),
        healed.elapsed().as_secs_f64()
    );
    written_once(&cluster, &chats, &emails).await;
    node.drain().await;
    cluster.cleanup().await;
}
