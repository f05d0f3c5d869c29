//! CORS for the routes the widget calls from the organisation's own site (visitor session,
//! chat files): allowed for the configured sites, or any site when `server.allowed_origins`
//! is empty. Tokens travel in headers, never cookies, so no credentials mode is needed.

use crate::chat::Service;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn allowed_origin(svc: &Service, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let allowed = &svc.settings.server.allowed_origins;
    let ok = allowed.is_empty() || allowed.iter().any(|a| a.as_bytes() == origin.as_bytes());
    ok.then(|| origin.clone())
}

/// Adds `Access-Control-Allow-Origin` to every response of the widget's routes.
pub(super) async fn widget_cors(
    State(svc): State<Arc<Service>>,
    req: Request,
    next: Next,
) -> Response {
    let origin = allowed_origin(&svc, req.headers());
    let mut r = next.run(req).await;
    if let Some(origin) = origin {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The answer to a preflight (`OPTIONS`) on a widget route.
pub(super) async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}
