//! Visitors who vanish, clients who reconnect elsewhere, nodes that crash or drain.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use switchboard::chat::Party;
use switchboard::protocol::Decision;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_who_closes_the_browser_mid_chat_ends_it_after_the_grace_period() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.visitor_grace_ms = 600).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "gina", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.close().await;
    let ended = agent.expect("chat_ended").await;
    assert_eq!(ended["reason"], "Visitor has closed the browser");
    assert_eq!(ended["by"], "system");
    decide(&mut agent, &chat, "create").await;
    let m = eventually("flushed", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(
        m.entries.last().unwrap().text,
        "Visitor has closed the browser"
    );
    assert_eq!(m.end_reason, "Visitor has closed the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_who_leaves_before_any_agent_accepted_is_customer_rejected() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.visitor_grace_ms = 600).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "hal", 1).await;
    let (visitor, chat, _, _) = requesting_visitor(&a, "hello?").await;
    agent.expect("offer").await;
    visitor.close().await;
    let revoked = agent.expect("offer_revoked").await;
    assert_eq!(revoked["chat_id"], chat.as_str());
    assert_eq!(revoked["reason"], "customer_rejected");
    let m = eventually("kept", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(m.end_reason, "Customer Rejected");
    assert_eq!(m.decision, "keep");
    let texts: Vec<&str> = m.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["hello?", "Customer Rejected"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_back_within_the_grace_period_on_another_node_keeps_the_chat() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.visitor_grace_ms = 1_500).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ivy", 1).await;
    let (mut visitor, chat, _, token) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = Client::visitor(&b, &token).await;
    assert_eq!(back.welcome["chats"][0]["chat_id"], chat.as_str());
    assert_eq!(back.welcome["chats"][0]["state"], "active");
    back.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    back.expect("resumed").await;
    // Well past the grace period, the chat still runs.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    back.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "x", "text": "still here"}))
        .await;
    back.expect("ack").await;
    agent.expect_text("still here").await;
    let frames = agent.drain_for(Duration::from_millis(100)).await;
    assert!(
        frames.iter().all(|f| f["type"] != "chat_ended"),
        "{frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_to_another_node_replays_exactly_what_was_missed() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "jo", 1).await;
    let agent_token = agent_token(&b, "jo").await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    for i in 0..3 {
        visitor.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("m{i}"), "text": format!("before {i}")})).await;
        visitor.expect_where("ack", |f| f["type"] == "ack").await;
    }
    let last_seen = agent.expect_text("before 2").await["entry"]["seq"]
        .as_str()
        .unwrap()
        .to_string();
    agent.close().await;
    // While the agent is away, the visitor keeps writing.
    for i in 0..5 {
        visitor.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("w{i}"), "text": format!("while away {i}")})).await;
        visitor.expect_where("ack", |f| f["type"] == "ack").await;
    }
    // The agent comes back on the other node and resumes from its last sequence number.
    let mut agent = Client::agent(&a, &agent_token).await;
    assert_eq!(agent.welcome["chats"][0]["chat_id"], chat.as_str());
    agent
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": last_seen}))
        .await;
    let resumed = agent.expect("resumed").await;
    let frames = agent.drain_for(Duration::from_millis(200)).await;
    let mut texts: Vec<String> = frames
        .iter()
        .filter(|f| f["type"] == "entry")
        .map(|f| f["entry"]["text"].as_str().unwrap().to_string())
        .collect();
    // Live traffic after the resume.
    visitor.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "after", "text": "after resume"})).await;
    texts.push(
        agent.expect_text("after resume").await["entry"]["text"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let expected: Vec<String> = (0..5)
        .map(|i| format!("while away {i}"))
        .chain(["after resume".to_string()])
        .collect();
    assert_eq!(texts, expected);
    assert_ne!(resumed["last_seq"], "");

    // A resend of an acknowledged message (same client message id) is stored once.
    visitor.close().await;
    let mut visitor = Client::visitor(&b, &vtoken).await;
    visitor
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    visitor.expect("resumed").await;
    visitor
        .send(
            json!({"type": "send", "chat_id": chat, "client_msg_id": "w1", "text": "while away 1"}),
        )
        .await;
    let ack = visitor.expect("ack").await;
    let frames = agent.drain_for(Duration::from_millis(300)).await;
    assert!(
        frames.iter().all(|f| f["type"] != "entry"),
        "duplicate delivered: {frames:?}"
    );
    let all = b
        .service
        .redis
        .entries_after(&chat, "", 1000)
        .await
        .unwrap();
    assert_eq!(all.iter().filter(|e| e.text == "while away 1").count(), 1);
    assert_eq!(
        all.iter().find(|e| e.client_msg_id == "w1").unwrap().seq,
        ack["seq"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_timer_fires_on_another_node_when_the_visitors_node_crashes() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.visitor_grace_ms = 800).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "kim", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    a.kill();
    let ended = agent.expect("chat_ended").await;
    assert_eq!(ended["reason"], "Visitor has closed the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_left_by_a_crashed_node_is_completed_by_another_exactly_once() {
    let cluster = Cluster::new(Backend::Postgres).await;
    let a = cluster.node().await;
    let mut agent = available_agent(&cluster, &a, "lee", 1).await;
    let agent_id = cluster.store.agents().await.unwrap()[0].id;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;

    // Node A dies; its service object still reaches Redis, so it records the decision and
    // queues the flush job, but no worker of A will ever read it.
    let svc = a.service.clone();
    a.kill();
    let party = Party::Agent {
        id: agent_id,
        name: "Agent lee".into(),
        max_chats: 1,
        queues: vec!["general".into()],
        session: 1,
        supervisor: false,
    };
    svc.decide(&party, &chat, Decision::Create, None)
        .await
        .unwrap();
    // A consumer that takes the job and crashes before acknowledging it: either A's own
    // worker (its blocking read was already in flight when A died) or another dead consumer.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let jobs = format!("{}{{f}}:jobs", cluster.prefix);
    redis_cli(&[
        "XREADGROUP",
        "GROUP",
        "flush",
        "crashed-node",
        "COUNT",
        "10",
        "STREAMS",
        &jobs,
        ">",
    ]);
    assert!(
        redis_cli(&["XPENDING", &jobs, "flush"]).starts_with('1'),
        "the job is pending with a dead consumer"
    );
    assert!(cluster
        .store
        .message_by_chat(&chat)
        .await
        .unwrap()
        .is_none());

    // Two healthy nodes race to take it over.
    let (b, c) = (cluster.node().await, cluster.node().await);
    let m = eventually("taken over and flushed", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(m.decision, "create");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // One interaction for the chat's contact (the visitor's own: a typed e-mail names none).
    assert_eq!(
        cluster
            .store
            .interactions_of_contact(m.contact_id)
            .await
            .unwrap()
            .len(),
        1
    );
    let pending = redis_cli(&["XPENDING", &jobs, "flush"]);
    assert!(pending.starts_with('0'), "no job left pending: {pending}");
    b.drain().await;
    c.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_node_sends_clients_elsewhere_and_nothing_is_lost() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "max", 1).await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "1", "text": "one"}))
        .await;
    let seen = visitor.expect_text("one").await["entry"]["seq"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = get(&format!("{}/readyz", http(&a)), None).await;
    assert_eq!(status, 200);
    let drain = tokio::spawn(a.drain());
    assert_eq!(visitor.expect_close().await, 4503);
    drain.await.unwrap();
    agent.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "2", "text": "two (while moving)"})).await;
    agent.expect("ack").await;
    let mut visitor = Client::visitor(&b, &vtoken).await;
    visitor
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": seen}))
        .await;
    visitor.expect_text("two (while moving)").await;
    visitor.expect("resumed").await;
}

/// A node dropped without a drain or a kill (its owner went away) closes its sockets as a
/// drain would, rather than leaving their tasks waiting on a signal that no longer exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_node_closes_its_sockets_as_a_drain() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (_, vtoken) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &vtoken).await;
    drop(a);
    assert_eq!(visitor.expect_close().await, 4503);
    // The visitor carries on through the other node.
    let mut visitor = Client::visitor(&b, &vtoken).await;
    visitor.send(json!({"type": "ping", "nonce": 1})).await;
    visitor.expect("pong").await;
}

/// A visitor whose browser stops reading is cut off as a slow consumer once its small outbound
/// queue is full (its node never buffers without bound), and when it comes back and resumes it
/// gets every message, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_cut_off_and_resumes_without_loss() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.outbound_queue = 64;
        s.limits.frames_per_second = 100_000;
        s.limits.burst_frames = 100_000;
        // The agent writes far faster and more than a person: its identity's rate and the
        // transcript cap are lifted too.
        s.abuse.agent_frames_per_second = 100_000;
        s.abuse.agent_burst_frames = 100_000;
        s.abuse.transcript_max_entries = 100_000;
        s.abuse.transcript_max_bytes = 1 << 30;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "jo", 1).await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;

    // The visitor reads nothing from here on; the agent writes until the visitor's node gives
    // up on it (its socket buffers fill, then its queue). Bounded: 20,000 x 3.9 KB at most.
    let padding = "x".repeat(3900);
    let mut sent = 0;
    while a.service.metrics.slow_consumers.get() == 0 && sent < 20_000 {
        // In steps smaller than the queue, so the agent (who reads) keeps up with its echoes.
        for _ in 0..20 {
            agent.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("s{sent}"), "text": format!("{sent} {padding}")})).await;
            sent += 1;
        }
        agent.drain_for(Duration::from_millis(20)).await;
    }
    assert!(
        a.service.metrics.slow_consumers.get() >= 1,
        "no slow consumer after {sent} messages"
    );

    // What reached the visitor before the cut, then the close (4408, or the bare TCP close
    // when even the close frame no longer fit).
    let mut seen = Vec::new();
    let code = loop {
        let frames = visitor.drain_for(Duration::from_millis(500)).await;
        seen.extend(
            frames
                .into_iter()
                .filter(|f| f["type"] == "entry" && f["entry"]["author"] == "agent"),
        );
        if let Some(code) = visitor.closed {
            break code;
        }
    };
    assert!(code == 4408 || code == 1006, "closed with {code}");
    assert!(seen.len() < sent, "the visitor was cut off before the end");
    let last_seq = seen
        .last()
        .map(|f| f["entry"]["seq"].as_str().unwrap().to_string())
        .unwrap_or_default();

    // Back on the other node: the rest, in order, nothing twice.
    let mut visitor = Client::visitor(&b, &vtoken).await;
    visitor
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": last_seq}))
        .await;
    let mut texts: Vec<String> = seen
        .iter()
        .map(|f| f["entry"]["text"].as_str().unwrap().to_string())
        .collect();
    while texts.len() < sent {
        let f = visitor
            .expect_where("replayed entry", |f| {
                f["type"] == "entry" && f["entry"]["author"] == "agent"
            })
            .await;
        texts.push(f["entry"]["text"].as_str().unwrap().to_string());
    }
    let numbers: Vec<usize> = texts
        .iter()
        .map(|t| t.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..sent).collect::<Vec<_>>());
    cluster.cleanup().await;
}

/// Many connections following and leaving the same channels at once on one node: every
/// subscribe and unsubscribe of a channel stays in order, so a channel that still has a
/// follower is still subscribed (its traffic arrives) and one without is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_follow_and_unfollow_keep_subscriptions_right() {
    use switchboard::chat::hub::{Follower, Inbound, Out};
    let cluster = Cluster::new(Backend::Sqlite).await;
    let a = cluster.node().await;
    let svc = a.service.clone();
    let base = svc.metrics.subscriptions.get();
    let channels: Vec<String> = (0..20)
        .map(|i| svc.redis.keys.chat_channel(&format!("churn{i}")))
        .collect();
    // 20 channels x 10 connections, each following and leaving 5 times, all at once; on the
    // even channels connection 0 follows once more at the end and stays.
    let mut tasks = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for conn in 0..10u64 {
            let (svc, channel) = (svc.clone(), channel.clone());
            tasks.push(tokio::spawn(async move {
                let f = Follower::new(16);
                let id = 1_000_000 + (c as u64) * 100 + conn;
                for _ in 0..5 {
                    svc.hub.follow(&channel, id, f.clone()).await.unwrap();
                    tokio::task::yield_now().await;
                    svc.hub.unfollow(&channel, id).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut stayed = Vec::new();
    for channel in channels.iter().step_by(2) {
        let f = Follower::new(16);
        svc.hub.follow(channel, 42, f.clone()).await.unwrap();
        stayed.push((channel.clone(), f));
    }
    assert_eq!(svc.metrics.subscriptions.get(), base + 10);
    // Traffic on a followed channel arrives through Redis.
    for (channel, f) in &stayed {
        svc.redis
            .publish(channel, r#"{"relay":{"type":"pong","nonce":7}}"#.into())
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), f.recv())
            .await
            .expect("traffic of a followed channel arrives");
        assert!(matches!(got, Inbound::Out(Out::Frame(_))));
    }
    for (channel, _) in &stayed {
        svc.hub.unfollow(channel, 42).await;
    }
    assert_eq!(svc.metrics.subscriptions.get(), base);
    cluster.cleanup().await;
}
