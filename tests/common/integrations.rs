//! Helpers for the webhook and data-protection tests: HTTP verbs the common module lacks, the
//! metrics text, and a real HTTP receiver for webhooks that records every request, checks its
//! signature and answers as the test tells it to.

use super::accounts::call;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};

/// The secret the tests register their endpoints with (the receiver checks signatures by it).
pub const SECRET: &str = "whsec_test_0123456789abcdef";

pub async fn patch(url: &str, body: Value, token: &str) -> (u16, Value) {
    call(reqwest::Method::PATCH, url, Some(body), Some(token)).await
}

pub async fn delete(url: &str, token: &str) -> (u16, Value) {
    call(reqwest::Method::DELETE, url, None, Some(token)).await
}

/// The value of one series in a metrics text (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// 204 to everything.
    Ok,
    /// 500 to the first N requests, then 204.
    FailFirst(usize),
    /// Always this status.
    Always(u16),
    /// Records the first request and never answers it (the sender dies meanwhile); 204 after.
    HangFirst,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub body: Value,
    /// The signature matched the body, the secret and a timestamp within 5 minutes.
    pub signed: bool,
    /// The status answered (0: never answered).
    pub answered: u16,
}

struct Shared {
    plan: Plan,
    log: Mutex<Vec<Received>>,
}

/// A webhook receiver on a loopback port, running until the test ends.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers
        .get("switchboard-signature")
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let (mut t, mut v1) = (None, None);
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let Ok(expected) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    mac.verify_slice(&expected).is_ok()
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (n, status) = {
        let log = s.log.lock().unwrap();
        let n = log.len();
        let status = match s.plan {
            Plan::Ok => 204,
            Plan::FailFirst(k) if n < k => 500,
            Plan::FailFirst(_) => 204,
            Plan::Always(code) => code,
            Plan::HangFirst if n == 0 => 0,
            Plan::HangFirst => 204,
        };
        (n, status)
    };
    let r = Received {
        event_id: h("switchboard-event-id"),
        event_type: h("switchboard-event-type"),
        attempt: h("switchboard-delivery-attempt").parse().unwrap_or(0),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        signed: verify(&headers, &body),
        answered: status,
    };
    s.log.lock().unwrap().push(r);
    if status == 0 {
        let _ = n;
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start(plan: Plan) -> Receiver {
        let shared = Arc::new(Shared {
            plan,
            log: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            shared,
        }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

/// Fast retries, a short claim period, loopback receivers allowed.
pub fn fast_hooks(s: &mut switchboard::config::Settings) {
    let w = &mut s.webhooks;
    w.allowed_networks = vec!["127.0.0.0/8".into(), "::1/128".into()];
    w.connect_timeout_ms = 500;
    w.timeout_ms = 1_500;
    // Long enough that a delivery slowed by a loaded machine (SQLite waits included) is not
    // taken over as if its node had died.
    w.claim_idle_ms = 4_000;
    w.retry_base_ms = 200;
    w.retry_max_delay_ms = 400;
}
