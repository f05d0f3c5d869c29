//! `switchboard-relay`: a bare relay of Switchboard's architecture, the reference the benchmarks
//! measure Switchboard against (`loadtest/compare.sh`). Visitor and agent WebSocket sockets; per
//! message one Lua script (XADD to the chat's stream, SPUBLISH to the chat's channel); per-chat
//! subscriptions taken per node when the chat's first local follower appears and dropped after
//! the last, as Switchboard's hub does. Nothing else: no authentication, routing, deduplication,
//! limits or replay. It speaks the subset of Switchboard's protocol (version 1, JSON or
//! MessagePack) that the load generator's pair set-up uses; see README.md.
#![forbid(unsafe_code)]

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::scripts::Script;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OnceCell};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MSGPACK_SUBPROTOCOL: &str = "switchboard.v1.msgpack";
/// Live frames queued for one connection; a connection this far behind misses frames (the load
/// generator counts them as lost).
const QUEUE: usize = 1024;
const READ_BUFFER: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Enc {
    Json,
    MsgPack,
}

struct Relay {
    /// Random per process: tells this node's own publications apart, so that a sender gets
    /// its `ack` and not its own message back (unless `echo`).
    node: String,
    echo: bool,
    prefix: String,
    redis: Client,
    sub: SubscriberClient,
    append: Script,
    chats: Mutex<HashMap<String, Arc<Chat>>>,
    next_conn: AtomicU64,
}

/// One chat's local followers and this node's subscription to its channel.
#[derive(Default)]
struct Chat {
    subscribed: OnceCell<()>,
    followers: Mutex<Vec<Follower>>,
}

struct Follower {
    conn: u64,
    enc: Enc,
    tx: mpsc::Sender<Bytes>,
}

/// The client frames the relay reads (`type` decides which fields matter).
#[derive(Deserialize)]
struct In<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    chat_id: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Cow<'a, str>,
    #[serde(default)]
    nonce: Option<u64>,
}

/// The server frames it writes, field for field as Switchboard's.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Welcome {
        version: u32,
        role: &'a str,
        id: String,
        node: &'a str,
        chats: [u8; 0],
    },
    Resumed {
        chat_id: &'a str,
        last_seq: &'a str,
    },
    Ack {
        chat_id: &'a str,
        client_msg_id: &'a str,
        seq: &'a str,
    },
    Entry {
        chat_id: &'a str,
        entry: EntryOut<'a>,
    },
    Pong {
        nonce: Option<u64>,
    },
    Error {
        code: u16,
        message: &'a str,
    },
}

#[derive(Serialize)]
struct EntryOut<'a> {
    seq: &'a str,
    kind: &'a str,
    author: &'a str,
    name: &'a str,
    text: &'a str,
    at: i64,
    client_msg_id: &'a str,
    event: &'a str,
}

fn encode(enc: Enc, f: &Out) -> Bytes {
    match enc {
        Enc::Json => Bytes::from(serde_json::to_vec(f).expect("frames serialise")),
        Enc::MsgPack => {
            let mut buf = Vec::with_capacity(512);
            rmp_serde::encode::write_named(&mut buf, f).expect("frames serialise");
            Bytes::from(buf)
        }
    }
}

fn message(enc: Enc, b: Bytes) -> Message {
    match enc {
        Enc::MsgPack => Message::Binary(b),
        Enc::Json => Message::Text(b.try_into().expect("JSON is UTF-8")),
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env("PORT", "19180").parse()?;
    let url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let mut builder = Builder::from_config(Config::from_url(&url)?);
    // As Switchboard's nodes: without it a command written while an earlier one is unanswered
    // waits for that answer's ACK (Nagle).
    builder.with_connection_config(|c| c.tcp.nodelay = Some(true));
    // RELAY_SHARED=1: the scripts run on the subscriber's own connection (RESP3), as
    // Switchboard's nodes do; by default on a connection of their own.
    let shared = env("RELAY_SHARED", "0") == "1";
    let sub = builder
        .with_config(|c| {
            if shared {
                c.version = fred::types::RespVersion::RESP3;
            }
        })
        .with_performance_config(|p| p.broadcast_channel_capacity = 65_536)
        .build_subscriber_client()?;
    sub.init().await?;
    let redis = if shared {
        sub.to_client()
    } else {
        let c = Builder::from_config(Config::from_url(&url)?)
            .with_connection_config(|c| c.tcp.nodelay = Some(true))
            .build()?;
        c.init().await?;
        c
    };
    let append = Script::from_lua(include_str!("append.lua"));
    append.load(&redis).await?;
    let relay = Arc::new(Relay {
        node: format!("{:08x}", std::process::id() ^ (now_ms() as u32)),
        echo: env("RELAY_ECHO", "0") == "1",
        prefix: env("RELAY_PREFIX", "relay"),
        redis,
        sub,
        append,
        chats: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(0),
    });
    tokio::spawn(listen(relay.clone()));
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ws/visitor", get(upgrade_visitor))
        .route("/ws/agent", get(upgrade_agent))
        .with_state(relay.clone());
    // As Switchboard's nodes: every frame is its own small write, and without TCP_NODELAY
    // Nagle's algorithm holds one back until the previous is acknowledged (up to the peer's
    // delayed-ACK timeout, 40 ms on Linux).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!(
        "switchboard-relay ready: port={port} redis={url} echo={} shared={shared} pid={}",
        relay.echo,
        std::process::id()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = axum::serve(listener, app) => r?,
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = relay.sub.quit().await;
    let _ = relay.redis.quit().await;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn upgrade_visitor(
    axum::extract::State(r): axum::extract::State<Arc<Relay>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(r, ws, "visitor")
}

async fn upgrade_agent(
    axum::extract::State(r): axum::extract::State<Arc<Relay>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(r, ws, "agent")
}

fn upgrade(relay: Arc<Relay>, ws: WebSocketUpgrade, role: &'static str) -> Response {
    let msgpack = ws
        .requested_protocols()
        .any(|p| p.as_bytes() == MSGPACK_SUBPROTOCOL.as_bytes());
    let enc = if msgpack { Enc::MsgPack } else { Enc::Json };
    // axum's default read buffer (128 KiB, allocated up front) would make an idle socket cost
    // 30 times what Switchboard's does; 4 KiB holds a chat message with room to spare.
    ws.protocols([MSGPACK_SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(relay, socket, role, enc))
}

/// One connection: frames from the client, and live frames of the chats it follows.
async fn serve(relay: Arc<Relay>, mut socket: WebSocket, role: &'static str, enc: Enc) {
    let conn = relay.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let mut followed: Vec<String> = Vec::new();
    let welcome = Out::Welcome {
        version: 1,
        role,
        id: conn.to_string(),
        node: &relay.node,
        chats: [],
    };
    if socket
        .send(message(enc, encode(enc, &welcome)))
        .await
        .is_ok()
    {
        loop {
            let out = tokio::select! {
                m = socket.recv() => {
                    let data: Bytes = match m {
                        Some(Ok(Message::Binary(b))) => b,
                        Some(Ok(Message::Text(t))) => t.into(),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => continue,
                    };
                    relay.on_frame(conn, role, enc, &data, &tx, &mut followed).await
                }
                Some(b) = rx.recv() => b,
            };
            if socket.send(message(enc, out)).await.is_err() {
                break;
            }
        }
    }
    for chat in followed {
        relay.unfollow(&chat, conn).await;
    }
}

impl Relay {
    /// Handles one client frame; the answer to write back.
    async fn on_frame(
        &self,
        conn: u64,
        role: &str,
        enc: Enc,
        data: &[u8],
        tx: &mpsc::Sender<Bytes>,
        followed: &mut Vec<String>,
    ) -> Bytes {
        let f: In = match enc {
            Enc::MsgPack => match rmp_serde::from_slice(data) {
                Ok(f) => f,
                Err(_) => return error(enc, 4000, "malformed frame"),
            },
            Enc::Json => match serde_json::from_slice(data) {
                Ok(f) => f,
                Err(_) => return error(enc, 4000, "malformed frame"),
            },
        };
        match &*f.kind {
            "resume" => {
                if !followed.iter().any(|c| *c == f.chat_id) {
                    if self.follow(&f.chat_id, conn, enc, tx).await.is_err() {
                        return error(enc, 4500, "redis unavailable");
                    }
                    followed.push(f.chat_id.to_string());
                }
                let resumed = Out::Resumed {
                    chat_id: &f.chat_id,
                    last_seq: "",
                };
                encode(enc, &resumed)
            }
            "send" => {
                let origin = format!("{}:{conn}", self.node);
                let chat = &*f.chat_id;
                let keys = vec![
                    format!("{}{{c:{chat}}}:log", self.prefix),
                    self.channel(chat),
                ];
                let args = vec![
                    origin,
                    role.to_string(),
                    f.client_msg_id.to_string(),
                    f.text.to_string(),
                    now_ms().to_string(),
                ];
                match self
                    .append
                    .evalsha_with_reload::<String, _, _>(&self.redis, keys, args)
                    .await
                {
                    Ok(seq) => {
                        let ack = Out::Ack {
                            chat_id: chat,
                            client_msg_id: &f.client_msg_id,
                            seq: &seq,
                        };
                        encode(enc, &ack)
                    }
                    Err(_) => error(enc, 4500, "redis unavailable"),
                }
            }
            "ping" => encode(enc, &Out::Pong { nonce: f.nonce }),
            _ => error(enc, 4000, "not supported by the relay"),
        }
    }

    fn channel(&self, chat: &str) -> String {
        format!("{}{{c:{chat}}}", self.prefix)
    }

    /// Adds a local follower; the first one of a chat subscribes this node to its channel
    /// (every follower waits until the subscription is in place).
    async fn follow(
        &self,
        chat: &str,
        conn: u64,
        enc: Enc,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<(), fred::error::Error> {
        let c = self
            .chats
            .lock()
            .unwrap()
            .entry(chat.to_string())
            .or_default()
            .clone();
        c.followers.lock().unwrap().push(Follower {
            conn,
            enc,
            tx: tx.clone(),
        });
        c.subscribed
            .get_or_try_init(|| self.sub.ssubscribe(self.channel(chat)))
            .await?;
        Ok(())
    }

    /// Removes a local follower; after the last one this node unsubscribes. (A follower that
    /// arrives while the unsubscribe is under way is not handled: the benchmarks end chats
    /// only at the end of a run.)
    async fn unfollow(&self, chat: &str, conn: u64) {
        let last = {
            let mut chats = self.chats.lock().unwrap();
            let empty = chats.get(chat).is_some_and(|c| {
                let mut f = c.followers.lock().unwrap();
                f.retain(|x| x.conn != conn);
                f.is_empty()
            });
            if empty {
                chats.remove(chat);
            }
            empty
        };
        if last {
            let _ = self.sub.sunsubscribe(self.channel(chat)).await;
        }
    }

    /// One published message: its frame, encoded once per encoding, to every local follower
    /// of the chat (but its sender, unless `echo`).
    fn deliver(&self, channel: &str, payload: &[u8]) {
        let Some(chat_id) = channel
            .strip_prefix(self.prefix.as_str())
            .and_then(|c| c.strip_prefix("{c:"))
            .and_then(|c| c.strip_suffix('}'))
        else {
            return;
        };
        let Ok(payload) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = payload.splitn(6, '\n');
        let (Some(origin), Some(seq), Some(author), Some(cmid), Some(at), Some(text)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return;
        };
        let (node, from) = origin.split_once(':').unwrap_or(("", ""));
        let from: u64 = from.parse().unwrap_or(u64::MAX);
        let Some(chat) = self.chats.lock().unwrap().get(chat_id).cloned() else {
            return;
        };
        let frame = Out::Entry {
            chat_id,
            entry: EntryOut {
                seq,
                kind: "message",
                author,
                name: "",
                text,
                at: at.parse().unwrap_or(0),
                client_msg_id: cmid,
                event: "",
            },
        };
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        for f in chat.followers.lock().unwrap().iter() {
            if !self.echo && f.conn == from && node == self.node {
                continue;
            }
            let slot = &mut encoded[f.enc as usize];
            let b = slot.get_or_insert_with(|| encode(f.enc, &frame)).clone();
            let _ = f.tx.try_send(b);
        }
    }
}

fn error(enc: Enc, code: u16, message: &str) -> Bytes {
    encode(enc, &Out::Error { code, message })
}

/// Feeds every message of this node's subscriptions to its followers.
async fn listen(relay: Arc<Relay>) {
    let mut rx = relay.sub.message_rx();
    loop {
        match rx.recv().await {
            Ok(m) => {
                if let Some(p) = m.value.as_bytes() {
                    relay.deliver(&m.channel, p);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("listener fell behind: {n} messages missed");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
