//! Queues for admins: list them with their settings, create one, read and change a queue's
//! offline text and business hours, rename one (refused while it has live chats). Every change is written to the audit log.

use super::admin_request::{admin, body};
use super::ApiResult;
use crate::chat::hours::HoursSpec;
use crate::chat::Service;
use crate::store::QueueSettings;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Json, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/admin/queues", get(list).post(create))
        .route("/api/admin/queues/{name}", get(one).put(change))
        .route("/api/admin/queues/{name}/rename", post(rename))
}

/// The settings as the API shows them: business hours as an object (null = none).
fn settings_json(s: &QueueSettings) -> serde_json::Value {
    let hours: Option<serde_json::Value> = serde_json::from_str(&s.business_hours).ok();
    json!({ "name": s.name, "offline_text": s.offline_text, "business_hours": hours })
}

/// What the audit log keeps of a queue's settings: whether each is set, not the texts.
fn audit_detail(s: &QueueSettings) -> serde_json::Value {
    json!({
        "offline_text_chars": s.offline_text.chars().count(),
        "business_hours": !s.business_hours.is_empty(),
    })
}

async fn list(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let all = svc.store.all_queue_settings().await?;
    Ok(Json(json!(all
        .iter()
        .map(settings_json)
        .collect::<Vec<_>>())))
}

async fn one(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    Ok(Json(settings_json(&svc.queue_settings(&name).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    offline_text: String,
    #[serde(default)]
    business_hours: Option<HoursSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQueue {
    name: String,
    #[serde(default)]
    offline_text: String,
    #[serde(default)]
    business_hours: Option<HoursSpec>,
}

async fn create(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    input: Result<Json<NewQueue>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = admin(&svc, &headers).await?;
    let q = body(input)?;
    let name = q.name.trim();
    let s = svc
        .create_queue(name, q.offline_text, q.business_hours)
        .await?;
    svc.audit(
        &actor,
        "queue.create",
        &format!("queue:{name}"),
        audit_detail(&s),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(settings_json(&s))).into_response())
}

async fn change(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    input: Result<Json<SettingsBody>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let b = body(input)?;
    let s = svc
        .set_queue_settings(&name, b.offline_text, b.business_hours)
        .await?;
    svc.audit(
        &actor,
        "queue.change",
        &format!("queue:{name}"),
        audit_detail(&s),
    )
    .await?;
    Ok(Json(settings_json(&s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(old): Path<String>,
    input: Result<Json<Rename>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let new = body(input)?.name.trim().to_string();
    let agents = svc.rename_queue(&old, &new).await?;
    svc.audit(
        &actor,
        "queue.rename",
        &format!("queue:{new}"),
        json!({ "from": old, "agents": agents }),
    )
    .await?;
    Ok(Json(settings_json(&svc.queue_settings(&new).await?)))
}
