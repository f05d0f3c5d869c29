//! Hostile anonymous clients on two nodes, at small and bounded sizes: a socket flood from one
//! IP and one visitor, identity minting, a chat-request flood, a page-view flood with an agent
//! watching the site visitors, one visitor writing through many sockets; a transcript at its
//! cap; the socket counts of a node that died. Each flood is refused with its documented code
//! across both nodes while a real chat between a visitor and an agent on the two nodes goes
//! on, and the test process (both nodes run in it) stays within a stated memory bound.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchboard::app::Running;
use switchboard::config::Settings;

/// Growth of this process's resident memory allowed over the whole flood test, both nodes and
/// every client included (measured: about 5 MiB).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Small limits, so each flood hits them within a few hundred requests.
fn small(s: &mut Settings) {
    // Clients choose their address through X-Forwarded-For from the loopback "proxy".
    s.server.trusted_proxies = vec!["127.0.0.1".into()];
    // A flooding socket would be closed after 20 refusals in a row; here each refusal is
    // counted instead.
    s.limits.max_consecutive_errors = 1000;
    let a = &mut s.abuse;
    a.new_visitors_per_ip_per_minute = 1;
    a.new_visitors_per_ip_burst = 6;
    a.sockets_per_visitor = 4;
    a.sockets_per_ip = 10;
    a.chat_requests_per_visitor_per_hour = 1;
    a.chat_requests_per_visitor_burst = 2;
    a.chat_requests_per_ip_per_hour = 1;
    a.chat_requests_per_ip_burst = 4;
    a.page_views_per_visitor_per_minute = 6;
    a.page_views_per_visitor_burst = 5;
    a.page_views_per_ip_per_minute = 60;
    a.page_views_per_ip_burst = 30;
    a.visitor_frames_per_second = 10;
    a.visitor_burst_frames = 20;
    a.visitor_list_bytes_per_second = 4096;
}

/// Resident memory of this process (both nodes and every client), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `POST /api/visitor/session` from `ip`: (status, body, Retry-After).
async fn session_from(node: &Running, ip: &str, body: Value) -> (u16, Value, Option<u64>) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/visitor/session", http(node)))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .expect("http");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

/// A new visitor identity minted from an address of its own (so minting limits stay out of
/// the way of the flood being tested).
async fn fresh_visitor(node: &Running, n: u32) -> (String, String) {
    let ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    let (status, v, _) = session_from(node, &ip, json!({})).await;
    assert_eq!(status, 200, "{v}");
    (
        v["visitor_id"].as_str().unwrap().into(),
        v["token"].as_str().unwrap().into(),
    )
}

async fn visitor_from(node: &Running, token: &str, ip: &str) -> Result<Client, u16> {
    Client::try_connect_with_headers(node, "visitor", token, &[("x-forwarded-for", ip)]).await
}

/// The sum over `nodes` of one series of their `/metrics` (name and labels as exposed).
async fn metric_sum(nodes: &[&Running], series: &str) -> f64 {
    let mut total = 0.0;
    for n in nodes {
        let text = reqwest::get(format!("{}/metrics", http(n)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

/// One round of the real chat: a message each way, across the two nodes.
async fn talk(v: &mut Client, a: &mut Client, chat: &str, round: usize) {
    let (from_visitor, from_agent) = (
        format!("visitor says {round}"),
        format!("agent says {round}"),
    );
    both_ways(v, a, chat, &from_visitor, &from_agent).await;
}

/// Waits until `c` answers a ping: what it sent before has been processed.
async fn settled(c: &mut Client) {
    c.send(json!({"type": "ping", "nonce": 7})).await;
    c.expect("pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_are_refused_across_nodes_while_a_real_chat_goes_on() {
    let cluster = Cluster::with(Backend::Sqlite, small).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let nodes = [&a, &b];

    // The real chat: its visitor on A (an address of its own), its agent on B.
    let mut agent = available_agent(&cluster, &b, "ann", 1).await;
    let (_, token) = fresh_visitor(&a, 1).await;
    let mut visitor = visitor_from(&a, &token, "198.51.100.1").await.unwrap();
    let chat = visitor
        .request_chat(json!({"type": "request_chat", "name": "Real", "question": "Hello?"}))
        .await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    talk(&mut visitor, &mut agent, &chat, 0).await;
    // The other agents log in now: a password check alone takes 19 MiB (argon2), which is not
    // what this test measures.
    let mut watcher = available_agent(&cluster, &b, "wes", 1).await;
    set_status(&mut watcher, "away").await;
    let mut helper = available_agent(&cluster, &a, "hal", 1).await;
    set_status(&mut helper, "away").await;
    let rss_before = rss_kib();
    let mut refused = Vec::new();

    // 1. Identity minting from one IP, on both nodes: the burst, then 429 with Retry-After.
    let mut minted = 0;
    let mut limited = 0;
    for i in 0..40 {
        let (status, body, retry) = session_from(nodes[i % 2], "203.0.113.66", json!({})).await;
        match status {
            200 => minted += 1,
            429 => {
                assert_eq!(body["code"], 4102, "{body}");
                assert_eq!(body["error"], "too_many_requests");
                assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");
                limited += 1;
            }
            other => panic!("status {other}: {body}"),
        }
    }
    assert!((6..=7).contains(&minted), "{minted} identities minted");
    assert_eq!(minted + limited, 40);
    // A visitor who has a token renews it from that address all the same.
    let (_, token6) = fresh_visitor(&b, 6).await;
    let (status, _, _) = session_from(&b, "203.0.113.66", json!({ "token": token6 })).await;
    assert_eq!(status, 200, "a renewal is not a new identity");
    refused.push(("new identities", limited));
    talk(&mut visitor, &mut agent, &chat, 1).await;

    // 2. Sockets: one visitor opens 8 (over both nodes), then more visitors from its IP.
    let ip = "203.0.113.77";
    let (_, t1) = fresh_visitor(&a, 100).await;
    let mut open = Vec::new();
    let mut closed_4430 = 0;
    for i in 0..8 {
        match visitor_from(nodes[i % 2], &t1, ip).await {
            Ok(c) => open.push(c),
            Err(code) => {
                assert_eq!(code, 4430);
                closed_4430 += 1;
            }
        }
    }
    assert_eq!(open.len(), 4, "sockets_per_visitor holds across nodes");
    for n in 101..104 {
        let (_, t) = fresh_visitor(&b, n).await;
        for i in 0..4 {
            match visitor_from(nodes[i % 2], &t, ip).await {
                Ok(c) => open.push(c),
                Err(code) => {
                    assert_eq!(code, 4430);
                    closed_4430 += 1;
                }
            }
        }
    }
    assert_eq!(open.len(), 10, "sockets_per_ip holds across nodes");
    assert_eq!(closed_4430, 10);
    // A socket that closes gives its place back.
    open.pop().unwrap().close().await;
    let (_, t) = fresh_visitor(&a, 104).await;
    let again = eventually("a free place", || async {
        visitor_from(&a, &t, ip).await.ok()
    })
    .await;
    open.push(again);
    refused.push(("sockets", closed_4430));
    talk(&mut visitor, &mut agent, &chat, 2).await;
    drop(open);

    // 3. Chat requests from one IP: the IP's burst, then 4102; one visitor's own burst too.
    let ip = "203.0.113.88";
    let mut queued = 0;
    let mut request_refusals = 0;
    let mut requesters = Vec::new();
    let mut flood_chats = Vec::new();
    for n in 200..206 {
        let (_, t) = fresh_visitor(nodes[n as usize % 2], n).await;
        let mut c = visitor_from(nodes[n as usize % 2], &t, ip).await.unwrap();
        c.send(json!({"type": "request_chat", "question": "flood"}))
            .await;
        let f = c
            .expect_where("queued or error", |f| {
                f["type"] == "queued" || f["type"] == "error"
            })
            .await;
        if f["type"] == "queued" {
            queued += 1;
            flood_chats.push(f["chat_id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(f["code"], 4102, "{f}");
            assert!(f["retry_after_ms"].as_u64().unwrap() > 0, "{f}");
            request_refusals += 1;
        }
        requesters.push(c);
    }
    assert_eq!(queued, 4, "chat_requests_per_ip_burst");
    let (_, t) = fresh_visitor(&a, 210).await;
    let mut c = visitor_from(&a, &t, "203.0.113.89").await.unwrap();
    for _ in 0..3 {
        c.send(json!({"type": "request_chat"})).await;
    }
    settled(&mut c).await;
    let frames = c.drain_for(Duration::from_millis(100)).await;
    flood_chats.extend(
        frames
            .iter()
            .filter(|f| f["type"] == "queued")
            .map(|f| f["chat_id"].as_str().unwrap().to_string()),
    );
    let errors: Vec<&Value> = frames.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        1,
        "chat_requests_per_visitor_burst: {errors:?}"
    );
    assert_eq!(errors[0]["code"], 4102);
    request_refusals += 1;
    refused.push(("chat requests", request_refusals));
    // Their requests end, so no agent is left holding an offer of one.
    requesters.push(c);
    for r in requesters.iter_mut() {
        for chat in &flood_chats {
            r.send(json!({"type": "end", "chat_id": chat})).await;
        }
        settled(r).await;
    }
    drop(requesters);
    talk(&mut visitor, &mut agent, &chat, 3).await;

    // 4. A page-view flood while an agent watches the list on the other node: most views are
    // refused (4102), and the watcher receives at most its byte budget.
    watcher.send(json!({"type": "watch_visitors"})).await;
    watcher.expect("visitors_snapshot").await;
    let started = Instant::now();
    let mut flooders = Vec::new();
    for n in 300..310 {
        let (_, t) = fresh_visitor(&a, n).await;
        flooders.push(visitor_from(&a, &t, "203.0.113.99").await.unwrap());
    }
    let long = format!("https://shop.example/{}", "p".repeat(1500));
    for round in 0..30 {
        for f in flooders.iter_mut() {
            f.send(json!({"type": "page_view", "url": format!("{long}{round}"), "title": "T".repeat(300)}))
                .await;
        }
    }
    let mut view_refusals = 0;
    for f in flooders.iter_mut() {
        settled(f).await;
        for e in f.drain_for(Duration::from_millis(50)).await {
            if e["type"] == "error" {
                assert!(e["code"] == 4102 || e["code"] == 4100, "{e}");
                view_refusals += 1;
            }
        }
    }
    assert!(
        view_refusals >= 250,
        "{view_refusals} of 300 page views refused"
    );
    let frames = watcher.drain_for(Duration::from_millis(1500)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let bytes: usize = frames
        .iter()
        .filter(|f| f["type"] == "visitors_changed")
        .map(|f| f.to_string().len())
        .sum();
    let budget = 4096.0 * (2.0 + elapsed);
    assert!(
        (bytes as f64) <= budget,
        "{bytes} bytes of changes in {elapsed:.1} s; budget {budget}"
    );
    assert!(
        frames
            .iter()
            .filter(|f| f["type"] == "visitors_changed")
            .flat_map(|f| f["changes"].as_array().unwrap().iter())
            .all(|c| c["visitor"]["url"].as_str().unwrap_or("").chars().count() <= 300),
        "URLs in the list are cut"
    );
    refused.push(("page views", view_refusals));
    drop(flooders);
    talk(&mut visitor, &mut agent, &chat, 4).await;

    // 5. One visitor writes through 4 sockets on both nodes: the identity's rate holds.
    set_status(&mut helper, "available").await;
    let (_, t) = fresh_visitor(&b, 400).await;
    let mut first = visitor_from(&b, &t, "192.0.2.40").await.unwrap();
    let chat5 = first
        .request_chat(json!({"type": "request_chat", "question": "many tabs"}))
        .await;
    accept_offer(&mut helper, &mut first, &chat5).await;
    let mut tabs = vec![first];
    for i in 0..3 {
        let mut c = visitor_from(nodes[i % 2], &t, "192.0.2.40").await.unwrap();
        c.send(json!({"type": "resume", "chat_id": chat5, "last_seq": ""}))
            .await;
        c.expect("resumed").await;
        tabs.push(c);
    }
    let started = Instant::now();
    let text = "m".repeat(4000);
    for round in 0..40 {
        for (i, c) in tabs.iter_mut().enumerate() {
            c.send(json!({"type": "send", "chat_id": chat5, "client_msg_id": format!("{i}-{round}"), "text": text}))
                .await;
        }
    }
    // Each socket used its own frame burst up: wait for it to refill, so the ping goes through.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (mut acks, mut rate_refusals) = (0, 0);
    for c in tabs.iter_mut() {
        settled(c).await;
        for f in c.drain_for(Duration::from_millis(50)).await {
            match f["type"].as_str() {
                Some("ack") => acks += 1,
                Some("error") => {
                    assert_eq!(f["code"], 4100, "{f}");
                    rate_refusals += 1;
                }
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The identity's burst, its rate over the flood, and the tokens two nodes may hold leased.
    let allowed = 20.0 + 10.0 * elapsed + 2.0 * 5.0 + 4.0;
    assert!(
        (acks as f64) <= allowed,
        "{acks} messages stored in {elapsed:.1} s (allowed {allowed:.0}); {rate_refusals} refused"
    );
    assert_eq!(acks + rate_refusals, 160);
    refused.push(("messages", rate_refusals));
    drop(tabs);
    talk(&mut visitor, &mut agent, &chat, 5).await;

    let rss_after = rss_kib();
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "rss before {rss_before} KiB, after {rss_after} KiB (+{grown} KiB); refused: {refused:?}"
    );
    assert!(
        grown <= RSS_BOUND_KIB,
        "memory grew by {grown} KiB (bound {RSS_BOUND_KIB} KiB)"
    );
    // Every refusal is counted by its limit, on whichever node made it (the limits of agents,
    // of one connection's frames and of transcripts are not flooded here).
    for limit in switchboard::metrics::LIMITS {
        if ["frames_agent", "frames_connection", "transcript"].contains(&limit) {
            continue;
        }
        let total = metric_sum(
            &nodes,
            &format!("switchboard_limited_total{{limit=\"{limit}\"}}"),
        )
        .await;
        assert!(total > 0.0, "no refusal counted for {limit}");
    }
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_transcript_refuses_the_visitor_and_leaves_the_agent_a_reserve() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        small(s);
        s.abuse.transcript_max_entries = 8;
        s.abuse.visitor_frames_per_second = 100;
        s.abuse.visitor_burst_frames = 100;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "tia", 1).await;
    let (mut v, chat, _, _) = requesting_visitor(&a, "").await;
    accept_offer(&mut agent, &mut v, &chat).await;
    for i in 0..8 {
        let side = if i % 2 == 0 { &mut v } else { &mut agent };
        side.send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("m{i}"), "text": format!("line {i}")}))
            .await;
        side.expect("ack").await;
    }
    // The ninth entry: refused to the visitor, with one system entry telling both sides.
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v-over", "text": "more"}))
        .await;
    let e = v.expect("error").await;
    assert_eq!(e["code"], 4009, "{e}");
    assert_eq!(e["ref"], "v-over");
    let note = agent
        .expect_where("transcript_full entry", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "transcript_full"
        })
        .await;
    assert_eq!(note["entry"]["kind"], "system");
    // Refused again, with no second note.
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v-over2", "text": "more"}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4009);
    // A resend of an entry already stored still gets its ack.
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "m0", "text": "line 0"}))
        .await;
    v.expect("ack").await;
    // The agent writes its reserve (20 entries), then is refused too; ending always works.
    for i in 0..20 {
        agent
            .send(json!({"type": "send", "chat_id": chat, "client_msg_id": format!("r{i}"), "text": "sorry, wrapping up"}))
            .await;
        agent.expect("ack").await;
    }
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "r-over", "text": "x"}))
        .await;
    assert_eq!(agent.expect("error").await["code"], 4009);
    agent.send(json!({"type": "end", "chat_id": chat})).await;
    v.expect("chat_ended").await;
    decide(&mut agent, &chat, "create").await;
    let m = eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let stored = serde_json::to_value(&m).unwrap().to_string();
    assert_eq!(
        stored.matches("transcript_full").count(),
        1,
        "one note in the stored transcript"
    );
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_socket_counts_of_a_node_that_died_expire() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        small(s);
        s.abuse.socket_count_ttl_seconds = 3;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (_, token) = fresh_visitor(&a, 1).await;
    let mut on_a = Vec::new();
    for _ in 0..4 {
        on_a.push(visitor_from(&a, &token, "192.0.2.9").await.unwrap());
    }
    assert_eq!(
        visitor_from(&b, &token, "192.0.2.9").await.err(),
        Some(4430)
    );
    // A lives on past one TTL: its refreshes keep the count.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(
        visitor_from(&b, &token, "192.0.2.9").await.err(),
        Some(4430)
    );
    let killed = Instant::now();
    a.kill();
    drop(on_a);
    let c = eventually("the dead node's sockets stop counting", || async {
        visitor_from(&b, &token, "192.0.2.9").await.ok()
    })
    .await;
    assert!(
        killed.elapsed() <= Duration::from_secs(4),
        "{:?}",
        killed.elapsed()
    );
    drop(c);
    b.drain().await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_over_its_byte_budget_is_told_to_read_the_list_again() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        small(s);
        s.abuse.page_views_per_visitor_burst = 100;
        s.abuse.page_views_per_ip_burst = 1000;
        s.abuse.visitor_burst_frames = 100;
        s.abuse.visitor_list_bytes_per_second = 1024;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut watcher = available_agent(&cluster, &b, "wes", 1).await;
    watcher.send(json!({"type": "watch_visitors"})).await;
    watcher.expect("visitors_snapshot").await;
    let mut visitors = Vec::new();
    for n in 0..8 {
        let (_, t) = fresh_visitor(&a, n).await;
        visitors.push(visitor_from(&a, &t, &format!("192.0.2.{n}")).await.unwrap());
    }
    // Eight visitors browsing, each change a few hundred bytes: more than 2 KiB at once.
    for round in 0..10 {
        for v in visitors.iter_mut() {
            v.send(json!({"type": "page_view", "url": format!("https://shop.example/{}/{round}", "a".repeat(250)), "title": "A page"}))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.expect("visitors_stale").await;
    // Nothing more until the list is read again; the budget is not reset by reading it.
    let quiet = watcher.drain_for(Duration::from_millis(1200)).await;
    assert!(
        quiet.iter().all(|f| f["type"] != "visitors_changed"),
        "changes after visitors_stale: {quiet:?}"
    );
    watcher.send(json!({"type": "watch_visitors"})).await;
    let page = watcher.expect("visitors_snapshot").await;
    assert_eq!(page["total"], 8);
    // Quiet for a while: the budget refills and a single change comes through again.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    visitors[0]
        .send(json!({"type": "page_view", "url": "https://shop.example/again"}))
        .await;
    let f = watcher.expect("visitors_changed").await;
    assert_eq!(
        f["changes"][0]["visitor"]["url"],
        "https://shop.example/again"
    );
    let dropped = metric_sum(&[&b], "switchboard_visitor_list_dropped_total").await;
    assert!(dropped >= 1.0, "{dropped}");
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
