//! The site-visitors list with `rows: "in_view"`: compact rows for every visitor, whole
//! records only for the visitors the agent names with `view_visitors`. Visitors browse on one
//! node, agents watch on another; a `full` watcher alongside gets what it always got.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::config::Settings;

const GRACE_MS: u64 = 1_500;
/// Longer than a publish (250 ms) plus a delivery (500 ms) period.
const QUIET: Duration = Duration::from_millis(1_500);

fn tweak(s: &mut Settings) {
    s.chat.visitor_grace_ms = GRACE_MS;
    s.abuse.visitors_in_view = 3;
}

async fn browsing(node: &switchboard::app::Running, url: &str) -> (String, Client) {
    let (vid, token) = visitor_token(node).await;
    let mut v = Client::visitor(node, &token).await;
    view(&mut v, url).await;
    (vid, v)
}

/// A page view, then a ping so the view is known to be processed.
async fn view(v: &mut Client, url: &str) {
    v.send(json!({"type": "page_view", "url": url})).await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
}

/// Every change in the `visitors_changed` frames among `frames`.
fn changes(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "visitors_changed")
        .flat_map(|f| f["changes"].as_array().unwrap().clone())
        .collect()
}

fn of<'a>(changes: &'a [Value], vid: &str) -> Vec<&'a Value> {
    changes.iter().filter(|c| c["visitor_id"] == vid).collect()
}

/// A row that carries the whole record (compact rows have no `url`).
fn is_full(row: &Value) -> bool {
    row.get("url").is_some()
}

/// A change that carries the whole record.
fn whole(c: &Value) -> bool {
    is_full(&c["visitor"])
}

/// Waits for a change of `vid` that satisfies `pred`, keeping every change seen.
async fn change_of(
    agent: &mut Client,
    seen: &mut Vec<Value>,
    vid: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let f = agent.expect("visitors_changed").await;
        let cs = changes(&[f]);
        seen.extend(cs.iter().cloned());
        if let Some(c) = cs.into_iter().find(|c| c["visitor_id"] == vid && pred(c)) {
            return c;
        }
    }
}

async fn set_view(agent: &mut Client, ids: &[&str]) -> Vec<Value> {
    agent
        .send(json!({"type": "view_visitors", "ids": ids}))
        .await;
    changes(&[agent.expect("visitors_changed").await])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_view_watchers_get_compact_rows_and_whole_records_of_their_view_only() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (v1, mut c1) = browsing(&a, "https://shop.example/one").await;
    let mut agent = available_agent(&cluster, &b, "ivy", 1).await;
    let mut full = available_agent(&cluster, &b, "fay", 1).await;
    full.send(json!({"type": "watch_visitors"})).await;
    let page = full.expect("visitors_snapshot").await;
    assert!(is_full(&page["visitors"][0]), "{page}");

    // The pages carry compact rows: what the list sorts, filters and counts by.
    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view", "limit": 1}))
        .await;
    let page = agent.expect("visitors_snapshot").await;
    // It says how many ids one view may name (this node's `abuse.visitors_in_view`).
    assert_eq!(page["view_max"], 3, "{page}");
    let row = page["visitors"][0].as_object().unwrap();
    let mut keys: Vec<&str> = row.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["last_seen", "new", "started_at", "visitor_id"],
        "{page}"
    );
    assert_eq!(row["visitor_id"], v1.as_str());

    // An arrival reaches it as a compact row; the full watcher gets the whole record.
    let (v2, mut c2) = browsing(&a, "https://shop.example/two").await;
    let mut seen = Vec::new();
    let arrive = change_of(&mut agent, &mut seen, &v2, |_| true).await;
    assert_eq!(arrive["kind"], "arrive");
    assert!(!is_full(&arrive["visitor"]), "{arrive}");
    assert!(arrive["visitor"]["started_at"].as_i64().unwrap() > 0);
    let arrive = change_of(&mut full, &mut Vec::new(), &v2, |_| true).await;
    assert_eq!(arrive["visitor"]["url"], "https://shop.example/two");

    // The next page follows the watcher's rows.
    let next = page["next"].as_str().unwrap().to_string();
    agent
        .send(json!({"type": "list_visitors", "after": next}))
        .await;
    let page = agent.expect("visitors_snapshot").await;
    assert!(page["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !is_full(r) && r.get("visitor_id").is_some()));

    // Viewing answers with the whole records, and `leave` for who is not on the site.
    let reply = set_view(&mut agent, &[&v1, "nobody-here"]).await;
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert_eq!(reply[0]["kind"], "update");
    assert_eq!(reply[0]["visitor"]["url"], "https://shop.example/one");
    assert_eq!(reply[1]["kind"], "leave");
    assert_eq!(reply[1]["visitor_id"], "nobody-here");

    // Page views: the viewed visitor's whole record comes, the other's does not.
    view(&mut c1, "https://shop.example/one/b").await;
    view(&mut c2, "https://shop.example/two/b").await;
    let mut seen = Vec::new();
    let c = change_of(&mut agent, &mut seen, &v1, whole).await;
    assert_eq!(c["visitor"]["url"], "https://shop.example/one/b");
    seen.extend(changes(&agent.drain_for(QUIET).await));
    assert!(of(&seen, &v2).is_empty(), "{seen:?}");
    let mut fseen = Vec::new();
    change_of(&mut full, &mut fseen, &v2, |c| {
        c["visitor"]["url"] == "https://shop.example/two/b"
    })
    .await;

    // A new view set replaces the old one.
    let reply = set_view(&mut agent, &[&v2]).await;
    assert_eq!(reply[0]["visitor"]["url"], "https://shop.example/two/b");
    view(&mut c1, "https://shop.example/one/c").await;
    view(&mut c2, "https://shop.example/two/c").await;
    let mut seen = Vec::new();
    let c = change_of(&mut agent, &mut seen, &v2, whole).await;
    assert_eq!(c["visitor"]["url"], "https://shop.example/two/c");
    seen.extend(changes(&agent.drain_for(QUIET).await));
    assert!(of(&seen, &v1).is_empty(), "{seen:?}");

    // Leaves reach it for every visitor, viewed or not.
    c1.close().await;
    c2.close().await;
    let mut seen = Vec::new();
    change_of(&mut agent, &mut seen, &v1, |c| c["kind"] == "leave").await;
    if of(&seen, &v2).is_empty() {
        change_of(&mut agent, &mut seen, &v2, |c| c["kind"] == "leave").await;
    }
    assert!(seen.iter().all(|c| !is_full(&c["visitor"])), "{seen:?}");

    // Watching again empties the view set: a returning visitor comes back compact.
    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view"}))
        .await;
    agent.expect("visitors_snapshot").await;
    let token = {
        let (status, v) = post(
            &format!("{}/api/visitor/session", http(&a)),
            json!({}),
            None,
        )
        .await;
        assert_eq!(status, 200);
        v
    };
    let mut c3 = Client::visitor(&a, token["token"].as_str().unwrap()).await;
    let v3 = token["visitor_id"].as_str().unwrap().to_string();
    view(&mut c3, "https://shop.example/three").await;
    let c = change_of(&mut agent, &mut Vec::new(), &v3, |_| true).await;
    assert!(!is_full(&c["visitor"]), "{c}");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_visitor_in_view_who_arrives_comes_with_the_whole_record() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ada", 1).await;
    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view"}))
        .await;
    agent.expect("visitors_snapshot").await;
    let (vid, token) = visitor_token(&a).await;
    let reply = set_view(&mut agent, &[&vid]).await;
    assert_eq!(reply[0]["kind"], "leave", "not on the site yet: {reply:?}");

    let mut v = Client::visitor(&a, &token).await;
    view(&mut v, "https://shop.example/arrived").await;
    // The compact arrival and the whole record come in the same delivery.
    let mut seen = Vec::new();
    let c = change_of(&mut agent, &mut seen, &vid, whole).await;
    assert_eq!(c["kind"], "arrive");
    assert_eq!(c["visitor"]["url"], "https://shop.example/arrived");
    assert_eq!(
        of(&seen, &vid)[0]["kind"],
        "arrive",
        "the compact arrival: {seen:?}"
    );
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

async fn refused(agent: &mut Client, frame: Value, code: u64, says: &str) {
    agent.send(frame.clone()).await;
    let e = agent.expect("error").await;
    assert_eq!(e["code"], code, "{frame}: {e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(says), "{frame}: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_view_requests_get_clear_errors() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;
    refused(
        &mut visitor,
        json!({"type": "view_visitors", "ids": ["x"]}),
        4005,
        "only agents",
    )
    .await;

    let mut agent = available_agent(&cluster, &a, "bob", 1).await;
    let view = json!({"type": "view_visitors", "ids": ["x"]});
    refused(&mut agent, view.clone(), 4006, "in_view").await;
    agent.send(json!({"type": "watch_visitors"})).await;
    agent.expect("visitors_snapshot").await;
    refused(&mut agent, view.clone(), 4006, "in_view").await;
    refused(
        &mut agent,
        json!({"type": "watch_visitors", "rows": "some"}),
        4003,
        "rows must be",
    )
    .await;

    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view"}))
        .await;
    agent.expect("visitors_snapshot").await;
    refused(
        &mut agent,
        json!({"type": "view_visitors", "ids": ["a", "b", "c", "d"]}),
        4003,
        "at most 3",
    )
    .await;
    for bad in [String::new(), "x".repeat(65)] {
        refused(
            &mut agent,
            json!({"type": "view_visitors", "ids": ["a", bad]}),
            4003,
            "1-64",
        )
        .await;
    }
    refused(
        &mut agent,
        json!({"type": "view_visitors", "ids": "a"}),
        4000,
        "",
    )
    .await;
    // Still watching, and duplicates count once.
    let reply = set_view(&mut agent, &["a", "a", "b"]).await;
    assert_eq!(reply.len(), 2, "{reply:?}");
    // After unwatching there is no view to set.
    agent.send(json!({"type": "unwatch_visitors"})).await;
    refused(&mut agent, view, 4006, "in_view").await;
    a.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compact_rows_count_against_the_byte_budget() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        tweak(s);
        s.abuse.visitor_list_bytes_per_second = 1024;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "tess", 1).await;
    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view"}))
        .await;
    agent.expect("visitors_snapshot").await;
    // Thirty arrivals as compact rows are over a burst of 2 KiB: one `visitors_stale`.
    let mut visitors = Vec::new();
    for i in 0..30 {
        visitors.push(browsing(&a, &format!("https://shop.example/{i}")).await);
    }
    agent.expect("visitors_stale").await;
    // Reading the list again lists them all, compact.
    agent
        .send(json!({"type": "watch_visitors", "rows": "in_view"}))
        .await;
    let page = agent.expect("visitors_snapshot").await;
    let rows = page["visitors"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| !is_full(r)), "{page}");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
