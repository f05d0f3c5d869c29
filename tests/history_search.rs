//! History search (`GET /api/history`) on SQLite and PostgreSQL: every filter through the
//! backend's full-text index, keyset pages that stay stable while chats are stored, and a chat
//! that leaves the index with its Message (erasure, retention). Transcripts are written by the
//! store's flush path; the search goes through a real node's HTTP API as an agent.

mod common;

use common::accounts::admin;
use common::integrations::metric;
use common::{agent_token, get, http, metrics_text, post, Backend, Cluster};
use serde_json::{json, Value};
use switchboard::app::Running;
use switchboard::store::{PurgeKind, TranscriptEntry, TranscriptRecord};

/// 2026-03-02 09:00 UTC: the chats of these tests start here, minutes apart.
const T0: i64 = 1_772_442_000_000;
const MINUTE: i64 = 60_000;

struct Chat<'a> {
    id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    verified: bool,
    agent: Option<i64>,
    queue: &'a str,
    decision: &'a str,
    started_at: i64,
    texts: &'a [&'a str],
}

fn record(c: &Chat) -> TranscriptRecord {
    let entries = c
        .texts
        .iter()
        .enumerate()
        .map(|(i, text)| TranscriptEntry {
            seq: format!("{}-{i}", c.started_at),
            kind: "message".into(),
            author: if i % 2 == 0 { "visitor" } else { "agent" }.into(),
            name: String::new(),
            text: (*text).into(),
            at: c.started_at + i as i64,
            event: String::new(),
            data: None,
            internal: false,
        })
        .collect();
    TranscriptRecord {
        chat_id: c.id.into(),
        visitor_id: format!("visitor-{}", c.id),
        contact_name: c.name.map(Into::into),
        contact_email: c.email.filter(|_| c.verified).map(Into::into),
        visitor_email: c.email.map(Into::into),
        email_verified: c.verified,
        agents: c.agent.into_iter().collect(),
        question: None,
        queue: c.queue.into(),
        agent_id: c.agent,
        started_at: c.started_at,
        accepted_at: c.agent.map(|_| c.started_at + 5_000),
        ended_at: c.started_at + 3 * MINUTE,
        end_reason: "Visitor ended the chat".into(),
        decision: c.decision.into(),
        interaction_id: None,
        decided_by: c.agent,
        decided_at: c.started_at + 4 * MINUTE,
        entries,
    }
}

async fn store_chat(cluster: &Cluster, c: &Chat<'_>) {
    cluster
        .store
        .write_transcript(&record(c))
        .await
        .expect("transcript written");
}

/// `GET /api/history?{query}` as `token`; asserts 200 and returns the page.
async fn history(node: &Running, token: &str, query: &str) -> Value {
    let (status, page) = get(&format!("{}/api/history?{query}", http(node)), Some(token)).await;
    assert_eq!(status, 200, "{query}: {page}");
    page
}

/// The chat ids of a page, in order.
fn chats(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["chat_id"].as_str().unwrap().to_string())
        .collect()
}

/// Three stored chats and a trashed one: Vera asked about a parcel (typed e-mail, ann),
/// Tom about an invoice (verified e-mail, bob, sales), an unanswered request was kept
/// automatically; the trashed chat mentions the parcel too.
async fn seed(cluster: &Cluster, ann: i64, bob: i64) {
    let chats = [
        Chat {
            id: "vera-parcel",
            name: Some("Vera Novak"),
            email: Some("Vera@Example.com"),
            verified: false,
            agent: Some(ann),
            queue: "general",
            decision: "create",
            started_at: T0,
            texts: &["My parcel never arrived", "Let me check the tracking"],
        },
        Chat {
            id: "tom-invoice",
            name: Some("Tom Berg"),
            email: Some("tom@example.com"),
            verified: true,
            agent: Some(bob),
            queue: "sales",
            decision: "create",
            started_at: T0 + 10 * MINUTE,
            texts: &[
                "I need an invoice for order 1042",
                "Sent to tom@example.com",
            ],
        },
        Chat {
            id: "nobody-answered",
            name: None,
            email: None,
            verified: false,
            agent: None,
            queue: "general",
            decision: "keep",
            started_at: T0 + 20 * MINUTE,
            texts: &["Hello, anyone there?"],
        },
        Chat {
            id: "trashed-parcel",
            name: Some("Spam Bot"),
            email: None,
            verified: false,
            agent: Some(ann),
            queue: "general",
            decision: "trash",
            started_at: T0 + 30 * MINUTE,
            texts: &["cheap parcel deals"],
        },
    ];
    for c in &chats {
        store_chat(cluster, c).await;
    }
}

async fn every_filter(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let ann = cluster.agent("ann", 3).await;
    let bob = cluster.agent("bob", 3).await;
    seed(&cluster, ann, bob).await;
    let node = cluster.node().await;
    let token = agent_token(&node, "bob").await;

    // Unfiltered: newest first, trashed chats left out.
    let all = history(&node, &token, "").await;
    assert_eq!(
        chats(&all),
        ["nobody-answered", "tom-invoice", "vera-parcel"],
        "{all}"
    );
    assert_eq!(all["next"], Value::Null);

    // A word of a message, whole and case-insensitive; not in the trashed chat.
    let page = history(&node, &token, "q=PARCEL").await;
    assert_eq!(chats(&page), ["vera-parcel"], "{page}");
    let row = &page["items"][0];
    assert_eq!(row["visitor_name"], "Vera Novak");
    assert_eq!(row["visitor_email"], "Vera@Example.com");
    assert_eq!(
        row["email_verified"], false,
        "a typed e-mail stays unverified"
    );
    assert_eq!(row["agent_id"], ann);
    assert_eq!(row["agent_name"], "Agent ann");
    assert_eq!(row["queue"], "general");
    assert_eq!(row["duration_ms"], 3 * MINUTE);
    assert_eq!(row["subject"], "My parcel never arrived");
    // What each filter finds, newest first.
    let none: &[&str] = &[];
    let finds: Vec<(String, &[&str])> = vec![
        // Every word must occur; the text covers the visitor's name and e-mail too.
        ("q=parcel%20invoice".into(), none),
        ("q=order%201042".into(), &["tom-invoice"]),
        ("q=novak".into(), &["vera-parcel"]),
        // E-mail: whole, case-insensitive.
        ("email=vera%40example.com".into(), &["vera-parcel"]),
        ("email=vera".into(), none),
        ("email=TOM%40example.com".into(), &["tom-invoice"]),
        // Visitor name: words of the name only (Tom's messages mention no "berg").
        ("name=berg".into(), &["tom-invoice"]),
        ("name=parcel".into(), none),
        // Agent by username or id, queue, decision.
        ("agent=bob".into(), &["tom-invoice"]),
        (format!("agent_id={ann}"), &["vera-parcel"]),
        ("agent=nobody".into(), none),
        ("queue=sales".into(), &["tom-invoice"]),
        ("decision=keep".into(), &["nobody-answered"]),
        // Auto-kept requests nobody answered: only them, or all but them.
        ("empty=true".into(), &["nobody-answered"]),
        ("empty=false".into(), &["tom-invoice", "vera-parcel"]),
        // Date range: from inclusive, to exclusive, on the chat's start.
        (
            format!("from={}&to={}", T0 + 10 * MINUTE, T0 + 20 * MINUTE),
            &["tom-invoice"],
        ),
        // Filters combine.
        (format!("q=parcel&agent=ann&from={T0}"), &["vera-parcel"]),
        ("q=parcel&queue=sales".into(), none),
    ];
    for (query, want) in &finds {
        assert_eq!(
            chats(&history(&node, &token, query).await),
            *want,
            "{query}"
        );
    }
    let tom = history(&node, &token, "email=tom%40example.com").await;
    assert_eq!(tom["items"][0]["email_verified"], true);
    let empty = history(&node, &token, "empty=true").await;
    assert_eq!(empty["items"][0]["auto_kept"], true);
    assert_eq!(empty["items"][0]["agent_id"], Value::Null);

    // The interaction detail carries the chat's name and e-mail, marked unverified.
    let id = &page["items"][0]["interaction_id"];
    let (status, detail) = get(
        &format!("{}/api/interactions/{id}", http(&node)),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["messages"][0]["visitor_email"], "Vera@Example.com");
    assert_eq!(detail["messages"][0]["email_verified"], false);
    assert_eq!(detail["messages"][0]["visitor_name"], "Vera Novak");

    // Bad input gets a clear error; no agent, no history.
    for bad in [
        "q=%20--%20**",
        "decision=trash",
        "limit=0",
        "limit=101",
        "after=yesterday",
        "from=soon",
        "colour=red",
        &format!("q={}", "word%20".repeat(11)),
        &format!("email={}", "x".repeat(201)),
    ] {
        let (status, body) = get(&format!("{}/api/history?{bad}", http(&node)), Some(&token)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_field", "{bad}: {body}");
    }
    // Words that look like FTS syntax are searched as words, never parsed.
    for odd in [
        "NOT",
        "parcel%20OR",
        "%22parcel",
        "name%3Avera",
        "parcel*",
        "NEAR(parcel)",
    ] {
        history(&node, &token, &format!("q={odd}")).await;
    }
    let (status, _) = get(&format!("{}/api/history", http(&node)), None).await;
    assert_eq!(status, 403);
    // Every search the store answered (or refused) is timed.
    let text = metrics_text(&http(&node)).await;
    let searches = metric(&text, "switchboard_history_search_duration_seconds_count");
    assert!(searches >= finds.len() as f64, "{searches}");

    node.drain().await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(every_filter => every_filter_sqlite, every_filter_postgres);

/// A chat about a refund, handled by `agent` (the pages test).
fn refund<'a>(id: &'a str, name: Option<&'a str>, agent: i64, started_at: i64) -> Chat<'a> {
    Chat {
        id,
        name,
        email: None,
        verified: false,
        agent: Some(agent),
        queue: "general",
        decision: "create",
        started_at,
        texts: &["refund please"],
    }
}

fn numbered(i: usize, started_at: i64) -> (String, i64) {
    (format!("chat-{i:03}"), started_at)
}

/// 23 chats, many started in the same millisecond, read five at a time while chats that sort
/// ahead of the pages already read are stored between pages (a newer one, and one tied with
/// the newest start time but with a higher id): every chat of the start shows exactly once,
/// in order.
async fn stable_pages(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let ann = cluster.agent("ann", 3).await;
    let mut expected = Vec::new();
    for i in 0..23 {
        // Seven distinct start times: ties are ordered by id.
        let (id, at) = numbered(i, T0 + (i as i64 % 7) * MINUTE);
        store_chat(&cluster, &refund(&id, Some("Repeat Visitor"), ann, at)).await;
        expected.push((at, i, id));
    }
    // Newest first, and in a tie the later-stored (higher id) first.
    expected.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    let expected: Vec<String> = expected.into_iter().map(|(_, _, id)| id).collect();

    let node = cluster.node().await;
    let token = agent_token(&node, "ann").await;
    let mut seen = Vec::new();
    let mut query = "q=refund&limit=5".to_string();
    let mut pages = 0;
    loop {
        let page = history(&node, &token, &query).await;
        let ids = chats(&page);
        assert!(ids.len() <= 5);
        seen.extend(ids);
        pages += 1;
        // Stored meanwhile: one newer than everything, one inside the range already read.
        for (n, at) in [
            (100 + pages, T0 + 60 * MINUTE),
            (200 + pages, T0 + 6 * MINUTE),
        ] {
            let (id, at) = numbered(n, at);
            store_chat(&cluster, &refund(&id, None, ann, at)).await;
        }
        match page["next"].as_str() {
            Some(next) => query = format!("q=refund&limit=5&after={next}"),
            None => break,
        }
    }
    // Offsets would have shifted by two rows a page (repeating rows); the cursor does not.
    assert_eq!(seen, expected, "every chat of the start once, in order");
    assert_eq!(pages, 5);
    node.drain().await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(stable_pages => stable_pages_sqlite, stable_pages_postgres);

/// Rows in the backend's search index (SQLite's FTS5 table; PostgreSQL's index is a column of
/// the Message and cannot outlive it).
async fn indexed_rows(cluster: &Cluster, backend: Backend) -> Option<i64> {
    match backend {
        Backend::Postgres => None,
        Backend::Sqlite => {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&cluster.settings.store.url)
                .await
                .unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_search")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            Some(n)
        }
    }
}

/// An erased contact and a chat past retention are no longer found, and leave nothing in the
/// index.
async fn erased_and_purged_leave_the_index(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let ann = cluster.agent("ann", 3).await;
    let bob = cluster.agent("bob", 3).await;
    seed(&cluster, ann, bob).await;
    let node = cluster.node().await;
    let admin = admin(&cluster, &node, "root").await;
    assert_eq!(
        indexed_rows(&cluster, backend).await,
        Some(4).filter(|_| matches!(backend, Backend::Sqlite))
    );

    let page = history(&node, &admin, "email=vera%40example.com").await;
    let contact = cluster
        .store
        .message_by_chat("vera-parcel")
        .await
        .unwrap()
        .expect("stored")
        .contact_id;
    assert_eq!(chats(&page), ["vera-parcel"]);
    let (status, erased) = post(
        &format!("{}/api/admin/contacts/{contact}/erase", http(&node)),
        json!({}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{erased}");
    for query in [
        "q=parcel",
        "email=vera%40example.com",
        "name=vera",
        "q=novak",
    ] {
        assert_eq!(
            chats(&history(&node, &admin, query).await),
            Vec::<String>::new(),
            "{query}"
        );
    }
    assert_eq!(
        indexed_rows(&cluster, backend).await,
        Some(3).filter(|_| matches!(backend, Backend::Sqlite))
    );

    // Retention: everything ended before T0 + 15 min goes (Tom's chat), the rest stays.
    let purged = cluster
        .store
        .purge_batch(PurgeKind::Transcripts, T0 + 15 * MINUTE, 100)
        .await
        .unwrap();
    assert_eq!(purged.rows, 1);
    assert_eq!(
        chats(&history(&node, &admin, "q=invoice").await),
        Vec::<String>::new()
    );
    assert_eq!(
        chats(&history(&node, &admin, "").await),
        ["nobody-answered"]
    );
    assert_eq!(
        indexed_rows(&cluster, backend).await,
        Some(2).filter(|_| matches!(backend, Backend::Sqlite))
    );

    node.drain().await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(erased_and_purged_leave_the_index => erased_and_purged_leave_the_index_sqlite, erased_and_purged_leave_the_index_postgres);
