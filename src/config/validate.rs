//! The checks a node runs on its settings before any port opens: each refusal names its key.

use super::*;

/// `(key, value)` pairs of settings named by their path, so a key always names its own field:
/// `keyed!(self: chat.max_wait_ms)` is `[("chat.max_wait_ms", self.chat.max_wait_ms)]`, and
/// `keyed!(a => "abuse": sockets_per_ip)` is `[("abuse.sockets_per_ip", a.sockets_per_ip)]`.
/// Values are widened to `u64`.
macro_rules! keyed {
    ($root:ident: $($section:ident . $field:ident),* $(,)?) => {
        [$((concat!(stringify!($section), ".", stringify!($field)), u64::from($root.$section.$field))),*]
    };
    ($root:ident => $section:literal: $($field:ident),* $(,)?) => {
        [$((concat!($section, ".", stringify!($field)), u64::from($root.$field))),*]
    };
}

impl Settings {
    /// Every rule on the settings; the first broken one is returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "server.listen",
                format!(
                    "`{}` is not an address like 0.0.0.0:8080",
                    self.server.listen
                ),
            );
        }
        if !self.server.metrics_listen.is_empty() {
            if self.server.metrics_listen.parse::<SocketAddr>().is_err() {
                return bad(
                    "server.metrics_listen",
                    format!(
                        "`{}` is not an address like 0.0.0.0:9090 (or empty: serve /metrics on server.listen)",
                        self.server.metrics_listen
                    ),
                );
            }
            if self.server.metrics_listen == self.server.listen
                && !self.server.listen.ends_with(":0")
            {
                return bad(
                    "server.metrics_listen",
                    "must differ from server.listen (or be empty to share it)",
                );
            }
        }
        if self.server.header_timeout_ms > self.server.http_idle_timeout_ms {
            return bad(
                "server.header_timeout_ms",
                "must not exceed server.http_idle_timeout_ms",
            );
        }
        if !(1..=1_000_000).contains(&self.server.max_http_connections) {
            return bad(
                "server.max_http_connections",
                "must be between 1 and 1000000",
            );
        }
        for p in &self.server.trusted_proxies {
            if p.parse::<IpAddr>().is_err() {
                return bad(
                    "server.trusted_proxies",
                    format!("`{p}` is not an IP address"),
                );
            }
        }
        let scheme_ok = [
            "redis://",
            "rediss://",
            "redis-cluster://",
            "rediss-cluster://",
            "redis-sentinel://",
            "rediss-sentinel://",
        ]
        .iter()
        .any(|s| self.redis.url.starts_with(s));
        if !scheme_ok {
            return bad(
                "redis.url",
                "must start with redis://, rediss://, redis-cluster:// or redis-sentinel://",
            );
        }
        if self.redis.key_prefix.contains(['{', '}', ' ']) {
            return bad("redis.key_prefix", "must not contain braces or spaces");
        }
        if self.redis.pool_size == 0 || self.redis.pool_size > 64 {
            return bad("redis.pool_size", "must be between 1 and 64");
        }
        if self.redis.subscriber_buffer == 0 || self.redis.subscriber_buffer > MAX_SUBSCRIBER_BUFFER
        {
            return bad(
                "redis.subscriber_buffer",
                format!("must be between 1 and {MAX_SUBSCRIBER_BUFFER}"),
            );
        }
        if !(100..=60_000).contains(&self.redis.epoch_check_ms) {
            return bad("redis.epoch_check_ms", "must be between 100 and 60000");
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return bad("store.url", "must start with sqlite: or postgres://");
        }
        if self.store.max_connections == 0 {
            return bad("store.max_connections", "must be at least 1");
        }
        for (key, v) in keyed!(self:
            store.statement_timeout_ms,
            store.lock_timeout_ms,
            store.connect_timeout_ms,
            server.ready_timeout_ms,
        ) {
            if !(1..=MAX_TIMEOUT_MS).contains(&v) {
                return bad(key, format!("must be between 1 and {MAX_TIMEOUT_MS}"));
            }
        }
        if self.store.lock_timeout_ms > self.store.statement_timeout_ms {
            return bad(
                "store.lock_timeout_ms",
                format!(
                    "must not exceed store.statement_timeout_ms ({}): a lock wait is part of a statement",
                    self.store.statement_timeout_ms
                ),
            );
        }
        if let Err(reason) = check_token_secret(&self.auth.token_secret) {
            return bad("auth.token_secret", reason);
        }
        if !self.auth.identify_secret.is_empty() && self.auth.identify_secret.len() < 32 {
            return bad(
                "auth.identify_secret",
                "must be empty (off) or at least 32 characters",
            );
        }
        if self.limits.max_frame_bytes < 1024 {
            return bad("limits.max_frame_bytes", "must be at least 1024");
        }
        if self.limits.max_message_chars == 0
            || self.limits.max_message_chars * 4 > self.limits.max_frame_bytes
        {
            return bad(
                "limits.max_message_chars",
                "must be at least 1 and fit four bytes per character in limits.max_frame_bytes",
            );
        }
        if self.limits.frames_per_second == 0 || self.limits.burst_frames == 0 {
            return bad("limits.frames_per_second", "rates must be at least 1");
        }
        if self.limits.outbound_queue < 8 {
            return bad("limits.outbound_queue", "must be at least 8");
        }
        if self.limits.login_concurrency > 1024 {
            return bad(
                "limits.login_concurrency",
                "must be at most 1024 (0 = the number of CPU cores)",
            );
        }
        if self.limits.login_failures_per_ip == 0 {
            return bad("limits.login_failures_per_ip", "must be at least 1");
        }
        if self.limits.login_failures_per_user == 0 {
            return bad("limits.login_failures_per_user", "must be at least 1");
        }
        if self.limits.login_backoff_max_ms < self.limits.login_backoff_ms {
            return bad(
                "limits.login_backoff_max_ms",
                "must be at least limits.login_backoff_ms",
            );
        }
        self.abuse.validate()?;
        if self.chat.default_queue.is_empty() || !valid_name(&self.chat.default_queue) {
            return bad(
                "chat.default_queue",
                "must be 1-64 characters of a-z, 0-9, '-' or '_'",
            );
        }
        for (key, v) in keyed!(self:
            server.header_timeout_ms,
            server.http_idle_timeout_ms,
            limits.login_backoff_ms,
            chat.offer_timeout_ms,
            limits.ping_interval_ms,
            limits.idle_timeout_ms,
            chat.visitor_grace_ms,
            chat.agent_grace_ms,
            chat.agent_unroutable_ms,
            chat.presence_settle_ms,
            chat.decision_timeout_ms,
            chat.timer_lease_ms,
            chat.timer_poll_ms,
            chat.invitation_timeout_ms,
            flush.claim_idle_ms,
            chat.max_wait_ms,
            chat.monitor_interval_ms,
            chat.monitor_max_chats,
            chat.monitor_bytes_per_second,
            chat.after_chat_window_ms,
            mail.timeout_ms,
            mail.claim_idle_ms,
        ) {
            if v == 0 {
                return bad(key, "must be greater than 0");
            }
        }
        if self.chat.agent_unroutable_ms > self.chat.agent_grace_ms {
            return bad(
                "chat.agent_unroutable_ms",
                "must not be longer than chat.agent_grace_ms",
            );
        }
        self.validate_keepalive()?;
        if self.chat.default_max_chats == 0 {
            return bad("chat.default_max_chats", "must be at least 1");
        }
        if self.flush.batch == 0 {
            return bad("flush.batch", "must be at least 1");
        }
        let files_url = self.files.url.as_str();
        if files_url.is_empty()
            || (files_url.contains("://")
                && !files_url.starts_with("file:///")
                && !files_url.starts_with("s3://"))
        {
            return bad(
                "files.url",
                "must be a directory, file:///abs/dir or s3://bucket/prefix",
            );
        }
        if self.files.max_bytes == 0 {
            return bad("files.max_bytes", "must be at least 1");
        }
        for t in &self.files.allowed_types {
            let ok = match t.split_once('/') {
                Some((ty, sub)) => {
                    let token = |s: &str| {
                        s.bytes().all(|b| {
                            b.is_ascii_lowercase()
                                || b.is_ascii_digit()
                                || b"!#$&-^_.+".contains(&b)
                        })
                    };
                    !ty.is_empty() && token(ty) && token(sub)
                }
                None => false,
            };
            if !ok {
                return bad(
                    "files.allowed_types",
                    format!("`{t}` is not a lower-case type/subtype or type/ prefix"),
                );
            }
        }
        if self.offline.per_visitor_per_hour == 0 || self.offline.per_ip_per_hour == 0 {
            return bad(
                "offline.per_visitor_per_hour",
                "offline.per_visitor_per_hour and offline.per_ip_per_hour must be at least 1",
            );
        }
        // A longer message than a frame can carry is refused by the frame limit first.
        if self.offline.max_message_chars == 0 {
            return bad("offline.max_message_chars", "must be at least 1");
        }
        let url = &self.mail.smtp_url;
        if !(url.is_empty() || url.starts_with("smtp://") || url.starts_with("smtps://")) {
            return bad(
                "mail.smtp_url",
                "must be empty or start with smtp:// or smtps://",
            );
        }
        for (key, v) in [
            ("mail.from", &self.mail.from),
            ("mail.notify_to", &self.mail.notify_to),
        ] {
            if !v.is_empty() && v.parse::<lettre::Address>().is_err() {
                return bad(key, format!("`{v}` is not an e-mail address"));
            }
        }
        if self.mail.enabled() && self.mail.from.is_empty() {
            return bad("mail.from", "must be set when notifications are on");
        }
        self.validate_integrations()?;
        if !matches!(self.log.format.as_str(), "human" | "json") {
            return bad("log.format", "must be `human` or `json`");
        }
        Ok(())
    }
}

/// Placeholders published as example values of `auth.token_secret`: anyone can forge tokens
/// with a published key, so a node refuses them like a missing one.
const PLACEHOLDER_SECRETS: [&str; 1] = ["change-me-change-me-change-me-change-me"];

/// Why a token secret is unsafe, if it is: missing, a published placeholder, or too short.
fn check_token_secret(secret: &str) -> Result<(), String> {
    const HOW: &str = "set it to a random string of at least 32 characters, the same on every \
                       node (e.g. SWITCHBOARD__AUTH__TOKEN_SECRET=$(openssl rand -hex 32))";
    let trimmed = secret.trim();
    if trimmed.is_empty() {
        return Err(format!("is not set: {HOW}"));
    }
    if PLACEHOLDER_SECRETS.contains(&trimmed) || trimmed.to_ascii_lowercase().contains("change-me")
    {
        return Err(format!("is a published placeholder: {HOW}"));
    }
    if trimmed.chars().count() < 32 {
        return Err(format!(
            "has {} characters, fewer than 32: {HOW}",
            trimmed.chars().count()
        ));
    }
    Ok(())
}

impl Settings {
    /// The keep-alive rule. A client pings every `ping_interval_ms` (P) and calls its link dead
    /// after 2P of silence; it then waits a random delay of up to P/2 (so a stalled node's
    /// clients do not all return at once) and gives an attempt P to open, which covers one
    /// attempt that lands on the stalled node again: back on a healthy node within 3.5P plus
    /// its connection time. The node pushes a party's "gone" timer forward every
    /// `min(grace/4, 5 s)`, so the timer is due no sooner than 0.75 × grace after the stall.
    /// 6P <= grace makes 3.5P at most 0.58 × grace, which leaves a sixth of the grace for
    /// connecting and backoff. 2P <= idle timeout: a client that pings every P is never
    /// closed as idle while one ping is late or lost.
    fn validate_keepalive(&self) -> Result<(), ConfigError> {
        let ping = self.limits.ping_interval_ms;
        if ping.saturating_mul(2) > self.limits.idle_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "limits.idle_timeout_ms",
                reason: format!(
                    "must be at least twice limits.ping_interval_ms ({ping}): clients ping that \
                     often, and one late ping must not close a healthy connection"
                ),
            });
        }
        for (key, grace) in [
            ("chat.visitor_grace_ms", self.chat.visitor_grace_ms),
            ("chat.agent_grace_ms", self.chat.agent_grace_ms),
        ] {
            if ping.saturating_mul(6) > grace {
                return Err(ConfigError::Invalid {
                    key: "limits.ping_interval_ms",
                    reason: format!(
                        "must be at most a sixth of {key} ({grace}): a client needs up to 3.5 \
                         ping intervals to notice a dead link and reach another node, well \
                         within the grace period"
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Abuse {
    fn validate(&self) -> Result<(), ConfigError> {
        let a = self;
        for (key, v) in keyed!(a => "abuse":
            new_visitors_per_ip_per_minute,
            new_visitors_per_ip_burst,
            sockets_per_visitor,
            sockets_per_ip,
            chat_requests_per_visitor_per_hour,
            chat_requests_per_visitor_burst,
            chat_requests_per_ip_per_hour,
            chat_requests_per_ip_burst,
            page_views_per_visitor_per_minute,
            page_views_per_visitor_burst,
            page_views_per_ip_per_minute,
            page_views_per_ip_burst,
            visitor_frames_per_second,
            visitor_burst_frames,
            agent_frames_per_second,
            agent_burst_frames,
            transcript_max_entries,
            visitor_pages_kept,
            visitors_page_size,
            visitors_in_view,
            ratings_per_visitor_per_hour,
            ratings_per_visitor_burst,
            ratings_per_ip_per_hour,
            ratings_per_ip_burst,
            transcript_mails_per_visitor_per_hour,
            transcript_mails_per_visitor_burst,
            transcript_mails_per_ip_per_hour,
            transcript_mails_per_ip_burst,
        ) {
            if v == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1".into(),
                });
            }
        }
        let range = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    reason: format!("must be between {lo} and {hi}"),
                })
            }
        };
        range(
            "abuse.socket_count_ttl_seconds",
            a.socket_count_ttl_seconds,
            3,
            3600,
        )?;
        range(
            "abuse.transcript_max_bytes",
            a.transcript_max_bytes,
            1024,
            1 << 30,
        )?;
        range(
            "abuse.visitor_url_chars",
            a.visitor_url_chars as u64,
            16,
            2048,
        )?;
        range(
            "abuse.visitor_title_chars",
            a.visitor_title_chars as u64,
            1,
            200,
        )?;
        range(
            "abuse.visitor_pages_kept",
            a.visitor_pages_kept as u64,
            1,
            1000,
        )?;
        range(
            "abuse.visitors_page_size",
            a.visitors_page_size as u64,
            1,
            5000,
        )?;
        range("abuse.visitors_in_view", a.visitors_in_view as u64, 1, 2000)?;
        range(
            "abuse.visitor_list_bytes_per_second",
            a.visitor_list_bytes_per_second as u64,
            1024,
            1 << 30,
        )?;
        Ok(())
    }
}
