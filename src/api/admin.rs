//! The admin API for agents: list, create, change (name, role, queues, capacity), disable and
//! enable, delete, reset a password, end an agent's sessions. Admins only, by the role the
//! store holds at the time of the request. Every change takes effect at once on every node
//! (see `chat::agents`), and every change is written to the audit log.

use super::admin_request::admin;
use super::auth::admin_from;
use super::{err, ApiError, ApiResult};
use crate::chat::sessions::Ending;
use crate::chat::{ChatError, Service};
use crate::protocol::ErrorCode;
use crate::store::{AgentChanges, NewAgent};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/admin/agents", get(list).post(create))
        .route(
            "/api/admin/agents/{id}",
            get(show).patch(change).delete(remove),
        )
        .route("/api/admin/agents/{id}/disable", post(disable))
        .route("/api/admin/agents/{id}/enable", post(enable))
        .route("/api/admin/agents/{id}/password", post(password))
        .route("/api/admin/agents/{id}/logout", post(logout))
}

fn agent_id(id: &str) -> ApiResult<i64> {
    id.parse()
        .map_err(|_| err(ErrorCode::InvalidField, "agent id must be a number"))
}

/// A refusal of the chat service, with `not found` naming the agent.
fn named(e: ChatError) -> ApiError {
    if e.code == ErrorCode::NotFound {
        err(ErrorCode::NotFound, "no such agent")
    } else {
        e.into()
    }
}

async fn list(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin_from(&svc, &headers).await?;
    Ok(Json(json!(svc.store.agents().await?)))
}

async fn show(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    admin_from(&svc, &headers).await?;
    let agent = svc
        .store
        .agent(agent_id(&id)?)
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

async fn create(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Json(c): Json<CreateAgent>,
) -> ApiResult<Response> {
    let actor = admin(&svc, &headers).await?;
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
    let agent = svc.store.create_agent(&new).await?;
    let detail = json!({ "role": agent.role, "queues": agent.queues });
    svc.audit(
        &actor,
        "agent.create",
        &format!("agent:{}", agent.id),
        detail,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(agent))).into_response())
}

async fn change(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(changes): Json<AgentChanges>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let agent = svc
        .change_agent(agent_id(&id)?, &changes)
        .await
        .map_err(named)?;
    let detail =
        json!({ "role": agent.role, "queues": agent.queues, "max_chats": agent.max_chats });
    svc.audit(
        &actor,
        "agent.change",
        &format!("agent:{}", agent.id),
        detail,
    )
    .await?;
    Ok(Json(json!(agent)))
}

async fn set_disabled(
    svc: &Service,
    headers: &HeaderMap,
    id: &str,
    disabled: bool,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(svc, headers).await?;
    let agent = svc
        .set_agent_disabled(agent_id(id)?, disabled)
        .await
        .map_err(named)?;
    let action = if disabled {
        "agent.disable"
    } else {
        "agent.enable"
    };
    svc.audit(&actor, action, &format!("agent:{}", agent.id), json!({}))
        .await?;
    Ok(Json(json!(agent)))
}

async fn disable(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    set_disabled(&svc, &headers, &id, true).await
}

async fn enable(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    set_disabled(&svc, &headers, &id, false).await
}

async fn remove(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = admin(&svc, &headers).await?;
    let id = agent_id(&id)?;
    svc.delete_agent(id).await.map_err(named)?;
    svc.audit(&actor, "agent.delete", &format!("agent:{id}"), json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

async fn password(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(p): Json<NewPassword>,
) -> ApiResult<StatusCode> {
    let actor = admin(&svc, &headers).await?;
    let id = agent_id(&id)?;
    svc.reset_agent_password(id, &p.password)
        .await
        .map_err(named)?;
    svc.audit(&actor, "agent.password", &format!("agent:{id}"), json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = admin(&svc, &headers).await?;
    let id = agent_id(&id)?;
    svc.end_agent_sessions(id, Ending::Admin)
        .await
        .map_err(named)?;
    svc.audit(&actor, "agent.logout", &format!("agent:{id}"), json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
