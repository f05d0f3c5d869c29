//! HTTP/JSON handlers: visitor sessions, interactions and transcripts (searched in `history`), health and metrics; agent
//! login in `login` (bounded and throttled), sessions and the checks every agent endpoint makes
//! in `auth`, the agents' admin API in `admin` (what admin endpoints share in `admin_request`),
//! webhooks, data protection and the audit log in `webhooks` and `privacy`, queues and the
//! widget's appearance in `queues` and `appearance`, canned responses,
//! files and the inbox in theirs. Errors are `{"code", "error", "message"}` with the HTTP status
//! of the code (see `docs/protocol.md`).

mod admin;
mod admin_request;
mod after_chat;
mod appearance;
mod auth;
mod canned;
mod console;
mod cors;
mod file_links;
mod files;
mod history;
mod inbox;
mod login;

pub use login::login_concurrency;
mod privacy;
mod queues;
mod webhooks;

use crate::chat::identity::{new_id, Identity};
use crate::chat::{ChatError, Service};
use crate::protocol::ErrorCode;
use crate::store::StoreError;
use auth::agent_from;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
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
        let mut r = (status, Json(json!({ "code": self.0.code.code(), "error": self.0.code.name(), "message": self.0.message }))).into_response();
        if let Some(ms) = self.0.retry_after_ms {
            // Whole seconds, rounded up: a client that waits this long is let through.
            r.headers_mut()
                .insert(header::RETRY_AFTER, ms.div_ceil(1000).max(1).into());
        }
        r
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
        .merge(after_chat::routes())
        .merge(appearance::widget_routes())
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
        .merge(history::routes())
        .merge(canned::routes())
        .merge(console::routes())
        .merge(inbox::routes())
        .merge(webhooks::routes())
        .merge(privacy::routes())
        .merge(queues::routes())
        .merge(appearance::routes())
        .with_state(svc.clone())
        .merge(login::routes(svc))
}

/// `GET /metrics`: on the main router, or on `server.metrics_listen` when that is set.
pub fn metrics_routes(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
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

/// The client's address: the peer, or `X-Forwarded-For` when the peer is a trusted proxy.
fn client_ip(svc: &Service, peer: SocketAddr, headers: &HeaderMap) -> String {
    svc.settings
        .server
        .client_ip(
            peer.ip(),
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .to_string()
}

/// Issues (or renews) a visitor's anonymous identity. New identities are limited per client
/// IP across the cluster (`abuse.new_visitors_per_ip_*`); a renewal is not.
async fn visitor_session(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Option<Json<SessionRequest>>,
) -> ApiResult<Json<serde_json::Value>> {
    let previous =
        body.and_then(|b| b.0.token)
            .and_then(|t| match svc.tokens.verify(&t, now_s()) {
                Ok(Identity::Visitor { id }) => Some(id),
                _ => None,
            });
    let id = match previous {
        Some(id) => id,
        None => {
            svc.limits
                .new_visitor(&client_ip(&svc, peer, &headers))
                .await?;
            new_id()
        }
    };
    let token = svc
        .tokens
        .issue(&Identity::Visitor { id: id.clone() }, now_s());
    // What the widget needs to know beyond the token: the file picker's `accept` and size
    // limit, and whether "e-mail me this transcript" can work here.
    let files = &svc.settings.files;
    Ok(Json(json!({
        "visitor_id": id,
        "token": token,
        "files": { "allowed_types": files.allowed_types, "max_bytes": files.max_bytes },
        "transcript_mail": !svc.settings.mail.smtp_url.is_empty(),
    })))
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
    // Ratings are keyed by chat id (given before or after the flush): one per Message.
    let chats: Vec<String> = messages.iter().map(|m| m.chat_id.clone()).collect();
    let ratings = svc.store.ratings_of(&chats).await?;
    let messages: Vec<serde_json::Value> = messages
        .into_iter()
        .map(|m| {
            let rating = ratings.iter().find(|r| r.chat_id == m.chat_id);
            let mut v = json!(m);
            v["rating"] = json!(rating);
            v
        })
        .collect();
    Ok(Json(
        json!({ "interaction": interaction, "messages": messages }),
    ))
}

/// Ready when Redis and the store answer and the node is not draining. Both checks run at
/// once, each under `server.ready_timeout_ms`, so the probe answers within that bound even
/// when a dependency black-holes packets; the body names what is failing and why.
async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    let limit = std::time::Duration::from_millis(svc.settings.server.ready_timeout_ms);
    let (redis, store) = tokio::join!(
        ready_check(limit, svc.redis.ping()),
        ready_check(limit, svc.store.ping())
    );
    let draining = svc.draining.load(std::sync::atomic::Ordering::Relaxed);
    let mut failing = Vec::new();
    let mut errors = serde_json::Map::new();
    for (name, result) in [("redis", &redis), ("store", &store)] {
        if let Err(why) = result {
            svc.metrics
                .ready_check_failures
                .with_label_values(&[name])
                .inc();
            failing.push(name);
            errors.insert(name.into(), why.clone().into());
        }
    }
    let status = if failing.is_empty() && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "redis": redis.is_ok(),
            "store": store.is_ok(),
            "draining": draining,
            "failing": failing,
            "errors": errors,
        })),
    )
        .into_response()
}

/// One dependency's check: `Err` with the reason when it failed or ran out of time.
async fn ready_check<E: std::fmt::Display>(
    limit: std::time::Duration,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        svc.metrics.render(),
    )
        .into_response()
}
