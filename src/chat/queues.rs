//! Admin changes to queues applied to the live cluster: creating one (its name usable again if
//! an earlier queue was renamed away from it) and renaming one, which is refused while the queue
//! has live chats. See "Renaming a queue" in `docs/design-redis.md`.

use super::hours::HoursSpec;
use super::offline::checked_settings;
use super::sessions::Control;
use super::{ChatError, ChatResult, Service};
use crate::config::valid_name;
use crate::protocol::ErrorCode;
use crate::store::{QueueSettings, QUEUE_CACHE_TTL};

impl Service {
    /// Creates a queue with its settings (all checked first, so a refusal creates nothing) and
    /// clears any mark of a renamed queue of that name.
    pub async fn create_queue(
        &self,
        name: &str,
        offline_text: String,
        hours: Option<HoursSpec>,
    ) -> ChatResult<QueueSettings> {
        let settings = checked_settings(name, offline_text, hours)?;
        self.store.create_queue(name).await?;
        self.redis.queue_back(name).await?;
        self.store_queue_settings(settings).await
    }

    /// Renames `old` to `new`: refused (`wrong_state`) while `old` has live chats. The routing
    /// state goes first (one script checks for live chats and marks the old name gone, so no
    /// new request can slip in after the check), then the store (one transaction), then the
    /// agents of the queue: their routing records move to the new name and their consoles
    /// reconnect with it. A node that dies after the script leaves the old name refused until
    /// its mark expires or the rename is retried (it is idempotent).
    pub async fn rename_queue(&self, old: &str, new: &str) -> ChatResult<usize> {
        if !valid_name(new) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "queue name must be 1 to 64 characters of a-z, 0-9, _ and -",
            ));
        }
        if old == new {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "the new name is the old one",
            ));
        }
        if self.store.queue_settings(old).await?.is_none() {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                format!("no queue named {old}"),
            ));
        }
        if self.store.queue_exists(new).await? {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                format!("a queue named {new} exists"),
            ));
        }
        let agents = self.store.agents().await?;
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        // Longer than any node trusts its cache of queue names: after that the store answers.
        let mark = QUEUE_CACHE_TTL * 2;
        let live = self.redis.rename_queue(old, new, mark, &ids).await?;
        if live > 0 {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                format!(
                    "queue {old} has {live} live chat(s) (waiting, on offer, running or invited); \
                     rename it when they have ended"
                ),
            ));
        }
        if let Err(e) = self.store.rename_queue(old, new).await {
            // Nothing changed in the store: the old name is usable again.
            if let Err(undo) = self.redis.queue_back(old).await {
                tracing::warn!(queue = old, error = %undo, "renamed queue's old name stays refused until the rename is retried");
            }
            return Err(e.into());
        }
        let mut moved = 0;
        for a in agents.iter().filter(|a| a.queues.iter().any(|q| q == old)) {
            let Some(agent) = self.store.agent(a.id).await? else {
                continue;
            };
            match self.refresh_routing(&agent).await {
                Ok(())
                | Err(ChatError {
                    code: ErrorCode::NotFound,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
            self.control(&a.id.to_string(), &Control::Changed).await?;
            moved += 1;
        }
        Ok(moved)
    }
}
