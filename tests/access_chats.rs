//! Who sees and writes what inside chats, across two nodes: links with a user name, the name an
//! invited chat's agent joins under, a refused accept, transfers and the agent's other tabs.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_pushed_pages_with_a_user_name_are_refused() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (mut v, mut ag, chat) = running_chat(&cluster, &a, &b, "uma").await;
    for (i, url) in [
        "https://shop.example@evil.example/",
        "https://shop.example:secret@evil.example/pay",
        "http://user@evil.example",
    ]
    .into_iter()
    .enumerate()
    {
        ag.send(json!({"type": "push_page", "chat_id": chat, "client_msg_id": format!("p{i}"), "url": url}))
            .await;
        let e = ag.expect("error").await;
        assert_eq!(e["code"], 4003, "{url}: {e}");
        assert!(e["message"].as_str().unwrap().contains("user name"), "{e}");
        ag.send(json!({"type": "send_link", "chat_id": chat, "client_msg_id": format!("l{i}"), "url": url}))
            .await;
        assert_eq!(ag.expect("error").await["code"], 4003, "{url}");
        v.send(json!({"type": "send_link", "chat_id": chat, "client_msg_id": format!("v{i}"), "url": url}))
            .await;
        assert_eq!(v.expect("error").await["code"], 4003, "{url}");
    }
    // Nothing of it reached the transcript: the visitor sees only the agent's next text.
    ag.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "t", "text": "after"}))
        .await;
    let seen = v.expect_text("after").await;
    assert_eq!(seen["entry"]["event"], "");
    for f in v.drain_for(Duration::from_millis(200)).await {
        assert_ne!(f["entry"]["event"], "push_page", "{f}");
        assert_ne!(f["entry"]["event"], "link", "{f}");
    }
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_from_an_agent_without_a_status_joins_under_the_stored_name() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    // The agent connects and invites at once: no `set_status`, so Redis holds no name.
    cluster.agent("nina", 2).await;
    let token = agent_token(&b, "nina").await;
    let mut agent = Client::agent(&b, &token).await;
    agent.expect("status").await;
    let (vid, vtoken) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &vtoken).await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/"}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    agent
        .send(json!({"type": "invite", "visitor_id": vid}))
        .await;
    let inv = v.expect("invitation").await;
    assert_eq!(inv["agent_name"], "Agent nina");
    let chat = inv["chat_id"].as_str().unwrap().to_string();
    v.send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    let started = v.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Agent nina");
    let joined = v
        .expect_where("joined", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "joined"
        })
        .await;
    assert_eq!(joined["entry"]["name"], "Agent nina");
    assert_eq!(joined["entry"]["text"], "Agent nina joined the chat");
    // A reload of the visitor's page replays the same names from the stream.
    let mut again = Client::visitor(&b, &vtoken).await;
    again
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    let replayed = again.expect("chat_started").await;
    assert_eq!(replayed["agent_name"], "Agent nina");
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_accept_relays_nothing_of_the_chat() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.frames_per_second = 10_000;
        s.limits.burst_frames = 10_000;
        s.limits.max_consecutive_errors = 10_000;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (mut v, mut owner, chat) = running_chat(&cluster, &a, &b, "ora").await;
    // Another agent on each node; neither has anything on offer.
    cluster.agent("oscar", 2).await;
    let mut others = Vec::new();
    for node in [&a, &b] {
        let mut o = Client::agent(node, &agent_token(node, "oscar").await).await;
        o.expect("status").await;
        others.push(o);
    }
    // Both sides of the chat type without pause while the other agent tries to take it.
    let typed = chat.clone();
    let typing = tokio::spawn(async move {
        for i in 0..300 {
            let f = json!({"type": "typing", "chat_id": typed, "typing": i % 2 == 0});
            v.send(f.clone()).await;
            owner.send(f).await;
        }
        (v, owner)
    });
    for o in others.iter_mut() {
        for _ in 0..40 {
            o.send(json!({"type": "accept", "chat_id": chat})).await;
        }
    }
    let (_v, _owner) = typing.await.unwrap();
    for o in others.iter_mut() {
        // Every accept is refused; anything else that arrived meanwhile stays in the backlog.
        for _ in 0..40 {
            let e = o.expect("error").await;
            assert_eq!(
                (e["ref"].as_str(), e["code"].as_u64()),
                (Some(chat.as_str()), Some(4006))
            );
        }
        // The queue's Waiting list (`waiting`) goes to every agent of the queue; it is not
        // the chat's traffic.
        let leaked: Vec<_> = o
            .drain_for(Duration::from_millis(300))
            .await
            .into_iter()
            .filter(|f| f["type"] != "waiting")
            .collect();
        assert!(
            leaked.is_empty(),
            "a refused accept let frames of the chat through: {leaked:?}"
        );
    }
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_transfer_no_tab_of_the_old_agent_follows_the_chat() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut tab1 = available_agent(&cluster, &b, "tia", 2).await;
    let mut tab2 = Client::agent(&a, &agent_token(&a, "tia").await).await;
    let (mut v, chat, _, _) = requesting_visitor(&a, "hello").await;
    accept_offer(&mut tab1, &mut v, &chat).await;
    // The second tab (another node) follows the chat too.
    tab2.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    tab2.expect("resumed").await;
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "m1", "text": "before"}))
        .await;
    tab2.expect_text("before").await;
    tab1.expect_text("before").await;

    let mut tom = available_agent(&cluster, &a, "tom", 2).await;
    let tom_id: i64 = tom.welcome["id"].as_str().unwrap().parse().unwrap();
    tab1.send(json!({"type": "transfer", "chat_id": chat, "to_agent": tom_id}))
        .await;
    tom.expect("chat_assigned").await;
    for tab in [&mut tab1, &mut tab2] {
        let f = tab.expect("chat_unfollowed").await;
        assert_eq!(
            (f["chat_id"].as_str(), f["reason"].as_str()),
            (Some(chat.as_str()), Some("transferred"))
        );
    }
    tom.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    tom.expect("resumed").await;
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "m2", "text": "after"}))
        .await;
    v.send(json!({"type": "typing", "chat_id": chat, "typing": true}))
        .await;
    tom.expect_text("after").await;
    // What the visitor sent after the transfer reaches none of the old agent's tabs (frames
    // from before it, such as the new agent joining, may still be in their backlog).
    for tab in [&mut tab1, &mut tab2] {
        for f in tab.drain_for(Duration::from_millis(500)).await {
            let after = f["type"] == "typing" || f["entry"]["text"] == "after";
            assert!(!after, "the old agent still gets the chat: {f}");
        }
    }
    // Nor can it write into it any more.
    tab2.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "x", "text": "still here"}))
        .await;
    assert_eq!(tab2.expect("error").await["code"], 4005);
    cluster.cleanup().await;
}

/// A visitor cannot take a chat: accept and pick are refused, each naming what only agents do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_can_neither_accept_nor_pick() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let a = cluster.node().await;
    cluster.agent("ann", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "may I?").await;
    for (kind, text) in [
        ("accept", "only agents accept chats"),
        ("pick", "only agents pick requests"),
    ] {
        visitor.send(json!({"type": kind, "chat_id": chat})).await;
        let e = visitor.expect("error").await;
        assert_eq!(
            (e["code"].as_u64(), e["message"].as_str()),
            (Some(4005), Some(text)),
            "{e}"
        );
    }
    cluster.cleanup().await;
}
