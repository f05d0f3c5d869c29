//! Everything that speaks to Redis: connection, key names, the Lua scripts that make each state
//! change atomic, pub/sub and the flush stream. The data model is in `docs/design-redis.md`.

mod keys;
mod ratelimit;
mod scripts;
mod visitors;

pub use keys::Keys;
pub use ratelimit::{LoginGate, LoginLimits, LoginSettled};
pub use visitors::{InvitationAccepted, Invited, VisitorRecord};

use crate::protocol::Entry;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::streams::XReadResponse;
use fred::types::{Message, RespVersion};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast;

/// Reconnect events of the subscriber connection (one per server on a cluster).
pub type Reconnects = broadcast::Receiver<Server>;

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// A script refused the change; the string is the script's error name (`wrong_state`, ...).
    #[error("refused: {0}")]
    Refused(String),
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

pub type Result<T> = std::result::Result<T, RedisError>;

/// Maps a script's `redis.error_reply('name')` to `Refused(name)`.
fn refusal(e: fred::error::Error) -> RedisError {
    let d = e.details().trim();
    let d = d.strip_prefix("ERR ").unwrap_or(d);
    for name in [
        "wrong_state",
        "not_due",
        "not_found",
        "forbidden",
        "already",
        "unavailable",
        "taken",
        "gone",
    ] {
        if d.starts_with(name) || d.contains(&format!(": {name}")) || d.ends_with(name) {
            return RedisError::Refused(name.to_string());
        }
    }
    RedisError::Redis(e)
}

/// Connection to Redis shared by a node's parts: a command pool and one subscriber connection.
#[derive(Clone)]
pub struct RedisLayer {
    pool: Pool,
    subscriber: SubscriberClient,
    /// The subscriber's connection, for the transcript scripts (see `on_transcript`).
    appender: Client,
    /// A connection of its own for XREADGROUP BLOCK: a blocking read on a pooled, pipelined
    /// connection would stall every command queued behind it.
    blocking: Client,
    pub keys: Keys,
    scripts: scripts::Scripts,
}

/// Outcome of a visitor's request.
#[derive(Debug, Clone)]
pub struct Requested {
    pub chat_id: String,
    pub state: String,
    pub queue: String,
    pub position: u64,
    pub created: bool,
    /// The offers the new request's own routing pass made (none for an existing chat).
    pub offers: Vec<Offer>,
}

/// An offer a routing pass made, with what the agent's offer frame shows.
#[derive(Debug, Clone)]
pub struct Offer {
    pub chat: String,
    pub agent: String,
    pub queue: String,
    pub name: String,
    pub email: String,
    pub question: String,
    /// When the visitor asked (ms).
    pub created: i64,
    pub offered_at: i64,
}

impl Offer {
    /// The flat list `route_queue` (common.lua) returns: six fields an offer.
    fn from_flat(flat: Vec<String>, queue: &str, offered_at: i64) -> Vec<Offer> {
        flat.chunks_exact(6)
            .map(|f| Offer {
                chat: f[0].clone(),
                agent: f[1].clone(),
                queue: queue.to_string(),
                name: f[2].clone(),
                email: f[3].clone(),
                question: f[4].clone(),
                created: f[5].parse().unwrap_or(0),
                offered_at,
            })
            .collect()
    }

    /// The offer a chat on offer (`state` offered) holds, from its routing record.
    pub fn from_record(chat: &str, r: &ChatRecord) -> Offer {
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        let num = |k: &str| r.get(k).and_then(|s| s.parse().ok()).unwrap_or(0);
        Offer {
            chat: chat.to_string(),
            agent: g("offered_to"),
            queue: g("queue"),
            name: g("name"),
            email: g("email"),
            question: g("question"),
            created: num("created"),
            offered_at: num("offered_at"),
        }
    }
}

/// Outcome of an accepted offer.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub visitor: String,
    pub queue: String,
    pub name: String,
    pub email: String,
    pub question: String,
    pub fresh: bool,
    /// When the visitor asked (ms).
    pub created: i64,
}

/// Outcome of an end.
#[derive(Debug, Clone)]
pub struct Ended {
    pub previous_state: String,
    pub reason: String,
    /// The accepted agent, the agent the request was on offer to, or the inviting agent
    /// ("" if none).
    pub agent: String,
    pub queue: String,
    pub visitor: String,
}

/// A participant's entry to append to a transcript.
#[derive(Debug, Clone, Default)]
pub struct Append<'a> {
    /// `visitor` or `agent`.
    pub role: &'a str,
    pub actor: &'a str,
    pub name: &'a str,
    pub client_msg_id: &'a str,
    pub text: &'a str,
    /// A system entry (a pushed page) rather than a message.
    pub system: bool,
    /// "" for text, else `link`, `file` or `push_page`.
    pub event: &'a str,
    pub data: Option<serde_json::Value>,
}

/// A chat's routing record (`P{r}:chat:ID`).
pub type ChatRecord = HashMap<String, String>;

/// What the transcript side needs from the routing record: who the visitor is and the
/// question that opens the transcript, with the time it was asked.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    pub visitor: String,
    pub visitor_name: String,
    pub question: String,
    pub asked_at: i64,
    /// The accepted agent's display name ("" before an accept).
    pub agent_name: String,
}

impl Opening {
    /// How the transcript names a visitor who gave `name` ("" when none).
    pub fn visitor_name(name: &str) -> String {
        if name.is_empty() {
            "Visitor".into()
        } else {
            name.to_string()
        }
    }

    /// What the accept script returned (no second read of the chat).
    pub fn from_accepted(a: &Accepted, agent_name: &str) -> Opening {
        Opening {
            visitor: a.visitor.clone(),
            visitor_name: Opening::visitor_name(&a.name),
            question: a.question.clone(),
            asked_at: a.created,
            agent_name: agent_name.to_string(),
        }
    }

    pub fn from_record(r: &ChatRecord, agent_name: &str) -> Opening {
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        Opening {
            visitor: g("visitor"),
            visitor_name: Opening::visitor_name(&g("name")),
            question: g("question"),
            asked_at: r.get("created").and_then(|c| c.parse().ok()).unwrap_or(0),
            agent_name: agent_name.to_string(),
        }
    }
}

/// Transcript entries read per request when a whole transcript is read (resume, flush).
const TRANSCRIPT_PAGE: u64 = 1000;

/// Waiting chats one routing pass looks at (and so offers at most).
pub const ROUTE_BATCH: usize = 50;

impl RedisLayer {
    /// `subscriber_buffer`: pub/sub messages buffered between the subscriber connection and
    /// the listener task (`redis.subscriber_buffer`); a listener that falls further behind
    /// makes the node's connections resume (see `chat::listener`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        pool_size: usize,
        subscriber_buffer: usize,
    ) -> Result<RedisLayer> {
        let config = Config::from_url(url)?;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(5);
                c.internal_command_timeout = Duration::from_secs(5);
                // fred leaves Nagle on: a command written while an earlier one is still
                // unanswered on the same connection waited for that answer's ACK.
                c.tcp.nodelay = Some(true);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_secs(5);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        // fred gives every client nine broadcast channels of this capacity, filled up front:
        // at 65,536 slots that was ~35 MiB per client. Only the subscriber's message channel
        // needs depth (a burst of pub/sub traffic must not lag the listener), so the pool and
        // the blocking client keep fred's small default.
        let pool = builder.build_pool(pool_size)?;
        let blocking = builder.build()?;
        // RESP3 lets the subscriber connection run commands too (`on_transcript`). It is
        // named (`CLIENT SETNAME`, again after each reconnect) so an operator can find it in
        // `CLIENT LIST`; the node logs the name at start.
        let subscriber = builder
            .with_config(|c| c.version = RespVersion::RESP3)
            .with_connection_config(|c| c.auto_client_setname = true)
            .with_performance_config(|p| p.broadcast_channel_capacity = subscriber_buffer)
            .build_subscriber_client()?;
        pool.init().await?;
        subscriber.init().await?;
        blocking.init().await?;
        let layer = RedisLayer {
            pool,
            appender: subscriber.to_client(),
            subscriber,
            blocking,
            keys: Keys::new(prefix),
            scripts: scripts::Scripts::new(),
        };
        layer.scripts.load_all(layer.pool.next()).await?;
        layer.ensure_flush_group().await?;
        Ok(layer)
    }

    fn client(&self) -> &Client {
        self.pool.next()
    }

    /// Runs a routing script on one chat's record: KEYS = [the record], ARGV = [the routing
    /// prefix, the chat id, ...`args`], the layout every chat-level routing script shares.
    async fn on_chat<R: FromValue>(
        &self,
        script: &Script,
        chat: &str,
        args: Vec<String>,
    ) -> std::result::Result<R, fred::error::Error> {
        let mut argv = Vec::with_capacity(args.len() + 2);
        argv.push(self.keys.routing());
        argv.push(chat.to_string());
        argv.extend(args);
        script
            .evalsha_with_reload(self.client(), vec![self.keys.chat(chat)], argv)
            .await
    }

    /// Runs a transcript script on one chat: KEYS = [its log, its meta, its channel],
    /// ARGV = [the chat id, ...`args`], the layout every `{c:ID}` script that appends shares.
    ///
    /// These scripts publish on the chat's channel, which this node follows whenever one of the
    /// chat's parties is connected here. Sent on the subscriber's own connection, the node's
    /// copy of the published entry and the script's answer leave Redis in one write and arrive
    /// in one read, instead of one on each connection: per message one transmission and one
    /// wake-up fewer for Redis and the sender's node (docs/benchmarks.md).
    pub(crate) async fn on_transcript<R: FromValue>(
        &self,
        script: &Script,
        chat: &str,
        args: Vec<String>,
    ) -> std::result::Result<R, fred::error::Error> {
        let k = &self.keys;
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(chat.to_string());
        argv.extend(args);
        script
            .evalsha_with_reload(
                &self.appender,
                vec![k.log(chat), k.meta(chat), k.chat_channel(chat)],
                argv,
            )
            .await
    }

    pub async fn ping(&self) -> Result<()> {
        let _: String = self.client().ping(None).await?;
        Ok(())
    }

    pub async fn quit(&self) {
        let _ = self.subscriber.quit().await;
        let _ = self.blocking.quit().await;
        let _ = self.pool.quit().await;
    }

    /// Live pub/sub messages of this node's subscriptions.
    pub fn messages(&self) -> broadcast::Receiver<Message> {
        self.subscriber.message_rx()
    }

    /// One item each time the subscriber connection is set up again after it dropped (not
    /// for the first connect). Whatever was published while it was down never arrives.
    pub fn subscriber_reconnects(&self) -> Reconnects {
        self.subscriber.reconnect_rx()
    }

    /// Subscribes the re-established subscriber connection to every channel this node follows
    /// again, one `SSUBSCRIBE` per hash slot (a cluster takes one slot a call), side by side;
    /// returns how many. (fred's own `manage_subscriptions` would first send `SUBSCRIBE` and
    /// `PSUBSCRIBE` for the plain channels and patterns, which this node has none of: Redis
    /// refuses them without arguments and the sharded channels were never subscribed again.)
    pub async fn resubscribe(&self) -> Result<usize> {
        let groups = fred::util::group_by_hash_slot(self.subscriber.tracked_shard_channels())?;
        let count = groups.values().map(|keys| keys.len()).sum();
        futures_util::future::try_join_all(
            groups
                .into_values()
                .map(|keys| self.subscriber.ssubscribe(keys)),
        )
        .await?;
        Ok(count)
    }

    /// The subscriber connection's client name in Redis (`CLIENT LIST`).
    pub fn subscriber_name(&self) -> &str {
        self.subscriber.id()
    }

    pub async fn subscribe(&self, channel: &str) -> Result<()> {
        self.subscriber.ssubscribe(channel.to_string()).await?;
        Ok(())
    }

    pub async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.subscriber.sunsubscribe(channel.to_string()).await?;
        Ok(())
    }

    pub async fn publish(&self, channel: &str, payload: String) -> Result<()> {
        let _: i64 = self.client().spublish(channel.to_string(), payload).await?;
        Ok(())
    }

    // ---- agents and routing ({r} slot) ----

    pub async fn set_agent_status(
        &self,
        agent: &str,
        status: &str,
        max: i64,
        queues: &str,
        name: &str,
        now: i64,
    ) -> Result<()> {
        let k = &self.keys;
        let _: String = self
            .scripts
            .agent_status
            .evalsha_with_reload(
                self.client(),
                vec![k.agent(agent)],
                vec![
                    k.routing(),
                    agent.into(),
                    status.into(),
                    max.to_string(),
                    queues.into(),
                    name.into(),
                    now.to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The agent's hash: status, max, load, queues, name.
    pub async fn agent_record(&self, agent: &str) -> Result<HashMap<String, String>> {
        Ok(self.client().hgetall(self.keys.agent(agent)).await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        chat: &str,
        visitor: &str,
        queue: &str,
        name: &str,
        email: &str,
        question: &str,
        now: i64,
        offer_timeout_ms: u64,
    ) -> Result<Requested> {
        let v: (String, String, String, u64, i64, Vec<String>) = self
            .on_chat(
                &self.scripts.request,
                chat,
                vec![
                    visitor.into(),
                    queue.into(),
                    name.into(),
                    email.into(),
                    question.into(),
                    now.to_string(),
                    offer_timeout_ms.to_string(),
                    ROUTE_BATCH.to_string(),
                ],
            )
            .await?;
        Ok(Requested {
            offers: Offer::from_flat(v.5, &v.2, now),
            chat_id: v.0,
            state: v.1,
            queue: v.2,
            position: v.3,
            created: v.4 == 1,
        })
    }

    /// Offers waiting chats of `queue` (one routing pass); returns the offers made.
    pub async fn route(&self, queue: &str, now: i64, offer_timeout_ms: u64) -> Result<Vec<Offer>> {
        let k = &self.keys;
        let flat: Vec<String> = self
            .scripts
            .route
            .evalsha_with_reload(
                self.client(),
                vec![k.queue(queue)],
                vec![
                    k.routing(),
                    queue.into(),
                    now.to_string(),
                    offer_timeout_ms.to_string(),
                    ROUTE_BATCH.to_string(),
                ],
            )
            .await?;
        Ok(Offer::from_flat(flat, queue, now))
    }

    /// Deny (`agent` set) or offer timeout (`agent` empty). Returns (queue, agent whose offer ended).
    pub async fn requeue(
        &self,
        chat: &str,
        agent: &str,
        now: i64,
        offer_timeout_ms: u64,
    ) -> Result<(String, String)> {
        self.on_chat(
            &self.scripts.requeue,
            chat,
            vec![agent.into(), now.to_string(), offer_timeout_ms.to_string()],
        )
        .await
        .map_err(refusal)
    }

    pub async fn accept(
        &self,
        chat: &str,
        agent: &str,
        now: i64,
        lease_ms: u64,
    ) -> Result<Accepted> {
        let v: (String, String, String, String, String, i64, i64) = self
            .on_chat(
                &self.scripts.accept,
                chat,
                vec![agent.into(), now.to_string(), lease_ms.to_string()],
            )
            .await
            .map_err(refusal)?;
        Ok(Accepted {
            visitor: v.0,
            queue: v.1,
            name: v.2,
            email: v.3,
            question: v.4,
            fresh: v.5 == 1,
            created: v.6,
        })
    }

    /// Ends a chat; with `only_state` set, refuses (`wrong_state`) unless it is in that state.
    #[allow(clippy::too_many_arguments)]
    pub async fn end(
        &self,
        chat: &str,
        by: &str,
        actor: &str,
        reason_active: &str,
        reason_waiting: &str,
        now: i64,
        lease_ms: u64,
        decision_timeout_ms: u64,
        only_state: &str,
    ) -> Result<Ended> {
        let v: (String, String, String, String, String) = self
            .on_chat(
                &self.scripts.end,
                chat,
                vec![
                    by.into(),
                    actor.into(),
                    reason_active.into(),
                    reason_waiting.into(),
                    now.to_string(),
                    lease_ms.to_string(),
                    decision_timeout_ms.to_string(),
                    only_state.into(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(Ended {
            previous_state: v.0,
            reason: v.1,
            agent: v.2,
            queue: v.3,
            visitor: v.4,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        chat: &str,
        agent: &str,
        decision: &str,
        interaction: Option<i64>,
        now: i64,
        lease_ms: u64,
    ) -> Result<()> {
        let _: String = self
            .on_chat(
                &self.scripts.decide,
                chat,
                vec![
                    agent.into(),
                    decision.into(),
                    interaction.map(|i| i.to_string()).unwrap_or_default(),
                    now.to_string(),
                    lease_ms.to_string(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(())
    }

    /// Moves a running chat to agent `to` or back to queue `to_queue`; returns
    /// ("agent" | "queue", queue). Refused: `forbidden`, `wrong_state`, `unavailable`.
    pub async fn transfer(
        &self,
        chat: &str,
        from: &str,
        to: &str,
        to_queue: &str,
        now: i64,
        lease_ms: u64,
    ) -> Result<(String, String)> {
        self.on_chat(
            &self.scripts.transfer,
            chat,
            vec![
                from.into(),
                to.into(),
                to_queue.into(),
                now.to_string(),
                lease_ms.to_string(),
            ],
        )
        .await
        .map_err(refusal)
    }

    /// Withdraws the transcript-side assignment (a chat sent back to a queue): the agent who
    /// let it go can no longer write into it.
    pub async fn chat_release(&self, chat: &str) -> Result<()> {
        let _: i64 = self.client().hdel(self.keys.meta(chat), "agent").await?;
        Ok(())
    }

    pub async fn chat_record(&self, chat: &str) -> Result<ChatRecord> {
        Ok(self.client().hgetall(self.keys.chat(chat)).await?)
    }

    pub async fn forget_routing(&self, chat: &str) -> Result<()> {
        let k = &self.keys;
        let _: i64 = self
            .scripts
            .forget
            .evalsha_with_reload(
                self.client(),
                vec![k.chat(chat)],
                vec![k.routing(), chat.into()],
            )
            .await?;
        Ok(())
    }

    pub async fn agent_chats(&self, agent: &str) -> Result<Vec<String>> {
        Ok(self.client().smembers(self.keys.agent_chats(agent)).await?)
    }

    pub async fn visitor_chats(&self, visitor: &str) -> Result<Vec<String>> {
        Ok(self
            .client()
            .smembers(self.keys.visitor_chats(visitor))
            .await?)
    }

    /// Chat ids waiting in `queue`, in order.
    pub async fn queue_members(&self, queue: &str) -> Result<Vec<String>> {
        Ok(self
            .client()
            .zrange(self.keys.queue(queue), 0, -1, None, false, None, false)
            .await?)
    }

    /// Queues with at least one waiting chat.
    pub async fn busy_queues(&self) -> Result<Vec<String>> {
        let all: Vec<String> = self.client().smembers(self.keys.queues()).await?;
        let mut busy = Vec::new();
        for q in all {
            let n: u64 = self.client().zcard(self.keys.queue(&q)).await?;
            if n > 0 {
                busy.push(q);
            }
        }
        Ok(busy)
    }

    /// Number of chats waiting in `queue`.
    pub async fn queue_len(&self, queue: &str) -> Result<u64> {
        Ok(self.client().zcard(self.keys.queue(queue)).await?)
    }

    /// The agents' load (offers and chats, all agents) and free capacity (free slots of
    /// available agents) over the cluster: sums the routing scripts keep as they change an
    /// agent, so reading them costs one command whatever the number of agents.
    pub async fn agent_totals(&self) -> Result<AgentTotals> {
        let (load, free): (Option<i64>, Option<i64>) = self
            .client()
            .hmget(self.keys.agent_totals(), vec!["load", "free"])
            .await?;
        Ok(AgentTotals {
            load: load.unwrap_or(0),
            free: free.unwrap_or(0),
        })
    }

    /// Number of agents that may take an offer now in `queue`.
    pub async fn available_agents(&self, queue: &str) -> Result<u64> {
        Ok(self.client().zcard(self.keys.avail(queue)).await?)
    }

    // ---- timers ----

    /// Claims up to `max` due timers: (member, leased score).
    pub async fn claim_timers(
        &self,
        now: i64,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<(String, i64)>> {
        let flat: Vec<String> = self
            .scripts
            .claim_timers
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.timers()],
                vec![now.to_string(), lease_ms.to_string(), max.to_string()],
            )
            .await?;
        Ok(flat
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].parse().unwrap_or(0)))
            .collect())
    }

    pub async fn timer_done(&self, member: &str, leased: i64) -> Result<()> {
        let _: i64 = self
            .scripts
            .timer_done
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.timers()],
                vec![member.to_string(), leased.to_string()],
            )
            .await?;
        Ok(())
    }

    /// Sets (or pushes forward) timers `member -> due`, in one command.
    pub async fn schedule(&self, timers: Vec<(String, i64)>) -> Result<()> {
        if timers.is_empty() {
            return Ok(());
        }
        let values: Vec<(f64, String)> =
            timers.into_iter().map(|(m, due)| (due as f64, m)).collect();
        let _: i64 = self
            .client()
            .zadd(self.keys.timers(), None, None, false, false, values)
            .await?;
        Ok(())
    }

    // ---- transcript ({c:ID} slot) ----

    /// The agent joins the transcript side (idempotent); the question opens it.
    pub async fn chat_join(
        &self,
        chat: &str,
        agent: &str,
        joined: &str,
        at: i64,
        o: &Opening,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_join,
                chat,
                vec![
                    o.visitor.clone(),
                    agent.into(),
                    o.agent_name.clone(),
                    o.question.clone(),
                    o.visitor_name.clone(),
                    at.to_string(),
                    joined.into(),
                    o.asked_at.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Appends a participant's entry; returns (seq, stored now). Refused: `wrong_state`,
    /// `forbidden`.
    pub async fn chat_append(
        &self,
        chat: &str,
        a: &Append<'_>,
        now: i64,
    ) -> Result<(String, bool)> {
        let k = &self.keys;
        let (seq, new): (String, i64) = self
            .scripts
            .chat_send
            // On the subscriber's connection, like `on_transcript` (it publishes too).
            .evalsha_with_reload(
                &self.appender,
                vec![
                    k.log(chat),
                    k.meta(chat),
                    k.cmid(chat),
                    k.chat_channel(chat),
                ],
                vec![
                    chat.to_string(),
                    a.role.to_string(),
                    a.actor.to_string(),
                    a.name.to_string(),
                    a.client_msg_id.to_string(),
                    a.text.to_string(),
                    now.to_string(),
                    if a.system {
                        "system".into()
                    } else {
                        "message".into()
                    },
                    a.event.to_string(),
                    a.data.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok((seq, new == 1))
    }

    /// Closes the transcript with the end message (idempotent).
    pub async fn chat_end(
        &self,
        chat: &str,
        by: &str,
        reason: &str,
        at: i64,
        o: &Opening,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_end,
                chat,
                vec![
                    by.into(),
                    reason.into(),
                    at.to_string(),
                    o.visitor.clone(),
                    o.question.clone(),
                    o.visitor_name.clone(),
                    o.asked_at.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Transcript entries after `after` (exclusive; "" = from the start), at most `count`.
    pub async fn entries_after(&self, chat: &str, after: &str, count: u64) -> Result<Vec<Entry>> {
        let start = if after.is_empty() {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let rows: Vec<(String, HashMap<String, String>)> = self
            .client()
            .xrange_values(self.keys.log(chat), start, "+", Some(count))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, f)| entry_from_fields(id, f))
            .collect())
    }

    /// Every entry after `after` ("" = from the start), read in pages of `TRANSCRIPT_PAGE`.
    pub async fn entries_all_after(&self, chat: &str, after: &str) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut after = after.to_string();
        loop {
            let page = self.entries_after(chat, &after, TRANSCRIPT_PAGE).await?;
            let full = page.len() as u64 == TRANSCRIPT_PAGE;
            if let Some(last) = page.last() {
                after = last.seq.clone();
            }
            entries.extend(page);
            if !full {
                return Ok(entries);
            }
        }
    }

    /// The last sequence number of a chat ("" when empty).
    pub async fn last_seq(&self, chat: &str) -> Result<String> {
        let rows: Vec<(String, HashMap<String, String>)> = self
            .client()
            .xrevrange_values(self.keys.log(chat), "+", "-", Some(1))
            .await?;
        Ok(rows.into_iter().next().map(|r| r.0).unwrap_or_default())
    }

    pub async fn forget_transcript(&self, chat: &str) -> Result<()> {
        let k = &self.keys;
        let _: i64 = self
            .client()
            .del(vec![k.log(chat), k.meta(chat), k.cmid(chat)])
            .await?;
        Ok(())
    }

    // ---- flush stream ({f} slot) ----

    async fn ensure_flush_group(&self) -> Result<()> {
        let r: std::result::Result<String, fred::error::Error> = self
            .client()
            .xgroup_create(self.keys.flush_jobs(), "flush", "0", true)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn enqueue_flush(&self, chat: &str) -> Result<()> {
        let _: String = self
            .client()
            .xadd(
                self.keys.flush_jobs(),
                false,
                None,
                "*",
                vec![("chat", chat)],
            )
            .await?;
        Ok(())
    }

    /// New flush jobs for this consumer: (job id, chat id). Blocks up to `block_ms`.
    pub async fn read_flush_jobs(
        &self,
        consumer: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<(String, String)>> {
        // A read that times out answers nil, which is no map: take the raw value first.
        let r: std::result::Result<Value, _> = self
            .blocking
            .xreadgroup(
                "flush",
                consumer,
                Some(count as u64),
                Some(block_ms),
                false,
                self.keys.flush_jobs(),
                ">",
            )
            .await;
        let map: XReadResponse<String, String, String, String> = match r {
            Ok(Value::Null) => return Ok(vec![]),
            Ok(v) => v.into_xread_response()?,
            Err(e) if e.details().contains("NOGROUP") => {
                self.ensure_flush_group().await?;
                return Ok(vec![]);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(map
            .into_values()
            .flatten()
            .map(|(id, mut f)| (id, f.remove("chat").unwrap_or_default()))
            .collect())
    }

    /// Takes over jobs another consumer left unacknowledged for `idle_ms`.
    pub async fn claim_stale_flush_jobs(
        &self,
        consumer: &str,
        idle_ms: u64,
        count: usize,
    ) -> Result<Vec<(String, String)>> {
        let v: Value = self
            .client()
            .xautoclaim(
                self.keys.flush_jobs(),
                "flush",
                consumer,
                idle_ms,
                "0-0",
                Some(count as u64),
                false,
            )
            .await?;
        let mut out = Vec::new();
        if let Value::Array(parts) = v {
            if let Some(Value::Array(entries)) = parts.get(1) {
                for e in entries {
                    if let Value::Array(pair) = e {
                        let id = pair.first().and_then(|v| v.as_string()).unwrap_or_default();
                        let mut chat = String::new();
                        if let Some(Value::Array(fields)) = pair.get(1) {
                            for kv in fields.chunks(2) {
                                if kv.len() == 2 && kv[0].as_string().as_deref() == Some("chat") {
                                    chat = kv[1].as_string().unwrap_or_default();
                                }
                            }
                        }
                        if !id.is_empty() {
                            out.push((id, chat));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Acknowledges finished jobs and removes them from the stream: two commands for a batch.
    pub async fn ack_flush_jobs(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = self
            .client()
            .xack(self.keys.flush_jobs(), "flush", ids.to_vec())
            .await?;
        let _: i64 = self
            .client()
            .xdel(self.keys.flush_jobs(), ids.to_vec())
            .await?;
        Ok(())
    }

    /// Jobs waiting or unacknowledged (for metrics).
    pub async fn flush_backlog(&self) -> Result<u64> {
        Ok(self.client().xlen(self.keys.flush_jobs()).await?)
    }
}

/// Cluster-wide sums over the agents' routing records (see [`RedisLayer::agent_totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTotals {
    pub load: i64,
    pub free: i64,
}

/// Builds an entry from a stream record's fields (see `chat_common.lua`).
fn entry_from_fields(seq: String, mut f: HashMap<String, String>) -> Entry {
    let kind = if f.get("k").map(String::as_str) == Some("system") {
        crate::protocol::EntryKind::System
    } else {
        crate::protocol::EntryKind::Message
    };
    Entry {
        seq,
        kind,
        author: f.remove("a").unwrap_or_default(),
        name: f.remove("n").unwrap_or_default(),
        text: f.remove("t").unwrap_or_default(),
        at: f.get("at").and_then(|s| s.parse().ok()).unwrap_or(0),
        client_msg_id: f.remove("m").unwrap_or_default(),
        event: f.remove("e").unwrap_or_default(),
        data: f
            .remove("d")
            .filter(|d| !d.is_empty())
            .and_then(|d| serde_json::from_str(&d).ok()),
    }
}
