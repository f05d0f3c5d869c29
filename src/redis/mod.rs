//! The connection to Redis shared by a node's parts: the command pool, the subscriber connection
//! and its pub/sub plumbing, the script runners every concern shares, and the errors. Each
//! concern's commands live next to it: `routing` (the `{r}` slot), `transcript` (`{c:ID}`),
//! `timers`, `presence`, `flush` (the `{f}` stream), `visitors`, `sessions` (agent session
//! versions), `availability`, `mail`, `ratelimit` (logins), `limits` (rates and socket counts),
//! `webhooks` (the webhook stream and retries, cluster leases), `after_chat` (what a visitor
//! may do once a chat ended), `privacy` (what an erasure clears), `epoch` (whether Redis lost
//! its data) and `supervise` (take-over and the monitor's reads). The data model is in
//! `docs/design-redis.md`.

mod after_chat;
mod availability;
mod epoch;
mod flush;
mod keys;
mod limits;
mod mail;
mod presence;
mod privacy;
mod queues;
mod ratelimit;
mod routing;
mod scripts;
mod sessions;
mod supervise;
mod timers;
mod transcript;
mod visitors;
mod webhooks;

pub use after_chat::AfterChat;
pub use availability::{AgentLoad, Missed, Waiting};
pub use keys::Keys;
pub use limits::Granted;
pub use mail::MailJob;
pub use presence::{AgentAbsence, Beat, PresenceClock};
pub use ratelimit::{LoginGate, LoginLimits, LoginSettled};
pub use routing::{
    Accepted, AgentTotals, ChatRecord, Ended, Handover, Offer, Requested, ROUTE_BATCH,
};
pub use supervise::MonitorRead;
pub use transcript::{Append, Opening, TranscriptCaps};
pub use visitors::{InvitationAccepted, Invited, VisitorRecord};
pub use webhooks::{ClaimedRetry, LeaseMode, HOOK_GROUP};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{Message, RespVersion};
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
        "full",
        "limited",
        "cap_reached",
        "no_queue",
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
}
