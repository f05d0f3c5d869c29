//! Who is calling: agent logout and `me`, and the checks every agent endpoint makes.
//! A token is checked for its signature and expiry, then its session version against the
//! agent's current one (`chat::sessions`: one Redis read), so a logout, a password reset or a
//! disabled or deleted agent ends it at once on every node. Roles are read from the store on
//! every admin request, never taken from the token.

use super::{err, now_s, ApiResult};
use crate::chat::identity::Identity;
use crate::chat::sessions::Ending;
use crate::chat::{Party, Service};
use crate::protocol::ErrorCode;
use crate::store::Agent;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/agent/logout", post(logout))
        .route("/api/agent/me", get(me))
}

/// An agent whose token and session were checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caller {
    pub id: i64,
    pub session: u64,
}

impl Caller {
    /// The caller's record in the store; refused when the agent is gone or disabled.
    pub async fn record(&self, svc: &Service) -> ApiResult<Agent> {
        match svc.store.agent(self.id).await? {
            Some(a) if !a.disabled => Ok(a),
            Some(_) => Err(err(ErrorCode::Forbidden, "the agent is disabled")),
            None => Err(err(ErrorCode::Forbidden, "the agent no longer exists")),
        }
    }

    /// The caller as the chat service sees it (name, capacity and queues from the store).
    pub async fn party(&self, svc: &Service) -> ApiResult<Party> {
        Ok(Party::agent(&self.record(svc).await?, self.session))
    }

    /// Whether the caller is an admin now (the store's role).
    pub async fn is_admin(&self, svc: &Service) -> ApiResult<bool> {
        Ok(self.record(svc).await?.role == "admin")
    }
}

/// The bearer token of the `Authorization` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
}

/// The agent behind a token, once its session is known to be current.
pub(super) async fn agent_of_token(svc: &Service, token: &str) -> ApiResult<Caller> {
    let Ok(Identity::Agent { id, session }) = svc.tokens.verify(token, now_s()) else {
        return Err(err(
            ErrorCode::Forbidden,
            "the agent token is invalid or expired",
        ));
    };
    if !svc.agent_session_valid(id, session).await? {
        return Err(err(
            ErrorCode::Forbidden,
            "the session has ended; log in again",
        ));
    }
    Ok(Caller { id, session })
}

/// The agent behind the `Authorization: Bearer` header.
pub(super) async fn agent_from(svc: &Service, headers: &HeaderMap) -> ApiResult<Caller> {
    let token = bearer(headers).ok_or_else(|| {
        err(
            ErrorCode::Forbidden,
            "an agent token is required (Authorization: Bearer)",
        )
    })?;
    agent_of_token(svc, token).await
}

/// An admin behind the `Authorization: Bearer` header, by the role the store holds now.
pub(super) async fn admin_from(svc: &Service, headers: &HeaderMap) -> ApiResult<(Caller, Agent)> {
    let caller = agent_from(svc, headers).await?;
    let me = caller.record(svc).await?;
    if me.role != "admin" {
        return Err(err(ErrorCode::Forbidden, "only admins manage agents"));
    }
    Ok((caller, me))
}

/// Ends every session of the calling agent: all its tokens, on every node; its sockets close
/// with 4401.
async fn logout(State(svc): State<Arc<Service>>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let caller = agent_from(&svc, &headers).await?;
    svc.end_agent_sessions(caller.id, Ending::Logout).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = agent_from(&svc, &headers).await?;
    let agent = svc
        .store
        .agent(caller.id)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, "no such agent"))?;
    Ok(Json(json!(agent)))
}
