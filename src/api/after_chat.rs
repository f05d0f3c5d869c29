//! The widget's after-chat calls, with the visitor token as Bearer: rate the chat
//! (`POST /api/visitor/chats/{id}/rating`) and have its transcript e-mailed
//! (`POST /api/visitor/chats/{id}/transcript`). The rules are in `chat::after_chat`.

use super::admin_request::body as read_body;
use super::auth::bearer;
use super::{err, now_s, ApiResult};
use crate::chat::identity::Identity;
use crate::chat::Service;
use crate::protocol::ErrorCode;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route(
            "/api/visitor/chats/{chat_id}/rating",
            post(rate).options(super::cors::preflight),
        )
        .route(
            "/api/visitor/chats/{chat_id}/transcript",
            post(transcript).options(super::cors::preflight),
        )
}

/// The visitor behind the Bearer token and the client's IP.
fn visitor_of(svc: &Service, headers: &HeaderMap, peer: SocketAddr) -> ApiResult<(String, String)> {
    let token = bearer(headers).ok_or_else(|| {
        err(
            ErrorCode::Forbidden,
            "a visitor token is required (Authorization: Bearer)",
        )
    })?;
    let id = match svc.tokens.verify(token, now_s()) {
        Ok(Identity::Visitor { id }) => id,
        _ => {
            return Err(err(
                ErrorCode::Forbidden,
                "the visitor token is invalid or expired",
            ))
        }
    };
    Ok((id, super::client_ip(svc, peer, headers)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn rate(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(chat): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (visitor, ip) = visitor_of(&svc, &headers, peer)?;
    let body = read_body(body)?;
    let stored = svc
        .rate_chat(&visitor, &ip, &chat, &body.rating, body.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(stored))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptBody {
    email: String,
}

async fn transcript(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(chat): Path<String>,
    headers: HeaderMap,
    body: Result<Json<TranscriptBody>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let (visitor, ip) = visitor_of(&svc, &headers, peer)?;
    let body = read_body(body)?;
    svc.mail_transcript(&visitor, &ip, &chat, &body.email)
        .await?;
    Ok(Json(json!({ "chat_id": chat, "sent": true })))
}
