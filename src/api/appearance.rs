//! The widget's appearance over HTTP: what every widget reads (public, from the node's short
//! cache, see `chat::appearance`) and what admins read and save.

use super::admin_request::{admin, body};
use super::ApiResult;
use crate::chat::appearance::{AppearanceInput, CACHE_TTL};
use crate::chat::Service;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Json, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::Arc;

/// The public read, for the widget's router (which adds CORS).
pub(super) fn widget_routes() -> Router<Arc<Service>> {
    Router::new().route("/api/widget/appearance", get(public))
}

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new().route("/api/admin/appearance", get(show).put(save))
}

/// What a widget needs, nothing about who saved it when.
async fn public(State(svc): State<Arc<Service>>) -> ApiResult<Response> {
    let a = svc.appearance().await?;
    let mut r = Json(json!({
        "color": a.color,
        "greeting": a.greeting,
        "position": a.position,
        "launcher_text": a.launcher_text,
        "offline_text": a.offline_text,
    }))
    .into_response();
    // Browsers may keep it as long as the node does; a change shows within twice the TTL.
    let max_age = format!("public, max-age={}", CACHE_TTL.as_secs());
    if let Ok(v) = HeaderValue::from_str(&max_age) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(r)
}

async fn show(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&svc, &headers).await?;
    Ok(Json(json!(svc.store.appearance().await?)))
}

async fn save(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    input: Result<Json<AppearanceInput>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = admin(&svc, &headers).await?;
    let input = body(input)?;
    let saved = svc.set_appearance(&actor, &input).await?;
    Ok(Json(json!(*saved)))
}
