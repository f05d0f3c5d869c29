//! One task per connection: reads client frames (handed to `dispatch`), writes replies and the
//! hub's live traffic. Errors in a frame become an `error` frame; only protocol abuse, a slow
//! client or draining ends the connection.

use super::limits::RateLimit;
use super::{Ending, Gateway};
use crate::chat::delivery::{Cursor, Step};
use crate::chat::hub::{ConnId, Encoded, Follower, Inbound, Out, Seq};
use crate::chat::limits::SocketLease;
use crate::chat::{ChatAccess, ClientInfo, Party};
use crate::protocol::{close_codes, Encoding, ServerFrame};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A chat this connection follows.
pub(super) struct Followed {
    pub(super) access: ChatAccess,
    /// What this connection delivered of the chat and how far it is caught up with the node's
    /// subscription (`chat::delivery`).
    pub(super) cursor: Cursor,
}

impl Followed {
    /// `generation`: the node's subscription generation read before the chat was followed.
    pub(super) fn new(access: ChatAccess, generation: u64) -> Followed {
        Followed {
            access,
            cursor: Cursor::new(Seq::default(), generation),
        }
    }
}

pub(super) struct Conn {
    pub(super) gw: Arc<Gateway>,
    pub(super) party: Party,
    pub(super) id: ConnId,
    encoding: Encoding,
    pub(super) follower: Follower,
    pub(super) chats: HashMap<String, Followed>,
    pub(super) rate: RateLimit,
    pub(super) errors_in_a_row: u32,
    pub(super) client: ClientInfo,
    /// A visitor socket's place in the cluster-wide counts of its visitor and IP, given back
    /// when the connection ends.
    _sockets: Option<SocketLease>,
}

pub(super) enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// What a connection starts from. Boxed: the upgrade callback holding it stays inside the
/// socket's task for the socket's whole life, so it should be one pointer.
pub struct Start {
    pub gw: Arc<Gateway>,
    pub party: Party,
    pub id: ConnId,
    pub encoding: Encoding,
    pub client: ClientInfo,
    pub sockets: Option<SocketLease>,
}

/// Gives the connection's place back (against `limits.max_connections`) however the task
/// ends, a killed node's early return included.
struct OpenSlot(Arc<Gateway>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The connection's task. Deliberately not an `async fn` wrapped in another async block: every
/// such layer keeps its own copy of the moved-in arguments (socket, party, client info) for
/// the socket's whole life, and an idle socket's task was 2,944 bytes, half of it copies.
pub fn run(start: Box<Start>, mut socket: WebSocket) -> impl std::future::Future<Output = ()> {
    let span = tracing::info_span!("conn", id = start.id, role = start.party.role(), ip = %start.client.ip);
    async move {
        let mut conn = Conn::open(*start);
        let gw = conn.gw.clone();
        let id = conn.id;
        let _slot = OpenSlot(gw.clone());
        let limits = &gw.svc.settings.limits;
        let inbox = conn.follower.clone();
        let metrics = gw.svc.metrics.clone();
        metrics.connections.with_label_values(&[conn.party.role()]).inc();
        let mut ping = tokio::time::interval(Duration::from_millis(limits.ping_interval_ms));
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        let idle_timeout = Duration::from_millis(limits.idle_timeout_ms);
        let mut last_heard = tokio::time::Instant::now();
        let mut ending = gw.ending.clone();
        // The per-frame work is boxed: an idle connection's task then only holds the small
        // select loop, not the largest dispatch future (measured 8.8 KiB before).
        let close = match Box::pin(conn.start(&mut socket)).await {
            Flow::Close(c, r) => Some((c, r)),
            Flow::Continue => loop {
                tokio::select! {
                    msg = socket.recv() => {
                        last_heard = tokio::time::Instant::now();
                        let flow = match msg {
                            Some(Ok(Message::Text(t))) => Box::pin(conn.on_frame(&mut socket, t.as_bytes(), Encoding::Json)).await,
                            Some(Ok(Message::Binary(b))) => Box::pin(conn.on_frame(&mut socket, &b, Encoding::MsgPack)).await,
                            Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => Flow::Continue,
                            Some(Ok(Message::Close(_))) => {
                                // The socket has queued the echo of the client's Close
                                // (RFC 6455 5.5.1); a flush writes it before the socket goes.
                                let _ = tokio::time::timeout(Duration::from_secs(1), socket.flush()).await;
                                break None;
                            }
                            None => break None,
                            Some(Err(e)) => {
                                // Oversized frames end here: tungstenite refuses them before
                                // buffering them. Anything else is a protocol violation.
                                tracing::debug!(error = %e, "socket error");
                                let too_big = e.to_string().contains("Space limit exceeded");
                                break Some(if too_big { (1009, "frame too large") } else { (1002, "protocol error") });
                            }
                        };
                        if let Flow::Close(c, r) = flow { break Some((c, r)); }
                    }
                    inbound = inbox.recv() => {
                        let out = match inbound {
                            Inbound::Out(out) => out,
                            Inbound::Slow => break Some((close_codes::SLOW_CONSUMER, "outbound queue full")),
                            Inbound::Close(code, reason) => break Some((code, reason)),
                        };
                        if let Flow::Close(c, r) = Box::pin(conn.deliver_queued(&mut socket, out)).await { break Some((c, r)); }
                    }
                    _ = ping.tick() => {
                        if last_heard.elapsed() > idle_timeout {
                            break Some((1001, "idle timeout"));
                        }
                        if tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Ping(Default::default()))).await.is_err() {
                            break Some((close_codes::SLOW_CONSUMER, "write timed out"));
                        }
                    }
                    changed = ending.changed() => {
                        // A node dropped without drain or kill closes its signal: its sockets
                        // close as in a drain (else `changed` would return at once, forever).
                        let now = if changed.is_ok() { *ending.borrow_and_update() } else { Ending::Draining };
                        match now {
                            Ending::Killed => { inbox.close(); return }
                            Ending::Draining => break Some((close_codes::DRAINING, "node draining; reconnect")),
                            Ending::Serving => {}
                        }
                    }
                }
            },
        };
        inbox.close();
        if let Some((code, reason)) = close {
            Box::pin(close_handshake(&mut socket, code, reason)).await;
        }
        let followed: Vec<String> = conn.chats.keys().cloned().collect();
        Box::pin(async {
            gw.svc.unwatch_visitors(id).await;
            gw.svc.unwatch_monitor(id);
            gw.svc.disconnected(&conn.party, id, followed).await;
        })
        .await;
        metrics.connections.with_label_values(&[conn.party.role()]).dec();
    }
    .instrument(span)
}

/// Live items written to the socket before one flush: under load a connection (an agent with
/// many chats) finds several queued, and one write call then carries them all.
const DELIVERIES_PER_FLUSH: usize = 64;

impl Conn {
    /// Outside the task's body on purpose: the fields of `Start` would otherwise keep slots
    /// of their own in the task next to `Conn`, for the socket's whole life.
    fn open(start: Start) -> Conn {
        let limits = &start.gw.svc.settings.limits;
        Conn {
            rate: RateLimit::new(limits.frames_per_second, limits.burst_frames),
            follower: Follower::new(limits.outbound_queue),
            client: start.client,
            gw: start.gw,
            party: start.party,
            id: start.id,
            encoding: start.encoding,
            chats: HashMap::new(),
            errors_in_a_row: 0,
            _sockets: start.sockets,
        }
    }

    fn message(&self, f: &Encoded) -> Result<Message, Flow> {
        let bytes = f.bytes(self.encoding);
        Ok(match self.encoding {
            Encoding::Json => match std::str::from_utf8(&bytes) {
                Ok(s) => Message::Text(s.into()),
                Err(_) => return Err(Flow::Close(1011, "encoding")),
            },
            Encoding::MsgPack => Message::Binary(bytes),
        })
    }

    /// Buffers one frame for the next flush (the socket writes early only when its buffer is full).
    pub(super) async fn feed(&self, socket: &mut WebSocket, f: &Encoded) -> Flow {
        let msg = match self.message(f) {
            Ok(m) => m,
            Err(flow) => return flow,
        };
        write_outcome(tokio::time::timeout(WRITE_TIMEOUT, socket.feed(msg)).await)
    }

    /// Writes out what was fed.
    pub(super) async fn flush(&self, socket: &mut WebSocket) -> Flow {
        write_outcome(tokio::time::timeout(WRITE_TIMEOUT, socket.flush()).await)
    }

    /// Writes a reply together with the live traffic already queued behind it. The `entry`
    /// echoing a `send` often arrives (through Redis pub/sub) while the `send`'s script is
    /// still answering (about half the time at 2,000 msg/s); its `ack` and the echo then
    /// leave in one write call instead of two.
    pub(super) async fn reply(&mut self, socket: &mut WebSocket, frame: ServerFrame) -> Flow {
        if let Flow::Close(c, r) = self.feed(socket, &Encoded::new(frame)).await {
            return Flow::Close(c, r);
        }
        self.flush_with_queued(socket).await
    }

    async fn start(&mut self, socket: &mut WebSocket) -> Flow {
        let svc = self.gw.svc.clone();
        match svc
            .connected(&self.party, self.id, self.follower.clone())
            .await
        {
            Ok(frames) => {
                // The connection's first frames all go ahead of any live traffic that queued
                // meanwhile (a client sees `welcome` and its offers before anything else).
                for f in frames {
                    if let Flow::Close(c, r) = self.feed(socket, &Encoded::new(f)).await {
                        return Flow::Close(c, r);
                    }
                }
                self.flush_with_queued(socket).await
            }
            Err(e) => {
                let _ = self
                    .reply(socket, ServerFrame::error(e.code, e.message, None))
                    .await;
                Flow::Close(1011, "unavailable")
            }
        }
    }

    /// Live traffic from the hub: `first` and whatever else is already queued, written with
    /// one flush.
    async fn deliver_queued(&mut self, socket: &mut WebSocket, first: Out) -> Flow {
        if let Flow::Close(c, r) = self.deliver(socket, first).await {
            return Flow::Close(c, r);
        }
        self.flush_with_queued(socket).await
    }

    /// Buffers the live items already queued (up to `DELIVERIES_PER_FLUSH`) behind what was
    /// fed before, and flushes them all at once.
    async fn flush_with_queued(&mut self, socket: &mut WebSocket) -> Flow {
        for _ in 1..DELIVERIES_PER_FLUSH {
            let Some(out) = self.follower.try_recv() else {
                break;
            };
            if let Flow::Close(c, r) = self.deliver(socket, out).await {
                return Flow::Close(c, r);
            }
        }
        self.flush(socket).await
    }

    /// Buffers one live item's frames (flushed by `deliver_queued`).
    async fn deliver(&mut self, socket: &mut WebSocket, out: Out) -> Flow {
        match out {
            // A chat's frame reaches only connections that follow the chat.
            Out::Frame(f) if f.chat().is_some_and(|c| !self.chats.contains_key(c)) => {
                Flow::Continue
            }
            Out::Frame(f) => self.feed(socket, &f).await,
            Out::CatchUp => self.catch_up_behind(socket).await,
            Out::End(code) => Flow::Close(code, crate::chat::hub::ending_reason(code)),
            Out::Entry(live) => {
                let Some(followed) = self.chats.get(live.chat()) else {
                    return Flow::Continue;
                };
                if followed.cursor.on_live(live.seq, live.generation) == Step::CatchUpFirst {
                    // Held until the stream read after `delivered` is written; that read
                    // happened after this entry was appended, so it is sent by now unless the
                    // stream is gone.
                    if let Flow::Close(c, r) = self.catch_up(socket, live.chat()).await {
                        return Flow::Close(c, r);
                    }
                }
                let Some(followed) = self.chats.get_mut(live.chat()) else {
                    return Flow::Continue;
                };
                if !followed.cursor.wants(live.seq) {
                    return Flow::Continue;
                }
                followed.cursor.sent(live.seq);
                if live.internal && matches!(self.party, crate::chat::Party::Visitor { .. }) {
                    // A whisper: counted as delivered so the sequence moves on, never sent.
                    return Flow::Continue;
                }
                self.gw.svc.metrics.entries_out.inc();
                for f in live.frames.iter() {
                    if let Flow::Close(c, r) = self.feed(socket, f).await {
                        return Flow::Close(c, r);
                    }
                }
                Flow::Continue
            }
        }
    }
}

fn write_outcome(r: Result<Result<(), axum::Error>, tokio::time::error::Elapsed>) -> Flow {
    match r {
        Ok(Ok(())) => Flow::Continue,
        Ok(Err(_)) => Flow::Close(1001, "write failed"),
        Err(_) => Flow::Close(close_codes::SLOW_CONSUMER, "write timed out"),
    }
}

/// Sends the node's Close and waits (at most a second) for the client's, reading and dropping
/// whatever the client sent meanwhile (RFC 6455 5.5.1). Dropping the socket at once with
/// unread bytes in its receive buffer (a client's pongs to queued pings, a late frame) makes
/// the kernel answer with a reset, and a client that has not yet read the Close loses it with
/// the rest of its buffer: it sees 1006 instead of the code that tells it what to do.
async fn close_handshake(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
