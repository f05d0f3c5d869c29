//! Data protection over HTTP, for admins: find a contact, export everything stored about it,
//! erase it; run the retention job now; read the audit log.

use super::admin_request::{admin, id, limit, query};
use super::{err, ApiResult};
use crate::chat::retention::purge_once;
use crate::chat::Service;
use crate::protocol::ErrorCode;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Json, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/admin/contacts", get(find))
        .route("/api/admin/contacts/{id}/export", get(export))
        .route("/api/admin/contacts/{id}/erase", post(erase))
        .route("/api/admin/retention/run", post(retention_run))
        .route("/api/admin/audit", get(audit))
}

#[derive(Deserialize)]
struct Find {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    visitor_id: Option<String>,
}

async fn find(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    q: Result<Query<Find>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let q = query(q)?;
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&q.email) && blank(&q.visitor_id) {
        return Err(err(ErrorCode::InvalidField, "give email or visitor_id"));
    }
    let found = svc
        .store
        .find_contacts(q.email.as_deref(), q.visitor_id.as_deref())
        .await?;
    Ok(Json(json!(found)))
}

async fn export(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let actor = admin(&svc, &headers).await?;
    let contact = id(&raw, "contact")?;
    let doc = svc.export_contact(&actor, contact).await?;
    let mut r = Json(doc).into_response();
    let disposition = format!("attachment; filename=\"contact-{contact}.json\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}

async fn erase(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let erased = svc.erase_contact(&actor, id(&raw, "contact")?).await?;
    Ok(Json(json!({ "erased": erased })))
}

async fn retention_run(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let report = purge_once(&svc).await?;
    Ok(Json(json!(report)))
}

#[derive(Deserialize)]
struct AuditPage {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    action: Option<String>,
}

async fn audit(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    q: Result<Query<AuditPage>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    let q = query(q)?;
    let entries = svc
        .audit_log(q.before, limit(q.limit)?, q.action.as_deref())
        .await?;
    let next = entries.last().map(|e| e.id);
    Ok(Json(json!({ "entries": entries, "next_before": next })))
}
