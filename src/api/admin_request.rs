//! What the admin endpoints of webhooks, data protection and the audit log share: the one
//! admin check they all call (so the rule lives in one place), and how they read ids, query
//! strings and bodies into the documented errors (the readers serve other endpoints too).

use super::auth::admin_from;
use super::{err, ApiResult};
use crate::chat::audit::Actor;
use crate::chat::Service;
use crate::protocol::ErrorCode;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Json, Query};
use axum::http::HeaderMap;

/// The admin behind the request, as the audit log names them; `forbidden` for anyone else.
/// The role comes from the store on every request (`auth::admin_from`), never from the token.
pub(super) async fn admin(svc: &Service, headers: &HeaderMap) -> ApiResult<Actor> {
    let (caller, me) = admin_from(svc, headers).await?;
    Ok(Actor::agent(caller.id, &me.username))
}

/// A numeric id from the path.
pub(super) fn id(raw: &str, what: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| {
        err(
            ErrorCode::InvalidField,
            format!("{what} id must be a number"),
        )
    })
}

pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| err(ErrorCode::InvalidField, e.body_text()))
}

pub(super) fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(t)| t)
        .map_err(|e| err(ErrorCode::InvalidField, e.body_text()))
}

/// `limit` of a page: 1-500, 50 when absent.
pub(super) fn limit(l: Option<i64>) -> ApiResult<i64> {
    let l = l.unwrap_or(50);
    if !(1..=500).contains(&l) {
        return Err(err(ErrorCode::InvalidField, "limit must be 1-500"));
    }
    Ok(l)
}
