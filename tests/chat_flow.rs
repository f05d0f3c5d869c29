//! Reactive chat end to end: visitor on one node, agent on another, real Redis and SQL stores.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// An offer shows the visitor's request whichever routing pass made it: the request's own pass
/// (the agent was free) or a later one (here the agent comes back from away).
#[tokio::test]
async fn offers_show_the_request_whichever_pass_made_them() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "olly", 2).await;
    let check = |offer: serde_json::Value, chat: &str, question: &str| {
        assert_eq!(offer["chat_id"], chat);
        assert_eq!(offer["queue"], "general");
        assert_eq!(offer["name"], "Vera");
        assert_eq!(offer["email"], "vera@example.com");
        assert_eq!(offer["question"], question);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let expires = offer["expires_at"].as_i64().unwrap();
        assert!(expires > now && expires <= now + 30_000, "{offer}");
    };

    let (_v1, chat1, _, _) = requesting_visitor(&a, "first").await;
    check(agent.expect("offer").await, &chat1, "first");

    set_status(&mut agent, "away").await;
    let (_v2, chat2, _, _) = requesting_visitor(&a, "second").await;
    agent
        .send(json!({"type": "set_status", "status": "available"}))
        .await;
    check(agent.expect("offer").await, &chat2, "second");
}

/// An offer the agent has not answered is shown again, unchanged, when the agent connects
/// again (here on the other node): it is read back from the chat's routing record.
#[tokio::test]
async fn an_open_offer_is_shown_again_after_a_reconnect() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "rhea", 1).await;
    let (_v, chat, _, _) = requesting_visitor(&a, "still there?").await;
    let first = agent.expect("offer").await;
    agent.close().await;

    let token = agent_token(&a, "rhea").await;
    let mut again = Client::agent(&a, &token).await;
    let shown = again.expect("offer").await;
    assert_eq!(shown, first);
    assert_eq!(shown["chat_id"], chat.as_str());
    assert_eq!(shown["question"], "still there?");
}

/// The whole happy path, run against each SQL backend: request, offer, accept, talk both
/// ways across nodes, visitor ends, agent decides "create", the transcript lands in SQL and
/// the chat's Redis keys are gone.
async fn full_chat(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (mut visitor, chat, _vid, _) = requesting_visitor(&a, "Where is my order?").await;

    let offer = agent.expect("offer").await;
    assert_eq!(offer["chat_id"], chat.as_str());
    assert_eq!(offer["question"], "Where is my order?");
    assert_eq!(offer["email"], "vera@example.com");
    agent.send(json!({"type": "accept", "chat_id": chat})).await;
    let started = visitor.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Agent ann");
    agent.expect("chat_started").await;

    visitor
        .send(
            json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "hello from A"}),
        )
        .await;
    let ack = visitor.expect("ack").await;
    assert_eq!(ack["client_msg_id"], "v1");
    let got = agent.expect_text("hello from A").await;
    assert_eq!(got["entry"]["author"], "visitor");
    assert_eq!(got["entry"]["seq"], ack["seq"]);
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a1", "text": "hi from B"}))
        .await;
    agent.expect("ack").await;
    visitor.expect_text("hi from B").await;

    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    let ended = agent.expect("chat_ended").await;
    assert_eq!(ended["by"], "visitor");
    visitor.expect("chat_ended").await;

    decide(&mut agent, &chat, "create").await;

    let msg = eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(msg.decision, "create");
    assert!(msg.interaction_id.is_some());
    let texts: Vec<&str> = msg.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Where is my order?",
            "Agent ann joined the chat",
            "hello from A",
            "hi from B",
            "Visitor ended the chat"
        ]
    );
    assert!(msg.entries.windows(2).all(|w| w[0].at <= w[1].at));
    eventually("chat keys removed", || async {
        cluster.chat_keys_left(&chat).await.is_empty().then_some(())
    })
    .await;
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(full_chat => full_chat_sqlite, full_chat_postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_reroutes_to_the_next_agent_and_never_back() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut first = available_agent(&cluster, &b, "first", 1).await;
    let (_visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    first.expect("offer").await;
    // The second agent arrives while the offer is out: the chat is on offer to only one agent.
    let mut second = available_agent(&cluster, &a, "second", 1).await;
    assert!(second
        .drain_for(Duration::from_millis(300))
        .await
        .iter()
        .all(|f| f["type"] != "offer"));
    first.send(json!({"type": "deny", "chat_id": chat})).await;
    let revoked = first.expect("offer_revoked").await;
    assert_eq!(revoked["reason"], "denied");
    let offer = second.expect("offer").await;
    assert_eq!(offer["chat_id"], chat.as_str());
    second.send(json!({"type": "deny", "chat_id": chat})).await;
    second.expect("offer_revoked").await;
    // Both denied: nobody gets it again; it waits in the queue.
    let frames = first.drain_for(Duration::from_millis(500)).await;
    assert!(frames.iter().all(|f| f["type"] != "offer"), "{frames:?}");
    let rec = cluster_chat_state(&cluster, &a, &chat).await;
    assert_eq!(rec, "queued");
}

async fn cluster_chat_state(_c: &Cluster, node: &switchboard::app::Running, chat: &str) -> String {
    node.service
        .redis
        .chat_record(chat)
        .await
        .unwrap()
        .get("state")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_offer_times_out_and_goes_to_another_agent() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.offer_timeout_ms = 400).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut sleepy = available_agent(&cluster, &b, "sleepy", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    sleepy.expect("offer").await;
    let mut awake = available_agent(&cluster, &a, "awake", 1).await;
    let revoked = sleepy.expect("offer_revoked").await;
    assert_eq!(revoked["reason"], "timeout");
    let offer = awake.expect("offer").await;
    assert_eq!(offer["chat_id"], chat.as_str());
    // The late accept of the first agent is refused; the new one wins.
    sleepy
        .send(json!({"type": "accept", "chat_id": chat}))
        .await;
    let e = sleepy.expect("error").await;
    assert_eq!(e["code"], 4006);
    awake.send(json!({"type": "accept", "chat_id": chat})).await;
    visitor.expect("chat_started").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_close_ends_the_request_and_tells_the_visitor() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "closer", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "spam").await;
    agent.expect("offer").await;
    agent.send(json!({"type": "close", "chat_id": chat})).await;
    let ended = visitor.expect("chat_ended").await;
    assert_eq!(ended["by"], "agent");
    assert_eq!(ended["reason"], "Closed by agent");
    let msg = eventually("kept transcript", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(msg.decision, "keep");
    // Capacity is back: a new request is offered to the same agent.
    let (_v2, chat2, _, _) = requesting_visitor(&a, "real question").await;
    let offer = agent
        .expect_where("second offer", |f| f["type"] == "offer")
        .await;
    assert_eq!(offer["chat_id"], chat2.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ends_then_adds_to_an_existing_interaction_and_then_trashes() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "deb", 3).await;
    let token = agent_token(&b, "deb").await;

    // First chat: create an interaction.
    let (mut visitor, chat1, _vid, vtoken) = requesting_visitor(&a, "first").await;
    accept_offer(&mut agent, &mut visitor, &chat1).await;
    agent.send(json!({"type": "end", "chat_id": chat1})).await;
    let ended = visitor.expect("chat_ended").await;
    assert_eq!(ended["by"], "agent");
    decide(&mut agent, &chat1, "create").await;
    let m1 = eventually("first flushed", || async {
        cluster.store.message_by_chat(&chat1).await.unwrap()
    })
    .await;

    // Second chat of the same visitor: add it to that interaction.
    let chat2 = visitor
        .request_chat(json!({"type": "request_chat", "question": "second"}))
        .await;
    agent
        .expect_where("offer 2", |f| {
            f["type"] == "offer" && f["chat_id"] == chat2.as_str()
        })
        .await;
    agent
        .send(json!({"type": "accept", "chat_id": chat2}))
        .await;
    visitor
        .expect_where("started 2", |f| {
            f["type"] == "chat_started" && f["chat_id"] == chat2.as_str()
        })
        .await;
    let (status, list) = get(
        &format!("{}/api/chats/{chat2}/interactions", http(&b)),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], m1.interaction_id.unwrap());
    agent.send(json!({"type": "end", "chat_id": chat2})).await;
    agent
        .expect_where("ended 2", |f| {
            f["type"] == "chat_ended" && f["chat_id"] == chat2.as_str()
        })
        .await;
    // Adding to an interaction that is not this contact's is refused.
    agent.send(json!({"type": "decide", "chat_id": chat2, "decision": "add", "interaction_id": 999999})).await;
    assert_eq!(agent.expect("error").await["code"], 4004);
    agent.send(json!({"type": "decide", "chat_id": chat2, "decision": "add", "interaction_id": m1.interaction_id})).await;
    agent
        .expect_where("decided 2", |f| {
            f["type"] == "decided" && f["chat_id"] == chat2.as_str()
        })
        .await;
    let m2 = eventually("second flushed", || async {
        cluster.store.message_by_chat(&chat2).await.unwrap()
    })
    .await;
    assert_eq!(m2.interaction_id, m1.interaction_id);
    let (_, detail) = get(
        &format!(
            "{}/api/interactions/{}",
            http(&a),
            m1.interaction_id.unwrap()
        ),
        Some(&token),
    )
    .await;
    assert_eq!(detail["messages"].as_array().unwrap().len(), 2);

    // Third chat: trash. Recorded, not dropped.
    let _ = vtoken;
    visitor
        .send(json!({"type": "request_chat", "question": "third"}))
        .await;
    let chat3 = visitor
        .expect_where("queued 3", |f| {
            f["type"] == "queued" && f["chat_id"] != chat2.as_str()
        })
        .await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    agent
        .expect_where("offer 3", |f| {
            f["type"] == "offer" && f["chat_id"] == chat3.as_str()
        })
        .await;
    agent
        .send(json!({"type": "accept", "chat_id": chat3}))
        .await;
    agent
        .expect_where("started 3", |f| {
            f["type"] == "chat_started" && f["chat_id"] == chat3.as_str()
        })
        .await;
    visitor.send(json!({"type": "end", "chat_id": chat3})).await;
    agent
        .expect_where("ended 3", |f| {
            f["type"] == "chat_ended" && f["chat_id"] == chat3.as_str()
        })
        .await;
    agent
        .send(json!({"type": "decide", "chat_id": chat3, "decision": "trash"}))
        .await;
    agent
        .expect_where("decided 3", |f| {
            f["type"] == "decided" && f["chat_id"] == chat3.as_str()
        })
        .await;
    let m3 = eventually("third flushed", || async {
        cluster.store.message_by_chat(&chat3).await.unwrap()
    })
    .await;
    assert!(m3.trashed);
    assert_eq!(m3.decided_by, Some(agent_id(&cluster, "deb").await));
    assert!(m3.interaction_id.is_none());
}

async fn agent_id(c: &Cluster, username: &str) -> i64 {
    c.store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.username == username)
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_decision_in_time_keeps_the_chat() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.decision_timeout_ms = 300).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "idle", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    let m = eventually("kept", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(m.decision, "keep");
    assert!(
        m.interaction_id.is_some(),
        "a kept chat is a Message of its own Interaction"
    );
    // A late decision is refused, not applied twice.
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": "trash"}))
        .await;
    let e = agent.expect("error").await;
    assert!(e["code"] == 4004 || e["code"] == 4006, "{e}");
}

/// Many requests at once, agents accepting the instant an offer arrives: every visitor still
/// sees its chat start (the visitor's node follows the chat before the request exists, so a
/// route and accept on other nodes can never outrun it), and no chat is offered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_instant_accepts_all_start_for_the_visitor() {
    const N: usize = 12;
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agents = Vec::new();
    for i in 0..N {
        agents.push(available_agent(&cluster, &b, &format!("fast{i}"), 1).await);
    }
    let acceptors: Vec<_> = agents
        .into_iter()
        .map(|mut agent| {
            tokio::spawn(async move {
                let offer = agent.expect("offer").await;
                agent
                    .send(json!({"type": "accept", "chat_id": offer["chat_id"]}))
                    .await;
                agent.expect("chat_started").await;
                offer["chat_id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let visitors: Vec<_> = (0..N)
        .map(|i| {
            let node = &a;
            async move {
                let (mut v, chat, _, _) = requesting_visitor(node, &format!("q{i}")).await;
                let started = v.expect("chat_started").await;
                assert_eq!(started["chat_id"], chat.as_str());
                chat
            }
        })
        .collect();
    let mut visitor_chats = futures_util::future::join_all(visitors).await;
    let mut accepted = Vec::new();
    for h in acceptors {
        accepted.push(h.await.unwrap());
    }
    visitor_chats.sort();
    accepted.sort();
    assert_eq!(
        visitor_chats, accepted,
        "each chat accepted by exactly one agent"
    );
}

/// The cluster's agent sums that the gauges report follow every change of an agent's load,
/// status and capacity, whichever node made it, and match the agents' own records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_totals_follow_offers_accepts_ends_and_status() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let redis = &a.service.redis;
    let totals_become = |what: &'static str, want: (i64, i64)| async move {
        eventually(what, || async {
            let t = redis.agent_totals().await.unwrap();
            ((t.load, t.free) == want).then_some(())
        })
        .await
    };
    totals_become("nobody yet", (0, 0)).await;
    let mut ann = available_agent(&cluster, &b, "ann", 2).await;
    let mut bob = available_agent(&cluster, &a, "bob", 3).await;
    totals_become("two available agents", (0, 5)).await;
    set_status(&mut bob, "away").await;
    totals_become("bob away", (0, 2)).await;

    let (mut v1, chat1, _, _) = requesting_visitor(&a, "first").await;
    accept_offer(&mut ann, &mut v1, &chat1).await;
    totals_become("ann holds one chat", (1, 1)).await;
    let (_v2, chat2, _, _) = requesting_visitor(&a, "second").await;
    let c2 = chat2.clone();
    ann.expect_where("second offer", move |f| {
        f["type"] == "offer" && f["chat_id"] == c2.as_str()
    })
    .await;
    totals_become("ann full: one chat, one offer", (2, 0)).await;
    ann.send(json!({"type": "close", "chat_id": chat2})).await;
    totals_become("the offer closed", (1, 1)).await;
    set_status(&mut ann, "away").await;
    totals_become("ann away with her chat", (1, 0)).await;
    set_status(&mut ann, "available").await;
    set_status(&mut bob, "available").await;
    totals_become("both back", (1, 4)).await;
    v1.send(json!({"type": "end", "chat_id": chat1})).await;
    v1.expect("chat_ended").await;
    totals_become("the chat ended", (0, 5)).await;

    // The sums are what the records add up to.
    let (mut load, mut free) = (0, 0);
    for agent in [&ann, &bob] {
        let r = redis
            .agent_record(agent.welcome["id"].as_str().unwrap())
            .await
            .unwrap();
        let num = |k: &str| r[k].parse::<i64>().unwrap();
        load += num("load");
        if r["status"] == "available" {
            free += num("max") - num("load");
        }
    }
    let t = redis.agent_totals().await.unwrap();
    assert_eq!((t.load, t.free), (load, free));
    cluster.cleanup().await;
}
