//! Webhook endpoints over HTTP, for admins: register, list, read, change, delete, read the
//! delivery log, redeliver an event; and the event types there are.

use super::admin_request::{admin, body, id, limit, query};
use super::ApiResult;
use crate::chat::webhooks::{EndpointInput, NewSecret, EVENT_TYPES};
use crate::chat::Service;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Json, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/admin/webhooks", get(list).post(create))
        .route("/api/admin/webhooks/event-types", get(event_types))
        .route(
            "/api/admin/webhooks/{id}",
            get(one).patch(update).delete(remove),
        )
        .route("/api/admin/webhooks/{id}/deliveries", get(deliveries))
        .route("/api/admin/webhooks/{id}/redeliver", post(redeliver))
}

/// An endpoint, with its secret when one was just set (shown this once).
fn with_secret(e: &crate::store::WebhookEndpoint, s: NewSecret) -> serde_json::Value {
    match s.0 {
        Some(secret) => json!({ "endpoint": e, "secret": secret }),
        None => json!({ "endpoint": e }),
    }
}

async fn event_types(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    Ok(Json(json!(EVENT_TYPES)))
}

async fn list(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    Ok(Json(json!(svc.webhook_endpoints().await?)))
}

async fn create(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    input: Result<Json<EndpointInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = admin(&svc, &headers).await?;
    let input = body(input)?;
    let (e, secret) = svc.create_webhook(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(with_secret(&e, secret))).into_response())
}

async fn one(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let e = svc.webhook_endpoint(id(&raw, "webhook")?).await?;
    Ok(Json(json!(e)))
}

async fn update(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    input: Result<Json<EndpointInput>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let endpoint = id(&raw, "webhook")?;
    let input = body(input)?;
    let (e, secret) = svc.update_webhook(&actor, endpoint, &input).await?;
    Ok(Json(with_secret(&e, secret)))
}

async fn remove(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = admin(&svc, &headers).await?;
    svc.delete_webhook(&actor, id(&raw, "webhook")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn deliveries(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let page = query(page)?;
    let list = svc
        .webhook_deliveries(id(&raw, "webhook")?, page.before, limit(page.limit)?)
        .await?;
    let next = list.last().map(|d| d.id);
    Ok(Json(json!({ "deliveries": list, "next_before": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeliver {
    event_id: String,
}

async fn redeliver(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    input: Result<Json<Redeliver>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = admin(&svc, &headers).await?;
    let endpoint = id(&raw, "webhook")?;
    let r = body(input)?;
    svc.redeliver_webhook(&actor, endpoint, &r.event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event_id": r.event_id })),
    )
        .into_response())
}
