//! Agent login (`POST /api/agent/login`) with a bounded cost: at most
//! `limits.login_concurrency` password checks (argon2, 19 MiB each) run at once on a node, a
//! few more logins wait for them briefly and the rest are refused, and
//! failed logins per client IP and per username are throttled cluster-wide through Redis
//! before any password is checked. Failures are counted and logged, never with the password.

use super::{err, ApiError};
use crate::chat::identity::Identity;
use crate::chat::Service;
use crate::protocol::ErrorCode;
use crate::redis::{LoginGate, LoginLimits, LoginSettled};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Logins that may wait for a check to finish, per check allowed at once: a few logins arriving
/// together are served in turn, a flood is refused rather than queued.
const WAITING_PER_CHECK: usize = 4;

/// Longest a login waits for a free check.
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// Longest username and password accepted; longer is refused before any work.
const MAX_USERNAME_BYTES: usize = 64;
const MAX_PASSWORD_BYTES: usize = 1024;

struct Login {
    svc: Arc<Service>,
    /// Password checks allowed to run now; argon2's memory is only taken with a permit.
    checks: Arc<Semaphore>,
    /// Places for logins waiting for a permit (`WAITING_PER_CHECK` per check). A login that
    /// finds none, or waits `LONGEST_WAIT` in vain, is answered 503 at once: a flood cannot
    /// queue argon2 work without bound.
    waiting: Semaphore,
    limits: LoginLimits,
}

/// The number of password checks a node runs at once: the setting, or the CPU count for 0.
pub fn login_concurrency(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub(super) fn routes(svc: Arc<Service>) -> Router {
    let l = &svc.settings.limits;
    let checks = login_concurrency(l.login_concurrency);
    let state = Arc::new(Login {
        checks: Arc::new(Semaphore::new(checks)),
        waiting: Semaphore::new(checks * WAITING_PER_CHECK),
        limits: LoginLimits {
            free_per_ip: l.login_failures_per_ip,
            free_per_user: l.login_failures_per_user,
            backoff_ms: l.login_backoff_ms,
            backoff_max_ms: l.login_backoff_max_ms,
        },
        svc,
    });
    Router::new()
        .route("/api/agent/login", post(agent_login))
        .with_state(state)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A refusal the client should retry after `seconds`, with the `Retry-After` header.
fn retry_after(code: ErrorCode, seconds: u64, message: String) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    (
        status,
        [(header::RETRY_AFTER, seconds.max(1).to_string())],
        Json(json!({ "code": code.code(), "error": code.name(), "message": message })),
    )
        .into_response()
}

async fn agent_login(
    State(login): State<Arc<Login>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Result<Response, ApiError> {
    let svc = &login.svc;
    let failures = &svc.metrics.edge.login_failures;
    if c.username.len() > MAX_USERNAME_BYTES || c.password.len() > MAX_PASSWORD_BYTES {
        failures.with_label_values(&["invalid"]).inc();
        return Err(err(
            ErrorCode::InvalidField,
            "username or password too long",
        ));
    }
    let ip = super::client_ip(svc, peer, &headers);
    // The permit before Redis: a login refused as busy is then not counted as an attempt.
    let Some(permit) = check_permit(&login).await else {
        failures.with_label_values(&["busy"]).inc();
        tracing::debug!(%ip, "login refused: password checks busy");
        return Ok(retry_after(
            ErrorCode::Unavailable,
            1,
            "too many logins are being checked on this node; retry in a second".into(),
        ));
    };
    match svc
        .redis
        .login_attempt(&ip, &c.username, &login.limits)
        .await
    {
        Ok(LoginGate::Allowed) => {}
        Ok(LoginGate::Wait { ms, by }) => {
            failures.with_label_values(&["throttled"]).inc();
            let seconds = ms.div_ceil(1000);
            tracing::debug!(%ip, username = ?c.username, by, seconds, "login throttled");
            let whose = if by == "ip" {
                "from this address"
            } else {
                "for this username"
            };
            return Ok(retry_after(
                ErrorCode::LoginThrottled,
                seconds,
                format!("too many failed logins {whose}; retry in {seconds} s"),
            ));
        }
        Err(e) => {
            // Fail closed: without the shared counts, guesses would go unlimited.
            failures.with_label_values(&["unavailable"]).inc();
            tracing::warn!(error = %e, "login refused: redis unavailable for the login limits");
            return Err(err(ErrorCode::Unavailable, "redis is unavailable, retry"));
        }
    }
    // The check runs in a task of its own that holds the permit: a client that hangs up
    // mid-check must not free the permit while its argon2 work still runs.
    let check = {
        let svc = svc.clone();
        let (username, password) = (c.username.clone(), c.password);
        tokio::spawn(async move {
            let _permit = permit;
            svc.store.verify_password(&username, &password).await
        })
    };
    let checked = match check.await {
        Ok(checked) => checked,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => return Err(err(ErrorCode::Unavailable, "the node is stopping, retry")),
    };
    let agent = match checked {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            failures.with_label_values(&["wrong_credentials"]).inc();
            tracing::warn!(%ip, username = ?c.username, "login failed: wrong username or password");
            return Err(err(ErrorCode::Forbidden, "wrong username or password"));
        }
        Err(e) => {
            failures.with_label_values(&["unavailable"]).inc();
            settle(&login, &ip, &c.username, LoginSettled::NotChecked).await;
            return Err(e.into());
        }
    };
    settle(&login, &ip, &c.username, LoginSettled::Succeeded).await;
    if agent.disabled {
        failures.with_label_values(&["disabled"]).inc();
        tracing::warn!(%ip, username = ?c.username, "login refused: the agent is disabled");
        return Err(err(ErrorCode::Forbidden, "the agent is disabled"));
    }
    // The token carries the agent's session version: a logout, a password reset or disabling
    // the agent raises it and ends the token on every node (`api::auth`).
    let session = svc
        .store
        .agent_session(agent.id)
        .await?
        .ok_or_else(|| err(ErrorCode::Forbidden, "wrong username or password"))?
        .version;
    let token = svc.tokens.issue(
        &Identity::Agent {
            id: agent.id,
            session,
        },
        super::now_s(),
    );
    Ok(Json(json!({ "token": token, "agent": agent })).into_response())
}

/// A permit to check a password: at once, or after a short wait in a bounded line.
async fn check_permit(login: &Login) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = login.checks.clone().try_acquire_owned() {
        return Some(p);
    }
    let _place = login.waiting.try_acquire().ok()?;
    tokio::time::timeout(LONGEST_WAIT, login.checks.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Corrects the attempt's count; a failure here only leaves one attempt counted too many.
async fn settle(login: &Login, ip: &str, username: &str, how: LoginSettled) {
    if let Err(e) = login
        .svc
        .redis
        .login_settled(ip, username, &login.limits, how)
        .await
    {
        tracing::warn!(error = %e, "could not settle a login's count");
    }
}
