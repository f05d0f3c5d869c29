//! Agent login under attack, on two nodes sharing Redis: failed logins per username and per
//! client IP are limited cluster-wide (guesses alternating between nodes count together), with
//! `429` + `Retry-After` + code 4101; a flood of concurrent logins is answered `503` +
//! `Retry-After` beyond `limits.login_concurrency` instead of queueing argon2 work, and the
//! node's memory stays flat.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::app::Running;

/// One login attempt: status, `Retry-After` seconds if any, body.
async fn login(
    node: &Running,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{}/api/agent/login", http(node)))
        .json(&json!({"username": username, "password": password}));
    if let Some(ip) = forwarded_for {
        r = r.header("x-forwarded-for", ip);
    }
    let resp = r.send().await.expect("http");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

fn failures(nodes: &[&Running], reason: &str) -> u64 {
    nodes
        .iter()
        .map(|n| {
            n.service
                .metrics
                .edge
                .login_failures
                .with_label_values(&[reason])
                .get()
        })
        .sum()
}

/// Guesses at one username alternate between two nodes: after the free failures every further
/// attempt is refused with 429 wherever it lands, the right password included, until the wait
/// is over; a success clears the username's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_per_username_are_limited_across_nodes() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.login_failures_per_user = 4;
        s.limits.login_failures_per_ip = 1_000;
        s.limits.login_backoff_ms = 1_000;
        s.limits.login_backoff_max_ms = 60_000;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("ann", 1).await;
    // A success clears the count: two failures, a success, then four more are still free.
    for node in [&a, &b] {
        assert_eq!(login(node, "ann", "wrong", None).await.0, 403);
    }
    assert_eq!(login(&a, "ann", "secret-password", None).await.0, 200);
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (status, _, body) = login(node, "ann", &format!("guess {i}"), None).await;
        assert_eq!(status, 403, "guess {i}: {body}");
    }
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (status, retry, body) = login(node, "ANN", "secret-password", None).await;
        assert_eq!(status, 429, "attempt {i} after the free failures: {body}");
        assert_eq!(body["code"], 4101, "{body}");
        assert_eq!(body["error"], "login_throttled");
        assert!(retry.is_some_and(|s| (1..=1).contains(&s)), "{retry:?}");
    }
    // Another username from the same address is not affected.
    cluster.agent("bo", 1).await;
    assert_eq!(login(&b, "bo", "secret-password", None).await.0, 200);
    // After the wait one attempt goes through, and the next wait is doubled.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(login(&b, "ann", "another guess", None).await.0, 403);
    let (status, retry, _) = login(&a, "ann", "secret-password", None).await;
    assert_eq!((status, retry), (429, Some(2)));
    assert_eq!(failures(&[&a, &b], "wrong_credentials"), 7);
    assert_eq!(failures(&[&a, &b], "throttled"), 5);
}

/// One client address trying many usernames through two nodes (behind a trusted proxy that
/// names it in X-Forwarded-For) is limited as a whole; another address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_per_address_are_limited_across_nodes() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.limits.login_failures_per_user = 1_000;
        s.limits.login_failures_per_ip = 6;
        s.limits.login_backoff_ms = 30_000;
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("cat", 1).await;
    let attacker = Some("203.0.113.9");
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, _, body) = login(node, &format!("user{i}"), "pw", attacker).await;
        assert_eq!(status, 403, "attempt {i}: {body}");
    }
    for node in [&a, &b] {
        let (status, retry, body) = login(node, "cat", "secret-password", attacker).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(retry, Some(30));
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("from this address"),
            "{body}"
        );
    }
    let (status, _, body) = login(&b, "cat", "secret-password", Some("198.51.100.7")).await;
    assert_eq!(status, 200, "{body}");
}

/// Without Redis the shared counts cannot be read: logins are refused (503), never let
/// through uncounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_refused_while_redis_is_down() {
    let (redis, port) = topology::Procs::standalone();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    let node = cluster.node().await;
    cluster.agent("fay", 1).await;
    assert_eq!(login(&node, "fay", "secret-password", None).await.0, 200);
    topology::cli(port, &["shutdown", "nosave"]);
    let (status, _, body) = tokio::time::timeout(
        Duration::from_secs(20),
        login(&node, "fay", "secret-password", None),
    )
    .await
    .expect("an answer while Redis is down");
    assert_eq!(status, 503, "{body}");
    assert_eq!(failures(&[&node], "unavailable"), 1);
    drop(redis);
}

/// 200 concurrent wrong logins against the node process (its real allocator), allowed 2
/// password checks at once: a few wait their turn, the rest are answered 503 with Retry-After
/// at once, no argon2 work queues up, the node's memory stays flat and it keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_bounded_and_memory_stays_flat() {
    use process::{base_env, command, NodeProcess};
    let [port] = topology::free_ports::<1>();
    let mut env = base_env(port);
    for (k, v) in [
        ("SWITCHBOARD__LIMITS__LOGIN_CONCURRENCY", "2"),
        ("SWITCHBOARD__LIMITS__LOGIN_FAILURES_PER_USER", "100000"),
        ("SWITCHBOARD__LIMITS__LOGIN_FAILURES_PER_IP", "100000"),
    ] {
        env.push((k.into(), v.into()));
    }
    let added = command(
        &env,
        &[
            "agent",
            "add",
            "--username",
            "dan",
            "--password",
            "the-right-one",
        ],
    )
    .output()
    .unwrap();
    assert!(added.status.success(), "{added:?}");
    let node = NodeProcess::start(&env, port, "");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let attempt = |password: String| {
        let client = client.clone();
        let url = format!("{url}/api/agent/login");
        async move {
            let r = client
                .post(url)
                .json(&json!({"username": "dan", "password": password}))
                .send()
                .await
                .expect("http");
            (r.status().as_u16(), r.headers().contains_key("retry-after"))
        }
    };
    // Warm up: the first checks allocate argon2's blocks.
    for i in 0..4 {
        assert_eq!(attempt(format!("warm-up {i}")).await.0, 403);
    }
    let before = node.rss_kb() / 1024;
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (sampling, pid) = (sampling.clone(), node.pid());
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(process::rss_kb_of(&format!("/proc/{pid}/status")) / 1024);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let flood: Vec<_> = (0..200)
        .map(|i| tokio::spawn(attempt(format!("wrong {i}"))))
        .collect();
    let healthz = reqwest::get(format!("{url}/healthz"))
        .await
        .unwrap()
        .status();
    let mut answers = Vec::new();
    for f in flood {
        answers.push(f.await.unwrap());
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let after = node.rss_kb() / 1024;
    assert_eq!(healthz, 200, "healthz during the flood");
    let busy = answers.iter().filter(|(s, _)| *s == 503).count();
    let wrong = answers.iter().filter(|(s, _)| *s == 403).count();
    assert_eq!(busy + wrong, 200, "{answers:?}");
    assert!(busy > 0, "no login was refused as busy");
    assert!(answers.iter().all(|(s, retry)| *s != 503 || *retry));
    let text = metrics_text(&url).await;
    assert!(
        text.contains(&format!(
            "switchboard_login_failures_total{{reason=\"busy\"}} {busy}"
        )),
        "busy refusals counted: {text}"
    );
    // 200 argon2 checks at 19 MiB each would be 3.8 GB; two at a time are under 40 MB.
    assert!(
        peak < before + 100,
        "node memory grew from {before} MB to {peak} MB during the flood"
    );
    println!(
        "login flood: {wrong} checked, {busy} refused busy; node RSS {before} MB -> peak {peak} MB -> {after} MB after"
    );
}
