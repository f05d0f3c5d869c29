//! Inside a running chat, across two nodes: links, pushed pages, typing and receipts, and
//! transfers to another agent or back to a queue.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_pushed_pages_typing_and_receipts() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (mut v, mut ag, chat) = running_chat(&cluster, &a, &b, "lia").await;

    v.send(json!({"type": "send_link", "chat_id": chat, "client_msg_id": "l1", "url": "https://shop.example/item?id=7", "title": "<b>item</b>"})).await;
    v.expect("ack").await;
    let link = ag
        .expect_where("link", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "link"
        })
        .await;
    assert_eq!(link["entry"]["text"], "https://shop.example/item?id=7");
    assert_eq!(link["entry"]["data"]["title"], "<b>item</b>");
    for bad in [
        "javascript:alert(1)",
        "data:text/html,<script>x</script>",
        "ftp://x.example/f",
    ] {
        v.send(json!({"type": "send_link", "chat_id": chat, "client_msg_id": "bad", "url": bad}))
            .await;
        assert_eq!(v.expect("error").await["code"], 4003, "{bad}");
        ag.send(
            json!({"type": "push_page", "chat_id": chat, "client_msg_id": "badpush", "url": bad}),
        )
        .await;
        assert_eq!(ag.expect("error").await["code"], 4003, "{bad}");
    }
    // Only agents push pages.
    v.send(json!({"type": "push_page", "chat_id": chat, "client_msg_id": "p", "url": "https://x.example/"})).await;
    assert_eq!(v.expect("error").await["code"], 4005);
    ag.send(json!({"type": "push_page", "chat_id": chat, "client_msg_id": "p1", "url": "https://shop.example/checkout"})).await;
    ag.expect("ack").await;
    let pushed = v
        .expect_where("push", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "push_page"
        })
        .await;
    assert_eq!(
        pushed["entry"]["data"]["url"],
        "https://shop.example/checkout"
    );
    assert_eq!(pushed["entry"]["kind"], "system");

    // Typing and receipts are relayed, not stored.
    v.send(json!({"type": "typing", "chat_id": chat, "typing": true}))
        .await;
    let t = ag.expect("typing").await;
    assert_eq!(
        (t["by"].as_str(), t["typing"].as_bool()),
        (Some("visitor"), Some(true))
    );
    let seq = pushed["entry"]["seq"].as_str().unwrap();
    v.send(json!({"type": "receipt", "chat_id": chat, "seq": seq, "state": "read"}))
        .await;
    let r = ag.expect("receipt").await;
    assert_eq!(
        (r["by"].as_str(), r["seq"].as_str(), r["state"].as_str()),
        (Some("visitor"), Some(seq), Some("read"))
    );
    v.send(json!({"type": "receipt", "chat_id": chat, "seq": "nonsense", "state": "read"}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4007);
    let stored = a.service.redis.entries_after(&chat, "", 100).await.unwrap();
    let events: Vec<&str> = stored.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        vec!["", "joined", "link", "push_page"],
        "typing and receipts are not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_to_an_agent_and_back_to_a_queue() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (mut v, mut first, chat) = running_chat(&cluster, &a, &b, "uma").await;
    v.send(
        json!({"type": "send", "chat_id": chat, "client_msg_id": "1", "text": "before transfer"}),
    )
    .await;
    first.expect_text("before transfer").await;
    let mut second = available_agent(&cluster, &a, "vic", 1).await;
    let second_id = cluster
        .store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.username == "vic")
        .unwrap()
        .id;

    // Unavailable target: refused, nothing changes.
    set_status(&mut second, "away").await;
    first
        .send(json!({"type": "transfer", "chat_id": chat, "to_agent": second_id}))
        .await;
    assert_eq!(first.expect("error").await["code"], 4006);
    set_status(&mut second, "available").await;

    first
        .send(json!({"type": "transfer", "chat_id": chat, "to_agent": second_id}))
        .await;
    let assigned = second.expect("chat_assigned").await;
    assert_eq!(assigned["from_agent_name"], "Agent uma");
    second
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    second.expect_text("before transfer").await;
    second.expect("resumed").await;
    let started = v
        .expect_where("new agent", |f| {
            f["type"] == "chat_started" && f["agent_name"] == "Agent vic"
        })
        .await;
    assert_eq!(started["chat_id"], chat.as_str());
    // The first agent no longer writes into it; the second does.
    first.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "old", "text": "not mine any more"})).await;
    assert!(matches!(
        first.expect("error").await["code"].as_u64(),
        Some(4005)
    ));
    second.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "2", "text": "hi, I take over"})).await;
    v.expect_text("hi, I take over").await;

    // Back to the queue: offered to someone else (not the agent who let it go).
    second
        .send(json!({"type": "transfer", "chat_id": chat, "to_queue": "general"}))
        .await;
    let offer = first
        .expect_where("offer again", |f| f["type"] == "offer")
        .await;
    assert_eq!(offer["chat_id"], chat.as_str());
    let frames = second.drain_for(Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| f["type"] != "offer"), "{frames:?}");
    // The first agent takes it again: the live "joined" entry arrives before its resume from
    // the start, and the replay still brings everything said meanwhile.
    first.send(json!({"type": "accept", "chat_id": chat})).await;
    first
        .expect_where("joined again", |f| {
            f["type"] == "chat_started" && f["chat_id"] == chat.as_str()
        })
        .await;
    first
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    first.expect_text("hi, I take over").await;
    first.expect_text("before transfer").await;
    first.expect("resumed").await;
    second
        .send(json!({"type": "transfer", "chat_id": chat, "to_queue": "no-such-queue"}))
        .await;
    assert!(second.expect("error").await["code"].as_u64().unwrap() >= 4004);
}
