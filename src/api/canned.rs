//! Canned responses over HTTP: search, create, edit and delete them, and render one for a
//! chat. Shared responses are changed by admins only; personal ones are seen and changed by
//! their owner only, and are "not found" for everyone else. Records go out through
//! `json!` like the other handlers', so their keys are sorted.

use super::auth::agent_from;
use super::{err, ApiResult};
use crate::chat::canned::check;
use crate::chat::Service;
use crate::protocol::ErrorCode;
use crate::store::{CannedFields, CannedQuery, CannedResponse, CannedScope};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/canned", get(search).post(create))
        .route("/api/canned/{id}", put(update).delete(remove))
        .route("/api/canned/{id}/render", post(render))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// The body of a create or an update.
#[derive(Deserialize)]
struct Body {
    title: String,
    shortcut: String,
    text: String,
    /// `shared` or `personal` (the default) on create; on update accepted when it names the
    /// current scope, so a client may send a whole record back.
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct Render {
    chat_id: String,
}

fn parse_scope(s: Option<&str>) -> ApiResult<CannedScope> {
    match s {
        None | Some("personal") => Ok(CannedScope::Personal),
        Some("shared") => Ok(CannedScope::Shared),
        Some(_) => Err(err(
            ErrorCode::InvalidField,
            "scope must be shared or personal",
        )),
    }
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| {
        err(
            ErrorCode::InvalidField,
            "canned response id must be a number",
        )
    })
}

/// Refuses texts whose placeholders could never render, before they are stored.
fn checked(title: String, shortcut: String, text: String) -> ApiResult<CannedFields> {
    check(&text).map_err(|e| err(ErrorCode::InvalidField, e.to_string()))?;
    Ok(CannedFields {
        title,
        shortcut,
        text,
    })
}

fn forbid_shared(admin: bool) -> ApiResult<()> {
    if admin {
        Ok(())
    } else {
        Err(err(
            ErrorCode::Forbidden,
            "only admins manage shared canned responses",
        ))
    }
}

/// The response `agent` may change: visible to them, and shared only for admins.
async fn editable(svc: &Service, id: i64, agent: i64, admin: bool) -> ApiResult<CannedResponse> {
    let canned = svc
        .store
        .visible_canned(id, agent)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, "no such canned response"))?;
    if canned.scope == CannedScope::Shared {
        forbid_shared(admin)?;
    }
    Ok(canned)
}

async fn search(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Query(s): Query<Search>,
) -> ApiResult<Json<serde_json::Value>> {
    let agent = agent_from(&svc, &headers).await?.id;
    let q = CannedQuery::parse(&s.q)?;
    Ok(Json(json!(svc.store.search_canned(agent, &q).await?)))
}

async fn create(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Json(c): Json<Body>,
) -> ApiResult<Response> {
    let caller = agent_from(&svc, &headers).await?;
    let (agent, admin) = (caller.id, caller.is_admin(&svc).await?);
    let scope = parse_scope(c.scope.as_deref())?;
    let owner = match scope {
        CannedScope::Shared => {
            forbid_shared(admin)?;
            None
        }
        CannedScope::Personal => Some(agent),
    };
    let fields = checked(c.title, c.shortcut, c.text)?;
    let canned = svc.store.create_canned(scope, owner, &fields).await?;
    Ok((StatusCode::CREATED, Json(json!(canned))).into_response())
}

async fn update(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(u): Json<Body>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = agent_from(&svc, &headers).await?;
    let (agent, admin) = (caller.id, caller.is_admin(&svc).await?);
    let id = parse_id(&id)?;
    let current = editable(&svc, id, agent, admin).await?;
    if let Some(scope) = u.scope.as_deref() {
        if parse_scope(Some(scope))? != current.scope {
            return Err(err(
                ErrorCode::InvalidField,
                "the scope of a canned response cannot be changed",
            ));
        }
    }
    let fields = checked(u.title, u.shortcut, u.text)?;
    Ok(Json(json!(svc.store.update_canned(id, &fields).await?)))
}

async fn remove(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let caller = agent_from(&svc, &headers).await?;
    let (agent, admin) = (caller.id, caller.is_admin(&svc).await?);
    let id = parse_id(&id)?;
    editable(&svc, id, agent, admin).await?;
    svc.store.delete_canned(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn render(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(r): Json<Render>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = agent_from(&svc, &headers).await?;
    let id = parse_id(&id)?;
    let canned = svc
        .store
        .visible_canned(id, caller.id)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, "no such canned response"))?;
    let party = caller.party(&svc).await?;
    let text = svc.render_canned(&party, &r.chat_id, &canned.text).await?;
    Ok(Json(json!({ "text": text })))
}
