//! Redis's epoch: a random value written once (`SET NX`) under `P{r}:epoch`. It changes only
//! when Redis loses its data (a restart without persistence, a flush, a failover to a replica
//! that never had it), which is how the nodes notice that live state is gone.

use super::{RedisLayer, Result};
use fred::prelude::*;
use fred::types::SetOptions;

impl RedisLayer {
    /// The epoch, writing `candidate` first if there is none (the first node to look after a
    /// loss decides the new one; every other node reads it).
    pub async fn epoch(&self, candidate: &str) -> Result<String> {
        let key = self.keys.epoch();
        let _: Option<String> = self
            .client()
            .set(&key, candidate, None, Some(SetOptions::NX), false)
            .await?;
        let now: Option<String> = self.client().get(&key).await?;
        // Deleted between the two calls (a flush right then): the next check sees the new one.
        Ok(now.unwrap_or_else(|| candidate.to_string()))
    }
}
