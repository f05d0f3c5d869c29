//! The HTTP side of a test: visitor sessions, agent logins, and creating load-test agents
//! through the admin API.

use crate::net::Target;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Value,
    token: Option<&str>,
) -> Result<(u16, Value)> {
    let mut r = http.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// A fresh anonymous visitor: its token.
pub async fn visitor_token(http: &reqwest::Client, t: &Target) -> Result<String> {
    let (status, v) = post(
        http,
        &format!("{}/api/visitor/session", t.base),
        json!({}),
        None,
    )
    .await?;
    if status != 200 {
        bail!("visitor session: HTTP {status} {v}");
    }
    Ok(v["token"]
        .as_str()
        .context("visitor session without token")?
        .to_string())
}

pub async fn login(
    http: &reqwest::Client,
    t: &Target,
    username: &str,
    password: &str,
) -> Result<String> {
    let (status, v) = post(
        http,
        &format!("{}/api/agent/login", t.base),
        json!({ "username": username, "password": password }),
        None,
    )
    .await?;
    if status != 200 {
        bail!("login {username}: HTTP {status} {v}");
    }
    Ok(v["token"]
        .as_str()
        .context("login without token")?
        .to_string())
}

/// Creates `count` agents `{prefix}{i}` through `POST /api/admin/agents`; existing ones are
/// left as they are. Returns (created, already there).
#[allow(clippy::too_many_arguments)]
pub async fn create_agents(
    t: &Target,
    admin: &str,
    admin_password: &str,
    prefix: &str,
    count: usize,
    password: &str,
    max_chats: i64,
    parallel: usize,
) -> Result<(usize, usize)> {
    let http = http_client();
    let token = login(&http, t, admin, admin_password).await?;
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::new();
    for i in 0..count {
        let (http, token, sem, url) = (
            http.clone(),
            token.clone(),
            sem.clone(),
            format!("{}/api/admin/agents", t.base),
        );
        let body = json!({ "username": format!("{prefix}{i}"), "display_name": format!("Load agent {i}"), "password": password, "role": "agent", "max_chats": max_chats, "queues": ["general"] });
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            post(&http, &url, body, Some(&token)).await
        }));
    }
    let (mut created, mut existing) = (0, 0);
    for t in tasks {
        let (status, v) = t.await??;
        match status {
            201 => created += 1,
            409 => existing += 1,
            s => bail!("creating an agent: HTTP {s} {v}"),
        }
    }
    Ok((created, existing))
}
