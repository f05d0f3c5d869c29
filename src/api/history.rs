//! The searchable history of stored chats (`GET /api/history`): any agent, like the list of
//! recent interactions; the filters and the keyset pagination are the store's.

use super::admin_request::query;
use super::auth::agent_from;
use super::{err, ApiResult};
use crate::chat::Service;
use crate::protocol::ErrorCode;
use crate::store::{HistoryCursor, HistoryPage, HistoryQuery};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Json, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

/// Longest text accepted for any one filter, in characters.
const MAX_FILTER_CHARS: usize = 200;

pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new().route("/api/history", get(search))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    agent_id: Option<i64>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    empty: Option<bool>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn search(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    q: Result<Query<Search>, QueryRejection>,
) -> ApiResult<Json<HistoryPage>> {
    agent_from(&svc, &headers).await?;
    let s = query(q)?;
    for (key, value) in [
        ("q", &s.q),
        ("email", &s.email),
        ("name", &s.name),
        ("agent", &s.agent),
        ("queue", &s.queue),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_FILTER_CHARS)
        {
            return Err(err(
                ErrorCode::InvalidField,
                format!("{key} must be at most {MAX_FILTER_CHARS} characters"),
            ));
        }
    }
    let after = match s.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(HistoryCursor::decode(a).ok_or_else(|| {
            err(
                ErrorCode::InvalidField,
                "after must be a cursor from `next`",
            )
        })?),
        None => None,
    };
    let limit = s.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(err(ErrorCode::InvalidField, "limit must be 1-100"));
    }
    let query = HistoryQuery {
        text: s.q,
        email: s.email,
        name: s.name,
        agent_id: s.agent_id,
        agent: s.agent,
        queue: s.queue,
        decision: s.decision,
        from: s.from,
        to: s.to,
        empty: s.empty,
        after,
        limit,
    };
    let started = std::time::Instant::now();
    let page = svc.store.search_history(&query).await;
    svc.metrics
        .history_search_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(Json(page?))
}
