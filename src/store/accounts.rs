//! Agent accounts after creation: the session version every agent token carries (raised by a
//! logout, a password reset, disabling or deleting the agent, which makes every token issued
//! before invalid), disabling, changes of name, role, queues and capacity, password resets and
//! deletion. The last enabled admin is never demoted, disabled or deleted, so a deployment
//! always keeps someone who can manage it.

use sqlx::Row;

use super::agents::{
    agent_from_row, blocking, check_display_name, check_max_chats, check_password, check_role,
    checked_queues, hash_password, link_queues,
};
use super::{now_ms, Agent, AgentChanges, Backend, Call, Store, StoreError};

/// What an agent's tokens are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSession {
    /// Tokens carry the version they were issued under; only the current one is valid.
    pub version: u64,
    pub disabled: bool,
}

/// Why a change would leave no enabled admin.
const LAST_ADMIN: &str = "the last enabled admin cannot be demoted, disabled or deleted";

impl Store {
    /// The agent's session version and whether it is disabled; `None` when it does not exist.
    pub fn agent_session<'a>(&'a self, id: i64) -> Call<'a, Option<AgentSession>> {
        self.bounded(async move {
            let row = sqlx::query("SELECT session_version, disabled FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(match row {
                Some(row) => Some(AgentSession {
                    version: row.try_get::<i64, _>("session_version")? as u64,
                    disabled: super::row::flag(&row, "disabled")?,
                }),
                None => None,
            })
        })
    }

    /// The agent with this username.
    pub fn agent_by_username<'a>(&'a self, username: &'a str) -> Call<'a, Option<Agent>> {
        self.bounded(async move {
            let id = sqlx::query_scalar::<_, i64>("SELECT id FROM agents WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
            match id {
                Some(id) => self.agent(id).await,
                None => Ok(None),
            }
        })
    }

    /// Ends every session of the agent (a logout): returns the new session version.
    pub fn raise_session<'a>(&'a self, id: i64) -> Call<'a, u64> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let version = raise_in(&mut tx, id).await?;
            tx.commit().await?;
            Ok(version)
        })
    }

    /// Changes the agent's display name, role, capacity or queues (creating queues that do
    /// not exist yet). Sessions stay valid: role checks read the store, and open sockets are
    /// told to reconnect by the caller.
    pub fn update_agent<'a>(&'a self, id: i64, c: &'a AgentChanges) -> Call<'a, Agent> {
        self.bounded(async move {
            let name = c.display_name.as_deref().map(str::trim);
            if let Some(n) = name {
                if n.is_empty() {
                    return Err(StoreError::Invalid("display name must not be empty".into()));
                }
                check_display_name(n)?;
            }
            if let Some(r) = &c.role {
                check_role(r)?;
            }
            if let Some(m) = c.max_chats {
                check_max_chats(m)?;
            }
            let queues = c.queues.as_deref().map(checked_queues).transpose()?;
            let mut tx = self.begin_write().await?;
            let current = self.locked_agent(&mut tx, id).await?;
            if c.role.as_deref().is_some_and(|r| r != "admin") {
                self.keep_an_admin(&mut tx, &current).await?;
            }
            sqlx::query(
                "UPDATE agents SET display_name = COALESCE($1, display_name), \
                 role = COALESCE($2, role), max_chats = COALESCE($3, max_chats) WHERE id = $4",
            )
            .bind(name)
            .bind(c.role.as_deref())
            .bind(c.max_chats)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(q) = &queues {
                link_queues(&mut tx, id, q, now_ms()).await?;
            }
            tx.commit().await?;
            self.agent(id).await?.ok_or(StoreError::NotFound)
        })
    }

    /// Disables the agent (ending its sessions: returns the new session version) or enables it
    /// again (the version stays: tokens of before the disable remain invalid).
    pub fn set_agent_disabled<'a>(&'a self, id: i64, disabled: bool) -> Call<'a, (Agent, u64)> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let current = self.locked_agent(&mut tx, id).await?;
            if disabled {
                self.keep_an_admin(&mut tx, &current).await?;
            }
            sqlx::query("UPDATE agents SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let version = if disabled {
                raise_in(&mut tx, id).await?
            } else {
                session_in(&mut tx, id).await?
            };
            tx.commit().await?;
            let agent = self.agent(id).await?.ok_or(StoreError::NotFound)?;
            Ok((agent, version))
        })
    }

    /// Sets a new password and ends every session of the agent: returns the new version.
    pub fn reset_password<'a>(&'a self, id: i64, password: &'a str) -> Call<'a, u64> {
        self.bounded(async move {
            check_password(password)?;
            let password = password.to_string();
            let hash = blocking(move || hash_password(&password)).await?;
            let mut tx = self.begin_write().await?;
            let result = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
                .bind(hash.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let version = raise_in(&mut tx, id).await?;
            tx.commit().await?;
            Ok(version)
        })
    }

    /// Refuses (`Conflict`) when deleting or disabling the agent would leave no enabled admin;
    /// `NotFound` when there is no such agent. (The change itself checks again.)
    pub fn check_removable<'a>(&'a self, id: i64) -> Call<'a, ()> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let current = self.locked_agent(&mut tx, id).await?;
            self.keep_an_admin(&mut tx, &current).await?;
            tx.rollback().await?;
            Ok(())
        })
    }

    /// Deletes the agent, its queue memberships and personal canned responses. Its chats'
    /// transcripts keep its id. The caller ends its sessions first (`raise_session`): once the
    /// row is gone, nothing names a version any token could match.
    pub fn delete_agent<'a>(&'a self, id: i64) -> Call<'a, ()> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let current = self.locked_agent(&mut tx, id).await?;
            self.keep_an_admin(&mut tx, &current).await?;
            for sql in [
                "DELETE FROM agent_queues WHERE agent_id = $1",
                "DELETE FROM canned_responses WHERE owner_id = $1",
                "DELETE FROM agents WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The agent, read inside a transaction that changes agents. On PostgreSQL the table is
    /// locked against other such changes first, so two admins demoting each other at once
    /// cannot both see the other still an admin (SQLite's write transaction already
    /// serialises them).
    async fn locked_agent(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
    ) -> Result<Agent, StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT id, username, display_name, role, max_chats, created_at, disabled \
             FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(agent_from_row(&row, Vec::new())?)
    }

    /// Refuses a change that takes `agent` out of the enabled admins when it is the last one.
    async fn keep_an_admin(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        agent: &Agent,
    ) -> Result<(), StoreError> {
        if agent.role != "admin" || agent.disabled {
            return Ok(());
        }
        let others = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM agents WHERE role = 'admin' AND disabled = $1 AND id <> $2",
        )
        .bind(false)
        .bind(agent.id)
        .fetch_one(&mut **tx)
        .await?;
        if others == 0 {
            return Err(StoreError::Conflict(LAST_ADMIN.into()));
        }
        Ok(())
    }
}

async fn raise_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "UPDATE agents SET session_version = session_version + 1 WHERE id = $1 \
         RETURNING session_version",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(row.try_get::<i64, _>("session_version")? as u64)
}

async fn session_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
) -> Result<u64, StoreError> {
    let v = sqlx::query_scalar::<_, i64>("SELECT session_version FROM agents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(v as u64)
}
