//! HTTP/JSON handlers: visitor sessions, agent login, admin agent management, interactions and
//! transcripts, health and metrics. Errors are `{"code", "error", "message"}` with the HTTP
//! status of the code (see `docs/protocol.md`).

mod canned;
mod cors;
mod files;

use crate::chat::identity::{new_id, Identity};
use crate::chat::{ChatError, Party, Service};
use crate::protocol::ErrorCode;
use crate::store::{NewAgent, StoreError};
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
        .route_layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            cors::widget_cors,
        ));
    Router::new()
        .merge(widget)
        .route("/api/agent/login", post(agent_login))
        .route("/api/agent/me", get(agent_me))
        .route("/api/admin/agents", get(list_agents).post(create_agent))
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

/// The agent behind the `Authorization: Bearer` header.
async fn agent_from(svc: &Service, headers: &HeaderMap) -> ApiResult<(i64, bool)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            err(
                ErrorCode::Forbidden,
                "an agent token is required (Authorization: Bearer)",
            )
        })?;
    match svc.tokens.verify(token, now_s()) {
        Ok(Identity::Agent { id, admin }) => Ok((id, admin)),
        _ => Err(err(
            ErrorCode::Forbidden,
            "the agent token is invalid or expired",
        )),
    }
}

#[derive(Deserialize, Default)]
struct SessionRequest {
    #[serde(default)]
    token: Option<String>,
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
            let ip = svc.settings.server.client_ip(
                peer.ip(),
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            svc.limits.new_visitor(&ip.to_string()).await?;
            new_id()
        }
    };
    let token = svc
        .tokens
        .issue(&Identity::Visitor { id: id.clone() }, now_s());
    Ok(Json(json!({ "visitor_id": id, "token": token })))
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn agent_login(
    State(svc): State<Arc<Service>>,
    Json(l): Json<Login>,
) -> ApiResult<Json<serde_json::Value>> {
    if l.username.len() > 64 || l.password.len() > 1024 {
        return Err(err(
            ErrorCode::InvalidField,
            "username or password too long",
        ));
    }
    let Some(agent) = svc.store.verify_password(&l.username, &l.password).await? else {
        return Err(err(ErrorCode::Forbidden, "wrong username or password"));
    };
    let token = svc.tokens.issue(
        &Identity::Agent {
            id: agent.id,
            admin: agent.role == "admin",
        },
        now_s(),
    );
    Ok(Json(json!({ "token": token, "agent": agent })))
}

async fn agent_me(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let (id, _) = agent_from(&svc, &headers).await?;
    let agent = svc
        .store
        .agent(id)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, "no such agent"))?;
    Ok(Json(json!(agent)))
}

#[derive(Deserialize)]
struct CreateAgent {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    password: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    max_chats: Option<i64>,
    #[serde(default)]
    queues: Option<Vec<String>>,
}

async fn create_agent(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Json(c): Json<CreateAgent>,
) -> ApiResult<Response> {
    let (_, admin) = agent_from(&svc, &headers).await?;
    if !admin {
        return Err(err(ErrorCode::Forbidden, "only admins manage agents"));
    }
    let new = NewAgent {
        display_name: c.display_name.unwrap_or_else(|| c.username.clone()),
        username: c.username,
        password: c.password,
        role: c.role.unwrap_or_else(|| "agent".into()),
        max_chats: c
            .max_chats
            .unwrap_or(svc.settings.chat.default_max_chats as i64),
        queues: c
            .queues
            .unwrap_or_else(|| vec![svc.settings.chat.default_queue.clone()]),
    };
    let agent = match svc.store.create_agent(&new).await {
        Ok(a) => a,
        Err(StoreError::Conflict(m)) => return Err(err(ErrorCode::WrongState, m)),
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(json!(agent))).into_response())
}

async fn list_agents(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let (_, admin) = agent_from(&svc, &headers).await?;
    if !admin {
        return Err(err(ErrorCode::Forbidden, "only admins manage agents"));
    }
    Ok(Json(json!(svc.store.agents().await?)))
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
    let (id, _) = agent_from(&svc, &headers).await?;
    let agent = svc
        .store
        .agent(id)
        .await?
        .ok_or_else(|| err(ErrorCode::Forbidden, "the agent no longer exists"))?;
    let party = Party::Agent {
        id,
        name: agent.display_name,
        max_chats: agent.max_chats,
        queues: agent.queues,
    };
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
