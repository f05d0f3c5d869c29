//! Families of the HTTP edge: connections, slow clients, logins.

use super::{counter, counter_vec};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

/// Families of the HTTP edge (`gateway::http`, `api::login`).
pub struct EdgeMetrics {
    /// Open HTTP connections not (yet) upgraded to WebSockets.
    pub http_connections: IntGauge,
    /// Connections closed at once because `server.max_http_connections` were open.
    pub http_refused: IntCounter,
    /// HTTP connections closed for slowness: `header` (request head not complete in time) or
    /// `idle` (no byte moved in time).
    pub http_timeouts: IntCounterVec,
    /// Logins that did not succeed, by reason.
    pub login_failures: IntCounterVec,
}

impl EdgeMetrics {
    pub(super) fn new(r: &Registry) -> EdgeMetrics {
        let http_connections = IntGauge::new(
            "switchboard_http_connections",
            "Open HTTP connections on this node that are not WebSockets.",
        )
        .expect("valid metric");
        r.register(Box::new(http_connections.clone()))
            .expect("unique metric");
        let edge = EdgeMetrics {
            http_connections,
            http_refused: counter(
                r,
                "switchboard_http_connections_refused_total",
                "HTTP connections closed at once because server.max_http_connections were open.",
            ),
            http_timeouts: counter_vec(
                r,
                "switchboard_http_timeouts_total",
                "HTTP connections closed for slowness: header (request head not complete within server.header_timeout_ms, idle keep-alive included) or idle (no byte moved within server.http_idle_timeout_ms).",
                &["kind"],
            ),
            login_failures: counter_vec(
                r,
                "switchboard_login_failures_total",
                "Agent logins that did not succeed, by reason: wrong_credentials, throttled (too many failures from the IP or for the username), busy (limits.login_concurrency checks running), invalid (malformed request), unavailable (Redis or the store failed).",
                &["reason"],
            ),
        };
        // Every series exists from the start, so rates and alerts see the first one.
        for reason in LOGIN_FAILURE_REASONS {
            edge.login_failures.with_label_values(&[reason]);
        }
        for kind in ["header", "idle"] {
            edge.http_timeouts.with_label_values(&[kind]);
        }
        edge
    }
}

/// The `reason` label values of `switchboard_login_failures_total`.
pub const LOGIN_FAILURE_REASONS: [&str; 5] = [
    "wrong_credentials",
    "throttled",
    "busy",
    "invalid",
    "unavailable",
];
