//! The chat paths on Redis Cluster (3 masters: routing, transcripts and the flush stream land
//! on different shards; sharded pub/sub) and on Sentinel, including a failover mid-chat.

mod common;

use common::topology::{cli, Procs};
use common::*;
use serde_json::json;

/// Request, accept, talk both ways across two nodes, end, decide, flushed to SQL.
async fn chat_round_trip(
    cluster: &Cluster,
    a: &switchboard::app::Running,
    b: &switchboard::app::Running,
    agent_name: &str,
) {
    let mut agent = available_agent(cluster, b, agent_name, 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(a, "over the topology").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    both_ways(&mut visitor, &mut agent, &chat, "ping", "pong").await;
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    decide(&mut agent, &chat, "create").await;
    let m = eventually("flushed", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let texts: Vec<&str> = m.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "over the topology",
            format!("Agent {agent_name} joined the chat").as_str(),
            "ping",
            "pong",
            "Visitor ended the chat"
        ]
    );
    // Off duty, so the next request goes to the next step's agent.
    set_status(&mut agent, "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_paths_on_a_three_master_cluster() {
    let (_procs, url) = tokio::task::spawn_blocking(Procs::cluster).await.unwrap();
    let cluster = Cluster::with(Backend::Sqlite, |s| s.redis.url = url.clone()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    chat_round_trip(&cluster, &a, &b, "cleo").await;
    // Resume on the other node works across shards too.
    let mut agent2 = available_agent(&cluster, &a, "dora", 1).await;
    let (mut v, chat, _, token) = requesting_visitor(&b, "second").await;
    accept_offer(&mut agent2, &mut v, &chat).await;
    v.close().await;
    let mut v = Client::visitor(&a, &token).await;
    v.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    v.expect_text("second").await;
    v.expect("resumed").await;

    // Node A's subscriber connections to all three masters drop at once: A follows its
    // channels again, each on the master that owns it, and its connections catch up in place.
    let masters: Vec<u16> = url
        .split(['/', '?', '&', '='])
        .filter_map(|s| s.strip_prefix("127.0.0.1:"))
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(masters.len(), 3, "{url}");
    for port in &masters {
        let id = client_id_named(
            &cli(*port, &["CLIENT", "LIST"]),
            a.service.redis.subscriber_name(),
        );
        assert_eq!(cli(*port, &["CLIENT", "KILL", "ID", &id]).trim(), "1");
    }
    // The queue channel, which every node follows for as long as it runs: both nodes on it
    // again (each master counts its own shard's subscribers).
    let queue_channel = a.service.redis.keys.queue_channel();
    eventually("both nodes on the queue channel again", || async {
        let n: u32 = masters
            .iter()
            .map(|p| {
                let out = cli(*p, &["PUBSUB", "SHARDNUMSUB", &queue_channel]);
                out.lines()
                    .nth(1)
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .sum();
        (n == 2).then_some(())
    })
    .await;
    // The agent comes to node A too; the conversation goes on both ways, the visitor on the
    // connection it had.
    let mut agent2 = Client::agent(&a, &agent_token(&a, "dora").await).await;
    agent2
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    agent2.expect("resumed").await;
    agent2
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "d1", "text": "back"}))
        .await;
    v.expect_text("back").await;
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "hi again"}))
        .await;
    agent2.expect_text("hi again").await;
    // The three reconnects were taken as one: one round of subscribing and catching up. The
    // round is counted once every channel is followed again, which may come after the first
    // messages got through (they catch up from the stream meanwhile).
    let rounds = || {
        a.service
            .metrics
            .resyncs
            .with_label_values(&["reconnected"])
            .get()
    };
    eventually("the round of subscribing again counted", || async {
        (rounds() >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(rounds(), 1);
    a.drain().await;
    b.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_paths_on_sentinel_and_through_a_failover() {
    let (_procs, url, master, sentinel) =
        tokio::task::spawn_blocking(Procs::sentinel).await.unwrap();
    let cluster = Cluster::with(Backend::Sqlite, |s| s.redis.url = url.clone()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    chat_round_trip(&cluster, &a, &b, "erin").await;

    // A chat running while the sentinel promotes the replica carries on afterwards.
    let mut agent = available_agent(&cluster, &b, "fay", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "during failover").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    tokio::task::spawn_blocking(move || Procs::failover(sentinel, master))
        .await
        .unwrap();
    // Commands issued during the switch may fail with 4501 (unavailable, retry); a client
    // retries with the same client message id, which stores the message once.
    let deadline = tokio::time::Instant::now() + WAIT;
    let sent = loop {
        visitor.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "after", "text": "after failover"})).await;
        let f = visitor
            .expect_where("ack or error", |f| {
                f["type"] == "ack" || f["type"] == "error"
            })
            .await;
        if f["type"] == "ack" {
            break f;
        }
        assert_eq!(f["code"], 4501, "{f}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ack after the failover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(sent["client_msg_id"], "after");
    agent.expect_text("after failover").await;
    let entries = a.service.redis.entries_after(&chat, "", 100).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.text == "after failover")
            .count(),
        1
    );
}
