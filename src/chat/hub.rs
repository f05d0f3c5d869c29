//! The node's local fan-out: which of this node's connections follow which channel (a chat, or
//! one agent's / visitor's own channel), and the node's Redis subscriptions that feed them.
//! A node subscribes to a channel when its first local follower appears and unsubscribes
//! after the last one leaves, so Redis sends a node only what its own sockets need.

use crate::metrics::Metrics;
use crate::protocol::{encode_server, Encoding, Entry, ServerFrame};
use crate::redis::RedisLayer;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

/// What the hub hands a connection's writer.
#[derive(Debug, Clone)]
pub enum Out {
    /// A frame already encoded for every encoding; the connection picks its own.
    Frame(Arc<Encoded>),
    /// A transcript entry (with the frames it implies); the connection drops it if it already
    /// delivered its `seq` (the overlap of a resume's replay and live traffic). Behind one
    /// `Arc` so `Out` stays two words: every connection's inbox preallocates slots of it.
    Entry(Arc<LiveEntry>),
}

#[derive(Debug)]
pub struct LiveEntry {
    pub chat: String,
    pub seq: Seq,
    pub frames: Vec<Encoded>,
}

/// A frame encoded lazily once per encoding and shared by every recipient.
#[derive(Debug)]
pub struct Encoded {
    frame: ServerFrame,
    json: OnceLock<Bytes>,
    msgpack: OnceLock<Bytes>,
}

impl Encoded {
    pub fn new(frame: ServerFrame) -> Encoded {
        Encoded {
            frame,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }
    pub fn bytes(&self, enc: Encoding) -> Bytes {
        let cell = match enc {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| encode_server(&self.frame, enc)).clone()
    }
}

/// A stream id `ms-n`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seq(pub u64, pub u64);

impl Seq {
    pub fn parse(s: &str) -> Option<Seq> {
        let (a, b) = s.split_once('-')?;
        Some(Seq(a.parse().ok()?, b.parse().ok()?))
    }
}

/// The frames a transcript entry implies: the entry itself, then `chat_started` for a join and
/// `chat_ended` for an end. Used both for live delivery and for replay.
pub fn frames_for_entry(chat: &str, entry: Entry) -> Vec<Encoded> {
    let mut frames = Vec::with_capacity(2);
    let extra = match entry.event.as_str() {
        "joined" => Some(ServerFrame::ChatStarted {
            chat_id: chat.to_string(),
            agent_name: entry.name.clone(),
        }),
        "ended" => Some(ServerFrame::ChatEnded {
            chat_id: chat.to_string(),
            by: entry.author.clone(),
            reason: entry.text.clone(),
        }),
        _ => None,
    };
    frames.push(Encoded::new(ServerFrame::Entry {
        chat_id: chat.to_string(),
        entry,
    }));
    if let Some(f) = extra {
        frames.push(Encoded::new(f));
    }
    frames
}

pub type ConnId = u64;

/// A connection's inbox. Bounded: a full inbox means a slow client, which is closed.
#[derive(Clone)]
pub struct Follower {
    pub tx: mpsc::Sender<Out>,
    /// Raised when the inbox overflowed; the connection closes with 4408.
    pub slow: Arc<SlowFlag>,
}

#[derive(Default, Debug)]
pub struct SlowFlag {
    pub raised: std::sync::atomic::AtomicBool,
    pub notify: tokio::sync::Notify,
}

impl SlowFlag {
    pub fn raise(&self) {
        if !self.raised.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }
}

pub struct Hub {
    redis: RedisLayer,
    metrics: Arc<Metrics>,
    /// channel name -> followers on this node. Short sync lock, never held across an await.
    followers: Mutex<HashMap<String, HashMap<ConnId, Follower>>>,
    /// Channels this node is subscribed to. The async lock orders subscribe/unsubscribe calls
    /// so a late unsubscribe never undoes a newer subscribe.
    subscribed: tokio::sync::Mutex<HashSet<String>>,
}

impl Hub {
    pub fn new(redis: RedisLayer, metrics: Arc<Metrics>) -> Hub {
        Hub {
            redis,
            metrics,
            followers: Mutex::new(HashMap::new()),
            subscribed: tokio::sync::Mutex::new(HashSet::new()),
        }
    }

    /// Adds a follower; returns once the node is subscribed, so nothing published after this
    /// returns is missed.
    pub async fn follow(
        &self,
        channel: &str,
        conn: ConnId,
        f: Follower,
    ) -> Result<(), crate::redis::RedisError> {
        self.followers
            .lock()
            .unwrap()
            .entry(channel.to_string())
            .or_default()
            .insert(conn, f);
        let mut subs = self.subscribed.lock().await;
        if !subs.contains(channel) {
            self.redis.subscribe(channel).await?;
            subs.insert(channel.to_string());
            self.metrics.subscriptions.set(subs.len() as i64);
        }
        Ok(())
    }

    pub fn is_following(&self, channel: &str, conn: ConnId) -> bool {
        self.followers
            .lock()
            .unwrap()
            .get(channel)
            .is_some_and(|m| m.contains_key(&conn))
    }

    /// Removes a follower; the subscription goes when the last one leaves.
    pub async fn unfollow(&self, channel: &str, conn: ConnId) {
        let empty = {
            let mut map = self.followers.lock().unwrap();
            match map.get_mut(channel) {
                Some(m) => {
                    m.remove(&conn);
                    if m.is_empty() {
                        map.remove(channel);
                        true
                    } else {
                        false
                    }
                }
                None => false,
            }
        };
        if empty {
            let mut subs = self.subscribed.lock().await;
            let still_empty = !self.followers.lock().unwrap().contains_key(channel);
            if still_empty && subs.remove(channel) {
                if let Err(e) = self.redis.unsubscribe(channel).await {
                    tracing::warn!(channel, error = %e, "unsubscribe failed");
                }
                self.metrics.subscriptions.set(subs.len() as i64);
            }
        }
    }

    /// Tells every local connection to close as a slow consumer (4408), so each reconnects
    /// and resumes. Used when this node's pub/sub reader lagged and live traffic was lost.
    pub fn kick_all(&self) {
        let all: Vec<Follower> = self
            .followers
            .lock()
            .unwrap()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        for f in all {
            f.slow.raise();
        }
    }

    /// Delivers to every local follower of `channel`. A follower whose inbox is full is told
    /// to close (slow consumer); fan-out never waits.
    pub fn deliver(&self, channel: &str, out: Out) {
        let targets: Vec<(ConnId, Follower)> = match self.followers.lock().unwrap().get(channel) {
            Some(m) => m.iter().map(|(k, v)| (*k, v.clone())).collect(),
            None => return,
        };
        for (_, f) in targets {
            if f.tx.try_send(out.clone()).is_err() && !f.tx.is_closed() {
                self.metrics.slow_consumers.inc();
                f.slow.raise();
            }
        }
    }
}
