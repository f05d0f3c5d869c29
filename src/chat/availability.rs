//! "Is anybody there?": a queue's open state for visitors (staffed and within business hours,
//! pushed on every change without polling), the Waiting list agents see live, picking a
//! request from it, missed offers (the agent is set away and told why), and the wait estimate.
//! Pairs with `redis::availability` and `chat::hours`.

use super::hours::Hours;
use super::hub::{ConnId, Encoded, Follower, Out};
use super::routing::Take;
use super::{now_ms, ChatAccess, ChatError, ChatResult, Party, Service};
use crate::config::valid_name;
use crate::protocol::{AgentStatus, ErrorCode, QueueInfo, ServerFrame, WaitingRequest};
use crate::redis::RedisError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a node trusts its copy of a queue's settings (an admin's change also reaches every
/// node at once through the staffed channel).
const SETTINGS_TTL: Duration = Duration::from_secs(60);
/// How long a node reuses a queue's wait estimate (read from Redis at most this often).
const ESTIMATE_TTL: Duration = Duration::from_secs(5);
/// How often a node re-checks business hours of the queues its visitors watch (no I/O).
const HOURS_TICK: Duration = Duration::from_secs(15);

/// The reason in the `status` frame of an agent set away for letting an offer time out.
pub const MISSED_OFFER: &str = "missed_offer";

#[derive(Clone)]
struct QueueConf {
    offline_text: String,
    hours: Option<Hours>,
    loaded: Instant,
}

/// This node's view of its queues: settings, watching visitors, what they were last told.
#[derive(Default)]
pub struct Availability {
    conf: Mutex<HashMap<String, QueueConf>>,
    /// Visitor connection -> the queue it watches.
    watchers: Mutex<HashMap<ConnId, String>>,
    /// Queue -> the status its watchers here were last told.
    told: Mutex<HashMap<String, QueueInfo>>,
    /// Queue -> (estimate, when read).
    estimates: Mutex<HashMap<String, (Option<u64>, Instant)>>,
}

/// The local channel of a queue's watching visitors, and of its agents.
fn visitors_key(queue: &str) -> String {
    format!("qs:{queue}")
}
pub(super) fn agents_key(queue: &str) -> String {
    format!("qa:{queue}")
}

/// The median of recent waits, or None without history.
fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

impl Service {
    // ---- visitors: is the queue open? ----

    /// A visitor follows a queue's open state: `queue_status` now and on every change.
    pub async fn watch_queue(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        queue: Option<String>,
    ) -> ChatResult<ServerFrame> {
        if !matches!(party, Party::Visitor { .. }) {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors watch a queue",
            ));
        }
        let queue = self.known_queue(queue).await?;
        let previous = self
            .availability
            .watchers
            .lock()
            .unwrap()
            .insert(conn, queue.clone());
        if let Some(p) = previous.filter(|p| *p != queue) {
            self.unfollow_local(&visitors_key(&p), conn).await;
        }
        let channel = self.redis.keys.user_channel(&visitors_key(&queue));
        self.hub.follow(&channel, conn, f).await?;
        let info = self.queue_info(&queue, None).await?;
        Ok(ServerFrame::QueueStatus(info))
    }

    /// The queue named (or the default one), checked to exist.
    pub(super) async fn known_queue(&self, queue: Option<String>) -> ChatResult<String> {
        let queue = queue.unwrap_or_else(|| self.settings.chat.default_queue.clone());
        if !valid_name(&queue) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "queue must be 1-64 of a-z, 0-9, '-', '_'",
            ));
        }
        // A node may still know a renamed queue's old name (`Store::queue_exists`); the
        // routing state says it is gone.
        if !self.store.queue_exists(&queue).await? || self.redis.queue_gone(&queue).await? {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                format!("no queue named {queue}"),
            ));
        }
        Ok(queue)
    }

    async fn unfollow_local(&self, key: &str, conn: ConnId) {
        self.hub
            .unfollow(&self.redis.keys.user_channel(key), conn)
            .await;
    }

    /// The queue's settings, from this node's copy while fresh.
    async fn queue_conf(&self, queue: &str, reload: bool) -> ChatResult<QueueConf> {
        if !reload {
            if let Some(c) = self.availability.conf.lock().unwrap().get(queue) {
                if c.loaded.elapsed() < SETTINGS_TTL {
                    return Ok(c.clone());
                }
            }
        }
        let s = self.store.queue_settings(queue).await?.unwrap_or_default();
        let hours = Hours::from_json(&s.business_hours).unwrap_or_else(|e| {
            tracing::warn!(queue, error = %e, "stored business hours unreadable; treated as none");
            None
        });
        let c = QueueConf {
            offline_text: s.offline_text,
            hours,
            loaded: Instant::now(),
        };
        self.availability
            .conf
            .lock()
            .unwrap()
            .insert(queue.to_string(), c.clone());
        Ok(c)
    }

    /// The queue's status now; `staffed` when the caller already knows it (a published change).
    async fn queue_info(&self, queue: &str, staffed: Option<bool>) -> ChatResult<QueueInfo> {
        let staffed = match staffed {
            Some(s) => s,
            None => self.redis.staffed(queue).await?,
        };
        let conf = self.queue_conf(queue, false).await?;
        let in_hours = conf.hours.as_ref().is_none_or(|h| h.open_at(now_ms()));
        let info = QueueInfo {
            queue: queue.to_string(),
            open: staffed && in_hours,
            staffed,
            in_hours,
            offline_text: conf.offline_text,
            max_wait_ms: self.settings.chat.max_wait_ms,
        };
        self.availability
            .told
            .lock()
            .unwrap()
            .insert(queue.to_string(), info.clone());
        Ok(info)
    }

    /// Tells this node's visitors watching `queue` its status.
    fn tell_watchers(&self, info: QueueInfo) {
        let channel = self.redis.keys.user_channel(&visitors_key(&info.queue));
        let frame = Arc::new(Encoded::new(ServerFrame::QueueStatus(info)));
        self.hub.deliver(&channel, Out::Frame(frame));
    }

    /// Called by the listener for a message on the staffed channel: "Q:1" / "Q:0" (staffed
    /// changed) or "Q:cfg" (an admin changed the queue's settings).
    pub async fn staffed_changed(&self, payload: &str) {
        let Some((queue, what)) = payload.rsplit_once(':') else {
            return;
        };
        let staffed = match what {
            "1" => Some(true),
            "0" => Some(false),
            _ => {
                if let Err(e) = self.queue_conf(queue, true).await {
                    tracing::warn!(queue, error = ?e, "could not reload queue settings");
                }
                None
            }
        };
        let channel = self.redis.keys.user_channel(&visitors_key(queue));
        if !self.hub.has_followers(&channel) {
            return;
        }
        match self.queue_info(queue, staffed).await {
            Ok(info) => self.tell_watchers(info),
            Err(e) => tracing::warn!(queue, error = ?e, "queue status not told"),
        }
    }

    /// Re-checks business hours of watched queues and tells watchers when a queue opened or
    /// closed by the clock.
    fn hours_tick(&self) {
        let told: Vec<QueueInfo> = self
            .availability
            .told
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        let conf = self.availability.conf.lock().unwrap().clone();
        let now = now_ms();
        for mut info in told {
            let Some(hours) = conf.get(&info.queue).and_then(|c| c.hours.clone()) else {
                continue;
            };
            let in_hours = hours.open_at(now);
            if in_hours != info.in_hours {
                info.in_hours = in_hours;
                info.open = info.staffed && in_hours;
                self.availability
                    .told
                    .lock()
                    .unwrap()
                    .insert(info.queue.clone(), info.clone());
                self.tell_watchers(info);
            }
        }
    }

    /// What a departing connection followed for this module.
    pub(super) async fn availability_disconnected(&self, party: &Party, conn: ConnId) {
        match party {
            Party::Visitor { .. } => {
                let q = self.availability.watchers.lock().unwrap().remove(&conn);
                if let Some(q) = q {
                    self.unfollow_local(&visitors_key(&q), conn).await;
                }
            }
            Party::Agent { queues, .. } => {
                for q in queues {
                    self.unfollow_local(&agents_key(q), conn).await;
                }
            }
        }
    }

    // ---- agents: the Waiting list ----

    /// An agent's connection follows its queues (Waiting lists, inbox changes) and gets each
    /// queue's Waiting list now.
    pub(super) async fn agent_queues_connected(
        &self,
        party: &Party,
        conn: ConnId,
        f: &Follower,
    ) -> ChatResult<Vec<ServerFrame>> {
        let Party::Agent { queues, .. } = party else {
            return Ok(vec![]);
        };
        let mut frames = Vec::new();
        for q in queues {
            let channel = self.redis.keys.user_channel(&agents_key(q));
            self.hub.follow(&channel, conn, f.clone()).await?;
            frames.push(self.waiting_frame(q).await?);
        }
        Ok(frames)
    }

    async fn waiting_frame(&self, queue: &str) -> ChatResult<ServerFrame> {
        let (list, total) = self.redis.waiting(queue).await?;
        Ok(ServerFrame::Waiting {
            queue: queue.to_string(),
            total,
            requests: list
                .into_iter()
                .map(|w| WaitingRequest {
                    chat_id: w.chat,
                    name: w.name,
                    email: w.email,
                    email_verified: false,
                    question: w.question,
                    page_url: w.url,
                    created_at: w.created,
                })
                .collect(),
        })
    }

    /// A queue changed somewhere: this node's agents of that queue get its Waiting list.
    pub(super) async fn refresh_waiting(&self, queue: &str) {
        let channel = self.redis.keys.user_channel(&agents_key(queue));
        if !self.hub.has_followers(&channel) {
            return;
        }
        match self.waiting_frame(queue).await {
            Ok(frame) => self
                .hub
                .deliver(&channel, Out::Frame(Arc::new(Encoded::new(frame)))),
            Err(e) => tracing::debug!(queue, error = ?e, "waiting list not refreshed"),
        }
    }

    /// An agent takes a request from the Waiting list; of agents picking at once, one wins
    /// (`pick.lua`), the others get `wrong_state`.
    pub async fn pick(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
    ) -> ChatResult<ChatAccess> {
        let access = self
            .take_chat(party, conn, f, chat, Take::Waiting)
            .await
            .map_err(|e| match e.code {
                ErrorCode::WrongState if e.message.contains("capacity") => e,
                ErrorCode::WrongState => ChatError::new(
                    ErrorCode::WrongState,
                    "the request is no longer waiting (taken or ended)",
                ),
                _ => e,
            })?;
        self.metrics.picks.inc();
        Ok(access)
    }

    // ---- missed offers ----

    /// The offer timer fired: the request goes back to its queue (and on to the next agent);
    /// the agent who let it time out is set away (`chat.away_on_missed_offer`) and told why.
    pub(crate) async fn offer_timed_out(&self, chat: &str) -> ChatResult<()> {
        let c = &self.settings.chat;
        let m = match self
            .redis
            .offer_missed(
                chat,
                "",
                now_ms(),
                c.offer_timeout_ms,
                c.away_on_missed_offer,
                c.deny_reset_ms,
            )
            .await
        {
            Ok(m) => m,
            Err(RedisError::Refused(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.metrics.offer_timeouts.inc();
        let agent = format!("a:{}", m.agent);
        self.tell(
            &agent,
            &ServerFrame::OfferRevoked {
                chat_id: chat.into(),
                reason: "timeout".into(),
            },
        )
        .await;
        if m.set_away {
            self.metrics.set_away.inc();
            let frame = ServerFrame::Status {
                status: AgentStatus::Away,
                reason: Some(MISSED_OFFER.into()),
            };
            self.tell(&agent, &frame).await;
        }
        self.route(&m.queue).await;
        Ok(())
    }

    // ---- the wait estimate ----

    /// The queue's typical wait lately (median of its last accepted requests), read from
    /// Redis at most every few seconds per node.
    pub(super) async fn estimated_wait(&self, queue: &str) -> Option<u64> {
        if let Some((v, at)) = self.availability.estimates.lock().unwrap().get(queue) {
            if at.elapsed() < ESTIMATE_TTL {
                return *v;
            }
        }
        let v = median(self.redis.recent_waits(queue).await.ok()?);
        self.availability
            .estimates
            .lock()
            .unwrap()
            .insert(queue.to_string(), (v, Instant::now()));
        v
    }
}

/// Re-checks business hours every few seconds (in memory: no Redis, no store).
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HOURS_TICK) => svc.hours_tick(),
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_estimate_is_the_median() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5]), Some(5));
        assert_eq!(median(vec![900_000, 1_000, 2_000]), Some(2_000));
    }
}
