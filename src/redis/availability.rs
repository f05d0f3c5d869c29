//! "Nobody is there" on the `{r}` slot: a queue's staffed state, its Waiting list, its recent
//! waits, picking a waiting request, missed offers, and the offline-message allowance (`{ol}`).
//! Pairs with `lua/pick.lua`, `lua/waiting.lua`, `lua/requeue.lua`, `lua/offline_limit.lua`
//! and `chat::availability`.

use super::routing::{Accepted, AcceptedReply};
use super::{refusal, RedisLayer, Result};
use fred::prelude::*;

/// One request in a queue's Waiting list, as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub chat: String,
    pub name: String,
    /// As the visitor typed it: never verified.
    pub email: String,
    pub question: String,
    /// When the visitor asked (ms).
    pub created: i64,
    /// The page the visitor is on now ("" when unknown).
    pub url: String,
}

/// An offer that ended without an accept (deny or timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub queue: String,
    /// The agent whose offer ended.
    pub agent: String,
    /// The agent was set away because it let the offer time out.
    pub set_away: bool,
}

/// Requests a Waiting list shows at most (the count says how many wait in all).
pub const WAITING_SHOWN: usize = 50;

impl RedisLayer {
    /// Whether `queue` has an available agent with free capacity. The routing scripts keep
    /// the flag; a queue they never touched falls back to its `avail:Q` set.
    pub async fn staffed(&self, queue: &str) -> Result<bool> {
        let flag: Option<String> = self.client().hget(self.keys.staffed(), queue).await?;
        match flag {
            Some(f) => Ok(f == "1"),
            None => Ok(self.available_agents(queue).await? > 0),
        }
    }

    /// The oldest waiting requests of `queue` (up to [`WAITING_SHOWN`]) and how many wait.
    pub async fn waiting(&self, queue: &str) -> Result<(Vec<Waiting>, u64)> {
        let mut flat: Vec<String> = self
            .scripts
            .waiting
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.queue(queue)],
                vec![self.keys.routing(), WAITING_SHOWN.to_string()],
            )
            .await?;
        let total = flat.pop().and_then(|n| n.parse().ok()).unwrap_or(0);
        let list = flat
            .chunks_exact(6)
            .map(|f| Waiting {
                chat: f[0].clone(),
                name: f[1].clone(),
                email: f[2].clone(),
                question: f[3].clone(),
                created: f[4].parse().unwrap_or(0),
                url: f[5].clone(),
            })
            .collect();
        Ok((list, total))
    }

    /// The queue's recent request-to-accept times (ms, newest first, at most 20).
    pub async fn recent_waits(&self, queue: &str) -> Result<Vec<u64>> {
        let v: Vec<String> = self.client().lrange(self.keys.waits(queue), 0, 19).await?;
        Ok(v.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// An agent takes a waiting request. Refused: `not_found`, `wrong_state` (no longer
    /// waiting), `forbidden` (not the agent's queue), `full` (no free capacity).
    pub async fn pick(&self, chat: &str, agent: &str, now: i64, lease_ms: u64) -> Result<Accepted> {
        let v: AcceptedReply = self
            .on_chat(
                &self.scripts.pick,
                chat,
                vec![agent.into(), now.to_string(), lease_ms.to_string()],
            )
            .await
            .map_err(refusal)?;
        Ok(v.into())
    }

    /// Deny (`agent` set) or offer timeout (`agent` empty): the request goes back to its queue.
    /// `away_on_miss`: a timed-out agent is set away. `deny_reset_ms`: when the denials are
    /// forgotten (0 = never).
    pub async fn offer_missed(
        &self,
        chat: &str,
        agent: &str,
        now: i64,
        offer_timeout_ms: u64,
        away_on_miss: bool,
        deny_reset_ms: u64,
    ) -> Result<Missed> {
        let v: (String, String, i64) = self
            .on_chat(
                &self.scripts.requeue,
                chat,
                vec![
                    agent.into(),
                    now.to_string(),
                    offer_timeout_ms.to_string(),
                    if away_on_miss { "1" } else { "0" }.into(),
                    deny_reset_ms.to_string(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(Missed {
            queue: v.0,
            agent: v.1,
            set_away: v.2 == 1,
        })
    }

    /// Counts one offline message against the visitor's and the IP's hourly allowance;
    /// `Refused("limited")` when either is used up.
    pub async fn count_offline_message(
        &self,
        visitor: &str,
        ip: &str,
        per_visitor: u32,
        per_ip: u32,
    ) -> Result<()> {
        let k = &self.keys;
        let _: i64 = self
            .scripts
            .offline_limit
            .evalsha_with_reload(
                self.client(),
                vec![k.offline_limit("v", visitor), k.offline_limit("ip", ip)],
                vec![
                    per_visitor.to_string(),
                    per_ip.to_string(),
                    "3600000".to_string(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(())
    }
}

/// An agent's routing state as a transfer picker shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLoad {
    /// `available`, `away` or `offline` ("offline" when never set).
    pub status: String,
    /// Chats on offer to the agent, running with it, and its pending invitations.
    pub load: i64,
    /// The agent has a console connected somewhere (it gets offers and transfers).
    pub routable: bool,
}

impl RedisLayer {
    /// The routing state of each agent in `ids`, in the same order (one read each, together).
    pub async fn agent_loads(&self, ids: &[i64]) -> Result<Vec<AgentLoad>> {
        let reads = ids.iter().map(|id| {
            self.client().hmget::<Vec<Option<String>>, _, _>(
                self.keys.agent(&id.to_string()),
                vec!["status", "load", "unroutable"],
            )
        });
        let rows = futures_util::future::try_join_all(reads).await?;
        Ok(rows
            .into_iter()
            .map(|f| {
                let at = |i: usize| f.get(i).cloned().flatten().unwrap_or_default();
                AgentLoad {
                    status: Some(at(0))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "offline".into()),
                    load: at(1).parse().unwrap_or(0),
                    routable: at(2) != "1",
                }
            })
            .collect())
    }
}
