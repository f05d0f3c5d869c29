//! Helpers for tests of agent accounts: admins, and HTTP calls with any method.

use super::{agent_token, Cluster};
use serde_json::Value;
use switchboard::app::Running;
use switchboard::store::NewAgent;

/// Creates an agent with `role` (`agent`, `supervisor` or `admin`; password `secret-password`,
/// display name "Sup USERNAME", three chats, queue `general`); returns its id.
pub async fn create_with_role(cluster: &Cluster, username: &str, role: &str) -> i64 {
    cluster
        .store
        .create_agent(&NewAgent {
            username: username.into(),
            display_name: format!("Sup {username}"),
            password: "secret-password".into(),
            role: role.into(),
            max_chats: 3,
            queues: vec!["general".into()],
        })
        .await
        .expect("agent created")
        .id
}

/// Creates an admin (password `secret-password`); returns its id.
pub async fn create_admin(cluster: &Cluster, username: &str) -> i64 {
    create_with_role(cluster, username, "admin").await
}

/// Creates an admin and logs it in on `node`; returns its token.
pub async fn admin(cluster: &Cluster, node: &Running, username: &str) -> String {
    create_admin(cluster, username).await;
    agent_token(node, username).await
}

/// An HTTP call with any method and an optional JSON body; returns the status and the JSON
/// answer (`Null` when there is none).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
