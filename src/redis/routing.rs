//! Agents and routing on the `{r}` slot: agent status, a visitor's request, routing passes,
//! accept, requeue, end, decide, transfer, and the reads of queues and totals. Pairs with the
//! routing scripts (`lua/common.lua` and the scripts it heads) and with `chat::routing` and
//! `chat::ending`.

use super::{refusal, RedisLayer, Result};
use fred::prelude::*;
use std::collections::HashMap;

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
    /// The e-mail came from the site's signed identify, not the pre-chat form.
    pub email_verified: bool,
    pub question: String,
    /// When the visitor asked (ms).
    pub created: i64,
    pub offered_at: i64,
}

impl Offer {
    /// The flat list `route_queue` (common.lua) returns: seven fields an offer.
    fn from_flat(flat: Vec<String>, queue: &str, offered_at: i64) -> Vec<Offer> {
        flat.chunks_exact(7)
            .map(|f| Offer {
                chat: f[0].clone(),
                agent: f[1].clone(),
                queue: queue.to_string(),
                name: f[2].clone(),
                email: f[3].clone(),
                email_verified: f[4] == "1",
                question: f[5].clone(),
                created: f[6].parse().unwrap_or(0),
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
            email_verified: g("email_verified") == "1",
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

/// What `accept.lua` and `pick.lua` answer: visitor, queue, name, email, question, fresh, created.
pub(super) type AcceptedReply = (String, String, String, String, String, i64, i64);

impl From<AcceptedReply> for Accepted {
    fn from(v: AcceptedReply) -> Accepted {
        Accepted {
            visitor: v.0,
            queue: v.1,
            name: v.2,
            email: v.3,
            question: v.4,
            fresh: v.5 == 1,
            created: v.6,
        }
    }
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

/// A chat's routing record (`P{r}:chat:ID`).
pub type ChatRecord = HashMap<String, String>;

/// Waiting chats one routing pass looks at (and so offers at most).
pub const ROUTE_BATCH: usize = 50;

/// A transfer: from which agent to another agent (id) or to a queue (exactly one of the two
/// is not empty), with the internal note for whoever takes the chat next.
#[derive(Debug, Clone, Default)]
pub struct Handover<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub to_queue: &'a str,
    /// Agents only: kept on the routing record (`note`, `note_by`), never in the transcript.
    pub note: &'a str,
    /// The display name of the agent handing over.
    pub by: &'a str,
}

impl RedisLayer {
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
            .await
            .map_err(refusal)?;
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

    pub async fn accept(
        &self,
        chat: &str,
        agent: &str,
        now: i64,
        lease_ms: u64,
    ) -> Result<Accepted> {
        let v: AcceptedReply = self
            .on_chat(
                &self.scripts.accept,
                chat,
                vec![agent.into(), now.to_string(), lease_ms.to_string()],
            )
            .await
            .map_err(refusal)?;
        Ok(v.into())
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
        h: &Handover<'_>,
        now: i64,
        lease_ms: u64,
    ) -> Result<(String, String)> {
        self.on_chat(
            &self.scripts.transfer,
            chat,
            vec![
                h.from.into(),
                h.to.into(),
                h.to_queue.into(),
                now.to_string(),
                lease_ms.to_string(),
                h.note.into(),
                h.by.into(),
            ],
        )
        .await
        .map_err(refusal)
    }

    /// Withdraws the transcript-side assignment (a chat sent back to a queue): the agent who
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
}

/// Cluster-wide sums over the agents' routing records (see [`RedisLayer::agent_totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTotals {
    pub load: i64,
    pub free: i64,
}
