//! Cluster-wide login throttling: failed logins per client IP and per username live in Redis
//! and change only through `lua/login_limit.lua`, so every node sees the same counts and
//! attempts spread over several nodes are all counted.

use super::{RedisLayer, Result};
use fred::types::scripts::Script;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

static LOGIN_LIMIT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/login_limit.lua")));

/// The limits `limits.login_*` set.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub free_per_ip: u32,
    pub free_per_user: u32,
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
}

/// Whether a login may check its password now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginGate {
    /// Checked, and already counted as a failure until `login_settled` says otherwise.
    Allowed,
    /// Too many failures: retry after `ms`; `by` is `ip` or `user`, whichever is waiting.
    Wait { ms: u64, by: String },
}

/// How an allowed login ended, when it was not a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSettled {
    /// The password was right: the username's failures are cleared, the IP's attempt given back.
    Succeeded,
    /// The password was never checked (the store failed): the attempt is given back.
    NotChecked,
}

/// The key part for a username: fixed length whatever the client sent, and the same for every
/// spelling in upper or lower case (so case variants do not add guesses).
fn user_hash(username: &str) -> String {
    let digest = Sha256::digest(username.to_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisLayer {
    async fn login_script(
        &self,
        mode: &str,
        ip: &str,
        username: &str,
        l: &LoginLimits,
    ) -> Result<(i64, i64, String)> {
        let keys = vec![
            self.keys.login_ip(ip),
            self.keys.login_user(&user_hash(username)),
        ];
        let argv = vec![
            mode.to_string(),
            l.free_per_ip.to_string(),
            l.free_per_user.to_string(),
            l.backoff_ms.to_string(),
            l.backoff_max_ms.to_string(),
        ];
        Ok(LOGIN_LIMIT
            .evalsha_with_reload(self.client(), keys, argv)
            .await?)
    }

    /// Asks to check a password for `username` from `ip`; an allowed attempt is counted as a
    /// failure at once.
    pub async fn login_attempt(
        &self,
        ip: &str,
        username: &str,
        l: &LoginLimits,
    ) -> Result<LoginGate> {
        let (allowed, ms, by) = self.login_script("attempt", ip, username, l).await?;
        Ok(if allowed == 1 {
            LoginGate::Allowed
        } else {
            LoginGate::Wait {
                ms: ms.max(1) as u64,
                by,
            }
        })
    }

    /// Corrects the count of an allowed attempt that was not a wrong password.
    pub async fn login_settled(
        &self,
        ip: &str,
        username: &str,
        l: &LoginLimits,
        how: LoginSettled,
    ) -> Result<()> {
        let mode = match how {
            LoginSettled::Succeeded => "success",
            LoginSettled::NotChecked => "refund",
        };
        self.login_script(mode, ip, username, l).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::user_hash;

    #[test]
    fn username_hash_ignores_case_and_has_a_fixed_length() {
        assert_eq!(user_hash("Admin"), user_hash("admin"));
        assert_ne!(user_hash("admin"), user_hash("admin2"));
        assert_eq!(user_hash(&"x".repeat(64)).len(), 32);
    }
}
