//! Nobody left behind, the agents' side and the queue's open state: a missed offer sets the
//! agent away and tells them why, the request waits in the Waiting list until an agent picks it
//! (one wins across nodes), a lone agent gets it again once the deny list clears, and a
//! visitor watching the queue is told live when it opens and closes (staffed, business hours).
//! Two nodes, real Redis, SQLite and PostgreSQL.

mod common;

use common::accounts::admin;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn waiting_has(f: &Value, chat: &str) -> bool {
    f["type"] == "waiting"
        && f["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|w| w["chat_id"] == chat))
}

fn waiting_lacks(f: &Value, chat: &str) -> bool {
    f["type"] == "waiting" && !waiting_has(f, chat)
}

/// A connected agent left away (so routing offers it nothing).
async fn away_agent(cluster: &Cluster, node: &switchboard::app::Running, name: &str) -> Client {
    cluster.agent(name, 2).await;
    let token = agent_token(node, name).await;
    let mut a = Client::agent(node, &token).await;
    a.expect("status").await;
    set_status(&mut a, "away").await;
    a
}

async fn missed_offer_then_picked(backend: Backend) {
    let cluster = Cluster::with(backend, |s| s.chat.offer_timeout_ms = 400).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut lone = available_agent(&cluster, &b, "lone", 1).await;
    let mut second = away_agent(&cluster, &a, "second").await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "Is anyone there?").await;

    lone.expect_where("offer", |f| f["type"] == "offer").await;
    let revoked = lone.expect("offer_revoked").await;
    assert_eq!(revoked["reason"], "timeout");
    let status = lone
        .expect_where("away status", |f| {
            f["type"] == "status" && f["status"] == "away"
        })
        .await;
    assert_eq!(status["reason"], "missed_offer");

    // Nobody available now: the request waits, and the other agent (other node) sees it.
    let c = chat.clone();
    let w = second
        .expect_where("waiting with the request", move |f| waiting_has(f, &c))
        .await;
    let item = &w["requests"][0];
    assert_eq!(item["name"], "Vera");
    assert_eq!(item["email"], "vera@example.com");
    assert_eq!(item["email_verified"], false);
    assert_eq!(item["question"], "Is anyone there?");
    assert!(item["created_at"].as_i64().unwrap() > 0);

    second.send(json!({"type": "pick", "chat_id": chat})).await;
    let started = visitor.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Agent second");
    second.expect("chat_started").await;
    let c = chat.clone();
    second
        .expect_where("waiting without the request", move |f| waiting_lacks(f, &c))
        .await;
    cluster.cleanup().await;
}

sqlite_and_postgres!(missed_offer_then_picked => missed_offer_sets_the_agent_away_and_a_colleague_picks_it_sqlite, missed_offer_sets_the_agent_away_and_a_colleague_picks_it_postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_agent_is_offered_the_request_again_after_the_deny_list_clears() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.chat.deny_reset_ms = 1_500).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut lone = available_agent(&cluster, &b, "solo", 1).await;
    let (_visitor, chat, _, _) = requesting_visitor(&a, "second chance?").await;
    let c = chat.clone();
    lone.expect_where("offer", move |f| {
        f["type"] == "offer" && f["chat_id"] == c.as_str()
    })
    .await;
    lone.send(json!({"type": "deny", "chat_id": chat})).await;
    lone.expect_where("denied", |f| {
        f["type"] == "offer_revoked" && f["reason"] == "denied"
    })
    .await;
    // Denied: not offered again at once (the sweep routes the queue every second).
    let soon = lone.drain_for(Duration::from_millis(700)).await;
    assert!(
        !soon.iter().any(|f| f["type"] == "offer"),
        "offered again before the reset: {soon:?}"
    );
    // Once the deny list clears, the same agent gets it again.
    let c = chat.clone();
    lone.expect_where("offer again", move |f| {
        f["type"] == "offer" && f["chat_id"] == c.as_str()
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_offer_leaves_the_agent_available_when_configured() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.chat.offer_timeout_ms = 300;
        s.chat.away_on_missed_offer = false;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "stays", 2).await;
    let (_v, _chat, _, _) = requesting_visitor(&a, "q").await;
    agent.expect("offer").await;
    agent.expect("offer_revoked").await;
    let later = agent.drain_for(Duration::from_millis(500)).await;
    assert!(
        !later.iter().any(|f| f["type"] == "status"),
        "status changed: {later:?}"
    );
    let r = redis_cli(&[
        "HGET",
        &format!("{}{{r}}:agent:1", cluster.prefix),
        "status",
    ]);
    assert_eq!(r.trim(), "available");
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_picking_the_same_request_at_once_exactly_one_wins() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut left = away_agent(&cluster, &a, "left").await;
    let mut right = away_agent(&cluster, &b, "right").await;
    for round in 0..5 {
        let (mut visitor, chat, _, _) = requesting_visitor(&a, &format!("race {round}")).await;
        for agent in [&mut left, &mut right] {
            let c = chat.clone();
            agent
                .expect_where("waiting", move |f| waiting_has(f, &c))
                .await;
        }
        let pick = json!({"type": "pick", "chat_id": chat});
        tokio::join!(left.send(pick.clone()), right.send(pick));
        // The winner's connections are told `offer_revoked{accepted}`; the loser gets an
        // error (it may also see the chat start: it followed the chat while it tried).
        let outcome = |c: String| {
            move |f: &Value| {
                (f["type"] == "offer_revoked"
                    && f["reason"] == "accepted"
                    && f["chat_id"] == c.as_str())
                    || (f["type"] == "error" && f["ref"] == c.as_str())
            }
        };
        let (l, r) = tokio::join!(
            left.expect_where("pick outcome", outcome(chat.clone())),
            right.expect_where("pick outcome", outcome(chat.clone()))
        );
        let winners = [&l, &r]
            .iter()
            .filter(|f| f["type"] == "offer_revoked")
            .count();
        assert_eq!(winners, 1, "round {round}: {l} / {r}");
        let loser = if l["type"] == "error" { &l } else { &r };
        assert_eq!(loser["code"], 4006);
        visitor.expect("chat_started").await;
        // The winner ends the chat so capacity stays free for the next round.
        let winner = if l["type"] == "error" {
            &mut right
        } else {
            &mut left
        };
        winner.send(json!({"type": "end", "chat_id": chat})).await;
        let c = chat.clone();
        winner
            .expect_where("chat_ended", move |f| {
                f["type"] == "chat_ended" && f["chat_id"] == c.as_str()
            })
            .await;
        decide(winner, &chat, "trash").await;
    }
    cluster.cleanup().await;
}

fn open_is(f: &Value, open: bool) -> bool {
    f["type"] == "queue_status" && f["open"] == open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_visitor_is_told_when_the_queue_opens_and_closes() {
    let cluster = Cluster::with(Backend::Postgres, |s| s.chat.max_wait_ms = 90_000).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("opener", 1).await;
    let (_, token) = visitor_token(&a).await;
    let mut visitor = Client::visitor(&a, &token).await;
    visitor.send(json!({"type": "watch_queue"})).await;
    let first = visitor.expect("queue_status").await;
    assert_eq!(first["queue"], "general");
    assert_eq!(first["open"], false);
    assert_eq!(first["staffed"], false);
    assert_eq!(first["in_hours"], true);
    assert_eq!(first["max_wait_ms"], 90_000);

    // An agent on the other node becomes available: the visitor is told, unasked.
    let mut agent = Client::agent(&b, &agent_token(&b, "opener").await).await;
    agent.expect("status").await;
    set_status(&mut agent, "available").await;
    let open = visitor.expect_where("open", |f| open_is(f, true)).await;
    assert_eq!(open["staffed"], true);
    set_status(&mut agent, "away").await;
    visitor.expect_where("closed", |f| open_is(f, false)).await;
    set_status(&mut agent, "available").await;
    visitor
        .expect_where("open again", |f| open_is(f, true))
        .await;

    // Business hours that never include now (an empty week): closed although staffed, with
    // the queue's own text.
    let admin = admin(&cluster, &b, "boss").await;
    let (status, body) = put(
        &format!("{}/api/admin/queues/general", http(&b)),
        json!({"offline_text": "Back on Monday.", "business_hours": {"timezone": "Europe/Berlin", "days": {}}}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let closed = visitor
        .expect_where("closed by the clock", |f| open_is(f, false))
        .await;
    assert_eq!(closed["staffed"], true);
    assert_eq!(closed["in_hours"], false);
    assert_eq!(closed["offline_text"], "Back on Monday.");

    // Bad hours are refused with the documented code, naming what is wrong.
    let (status, body) = put(
        &format!("{}/api/admin/queues/general", http(&a)),
        json!({"business_hours": {"timezone": "Mars/Olympus", "days": {}}}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 4003);
    assert!(body["message"].as_str().unwrap().contains("time zone"));
    // Agents who are not admins may not change queues.
    let agent_tok = agent_token(&a, "opener").await;
    let (status, _) = put(
        &format!("{}/api/admin/queues/general", http(&a)),
        json!({"offline_text": "x"}),
        Some(&agent_tok),
    )
    .await;
    assert_eq!(status, 403);
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queued_frame_carries_an_estimate_once_the_queue_has_history() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "fast", 3).await;
    let (mut v1, chat1, _, _) = requesting_visitor(&a, "first").await;
    accept_offer(&mut agent, &mut v1, &chat1).await;
    // History now has one wait; a later request's queued frame carries an estimate.
    let waits = redis_cli(&["LLEN", &format!("{}{{r}}:waits:general", cluster.prefix)]);
    assert_eq!(waits.trim(), "1");
    let q = eventually("an estimate", || async {
        let (_, token) = visitor_token(&a).await;
        let mut v = Client::visitor(&a, &token).await;
        v.send(json!({"type": "request_chat", "question": "second"}))
            .await;
        let q = v.expect("queued").await;
        q.get("estimated_wait_ms").cloned().filter(|e| e.is_u64())
    })
    .await;
    assert!(q.as_u64().unwrap() < 60_000);
    cluster.cleanup().await;
}
