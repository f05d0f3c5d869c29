//! Canned responses rendered for a real chat through two real nodes.

mod common;

use common::accounts::create_admin as admin;
use common::canned::{fields, refused};
use common::*;
use serde_json::json;
use switchboard::store::CannedScope;

/// Rendering for real chats: every placeholder, a default, a missing value, an unknown
/// placeholder, a chat that is not yours; then the text goes out as an ordinary message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_render_for_a_real_chat() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let base = format!("{}/api/canned", http(&b));
    admin(&cluster, "root").await;
    let mut agent = available_agent(&cluster, &b, "ann", 3).await;
    let ann = agent_token(&b, "ann").await;
    cluster.agent("bob", 2).await;
    let bob = agent_token(&b, "bob").await;
    let root = agent_token(&b, "root").await;

    // Vera asks with name and e-mail (on node a); Ann accepts (on node b).
    let (mut vera, chat, _, _) = requesting_visitor(&a, "Where is my order?").await;
    agent.expect("offer").await;
    agent.send(json!({"type": "accept", "chat_id": chat})).await;
    agent.expect("chat_started").await;
    vera.expect("chat_started").await;

    // Otto asks with a name only.
    let (_, otto_token) = visitor_token(&a).await;
    let mut otto = Client::visitor(&a, &otto_token).await;
    let otto_chat = otto
        .request_chat(json!({"type": "request_chat", "name": "Otto", "question": "Hi"}))
        .await;
    agent
        .expect_where("offer for otto", |f| {
            f["type"] == "offer" && f["chat_id"] == otto_chat.as_str()
        })
        .await;
    agent
        .send(json!({"type": "accept", "chat_id": otto_chat}))
        .await;
    otto.expect("chat_started").await;

    let create = |title: &'static str, shortcut: &'static str, text: &'static str| {
        let (base, ann) = (base.clone(), ann.clone());
        async move {
            let (status, v) = post(
                &base,
                json!({"title": title, "shortcut": shortcut, "text": text}),
                Some(&ann),
            )
            .await;
            assert_eq!(status, 201, "{v}");
            v["id"].as_i64().unwrap()
        }
    };
    let all = create(
        "All",
        "all",
        "Hi {visitor_name}, I'm {agent_name}. We'll confirm to {visitor_email} {{ref}}.",
    )
    .await;
    let email = create("Email", "email", "We'll write to {visitor_email}.").await;
    let email_or = create(
        "Email or",
        "email-or",
        "We'll write to {visitor_email|your inbox}.",
    )
    .await;
    let name_or = create("Name or", "name-or", "Hello {visitor_name|there}!").await;
    let render = |id: i64, chat: &str, token: &str| {
        let url = format!("{base}/{id}/render");
        let (body, token) = (json!({"chat_id": chat}), token.to_string());
        async move { post(&url, body, Some(&token)).await }
    };

    let (status, v) = render(all, &chat, &ann).await;
    assert_eq!(status, 200, "{v}");
    let text = v["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        "Hi Vera, I'm Agent ann. We'll confirm to vera@example.com {ref}."
    );
    assert_eq!(
        render(email_or, &chat, &ann).await.1["text"],
        "We'll write to vera@example.com."
    );
    assert_eq!(render(name_or, &chat, &ann).await.1["text"], "Hello Vera!");
    assert_eq!(
        render(name_or, &otto_chat, &ann).await.1["text"],
        "Hello Otto!"
    );

    // Missing value, with and without a default.
    refused(
        &render(email, &otto_chat, &ann).await,
        400,
        4003,
        "placeholder {visitor_email} has no value for this chat",
    );
    assert_eq!(
        render(email_or, &otto_chat, &ann).await.1["text"],
        "We'll write to your inbox."
    );

    // An unknown placeholder is refused when saved, and when rendered (a row written
    // around the API).
    refused(
        &post(
            &base,
            json!({"title": "Bad", "shortcut": "bad", "text": "Dear {customer}"}),
            Some(&ann),
        )
        .await,
        400,
        4003,
        "unknown placeholder {customer}",
    );
    let legacy = cluster
        .store
        .create_canned(
            CannedScope::Shared,
            None,
            &fields("Legacy", "legacy", "Dear {customer}"),
        )
        .await
        .unwrap();
    refused(
        &render(legacy.id, &chat, &ann).await,
        400,
        4003,
        "unknown placeholder {customer}",
    );

    // A shared response renders with the renderer's own name.
    let (status, shared) = post(
        &base,
        json!({"title": "Sign-off", "shortcut": "signoff", "text": "Regards, {agent_name}", "scope": "shared"}),
        Some(&root),
    )
    .await;
    assert_eq!(status, 201, "{shared}");
    let shared_id = shared["id"].as_i64().unwrap();
    assert_eq!(
        render(shared_id, &chat, &ann).await.1["text"],
        "Regards, Agent ann"
    );

    // Not your chat; not your response; no such chat.
    refused(
        &render(shared_id, &chat, &bob).await,
        403,
        4005,
        "not assigned to you",
    );
    refused(
        &render(shared_id, &chat, &root).await,
        403,
        4005,
        "not assigned to you",
    );
    refused(
        &render(all, &chat, &bob).await,
        404,
        4004,
        "no such canned response",
    );
    refused(
        &render(shared_id, "0123456789abcdef0123456789abcdef", &ann).await,
        404,
        4004,
        "no such live chat",
    );
    refused(&render(shared_id, "", &ann).await, 400, 4003, "chat_id");
    refused(
        &render(shared_id, &"c".repeat(65), &ann).await,
        400,
        4003,
        "chat_id",
    );

    // The console sends the rendered text as an ordinary message.
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "c1", "text": text}))
        .await;
    agent.expect("ack").await;
    let got = vera.expect_text(&text).await;
    assert_eq!(got["entry"]["author"], "agent");

    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
