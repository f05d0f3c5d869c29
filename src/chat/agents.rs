//! Agents as the chat domain sees them: the display name an agent joins and writes under comes
//! from the agent's record in the store, whatever the agent's Redis status says (an agent who
//! never sent `set_status` has no name in Redis; one renamed since has an old one); and the
//! admin changes to agents, applied to the live cluster.

use super::sessions::{Control, Ending};
use super::{now_ms, ChatResult, Service, AGENT_CLOSED};
use crate::protocol::{AgentStatus, ErrorCode};
use crate::redis::RedisError;
use crate::store::{Agent, AgentChanges};

/// Shown when neither the store nor Redis can name the agent.
const FALLBACK_NAME: &str = "Agent";

impl Service {
    /// The agent's display name: the store's record; when the store cannot be read (or the
    /// agent is gone), the name Redis holds from the agent's last `set_status`, else "Agent".
    pub(crate) async fn agent_display_name(&self, agent: &str) -> String {
        if let Ok(id) = agent.parse::<i64>() {
            match self.store.agent(id).await {
                Ok(Some(a)) => return a.display_name,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(agent, error = %e, "agent record unreadable; using the name Redis holds")
                }
            }
        }
        match self.redis.agent_record(agent).await {
            Ok(r) => r
                .get("name")
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| FALLBACK_NAME.into()),
            Err(_) => FALLBACK_NAME.into(),
        }
    }
}

/// Admin changes to agents, the same for the HTTP API and the command line. Each one is made
/// in the store first (the source of truth), then applied to the live cluster: sessions ended
/// in Redis (`sessions`), routing records refreshed, the agent's sockets on every node closed
/// (4401 when its sessions ended, 4409 when only its settings changed, so it reconnects with
/// them), and the chats of a disabled or deleted agent handed on.
impl Service {
    /// Every agent who is not disabled (the monitor and the transfer picker list them).
    pub(super) async fn enabled_agents(&self) -> ChatResult<Vec<Agent>> {
        let mut agents = self.store.agents().await?;
        agents.retain(|a| !a.disabled);
        Ok(agents)
    }

    /// Changes name, role, capacity or queues; open sockets reconnect with the new settings.
    pub async fn change_agent(&self, id: i64, changes: &AgentChanges) -> ChatResult<Agent> {
        let agent = self.store.update_agent(id, changes).await?;
        self.refresh_routing(&agent).await?;
        self.control(&id.to_string(), &Control::Changed).await?;
        Ok(agent)
    }

    /// Disables (`true`) or enables the agent. Disabling ends its sessions and hands its
    /// chats on.
    pub async fn set_agent_disabled(&self, id: i64, disabled: bool) -> ChatResult<Agent> {
        let (agent, version) = self.store.set_agent_disabled(id, disabled).await?;
        if disabled {
            self.sessions_ended(id, version, Ending::Disabled).await?;
            self.release_agent(id).await?;
        }
        Ok(agent)
    }

    /// Deletes the agent: its sessions end first (so no token outlives the record), then the
    /// record goes and its chats are handed on.
    pub async fn delete_agent(&self, id: i64) -> ChatResult<()> {
        self.store.check_removable(id).await?;
        let version = self.store.raise_session(id).await?;
        self.sessions_ended(id, version, Ending::Deleted).await?;
        self.store.delete_agent(id).await?;
        self.release_agent(id).await
    }

    /// Sets a new password; every session of the agent ends.
    pub async fn reset_agent_password(&self, id: i64, password: &str) -> ChatResult<()> {
        let version = self.store.reset_password(id, password).await?;
        self.sessions_ended(id, version, Ending::Password).await
    }

    /// Ends every session of the agent: its own logout, or an admin's.
    pub async fn end_agent_sessions(&self, id: i64, why: Ending) -> ChatResult<()> {
        let version = self.store.raise_session(id).await?;
        self.sessions_ended(id, version, why).await
    }

    /// Applies a changed record to the agent's routing record, if it has one: the same status
    /// with the new name, capacity and queues (one script moves it between queues).
    pub(super) async fn refresh_routing(&self, agent: &Agent) -> ChatResult<()> {
        let a = agent.id.to_string();
        let record = self.redis.agent_record(&a).await?;
        let Some(status) = record.get("status").cloned() else {
            return Ok(());
        };
        self.redis
            .set_agent_status(
                &a,
                &status,
                agent.max_chats,
                &agent.queues.join(","),
                &agent.display_name,
                now_ms(),
            )
            .await?;
        if status == AgentStatus::Available.as_str() {
            for q in &agent.queues {
                self.route(q).await;
            }
        }
        Ok(())
    }

    /// Takes a disabled or deleted agent out of routing and hands its chats on: offers to
    /// other agents, running chats back to their queue, pending invitations withdrawn. Chats
    /// awaiting its decision are kept when the decision time runs out, as for anyone.
    async fn release_agent(&self, id: i64) -> ChatResult<()> {
        let a = id.to_string();
        let record = self.redis.agent_record(&a).await?;
        if record.get("status").is_some_and(|s| s != "offline") {
            let g = |k: &str| record.get(k).cloned().unwrap_or_default();
            self.redis
                .set_agent_status(
                    &a,
                    AgentStatus::Offline.as_str(),
                    g("max").parse().unwrap_or(0),
                    &g("queues"),
                    &g("name"),
                    now_ms(),
                )
                .await?;
        }
        for chat in self.redis.agent_chats(&a).await? {
            let r = self.redis.chat_record(&chat).await?;
            let g = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
            let outcome = match g("state") {
                "offered" if g("offered_to") == a => self
                    .redis
                    .offer_missed(
                        &chat,
                        &a,
                        now_ms(),
                        self.settings.chat.offer_timeout_ms,
                        false,
                        self.settings.chat.deny_reset_ms,
                    )
                    .await
                    .map(|m| Some(m.queue)),
                "active" if g("agent") == a => {
                    match self
                        .redis
                        .transfer(
                            &chat,
                            &crate::redis::Handover {
                                from: &a,
                                ..Default::default()
                            },
                            now_ms(),
                            self.lease(),
                        )
                        .await
                    {
                        Ok((_, queue)) => self.redis.chat_release(&chat).await.map(|_| Some(queue)),
                        Err(e) => Err(e),
                    }
                }
                "invited" if g("agent") == a => {
                    self.end_in_state(&chat, "agent", &a, AGENT_CLOSED, AGENT_CLOSED, "invited")
                        .await
                        .or_else(|e| match e.code {
                            ErrorCode::WrongState | ErrorCode::NotFound => Ok(()),
                            _ => Err(e),
                        })?;
                    Ok(None)
                }
                _ => Ok(None),
            };
            match outcome {
                Ok(Some(queue)) => self.route(&queue).await,
                Ok(None) | Err(RedisError::Refused(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
