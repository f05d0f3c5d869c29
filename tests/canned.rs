//! Canned responses through the HTTP API of a real node: roles, search, bad input. The store
//! rules are in `tests/canned_store.rs`, rendering for a real chat in `tests/canned_render.rs`.

mod common;

use common::accounts::create_admin as admin;
use common::canned::{refused, shortcuts};
use common::*;
use serde_json::{json, Value};

/// Admins manage shared responses, agents their own personal ones; nobody sees or changes
/// another agent's personal ones.
async fn api_crud_with_roles(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let node = cluster.node().await;
    let base = format!("{}/api/canned", http(&node));
    admin(&cluster, "root").await;
    let ann_id = cluster.agent("ann", 2).await;
    cluster.agent("bob", 2).await;
    let root = agent_token(&node, "root").await;
    let ann = agent_token(&node, "ann").await;
    let bob = agent_token(&node, "bob").await;

    // Shared: admins only.
    let (status, shared) = post(
        &base,
        json!({"title": "Greeting", "shortcut": "greeting", "text": "Hello {visitor_name|there}!", "scope": "shared"}),
        Some(&root),
    )
    .await;
    assert_eq!(status, 201, "{shared}");
    assert_eq!(shared["scope"], "shared");
    assert_eq!(shared["owner_id"], Value::Null);
    let shared_id = shared["id"].as_i64().unwrap();
    refused(
        &post(
            &base,
            json!({"title": "Mine", "shortcut": "mine", "text": "x", "scope": "shared"}),
            Some(&ann),
        )
        .await,
        403,
        4005,
        "only admins",
    );
    refused(
        &post(
            &base,
            json!({"title": "Again", "shortcut": "greeting", "text": "x", "scope": "shared"}),
            Some(&root),
        )
        .await,
        409,
        4006,
        "greeting",
    );

    // Personal: the default scope; may shadow the shared shortcut.
    let (status, mine) = post(
        &base,
        json!({"title": "My greeting", "shortcut": "greeting", "text": "Hi, Ann here"}),
        Some(&ann),
    )
    .await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["scope"], "personal");
    assert_eq!(mine["owner_id"], ann_id);
    let mine_id = mine["id"].as_i64().unwrap();
    refused(
        &post(
            &base,
            json!({"title": "Twice", "shortcut": "greeting", "text": "x", "scope": "personal"}),
            Some(&ann),
        )
        .await,
        409,
        4006,
        "taken",
    );

    // Listing: shared + own personal.
    let (status, list) = get(&base, Some(&ann)).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, list) = get(&base, Some(&bob)).await;
    assert_eq!(shortcuts(&list), ["greeting"]);
    assert_eq!(list[0]["id"], shared_id);
    let (_, list) = get(&base, Some(&root)).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "admins do not see personal ones"
    );

    // Another agent's personal response is not found, for agents and admins alike.
    let edit = json!({"title": "Hijacked", "shortcut": "greeting", "text": "x"});
    for token in [&bob, &root] {
        refused(
            &put(&format!("{base}/{mine_id}"), edit.clone(), Some(token)).await,
            404,
            4004,
            "no such canned response",
        );
        refused(
            &delete(&format!("{base}/{mine_id}"), Some(token)).await,
            404,
            4004,
            "no such",
        );
    }
    // Shared ones are visible to agents but only admins change them.
    refused(
        &put(&format!("{base}/{shared_id}"), edit.clone(), Some(&ann)).await,
        403,
        4005,
        "only admins",
    );
    refused(
        &delete(&format!("{base}/{shared_id}"), Some(&ann)).await,
        403,
        4005,
        "only admins",
    );

    // The owner edits; the scope cannot change.
    let (status, edited) = put(
        &format!("{base}/{mine_id}"),
        json!({"title": "Ann's greeting", "shortcut": "hi", "text": "Hi, I'm {agent_name}", "scope": "personal"}),
        Some(&ann),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["title"], "Ann's greeting");
    assert_eq!(edited["shortcut"], "hi");
    assert_eq!(edited["created_at"], mine["created_at"]);
    refused(
        &put(
            &format!("{base}/{mine_id}"),
            json!({"title": "T", "shortcut": "hi", "text": "x", "scope": "shared"}),
            Some(&ann),
        )
        .await,
        400,
        4003,
        "scope",
    );
    let (status, edited) = put(
        &format!("{base}/{shared_id}"),
        json!({"title": "Greeting", "shortcut": "hello", "text": "Hello!"}),
        Some(&root),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["scope"], "shared");

    // Delete.
    let (status, _) = delete(&format!("{base}/{mine_id}"), Some(&ann)).await;
    assert_eq!(status, 204);
    refused(
        &delete(&format!("{base}/{mine_id}"), Some(&ann)).await,
        404,
        4004,
        "no such",
    );
    refused(
        &put(&format!("{base}/{mine_id}"), edit.clone(), Some(&ann)).await,
        404,
        4004,
        "no such",
    );
    let (status, _) = delete(&format!("{base}/{shared_id}"), Some(&root)).await;
    assert_eq!(status, 204);
    let (_, list) = get(&base, Some(&bob)).await;
    assert_eq!(list, json!([]));

    // No token, or a visitor's token.
    refused(&get(&base, None).await, 403, 4005, "token is required");
    let (_, visitor) = visitor_token(&node).await;
    refused(&get(&base, Some(&visitor)).await, 403, 4005, "invalid");
    node.drain().await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(api_crud_with_roles => api_crud_with_roles_sqlite, api_crud_with_roles_postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_search_by_shortcut_and_words() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let node = cluster.node().await;
    let base = format!("{}/api/canned", http(&node));
    admin(&cluster, "root").await;
    cluster.agent("ann", 2).await;
    let root = agent_token(&node, "root").await;
    let ann = agent_token(&node, "ann").await;
    for (title, shortcut, text, token) in [
        ("Greeting", "greeting", "Hello and welcome!", &root),
        ("Green tea", "green-tea", "Organic tea", &root),
        (
            "Refund policy",
            "refund",
            "Refunds take 5 working days",
            &root,
        ),
        (
            "Shipping to Norway",
            "norway",
            "We ship to Norway in 3 days",
            &ann,
        ),
    ] {
        let scope = if token == &root { "shared" } else { "personal" };
        let (status, v) = post(
            &base,
            json!({"title": title, "shortcut": shortcut, "text": text, "scope": scope}),
            Some(token),
        )
        .await;
        assert_eq!(status, 201, "{v}");
    }
    let q = |q: &str| format!("{base}?q={}", url_encode(q));
    let (status, all) = get(&base, Some(&ann)).await;
    assert_eq!(status, 200);
    assert_eq!(
        shortcuts(&all),
        ["green-tea", "greeting", "refund", "norway"]
    );
    assert_eq!(shortcuts(&get(&q(""), Some(&ann)).await.1).len(), 4);
    assert_eq!(
        shortcuts(&get(&q("/gre"), Some(&ann)).await.1),
        ["green-tea", "greeting"]
    );
    assert_eq!(
        shortcuts(&get(&q("/greeting"), Some(&ann)).await.1),
        ["greeting"]
    );
    assert_eq!(shortcuts(&get(&q("/nor"), Some(&ann)).await.1), ["norway"]);
    assert!(shortcuts(&get(&q("/nor"), Some(&root)).await.1).is_empty());
    assert_eq!(
        shortcuts(&get(&q("WORKING days"), Some(&ann)).await.1),
        ["refund"]
    );
    assert_eq!(
        shortcuts(&get(&q("days"), Some(&ann)).await.1),
        ["refund", "norway"]
    );
    assert_eq!(
        shortcuts(&get(&q("ship norway"), Some(&ann)).await.1),
        ["norway"]
    );
    assert!(shortcuts(&get(&q("ship refund"), Some(&ann)).await.1).is_empty());
    // Search results carry the whole record.
    let (_, found) = get(&q("/refund"), Some(&ann)).await;
    assert_eq!(found[0]["title"], "Refund policy");
    assert_eq!(found[0]["text"], "Refunds take 5 working days");
    assert_eq!(found[0]["scope"], "shared");
    node.drain().await;
    cluster.cleanup().await;
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_bad_input() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let node = cluster.node().await;
    let base = format!("{}/api/canned", http(&node));
    cluster.agent("ann", 2).await;
    let ann = agent_token(&node, "ann").await;
    let (status, ok) = post(
        &base,
        json!({"title": "Fine", "shortcut": "fine", "text": "fine"}),
        Some(&ann),
    )
    .await;
    assert_eq!(status, 201, "{ok}");
    let id = ok["id"].as_i64().unwrap();

    let long_title = "t".repeat(101);
    let long_shortcut = "s".repeat(33);
    let long_text = "x".repeat(4001);
    let cases = [
        (json!({"title": "", "shortcut": "a", "text": "x"}), "title"),
        (
            json!({"title": "  ", "shortcut": "a", "text": "x"}),
            "title",
        ),
        (
            json!({"title": long_title, "shortcut": "a", "text": "x"}),
            "title",
        ),
        (
            json!({"title": "T\u{1}", "shortcut": "a", "text": "x"}),
            "control",
        ),
        (
            json!({"title": "T", "shortcut": "", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"title": "T", "shortcut": long_shortcut, "text": "x"}),
            "shortcut",
        ),
        (
            json!({"title": "T", "shortcut": "Hello", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"title": "T", "shortcut": "/hello", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"title": "T", "shortcut": "hé", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"title": "T", "shortcut": "a b", "text": "x"}),
            "shortcut",
        ),
        (json!({"title": "T", "shortcut": "a", "text": ""}), "text"),
        (
            json!({"title": "T", "shortcut": "a", "text": " \n "}),
            "text",
        ),
        (
            json!({"title": "T", "shortcut": "a", "text": long_text}),
            "text",
        ),
        (
            json!({"title": "T", "shortcut": "a", "text": "Hi {visitor_name"}),
            "not closed",
        ),
        (
            json!({"title": "T", "shortcut": "a", "text": "a } b"}),
            "unmatched }",
        ),
        (
            json!({"title": "T", "shortcut": "a", "text": "x", "scope": "team"}),
            "scope",
        ),
    ];
    for (body, needle) in &cases {
        refused(
            &post(&base, body.clone(), Some(&ann)).await,
            400,
            4003,
            needle,
        );
        if body.get("scope").is_none() {
            refused(
                &put(&format!("{base}/{id}"), body.clone(), Some(&ann)).await,
                400,
                4003,
                needle,
            );
        }
    }
    // A missing field is the framework's 422.
    let (status, _) = post(&base, json!({"title": "T", "text": "x"}), Some(&ann)).await;
    assert_eq!(status, 422);

    // Ids must be numbers.
    let edit = json!({"title": "T", "shortcut": "t", "text": "x"});
    refused(
        &put(&format!("{base}/abc"), edit.clone(), Some(&ann)).await,
        400,
        4003,
        "must be a number",
    );
    refused(
        &delete(&format!("{base}/1x"), Some(&ann)).await,
        400,
        4003,
        "must be a number",
    );
    refused(
        &post(
            &format!("{base}/abc/render"),
            json!({"chat_id": "c"}),
            Some(&ann),
        )
        .await,
        400,
        4003,
        "must be a number",
    );
    refused(
        &delete(&format!("{base}/999999"), Some(&ann)).await,
        404,
        4004,
        "no such",
    );

    // Searches are bounded.
    refused(
        &get(&format!("{base}?q=a+b+c+d+e+f+g+h+i"), Some(&ann)).await,
        400,
        4003,
        "at most 8 words",
    );
    refused(
        &get(&format!("{base}?q={}", "a".repeat(201)), Some(&ann)).await,
        400,
        4003,
        "at most 200 characters",
    );

    // Nothing was stored by the refused requests.
    let (_, list) = get(&base, Some(&ann)).await;
    assert_eq!(shortcuts(&list), ["fine"]);
    assert_eq!(list[0]["title"], "Fine");
    node.drain().await;
    cluster.cleanup().await;
}
