//! Bad input gets a clear error frame or status with its documented code; nothing is stored,
//! the connection is kept where that makes sense, and the node carries on.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn code_of(c: &mut Client) -> u64 {
    c.expect("error").await["code"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_oversized_frames() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.max_frame_bytes = 4096;
        s.limits.max_message_chars = 100;
    })
    .await;
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    v.send_raw(Message::Text("{not json".into())).await;
    assert_eq!(code_of(&mut v).await, 4000);
    v.send(json!({"type": "teleport"})).await;
    assert_eq!(code_of(&mut v).await, 4000);
    v.send(json!({"type": "end", "chat_id": "x", "surprise": true}))
        .await;
    assert_eq!(code_of(&mut v).await, 4000);
    v.send_raw(Message::Binary(vec![0xc1, 0xff].into())).await;
    assert_eq!(code_of(&mut v).await, 4000);
    // Still connected and served.
    v.send(json!({"type": "ping", "nonce": 7})).await;
    assert_eq!(v.expect("pong").await["nonce"], 7);
    // Invalid fields on a request.
    v.send(json!({"type": "request_chat", "email": "not-an-address"}))
        .await;
    assert_eq!(code_of(&mut v).await, 4003);
    v.send(json!({"type": "request_chat", "queue": "no-such-queue"}))
        .await;
    assert_eq!(code_of(&mut v).await, 4004);
    v.send(json!({"type": "request_chat", "queue": "Bad Queue!"}))
        .await;
    assert_eq!(code_of(&mut v).await, 4003);
    v.send(json!({"type": "request_chat", "question": "x".repeat(101)}))
        .await;
    assert_eq!(code_of(&mut v).await, 4002);
    assert!(
        cluster
            .redis_keys()
            .await
            .iter()
            .all(|k| !k.contains(":chat:")),
        "nothing stored for refused requests"
    );
    // A frame over the limit closes the connection with 1009.
    v.send_raw(Message::Text("x".repeat(5000).into())).await;
    assert_eq!(v.expect_close().await, 1009);
    // The node is unaffected.
    let mut again = Client::visitor(&a, &token).await;
    again.send(json!({"type": "ping"})).await;
    again.expect("pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_messages_too_fast_and_too_many_errors() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.max_message_chars = 50;
        s.limits.frames_per_second = 5;
        s.limits.burst_frames = 5;
        s.limits.max_consecutive_errors = 8;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "nia", 1).await;
    let (mut v, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut v, &chat).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    v.send(
        json!({"type": "send", "chat_id": chat, "client_msg_id": "long", "text": "y".repeat(51)}),
    )
    .await;
    let e = v.expect("error").await;
    assert_eq!(e["code"], 4002);
    assert_eq!(e["ref"], "long");
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "blank", "text": "   "}))
        .await;
    assert_eq!(code_of(&mut v).await, 4003);
    let stored = a.service.redis.entries_after(&chat, "", 100).await.unwrap();
    assert!(stored
        .iter()
        .all(|e| e.client_msg_id != "long" && e.client_msg_id != "blank"));
    // Rate: a burst over the limit is refused with 4100 (not queued), naming the refused send
    // and when to retry, then the connection, refusing frame after frame, is closed with 4429.
    for i in 0..20 {
        if i % 2 == 0 {
            v.send(json!({"type": "ping", "nonce": i})).await;
        } else {
            v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("burst-{i}"), "text": "again"}))
                .await;
        }
    }
    let mut frames = Vec::new();
    for _ in 0..20 {
        frames.extend(v.drain_for(Duration::from_millis(500)).await);
        if v.closed.is_some() {
            break;
        }
    }
    assert!(
        frames.iter().any(|f| f["type"] == "error"
            && f["code"] == 4100
            && f["ref"].as_str().is_some_and(|r| r.starts_with("burst-"))
            && f["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0)),
        "{frames:?}"
    );
    assert_eq!(v.closed, Some(4429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_writes_a_chat_that_is_not_theirs() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut owner_agent = available_agent(&cluster, &b, "olga", 1).await;
    let (mut victim, chat, _, _) = requesting_visitor(&a, "private").await;
    owner_agent.expect("offer").await;
    let mut intruder_agent = available_agent(&cluster, &a, "pete", 1).await;

    // An agent who was not offered the chat cannot take, deny, read, write, end or decide it.
    intruder_agent
        .send(json!({"type": "accept", "chat_id": chat}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4006);
    intruder_agent
        .send(json!({"type": "deny", "chat_id": chat}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4006);
    owner_agent
        .send(json!({"type": "accept", "chat_id": chat}))
        .await;
    victim.expect("chat_started").await;
    intruder_agent
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4005);
    intruder_agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "i", "text": "let me in"}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4005);
    intruder_agent
        .send(json!({"type": "end", "chat_id": chat}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4005);
    intruder_agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": "trash"}))
        .await;
    assert_eq!(code_of(&mut intruder_agent).await, 4005);
    let pete = agent_token(&a, "pete").await;
    let (status, _) = get(
        &format!("{}/api/chats/{chat}/interactions", http(&a)),
        Some(&pete),
    )
    .await;
    assert_eq!(status, 403);

    // Another visitor (own valid token) cannot resume or write into it either.
    let (_, other_token) = visitor_token(&a).await;
    let mut other = Client::visitor(&b, &other_token).await;
    other
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    assert_eq!(code_of(&mut other).await, 4005);
    other
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "o", "text": "hi"}))
        .await;
    assert_eq!(code_of(&mut other).await, 4005);
    other.send(json!({"type": "end", "chat_id": chat})).await;
    assert_eq!(code_of(&mut other).await, 4005);
    // Visitors cannot act as agents.
    other.send(json!({"type": "accept", "chat_id": chat})).await;
    assert_eq!(code_of(&mut other).await, 4005);
    other
        .send(json!({"type": "set_status", "status": "available"}))
        .await;
    assert_eq!(code_of(&mut other).await, 4005);

    // Stale or forged sequence numbers.
    victim
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": "garbage"}))
        .await;
    assert_eq!(code_of(&mut victim).await, 4007);
    victim
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": "99999999999999-0"}))
        .await;
    assert_eq!(code_of(&mut victim).await, 4007);
    victim
        .send(json!({"type": "resume", "chat_id": "no-such-chat", "last_seq": ""}))
        .await;
    assert_eq!(code_of(&mut victim).await, 4004);

    // Nothing of the intruders was stored; the chat works on.
    let entries = a.service.redis.entries_after(&chat, "", 100).await.unwrap();
    assert!(entries
        .iter()
        .all(|e| e.text != "let me in" && e.text != "hi"));
    assert_eq!(
        a.service.redis.chat_record(&chat).await.unwrap()["state"],
        "active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_and_bad_http_requests() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let a = cluster.node().await;
    cluster.agent("quinn", 1).await;
    // A token signed with another key: the socket is closed at once with 4401.
    let forged = switchboard::chat::identity::Tokens::new(&"z".repeat(40), 100, 100).issue(
        &switchboard::chat::identity::Identity::Visitor { id: "v".into() },
        0,
    );
    for (role, token) in [
        ("visitor", forged.as_str()),
        ("visitor", "garbage"),
        ("agent", "garbage"),
        ("agent", ""),
    ] {
        let url = format!("ws://{}/ws/{role}?token={token}", a.addr);
        assert_eq!(close_code_of(url).await, 4401, "{role} {token}");
    }
    // A visitor token does not open the agent socket.
    let (_, vt) = visitor_token(&a).await;
    let url = format!("ws://{}/ws/agent?token={vt}", a.addr);
    assert_eq!(close_code_of(url).await, 4401);

    let base = http(&a);
    let (s, body) = post(
        &format!("{base}/api/agent/login"),
        json!({"username": "quinn", "password": "wrong-password"}),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(body["code"], 4005);
    let (s, _) = post(
        &format!("{base}/api/agent/login"),
        json!({"username": "nobody", "password": "secret-password"}),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let token = agent_token(&a, "quinn").await;
    let (s, _) = post(
        &format!("{base}/api/admin/agents"),
        json!({"username": "x", "password": "12345678"}),
        Some(&token),
    )
    .await;
    assert_eq!(s, 403, "agents cannot create agents");
    let (s, _) = get(
        &format!("{base}/api/interactions/not-a-number"),
        Some(&token),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = get(&format!("{base}/api/interactions/424242"), Some(&token)).await;
    assert_eq!(s, 404);
    let (s, _) = get(
        &format!("{base}/api/interactions?limit=100000"),
        Some(&token),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = get(&format!("{base}/api/interactions"), None).await;
    assert_eq!(s, 403);
    let (s, _) = get(&format!("{base}/api/interactions"), Some("Bearer-garbage")).await;
    assert_eq!(s, 403);
    // A forged visitor token is not renewed: a fresh identity is issued instead.
    let (s, v) = post(
        &format!("{base}/api/visitor/session"),
        json!({"token": forged}),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(v["visitor_id"], "v");
    let (s, _) = get(&format!("{base}/readyz"), None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_outside_the_configured_sites_is_refused() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.allowed_origins = vec!["https://shop.example".into()]
    })
    .await;
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ws/visitor?token={token}", a.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(close_code_of(req).await, 4403);
    let mut req = format!("ws://{}/ws/visitor?token={token}", a.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://shop.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}
