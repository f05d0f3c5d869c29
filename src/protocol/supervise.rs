//! Wire types of the supervisor's live monitor: every waiting and running chat, the agents and
//! the per-queue figures. Times are absolute (Unix ms) so a row changes only when something
//! happens, and the client computes waiting times itself.

use serde::{Deserialize, Serialize};

/// One waiting request (`queued`, `offered`) or running chat (`active`, `ended` in wrap-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonitorChat {
    pub chat_id: String,
    pub state: String,
    pub queue: String,
    pub visitor_id: String,
    /// The name the visitor gave (may be empty).
    #[serde(default)]
    pub name: String,
    /// The agent holding the chat, or the one it is offered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    /// When the visitor asked (ms).
    pub requested_at: i64,
    /// When an agent accepted (ms); absent while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<i64>,
    /// The visitor's last entry (ms); absent before their first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_visitor_at: Option<i64>,
    /// The visitor's rating once given; null until then.
    #[serde(default)]
    pub rating: Option<u8>,
}

/// One agent (any role) as routing sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonitorAgent {
    pub agent_id: i64,
    pub name: String,
    pub role: String,
    /// `available`, `away` or `offline`.
    pub status: String,
    /// Offers and chats held now.
    pub load: u64,
    pub max_chats: u64,
    /// No console connected anywhere for a while: gets no offers.
    #[serde(default)]
    pub unroutable: bool,
}

/// The figures of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonitorQueue {
    pub queue: String,
    /// Requests waiting (queued or on offer).
    pub waiting: u64,
    /// When the oldest waiting request was made (ms): the longest wait is now minus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_request_at: Option<i64>,
    /// Requests accepted in the last hour.
    pub accepted_last_hour: u64,
    /// Median request-to-accept time of those (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_accept_ms: Option<u64>,
    /// Offers not answered in time in the last hour.
    pub missed_offers_last_hour: u64,
}

/// The whole monitor (reply to `watch_monitor`, and when changes are too many to list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonitorSnapshot {
    /// When it was read (ms).
    pub at: i64,
    /// Waiting first, oldest request first; at most `supervisor.monitor_max_chats`.
    pub chats: Vec<MonitorChat>,
    /// Chats and requests live in all (more than `chats` holds when it was cut).
    pub total_chats: u64,
    pub agents: Vec<MonitorAgent>,
    pub queues: Vec<MonitorQueue>,
}

/// What changed since the previous monitor frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonitorChanges {
    pub at: i64,
    /// New or changed rows (replace by `chat_id`).
    #[serde(default)]
    pub chats: Vec<MonitorChat>,
    /// Chats no longer live (decided, gone) or no longer listed.
    #[serde(default)]
    pub removed: Vec<String>,
    pub total_chats: u64,
    /// Changed agents (replace by `agent_id`).
    #[serde(default)]
    pub agents: Vec<MonitorAgent>,
    /// Changed queues (replace by `queue`).
    #[serde(default)]
    pub queues: Vec<MonitorQueue>,
}

impl MonitorChanges {
    pub fn is_empty(&self) -> bool {
        self.chats.is_empty()
            && self.removed.is_empty()
            && self.agents.is_empty()
            && self.queues.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::*;

    #[test]
    fn monitor_and_supervisor_frames_round_trip_in_both_encodings() {
        let snapshot = ServerFrame::MonitorSnapshot(Box::new(MonitorSnapshot {
            at: 5,
            chats: vec![
                MonitorChat {
                    chat_id: "c1".into(),
                    state: "queued".into(),
                    queue: "general".into(),
                    visitor_id: "v1".into(),
                    requested_at: 1,
                    ..Default::default()
                },
                MonitorChat {
                    chat_id: "c2".into(),
                    state: "active".into(),
                    agent_id: Some(7),
                    accepted_at: Some(3),
                    last_visitor_at: Some(4),
                    rating: Some(5),
                    ..Default::default()
                },
            ],
            total_chats: 2,
            agents: vec![MonitorAgent {
                agent_id: 7,
                status: "available".into(),
                load: 1,
                max_chats: 3,
                ..Default::default()
            }],
            queues: vec![MonitorQueue {
                queue: "general".into(),
                waiting: 1,
                oldest_request_at: Some(1),
                median_accept_ms: Some(900),
                ..Default::default()
            }],
        }));
        let changed = ServerFrame::MonitorChanged(Box::new(MonitorChanges {
            at: 6,
            removed: vec!["c1".into()],
            total_chats: 1,
            ..Default::default()
        }));
        for f in [snapshot, changed] {
            for enc in [Encoding::Json, Encoding::MsgPack] {
                assert_eq!(decode_server(&encode_server(&f, enc), enc).unwrap(), f);
            }
        }
        let json = String::from_utf8(
            encode_server(
                &ServerFrame::MonitorSnapshot(Box::default()),
                Encoding::Json,
            )
            .to_vec(),
        )
        .unwrap();
        assert!(json.starts_with("{\"type\":\"monitor_snapshot\""), "{json}");
        for f in [
            ClientFrame::WatchMonitor,
            ClientFrame::UnwatchMonitor,
            ClientFrame::Whisper {
                chat_id: "c".into(),
                client_msg_id: "w".into(),
                text: "psst".into(),
            },
            ClientFrame::TakeOver {
                chat_id: "c".into(),
            },
        ] {
            for enc in [Encoding::Json, Encoding::MsgPack] {
                assert_eq!(
                    decode_client(&encode_client(&f, enc), enc, 1 << 16).unwrap(),
                    f
                );
            }
        }
    }
}
