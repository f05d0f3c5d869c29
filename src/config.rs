//! One typed settings tree: `config/default.toml`, then `config/$SWITCHBOARD_ENV.toml` (or the
//! file given with `--config`), then environment variables `SWITCHBOARD__SECTION__KEY`.
//! `validate()` runs before any port opens and names the offending key.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The defaults, compiled in so a node runs without any file; `config/default.toml` is the same text.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Largest `redis.subscriber_buffer`: the buffer's slots are allocated up front.
pub const MAX_SUBSCRIBER_BUFFER: usize = 262_144;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub redis: Redis,
    pub store: Store,
    pub auth: Auth,
    pub limits: Limits,
    pub abuse: Abuse,
    pub chat: Chat,
    pub flush: Flush,
    pub files: Files,
    pub log: Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Address for HTTP and WebSocket.
    pub listen: String,
    /// Name of this node in logs and `welcome` frames; empty = hostname-pid.
    pub node_name: String,
    /// Seconds a draining node waits for in-flight work before exiting.
    pub drain_seconds: u64,
    /// Origins allowed to open a visitor WebSocket (the organisation's sites). Empty = any.
    pub allowed_origins: Vec<String>,
    /// Peers (load balancers) whose X-Forwarded-For and country header are believed.
    pub trusted_proxies: Vec<String>,
    /// Header carrying the visitor's ISO country code, set by a trusted proxy (e.g.
    /// `CF-IPCountry`); empty = none.
    pub country_header: String,
    /// Path of a MaxMind-format (GeoIP2/GeoLite2 Country) database, used for the country when
    /// no trusted country header came; empty = none. A file that cannot be read stops the node.
    pub geoip_database: String,
}

impl Server {
    /// Whether `ip` is one of `trusted_proxies`.
    pub fn trusts(&self, ip: &IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|t| t.parse::<IpAddr>().ok().as_ref() == Some(ip))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    /// `X-Forwarded-For` hop not added by a trusted proxy (a client can prepend anything it
    /// likes). `forwarded` holds the header's values in order.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut ip = peer;
        if self.trusts(&ip) {
            let hops: Vec<IpAddr> = forwarded
                .flat_map(|v| v.split(','))
                .filter_map(|h| h.trim().parse().ok())
                .collect();
            for hop in hops.iter().rev() {
                ip = *hop;
                if !self.trusts(hop) {
                    break;
                }
            }
        }
        ip
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    /// `redis://`, `rediss://`, `redis-cluster://` or `redis-sentinel://` URL.
    pub url: String,
    /// Prefix of every key and channel, so deployments and test runs can share one Redis.
    pub key_prefix: String,
    /// Connections in the command pool.
    pub pool_size: usize,
    /// Pub/sub messages buffered between the subscriber connection and the listener; a
    /// listener that falls further behind makes the node's connections resume.
    pub subscriber_buffer: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `sqlite://path?mode=rwc` or `postgres://...`.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// HMAC key for visitor and agent tokens; at least 32 characters.
    pub token_secret: String,
    /// Lifetime of a visitor token in seconds.
    pub visitor_token_ttl_seconds: u64,
    /// Lifetime of an agent session in seconds.
    pub agent_session_ttl_seconds: u64,
    /// Key the organisation's site uses to sign a logged-in visitor's e-mail (`identify`
    /// frame: hex HMAC-SHA256 of the e-mail); empty = identify is off. At least 32 characters.
    pub identify_secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket frame accepted, in bytes; larger closes the connection with 1009.
    pub max_frame_bytes: usize,
    /// Longest chat message, in characters.
    pub max_message_chars: usize,
    /// Frames per second per connection (sustained); bursts up to `burst_frames`.
    pub frames_per_second: u32,
    pub burst_frames: u32,
    /// Frames queued for one slow client before it is closed with 4408.
    pub outbound_queue: usize,
    /// Refused frames in a row before the connection is closed with 4429.
    pub max_consecutive_errors: u32,
    /// Milliseconds between the node's WebSocket pings.
    pub ping_interval_ms: u64,
    /// Milliseconds without any frame from the client (pongs count) before the connection is
    /// closed: a half-open socket must not keep a visitor "present".
    pub idle_timeout_ms: u64,
    /// Open WebSocket connections per node.
    pub max_connections: usize,
    /// Largest HTTP request body in bytes.
    pub max_body_bytes: usize,
}

/// Limits on anonymous clients and what they can make the cluster store or send, held across
/// the cluster (counters and windows in Redis). See "Anonymous clients" in docs/operations.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abuse {
    /// New visitor identities (`POST /api/visitor/session` without a valid token) per client IP and
    /// minute, sustained; refused with 429 and `Retry-After`.
    pub new_visitors_per_ip_per_minute: u32,
    /// New visitor identities per client IP allowed at once, above the sustained rate.
    pub new_visitors_per_ip_burst: u32,
    /// Open visitor WebSockets of one visitor identity, on all nodes together; more are closed with
    /// 4430.
    pub sockets_per_visitor: u32,
    /// Open visitor WebSockets from one client IP, on all nodes together; more are closed with
    /// 4430.
    pub sockets_per_ip: u32,
    /// Seconds a node's socket counts stay in Redis without a refresh (each node refreshes every
    /// third of it): the counts of a node that died stop counting after this long.
    pub socket_count_ttl_seconds: u64,
    /// `request_chat` frames per visitor and hour, sustained; refused with 4102.
    pub chat_requests_per_visitor_per_hour: u32,
    /// `request_chat` frames per visitor allowed at once.
    pub chat_requests_per_visitor_burst: u32,
    /// `request_chat` frames per client IP and hour, sustained; refused with 4102.
    pub chat_requests_per_ip_per_hour: u32,
    /// `request_chat` frames per client IP allowed at once.
    pub chat_requests_per_ip_burst: u32,
    /// `page_view` frames per visitor and minute, sustained; refused with 4102.
    pub page_views_per_visitor_per_minute: u32,
    /// `page_view` frames per visitor allowed at once.
    pub page_views_per_visitor_burst: u32,
    /// `page_view` frames per client IP and minute, sustained; refused with 4102.
    pub page_views_per_ip_per_minute: u32,
    /// `page_view` frames per client IP allowed at once.
    pub page_views_per_ip_burst: u32,
    /// Frames per second of one visitor over all its sockets on every node, sustained; refused with
    /// 4100.
    pub visitor_frames_per_second: u32,
    /// Frames of one visitor allowed at once over all its sockets.
    pub visitor_burst_frames: u32,
    /// Frames per second of one agent over all its sockets on every node, sustained; refused with
    /// 4100.
    pub agent_frames_per_second: u32,
    /// Frames of one agent allowed at once over all its sockets.
    pub agent_burst_frames: u32,
    /// Participant entries (texts, links, pushed pages, files) one chat's transcript holds; then
    /// the visitor is refused with 4009 and the agent may write 20 more.
    pub transcript_max_entries: u32,
    /// Bytes of participant text and details one chat's transcript holds; then the visitor is
    /// refused with 4009 and the agent may write 64 KiB more.
    pub transcript_max_bytes: u64,
    /// Characters of a visitor's current URL (and of each URL and referrer in the page history)
    /// kept and shown in the site-visitors list.
    pub visitor_url_chars: u32,
    /// Characters of a page title kept and shown in the site-visitors list.
    pub visitor_title_chars: u32,
    /// Pages kept in a visitor's history (`visitor_history`), newest last.
    pub visitor_pages_kept: u32,
    /// Visitors per page of the site-visitors list (`watch_visitors`, `list_visitors`).
    pub visitors_page_size: u32,
    /// Bytes per second of `visitors_changed` sent to one watching connection (bursts of twice
    /// that); over it the connection gets `visitors_stale` instead.
    pub visitor_list_bytes_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// The queue used when a request names none.
    pub default_queue: String,
    /// Milliseconds an agent has to answer an offer before it goes to the next agent.
    pub offer_timeout_ms: u64,
    /// Milliseconds a visitor may be disconnected before the chat ends.
    pub visitor_grace_ms: u64,
    /// Milliseconds an agent may be disconnected before being set offline (no new offers).
    pub agent_grace_ms: u64,
    /// Milliseconds an agent has to decide after the end before the chat is kept as is.
    pub decision_timeout_ms: u64,
    /// Milliseconds a claimed timer is leased before another node may fire it again.
    pub timer_lease_ms: u64,
    /// How often each node looks for due timers, in milliseconds.
    pub timer_poll_ms: u64,
    /// Default max concurrent chats of a new agent.
    pub default_max_chats: u32,
    /// Milliseconds a visitor has to answer an agent's invitation (proactive chat).
    pub invitation_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flush {
    /// Milliseconds a flush job may stay unacknowledged before another node takes it over.
    pub claim_idle_ms: u64,
    /// Jobs read per batch and flushed together.
    pub batch: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// Where chat files are kept: a directory (relative to the working directory, created when
    /// missing), `file:///abs/dir`, or `s3://bucket/prefix` with the standard `AWS_*`
    /// environment variables (`AWS_ENDPOINT` for an S3-compatible service).
    pub url: String,
    /// Largest file accepted, in bytes; larger is refused with 413 while it streams in.
    pub max_bytes: u64,
    /// MIME types accepted for upload: `type/subtype`, or `type/` for every subtype.
    pub allowed_types: Vec<String>,
}

impl Files {
    /// Whether a (lower-case, parameter-free) MIME type is in `allowed_types`.
    pub fn allows(&self, mime: &str) -> bool {
        self.allowed_types.iter().any(|a| {
            if a.ends_with('/') {
                mime.starts_with(a.as_str()) && mime.len() > a.len()
            } else {
                mime == a
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `human` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `switchboard=debug`.
    pub level: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut b = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(f) = file {
            b = b.add_source(config::File::from(f).required(true));
        } else if let Ok(env) = std::env::var("SWITCHBOARD_ENV") {
            b = b.add_source(config::File::with_name(&format!("config/{env}")).required(false));
        }
        b = b.add_source(
            config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("server.allowed_origins")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("files.allowed_types")
                .try_parsing(true),
        );
        let s: Settings = b.build()?.try_deserialize()?;
        s.validate()?;
        Ok(s)
    }

    /// The compiled-in defaults, for tests that then adjust fields.
    pub fn defaults() -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("default.toml is valid")
    }

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
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return bad("store.url", "must start with sqlite: or postgres://");
        }
        if self.store.max_connections == 0 {
            return bad("store.max_connections", "must be at least 1");
        }
        if self.auth.token_secret.len() < 32 {
            return bad("auth.token_secret", "must be at least 32 characters");
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
        self.abuse.validate()?;
        if self.chat.default_queue.is_empty() || !valid_name(&self.chat.default_queue) {
            return bad(
                "chat.default_queue",
                "must be 1-64 characters of a-z, 0-9, '-' or '_'",
            );
        }
        for (key, v) in [
            ("chat.offer_timeout_ms", self.chat.offer_timeout_ms),
            ("limits.ping_interval_ms", self.limits.ping_interval_ms),
            ("limits.idle_timeout_ms", self.limits.idle_timeout_ms),
            ("chat.visitor_grace_ms", self.chat.visitor_grace_ms),
            ("chat.agent_grace_ms", self.chat.agent_grace_ms),
            ("chat.decision_timeout_ms", self.chat.decision_timeout_ms),
            ("chat.timer_lease_ms", self.chat.timer_lease_ms),
            ("chat.timer_poll_ms", self.chat.timer_poll_ms),
            (
                "chat.invitation_timeout_ms",
                self.chat.invitation_timeout_ms,
            ),
            ("flush.claim_idle_ms", self.flush.claim_idle_ms),
        ] {
            if v == 0 {
                return bad(key, "must be greater than 0");
            }
        }
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
        if !matches!(self.log.format.as_str(), "human" | "json") {
            return bad("log.format", "must be `human` or `json`");
        }
        Ok(())
    }
}

impl Abuse {
    fn validate(&self) -> Result<(), ConfigError> {
        let a = self;
        for (key, v) in [
            (
                "abuse.new_visitors_per_ip_per_minute",
                a.new_visitors_per_ip_per_minute,
            ),
            (
                "abuse.new_visitors_per_ip_burst",
                a.new_visitors_per_ip_burst,
            ),
            ("abuse.sockets_per_visitor", a.sockets_per_visitor),
            ("abuse.sockets_per_ip", a.sockets_per_ip),
            (
                "abuse.chat_requests_per_visitor_per_hour",
                a.chat_requests_per_visitor_per_hour,
            ),
            (
                "abuse.chat_requests_per_visitor_burst",
                a.chat_requests_per_visitor_burst,
            ),
            (
                "abuse.chat_requests_per_ip_per_hour",
                a.chat_requests_per_ip_per_hour,
            ),
            (
                "abuse.chat_requests_per_ip_burst",
                a.chat_requests_per_ip_burst,
            ),
            (
                "abuse.page_views_per_visitor_per_minute",
                a.page_views_per_visitor_per_minute,
            ),
            (
                "abuse.page_views_per_visitor_burst",
                a.page_views_per_visitor_burst,
            ),
            (
                "abuse.page_views_per_ip_per_minute",
                a.page_views_per_ip_per_minute,
            ),
            ("abuse.page_views_per_ip_burst", a.page_views_per_ip_burst),
            (
                "abuse.visitor_frames_per_second",
                a.visitor_frames_per_second,
            ),
            ("abuse.visitor_burst_frames", a.visitor_burst_frames),
            ("abuse.agent_frames_per_second", a.agent_frames_per_second),
            ("abuse.agent_burst_frames", a.agent_burst_frames),
            ("abuse.transcript_max_entries", a.transcript_max_entries),
            ("abuse.visitor_pages_kept", a.visitor_pages_kept),
            ("abuse.visitors_page_size", a.visitors_page_size),
        ] {
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
        range(
            "abuse.visitor_list_bytes_per_second",
            a.visitor_list_bytes_per_second as u64,
            1024,
            1 << 30,
        )?;
        Ok(())
    }
}

/// Queue names and similar identifiers: 1-64 of a-z, 0-9, '-', '_'.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::defaults().validate().unwrap();
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut s = Settings::defaults();
        s.server.listen = "nope".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.listen"));
        let mut s = Settings::defaults();
        s.redis.url = "http://x".into();
        assert!(s.validate().unwrap_err().to_string().contains("redis.url"));
        for bad in [0, MAX_SUBSCRIBER_BUFFER + 1] {
            let mut s = Settings::defaults();
            s.redis.subscriber_buffer = bad;
            assert!(s
                .validate()
                .unwrap_err()
                .to_string()
                .contains("redis.subscriber_buffer"));
        }
        let mut s = Settings::defaults();
        s.auth.token_secret = "short".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("auth.token_secret"));
        let mut s = Settings::defaults();
        s.files.url = "ftp://x/y".into();
        assert!(s.validate().unwrap_err().to_string().contains("files.url"));
        let mut s = Settings::defaults();
        s.files.allowed_types = vec!["Image".into()];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("files.allowed_types"), "{e}");
    }

    #[test]
    fn abuse_limits_are_checked_naming_their_key() {
        for (tweak, key) in [
            (
                (|a: &mut Abuse| a.sockets_per_ip = 0) as fn(&mut Abuse),
                "abuse.sockets_per_ip",
            ),
            (
                |a| a.visitor_frames_per_second = 0,
                "abuse.visitor_frames_per_second",
            ),
            (
                |a| a.socket_count_ttl_seconds = 2,
                "abuse.socket_count_ttl_seconds",
            ),
            (
                |a| a.transcript_max_bytes = 10,
                "abuse.transcript_max_bytes",
            ),
            (|a| a.visitor_title_chars = 500, "abuse.visitor_title_chars"),
            (|a| a.visitors_page_size = 0, "abuse.visitors_page_size"),
            (
                |a| a.visitor_list_bytes_per_second = 10,
                "abuse.visitor_list_bytes_per_second",
            ),
        ] {
            let mut s = Settings::defaults();
            tweak(&mut s.abuse);
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn allowed_file_types_match_exactly_or_by_prefix() {
        let f = Settings::defaults().files;
        assert!(f.allows("image/png"));
        assert!(f.allows("application/pdf"));
        assert!(!f.allows("image/"));
        assert!(!f.allows("application/pdfx"));
        assert!(!f.allows("text/html"));
    }
}
