//! HTTP/JSON handlers: visitor sessions, interactions and transcripts, health and metrics; agent
//! login and sessions in `auth`, the admin API in `admin`, canned responses and files in theirs. Errors are `{"code", "error", "message"}` with the HTTP
//! status of the code (see `docs/protocol.md`).

mod admin;
mod auth;
mod canned;
mod cors;
mod file_links;
mod files;

use crate::chat::identity::{new_id, Identity};
use crate::chat::{ChatError, Service};
use crate::protocol::ErrorCode;
use crate::store::StoreError;
use auth::agent_from;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub struct ApiError(ChatError);

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        ApiError(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(e.into())
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError(ChatError::new(code, message))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "code": self.0.code.code(), "error": self.0.code.name(), "message": self.0.message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub fn routes(svc: Arc<Service>) -> Router {
    // What the widget calls from the organisation's site answers CORS.
    let widget = Router::new()
        .route(
            "/api/visitor/session",
            post(visitor_session).options(cors::preflight),
        )
        .merge(files::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            cors::widget_cors,
        ));
    Router::new()
        .merge(widget)
        .merge(auth::routes())
        .merge(admin::routes())
        .route("/api/queues", get(list_queues))
        .route("/api/chats/{id}/interactions", get(chat_interactions))
        .route("/api/interactions", get(recent_interactions))
        .route("/api/interactions/{id}", get(interaction))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(canned::routes())
        .with_state(svc)
}

fn now_s() -> u64 {
    (crate::chat::now_ms() / 1000) as u64
}

#[derive(Deserialize, Default)]
struct SessionRequest {
    #[serde(default)]
    token: Option<String>,
}

/// Issues (or renews) a visitor's anonymous identity.
async fn visitor_session(
    State(svc): State<Arc<Service>>,
    body: Option<Json<SessionRequest>>,
) -> ApiResult<Json<serde_json::Value>> {
    let previous =
        body.and_then(|b| b.0.token)
            .and_then(|t| match svc.tokens.verify(&t, now_s()) {
                Ok(Identity::Visitor { id }) => Some(id),
                _ => None,
            });
    let id = previous.unwrap_or_else(new_id);
    let token = svc
        .tokens
        .issue(&Identity::Visitor { id: id.clone() }, now_s());
    Ok(Json(json!({ "visitor_id": id, "token": token })))
}

async fn list_queues(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    agent_from(&svc, &headers).await?;
    Ok(Json(json!(svc.store.queues().await?)))
}

async fn chat_interactions(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(chat): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let party = agent_from(&svc, &headers).await?.party(&svc).await?;
    Ok(Json(json!(svc.contact_interactions(&party, &chat).await?)))
}

#[derive(Deserialize)]
struct Limit {
    #[serde(default)]
    limit: Option<i64>,
}

async fn recent_interactions(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<Limit>,
) -> ApiResult<Json<serde_json::Value>> {
    agent_from(&svc, &headers).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(err(ErrorCode::InvalidField, "limit must be 1-500"));
    }
    Ok(Json(json!(svc.store.recent_interactions(limit).await?)))
}

async fn interaction(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    agent_from(&svc, &headers).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| err(ErrorCode::InvalidField, "interaction id must be a number"))?;
    let (interaction, messages) = svc
        .store
        .interaction(id)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, "no such interaction"))?;
    Ok(Json(
        json!({ "interaction": interaction, "messages": messages }),
    ))
}

async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    let redis = svc.redis.ping().await.is_ok();
    let store = svc.store.ping().await.is_ok();
    let draining = svc.draining.load(std::sync::atomic::Ordering::Relaxed);
    let status = if redis && store && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "redis": redis, "store": store, "draining": draining })),
    )
        .into_response()
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        svc.metrics.render(),
    )
        .into_response()
}
