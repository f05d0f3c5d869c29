//! Proactive chat: an agent invites a visitor on the site; accepted, it is a chat like any
//! other and ends as a Message; declined or expired, the agent is told and the Message keeps
//! the invitation. Two agents inviting at once: one wins. Invitations to visitors who left,
//! and frames from the wrong party, are refused.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::app::Running;

/// A visitor on `node` who has viewed a page; returns (client, visitor id).
async fn browsing(node: &Running) -> (Client, String) {
    let (vid, token) = visitor_token(node).await;
    let mut v = Client::visitor(node, &token).await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/shoes", "title": "Shoes"}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    (v, vid)
}

async fn invite(agent: &mut Client, vid: &str, message: &str) {
    agent
        .send(json!({"type": "invite", "visitor_id": vid, "message": message}))
        .await;
}

async fn error_code(c: &mut Client) -> u64 {
    c.expect("error").await["code"].as_u64().unwrap()
}

async fn load_of(node: &Running, agent: &Client) -> String {
    let id = agent.welcome["id"].as_str().unwrap();
    let r = node.service.redis.agent_record(id).await.unwrap();
    r.get("load").cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepted_invitation_is_a_chat_that_ends_as_a_message() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ivy", 2).await;
    agent.send(json!({"type": "watch_visitors"})).await;
    agent.expect("visitors_snapshot").await;
    let (mut v, vid) = browsing(&a).await;

    invite(&mut agent, &vid, "Hello! Can I help you find a size?").await;
    let inv = v.expect("invitation").await;
    let chat = inv["chat_id"].as_str().unwrap().to_string();
    assert_eq!(inv["agent_name"], "Agent ivy");
    assert_eq!(inv["message"], "Hello! Can I help you find a size?");
    assert!(inv["expires_at"].as_i64().unwrap() > switchboard::chat::now_ms());
    // Watchers see the visitor as chatting; the invitation holds one of the agent's chats.
    agent
        .expect_where("chatting update", |f| {
            f["type"] == "visitors_changed"
                && f["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["visitor_id"] == vid.as_str() && c["visitor"]["chatting"] == true)
        })
        .await;
    assert_eq!(load_of(&b, &agent).await, "1");

    v.send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    let opening = v.expect_text("Hello! Can I help you find a size?").await;
    assert_eq!(opening["entry"]["author"], "agent");
    let started = v.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Agent ivy");
    let result = agent.expect("invitation_result").await;
    assert_eq!(result["result"], "accepted");
    assert_eq!(result["chat_id"], chat.as_str());
    assert_eq!(result["visitor_id"], vid.as_str());

    // The console resumes the chat: the invitation opens the transcript.
    agent
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    let first = agent
        .expect_text("Hello! Can I help you find a size?")
        .await;
    assert_eq!(first["entry"]["author"], "agent");
    agent.expect("resumed").await;
    // The widget resumes too (a no-op replay: it has everything).
    v.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    v.expect("resumed").await;

    v.send(
        json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "Yes, size 42?"}),
    )
    .await;
    v.expect("ack").await;
    agent.expect_text("Yes, size 42?").await;
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a1", "text": "In stock."}))
        .await;
    agent.expect("ack").await;
    v.expect_text("In stock.").await;

    v.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    decide(&mut agent, &chat, "create").await;
    let msg = eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let texts: Vec<&str> = msg.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Hello! Can I help you find a size?",
            "Agent ivy joined the chat",
            "Yes, size 42?",
            "In stock.",
            "Visitor ended the chat"
        ]
    );
    assert_eq!(msg.decision, "create");
    assert!(msg.accepted_at.is_some());
    assert_eq!(
        msg.agent_id.map(|i| i.to_string()).as_deref(),
        agent.welcome["id"].as_str()
    );
    assert_eq!(load_of(&b, &agent).await, "0");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn declined_and_expired_invitations_tell_the_agent_and_are_kept() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.invitation_timeout_ms = 1_500).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "dee", 1).await;
    let (mut v, vid) = browsing(&a).await;

    invite(&mut agent, &vid, "Need help?").await;
    let chat = v.expect("invitation").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    v.send(json!({"type": "decline_invitation", "chat_id": chat}))
        .await;
    let r = agent.expect("invitation_result").await;
    assert_eq!(r["result"], "declined");
    assert_eq!(r["chat_id"], chat.as_str());
    assert_eq!(r["visitor_id"], vid.as_str());
    let msg = eventually("declined invitation kept", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let texts: Vec<&str> = msg.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["Need help?", "Invitation declined"]);
    assert_eq!(msg.decision, "keep");
    assert_eq!(msg.end_reason, "Invitation declined");
    assert_eq!(load_of(&b, &agent).await, "0");
    // Accepting what was declined is refused (gone from Redis once flushed).
    v.send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    let code = error_code(&mut v).await;
    assert!(code == 4006 || code == 4004, "{code}");

    // The capacity came back: the agent (max 1) invites again; nobody answers.
    invite(&mut agent, &vid, "Still there?").await;
    let chat2 = v.expect("invitation").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = agent.expect("invitation_result").await;
    assert_eq!(r["result"], "expired");
    assert_eq!(r["chat_id"], chat2.as_str());
    let gone = v.expect("chat_ended").await;
    assert_eq!(gone["chat_id"], chat2.as_str());
    assert_eq!(gone["reason"], "Invitation expired");
    let msg = eventually("expired invitation kept", || async {
        cluster.store.message_by_chat(&chat2).await.unwrap()
    })
    .await;
    let texts: Vec<&str> = msg.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["Still there?", "Invitation expired"]);
    assert_eq!(load_of(&b, &agent).await, "0");
    v.send(json!({"type": "accept_invitation", "chat_id": chat2}))
        .await;
    let code = error_code(&mut v).await;
    assert!(code == 4006 || code == 4004, "{code}");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_agents_inviting_at_once_exactly_one_wins() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut x = available_agent(&cluster, &a, "xan", 3).await;
    let mut y = available_agent(&cluster, &b, "yul", 3).await;
    for round in 0..3 {
        let (mut v, vid) = browsing(if round % 2 == 0 { &a } else { &b }).await;
        let msg = json!({"type": "invite", "visitor_id": vid, "message": "Hi"});
        tokio::join!(x.send(msg.clone()), y.send(msg.clone()));
        let (fx, fy, fv) = tokio::join!(
            x.drain_for(Duration::from_millis(1_000)),
            y.drain_for(Duration::from_millis(1_000)),
            v.drain_for(Duration::from_millis(1_000)),
        );
        let refused = |frames: &Vec<Value>| {
            frames
                .iter()
                .filter(|f| f["type"] == "error" && f["code"] == 4006)
                .count()
        };
        assert_eq!(refused(&fx) + refused(&fy), 1, "{fx:?} {fy:?}");
        let loser = if refused(&fx) == 1 { &fx } else { &fy };
        let e = loser.iter().find(|f| f["type"] == "error").unwrap();
        assert!(e["message"]
            .as_str()
            .unwrap()
            .contains("already invited or chatting"));
        let invitations: Vec<&Value> = fv.iter().filter(|f| f["type"] == "invitation").collect();
        assert_eq!(invitations.len(), 1, "{fv:?}");
        let winner = if refused(&fx) == 1 {
            "Agent yul"
        } else {
            "Agent xan"
        };
        assert_eq!(invitations[0]["agent_name"], winner);
    }
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invitations_to_visitors_who_left_and_frames_from_the_wrong_party() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.visitor_grace_ms = 1_000).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "lee", 1).await;

    // Unknown, and gone after the grace period.
    invite(&mut agent, "nobody-here", "Hi").await;
    assert_eq!(error_code(&mut agent).await, 4004);
    let (v, vid) = browsing(&a).await;
    v.close().await;
    eventually("visitor gone", || async {
        let keys = cluster.redis_keys().await;
        (!keys.iter().any(|k| k.ends_with(&format!("visitor:{vid}")))).then_some(())
    })
    .await;
    invite(&mut agent, &vid, "Hi").await;
    let e = agent.expect("error").await;
    assert_eq!(e["code"], 4004, "{e}");
    assert!(
        cluster
            .redis_keys()
            .await
            .iter()
            .all(|k| !k.contains(":chat:")),
        "nothing stored for a refused invitation"
    );

    // A pending invitation is only its visitor's to answer.
    let (mut v2, vid2) = browsing(&a).await;
    invite(&mut agent, &vid2, "Hi").await;
    let chat = v2.expect("invitation").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut other, _) = browsing(&b).await;
    other
        .send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    assert_eq!(error_code(&mut other).await, 4005);
    other
        .send(json!({"type": "decline_invitation", "chat_id": chat}))
        .await;
    assert_eq!(error_code(&mut other).await, 4005);
    other
        .send(json!({"type": "accept_invitation", "chat_id": "no-such-chat"}))
        .await;
    assert_eq!(error_code(&mut other).await, 4004);
    // Visitor-only frames from an agent, agent-only frames from a visitor.
    agent
        .send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    assert_eq!(error_code(&mut agent).await, 4005);
    agent
        .send(json!({"type": "decline_invitation", "chat_id": chat}))
        .await;
    assert_eq!(error_code(&mut agent).await, 4005);
    other
        .send(json!({"type": "invite", "visitor_id": vid2}))
        .await;
    assert_eq!(error_code(&mut other).await, 4005);
    // The agent (max 1) is at capacity while the invitation is pending.
    let (_v3, vid3) = browsing(&a).await;
    invite(&mut agent, &vid3, "Hi").await;
    assert_eq!(error_code(&mut agent).await, 4006);
    // A bad visitor id and an over-long message are invalid fields.
    invite(&mut agent, &"x".repeat(65), "Hi").await;
    assert_eq!(error_code(&mut agent).await, 4003);
    // The invitation still works for its visitor.
    v2.send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    v2.expect("chat_started").await;
    assert_eq!(
        agent.expect("invitation_result").await["result"],
        "accepted"
    );
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
