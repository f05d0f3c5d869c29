//! The offline-message inbox over HTTP (agents of the message's queue: list, claim, done).

use super::{agent_from, err, ApiResult};
use crate::chat::Service;
use crate::protocol::ErrorCode;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/inbox", get(list))
        .route("/api/inbox/{id}/claim", post(claim))
        .route("/api/inbox/{id}/done", post(done))
}

/// The agent's id and queues, from its token.
async fn agent_queues(svc: &Service, headers: &HeaderMap) -> ApiResult<(i64, Vec<String>)> {
    let id = agent_from(svc, headers).await?.id;
    let agent = svc
        .store
        .agent(id)
        .await?
        .ok_or_else(|| err(ErrorCode::Forbidden, "the agent no longer exists"))?;
    Ok((id, agent.queues))
}

#[derive(Deserialize)]
struct ListQuery {
    /// `1`/`true`: finished messages too.
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn list(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let (_, queues) = agent_queues(&svc, &headers).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(err(ErrorCode::InvalidField, "limit must be 1-500"));
    }
    let done = matches!(q.done.as_deref(), Some("1" | "true"));
    Ok(Json(json!(svc.inbox(&queues, done, limit).await?)))
}

async fn claim(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    work(&svc, &headers, &id, false).await
}

async fn done(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    work(&svc, &headers, &id, true).await
}

async fn work(
    svc: &Service,
    headers: &HeaderMap,
    id: &str,
    done: bool,
) -> ApiResult<Json<serde_json::Value>> {
    let (agent, queues) = agent_queues(svc, headers).await?;
    Ok(Json(json!(
        svc.work_message(agent, &queues, id, done).await?
    )))
}
