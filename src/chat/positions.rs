//! Queue positions of this node's waiting visitors. When any node says a queue changed, the
//! node reads that queue once and tells only its own visitors whose position moved.

use super::hub::{ConnId, Encoded, Out};
use super::Service;
use crate::protocol::ServerFrame;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Default)]
struct Watch {
    queue: String,
    conns: HashSet<ConnId>,
    last: u64,
}

#[derive(Default)]
pub struct Positions {
    /// chat id -> who on this node waits for it and the position last told.
    chats: Mutex<HashMap<String, Watch>>,
}

impl Positions {
    pub fn watch(&self, queue: &str, chat: &str, conn: ConnId, position: u64) {
        let mut m = self.chats.lock().unwrap();
        let w = m.entry(chat.to_string()).or_insert_with(|| Watch {
            queue: queue.to_string(),
            ..Default::default()
        });
        w.conns.insert(conn);
        if position > 0 {
            w.last = position;
        }
    }

    pub fn current(&self, chat: &str) -> Option<u64> {
        self.chats
            .lock()
            .unwrap()
            .get(chat)
            .map(|w| w.last)
            .filter(|p| *p > 0)
    }

    pub fn has_watchers(&self, queue: &str) -> bool {
        self.chats
            .lock()
            .unwrap()
            .values()
            .any(|w| w.queue == queue)
    }

    pub fn forget_chat(&self, chat: &str) {
        self.chats.lock().unwrap().remove(chat);
    }

    pub fn forget_conn(&self, chat: &str, conn: ConnId) {
        let mut m = self.chats.lock().unwrap();
        if let Some(w) = m.get_mut(chat) {
            w.conns.remove(&conn);
            if w.conns.is_empty() {
                m.remove(chat);
            }
        }
    }

    /// Given the queue's members in order, returns the (chat, position) pairs that changed.
    /// A watched chat no longer in the queue has been offered or ended: it stops being watched
    /// once it is gone for good (joined or ended), which `forget_chat` handles; here it is skipped.
    pub fn update(&self, queue: &str, members: &[String]) -> Vec<(String, u64)> {
        let index: HashMap<&str, u64> = members
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u64 + 1))
            .collect();
        let mut changed = Vec::new();
        let mut m = self.chats.lock().unwrap();
        for (chat, w) in m.iter_mut().filter(|(_, w)| w.queue == queue) {
            if let Some(&p) = index.get(chat.as_str()) {
                if p != w.last {
                    w.last = p;
                    changed.push((chat.clone(), p));
                }
            }
        }
        changed
    }
}

/// Refreshing the positions this node's waiting visitors see.
impl Service {
    async fn refresh_positions(&self, queue: &str) {
        if !self.positions.has_watchers(queue) {
            return;
        }
        let members = match self.redis.queue_members(queue).await {
            Ok(m) => m,
            Err(_) => return,
        };
        let changed = self.positions.update(queue, &members);
        let estimated_wait_ms = if changed.is_empty() {
            None
        } else {
            self.estimated_wait(queue).await
        };
        for (chat, position) in changed {
            let frame = Arc::new(Encoded::of_chat(
                &chat,
                ServerFrame::Queued {
                    chat_id: chat.clone(),
                    queue: queue.to_string(),
                    position,
                    estimated_wait_ms,
                },
            ));
            self.hub
                .deliver(&self.chat_channel(&chat), Out::Frame(frame));
        }
    }

    /// Called by the hub's listener when a queue changed somewhere in the cluster: positions of
    /// this node's waiting visitors and the Waiting lists of its agents. Changes
    /// that arrive while a refresh runs are folded into one more round (`rounds::Rounds`).
    pub async fn queue_changed(&self, queue: &str) {
        if !self.refresh_rounds.begin(queue) {
            return;
        }
        loop {
            self.refresh_positions(queue).await;
            self.refresh_waiting(queue).await;
            if !self.refresh_rounds.end(queue) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_positions_are_reported() {
        let p = Positions::default();
        p.watch("q", "a", 1, 1);
        p.watch("q", "b", 2, 2);
        p.watch("other", "c", 3, 1);
        assert_eq!(p.update("q", &["a".into(), "b".into()]), vec![]);
        let mut ch = p.update("q", &["b".into()]);
        ch.sort();
        assert_eq!(ch, vec![("b".to_string(), 1)]);
        p.forget_conn("b", 2);
        assert!(p.current("b").is_none());
    }
}
