//! A site vouching for its logged-in visitor's e-mail with a signature made by its server.

mod common;

use common::*;
use serde_json::json;
use switchboard::chat::identity::identify_signature;

const SECRET: &str = "identify-secret-of-the-shop-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_identify_shows_the_email_to_watching_agents_and_forgeries_change_nothing() {
    let cluster = Cluster::with(Backend::Sqlite, |s| s.auth.identify_secret = SECRET.into()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ida", 1).await;
    agent.send(json!({"type": "watch_visitors"})).await;
    agent.expect("visitors_snapshot").await;
    let (vid, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/account"}))
        .await;
    agent
        .expect_where("arrive", |f| {
            f["type"] == "visitors_changed" && f.to_string().contains("arrive")
        })
        .await;

    // A forged signature (or one for another e-mail) is refused and changes nothing.
    let other = identify_signature(SECRET, "eve@example.com");
    v.send(json!({"type": "identify", "email": "ann@example.com", "signature": other}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4005);
    v.send(json!({"type": "identify", "email": "ann@example.com", "signature": "00"}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4005);
    v.send(json!({"type": "identify", "email": "not an address", "signature": "00"}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4003);

    let sig = identify_signature(SECRET, "ann@example.com");
    v.send(
        json!({"type": "identify", "email": "ann@example.com", "name": "Ann", "signature": sig}),
    )
    .await;
    let change = agent
        .expect_where("identified", |f| {
            f["type"] == "visitors_changed" && f.to_string().contains("ann@example.com")
        })
        .await;
    let item = change["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["visitor_id"] == vid.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["visitor"]["email"], "ann@example.com");
    assert_eq!(item["visitor"]["name"], "Ann");
    assert_eq!(item["visitor"]["new"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_is_refused_when_the_site_has_no_secret() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let a = cluster.node().await;
    let (_, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    let sig = identify_signature(SECRET, "ann@example.com");
    v.send(json!({"type": "identify", "email": "ann@example.com", "signature": sig}))
        .await;
    assert_eq!(v.expect("error").await["code"], 4003);
}
