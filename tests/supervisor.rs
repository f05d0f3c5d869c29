//! Supervisors across two nodes, on SQLite and PostgreSQL: the role checks, the live monitor's
//! contents, read-only follow, whispers (never to the visitor: live, on resume, in the stored
//! transcript) and take-over (the chat moves, the previous agent is told, the audit log says so).

mod common;

use common::accounts::{call, create_with_role};
use common::integrations::metric;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A fast monitor for tests.
async fn cluster(backend: Backend) -> Cluster {
    Cluster::with(backend, |s| s.chat.monitor_interval_ms = 100).await
}

fn row<'a>(frame: &'a Value, key: &str, list: &str, id: &Value) -> Option<&'a Value> {
    frame[list].as_array()?.iter().find(|r| &r[key] == id)
}

/// Waits for a monitor frame (snapshot or change) whose chat row passes `pred`.
async fn monitor_chat(
    sup: &mut Client,
    chat: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let id = json!(chat);
    let frame = sup
        .expect_where(what, move |f| {
            (f["type"] == "monitor_snapshot" || f["type"] == "monitor_changed")
                && row(f, "chat_id", "chats", &id).is_some_and(&pred)
        })
        .await;
    row(&frame, "chat_id", "chats", &json!(chat))
        .unwrap()
        .clone()
}

async fn supervision(backend: Backend) {
    let cluster = cluster(backend).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut ag = available_agent(&cluster, &b, "ann", 2).await;
    let (mut v, chat, _, vtoken) = requesting_visitor(&a, "hello").await;
    accept_offer(&mut ag, &mut v, &chat).await;
    ag.expect("chat_started").await;
    let sue_id = create_with_role(&cluster, "sue", "supervisor").await;
    let mut sup = Client::agent(&a, &agent_token(&a, "sue").await).await;
    sup.expect("status").await;

    // An agent may not watch, whisper to or take over someone else's chat; nor read it.
    for f in [
        json!({"type": "watch_monitor"}),
        json!({"type": "whisper", "chat_id": chat, "client_msg_id": "w0", "text": "x"}),
        json!({"type": "take_over", "chat_id": chat}),
    ] {
        let name = format!("bob-{}", f["type"].as_str().unwrap());
        let mut other = available_agent(&cluster, &b, &name.replace('_', "-"), 1).await;
        other.send(f.clone()).await;
        let e = other.expect("error").await;
        assert_eq!(e["code"], 4005, "{f}: {e}");
        other.send(json!({"type": "resume", "chat_id": chat})).await;
        assert_eq!(other.expect("error").await["code"], 4005);
        other.close().await;
    }

    // The monitor: the running chat with its agent, the agent's load, the queue's figures.
    sup.send(json!({"type": "watch_monitor"})).await;
    let snap = sup.expect("monitor_snapshot").await;
    let c = row(&snap, "chat_id", "chats", &json!(chat)).expect("chat listed");
    assert_eq!(c["state"], "active");
    assert_eq!(c["queue"], "general");
    assert!(c["agent_id"].as_i64().is_some());
    assert!(c["requested_at"].as_i64().unwrap() > 0);
    assert!(c["accepted_at"].as_i64().unwrap() >= c["requested_at"].as_i64().unwrap());
    assert!(c["rating"].is_null(), "{c}");
    let agent_id = c["agent_id"].clone();
    let agent_row = row(&snap, "agent_id", "agents", &agent_id).expect("agent listed");
    assert_eq!(agent_row["status"], "available");
    assert_eq!(agent_row["load"], 1);
    let sue_row = row(&snap, "agent_id", "agents", &json!(sue_id)).expect("supervisor listed");
    assert_eq!(sue_row["role"], "supervisor");
    let q = row(&snap, "queue", "queues", &json!("general")).expect("queue listed");
    assert_eq!(q["accepted_last_hour"], 1, "{q}");
    assert!(q["median_accept_ms"].as_u64().is_some(), "{q}");
    assert_eq!(q["waiting"], 0);

    // A visitor message shows as the chat's last visitor activity, as a batched change.
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "anyone?"}))
        .await;
    v.expect("ack").await;
    monitor_chat(&mut sup, &chat, "last visitor message", |c| {
        c["last_visitor_at"].as_i64().is_some()
    })
    .await;

    // Read-only follow: the history, then live; writing is refused.
    sup.send(json!({"type": "resume", "chat_id": chat})).await;
    sup.expect_text("anyone?").await;
    sup.expect("resumed").await;
    for f in [
        json!({"type": "send", "chat_id": chat, "client_msg_id": "s1", "text": "as agent"}),
        json!({"type": "typing", "chat_id": chat, "typing": true}),
        json!({"type": "end", "chat_id": chat}),
    ] {
        sup.send(f.clone()).await;
        assert_eq!(sup.expect("error").await["code"], 4005, "{f}");
    }

    // A whisper reaches the agent (node B) and the supervisor, never the visitor (node A).
    sup.send(json!({"type": "whisper", "chat_id": chat, "client_msg_id": "w1", "text": "offer the discount"}))
        .await;
    let ack = sup.expect("ack").await;
    let w = ag.expect_text("offer the discount").await;
    assert_eq!(w["entry"]["event"], "whisper");
    assert_eq!(w["entry"]["author"], "supervisor");
    sup.expect_text("offer the discount").await;
    ag.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a1", "text": "after the whisper"}))
        .await;
    let mut seen = vec![v.expect_text("after the whisper").await];
    seen.extend(v.drain_for(Duration::from_millis(300)).await);
    for f in &seen {
        assert_ne!(f["entry"]["event"], "whisper", "{f}");
        assert_ne!(f["entry"]["text"], "offer the discount", "{f}");
    }
    // Nor on resume, from the start or from just before the whisper, on either node.
    for node in [&a, &b] {
        let mut v2 = Client::visitor(node, &vtoken).await;
        v2.send(json!({"type": "resume", "chat_id": chat})).await;
        let replay = collect_until_resumed(&mut v2).await;
        assert!(replay
            .iter()
            .any(|f| f["entry"]["text"] == "after the whisper"));
        for f in &replay {
            assert_ne!(f["entry"]["event"], "whisper", "{f}");
        }
        v2.close().await;
    }
    assert!(ack["seq"].as_str().is_some());

    // Take over: the chat moves to the supervisor; the agent is told; the visitor sees who.
    sup.send(json!({"type": "take_over", "chat_id": chat}))
        .await;
    let assigned = sup.expect("chat_assigned").await;
    assert_eq!(assigned["from_agent_name"], "Agent ann");
    let told = ag
        .expect_where("unfollowed", |f| f["type"] == "chat_unfollowed")
        .await;
    assert_eq!(told["reason"], "taken_over");
    let started = v.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Sup sue");
    sup.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "s2", "text": "I can help"}))
        .await;
    sup.expect("ack").await;
    v.expect_text("I can help").await;
    ag.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a2", "text": "still me?"}))
        .await;
    assert_eq!(ag.expect("error").await["code"], 4005);
    monitor_chat(&mut sup, &chat, "chat now the supervisor's", |c| {
        c["agent_id"] == json!(sue_id)
    })
    .await;
    let audit = cluster
        .store
        .audit_entries(None, 10, Some("chat.take_over"))
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_id, Some(sue_id));
    assert_eq!(audit[0].target, format!("chat:{chat}"));

    // The stored transcript keeps the whisper, marked internal.
    v.send(json!({"type": "end", "chat_id": chat})).await;
    sup.expect("chat_ended").await;
    sup.send(json!({"type": "decide", "chat_id": chat, "decision": "create"}))
        .await;
    sup.expect("decided").await;
    let msg = eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let internal: Vec<_> = msg.entries.iter().filter(|e| e.internal).collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(internal[0].text, "offer the discount");
    assert_eq!(internal[0].event, "whisper");
    assert!(msg
        .entries
        .iter()
        .any(|e| e.text == "I can help" && !e.internal));

    let m = metrics_text(&http(&a)).await;
    assert_eq!(
        metric(
            &m,
            "switchboard_supervisor_actions_total{action=\"whisper\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_supervisor_actions_total{action=\"take_over\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "switchboard_monitor_watchers"), 1.0);
    sup.close().await;
    eventually("watcher gone", || async {
        let m = metrics_text(&http(&a)).await;
        (metric(&m, "switchboard_monitor_watchers") == 0.0).then_some(())
    })
    .await;
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

async fn collect_until_resumed(c: &mut Client) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let f = c
            .expect_where("entry or resumed", |f| {
                f["type"] == "entry" || f["type"] == "resumed"
            })
            .await;
        if f["type"] == "resumed" {
            return out;
        }
        out.push(f);
    }
}

sqlite_and_postgres!(supervision => supervision_on_sqlite, supervision_on_postgres);

/// Waiting requests and missed offers on the monitor; an admin watches too; the admin API
/// gives the supervisor role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_waiting_requests_and_missed_offers() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.chat.monitor_interval_ms = 100;
        s.chat.offer_timeout_ms = 300;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let admin = common::accounts::admin(&cluster, &b, "root").await;
    let (status, created) = call(
        reqwest::Method::POST,
        &format!("{}/api/admin/agents", http(&b)),
        Some(json!({"username": "sam", "display_name": "Sam", "password": "secret-password", "role": "supervisor"})),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{}/api/admin/agents", http(&b)),
        Some(json!({"username": "bad", "display_name": "B", "password": "secret-password", "role": "boss"})),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400);
    let mut watcher = Client::agent(&b, &admin).await;
    watcher.expect("status").await;
    watcher.send(json!({"type": "watch_monitor"})).await;
    watcher.expect("monitor_snapshot").await;

    // Nobody available: the request waits.
    let (_v, chat, vid, _) = requesting_visitor(&a, "hello?").await;
    let id = json!(chat);
    let frame = watcher
        .expect_where("waiting request", move |f| {
            f["type"] == "monitor_changed"
                && row(f, "chat_id", "chats", &id).is_some_and(|c| c["state"] == "queued")
        })
        .await;
    let c = row(&frame, "chat_id", "chats", &json!(chat)).unwrap();
    assert_eq!(c["visitor_id"], vid.as_str());
    assert_eq!(c["name"], "Vera");
    assert!(c.get("accepted_at").is_none());
    let q = row(&frame, "queue", "queues", &json!("general")).expect("queue changed too");
    assert_eq!(q["waiting"], 1, "{q}");
    assert_eq!(q["oldest_request_at"], c["requested_at"], "{q}");

    // An agent who lets the offer run out: a missed offer on the queue's figures.
    let mut ag = available_agent(&cluster, &a, "otto", 1).await;
    ag.expect("offer").await;
    watcher
        .expect_where("missed offer", |f| {
            row(f, "queue", "queues", &json!("general"))
                .is_some_and(|q| q["missed_offers_last_hour"] == 1)
        })
        .await;

    // A supervisor may follow a waiting request read-only too.
    watcher
        .send(json!({"type": "resume", "chat_id": chat}))
        .await;
    let resumed = watcher.expect("resumed").await;
    assert_eq!(resumed["chat_id"], chat.as_str());

    // The supervisor created through the API watches too.
    let mut sam = Client::agent(&a, &agent_token(&a, "sam").await).await;
    sam.expect("status").await;
    sam.send(json!({"type": "watch_monitor"})).await;
    let snap = sam.expect("monitor_snapshot").await;
    assert!(row(&snap, "chat_id", "chats", &json!(chat)).is_some());
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

/// A watcher over its byte budget skips changes and gets the whole monitor again when its
/// budget allows; meanwhile it is sent nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_over_its_byte_budget_gets_the_whole_monitor_later() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.chat.monitor_interval_ms = 100;
        s.chat.monitor_bytes_per_second = 1;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    create_with_role(&cluster, "sid", "supervisor").await;
    let mut sup = Client::agent(&b, &agent_token(&b, "sid").await).await;
    sup.expect("status").await;
    sup.send(json!({"type": "watch_monitor"})).await;
    sup.expect("monitor_snapshot").await;

    // The change (a new request) does not fit: skipped, then the whole monitor instead.
    let (_v, chat, _, _) = requesting_visitor(&a, "hello?").await;
    let id = json!(chat);
    let whole = sup
        .expect_where("monitor frame", |f| {
            f["type"] == "monitor_snapshot" || f["type"] == "monitor_changed"
        })
        .await;
    assert_eq!(whole["type"], "monitor_snapshot", "{whole}");
    assert!(row(&whole, "chat_id", "chats", &id).is_some(), "{whole}");
    let m = metrics_text(&http(&b)).await;
    assert!(metric(&m, "switchboard_monitor_skipped_total") >= 1.0);
    assert!(metric(&m, "switchboard_monitor_bytes_total") > 0.0);

    // That snapshot used the budget up for a long while: further changes are not sent.
    let (_v2, _, _, _) = requesting_visitor(&a, "me too").await;
    for f in sup.drain_for(Duration::from_millis(800)).await {
        assert!(
            f["type"] != "monitor_snapshot" && f["type"] != "monitor_changed",
            "{f}"
        );
    }
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

/// Redis refuses writes (maxmemory, noeviction) on a Redis of this test: whispers and
/// take-overs are refused with 4501 and change nothing; the monitor, which only reads, goes on;
/// once Redis takes writes again both work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_writes_refuses_whispers_and_take_overs_only() {
    let (_redis, port) = common::topology::Procs::standalone();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = format!("redis://127.0.0.1:{port}");
        s.chat.monitor_interval_ms = 100;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut ag = available_agent(&cluster, &b, "ann", 2).await;
    let (mut v, chat, _, _) = requesting_visitor(&a, "hello").await;
    accept_offer(&mut ag, &mut v, &chat).await;
    ag.expect("chat_started").await;
    create_with_role(&cluster, "sue", "supervisor").await;
    let mut sup = Client::agent(&a, &agent_token(&a, "sue").await).await;
    sup.expect("status").await;

    let cli = |args: &[&str]| common::topology::cli(port, args);
    cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    cli(&["CONFIG", "SET", "maxmemory", "1"]);
    sup.send(
        json!({"type": "whisper", "chat_id": chat, "client_msg_id": "w1", "text": "refused?"}),
    )
    .await;
    assert_eq!(sup.expect("error").await["code"], 4501);
    sup.send(json!({"type": "take_over", "chat_id": chat}))
        .await;
    assert_eq!(sup.expect("error").await["code"], 4501);
    sup.send(json!({"type": "watch_monitor"})).await;
    let snap = sup.expect("monitor_snapshot").await;
    let c = row(&snap, "chat_id", "chats", &json!(chat)).expect("chat listed");
    assert_eq!(c["state"], "active");
    let ann = c["agent_id"].clone();
    assert!(row(&snap, "agent_id", "agents", &ann).is_some());

    cli(&["CONFIG", "SET", "maxmemory", "0"]);
    sup.send(
        json!({"type": "whisper", "chat_id": chat, "client_msg_id": "w2", "text": "works now"}),
    )
    .await;
    sup.expect("ack").await;
    let w = ag.expect_text("works now").await;
    assert_eq!(w["entry"]["event"], "whisper");
    // The refused one was never stored.
    for f in ag.drain_for(Duration::from_millis(200)).await {
        assert_ne!(f["entry"]["text"], "refused?", "{f}");
    }
    sup.send(json!({"type": "take_over", "chat_id": chat}))
        .await;
    sup.expect("chat_assigned").await;
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

/// Twenty supervisors' sockets watching on one node share one monitor read per interval (not
/// one each), and a new request on the other node reaches every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_on_a_node_share_one_read_per_interval() {
    const WATCHERS: usize = 20;
    const INTERVAL_MS: u64 = 200;
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.chat.monitor_interval_ms = INTERVAL_MS
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    create_with_role(&cluster, "sue", "supervisor").await;
    let token = agent_token(&b, "sue").await;
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = Client::agent(&b, &token).await;
        w.expect("status").await;
        w.send(json!({"type": "watch_monitor"})).await;
        w.expect("monitor_snapshot").await;
        watchers.push(w);
    }

    let reads = |m: &str| metric(m, "switchboard_monitor_refresh_seconds_count");
    let before = reads(&metrics_text(&http(&b)).await);
    let window = Duration::from_millis(INTERVAL_MS * 10);
    tokio::time::sleep(window).await;
    let during = reads(&metrics_text(&http(&b)).await) - before;
    // About one read per interval (10 in the window), with room for a slow tick; one read per
    // watcher would be 200.
    assert!(
        (5.0..=15.0).contains(&during),
        "{during} reads in 10 intervals"
    );

    let (_v, chat, _, _) = requesting_visitor(&a, "anyone there?").await;
    for w in &mut watchers {
        monitor_chat(w, &chat, "the new request", |r| r["state"] == "queued").await;
    }
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
