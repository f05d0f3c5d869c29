//! Cluster-wide limits on anonymous clients: rates (`lua/rate.lua`, GCRA, one key per limit and
//! subject) and counts of open WebSockets (`lua/sockets.lua`, one hash per subject with a count
//! per node). Each key is its own hash tag, so a cluster spreads them over its shards. See
//! "Limits on anonymous clients" in `docs/design-redis.md`.

use super::{RedisLayer, Result};
use fred::types::scripts::Script;
use std::sync::LazyLock;

static RATE: LazyLock<Script> = LazyLock::new(|| Script::from_lua(include_str!("lua/rate.lua")));
static SOCKETS: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/sockets.lua")));

/// What a rate gave: tokens, or when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// Tokens taken, between 0 and the number asked for.
    pub tokens: u32,
    /// When `tokens` is 0: milliseconds until one is available.
    pub retry_after_ms: u64,
}

impl RedisLayer {
    /// Takes up to `want` tokens of the rate `name` for `subject`: `burst` tokens at most,
    /// one more every `ms_per_token`.
    pub async fn rate_take(
        &self,
        name: &str,
        subject: &str,
        ms_per_token: f64,
        burst: u32,
        want: u32,
    ) -> Result<Granted> {
        let (tokens, retry): (i64, i64) = RATE
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.rate(name, subject)],
                vec![
                    format!("{ms_per_token:.3}"),
                    burst.to_string(),
                    want.max(1).to_string(),
                ],
            )
            .await?;
        Ok(Granted {
            tokens: tokens.max(0) as u32,
            retry_after_ms: retry.max(0) as u64,
        })
    }

    /// Changes this node's count of open sockets of `subject` by `delta`; a positive delta is
    /// refused when the cluster's total would go over `max`. Returns whether it was done.
    pub async fn sockets_add(
        &self,
        subject: &str,
        instance: &str,
        ttl_ms: u64,
        delta: i64,
        max: u32,
    ) -> Result<bool> {
        self.sockets("add", subject, instance, ttl_ms, delta, max)
            .await
    }

    /// Sets this node's count of open sockets of `subject` (and moves its expiry on).
    pub async fn sockets_set(
        &self,
        subject: &str,
        instance: &str,
        ttl_ms: u64,
        count: u64,
    ) -> Result<()> {
        self.sockets("set", subject, instance, ttl_ms, count as i64, 0)
            .await
            .map(|_| ())
    }

    async fn sockets(
        &self,
        mode: &str,
        subject: &str,
        instance: &str,
        ttl_ms: u64,
        n: i64,
        max: u32,
    ) -> Result<bool> {
        let (done, _total): (i64, i64) = SOCKETS
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.sockets(subject)],
                vec![
                    mode.to_string(),
                    instance.to_string(),
                    ttl_ms.to_string(),
                    n.to_string(),
                    max.to_string(),
                ],
            )
            .await?;
        Ok(done == 1)
    }
}
