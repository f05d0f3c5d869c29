//! Data protection on Redis with SQLite and PostgreSQL, across two nodes: an export holds
//! what was stored (transcripts, interactions, files, live chat and visit); an erasure ends
//! the live chat, removes the SQL rows, the files, the Redis state and the webhook bodies,
//! and leaves an audit entry with counts only. Retention: `retention.rs`.

mod common;

use common::accounts::admin;
use common::integrations::*;
use common::local_files::*;
use common::*;
use serde_json::json;
use std::time::Duration;

async fn view(v: &mut Client, url: &str) {
    v.send(json!({"type": "page_view", "url": url, "title": "Shop"}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
}

/// A chat that ends and is stored, with a file; then a second one left running; the visitor
/// leaves the page (its grace period keeps the chat). Export on one node, erase on the other.
async fn export_then_erase(backend: Backend) {
    let dir = files_dir();
    let cluster = Cluster::with(backend, files_in(&dir)).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &b, "root").await;
    let (status, _) = post(
        &format!("{}/api/admin/webhooks", http(&b)),
        json!({ "url": rx.url, "secret": SECRET, "events": ["chat.requested", "chat.ended"] }),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201);

    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (mut visitor, chat1, vid, vtoken) = requesting_visitor(&a, "Where is my order?").await;
    view(&mut visitor, "https://shop.example/orders").await;
    accept_offer(&mut agent, &mut visitor, &chat1).await;
    visitor
        .send(
            json!({"type": "send", "chat_id": chat1, "client_msg_id": "v1", "text": "order 1234"}),
        )
        .await;
    agent.expect_text("order 1234").await;
    let file = upload(
        &a,
        &chat1,
        &vtoken,
        "note.txt",
        "text/plain",
        b"my invoice".to_vec(),
    )
    .await;
    agent
        .expect_where("file", |f| f["entry"]["event"] == "file")
        .await;
    visitor.send(json!({"type": "end", "chat_id": chat1})).await;
    agent.expect("chat_ended").await;
    decide(&mut agent, &chat1, "create").await;
    eventually("the first chat stored", || async {
        cluster.store.message_by_chat(&chat1).await.unwrap()
    })
    .await;

    // A message left while the chat was over: on the same (anonymous) contact.
    visitor
        .send(json!({"type": "leave_message", "email": "vera@example.com",
                     "message": "please call me back"}))
        .await;
    let left = visitor.expect("message_left").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let chat2 = visitor
        .request_chat(json!({"type": "request_chat", "question": "One more thing"}))
        .await;
    accept_offer(&mut agent, &mut visitor, &chat2).await;
    visitor
        .send(
            json!({"type": "send", "chat_id": chat2, "client_msg_id": "v2", "text": "still live"}),
        )
        .await;
    agent.expect_text("still live").await;
    eventually("the webhook events stored", || async {
        (rx.delivered().len() >= 3).then_some(())
    })
    .await;

    // Find the contact (from the other node) and export it.
    let (status, found) = get(
        &format!("{}/api/admin/contacts?visitor_id={vid}", http(&a)),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let contact = found[0]["id"].as_i64().unwrap();
    let (status, doc) = get(
        &format!("{}/api/admin/contacts/{contact}/export", http(&a)),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["contact"]["id"], contact);
    assert_eq!(doc["visitor_ids"], json!([vid]));
    assert_eq!(doc["interactions"].as_array().unwrap().len(), 2, "{doc}");
    let offline = doc["offline_messages"].as_array().unwrap();
    assert_eq!(offline.len(), 1, "{doc}");
    assert_eq!(offline[0]["uid"], left.as_str());
    assert_eq!(offline[0]["message"], "please call me back");
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["chat_id"], chat1.as_str());
    let text = doc.to_string();
    assert!(
        text.contains("order 1234") && text.contains("still live"),
        "{doc}"
    );
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{doc}");
    assert_eq!(files[0]["meta"]["id"], file.as_str());
    assert_eq!(files[0]["meta"]["name"], "note.txt");
    let link = files[0]["download"].as_str().unwrap();
    let body = reqwest::Client::new()
        .get(format!("{}{link}", http(&b)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "my invoice", "the link downloads the file");
    let live = doc["live"]["chats"].as_array().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["chat_id"], chat2.as_str());
    let visits = doc["live"]["visits"].as_array().unwrap();
    assert_eq!(visits.len(), 1, "{doc}");
    assert_eq!(visits[0]["pages"][0]["url"], "https://shop.example/orders");

    // The visitor leaves the page; the chat stays within the grace period. Erase on node A.
    visitor.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, erased) = post(
        &format!("{}/api/admin/contacts/{contact}/erase", http(&a)),
        json!({}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{erased}");
    let e = &erased["erased"];
    assert_eq!(e["contacts"], 1, "{erased}");
    assert_eq!(
        e["messages"], 2,
        "both chats, the live one closed and stored first"
    );
    assert_eq!(e["files"], 1);
    assert_eq!(e["offline_messages"], 1, "{erased}");
    assert_eq!(e["interactions"], 3, "two chats and the offline message");
    assert_eq!(e["live_chats_closed"], 1);
    assert!(e["webhook_events"].as_u64().unwrap() >= 3, "{erased}");
    let ended = agent
        .expect_where("chat_ended", |f| {
            f["type"] == "chat_ended" && f["chat_id"] == chat2.as_str()
        })
        .await;
    assert_eq!(ended["reason"], "Closed for a data erasure request");

    // SQL, files, Redis and webhook bodies: nothing left about the visitor.
    let store = &cluster.store;
    assert!(store.contact(contact).await.unwrap().is_none());
    assert!(store.offline_message(&left).await.unwrap().is_none());
    for chat in [&chat1, &chat2] {
        assert!(store.message_by_chat(chat).await.unwrap().is_none());
        let event = format!("evt_{chat}_requested");
        assert!(store.event(&event).await.unwrap().is_none(), "{event}");
    }
    assert!(store
        .find_contacts(None, Some(&vid))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        stored_objects(&dir, &file),
        0,
        "the file and its sidecar are gone"
    );
    let left: Vec<String> = cluster
        .redis_keys()
        .await
        .into_iter()
        .filter(|k| k.contains(&vid) || k.contains(&chat1) || k.contains(&chat2))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let timers = redis_cli(&[
        "zrange",
        &format!("{}{{r}}:timers", cluster.prefix),
        "0",
        "-1",
    ]);
    assert!(
        !timers.contains(&vid) && !timers.contains(&chat2),
        "{timers}"
    );
    // No transcript of the closed chat went out to the webhook receiver.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !rx.received()
            .iter()
            .any(|r| r.event_type == "chat.ended" && r.body["data"]["chat_id"] == chat2.as_str()),
        "{:#?}",
        rx.received()
    );

    // The audit log: who, what, counts; nothing erased.
    let (_, audit) = get(&format!("{}/api/admin/audit", http(&b)), Some(&admin)).await;
    let entries = audit["entries"].as_array().unwrap();
    let erase = entries
        .iter()
        .find(|e| e["action"] == "contact.erase")
        .unwrap();
    assert_eq!(erase["actor"], "root");
    assert_eq!(erase["target"], format!("contact:{contact}"));
    assert_eq!(erase["detail"]["messages"], 2);
    let export = entries
        .iter()
        .find(|e| e["action"] == "contact.export")
        .unwrap();
    assert_eq!(export["detail"]["messages"], 1);
    assert_eq!(export["detail"]["offline_messages"], 1);
    let all = audit.to_string();
    for secret in [
        "vera",
        "order 1234",
        "call me back",
        "Where is my order",
        vid.as_str(),
    ] {
        assert!(
            !all.contains(secret),
            "the audit log holds {secret:?}: {all}"
        );
    }

    // Erasing again finds nothing; agents cannot erase.
    let (status, _) = post(
        &format!("{}/api/admin/contacts/{contact}/erase", http(&b)),
        json!({}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 404);
    let plain = agent_token(&a, "ann").await;
    let (status, _) = get(
        &format!("{}/api/admin/contacts/1/export", http(&a)),
        Some(&plain),
    )
    .await;
    assert_eq!(status, 403);
    let _ = std::fs::remove_dir_all(&dir);
    cluster.cleanup().await;
}

sqlite_and_postgres!(export_then_erase => export_then_erase_sqlite, export_then_erase_postgres);
