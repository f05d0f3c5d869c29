//! Canned responses: the store rules on SQLite and PostgreSQL, and the HTTP API through a real
//! node (roles, search, rendering for a real chat, bad input).

mod common;

use common::accounts::create_admin as admin;
use common::*;
use serde_json::{json, Value};
use switchboard::store::{CannedFields, CannedQuery, CannedScope, StoreError};

// ---- helpers ----

async fn put(url: &str, body: Value, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn delete(url: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .delete(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn fields(title: &str, shortcut: &str, text: &str) -> CannedFields {
    CannedFields {
        title: title.into(),
        shortcut: shortcut.into(),
        text: text.into(),
    }
}

fn shortcuts(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap())
        .collect()
}

/// Asserts a handler error: status, numeric code, and a message containing `needle`.
#[track_caller]
fn refused(got: &(u16, Value), status: u16, code: u16, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    let message = got.1["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

// ---- the store, on both backends ----

/// Scopes and owners: shortcut uniqueness per scope+owner, shadowing, visibility, update,
/// delete.
async fn store_scopes_and_uniqueness(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let bob = cluster.agent("bob", 2).await;

    let shared = store
        .create_canned(
            CannedScope::Shared,
            None,
            &fields("Greeting", "greeting", "Hello {visitor_name|there}!"),
        )
        .await
        .unwrap();
    assert_eq!(shared.scope, CannedScope::Shared);
    assert_eq!(shared.owner_id, None);
    assert_eq!(shared.created_at, shared.updated_at);
    assert!(matches!(
        store
            .create_canned(CannedScope::Shared, None, &fields("Other", "greeting", "x"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // A personal shortcut may shadow a shared one, and two agents may use the same one.
    let mine = store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("My greeting", "greeting", "Hi, Ann here"),
        )
        .await
        .unwrap();
    assert_eq!(mine.owner_id, Some(ann));
    let bobs = store
        .create_canned(
            CannedScope::Personal,
            Some(bob),
            &fields("Bob's greeting", "greeting", "Hi, Bob here"),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_canned(
                CannedScope::Personal,
                Some(ann),
                &fields("Again", "greeting", "x")
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Scope and owner must agree.
    for (scope, owner) in [
        (CannedScope::Shared, Some(ann)),
        (CannedScope::Personal, None),
    ] {
        assert!(matches!(
            store
                .create_canned(scope, owner, &fields("T", "t", "x"))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }

    // Visibility: shared to all, personal to the owner only.
    assert_eq!(
        store.visible_canned(shared.id, bob).await.unwrap(),
        Some(shared.clone())
    );
    assert_eq!(
        store.visible_canned(mine.id, ann).await.unwrap(),
        Some(mine.clone())
    );
    assert_eq!(store.visible_canned(mine.id, bob).await.unwrap(), None);
    assert_eq!(store.visible_canned(bobs.id, ann).await.unwrap(), None);
    assert_eq!(store.visible_canned(9_999, ann).await.unwrap(), None);

    // Update keeps scope, owner and created_at; a taken shortcut is a conflict.
    let other = store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("Bye", "bye", "Bye!"),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edited = store
        .update_canned(
            other.id,
            &fields("  Goodbye ", "goodbye", "Goodbye, {visitor_name|friend}"),
        )
        .await
        .unwrap();
    assert_eq!(edited.title, "Goodbye");
    assert_eq!(edited.shortcut, "goodbye");
    assert_eq!(edited.owner_id, Some(ann));
    assert_eq!(edited.created_at, other.created_at);
    assert!(edited.updated_at > other.updated_at);
    assert!(matches!(
        store.update_canned(other.id, &fields("Goodbye", "greeting", "x")).await,
        Err(StoreError::Conflict(m)) if m.contains("personal")
    ));
    assert!(matches!(
        store.update_canned(9_999, &fields("T", "t", "x")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_canned(other.id, &fields("", "t", "x")).await,
        Err(StoreError::Invalid(_))
    ));

    store.delete_canned(other.id).await.unwrap();
    assert!(matches!(
        store.delete_canned(other.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.visible_canned(other.id, ann).await.unwrap(), None);
    cluster.cleanup().await;
}

/// Search by shortcut prefix and by words, the order, the escaping of LIKE wildcards, case
/// folding beyond ASCII, and the limit.
async fn store_search(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let bob = cluster.agent("bob", 2).await;
    let shared = |t: &'static str, s: &'static str, x: &'static str| {
        let f = fields(t, s, x);
        async move {
            store
                .create_canned(CannedScope::Shared, None, &f)
                .await
                .unwrap()
        }
    };
    shared("Greeting", "greeting", "Hello and welcome!").await;
    shared("Green tea offer", "green-tea", "Our tea is 100% organic").await;
    shared("Refund policy", "refund", "Refunds take 5 working days").await;
    shared("Été", "ete", "Summer opening hours").await;
    shared("Underscore", "a_b", "with an underscore").await;
    store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("Ann says hello", "greeting", "Hi, I am Ann"),
        )
        .await
        .unwrap();
    store
        .create_canned(
            CannedScope::Personal,
            Some(bob),
            &fields("Bob's refund note", "bob-refund", "Refund approved"),
        )
        .await
        .unwrap();
    let search = |agent: i64, q: &'static str| async move {
        let q = CannedQuery::parse(q).unwrap();
        store
            .search_canned(agent, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.shortcut, c.scope))
            .collect::<Vec<_>>()
    };
    let names = |agent: i64, q: &'static str| async move {
        search(agent, q)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect::<Vec<_>>()
    };

    // Everything visible, by title; Bob's personal one is not Ann's to see.
    assert_eq!(
        names(ann, "").await,
        ["greeting", "green-tea", "greeting", "refund", "a_b", "ete"]
    );
    // Shortcut prefix; the exact shortcut first, Ann's before the shared one it shadows.
    assert_eq!(
        search(ann, "/greeting").await,
        [
            ("greeting".to_string(), CannedScope::Personal),
            ("greeting".to_string(), CannedScope::Shared)
        ]
    );
    assert_eq!(
        names(ann, "/gre").await,
        ["greeting", "green-tea", "greeting"]
    );
    assert_eq!(
        names(ann, "/GRE").await,
        ["greeting", "green-tea", "greeting"]
    );
    assert_eq!(names(bob, "/gre").await, ["green-tea", "greeting"]);
    assert_eq!(names(ann, "/").await.len(), 6);
    assert!(names(ann, "/tea").await.is_empty(), "prefix, not substring");
    // `_` is not a wildcard.
    assert_eq!(names(ann, "/a_").await, ["a_b"]);
    assert!(names(ann, "/a%").await.is_empty());
    // Words: every word somewhere in title, shortcut or text, in any case.
    assert_eq!(names(ann, "REFUND").await, ["refund"]);
    // By title "Bob's refund note" would come first, but an exact shortcut ranks higher.
    assert_eq!(names(bob, "refund").await, ["refund", "bob-refund"]);
    assert_eq!(names(ann, "tea organic").await, ["green-tea"]);
    assert!(names(ann, "tea refund").await.is_empty());
    assert_eq!(names(ann, "hello").await, ["greeting", "greeting"]);
    assert_eq!(names(ann, "100%").await, ["green-tea"]);
    assert!(names(ann, "1%0").await.is_empty(), "% is not a wildcard");
    assert_eq!(
        names(ann, "ÉTÉ").await,
        ["ete"],
        "case folding beyond ASCII"
    );
    assert_eq!(names(ann, "greeting").await, ["greeting", "greeting"]);

    // At most 50.
    for i in 0..55 {
        store
            .create_canned(
                CannedScope::Personal,
                Some(bob),
                &fields(&format!("Note {i:02}"), &format!("note-{i:02}"), "note"),
            )
            .await
            .unwrap();
    }
    let notes = names(bob, "/note").await;
    assert_eq!(notes.len(), 50);
    assert_eq!(notes[0], "note-00");
    assert_eq!(notes[49], "note-49");
    cluster.cleanup().await;
}

/// Field rules hold on both backends, before anything is written.
async fn store_refuses_bad_fields(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let long_title = "t".repeat(101);
    let long_text = "x".repeat(4001);
    let long_shortcut = "s".repeat(33);
    for f in [
        fields("", "ok", "x"),
        fields(&long_title, "ok", "x"),
        fields("T", "", "x"),
        fields("T", &long_shortcut, "x"),
        fields("T", "Hello", "x"),
        fields("T", "/hello", "x"),
        fields("T", "he llo", "x"),
        fields("T", "ok", ""),
        fields("T", "ok", "   "),
        fields("T", "ok", &long_text),
    ] {
        assert!(
            matches!(
                store
                    .create_canned(CannedScope::Personal, Some(ann), &f)
                    .await,
                Err(StoreError::Invalid(_))
            ),
            "{f:?}"
        );
    }
    let at_the_limit = fields(&"é".repeat(100), &"s".repeat(32), &"ü".repeat(4000));
    store
        .create_canned(CannedScope::Personal, Some(ann), &at_the_limit)
        .await
        .expect("limits are inclusive, in characters");
    assert_eq!(
        store
            .search_canned(ann, &CannedQuery::All)
            .await
            .unwrap()
            .len(),
        1
    );
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scopes_and_uniqueness_sqlite() {
    store_scopes_and_uniqueness(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scopes_and_uniqueness_postgres() {
    store_scopes_and_uniqueness(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_search_sqlite() {
    store_search(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_search_postgres() {
    store_search(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_refuses_bad_fields_sqlite() {
    store_refuses_bad_fields(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_refuses_bad_fields_postgres() {
    store_refuses_bad_fields(Backend::Postgres).await;
}

// ---- the HTTP API through a real node ----

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
            &put(&format!("{base}/{mine_id}"), edit.clone(), token).await,
            404,
            4004,
            "no such canned response",
        );
        refused(
            &delete(&format!("{base}/{mine_id}"), token).await,
            404,
            4004,
            "no such",
        );
    }
    // Shared ones are visible to agents but only admins change them.
    refused(
        &put(&format!("{base}/{shared_id}"), edit.clone(), &ann).await,
        403,
        4005,
        "only admins",
    );
    refused(
        &delete(&format!("{base}/{shared_id}"), &ann).await,
        403,
        4005,
        "only admins",
    );

    // The owner edits; the scope cannot change.
    let (status, edited) = put(
        &format!("{base}/{mine_id}"),
        json!({"title": "Ann's greeting", "shortcut": "hi", "text": "Hi, I'm {agent_name}", "scope": "personal"}),
        &ann,
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
            &ann,
        )
        .await,
        400,
        4003,
        "scope",
    );
    let (status, edited) = put(
        &format!("{base}/{shared_id}"),
        json!({"title": "Greeting", "shortcut": "hello", "text": "Hello!"}),
        &root,
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["scope"], "shared");

    // Delete.
    let (status, _) = delete(&format!("{base}/{mine_id}"), &ann).await;
    assert_eq!(status, 204);
    refused(
        &delete(&format!("{base}/{mine_id}"), &ann).await,
        404,
        4004,
        "no such",
    );
    refused(
        &put(&format!("{base}/{mine_id}"), edit.clone(), &ann).await,
        404,
        4004,
        "no such",
    );
    let (status, _) = delete(&format!("{base}/{shared_id}"), &root).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_crud_with_roles_sqlite() {
    api_crud_with_roles(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_crud_with_roles_postgres() {
    api_crud_with_roles(Backend::Postgres).await;
}

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
    otto.send(json!({"type": "request_chat", "name": "Otto", "question": "Hi"}))
        .await;
    let otto_chat = otto.expect("queued").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
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
                &put(&format!("{base}/{id}"), body.clone(), &ann).await,
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
        &put(&format!("{base}/abc"), edit.clone(), &ann).await,
        400,
        4003,
        "must be a number",
    );
    refused(
        &delete(&format!("{base}/1x"), &ann).await,
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
        &delete(&format!("{base}/999999"), &ann).await,
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
