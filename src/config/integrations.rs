//! The rules of the `[webhooks]` and `[retention]` sections, kept apart from the rest of
//! `validate()` so that the settings module stays one screenful per concern.

use super::{ConfigError, Settings};
use std::net::IpAddr;

/// A CIDR network, or a single address (as /32 or /128).
pub fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

impl Settings {
    /// The `[webhooks]` and `[retention]` rules.
    pub(super) fn validate_integrations(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        }
        let w = &self.webhooks;
        for (key, v) in [
            ("webhooks.connect_timeout_ms", w.connect_timeout_ms),
            ("webhooks.timeout_ms", w.timeout_ms),
            ("webhooks.retry_base_ms", w.retry_base_ms),
            ("webhooks.retry_max_delay_ms", w.retry_max_delay_ms),
            ("webhooks.retry_for_ms", w.retry_for_ms),
            ("retention.interval_ms", self.retention.interval_ms),
            ("retention.lease_ms", self.retention.lease_ms),
        ] {
            if v == 0 {
                return bad(key, "must be greater than 0");
            }
        }
        if w.connect_timeout_ms > w.timeout_ms {
            return bad(
                "webhooks.connect_timeout_ms",
                "must not be longer than webhooks.timeout_ms",
            );
        }
        if w.retry_max_delay_ms < w.retry_base_ms {
            return bad(
                "webhooks.retry_max_delay_ms",
                "must be at least webhooks.retry_base_ms",
            );
        }
        if w.claim_idle_ms < 2 * w.timeout_ms {
            return bad(
                "webhooks.claim_idle_ms",
                "must be at least twice webhooks.timeout_ms (a slow delivery must not be taken over)",
            );
        }
        if w.disable_after_failures == 0 {
            return bad("webhooks.disable_after_failures", "must be at least 1");
        }
        if w.batch == 0 || w.batch > 1000 {
            return bad("webhooks.batch", "must be between 1 and 1000");
        }
        for h in &w.allowed_hosts {
            let name = h.strip_prefix("*.").unwrap_or(h);
            if name.is_empty()
                || name.contains(['/', ':', '*', ' ', '@'])
                || name.to_ascii_lowercase() != *name
            {
                return bad(
                    "webhooks.allowed_hosts",
                    format!("`{h}` is not a lower-case host name or *.domain"),
                );
            }
        }
        for n in &w.allowed_networks {
            if parse_network(n).is_none() {
                return bad(
                    "webhooks.allowed_networks",
                    format!("`{n}` is not a network like 10.0.0.0/8 or an address"),
                );
            }
        }
        if self.retention.batch == 0 || self.retention.batch > 10_000 {
            return bad("retention.batch", "must be between 1 and 10000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(tweak: impl FnOnce(&mut Settings)) -> String {
        let mut s = crate::config::tests::usable();
        tweak(&mut s);
        s.validate().unwrap_err().to_string()
    }

    #[test]
    fn invalid_values_name_their_key() {
        let e = refused(|s| s.webhooks.claim_idle_ms = s.webhooks.timeout_ms);
        assert!(e.contains("webhooks.claim_idle_ms"), "{e}");
        let e = refused(|s| s.webhooks.allowed_networks = vec!["10.0.0.0/33".into()]);
        assert!(e.contains("webhooks.allowed_networks"), "{e}");
        let e = refused(|s| s.webhooks.allowed_hosts = vec!["https://x.example".into()]);
        assert!(e.contains("webhooks.allowed_hosts"), "{e}");
        let e = refused(|s| s.webhooks.retry_max_delay_ms = 1);
        assert!(e.contains("webhooks.retry_max_delay_ms"), "{e}");
        let e = refused(|s| s.retention.batch = 0);
        assert!(e.contains("retention.batch"), "{e}");
        let mut s = crate::config::tests::usable();
        s.webhooks.allowed_networks = vec!["127.0.0.0/8".into(), "::1".into()];
        s.webhooks.allowed_hosts = vec!["*.example.com".into()];
        s.validate().unwrap();
        assert_eq!(s.webhooks.networks().len(), 2);
    }
}
