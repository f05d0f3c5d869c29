//! Presence through faults, on real processes: a Redis of the test's own on a spare port that
//! refuses writes (maxmemory) or is killed and restarted from its append-only file, for longer
//! than the grace periods; people who stayed connected keep their chats and statuses, people
//! who left are still ended. And an agent's availability following its console.

mod common;

use common::own_redis::OwnRedis;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard::app::Running;
use switchboard::config::Settings;

/// Grace periods far shorter than the outages below.
fn short_graces(s: &mut Settings, url: &str) {
    s.redis.url = url.into();
    s.chat.visitor_grace_ms = 2_000;
    s.chat.agent_grace_ms = 3_000;
    s.chat.agent_unroutable_ms = 1_000;
    s.chat.presence_settle_ms = 3_000;
}

/// How long each outage lasts: four visitor grace periods, and longer than a party's presence
/// record lives without a write (2 × 3 s + 1.5 s), so the nodes must write them all again.
const OUTAGE: Duration = Duration::from_secs(8);

/// A running chat: its visitor's client and the index of its agent.
struct Live {
    chat: String,
    visitor: Client,
    agent: usize,
}

fn agent_id(a: &Client) -> String {
    a.welcome["id"].as_str().unwrap().to_string()
}

/// A visitor on `node` asks; whichever agent routing picks accepts.
async fn chat_on(redis: &OwnRedis, node: &Running, agents: &mut [Client], q: &str) -> Live {
    let (mut visitor, chat, _, _) = requesting_visitor(node, q).await;
    let key = node.service.redis.keys.chat(&chat);
    let to = eventually("an offer", || async {
        Some(redis.hget(&key, "offered_to")).filter(|s| !s.is_empty())
    })
    .await;
    let agent = agents.iter().position(|a| agent_id(a) == to).unwrap();
    accept_offer(&mut agents[agent], &mut visitor, &chat).await;
    Live {
        chat,
        visitor,
        agent,
    }
}

/// Both sides of a chat still talk.
async fn talk(live: &mut Live, agents: &mut [Client], tag: &str) {
    let (v, a) = (format!("visitor {tag}"), format!("agent {tag}"));
    both_ways(
        &mut live.visitor,
        &mut agents[live.agent],
        &live.chat,
        &v,
        &a,
    )
    .await;
}

/// After the outage: the chats that stayed are `active`, nobody heard of an end or a status
/// change, and both agents are `available` and take offers.
async fn nothing_ended(
    redis: &OwnRedis,
    node: &Running,
    stayed: &mut [Live],
    agents: &mut [Client],
) {
    // Long enough for any timer that came due in the outage to have fired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for live in stayed.iter_mut() {
        let frames = live.visitor.drain_for(Duration::from_millis(100)).await;
        assert!(
            frames.iter().all(|f| f["type"] != "chat_ended"),
            "{frames:?}"
        );
        let key = node.service.redis.keys.chat(&live.chat);
        assert_eq!(redis.hget(&key, "state"), "active", "chat {}", live.chat);
    }
    for a in agents.iter_mut() {
        let frames = a.drain_for(Duration::from_millis(100)).await;
        let id = agent_id(a);
        assert!(
            frames.iter().all(|f| f["type"] != "status"
                && !(f["type"] == "chat_ended"
                    && stayed.iter().any(|l| f["chat_id"] == l.chat.as_str()))),
            "agent {id}: {frames:?}"
        );
        let key = node.service.redis.keys.agent(&id);
        assert_eq!(redis.hget(&key, "status"), "available", "agent {id}");
        assert!(redis.routable(node, &id), "agent {id} takes no offers");
    }
}

/// Redis refuses every write for four grace periods (maxmemory, noeviction). Nobody who
/// stayed connected loses a chat or a status; the visitor who closed the browser meanwhile,
/// and the visitor whose node died meanwhile, are ended once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_writes_longer_than_the_grace_periods_ends_only_who_left() {
    let redis = OwnRedis::start();
    let cluster = Cluster::with(Backend::Sqlite, |s| short_graces(s, &redis.url())).await;
    let (a, b, c) = (
        cluster.node().await,
        cluster.node().await,
        cluster.node().await,
    );
    let mut agents = vec![
        available_agent(&cluster, &a, "ann", 4).await,
        available_agent(&cluster, &b, "bob", 4).await,
    ];
    let mut stayed = vec![
        chat_on(&redis, &b, &mut agents, "stays on b").await,
        chat_on(&redis, &a, &mut agents, "stays on a").await,
    ];
    let leaver = chat_on(&redis, &a, &mut agents, "leaves").await;
    let orphan = chat_on(&redis, &c, &mut agents, "node dies").await;

    redis.refuse_writes();
    // The outage is real for the clients too.
    let probe =
        json!({"type": "send", "chat_id": stayed[0].chat, "client_msg_id": "x", "text": "refused"});
    let v = &mut stayed[0].visitor;
    v.send(probe).await;
    let e = v.expect("error").await;
    assert_eq!(e["code"], 4501, "{e}");
    leaver.visitor.close().await;
    c.kill();
    tokio::time::sleep(OUTAGE).await;
    redis.accept_writes();

    let gone = [
        (leaver.chat, leaver.agent, "closed the browser"),
        (orphan.chat, orphan.agent, "node died"),
    ];
    for (chat, agent, why) in gone {
        let ended = agents[agent]
            .expect_where(why, |f| {
                f["type"] == "chat_ended" && f["chat_id"] == chat.as_str()
            })
            .await;
        assert_eq!(ended["reason"], "Visitor has closed the browser", "{why}");
    }
    for (i, live) in stayed.iter_mut().enumerate() {
        talk(live, &mut agents, &format!("after {i}")).await;
    }
    nothing_ended(&redis, &a, &mut stayed, &mut agents).await;
    cluster.cleanup().await;
}

/// Redis is killed (SIGKILL) and restarted from its append-only file four grace periods later.
/// The nodes catch their connections up in place; everyone who stayed carries on with the same
/// chats and statuses, and the visitor who closed the browser during the outage is ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crash_and_restart_longer_than_the_grace_periods_ends_only_who_left() {
    let mut redis = OwnRedis::start();
    let cluster = Cluster::with(Backend::Sqlite, |s| short_graces(s, &redis.url())).await;
    let nodes = [cluster.node().await, cluster.node().await];
    let mut agents = vec![
        available_agent(&cluster, &nodes[0], "cat", 4).await,
        available_agent(&cluster, &nodes[1], "dan", 4).await,
    ];
    let mut stayed = vec![
        chat_on(&redis, &nodes[1], &mut agents, "stays on b").await,
        chat_on(&redis, &nodes[0], &mut agents, "stays on a").await,
    ];
    let leaver = chat_on(&redis, &nodes[0], &mut agents, "leaves").await;
    // Browsing visitors on one node, more than two of its heartbeat's batches (50 parties a
    // script): their presence records expire in the outage and every batch must write them
    // again, or their grace timers end their visits.
    let mut browsing = Vec::new();
    for _ in 0..BROWSING {
        let (id, token) = visitor_token(&nodes[0]).await;
        browsing.push((id, Client::visitor(&nodes[0], &token).await));
    }

    redis.crash();
    leaver.visitor.close().await;
    tokio::time::sleep(OUTAGE).await;
    redis.spawn();

    for n in &nodes {
        for _ in 0..8 {
            n.service
                .redis
                .ping()
                .await
                .expect("node reaches redis again");
        }
    }
    // Each node's subscriber connection comes back, subscribes again and its connections catch
    // up from the streams: nobody is closed, and a resume on the same connection reads the
    // chat as it was.
    for n in &nodes {
        eventually("the node subscribed again", || async {
            (n.service
                .metrics
                .resyncs
                .with_label_values(&["reconnected"])
                .get()
                >= 1)
                .then_some(())
        })
        .await;
    }
    for live in stayed.iter_mut() {
        for (who, c) in [
            ("visitor", &mut live.visitor),
            ("agent", &mut agents[live.agent]),
        ] {
            c.send(json!({"type": "resume", "chat_id": live.chat, "last_seq": ""}))
                .await;
            let chat = live.chat.clone();
            c.expect_where(who, |f| {
                f["type"] == "resumed" && f["chat_id"] == chat.as_str()
            })
            .await;
            assert_eq!(c.closed, None, "{who} of {chat} was closed");
        }
    }

    let key = nodes[0].service.redis.keys.chat(&leaver.chat);
    eventually("the leaver's chat ended", || async {
        Some(()).filter(|_| !redis.hget(&key, "end_reason").is_empty())
    })
    .await;
    assert_eq!(
        redis.hget(&key, "end_reason"),
        "Visitor has closed the browser"
    );
    for (i, live) in stayed.iter_mut().enumerate() {
        talk(live, &mut agents, &format!("after {i}")).await;
    }
    nothing_ended(&redis, &nodes[0], &mut stayed, &mut agents).await;
    let keys = &nodes[0].service.redis.keys;
    let present = |id: &str| {
        let here = redis.cli(&["HKEYS", &keys.here(&format!("v:{id}"))]);
        !here.trim().is_empty()
    };
    let unwritten: Vec<&String> = browsing
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !present(id))
        .collect();
    assert!(
        unwritten.is_empty(),
        "presence not written again: {unwritten:?}"
    );
    for (id, mut v) in browsing {
        let frames = v.drain_for(Duration::from_millis(10)).await;
        assert_eq!(
            v.closed, None,
            "browsing visitor {id} was closed: {frames:?}"
        );
    }
    cluster.cleanup().await;
}

/// Browsing visitors held by one node in the crash test: three heartbeat batches.
const BROWSING: usize = 120;

/// An agent whose console closes leaves routing within `chat.agent_unroutable_ms` on every
/// node (the next request goes to another agent), keeps its running chat, and takes offers
/// again with the status it had when a console connects again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_console_makes_the_agent_unroutable_until_a_console_is_back() {
    let redis = OwnRedis::start();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = redis.url();
        s.chat.agent_unroutable_ms = 1_000;
        // Far longer than the test: only unroutability can keep offers from the agent.
        s.chat.agent_grace_ms = 60_000;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    // Ann is available first (idle longest): routing prefers her on a tie.
    let mut agents = vec![
        available_agent(&cluster, &a, "ann", 3).await,
        available_agent(&cluster, &b, "bob", 3).await,
    ];
    let ann = agent_id(&agents[0]);
    let mut first = chat_on(&redis, &b, &mut agents, "one").await;
    assert_eq!(first.agent, 0);
    let second = chat_on(&redis, &b, &mut agents, "two").await;
    assert_eq!(second.agent, 1);

    let closed = Instant::now();
    agents.remove(0).close().await;
    eventually("ann out of routing", || async {
        Some(()).filter(|_| !redis.routable(&b, &ann))
    })
    .await;
    println!("unroutable after {:?}", closed.elapsed());

    // Ann and Bob both hold one chat and Ann idled longer, yet the request goes to Bob.
    let (_v, chat, _, _) = requesting_visitor(&b, "three").await;
    let c = chat.clone();
    agents[0]
        .expect_where("offer to bob", |f| {
            f["type"] == "offer" && f["chat_id"] == c.as_str()
        })
        .await;
    // Ann's running chat goes on without her console.
    first
        .visitor
        .send(json!({"type": "send", "chat_id": first.chat, "client_msg_id": "m", "text": "still there?"}))
        .await;
    first.visitor.expect("ack").await;
    assert_eq!(
        redis.hget(&b.service.redis.keys.chat(&first.chat), "state"),
        "active"
    );

    // A console again, on the other node: same status, routable, and the next request is hers.
    let mut back = Client::agent(&b, &agent_token(&b, "ann").await).await;
    assert_eq!(back.expect("status").await["status"], "available");
    assert!(redis.routable(&b, &ann));
    back.send(json!({"type": "resume", "chat_id": first.chat, "last_seq": ""}))
        .await;
    back.expect_text("still there?").await;
    let (_w, chat, _, _) = requesting_visitor(&a, "four").await;
    let c = chat.clone();
    back.expect_where("offer to ann", |f| {
        f["type"] == "offer" && f["chat_id"] == c.as_str()
    })
    .await;
    agents.insert(0, back);
    talk(&mut first, &mut agents, "back").await;
    cluster.cleanup().await;
}

/// An offer waiting for an agent whose console closed is taken back when the agent becomes
/// unroutable (long before the offer would time out) and offered to another agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_to_an_agent_whose_console_closed_goes_to_another_agent() {
    let redis = OwnRedis::start();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = redis.url();
        s.chat.agent_unroutable_ms = 1_000;
        s.chat.agent_grace_ms = 60_000;
        s.chat.offer_timeout_ms = 60_000;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let ann_console = available_agent(&cluster, &a, "ann", 1).await;
    let mut bob = available_agent(&cluster, &b, "bob", 1).await;
    let ann = agent_id(&ann_console);
    let (mut visitor, chat, _, _) = requesting_visitor(&b, "anyone?").await;
    let key = b.service.redis.keys.chat(&chat);
    eventually("offered to ann", || async {
        Some(()).filter(|_| redis.hget(&key, "offered_to") == ann)
    })
    .await;
    ann_console.close().await;

    accept_offer(&mut bob, &mut visitor, &chat).await;
    // Ann was not put among those who refused it, and her load is back to nothing.
    let denied = format!("{}denied:{chat}", b.service.redis.keys.routing());
    assert!(!redis.cli(&["SMEMBERS", &denied]).contains(&ann));
    assert_eq!(redis.hget(&b.service.redis.keys.agent(&ann), "load"), "0");
    // Her next console shows no offer.
    let mut back = Client::agent(&a, &agent_token(&a, "ann").await).await;
    back.expect("status").await;
    let frames = back.drain_for(Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| f["type"] != "offer"), "{frames:?}");
    assert_eq!(
        b.service
            .metrics
            .presence_rechecks
            .with_label_values(&["unroutable", "gone"])
            .get()
            + a.service
                .metrics
                .presence_rechecks
                .with_label_values(&["unroutable", "gone"])
                .get(),
        1
    );
    cluster.cleanup().await;
}
