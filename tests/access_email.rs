//! A typed e-mail is not an identity: a stranger who types someone's address in the pre-chat
//! form is shown as typed (unverified), is "new", sees none of that person's history and is
//! never filed under their contact, through a request or an invitation. Only the site's signed
//! identify links a visitor to a contact. Visitor on one node, agent on the other.

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard::app::Running;
use switchboard::chat::identity::identify_signature;
use switchboard::store::{FlushOutcome, TranscriptRecord};

const SECRET: &str = "identify-secret-of-the-shop-0123456789";
const VICTIM: &str = "victim@example.com";

/// The victim's earlier chat, filed under the victim's contact: returns its interaction id.
async fn victims_history(cluster: &Cluster) -> i64 {
    let t = TranscriptRecord {
        chat_id: "victims-earlier-chat".into(),
        visitor_id: "victims-browser".into(),
        contact_name: Some("Victoria".into()),
        contact_email: Some(VICTIM.into()),
        visitor_email: Some(VICTIM.into()),
        email_verified: true,
        agents: vec![],
        question: Some("Refund for order 4471 to my new card".into()),
        queue: "general".into(),
        agent_id: None,
        started_at: 1_000,
        accepted_at: None,
        ended_at: 2_000,
        end_reason: "Agent ended the chat".into(),
        decision: "create".into(),
        interaction_id: None,
        decided_by: None,
        decided_at: 3_000,
        entries: vec![],
    };
    match cluster.store.write_transcript(&t).await.unwrap() {
        FlushOutcome::Written {
            interaction_id: Some(i),
            ..
        } => i,
        other => panic!("{other:?}"),
    }
}

/// A visitor on the site (one page view), with its socket and id.
async fn browsing(node: &Running) -> (Client, String) {
    let (vid, token) = visitor_token(node).await;
    let mut v = Client::visitor(node, &token).await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/"}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    (v, vid)
}

/// The latest record of `vid` in the site-visitors changes an agent watches.
async fn watched(agent: &mut Client, vid: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let found = agent
        .expect_where("visitor change", |f| {
            f["type"] == "visitors_changed"
                && f["changes"].as_array().unwrap().iter().any(|c| {
                    c["visitor_id"] == vid && !c["visitor"].is_null() && pred(&c["visitor"])
                })
        })
        .await;
    found["changes"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["visitor_id"] == vid && !c["visitor"].is_null())
        .unwrap()["visitor"]
        .clone()
}

async fn interactions_of(node: &Running, chat: &str, token: &str) -> Vec<Value> {
    let (status, v) = get(
        &format!("{}/api/chats/{chat}/interactions", http(node)),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_email_links_to_nobody_and_a_signed_one_does() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.auth.identify_secret = SECRET.into()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let victims = victims_history(&cluster).await;
    let victim_contact = cluster
        .store
        .contact_for("", Some(VICTIM))
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let token = agent_token(&b, "ann").await;
    agent.send(json!({"type": "watch_visitors"})).await;
    agent.expect("visitors_snapshot").await;

    // A stranger types the victim's address.
    let (mut stranger, vid) = browsing(&a).await;
    let chat = stranger.request_chat(json!({"type": "request_chat", "name": "Vic", "email": VICTIM, "question": "my refund?"})).await;
    let offer = agent.expect("offer").await;
    assert_eq!(
        (offer["email"].as_str(), offer["email_verified"].as_bool()),
        (Some(VICTIM), Some(false))
    );
    let seen = watched(&mut agent, &vid, |v| v["email"] == VICTIM).await;
    assert_eq!(seen["email_verified"], false);
    assert_eq!(
        seen["new"], true,
        "a typed e-mail does not make a stranger known: {seen}"
    );
    agent.send(json!({"type": "accept", "chat_id": chat})).await;
    stranger.expect("chat_started").await;
    // The wrap-up lists none of the victim's interactions, and will not add to one.
    assert!(interactions_of(&b, &chat, &token).await.is_empty());
    stranger.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": "add", "interaction_id": victims}))
        .await;
    assert_eq!(agent.expect("error").await["code"], 4004);
    decide(&mut agent, &chat, "create").await;
    let msg = eventually("flushed", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_ne!(
        msg.contact_id, victim_contact,
        "filed under the victim's contact"
    );
    assert_eq!(msg.visitor_email.as_deref(), Some(VICTIM));
    assert!(!msg.email_verified);
    assert_eq!(
        cluster
            .store
            .interactions_of_contact(victim_contact)
            .await
            .unwrap()
            .len(),
        1
    );
    let (_, detail) = get(
        &format!(
            "{}/api/interactions/{}",
            http(&a),
            msg.interaction_id.unwrap()
        ),
        Some(&token),
    )
    .await;
    assert_eq!(detail["messages"][0]["visitor_email"], VICTIM);
    assert_eq!(detail["messages"][0]["email_verified"], false);

    // Invited afterwards, the same stranger still carries only the typed address.
    agent
        .send(json!({"type": "invite", "visitor_id": vid}))
        .await;
    let inv = stranger.expect("invitation").await;
    let invited = inv["chat_id"].as_str().unwrap().to_string();
    stranger
        .send(json!({"type": "accept_invitation", "chat_id": invited}))
        .await;
    stranger.expect("chat_started").await;
    // It lists the stranger's own earlier chat (same browser), never the victim's.
    let ids: Vec<Value> = interactions_of(&b, &invited, &token)
        .await
        .into_iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(msg.interaction_id.unwrap())]);
    let record = a.service.redis.chat_record(&invited).await.unwrap();
    assert_eq!(record.get("email_verified").map(String::as_str), Some("0"));
    stranger
        .send(json!({"type": "end", "chat_id": invited}))
        .await;

    // The victim, vouched for by the site's signature, is known and sees their history.
    let (mut victim, victim_vid) = browsing(&a).await;
    let sig = identify_signature(SECRET, VICTIM);
    victim
        .send(json!({"type": "identify", "email": VICTIM, "signature": sig}))
        .await;
    let seen = watched(&mut agent, &victim_vid, |v| v["email_verified"] == true).await;
    assert_eq!(seen["new"], false);
    // A typed address in the form changes nothing once the site vouched for one.
    let chat = victim
        .request_chat(json!({"type": "request_chat", "email": "someone-else@example.com"}))
        .await;
    let offer = agent
        .expect_where("victim's offer", |f| {
            f["type"] == "offer" && f["chat_id"] == chat.as_str()
        })
        .await;
    assert_eq!(
        (offer["email"].as_str(), offer["email_verified"].as_bool()),
        (Some(VICTIM), Some(true))
    );
    agent.send(json!({"type": "accept", "chat_id": chat})).await;
    victim.expect("chat_started").await;
    let listed = interactions_of(&b, &chat, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], victims);
    victim.send(json!({"type": "end", "chat_id": chat})).await;
    agent
        .expect_where("ended", |f| {
            f["type"] == "chat_ended" && f["chat_id"] == chat.as_str()
        })
        .await;
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": "add", "interaction_id": victims}))
        .await;
    agent
        .expect_where("decided", |f| {
            f["type"] == "decided" && f["chat_id"] == chat.as_str()
        })
        .await;
    let msg = eventually("flushed", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    assert_eq!(
        (msg.contact_id, msg.interaction_id),
        (victim_contact, Some(victims))
    );
    assert!(msg.email_verified);
    cluster.cleanup().await;
}
