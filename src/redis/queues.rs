//! Renaming a queue in the routing state (`lua/queue_rename.lua`) and the mark it leaves for a
//! while: the old name, which requests, transfers and widgets are refused. See "Renaming a
//! queue" in `docs/design-redis.md`.

use super::{RedisLayer, Result};
use fred::prelude::*;

impl RedisLayer {
    /// Marks `old` gone for `mark` and `new` usable, unless `old` has live chats; returns how
    /// many it has (0 = done). `agents`: every agent id, whose chats are looked at.
    pub async fn rename_queue(
        &self,
        old: &str,
        new: &str,
        mark: std::time::Duration,
        agents: &[i64],
    ) -> Result<u64> {
        let k = &self.keys;
        let mut argv = vec![
            k.routing(),
            old.to_string(),
            new.to_string(),
            mark.as_millis().to_string(),
        ];
        argv.extend(agents.iter().map(i64::to_string));
        Ok(self
            .scripts
            .queue_rename
            .evalsha_with_reload(self.client(), vec![k.queue(old)], argv)
            .await?)
    }

    /// Whether `queue` is the old name of a queue renamed lately.
    pub async fn queue_gone(&self, queue: &str) -> Result<bool> {
        Ok(self.client().exists(self.keys.queue_gone(queue)).await?)
    }

    /// Makes a name usable again: a queue created under it, or a rename undone.
    pub async fn queue_back(&self, queue: &str) -> Result<()> {
        let _: i64 = self.client().del(self.keys.queue_gone(queue)).await?;
        Ok(())
    }
}
