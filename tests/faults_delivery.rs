//! Delivery through faults of Redis, on real processes: subscriber connections killed again
//! and again (`CLIENT KILL TYPE pubsub` on a Redis of the test's own) while both sides of a
//! chat on two nodes write; a subscriber connection cut once; a listener that falls behind; a
//! Redis without persistence killed and restarted empty (every client of a live chat is told:
//! `chat_lost`, close 4410); a long chat resumed on the other node, replayed a page at a time;
//! and thirty sockets that never read resuming it on a node run as its own process, whose
//! memory stays at a few pages per socket. A node refused its channels for a while:
//! `faults_channels.rs`.

mod common;

use common::own_redis::OwnRedis;
use common::topology::cli;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard::config::Settings;

/// Frame rates and transcript caps out of the way of the volumes below.
fn lifted(s: &mut Settings) {
    s.limits.frames_per_second = 100_000;
    s.limits.burst_frames = 100_000;
    s.abuse.agent_frames_per_second = 100_000;
    s.abuse.agent_burst_frames = 100_000;
    s.abuse.visitor_frames_per_second = 100_000;
    s.abuse.visitor_burst_frames = 100_000;
    s.abuse.transcript_max_entries = 100_000;
    s.abuse.transcript_max_bytes = 1 << 30;
}

/// Sends `text` until it is acknowledged: a send whose answer was lost with a killed
/// connection is refused or times out, and the same `client_msg_id` is sent again (the node
/// stores it once).
async fn send_acked(c: &mut Client, chat: &str, text: &str) {
    for _ in 0..50 {
        c.send(json!({"type": "send", "chat_id": chat, "client_msg_id": text, "text": text}))
            .await;
        let t = text.to_string();
        let answer = c
            .expect_where("ack or error", move |f| {
                (f["type"] == "ack" && f["client_msg_id"] == t.as_str())
                    || (f["type"] == "error" && f["ref"] == t.as_str())
            })
            .await;
        if answer["type"] == "ack" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text} never acknowledged");
}

/// Writes `total` messages (`text(i)`, also their client message ids' seed) in batches of 100
/// that the writer's own echoes cannot overflow its queue with.
async fn write_many(c: &mut Client, chat: &str, total: usize, text: impl Fn(usize) -> String) {
    for batch in 0..total / 100 {
        for i in batch * 100..(batch + 1) * 100 {
            let t = text(i);
            c.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("m{i}"), "text": t}))
                .await;
        }
        for _ in 0..100 {
            c.expect("ack").await;
        }
        let _ = c.drain_for(Duration::from_millis(1)).await;
    }
}

/// The texts of the other side's entries in `frames`, checking that sequence numbers only grow.
fn texts_from(frames: &[Value], author: &str, last: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    for f in frames.iter().filter(|f| f["type"] == "entry") {
        let seq = f["entry"]["seq"].as_str().unwrap().to_string();
        let (a, b) = (parse_seq(&seq), parse_seq(last));
        assert!(
            a > b,
            "entry {seq} after {last}: a gap's repair or a double"
        );
        *last = seq;
        if f["entry"]["author"] == author {
            out.push(f["entry"]["text"].as_str().unwrap().to_string());
        }
    }
    out
}

fn parse_seq(s: &str) -> (u64, u64) {
    s.split_once('-')
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .unwrap_or((0, 0))
}

/// Both nodes' subscriber connections are killed 25 times, every 40-200 ms, while the visitor
/// (node A) and the agent (node B) write all along: every acknowledged message reaches the
/// other side exactly once, in order, on the connection it had (no close, no resume).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_connections_killed_again_and_again_lose_nothing_across_two_nodes() {
    let redis = OwnRedis::volatile();
    let url = redis.url();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = url;
        lifted(s);
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "kim", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    // Everything from here on is checked: sequence numbers grow, nothing twice.
    let _ = visitor.drain_for(Duration::from_millis(200)).await;
    let _ = agent.drain_for(Duration::from_millis(200)).await;

    let done = Arc::new(AtomicBool::new(false));
    let port = redis.port;
    let killer = {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let mut killed = 0u32;
            let mut pause = 40u64;
            for _ in 0..25 {
                killed += cli(port, &["CLIENT", "KILL", "TYPE", "pubsub"])
                    .trim()
                    .parse::<u32>()
                    .unwrap_or(0);
                // 40..200 ms, varied so kills land at every point of a send.
                pause = 40 + (pause * 7 + 13) % 160;
                std::thread::sleep(Duration::from_millis(pause));
            }
            done.store(true, Ordering::Relaxed);
            killed
        })
    };

    let (mut from_visitor, mut from_agent) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !done.load(Ordering::Relaxed) {
        let v = format!("v{i}");
        send_acked(&mut visitor, &chat, &v).await;
        from_visitor.push(v);
        let g = format!("a{i}");
        send_acked(&mut agent, &chat, &g).await;
        from_agent.push(g);
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let n = i;
    let killed = killer.await.unwrap();
    eprintln!("{n} messages each way; {killed} subscriber connections killed");
    // A kill that lands while a node is still reconnecting finds one connection or none.
    assert!(killed >= 15, "only {killed} subscriber connections killed");

    // Each side gets the other's messages exactly once, in order, without reconnecting.
    let (mut got_agent, mut got_visitor) = (Vec::new(), Vec::new());
    let (mut last_v, mut last_a) = (String::new(), String::new());
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while (got_agent.len() < n || got_visitor.len() < n) && tokio::time::Instant::now() < deadline {
        let vf = visitor.drain_for(Duration::from_millis(300)).await;
        got_agent.extend(texts_from(&vf, "agent", &mut last_v));
        let af = agent.drain_for(Duration::from_millis(300)).await;
        got_visitor.extend(texts_from(&af, "visitor", &mut last_a));
    }
    assert_eq!(visitor.closed, None, "visitor closed");
    assert_eq!(agent.closed, None, "agent closed");
    assert_eq!(got_agent, from_agent, "what the visitor got from the agent");
    assert_eq!(
        got_visitor, from_visitor,
        "what the agent got from the visitor"
    );
    // The nodes noticed and caught up (each at least once).
    for node in [&a, &b] {
        assert!(
            node.service
                .metrics
                .resyncs
                .with_label_values(&["reconnected"])
                .get()
                >= 1
        );
    }
    cluster.cleanup().await;
}

/// A chat of 2,500 messages written on node B is resumed from the start by its visitor on node
/// A: every entry arrives once, in order, then `resumed` names the last one; the node read the
/// stream a page at a time (the replay is never held whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_chat_resumed_on_the_other_node_arrives_whole_in_pages() {
    let cluster = Cluster::with(Backend::Sqlite, lifted).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "lou", 1).await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "long one").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.close().await;

    let total = 2_500;
    write_many(&mut agent, &chat, total, |i| format!("m{i}")).await;

    let mut visitor = Client::visitor(&a, &vtoken).await;
    visitor
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    let resumed = visitor.expect("resumed").await;
    let frames = visitor.drain_for(Duration::from_millis(200)).await;
    let mut last = String::new();
    let texts = texts_from(&frames, "agent", &mut last);
    let expected: Vec<String> = (0..total).map(|i| format!("m{i}")).collect();
    assert_eq!(texts.len(), expected.len());
    assert_eq!(texts, expected);
    assert_eq!(resumed["last_seq"].as_str().unwrap(), last);
    cluster.cleanup().await;
}

/// Redis (no persistence) is killed with SIGKILL and restarted empty under a live chat whose
/// visitor is on node A and agent on node B: both get `chat_lost` for the chat, then close
/// 4410, within the test's bound; an agent without a chat is closed with 4410 as well and,
/// back, reads its real status (offline: Redis lost it); each node counts the loss once, and
/// a new connection's `welcome` carries the new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_tells_both_sides_their_chat_is_lost() {
    let mut redis = OwnRedis::volatile();
    let url = redis.url();
    let cluster = Cluster::with(Backend::Sqlite, |s| s.redis.url = url).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "max", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    cluster.agent("nia", 1).await;
    let idle_token = agent_token(&a, "nia").await;
    let mut idle = Client::agent(&a, &idle_token).await;
    idle.expect("status").await;
    set_status(&mut idle, "available").await;
    let epoch = visitor.welcome["epoch"].as_str().unwrap().to_string();
    assert!(!epoch.is_empty());
    assert_eq!(
        agent.welcome["epoch"],
        epoch.as_str(),
        "one epoch for the cluster"
    );
    visitor
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    assert_eq!(visitor.expect("resumed").await["epoch"], epoch.as_str());

    redis.crash();
    redis.spawn();
    let restarted = std::time::Instant::now();
    for (who, c) in [("visitor", &mut visitor), ("agent", &mut agent)] {
        let lost = c
            .expect_where("chat_lost", |f| f["type"] == "chat_lost")
            .await;
        assert_eq!(lost["chat_id"], chat.as_str(), "{who}");
        assert_eq!(lost["message"], "the service lost its live state", "{who}");
        assert_eq!(c.expect_close().await, 4410, "{who}");
    }
    assert_eq!(idle.expect_close().await, 4410, "agent without a chat");
    let mut idle = Client::agent(&a, &idle_token).await;
    assert_eq!(idle.expect("status").await["status"], "offline");
    eprintln!(
        "both sides told {} ms after the restart",
        restarted.elapsed().as_millis()
    );
    for node in [&a, &b] {
        assert_eq!(node.service.metrics.redis_state_lost.get(), 1);
    }
    let (_, token) = visitor_token(&a).await;
    let fresh = Client::visitor(&a, &token).await;
    let now = fresh.welcome["epoch"].as_str().unwrap();
    assert!(!now.is_empty() && now != epoch, "{now} after {epoch}");
    cluster.cleanup().await;
}

/// Thirty sockets that never read resume a chat of 2,000 messages of 3,900 characters (about
/// 8 MB) on a node run as its own process: the replay goes out a page at a time and stops at
/// each socket's full buffers, so the node's memory grows by a few pages per socket, not by
/// the transcript (held whole, thirty copies were about half a gigabyte); a reading client
/// still gets every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_that_never_read_hold_pages_not_transcripts() {
    use common::fault_node::NodeProcess;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let cluster = Cluster::with(Backend::Sqlite, lifted).await;
    let b = cluster.node().await;
    let mut agent = available_agent(&cluster, &b, "ida", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&b, "long").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.close().await;
    let total = 2_000;
    write_many(&mut agent, &chat, total, |i| {
        format!("{i:04}{}", "x".repeat(3_896))
    })
    .await;
    let token = agent_token(&b, "ida").await;

    let node = NodeProcess::start(&cluster, &cluster.settings.store.url, &[]).await;
    let rss_mb = || common::process::rss_kb_of(&format!("/proc/{}/status", node.pid())) / 1024;
    let before = rss_mb();
    let mut silent = Vec::new();
    for _ in 0..30 {
        let url = format!("ws://{}/ws/agent?token={token}", node.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        let resume = json!({"type": "resume", "chat_id": chat, "last_seq": ""});
        ws.send(Message::Text(resume.to_string().into()))
            .await
            .unwrap();
        silent.push(ws);
    }
    // The replays run until the sockets' buffers are full; sample the node meanwhile.
    let mut peak = before;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mb());
    }
    eprintln!("node RSS {before} MB before, {peak} MB at most with 30 silent resumes");
    assert!(
        peak < before + 150,
        "30 silent resumes took the node from {before} to {peak} MB"
    );
    drop(silent);

    let mut reader = Client::connect_to(node.addr, "agent", &token).await;
    reader
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    reader.expect("resumed").await;
    let frames = reader.drain_for(Duration::from_millis(300)).await;
    let mut last = String::new();
    assert_eq!(texts_from(&frames, "agent", &mut last).len(), total);
    cluster.cleanup().await;
}

/// The node's subscriber connection to Redis drops mid-chat (a failover, a network blip): what
/// was published while it was down never reaches that node live. Once it is back, the node
/// subscribes again and its connections catch up from the chat's stream: the visitor on that
/// node stays connected and gets every message of the agent once, in order, and what it sends
/// after goes through the re-established connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscriber_connection_is_caught_up_without_loss_or_reconnect() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "jo", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "hi", "text": "hello"}))
        .await;
    visitor.expect_text("hello").await;

    // Cut node A's subscriber connection (found by its client name), then the agent writes
    // while node A reconnects (fred waits at least 100 ms before it tries again).
    let id = client_id_named(
        &redis_cli(&["CLIENT", "LIST"]),
        a.service.redis.subscriber_name(),
    );
    let killed = redis_cli(&["CLIENT", "KILL", "ID", &id]);
    assert_eq!(killed.trim(), "1", "CLIENT KILL ID {id}");
    let sent = 5;
    for i in 0..sent {
        agent.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("d{i}"), "text": format!("during {i}")})).await;
        agent.expect_where("ack", |f| f["type"] == "ack").await;
    }

    // The visitor gets all of them on the same connection, in order, each once.
    let expected: Vec<String> = (0..sent).map(|i| format!("during {i}")).collect();
    let mut texts: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts.len() < sent && tokio::time::Instant::now() < deadline {
        for f in visitor.drain_for(Duration::from_millis(200)).await {
            if f["type"] == "entry" && f["entry"]["author"] == "agent" {
                texts.push(f["entry"]["text"].as_str().unwrap().to_string());
            }
        }
    }
    texts.extend(
        visitor
            .drain_for(Duration::from_millis(300))
            .await
            .into_iter()
            .filter(|f| f["type"] == "entry" && f["entry"]["author"] == "agent")
            .map(|f| f["entry"]["text"].as_str().unwrap().to_string()),
    );
    assert_eq!(texts, expected);
    assert_eq!(visitor.closed, None, "caught up in the node, not closed");
    eventually("one resync after subscribing again", || async {
        (a.service
            .metrics
            .resyncs
            .with_label_values(&["reconnected"])
            .get()
            == 1)
            .then_some(())
    })
    .await;
    // Subscribed again: the queue channel, which every node follows for as long as it runs,
    // has both nodes on it (`PUBSUB SHARDNUMSUB` answers the channel, then the count).
    let queue_channel = a.service.redis.keys.queue_channel();
    let numsub = redis_cli(&["PUBSUB", "SHARDNUMSUB", &queue_channel]);
    assert_eq!(numsub.lines().nth(1), Some("2"), "{numsub:?}");

    // Both ways work through the re-established connection.
    both_ways(&mut visitor, &mut agent, &chat, "still here", "good").await;
    cluster.cleanup().await;
}

/// The node's listener falls behind its subscriber connection: a burst on a chat channel
/// larger than `redis.subscriber_buffer` arrives faster than the listener hands it out, so
/// live traffic was dropped for this node's followers. The node's connections catch up from
/// the streams (`resyncs_total{cause="lagged"}`): the visitor stays connected and misses
/// nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_that_falls_behind_is_caught_up_without_loss() {
    // Inboxes deep enough that the burst cannot close anyone as a slow consumer instead;
    // node A with a small buffer, node B as usual.
    let cluster = Cluster::with(Backend::Sqlite, |s| s.limits.outbound_queue = 1_000_000).await;
    let a = cluster.node_with(|s| s.redis.subscriber_buffer = 16).await;
    let b = cluster.node().await;
    let mut agent = available_agent(&cluster, &b, "lee", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "hi", "text": "hello"}))
        .await;
    visitor.expect_text("hello").await;
    // What came before is not counted below.
    let _ = visitor.drain_for(Duration::from_millis(200)).await;

    // 5,000 typing indicators in one go (one script, so they leave Redis back to back), then
    // stored messages.
    let channel = a.service.redis.keys.chat_channel(&chat);
    let typing =
        json!({"relay": {"type": "typing", "chat_id": chat, "by": "agent", "typing": true}});
    let burst = redis_cli(&[
        "EVAL",
        "for i = 1, 5000 do redis.call('SPUBLISH', KEYS[1], ARGV[1]) end return 1",
        "1",
        &channel,
        &typing.to_string(),
    ]);
    assert_eq!(burst.trim(), "1", "{burst}");
    let sent = 3;
    for i in 0..sent {
        agent
            .send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("m{i}"), "text": format!("after the burst {i}")}))
            .await;
        agent.expect("ack").await;
    }

    let expected: Vec<String> = (0..sent).map(|i| format!("after the burst {i}")).collect();
    let mut texts: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while texts.len() < sent && tokio::time::Instant::now() < deadline {
        for f in visitor.drain_for(Duration::from_millis(200)).await {
            if f["type"] == "entry" {
                texts.push(f["entry"]["text"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    for f in visitor.drain_for(Duration::from_millis(300)).await {
        if f["type"] == "entry" {
            texts.push(f["entry"]["text"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(texts, expected, "each stored message once, in order");
    assert_eq!(visitor.closed, None, "caught up in the node, not closed");
    let metrics = &a.service.metrics;
    assert!(metrics.resyncs.with_label_values(&["lagged"]).get() >= 1);
    assert_eq!(metrics.slow_consumers.get(), 0);
    visitor
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "fine"}))
        .await;
    visitor.expect("ack").await;
    agent.expect_text("fine").await;
    cluster.cleanup().await;
}
