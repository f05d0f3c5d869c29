//! The WebSocket edge: `/ws/visitor` and `/ws/agent`. Checks the token, the Origin (visitors)
//! and the connection limit before upgrading, picks JSON or MessagePack by subprotocol, then
//! hands the socket to one task per connection (`conn`).

mod conn;
mod dispatch;
mod geoip;
pub mod http;

pub use geoip::{GeoIp, GeoIpError};
mod limits;
mod replay;

use crate::chat::identity::Identity;
use crate::chat::limits::SocketLease;
use crate::chat::{ClientInfo, Party, Service};
use crate::config::Server;
use crate::protocol::{close_codes, Encoding, ErrorCode, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL};
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Read buffer per socket: holds a typical chat frame (a 250-character message is ~330 bytes
/// of MessagePack); larger frames grow it while they are read.
const READ_BUFFER_BYTES: usize = 512;

/// Bytes of frames a socket collects before writing them out without waiting for a flush.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// How the node's sockets end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Serving,
    /// The node drains: connections close with 4503, new ones are refused.
    Draining,
    /// The node is killed (tests of crash recovery): sockets drop with no goodbye and no
    /// clean-up, as if the process died.
    Killed,
}

/// What every connection task shares.
pub struct Gateway {
    pub svc: Arc<Service>,
    /// Open connections on this node, against `limits.max_connections`.
    open: AtomicUsize,
    next_id: AtomicU64,
    /// Whether and how the node's sockets end (one signal, so an idle socket's task waits on
    /// one future for it, not two).
    ending: watch::Receiver<Ending>,
    /// Countries by IP when `server.geoip_database` is set.
    geoip: Option<GeoIp>,
}

impl Gateway {
    pub fn new(
        svc: Arc<Service>,
        ending: watch::Receiver<Ending>,
        geoip: Option<GeoIp>,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            svc,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            ending,
            geoip,
        })
    }
}

impl Gateway {
    /// Open WebSocket connections on this node (a drain waits for them to close).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

pub fn routes(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/ws/visitor", get(visitor_ws))
        .route("/ws/agent", get(agent_ws))
        .with_state(gw)
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code.code(), "error": code.name(), "message": message })),
    )
        .into_response()
}

/// Accepts the upgrade only to close at once with `code`: a browser cannot read the status
/// of a refused handshake, but it can read a close code (4401: get a new token; 4403: this
/// site may not open the widget).
fn close_at_once(ws: WebSocketUpgrade, code: u16, reason: impl Into<String>) -> Response {
    let reason: String = reason.into();
    ws.on_upgrade(move |mut socket| async move {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            socket.send(Message::Close(Some(frame))),
        )
        .await;
    })
}

/// The client's address: the peer, or the right-most X-Forwarded-For hop not added by a
/// trusted proxy when the peer itself is one (a client can prepend anything it likes).
/// The country is the trusted proxy's header when it sends one, else the GeoIP database's.
pub fn client_info(
    server: &Server,
    geoip: Option<&GeoIp>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> ClientInfo {
    let ip = server.client_ip(
        peer.ip(),
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let country = if server.country_header.is_empty() || !server.trusts(&peer.ip()) {
        String::new()
    } else {
        headers
            .get(server.country_header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            .unwrap_or_default()
    };
    let country = match (country.is_empty(), geoip) {
        (true, Some(g)) => g.country(ip),
        _ => country,
    };
    let browser = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(crate::chat::BROWSER_CHARS)
                .collect()
        })
        .unwrap_or_default();
    ClientInfo {
        ip: ip.to_string(),
        country,
        browser,
    }
}

fn now_s() -> u64 {
    (crate::chat::now_ms() / 1000) as u64
}

async fn visitor_ws(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let allowed = &gw.svc.settings.server.allowed_origins;
    if let Some(origin) = headers.get("origin").and_then(|o| o.to_str().ok()) {
        if !allowed.is_empty() && !allowed.iter().any(|a| a == origin) {
            return close_at_once(
                ws,
                close_codes::FORBIDDEN_ORIGIN,
                "origin is not an allowed site",
            );
        }
    }
    match gw.svc.tokens.verify(&q.token, now_s()) {
        Ok(Identity::Visitor { id }) => {
            let client = client_info(&gw.svc.settings.server, gw.geoip.as_ref(), peer, &headers);
            // Counted for the visitor and its IP across the cluster while the socket lives.
            let sockets = match gw.svc.limits.open_visitor_socket(&id, &client.ip).await {
                Ok(lease) => lease,
                Err(e) => return close_at_once(ws, close_codes::TOO_MANY_CONNECTIONS, e.message),
            };
            upgrade(gw, ws, Party::Visitor { id }, client, Some(sockets)).await
        }
        _ => close_at_once(
            ws,
            close_codes::UNAUTHORIZED,
            "a valid visitor token is required",
        ),
    }
}

async fn agent_ws(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(Identity::Agent { id, session }) = gw.svc.tokens.verify(&q.token, now_s()) else {
        return close_at_once(
            ws,
            close_codes::UNAUTHORIZED,
            "a valid agent token is required",
        );
    };
    let unavailable = |what| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            what,
        )
    };
    let agent = match gw.svc.store.agent(id).await {
        Ok(Some(a)) if !a.disabled => a,
        Ok(Some(_)) => {
            return close_at_once(ws, close_codes::UNAUTHORIZED, "the agent is disabled")
        }
        Ok(None) => {
            return close_at_once(ws, close_codes::UNAUTHORIZED, "the agent no longer exists")
        }
        Err(_) => return unavailable("the store is unavailable"),
    };
    match gw.svc.agent_session_valid(id, session).await {
        Ok(true) => {}
        Ok(false) => {
            return close_at_once(
                ws,
                close_codes::UNAUTHORIZED,
                "the session has ended; log in again",
            )
        }
        Err(_) => return unavailable("the session cannot be checked"),
    }
    let party = Party::agent(&agent, session);
    let client = client_info(&gw.svc.settings.server, gw.geoip.as_ref(), peer, &headers);
    upgrade(gw, ws, party, client, None).await
}

async fn upgrade(
    gw: Arc<Gateway>,
    ws: WebSocketUpgrade,
    party: Party,
    client: ClientInfo,
    sockets: Option<SocketLease>,
) -> Response {
    if *gw.ending.borrow() != Ending::Serving {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this node is draining; reconnect",
        );
    }
    let limits = &gw.svc.settings.limits;
    if gw.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
        gw.open.fetch_sub(1, Ordering::AcqRel);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this node is full; reconnect",
        );
    }
    let encoding = if ws
        .requested_protocols()
        .any(|p| p.as_bytes() == MSGPACK_SUBPROTOCOL.as_bytes())
    {
        Encoding::MsgPack
    } else {
        Encoding::Json
    };
    let ws = ws
        .protocols([MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL])
        .max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        // Small buffers: an idle socket should cost little. Writes are flushed by the
        // connection (after each reply, or after a batch of queued live traffic); the buffer
        // only collects one batch and writes early when it fills.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES);
    let id = gw.next_id.fetch_add(1, Ordering::Relaxed);
    let gw2 = gw.clone();
    let start = Box::new(conn::Start {
        gw,
        party,
        id,
        encoding,
        client,
        sockets,
    });
    ws.on_failed_upgrade(move |_| {
        gw2.open.fetch_sub(1, Ordering::AcqRel);
    })
    .on_upgrade(move |socket| conn::run(start, socket))
}
