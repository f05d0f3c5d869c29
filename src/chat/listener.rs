//! Turns this node's Redis pub/sub traffic into deliveries: a chat's new entry (decoded once,
//! encoded once per encoding), a frame for one agent or visitor, a control message for one
//! agent's connections (`sessions`), "a queue changed", or "a queue's staffed state or settings
//! changed".

use super::hub::{frames_for_entry, Encoded, LiveEntry, Out, Seq};
use super::resync::resync;
use super::sessions::Control;
use super::Service;
use crate::protocol::{Entry, EntryKind, ServerFrame};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// The payload `chat_common.lua` publishes (a MessagePack map). The words that are only
/// looked at are borrowed from the payload, not copied.
#[derive(Deserialize)]
struct Published<'a> {
    chat_id: &'a str,
    seq: String,
    kind: &'a str,
    author: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    at: i64,
    #[serde(default)]
    client_msg_id: String,
    #[serde(default)]
    event: String,
    /// JSON text or "".
    #[serde(default)]
    data: &'a str,
    #[serde(default)]
    author_id: String,
}

/// A frame relayed to a chat's followers without being stored (typing, receipts).
#[derive(Deserialize)]
struct Relayed {
    relay: ServerFrame,
}

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut rx = svc.redis.messages();
    let queue_channel = svc.redis.keys.queue_channel();
    let visitors_channel = svc.redis.keys.visitors_channel();
    if let Err(e) = svc.redis.subscribe(&queue_channel).await {
        tracing::warn!(error = %e, "could not subscribe to queue changes; positions update on the sweep only");
    }
    let staffed_channel = svc.redis.keys.staffed_channel();
    if let Err(e) = svc.redis.subscribe(&staffed_channel).await {
        tracing::warn!(error = %e, "could not subscribe to staffed changes; visitors see them on their next watch");
    }
    let mut lag = Lag::default();
    loop {
        let settle = lag.settle_at();
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = async {
                match settle {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                lag.settled(&svc);
                continue;
            }
            _ = stop.changed() => return,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lag.missed(&svc, n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // Borrowed, not copied: this loop sees every message the node's chats carry.
        let channel: &str = &msg.channel;
        let Some(payload) = msg.value.as_bytes() else {
            continue;
        };
        if channel == queue_channel {
            let svc = svc.clone();
            let queue = String::from_utf8_lossy(payload).into_owned();
            tokio::spawn(async move { svc.queue_changed(&queue).await });
        } else if channel == staffed_channel {
            let svc = svc.clone();
            let payload = String::from_utf8_lossy(payload).into_owned();
            tokio::spawn(async move { svc.staffed_changed(&payload).await });
        } else if let Some(chat) = svc.redis.keys.chat_of_channel(channel) {
            on_entry(&svc, chat, channel, payload);
        } else if channel == visitors_channel {
            // Site-visitor changes go to the list's per-watcher coalescing, not straight out.
            match serde_json::from_slice::<ServerFrame>(payload) {
                Ok(ServerFrame::VisitorsChanged { changes }) => svc.visitor_list.receive(changes),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "undecodable visitor changes dropped"),
            }
        } else if svc.redis.keys.user_of_channel(channel).is_some() {
            if Control::is_control(payload) {
                let (svc, channel, payload) = (svc.clone(), channel.to_string(), payload.to_vec());
                tokio::spawn(async move { svc.on_control(&channel, &payload).await });
                continue;
            }
            match serde_json::from_slice::<ServerFrame>(payload) {
                Ok(frame) => svc
                    .hub
                    .deliver(channel, Out::Frame(Arc::new(Encoded::new(frame)))),
                Err(e) => tracing::warn!(error = %e, "undecodable user frame dropped"),
            }
        }
    }
}

/// Live entries were dropped for this node's followers because the listener fell behind its
/// subscriber connection (more than `redis.subscriber_buffer` messages). Every lag report moves
/// the subscription generation on at once, before the next message is handed out, so a live entry
/// after the loss makes its connections catch up from the stream first (`chat::delivery`).
/// Telling every connection to catch up even without a live entry (`resync`) costs a stream
/// read per followed chat, and a burst makes the receiver report a lag many times in a row,
/// milliseconds apart: so that is done at most once a second during a lag, and once more when
/// no lag has been reported for `SETTLE` if anything was dropped since.
#[derive(Default)]
struct Lag {
    /// When the node last told its connections to catch up for a lag.
    last_resync: Option<tokio::time::Instant>,
    /// When the receiver last reported a lag.
    last_lag: Option<tokio::time::Instant>,
    /// Messages dropped since the last time.
    missed_since: u64,
}

impl Lag {
    const MIN_GAP: std::time::Duration = std::time::Duration::from_secs(1);
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

    fn missed(&mut self, svc: &Service, n: u64) {
        svc.hub.generation.lost();
        let now = tokio::time::Instant::now();
        self.missed_since += n;
        self.last_lag = Some(now);
        if self
            .last_resync
            .is_none_or(|t| now.duration_since(t) >= Lag::MIN_GAP)
        {
            self.resync(svc);
        }
    }

    /// When to tell them once more, if messages were dropped since the last time.
    fn settle_at(&self) -> Option<tokio::time::Instant> {
        match self.last_lag {
            Some(t) if self.missed_since > 0 => Some(t + Lag::SETTLE),
            _ => None,
        }
    }

    fn settled(&mut self, svc: &Service) {
        if self.missed_since > 0 {
            self.resync(svc);
        }
    }

    fn resync(&mut self, svc: &Service) {
        tracing::warn!(
            missed = self.missed_since,
            "pub/sub receiver lagged; local connections catch up from the streams"
        );
        resync(svc, "lagged");
        self.missed_since = 0;
        self.last_resync = Some(tokio::time::Instant::now());
    }
}

fn on_entry(svc: &Service, chat: &str, channel: &str, payload: &[u8]) {
    if payload.starts_with(b"{\"relay\"") {
        match serde_json::from_slice::<Relayed>(payload) {
            Ok(r) => svc.hub.deliver(
                channel,
                Out::Frame(Arc::new(Encoded::of_chat(chat, r.relay))),
            ),
            Err(e) => tracing::warn!(error = %e, "undecodable relayed frame dropped"),
        }
        return;
    }
    let p: Published = match rmp_serde::from_slice(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable chat entry dropped");
            return;
        }
    };
    let Some(seq) = Seq::parse(&p.seq) else {
        return;
    };
    if p.event == "joined" || p.event == "ended" {
        svc.positions.forget_chat(p.chat_id);
    }
    let entry = Entry {
        seq: p.seq,
        kind: if p.kind == "system" {
            EntryKind::System
        } else {
            EntryKind::Message
        },
        author: p.author,
        author_id: p.author_id,
        name: p.name,
        text: p.text,
        at: p.at,
        client_msg_id: p.client_msg_id,
        event: p.event,
        data: (!p.data.is_empty())
            .then(|| serde_json::from_str(p.data).ok())
            .flatten(),
    };
    let internal = entry.is_internal();
    let frames = frames_for_entry(p.chat_id, entry);
    let live = LiveEntry {
        seq,
        generation: svc.hub.generation.current(),
        internal,
        frames,
    };
    svc.hub.deliver(channel, Out::Entry(Arc::new(live)));
}
