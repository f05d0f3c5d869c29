//! One delivery attempt: a signed POST of the event's stored body to an endpoint, through the
//! guarded resolver, with connect and total timeouts, no redirects, and at most
//! [`RESPONSE_BYTES_KEPT`] of the response read.
//!
//! Signature (documented in docs/operations.md): `Switchboard-Signature: t=T,v1=HEX` where T is
//! the Unix time in seconds and HEX the hex HMAC-SHA256, keyed with the endpoint's secret, of
//! `T.BODY`. A receiver recomputes it, compares in constant time and refuses a T too far from
//! its clock (a replay); `Switchboard-Event-Id` is the idempotency key.

use super::guard::{Guard, GuardedResolver, Refusal};
use crate::config::Webhooks;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of a response read before the connection is dropped; the first of them (as text)
/// go into the delivery log when the attempt failed.
pub const RESPONSE_BYTES_KEPT: usize = 1024;
/// Characters of a failed response's body kept in the delivery log.
const ERROR_CHARS: usize = 200;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Any other answer (redirects included), a timeout or a connection failure.
    Failed,
    /// The endpoint's address is not allowed (it resolved inside); nothing was sent.
    Refused,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What a delivery sends.
pub struct Request<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub attempt: i64,
}

/// The node's webhook HTTP client (one connection pool for every endpoint).
pub struct Sender {
    client: reqwest_tls::Client,
    guard: Arc<Guard>,
}

impl Sender {
    pub fn new(w: &Webhooks) -> Result<Sender, reqwest_tls::Error> {
        // reqwest's rustls comes without a bundled crypto provider (see store::files).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guard = Arc::new(Guard::new(w));
        let client = reqwest_tls::Client::builder()
            .dns_resolver(GuardedResolver(guard.clone()))
            .redirect(reqwest_tls::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(w.connect_timeout_ms))
            .timeout(Duration::from_millis(w.timeout_ms))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, guard })
    }

    pub async fn send(&self, r: &Request<'_>) -> Attempt {
        let started = Instant::now();
        let done = |outcome, status, error: Option<String>| Attempt {
            outcome,
            status,
            error,
            duration_ms: started.elapsed().as_millis() as i64,
        };
        // A URL accepted at registration is checked again: the rules may have changed since.
        if let Err(e) = self.guard.check_url(r.url) {
            return done(Outcome::Refused, None, Some(e.to_string()));
        }
        let t = crate::chat::now_ms() / 1000;
        let sent = self
            .client
            .post(r.url)
            .header("content-type", "application/json")
            .header("switchboard-event-id", r.event_id)
            .header("switchboard-event-type", r.event_type)
            .header("switchboard-delivery-attempt", r.attempt.to_string())
            .header("switchboard-signature", signature(r.secret, t, r.body))
            .body(r.body.to_string())
            .send()
            .await;
        let mut response = match sent {
            Ok(resp) => resp,
            Err(e) => {
                if let Some(refusal) = refusal_in(&e) {
                    return done(Outcome::Refused, None, Some(refusal.to_string()));
                }
                return done(Outcome::Failed, None, Some(describe(&e)));
            }
        };
        let status = response.status();
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_BYTES_KEPT {
            match response.chunk().await {
                Ok(Some(c)) => kept.extend_from_slice(&c[..c.len().min(RESPONSE_BYTES_KEPT)]),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            return done(Outcome::Delivered, Some(status.as_u16()), None);
        }
        let text: String = String::from_utf8_lossy(&kept)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(ERROR_CHARS)
            .collect();
        let error = if status.is_redirection() {
            format!("HTTP {status}: redirects are not followed")
        } else {
            format!("HTTP {status}: {}", text.trim())
        };
        done(Outcome::Failed, Some(status.as_u16()), Some(error))
    }
}

/// `t=T,v1=HEX`: the hex HMAC-SHA256 of `T.BODY` keyed with the endpoint's secret.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// The guard's refusal inside a client error (it comes from the resolver).
fn refusal_in(e: &reqwest_tls::Error) -> Option<Refusal> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
            return Some(r.clone());
        }
        source = s.source();
    }
    None
}

/// A client error as one line: what failed, and the innermost cause.
fn describe(e: &reqwest_tls::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut inner = e.source();
    let mut last = None;
    while let Some(s) = inner {
        last = Some(s.to_string());
        inner = s.source();
    }
    match last {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_time_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
