//! What the agent console needs around a chat, across two nodes: entries carry the id of the
//! agent who wrote them, a transfer's internal note reaches the receiving agent and never the
//! visitor (live, on resume, on a fresh connection), the visitor sees who left and who joined,
//! and the visitor panel and the roster of agents answer only whom they should.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const NOTE: &str = "VIP customer: refund already approved, ticket 5531";

async fn agent_id_of(cluster: &Cluster, username: &str) -> i64 {
    cluster
        .store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.username == username)
        .unwrap()
        .id
}

fn mentions_note(frames: &[Value]) -> bool {
    frames
        .iter()
        .any(|f| f.to_string().contains("refund already approved"))
}

sqlite_and_postgres!(transfer_note_reaches_the_agent_and_never_the_visitor => transfer_note_reaches_the_agent_and_never_the_visitor_sqlite, transfer_note_reaches_the_agent_and_never_the_visitor_postgres);

async fn transfer_note_reaches_the_agent_and_never_the_visitor(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    // The visitor on node a, with a browser and a page; the first agent on b.
    let mut first = available_agent(&cluster, &b, "ann", 2).await;
    let (vid, vtoken) = visitor_token(&a).await;
    let mut v = Client::connect_with_headers(
        &a,
        "visitor",
        &vtoken,
        &[(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
        )],
    )
    .await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/orders/1042", "title": "Order 1042"}))
        .await;
    // An earlier chat of this visitor, kept as an interaction.
    let earlier = v
        .request_chat(
            json!({"type": "request_chat", "name": "Vera", "question": "an earlier question"}),
        )
        .await;
    accept_offer(&mut first, &mut v, &earlier).await;
    first.send(json!({"type": "end", "chat_id": earlier})).await;
    v.expect("chat_ended").await;
    decide(&mut first, &earlier, "create").await;
    let chat = v.request_chat(json!({"type": "request_chat", "name": "Vera", "email": "vera@example.com", "question": "where is it?"})).await;
    accept_offer(&mut first, &mut v, &chat).await;
    let first_id = agent_id_of(&cluster, "ann").await;
    first
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a1", "text": "from ann"}))
        .await;
    let mine = first.expect_text("from ann").await;
    assert_eq!(mine["entry"]["author_id"], first_id.to_string());

    // A second agent on node a; a third who has nothing to do with the chat.
    let mut second = available_agent(&cluster, &a, "bob", 2).await;
    let second_id = agent_id_of(&cluster, "bob").await;
    cluster.agent("cyd", 2).await;
    let outsider = agent_token(&a, "cyd").await;
    let bob_token = agent_token(&b, "bob").await;
    let ann_token = agent_token(&a, "ann").await;

    // The roster shows who can take a transfer.
    let (status, roster) = get(&format!("{}/api/agents/roster", http(&b)), Some(&ann_token)).await;
    assert_eq!(status, 200, "{roster}");
    let bob = roster
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == second_id)
        .unwrap()
        .clone();
    assert_eq!(
        (bob["status"].as_str(), bob["can_take"].as_bool()),
        (Some("available"), Some(true))
    );
    let cyd = roster
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Agent cyd")
        .unwrap()
        .clone();
    assert_eq!(
        (cyd["status"].as_str(), cyd["can_take"].as_bool()),
        (Some("offline"), Some(false))
    );
    let (status, _) = get(&format!("{}/api/agents/roster", http(&b)), None).await;
    assert_eq!(status, 403, "no token");

    // A note over the limit is refused; nothing moves.
    let long = "x".repeat(1001);
    first
        .send(json!({"type": "transfer", "chat_id": chat, "to_agent": second_id, "note": long}))
        .await;
    assert_eq!(first.expect("error").await["code"], 4003);

    first
        .send(json!({"type": "transfer", "chat_id": chat, "to_agent": second_id, "note": NOTE}))
        .await;
    let assigned = second.expect("chat_assigned").await;
    assert_eq!(assigned["note"], NOTE);
    assert_eq!(assigned["from_agent_name"], "Agent ann");

    // The visitor sees who left and who joined, and nothing of the note.
    let left = v
        .expect_where("left", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "left"
        })
        .await;
    assert_eq!(left["entry"]["text"], "Agent ann left the chat");
    v.expect_where("joined", |f| {
        f["type"] == "entry" && f["entry"]["event"] == "joined" && f["entry"]["name"] == "Agent bob"
    })
    .await;
    let mut seen = v.drain_for(Duration::from_millis(300)).await;
    seen.extend([left]);
    assert!(!mentions_note(&seen), "{seen:?}");

    // The receiving agent replays the history: the earlier agent's message keeps its author.
    second
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    let old = second.expect_text("from ann").await;
    assert_eq!(old["entry"]["author_id"], first_id.to_string());
    second.expect("resumed").await;
    second
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "b1", "text": "bob here"}))
        .await;
    let bobs = v.expect_text("bob here").await;
    assert_eq!(bobs["entry"]["author_id"], second_id.to_string());

    // Resume on the visitor's live connection and on a fresh one on the other node.
    v.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    v.expect("resumed").await;
    let mut fresh = Client::visitor(&b, &vtoken).await;
    assert!(!fresh.welcome.to_string().contains("refund"));
    fresh
        .send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    let mut replay = vec![];
    loop {
        let f = fresh.expect_where("replay", |_| true).await;
        let done = f["type"] == "resumed";
        replay.push(f);
        if done {
            break;
        }
    }
    let events: Vec<&str> = replay
        .iter()
        .filter(|f| f["type"] == "entry")
        .map(|f| f["entry"]["event"].as_str().unwrap_or(""))
        .collect();
    assert!(
        events.contains(&"left") && events.contains(&"joined"),
        "{events:?}"
    );
    replay.extend(v.drain_for(Duration::from_millis(300)).await);
    assert!(!mentions_note(&replay), "{replay:?}");

    // The visitor panel: for the chat's agent only.
    let url = format!("{}/api/chats/{chat}/visitor", http(&b));
    let (status, panel) = get(&url, Some(&bob_token)).await;
    assert_eq!(status, 200, "{panel}");
    assert_eq!(panel["transfer_note"], NOTE);
    assert_eq!(panel["transferred_by"], "Agent ann");
    assert_eq!(panel["name"], "Vera");
    assert_eq!(panel["email"], "vera@example.com");
    assert_eq!(panel["email_verified"], false);
    assert_eq!(panel["queue"], "general");
    assert_eq!(panel["visitor_id"], vid.as_str());
    assert_eq!(panel["visitor"]["url"], "https://shop.example/orders/1042");
    assert!(panel["browser"].as_str().unwrap().contains("Chrome/131.0"));
    assert_eq!(panel["pages"][0]["title"], "Order 1042");
    // The earlier interaction shows once the flush has stored it.
    let found = eventually("the earlier interaction in the panel", || async {
        let (_, p) = get(&url, Some(&bob_token)).await;
        let list = p["interactions"].as_array().cloned().unwrap_or_default();
        list.iter()
            .find(|i| i["subject"] == "an earlier question")
            .cloned()
    })
    .await;
    assert!(found["id"].as_i64().is_some(), "{found}");
    for (who, token) in [
        ("the agent who let it go", &ann_token),
        ("an outsider", &outsider),
    ] {
        let (status, body) = get(&url, Some(token)).await;
        assert_eq!(status, 403, "{who}: {body}");
        assert!(!body.to_string().contains("refund"));
    }
    let (status, _) = get(&url, Some(&vtoken)).await;
    assert!(status == 401 || status == 403, "a visitor token: {status}");
    let (status, _) = get(
        &format!("{}/api/chats/{}/visitor", http(&b), "0".repeat(32)),
        Some(&bob_token),
    )
    .await;
    assert_eq!(status, 404);
    cluster.cleanup().await;
}
