//! The audit log of admin and supervisor actions. [`Service::audit`] is the one function every
//! such action calls (agent changes, webhook changes, exports, erasures, take-overs, and the
//! system's own: retention purges, an endpoint disabled after failures). Details hold kinds
//! and counts, never the data an action touched.

use super::{ChatResult, Service};
use crate::store::{AuditEntry, NewAuditEntry};
use serde_json::Value;

/// Who acted: an agent (by id and username at the time) or the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: String,
}

impl Actor {
    pub fn agent(id: i64, username: &str) -> Actor {
        Actor {
            id: Some(id),
            name: username.to_string(),
        }
    }

    pub fn system() -> Actor {
        Actor {
            id: None,
            name: "system".into(),
        }
    }
}

impl Service {
    /// Records one action: `action` like `webhook.create`, `target` like `webhook:3` (or ""),
    /// `detail` a JSON object of kinds and counts.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: Value,
    ) -> ChatResult<()> {
        let entry = NewAuditEntry {
            actor_id: actor.id,
            actor: actor.name.clone(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        };
        if let Err(e) = self.store.record_audit(&entry).await {
            tracing::error!(action, target, error = %e, "audit entry not written");
            return Err(e.into());
        }
        Ok(())
    }

    /// The log, newest first (`before`: an entry id, for the next page).
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
        action: Option<&str>,
    ) -> ChatResult<Vec<AuditEntry>> {
        Ok(self.store.audit_entries(before, limit, action).await?)
    }
}
