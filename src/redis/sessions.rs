//! Agent session versions on the agent's own slot (`{u:a:ID}`, the hash tag of the agent's
//! channel): read on every agent request, raised when sessions end. The store holds the same
//! version and is the source of truth; Redis is the cheap copy every node reads (see
//! `chat::sessions` and `docs/design-redis.md`).

use super::{RedisLayer, Result};
use fred::prelude::*;

impl RedisLayer {
    /// The agent's session version as Redis holds it; `None` when Redis has none (never read
    /// since it expired, or lost).
    pub async fn agent_session(&self, agent: i64) -> Result<Option<u64>> {
        let v: Option<u64> = self
            .client()
            .get(self.keys.agent_session(&agent.to_string()))
            .await?;
        Ok(v)
    }

    /// Raises the version to at least `version` (never lowers it) with a time to live; when it
    /// rose and `publish` is given, publishes it on the agent's channel in the same step.
    /// Returns the version in force.
    pub async fn raise_agent_session(
        &self,
        agent: i64,
        version: u64,
        ttl_ms: u64,
        publish: Option<&str>,
    ) -> Result<u64> {
        let a = agent.to_string();
        let k = &self.keys;
        let v: u64 = self
            .scripts
            .session_raise
            .evalsha_with_reload(
                self.client(),
                vec![k.agent_session(&a), k.user_channel(&format!("a:{a}"))],
                vec![
                    version.to_string(),
                    ttl_ms.to_string(),
                    publish.unwrap_or("").to_string(),
                ],
            )
            .await?;
        Ok(v)
    }
}
