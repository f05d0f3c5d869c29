//! The offline-message inbox over HTTP (agents of the message's queue: list, claim, done) and
//! the admin's per-queue settings (offline text, business hours).

use super::{agent_from, err, ApiResult};
use crate::chat::hours::HoursSpec;
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
        .route(
            "/api/admin/queues/{name}",
            get(queue_settings).put(set_queue_settings),
        )
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

async fn admin(svc: &Service, headers: &HeaderMap) -> ApiResult<()> {
    let admin = agent_from(svc, headers).await?.is_admin(svc).await?;
    if !admin {
        return Err(err(ErrorCode::Forbidden, "only admins manage queues"));
    }
    Ok(())
}

/// The settings as the API shows them: business hours as an object (null = none).
fn settings_json(s: crate::store::QueueSettings) -> serde_json::Value {
    let hours: Option<serde_json::Value> = serde_json::from_str(&s.business_hours).ok();
    json!({ "name": s.name, "offline_text": s.offline_text, "business_hours": hours })
}

async fn queue_settings(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    Ok(Json(settings_json(svc.queue_settings(&name).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    offline_text: String,
    #[serde(default)]
    business_hours: Option<HoursSpec>,
}

async fn set_queue_settings(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<SettingsBody>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let s = svc
        .set_queue_settings(&name, b.offline_text, b.business_hours)
        .await?;
    Ok(Json(settings_json(s)))
}
