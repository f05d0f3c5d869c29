//! Presence on the `{r}` slot: each node's count of its parties' connections, its heartbeat,
//! and the checks a "gone" timer makes before it acts. Pairs with `lua/presence_common.lua`
//! and the scripts it heads, and with `chat::presence`; the design is in
//! `docs/design-redis.md` ("Presence").

use super::{RedisLayer, Result};

/// The durations the presence scripts judge by (ms), derived once by `chat::presence`.
#[derive(Debug, Clone, Copy)]
pub struct PresenceClock {
    /// A node that has not completed a beat for this long is dead: its connections count for
    /// nobody.
    pub node_ttl_ms: i64,
    /// No beat from any node for this long means an outage (every node's beats failed).
    pub gap_ms: i64,
    /// Longest wait after an outage for the nodes that were beating before it to beat again.
    pub settle_ms: i64,
    /// Lifetime of a party's `here:X` hash without any write (a leak guard; every beat renews).
    pub here_ttl_ms: i64,
}

/// What one batch of a heartbeat found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Beat {
    /// No node had beaten for longer than the gap: presence timers now wait for the nodes.
    pub outage: bool,
    /// Agents whose console the beat reported again after they had been made unroutable.
    pub routable_again: u64,
}

/// What an agent's absence timer did.
#[derive(Debug, Clone, Default)]
pub struct AgentAbsence {
    /// `gone`, `present` or `settling`.
    pub outcome: String,
    /// The agent's record changed (made unroutable, or set offline).
    pub changed: bool,
    /// (chat, queue) of the offers taken back from the agent.
    pub revoked: Vec<(String, String)>,
}

impl PresenceClock {
    /// The ARGV every script that runs `presence_decide` ends with, after its own `head`:
    /// timer member, now, node TTL, gap, settle, re-arm delay.
    fn decide_argv(&self, head: &[&str], member: &str, now: i64, rearm_ms: i64) -> Vec<String> {
        let mut argv: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        argv.extend([
            member.to_string(),
            now.to_string(),
            self.node_ttl_ms.to_string(),
            self.gap_ms.to_string(),
            self.settle_ms.to_string(),
            rearm_ms.to_string(),
        ]);
        argv
    }
}

fn timer_args(out: &mut Vec<String>, timers: &[(String, i64)]) {
    for (member, due) in timers {
        out.push(member.clone());
        out.push(due.to_string());
    }
}

impl RedisLayer {
    /// Writes `node`'s count of `party`'s connections (generation `gen`) and sets `timers`.
    /// Returns (written, an agent became routable again).
    pub async fn presence_set(
        &self,
        party: &str,
        node: &str,
        count: usize,
        gen: u64,
        clock: &PresenceClock,
        timers: &[(String, i64)],
    ) -> Result<(bool, bool)> {
        let mut argv = vec![
            self.keys.routing(),
            party.to_string(),
            node.to_string(),
            count.to_string(),
            gen.to_string(),
            clock.here_ttl_ms.to_string(),
        ];
        timer_args(&mut argv, timers);
        let (written, back): (i64, i64) = self
            .scripts
            .presence_set
            .evalsha_with_reload(self.client(), vec![self.keys.here(party)], argv)
            .await?;
        Ok((written == 1, back == 1))
    }

    /// One batch of `node`'s heartbeat: (party, count, generation) for each party and the
    /// timers to push on; `last` completes the beat.
    pub async fn presence_beat(
        &self,
        node: &str,
        now: i64,
        clock: &PresenceClock,
        last: bool,
        parties: &[(String, usize, u64)],
        timers: &[(String, i64)],
    ) -> Result<Beat> {
        let mut argv = Vec::with_capacity(8 + parties.len() * 3 + timers.len() * 2);
        argv.extend([
            self.keys.routing(),
            node.to_string(),
            now.to_string(),
            clock.gap_ms.to_string(),
            clock.settle_ms.to_string(),
            clock.here_ttl_ms.to_string(),
            if last { "1" } else { "0" }.to_string(),
            parties.len().to_string(),
        ]);
        for (party, count, gen) in parties {
            argv.extend([party.clone(), count.to_string(), gen.to_string()]);
        }
        timer_args(&mut argv, timers);
        let (outage, back): (i64, i64) = self
            .scripts
            .presence_beat
            .evalsha_with_reload(self.client(), vec![self.keys.nodes()], argv)
            .await?;
        Ok(Beat {
            outage: outage == 1,
            routable_again: back.max(0) as u64,
        })
    }

    /// Whether the party of a fired timer `member` is gone; sets the timer again (`rearm_ms`
    /// on, or sooner while settling) when not. Returns `gone`, `present` or `settling`.
    pub async fn presence_check(
        &self,
        party: &str,
        member: &str,
        now: i64,
        clock: &PresenceClock,
        rearm_ms: i64,
    ) -> Result<String> {
        let rp = self.keys.routing();
        let argv = clock.decide_argv(&[&rp, party], member, now, rearm_ms);
        Ok(self
            .scripts
            .presence_check
            .evalsha_with_reload(self.client(), vec![self.keys.here(party)], argv)
            .await?)
    }

    /// An agent's absence timer (`mode`: `unroutable` or `offline`), checked and applied in
    /// one script.
    pub async fn agent_presence(
        &self,
        agent: &str,
        mode: &str,
        member: &str,
        now: i64,
        clock: &PresenceClock,
        rearm_ms: i64,
    ) -> Result<AgentAbsence> {
        let rp = self.keys.routing();
        let argv = clock.decide_argv(&[&rp, agent, mode], member, now, rearm_ms);
        let (outcome, changed, flat): (String, i64, Vec<String>) = self
            .scripts
            .agent_presence
            .evalsha_with_reload(self.client(), vec![self.keys.agent(agent)], argv)
            .await?;
        Ok(AgentAbsence {
            outcome,
            changed: changed == 1,
            revoked: flat
                .chunks_exact(2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect(),
        })
    }
}
