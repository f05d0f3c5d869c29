//! Site visitors: page views across nodes reach watching agents as pages of the list, then
//! batched changes (IP, country, the "new" flag; the page history on demand); navigation keeps
//! one visit; a visitor who leaves, or whose node dies, disappears after the grace period; the
//! list in pages with capped records and histories; bad input.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchboard::config::Settings;

const GRACE_MS: u64 = 1_500;

fn tweak(s: &mut Settings) {
    s.server.trusted_proxies = vec!["127.0.0.1".into()];
    s.server.country_header = "x-country".into();
    s.chat.visitor_grace_ms = GRACE_MS;
}

/// The site-visitors list as a console keeps it: the pages of the list, then each batch
/// applied (a record replaces the one held when its `last_seen` is not older).
#[derive(Default)]
struct VisitorList {
    map: HashMap<String, Value>,
    /// `visitors_changed` frames applied.
    frames: usize,
    /// Every change applied, in order.
    changes: Vec<Value>,
}

impl VisitorList {
    fn add_page(&mut self, f: &Value) {
        assert_eq!(f["type"], "visitors_snapshot");
        for v in f["visitors"].as_array().unwrap() {
            self.map
                .insert(v["visitor_id"].as_str().unwrap().to_string(), v.clone());
        }
    }

    fn apply(&mut self, frame: &Value) {
        self.frames += 1;
        for c in frame["changes"].as_array().unwrap() {
            self.changes.push(c.clone());
            let id = c["visitor_id"].as_str().unwrap().to_string();
            match c["kind"].as_str().unwrap() {
                "leave" => {
                    self.map.remove(&id);
                }
                _ => {
                    let rec = c["visitor"].clone();
                    let older = self
                        .map
                        .get(&id)
                        .is_some_and(|old| rec["last_seen"].as_i64() < old["last_seen"].as_i64());
                    if !older {
                        self.map.insert(id, rec);
                    }
                }
            }
        }
    }

    /// Page views of this visit, as the list shows them.
    fn count(&self, id: &str) -> u64 {
        self.map
            .get(id)
            .and_then(|v| v["page_count"].as_u64())
            .unwrap_or(0)
    }

    fn kinds_of(&self, id: &str) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c["visitor_id"] == id)
            .map(|c| c["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The visitor's page history, asked for on demand.
async fn history(agent: &mut Client, vid: &str) -> Vec<Value> {
    agent
        .send(json!({"type": "visitor_history", "visitor_id": vid}))
        .await;
    let f = agent.expect("visitor_history").await;
    assert_eq!(f["visitor_id"], vid);
    f["pages"].as_array().unwrap().clone()
}

async fn urls(agent: &mut Client, vid: &str) -> Vec<String> {
    history(agent, vid)
        .await
        .iter()
        .map(|p| p["url"].as_str().unwrap().to_string())
        .collect()
}

/// Applies batches until `done` holds (each wait bounded by the client's `WAIT`).
async fn until(agent: &mut Client, list: &mut VisitorList, done: impl Fn(&VisitorList) -> bool) {
    while !done(list) {
        let f = agent.expect("visitors_changed").await;
        list.apply(&f);
    }
}

/// Starts watching and reads every page of the list.
async fn watching(agent: &mut Client) -> VisitorList {
    agent.send(json!({"type": "watch_visitors"})).await;
    let mut list = VisitorList::default();
    let mut page = agent.expect("visitors_snapshot").await;
    loop {
        list.add_page(&page);
        let next = page["next"].as_str().unwrap_or_default().to_string();
        if next.is_empty() {
            return list;
        }
        agent
            .send(json!({"type": "list_visitors", "after": next}))
            .await;
        page = agent.expect("visitors_snapshot").await;
    }
}

async fn browser(node: &switchboard::app::Running, token: &str) -> Client {
    Client::connect_with_headers(
        node,
        "visitor",
        token,
        &[("x-forwarded-for", "203.0.113.7"), ("x-country", "de")],
    )
    .await
}

/// A page view, then a ping so the view is known to be processed.
async fn view(v: &mut Client, url: &str) {
    v.send(
        json!({"type": "page_view", "url": url, "title": format!("Title of {url}"),
        "referrer": "https://search.example/?q=shoes"}),
    )
    .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browsing_on_one_node_reaches_watchers_on_others_in_batches() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "wes", 2).await;
    let mut list = watching(&mut agent).await;

    let (vid, token) = visitor_token(&a).await;
    let mut v = browser(&a, &token).await;
    for i in 1..=3 {
        view(&mut v, &format!("https://shop.example/p{i}")).await;
    }
    until(&mut agent, &mut list, |l| l.count(&vid) == 3).await;
    // Three views within one delivery period travel together (at most split by one tick),
    // the latest record of the visitor only; the first one says it arrived.
    assert!(list.frames <= 2, "{} frames for 3 changes", list.frames);
    assert_eq!(list.kinds_of(&vid)[0], "arrive");
    assert!(list.kinds_of(&vid).len() <= 2, "{:?}", list.kinds_of(&vid));
    let rec = list.map[&vid].clone();
    assert!(
        rec.get("pages").is_none(),
        "the list carries no history: {rec}"
    );
    assert_eq!(
        urls(&mut agent, &vid).await,
        vec![
            "https://shop.example/p1",
            "https://shop.example/p2",
            "https://shop.example/p3"
        ]
    );
    assert_eq!(rec["url"], "https://shop.example/p3");
    assert_eq!(rec["title"], "Title of https://shop.example/p3");
    assert_eq!(
        history(&mut agent, &vid).await[0]["referrer"],
        "https://search.example/?q=shoes"
    );
    assert_eq!(rec["ip"], "203.0.113.7");
    assert_eq!(rec["country"], "DE");
    assert_eq!(rec["new"], true);
    assert_eq!(rec["chatting"], false);
    assert!(rec["started_at"].as_i64().unwrap() <= rec["last_seen"].as_i64().unwrap());

    // An agent who starts watching now, on the visitor's node, gets it all in the snapshot.
    let mut agent2 = available_agent(&cluster, &a, "xia", 2).await;
    let list2 = watching(&mut agent2).await;
    assert_eq!(list2.map[&vid], list.map[&vid]);
    assert_eq!(list2.map[&vid]["ip"], "203.0.113.7");
    assert_eq!(list2.map[&vid]["started_at"], rec["started_at"]);

    // The next view reaches both watchers, on both nodes.
    let mut list2 = list2;
    view(&mut v, "https://shop.example/p4").await;
    until(&mut agent, &mut list, |l| l.count(&vid) == 4).await;
    until(&mut agent2, &mut list2, |l| l.count(&vid) == 4).await;

    // After unwatching, no more batches.
    agent2.send(json!({"type": "unwatch_visitors"})).await;
    agent2.send(json!({"type": "ping"})).await;
    agent2.expect("pong").await;
    view(&mut v, "https://shop.example/p5").await;
    until(&mut agent, &mut list, |l| l.count(&vid) == 5).await;
    let late = agent2.drain_for(Duration::from_millis(700)).await;
    assert!(
        late.iter().all(|f| f["type"] != "visitors_changed"),
        "{late:?}"
    );
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn navigation_keeps_one_visit_and_leaving_ends_it_after_the_grace() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "nav", 2).await;
    let mut list = watching(&mut agent).await;
    let (vid, token) = visitor_token(&a).await;

    // Page 1 on node A, then the browser loads page 2 through node B.
    let mut v = browser(&a, &token).await;
    view(&mut v, "https://shop.example/one").await;
    v.close().await;
    let mut v = browser(&b, &token).await;
    view(&mut v, "https://shop.example/two").await;
    until(&mut agent, &mut list, |l| l.count(&vid) == 2).await;
    // One visit: its arrival, maybe a page view (the two nodes' batches may cross), no leave.
    let kinds = list.kinds_of(&vid);
    assert!(kinds.contains(&"arrive".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"leave".to_string()), "{kinds:?}");
    let mut agent2 = available_agent(&cluster, &a, "nav2", 1).await;
    let fresh = watching(&mut agent2).await;
    assert_eq!(fresh.map.len(), 1);
    assert_eq!(
        urls(&mut agent2, &vid).await,
        vec!["https://shop.example/one", "https://shop.example/two"]
    );

    // Gone: the `leave` change comes once the grace period is over, not before.
    let closed = Instant::now();
    v.close().await;
    until(&mut agent, &mut list, |l| !l.map.contains_key(&vid)).await;
    let after = closed.elapsed();
    assert!(
        after >= Duration::from_millis(GRACE_MS - 200),
        "left after {after:?}"
    );
    assert_eq!(list.kinds_of(&vid).last().unwrap(), "leave");
    assert!(
        cluster.redis_keys().await.iter().all(
            |k| !k.contains(&format!("visitor:{vid}")) && !k.contains(&format!("vpages:{vid}"))
        ),
        "the visit's keys are gone"
    );
    // Coming back later is a new visit.
    let mut v = browser(&a, &token).await;
    view(&mut v, "https://shop.example/back").await;
    until(&mut agent, &mut list, |l| l.count(&vid) == 1).await;
    assert_eq!(list.kinds_of(&vid).last().unwrap(), "arrive");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_visitor_whose_node_dies_disappears_on_time() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "kim", 2).await;
    let mut list = watching(&mut agent).await;
    let (vid, token) = visitor_token(&a).await;
    let mut v = browser(&a, &token).await;
    view(&mut v, "https://shop.example/").await;
    until(&mut agent, &mut list, |l| l.map.contains_key(&vid)).await;

    let killed = Instant::now();
    a.kill();
    until(&mut agent, &mut list, |l| !l.map.contains_key(&vid)).await;
    let after = killed.elapsed();
    // The grace timer was last pushed by A's heartbeat; B fires it (poll + flush slack).
    assert!(
        after <= Duration::from_millis(GRACE_MS + 2_500),
        "left after {after:?}"
    );
    drop(v);
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_flag_follows_contacts_in_the_store() {
    const SECRET: &str = "identify-secret-of-the-shop-0123456789";
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        tweak(s);
        s.auth.identify_secret = SECRET.into();
    })
    .await;
    let sig = switchboard::chat::identity::identify_signature(SECRET, "ola@example.com");
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "nia", 2).await;
    let mut list = watching(&mut agent).await;

    // An unknown visitor is new, also once the site vouches for its e-mail (no contact has
    // it yet); the chat request shows it "chatting".
    let (v1, token1) = visitor_token(&a).await;
    let mut v = browser(&a, &token1).await;
    view(&mut v, "https://shop.example/").await;
    until(&mut agent, &mut list, |l| l.map.contains_key(&v1)).await;
    assert_eq!(list.map[&v1]["new"], true);
    v.send(
        json!({"type": "identify", "email": "ola@example.com", "name": "Ola", "signature": sig}),
    )
    .await;
    v.send(json!({"type": "request_chat", "name": "Someone", "email": "other@example.com", "question": "Sizes?"}))
        .await;
    let chat = v.expect("queued").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    until(&mut agent, &mut list, |l| l.map[&v1]["chatting"] == true).await;
    // The form's typed name and e-mail do not replace what the site vouched for.
    assert_eq!(list.map[&v1]["email"], "ola@example.com");
    assert_eq!(list.map[&v1]["email_verified"], true);
    assert_eq!(list.map[&v1]["name"], "Ola");
    assert_eq!(list.map[&v1]["new"], true);

    // The chat runs and is decided: a contact now exists.
    accept_offer(&mut agent, &mut v, &chat).await;
    v.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    until(&mut agent, &mut list, |l| l.map[&v1]["chatting"] == false).await;
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": "create"}))
        .await;
    agent.expect("decided").await;
    eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;

    // Another browser, unknown, stays new when it types that e-mail (anyone can type it), and
    // is known once the site vouches for it.
    let (v2, token2) = visitor_token(&a).await;
    let mut w = browser(&b, &token2).await;
    view(&mut w, "https://shop.example/").await;
    until(&mut agent, &mut list, |l| l.map.contains_key(&v2)).await;
    assert_eq!(list.map[&v2]["new"], true);
    w.send(json!({"type": "request_chat", "email": "OLA@example.com"}))
        .await;
    w.expect("queued").await;
    until(&mut agent, &mut list, |l| {
        l.map[&v2]["email"] == "OLA@example.com"
    })
    .await;
    assert_eq!(list.map[&v2]["email_verified"], false);
    assert_eq!(list.map[&v2]["new"], true);
    w.send(json!({"type": "identify", "email": "ola@example.com", "signature": sig}))
        .await;
    until(&mut agent, &mut list, |l| l.map[&v2]["new"] == false).await;

    // The first visitor leaves and comes back: a new visit, no longer new (same visitor id).
    v.close().await;
    until(&mut agent, &mut list, |l| !l.map.contains_key(&v1)).await;
    let mut v = browser(&a, &token1).await;
    view(&mut v, "https://shop.example/again").await;
    until(&mut agent, &mut list, |l| l.map.contains_key(&v1)).await;
    assert_eq!(list.map[&v1]["new"], false);
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_urls_and_wrong_roles_are_refused() {
    let cluster = Cluster::with(Backend::Sqlite, tweak).await;
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    for url in [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example/x",
        "not a url",
        "",
    ] {
        v.send(json!({"type": "page_view", "url": url})).await;
        let e = v.expect("error").await;
        assert_eq!(e["code"], 4003, "{url}: {e}");
    }
    assert!(
        cluster
            .redis_keys()
            .await
            .iter()
            .all(|k| !k.contains(":visitor:")
                && !k.contains(":vpages:")
                && !k.ends_with(":visitors")),
        "nothing stored for refused page views"
    );
    // A hostile referrer is left out; the view itself counts.
    v.send(json!({"type": "page_view", "url": "https://shop.example/", "referrer": "javascript:alert(1)", "title": "x".repeat(500)}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    // Visitors do not watch the list; agents do not report page views.
    v.send(json!({"type": "watch_visitors"})).await;
    assert_eq!(v.expect("error").await["code"], 4005);
    let mut agent = available_agent(&cluster, &a, "rae", 1).await;
    agent
        .send(json!({"type": "page_view", "url": "https://shop.example/"}))
        .await;
    assert_eq!(agent.expect("error").await["code"], 4005);
    let list = watching(&mut agent).await;
    assert_eq!(list.map.len(), 1);
    let (vid, rec) = list.map.iter().next().unwrap();
    assert_eq!(history(&mut agent, vid).await[0]["referrer"], "");
    assert_eq!(rec["title"].as_str().unwrap().chars().count(), 120);
    // Unknown visitors have no history; a malformed cursor is refused.
    agent
        .send(json!({"type": "visitor_history", "visitor_id": "nobody"}))
        .await;
    assert_eq!(agent.expect("error").await["code"], 4004);
    agent
        .send(json!({"type": "list_visitors", "after": "nope"}))
        .await;
    assert_eq!(agent.expect("error").await["code"], 4003);
    a.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_list_comes_in_pages_with_capped_records_and_histories() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        tweak(s);
        s.abuse.visitors_page_size = 10;
        s.abuse.visitor_pages_kept = 3;
        s.abuse.visitor_url_chars = 40;
        s.abuse.visitor_title_chars = 10;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut visitors = Vec::new();
    for i in 0..25 {
        let (vid, token) = visitor_token(&a).await;
        let mut v = browser(&a, &token).await;
        view(&mut v, &format!("https://shop.example/v{i}")).await;
        visitors.push((vid, v));
    }
    let mut agent = available_agent(&cluster, &b, "pam", 1).await;
    agent
        .send(json!({"type": "watch_visitors", "limit": 50}))
        .await;
    let first = agent.expect("visitors_snapshot").await;
    assert_eq!(
        first["visitors"].as_array().unwrap().len(),
        10,
        "the page size caps a limit"
    );
    assert_eq!(first["total"], 25);
    assert_eq!(first["after"], "");
    // Every visitor a page listed moves on before the next page is read: the list is ordered by
    // the start of the visit, which page views never change, so the pages still list each
    // visitor exactly once and the read ends (ordered by last seen, each would come again).
    let list = {
        let mut list = VisitorList::default();
        let mut listed: HashMap<String, usize> = HashMap::new();
        let mut page = first;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages <= 10, "the read of 25 visitors does not end");
            list.add_page(&page);
            for row in page["visitors"].as_array().unwrap() {
                let vid = row["visitor_id"].as_str().unwrap().to_string();
                *listed.entry(vid.clone()).or_default() += 1;
                let (_, v) = visitors.iter_mut().find(|(id, _)| *id == vid).unwrap();
                view(v, "https://shop.example/moved").await;
            }
            let next = page["next"].as_str().unwrap().to_string();
            if next.is_empty() {
                break;
            }
            agent
                .send(json!({"type": "list_visitors", "after": next, "limit": 7}))
                .await;
            page = agent.expect("visitors_snapshot").await;
            assert_eq!(page["after"], next.as_str());
            assert!(page["visitors"].as_array().unwrap().len() <= 7);
        }
        assert!(pages >= 4, "{pages} pages");
        assert!(
            listed.values().all(|&n| n == 1),
            "listed more than once: {listed:?}"
        );
        list
    };
    assert_eq!(list.map.len(), 25);
    for (vid, _) in &visitors {
        assert!(list.map.contains_key(vid), "{vid} missing");
    }

    // Records and histories keep only so much: URL and title cut, the last 3 pages.
    let (vid, v) = &mut visitors[1];
    let long = format!("https://shop.example/{}", "x".repeat(1900));
    for i in 0..5 {
        v.send(
            json!({"type": "page_view", "url": format!("{long}{i}"), "title": "T".repeat(500),
            "referrer": long.clone()}),
        )
        .await;
    }
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    let pages = history(&mut agent, vid).await;
    assert_eq!(pages.len(), 3);
    for p in &pages {
        assert_eq!(p["url"].as_str().unwrap().chars().count(), 40, "{p}");
        assert_eq!(p["referrer"].as_str().unwrap().chars().count(), 40, "{p}");
        assert_eq!(p["title"].as_str().unwrap().chars().count(), 10, "{p}");
    }
    agent.send(json!({"type": "watch_visitors"})).await;
    let page = agent.expect("visitors_snapshot").await;
    // Its place in the list is where its visit started: on the first page still.
    let rec = page["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["visitor_id"] == vid.as_str())
        .expect("on the first page");
    // The first view, the one while the pages were read, and these five.
    assert_eq!(rec["page_count"], 7);
    assert_eq!(rec["url"].as_str().unwrap().chars().count(), 40);
    assert_eq!(rec["title"].as_str().unwrap().chars().count(), 10);
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
