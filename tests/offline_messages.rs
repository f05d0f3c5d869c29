//! Leave a message when nobody is there: stored durably as an interaction of kind
//! `offline_message` (the typed e-mail stays unverified, on the message only), limited per
//! visitor and per IP across nodes, worked by agents of the queue as an inbox (claim: one wins
//! across nodes), and announced by e-mail to a real SMTP server (Python's aiosmtpd, started
//! here), from the notification stream even when the node that took the job died and the
//! server was down.

mod common;

use common::smtp::SmtpSink;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// What a visitor's `leave_message` frame says, with the visitor's own text.
fn left(message: &str) -> Value {
    json!({"type": "leave_message", "name": "Vera", "email": "Vera@Example.com", "message": message,
           "page_url": "https://shop.example.com/pricing"})
}

async fn inbox_has(agent: &mut Client, id: &str, status: &str) -> Value {
    let (id, status) = (id.to_string(), status.to_string());
    agent
        .expect_where("inbox change", move |f| {
            f["type"] == "inbox_changed"
                && f["item"]["id"] == id.as_str()
                && f["item"]["status"] == status.as_str()
        })
        .await
}

async fn max_wait_then_message(backend: Backend) {
    let cluster = Cluster::with(backend, |s| s.chat.max_wait_ms = 1_000).await;
    cluster.store.ensure_queue("general").await.unwrap();
    let a = cluster.node().await;
    let (vid, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;
    visitor.send(json!({"type": "watch_queue"})).await;
    let status = visitor.expect("queue_status").await;
    assert_eq!(status["open"], false);
    assert_eq!(status["max_wait_ms"], 1_000);
    visitor
        .send(json!({"type": "request_chat", "name": "Vera", "question": "Where is parcel 42?"}))
        .await;
    let queued = visitor.expect("queued").await;
    let chat = queued["chat_id"].as_str().unwrap().to_string();

    // The widget offers a message after max_wait_ms; the visitor's question comes along.
    let mut frame = left("Where is parcel 42?\nPlease write back.");
    frame["chat_id"] = json!(chat);
    visitor.send(frame).await;
    let ended = visitor.expect("chat_ended").await;
    assert_eq!(ended["reason"], "Customer Rejected");
    let id = visitor.expect("message_left").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let m = cluster.store.offline_message(&id).await.unwrap().unwrap();
    assert_eq!(m.message, "Where is parcel 42?\nPlease write back.");
    assert_eq!(m.email, "Vera@Example.com");
    assert_eq!(m.page_url, "https://shop.example.com/pricing");
    assert_eq!(m.queue, "general");
    assert_eq!(m.status, "open");
    let (interaction, _) = cluster
        .store
        .interaction(m.interaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        interaction.subject,
        "Where is parcel 42?\nPlease write back."
    );
    // The typed e-mail is not an identity: the message sits on the visitor's anonymous contact.
    let contact = cluster
        .store
        .contact_for(&vid, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.id, m.contact_id);
    assert_eq!(contact.email, None);
    let by_email = cluster
        .store
        .contact_for("", Some("vera@example.com"))
        .await
        .unwrap();
    assert_eq!(by_email, None);
    cluster.cleanup().await;
}

sqlite_and_postgres!(max_wait_then_message => max_wait_then_a_message_keeps_the_visitors_text_sqlite, max_wait_then_a_message_keeps_the_visitors_text_postgres);

async fn claimed_on_the_other_node(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("ines", 2).await;
    cluster.agent("otto", 2).await;
    let (ines_token, otto_token) = (agent_token(&b, "ines").await, agent_token(&a, "otto").await);
    let mut ines = Client::agent(&b, &ines_token).await;
    ines.expect("status").await;

    let (_, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;
    visitor.send(left("Call me back, please.")).await;
    let id = visitor.expect("message_left").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let seen = inbox_has(&mut ines, &id, "open").await;
    assert_eq!(seen["item"]["message"], "Call me back, please.");
    assert_eq!(seen["item"]["email_verified"], false);
    let (status, list) = get(&format!("{}/api/inbox", http(&b)), Some(&ines_token)).await;
    assert_eq!(status, 200);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));

    // Both agents claim at once, on different nodes: exactly one wins.
    let claim = |node: String, tok: String, id: String| async move {
        post(
            &format!("{node}/api/inbox/{id}/claim"),
            json!({}),
            Some(&tok),
        )
        .await
    };
    let ((s1, b1), (s2, b2)) = tokio::join!(
        claim(http(&b), ines_token.clone(), id.clone()),
        claim(http(&a), otto_token.clone(), id.clone())
    );
    let mut codes = [s1, s2];
    codes.sort();
    assert_eq!(codes, [200, 409], "{b1} / {b2}");
    let (winner, loser_body) = if s1 == 200 {
        (ines_token.clone(), b2)
    } else {
        (otto_token.clone(), b1)
    };
    assert_eq!(loser_body["code"], 4006);
    let claimed = inbox_has(&mut ines, &id, "claimed").await;
    assert!(claimed["item"]["claimed_by_name"]
        .as_str()
        .unwrap()
        .starts_with("Agent "));

    // Done by the winner; the open inbox no longer lists it, the full one does.
    let (status, body) = post(
        &format!("{}/api/inbox/{id}/done", http(&a)),
        json!({}),
        Some(&winner),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    inbox_has(&mut ines, &id, "done").await;
    let (_, open) = get(&format!("{}/api/inbox", http(&a)), Some(&ines_token)).await;
    assert!(!open
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));
    let (_, all) = get(&format!("{}/api/inbox?done=1", http(&a)), Some(&ines_token)).await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));
    cluster.cleanup().await;
}

sqlite_and_postgres!(claimed_on_the_other_node => a_message_left_while_nobody_is_there_is_claimed_on_the_other_node_sqlite, a_message_left_while_nobody_is_there_is_claimed_on_the_other_node_postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_limited_per_visitor_across_nodes_and_bad_ones_refused() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.offline.per_visitor_per_hour = 2).await;
    cluster.store.ensure_queue("general").await.unwrap();
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (_, token) = visitor_token(&a).await;
    let mut on_a = Client::visitor(&a, &token).await;
    let mut on_b = Client::visitor(&b, &token).await;
    on_a.send(left("one")).await;
    on_a.expect("message_left").await;
    on_b.send(left("two")).await;
    on_b.expect("message_left").await;
    on_a.send(left("three")).await;
    let e = on_a.expect("error").await;
    assert_eq!(e["code"], 4100);

    let (_, other) = visitor_token(&b).await;
    let mut v = Client::visitor(&b, &other).await;
    for (bad, code) in [
        (
            json!({"type": "leave_message", "email": "not-an-address", "message": "x"}),
            4003,
        ),
        (
            json!({"type": "leave_message", "email": "a@b.co", "message": "  "}),
            4003,
        ),
        (
            json!({"type": "leave_message", "email": "a@b.co", "message": "x", "page_url": "javascript:alert(1)"}),
            4003,
        ),
        (
            json!({"type": "leave_message", "email": "a@b.co", "message": "x", "queue": "nope"}),
            4004,
        ),
        (
            json!({"type": "leave_message", "email": "a@b.co", "message": "x".repeat(4001)}),
            4002,
        ),
    ] {
        v.send(bad.clone()).await;
        let e = v.expect("error").await;
        assert_eq!(e["code"], code, "{bad}");
    }
    cluster.cleanup().await;
}

/// The node that took the notification job dies (killed) while the SMTP server is down; the
/// job stays in the stream, and once the server is up a node started later claims it and sends
/// it. A second message goes out directly. Each message is announced once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_survives_a_dead_node_and_a_server_that_was_down() {
    let port = SmtpSink::free_port();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
        s.mail.from = "chat@example.com".into();
        s.mail.notify_to = "team@example.com".into();
        s.mail.timeout_ms = 2_000;
        s.mail.claim_idle_ms = 500;
    })
    .await;
    cluster.store.ensure_queue("general").await.unwrap();
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;

    // Only node A runs: its worker takes the job, the server is not there, A dies.
    visitor
        .send(left("Server down, still want an answer"))
        .await;
    let first = visitor.expect("message_left").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = cluster
        .store
        .offline_message(&first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.notified_at, None);
    a.kill();

    let sink = SmtpSink::start(port).await;
    let b = cluster.node().await;
    let (_, token) = visitor_token(&b).await;
    let mut visitor = Client::visitor(&b, &token).await;
    visitor.send(left("Second message")).await;
    visitor.expect("message_left").await;
    let mails = eventually("both notifications", || async {
        let r = sink.received();
        (r.len() >= 2).then_some(r)
    })
    .await;
    let all = mails.join("\n");
    assert!(all.contains("Server down, still want an answer"), "{all}");
    assert!(all.contains("Second message"));
    assert!(all.contains("To: team@example.com"));
    assert!(all.contains("not verified"));
    assert!(all.contains("Reply-To: Vera@Example.com"));
    eventually("marked notified", || async {
        cluster
            .store
            .offline_message(&first)
            .await
            .unwrap()
            .and_then(|m| m.notified_at)
    })
    .await;
    // Each message is announced once.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(sink.received().len(), 2);
    drop(b);
    cluster.cleanup().await;
}
