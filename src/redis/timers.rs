//! The cluster's timer set (`{r}` slot): claiming due timers under a lease, marking them
//! done, and scheduling. Pairs with `lua/claim_timers.lua`, `lua/timer_done.lua` and
//! `chat::timers`.

use super::{RedisLayer, Result};
use fred::prelude::*;

impl RedisLayer {
    /// Claims up to `max` due timers: (member, leased score).
    pub async fn claim_timers(
        &self,
        now: i64,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<(String, i64)>> {
        self.claim_leased(self.keys.timers(), now, lease_ms, max)
            .await
    }

    pub async fn timer_done(&self, member: &str, leased: i64) -> Result<()> {
        self.leased_done(self.keys.timers(), member, leased).await
    }

    /// Claims up to `max` due members of a set scored by due time (the timers, the webhook
    /// retries): (member, leased score).
    pub(super) async fn claim_leased(
        &self,
        set: String,
        now: i64,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<(String, i64)>> {
        let flat: Vec<String> = self
            .scripts
            .claim_timers
            .evalsha_with_reload(
                self.client(),
                vec![set],
                vec![now.to_string(), lease_ms.to_string(), max.to_string()],
            )
            .await?;
        Ok(flat
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].parse().unwrap_or(0)))
            .collect())
    }

    /// Removes a claimed member unless it was rescheduled meanwhile.
    pub(super) async fn leased_done(&self, set: String, member: &str, leased: i64) -> Result<()> {
        let _: i64 = self
            .scripts
            .timer_done
            .evalsha_with_reload(
                self.client(),
                vec![set],
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
}
