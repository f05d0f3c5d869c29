//! Outgoing webhooks on the `{r}` slot: the wanted event types, the event stream (a consumer
//! group of all nodes) and the retry set (leased like timers); plus the cluster-wide lease a
//! single-node job holds. Pairs with `chat::webhooks` and `chat::retention`; the data model is
//! in `docs/design-redis.md#webhooks`.

use super::{RedisLayer, Result};
use fred::prelude::*;
use fred::types::scripts::Script;
use std::sync::LazyLock;

/// The consumer group of the event stream.
pub const HOOK_GROUP: &str = "hooks";

// Loaded on first use (EVALSHA with a reload on NOSCRIPT), like any script after a failover.
static EMIT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_emit.lua")));
static WANTED: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_wanted.lua")));
static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_settle.lua")));
static RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_retry.lua")));
static TYPES: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_types.lua")));
static LEASE: LazyLock<Script> = LazyLock::new(|| Script::from_lua(include_str!("lua/lease.lua")));

/// A retry claimed from the retry set: its member and the leased score that proves the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRetry {
    pub member: String,
    pub leased: i64,
}

impl RedisLayer {
    /// Replaces the wanted event types: (type, number of enabled endpoints wanting it).
    pub async fn set_hook_types(&self, types: &[(String, i64)]) -> Result<()> {
        let mut argv = Vec::with_capacity(types.len() * 2);
        for (t, n) in types {
            argv.push(t.clone());
            argv.push(n.to_string());
        }
        let _: i64 = TYPES
            .evalsha_with_reload(self.client(), vec![self.keys.hook_types()], argv)
            .await?;
        Ok(())
    }

    /// Whether some enabled endpoint wants any event type at all (workers idle otherwise).
    pub async fn hooks_wanted_at_all(&self) -> Result<bool> {
        let n: i64 = self.client().hlen(self.keys.hook_types()).await?;
        Ok(n > 0)
    }

    /// Whether `chat`'s event of `event_type` (flag `flag` in its routing record) is still to
    /// be emitted: wanted, and not emitted yet.
    pub async fn hook_pending(&self, event_type: &str, chat: &str, flag: &str) -> Result<bool> {
        let n: i64 = WANTED
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.hook_types(), self.keys.chat(chat)],
                vec![event_type.to_string(), flag.to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Appends an event the node built; with `once` = (chat, flag) at most once per chat.
    /// True when it was appended.
    pub async fn emit_hook(
        &self,
        event_type: &str,
        body: &str,
        once: Option<(&str, &str)>,
    ) -> Result<bool> {
        let k = &self.keys;
        let (record, flag) = match once {
            Some((chat, flag)) => (k.chat(chat), flag),
            None => (k.hook_types(), ""),
        };
        let n: i64 = EMIT
            .evalsha_with_reload(
                self.client(),
                vec![k.hook_types(), k.hook_events(), record],
                vec![event_type.to_string(), body.to_string(), flag.to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    /// New events for this consumer: (stream entry id, event body). Blocks up to `block_ms`.
    pub async fn read_hook_events(
        &self,
        consumer: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<(String, String)>> {
        let stream = self.keys.hook_events();
        self.read_group(&stream, HOOK_GROUP, consumer, count, block_ms, "event")
            .await
    }

    /// Takes over events another node took and did not finish within `idle_ms`.
    pub async fn claim_stale_hook_events(
        &self,
        consumer: &str,
        idle_ms: u64,
        count: usize,
    ) -> Result<Vec<(String, String)>> {
        self.claim_group(
            &self.keys.hook_events(),
            HOOK_GROUP,
            consumer,
            idle_ms,
            count,
            "event",
        )
        .await
    }

    /// Finishes a stream entry: schedules `retries` (member, due ms), acknowledges, removes.
    pub async fn settle_hook_event(&self, entry: &str, retries: &[(String, i64)]) -> Result<()> {
        let k = &self.keys;
        let mut argv = vec![HOOK_GROUP.to_string(), entry.to_string()];
        for (m, due) in retries {
            argv.push(m.clone());
            argv.push(due.to_string());
        }
        let _: i64 = SETTLE
            .evalsha_with_reload(self.client(), vec![k.hook_events(), k.hook_retries()], argv)
            .await?;
        Ok(())
    }

    /// Claims up to `max` due retries under a lease (the timers' claim script).
    pub async fn claim_hook_retries(
        &self,
        now: i64,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<ClaimedRetry>> {
        let claimed = self
            .claim_leased(self.keys.hook_retries(), now, lease_ms, max)
            .await?;
        Ok(claimed
            .into_iter()
            .map(|(member, leased)| ClaimedRetry { member, leased })
            .collect())
    }

    /// Removes a claimed retry (delivered, given up or dropped) while the claim holds.
    pub async fn hook_retry_done(&self, r: &ClaimedRetry) -> Result<()> {
        self.leased_done(self.keys.hook_retries(), &r.member, r.leased)
            .await
    }

    /// Replaces a claimed retry by its next attempt, due at `due`; false if the claim was lost.
    pub async fn hook_retry_again(&self, r: &ClaimedRetry, next: &str, due: i64) -> Result<bool> {
        let n: i64 = RETRY
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.hook_retries()],
                vec![
                    r.member.clone(),
                    r.leased.to_string(),
                    next.to_string(),
                    due.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Schedules one delivery now (an admin's redelivery).
    pub async fn schedule_hook_retry(&self, member: &str, due: i64) -> Result<()> {
        let _: i64 = self
            .client()
            .zadd(
                self.keys.hook_retries(),
                None,
                None,
                false,
                false,
                (due as f64, member.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Events not yet finished and deliveries waiting for a retry (the backlog gauge).
    pub async fn hook_backlog(&self) -> Result<(u64, u64)> {
        let k = &self.keys;
        let c = self.client();
        let (events, retries) = tokio::join!(
            c.xlen::<u64, _>(k.hook_events()),
            c.zcard::<u64, _>(k.hook_retries())
        );
        Ok((events?, retries?))
    }

    /// Takes, renews or releases the lease `name` for `holder`; true while it is the caller's.
    pub async fn lease(&self, name: &str, holder: &str, ms: u64, mode: LeaseMode) -> Result<bool> {
        let n: i64 = LEASE
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.lease(name)],
                vec![holder.to_string(), ms.to_string(), mode.as_str().into()],
            )
            .await?;
        Ok(n == 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseMode {
    Take,
    Renew,
    Release,
}

impl LeaseMode {
    fn as_str(self) -> &'static str {
        match self {
            LeaseMode::Take => "take",
            LeaseMode::Renew => "renew",
            LeaseMode::Release => "release",
        }
    }
}
