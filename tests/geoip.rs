//! The visitor's country from a local MaxMind-format database when the load balancer sends no
//! country header (tests/fixtures/geoip/country.mmdb: 203.0.113.0/24 is DE, 198.51.100.0/24 FR).

mod common;

use common::*;
use serde_json::json;

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/geoip/country.mmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn country_comes_from_the_header_first_then_from_the_geoip_database() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.server.country_header = "x-country".into();
        s.server.geoip_database = fixture();
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "geo", 1).await;
    agent.send(json!({"type": "watch_visitors"})).await;
    agent.expect("visitors_snapshot").await;

    let visit = |forwarded: &'static str, country: Option<&'static str>| {
        let node = &a;
        async move {
            let (vid, token) = visitor_token(node).await;
            let mut headers = vec![("x-forwarded-for", forwarded)];
            if let Some(c) = country {
                headers.push(("x-country", c));
            }
            let mut v = Client::connect_with_headers(node, "visitor", &token, &headers).await;
            v.send(json!({"type": "page_view", "url": "https://shop.example/"}))
                .await;
            (vid, v)
        }
    };
    let (from_db, _v1) = visit("203.0.113.9", None).await;
    let (from_header, _v2) = visit("198.51.100.4", Some("se")).await;
    let (unknown, _v3) = visit("192.0.2.1", None).await;
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 3 {
        let f = agent.expect("visitors_changed").await;
        for c in f["changes"].as_array().unwrap() {
            if let Some(v) = c.get("visitor") {
                seen.insert(
                    c["visitor_id"].as_str().unwrap().to_string(),
                    (v["country"].clone(), v["ip"].clone()),
                );
            }
        }
    }
    assert_eq!(seen[&from_db], (json!("DE"), json!("203.0.113.9")));
    assert_eq!(
        seen[&from_header],
        (json!("SE"), json!("198.51.100.4")),
        "a trusted header wins over the database"
    );
    assert_eq!(seen[&unknown], (json!(""), json!("192.0.2.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_geoip_database_stops_the_node_naming_the_key() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.server.geoip_database = "/no/such/country.mmdb".into()
    })
    .await;
    let err = switchboard::app::start(cluster.settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("server.geoip_database"),
        "{err:#}"
    );
}
