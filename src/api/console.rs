//! What the agent console reads beside a chat: the visitor panel of a chat the agent handles
//! and the roster of agents to transfer to.

use super::auth::agent_from;
use super::ApiResult;
use crate::chat::Service;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/chats/{id}/visitor", get(chat_panel))
        .route("/api/agents/roster", get(roster))
}

/// The visitor panel: only for the agent the chat is assigned or offered to (403 otherwise).
async fn chat_panel(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(chat): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let party = agent_from(&svc, &headers).await?.party(&svc).await?;
    Ok(Json(json!(svc.chat_panel(&party, &chat).await?)))
}

async fn roster(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    agent_from(&svc, &headers).await?;
    Ok(Json(json!(svc.roster().await?)))
}
