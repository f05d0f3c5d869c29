//! What every node serves besides the chat: the embedded widget, console and demo site with
//! safe headers, CORS for the widget's session call, health, readiness and metrics.

mod common;

use common::*;
use serde_json::json;

async fn fetch(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("http")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_with_safe_headers() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let a = cluster.node().await;
    let base = http(&a);
    for (path, ct) in [
        ("/widget.js", "text/javascript"),
        ("/console/", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/socket.js", "text/javascript"),
        ("/demo/", "text/html"),
        ("/demo/pricing.html", "text/html"),
    ] {
        let r = fetch(&format!("{base}{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ct),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        if path.starts_with("/console/") {
            assert!(h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'"));
        }
    }
    let widget = fetch(&format!("{base}/widget.js"))
        .await
        .text()
        .await
        .unwrap();
    assert!(widget.starts_with("(function(){"));
    // The size budget (docs/widget.md): under 25 KB gzipped.
    let mut gz = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    use std::io::Write;
    gz.stdin
        .take()
        .unwrap()
        .write_all(widget.as_bytes())
        .unwrap();
    let gzipped = gz.wait_with_output().unwrap().stdout.len();
    assert!(
        gzipped < 25_000,
        "widget.js is {gzipped} bytes gzipped, over the 25 KB budget"
    );
    assert_eq!(fetch(&format!("{base}/no-such-page")).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_session_answers_cors_for_configured_sites_only() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.allowed_origins = vec!["https://shop.example".into()]
    })
    .await;
    let a = cluster.node().await;
    let url = format!("{}/api/visitor/session", http(&a));
    let c = reqwest::Client::new();
    let pre = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let ok = c
        .post(&url)
        .header("origin", "https://shop.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = c
        .post(&url)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // The widget also uploads files from the site: the preflight allows the token header.
    let files = format!("{}/api/chats/some-chat/files?name=a.txt", http(&a));
    let pre = c
        .request(reqwest::Method::OPTIONS, &files)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization"));
    // Refused requests carry the header too, so the widget can read the error.
    let refused = c
        .post(&files)
        .header("origin", "https://shop.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_pass_promtool() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    // Some traffic so the families have samples.
    let mut agent = available_agent(&cluster, &b, "mia", 1).await;
    let (mut v, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut v, &chat).await;
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "1", "text": "hi"}))
        .await;
    v.expect("ack").await;
    v.send(json!({"type": "teleport"})).await;
    v.expect("error").await;

    assert_eq!(fetch(&format!("{}/healthz", http(&a))).await.status(), 200);
    let (s, body) = get(&format!("{}/readyz", http(&a)), None).await;
    assert_eq!(
        (s, body["redis"].as_bool(), body["store"].as_bool()),
        (200, Some(true), Some(true))
    );
    let text = fetch(&format!("{}/metrics", http(&a)))
        .await
        .text()
        .await
        .unwrap();
    for family in [
        "switchboard_connections",
        "switchboard_messages_total",
        "switchboard_frames_rejected_total",
        "switchboard_chats_requested_total",
    ] {
        assert!(text.contains(family), "{family} missing");
    }
    assert!(text.contains("switchboard_frames_rejected_total{code=\"bad_frame\"} 1"));
    // Cluster-wide agent gauges (sampled every 5 s): mia holds her one chat, no free slot.
    let gauges = eventually("agent gauges sampled", || async {
        let text = fetch(&format!("{}/metrics", http(&a)))
            .await
            .text()
            .await
            .unwrap();
        text.contains("switchboard_agent_chats 1").then_some(text)
    })
    .await;
    assert!(gauges.contains("switchboard_agent_free_capacity 0"));
    // The request's own routing pass made the offer on the visitor's node, which timed it
    // from the request (well under a second here, never from a missing request time).
    assert!(text.contains("switchboard_request_to_offer_seconds_count 1"));
    let waited: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_request_to_offer_seconds_sum "))
        .expect("request_to_offer sum")
        .parse()
        .unwrap();
    assert!(
        (0.0..1.0).contains(&waited),
        "request to offer took {waited} s"
    );
    // The visitor's node timed its request (which routed the chat) and the message's append.
    for op in ["request", "append"] {
        assert!(
            text.contains(&format!(
                "switchboard_redis_command_seconds_count{{op=\"{op}\"}} 1"
            )),
            "{op} not timed once"
        );
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
