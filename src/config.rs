//! One typed settings tree: `config/default.toml`, then `config/$SWITCHBOARD_ENV.toml` (or the
//! file given with `--config`), then environment variables `SWITCHBOARD__SECTION__KEY`.
//! `validate()` runs before any port opens and names the offending key.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The defaults, compiled in so a node runs without any file; `config/default.toml` is the same text.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

mod integrations;
mod validate;
pub use integrations::parse_network;

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
    pub offline: Offline,
    pub mail: Mail,
    pub webhooks: Webhooks,
    pub retention: Retention,
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
    /// Separate address for `GET /metrics` (e.g. `0.0.0.0:9090`), so the metrics need not face
    /// the internet; empty = served on `listen` with everything else.
    pub metrics_listen: String,
    /// Milliseconds a request head may take to arrive complete, from its first byte (from the
    /// connection's start for the first request). Slower clients (slowloris, silent sockets)
    /// are disconnected.
    pub header_timeout_ms: u64,
    /// Milliseconds an HTTP connection (not an upgraded WebSocket, which has its own pings) may
    /// sit idle between requests, or move no byte while a request is in flight (a body sent or
    /// read too slowly), before it is closed. Keep it above the idle timeout of the proxies in
    /// front (ingress-nginx keeps idle upstream connections 60 s), so they never reuse a
    /// connection the node is closing.
    pub http_idle_timeout_ms: u64,
    /// Open HTTP connections per node that have not become WebSockets; further connections
    /// get a bare 503 and are closed. WebSockets count against `limits.max_connections`.
    pub max_http_connections: usize,
    /// Seconds a draining node keeps its listener open at least, answering 503 on `/readyz`
    /// and on WebSocket upgrades, so load balancers see it leave; it stays open longer while
    /// sockets and work remain, and closes at the latest one second before `drain_seconds`.
    pub drain_listen_seconds: u64,
    /// Milliseconds each `/readyz` check (Redis, store) may take before it counts as failing:
    /// a dependency that black-holes packets must not hang the probe.
    pub ready_timeout_ms: u64,
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
    /// listener that falls further behind makes the node's connections catch up from the
    /// streams.
    pub subscriber_buffer: usize,
    /// How often the node reads Redis's epoch (and when its subscriber connection comes back):
    /// a changed epoch means Redis lost its data, and every live chat's clients on the node
    /// are told (`chat_lost`, close 4410).
    pub epoch_check_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `sqlite://path?mode=rwc` or `postgres://...`.
    pub url: String,
    pub max_connections: u32,
    /// Longest a statement may run (PostgreSQL `statement_timeout`), and longest a transaction
    /// may sit idle holding its locks (`idle_in_transaction_session_timeout`), so a frozen node
    /// cannot keep rows locked for the others. With `connect_timeout_ms` it is also the bound
    /// the node itself puts on every store call, which holds when the database stops answering.
    pub statement_timeout_ms: u64,
    /// Longest a statement waits for a lock another transaction holds (PostgreSQL
    /// `lock_timeout`, SQLite `busy_timeout`); a flush that runs into it stays pending.
    pub lock_timeout_ms: u64,
    /// Longest the node waits for a pool connection, opening a new one included.
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// HMAC key for visitor and agent tokens: required, at least 32 random characters, the same
    /// on every node. A node refuses to start when it is empty, the published placeholder or
    /// shorter.
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
    /// Milliseconds between the node's WebSocket pings; also the keep-alive interval the
    /// node gives clients in `welcome` (they ping that often and call a link dead after two
    /// intervals of silence). At most a sixth of the shorter grace period.
    pub ping_interval_ms: u64,
    /// Milliseconds without any frame from the client (pongs count) before the connection is
    /// closed: a half-open socket must not keep a visitor "present". At least two ping
    /// intervals.
    pub idle_timeout_ms: u64,
    /// Open WebSocket connections per node.
    pub max_connections: usize,
    /// Largest HTTP request body in bytes.
    pub max_body_bytes: usize,
    /// Password checks (argon2, 19 MiB each) running at once on a node; 0 = the number of
    /// CPU cores. Beyond it up to four logins per check wait at most 2 s for their turn; any
    /// further login is answered 503 with `Retry-After` at once, never queued.
    pub login_concurrency: usize,
    /// Logins per client IP, cluster-wide, that may fail before each further attempt has to
    /// wait (`login_backoff_ms`, doubling per failure).
    pub login_failures_per_ip: u32,
    /// Logins per username, cluster-wide, that may fail before each further attempt has to
    /// wait; a successful login clears the username's count.
    pub login_failures_per_user: u32,
    /// Milliseconds the first refused attempt waits after the free failures are used up;
    /// doubles with every further failure.
    pub login_backoff_ms: u64,
    /// Longest wait between login attempts, in milliseconds. An IP's or a username's failures
    /// are forgotten when this long has passed after its last wait ended without an attempt.
    pub login_backoff_max_ms: u64,
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
    /// Visitors one `view_visitors` may name: the rows a console has in view, whose full
    /// records it receives while watching with `rows: "in_view"`. The console learns it from
    /// `visitors_snapshot.view_max` and, when it renders more rows than that, names those on
    /// screen first.
    pub visitors_in_view: u32,
    /// Bytes per second of `visitors_changed` sent to one watching connection (bursts of twice
    /// that); over it the connection gets `visitors_stale` instead.
    pub visitor_list_bytes_per_second: u32,
    /// Post-chat ratings (`POST /api/visitor/chats/{id}/rating`) per visitor and hour,
    /// sustained; refused with 429 (code 4102) and `Retry-After`.
    pub ratings_per_visitor_per_hour: u32,
    /// Ratings per visitor allowed at once.
    pub ratings_per_visitor_burst: u32,
    /// Ratings per client IP and hour, sustained; refused with 429 (code 4102).
    pub ratings_per_ip_per_hour: u32,
    /// Ratings per client IP allowed at once.
    pub ratings_per_ip_burst: u32,
    /// Transcripts e-mailed to visitors (`POST /api/visitor/chats/{id}/transcript`) per visitor
    /// and hour, sustained; refused with 429 (code 4102) and `Retry-After`.
    pub transcript_mails_per_visitor_per_hour: u32,
    /// Transcript e-mails per visitor allowed at once.
    pub transcript_mails_per_visitor_burst: u32,
    /// Transcript e-mails per client IP and hour, sustained; refused with 429 (code 4102).
    pub transcript_mails_per_ip_per_hour: u32,
    /// Transcript e-mails per client IP allowed at once.
    pub transcript_mails_per_ip_burst: u32,
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
    /// Milliseconds after an agent's last console connection closed (on every node) before
    /// the agent gets no more offers and its pending offers go to other agents; a console
    /// that connects again makes the agent routable again with the status it had. At most
    /// `chat.agent_grace_ms`.
    pub agent_unroutable_ms: u64,
    /// After a Redis outage (no node could write for a while), the longest time presence
    /// timers wait for the nodes that were up to re-assert their connections before judging
    /// anyone gone; usually over as soon as every node has beaten again.
    pub presence_settle_ms: u64,
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
    /// An agent who lets an offer time out is set away (and told why), so the next request
    /// does not wait on a console nobody watches.
    pub away_on_missed_offer: bool,
    /// Milliseconds after the last deny or missed offer before a request's denied agents may
    /// be offered it again (a lone agent gets a second chance); 0 = never.
    pub deny_reset_ms: u64,
    /// Milliseconds a visitor waits in the queue before the widget offers to leave a message
    /// instead.
    pub max_wait_ms: u64,
    /// Milliseconds after a chat an agent joined has ended during which its visitor may rate it
    /// and have its transcript e-mailed.
    pub after_chat_window_ms: u64,
    /// How often a node with supervisors watching the monitor reads it from Redis (once per
    /// node, shared by its watchers) and sends what changed.
    pub monitor_interval_ms: u64,
    /// Most chats and requests the monitor lists (waiting first); the rest are counted only.
    pub monitor_max_chats: u32,
    /// Bytes of monitor frames one watcher may be sent per second (bursts of twice that);
    /// over it the watcher skips changes and later gets the whole monitor again.
    pub monitor_bytes_per_second: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offline {
    /// Offline messages one visitor may leave per hour (across nodes).
    pub per_visitor_per_hour: u32,
    /// Offline messages one IP address may leave per hour (across nodes).
    pub per_ip_per_hour: u32,
    /// Longest offline message, in characters.
    pub max_message_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mail {
    /// SMTP server for offline-message notifications: `smtps://host:465` (TLS),
    /// `smtp://host:587?tls=required` (STARTTLS), `smtp://host:port` (unencrypted: loopback
    /// only), with optional `user:password@`. Empty = no notifications.
    pub smtp_url: String,
    /// Sender address of notifications.
    pub from: String,
    /// Where notifications of new offline messages go; empty = no notifications.
    pub notify_to: String,
    /// Milliseconds one delivery attempt may take.
    pub timeout_ms: u64,
    /// Milliseconds a notification job may stay unacknowledged (node died, server refused)
    /// before a node takes it over and tries again.
    pub claim_idle_ms: u64,
}

impl Mail {
    /// Notifications are on when both the server and the recipient are set.
    pub fn enabled(&self) -> bool {
        !self.smtp_url.is_empty() && !self.notify_to.is_empty()
    }
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
pub struct Webhooks {
    /// Milliseconds to open a connection to an endpoint.
    pub connect_timeout_ms: u64,
    /// Milliseconds for a whole delivery request, response included.
    pub timeout_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; doubled at each retry (with
    /// jitter) up to `retry_max_delay_ms`.
    pub retry_base_ms: u64,
    /// Longest pause between two retries, in milliseconds.
    pub retry_max_delay_ms: u64,
    /// Milliseconds after the event during which failed deliveries are retried; then given up.
    pub retry_for_ms: u64,
    /// Failed attempts in a row (any event) after which an endpoint is disabled.
    pub disable_after_failures: u32,
    /// Milliseconds an event taken by a node may stay unfinished before another node takes it
    /// over (the first died). At least twice `timeout_ms`.
    pub claim_idle_ms: u64,
    /// Events, and due retries, a node takes at once.
    pub batch: usize,
    /// When not empty, the only hosts endpoints may name: exact names or `*.example.com`.
    pub allowed_hosts: Vec<String>,
    /// Networks (CIDR) endpoints may reach although they are loopback, private, link-local or
    /// otherwise internal (refused by default).
    pub allowed_networks: Vec<String>,
}

impl Webhooks {
    /// `allowed_networks`, parsed (validated at start).
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days chat transcripts (Messages) are kept after the chat ended, with interactions left
    /// without any chat; 0 = for ever.
    pub transcripts_days: u32,
    /// Days chat files are kept after upload; 0 = for ever.
    pub files_days: u32,
    /// Days offline messages are kept; 0 = for ever.
    pub offline_messages_days: u32,
    /// Days the webhook delivery log and the stored event bodies are kept; 0 = for ever.
    pub webhook_log_days: u32,
    /// Days audit log entries are kept; 0 = for ever.
    pub audit_days: u32,
    /// Milliseconds between two runs of the purge job (on one node at a time).
    pub interval_ms: u64,
    /// Rows (or files) deleted per batch.
    pub batch: u32,
    /// Milliseconds the purging node holds its lease in Redis, renewed after every batch.
    pub lease_ms: u64,
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
                .with_list_parse_key("webhooks.allowed_hosts")
                .with_list_parse_key("webhooks.allowed_networks")
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
}

/// Largest `store.*_timeout_ms` and `server.ready_timeout_ms`: ten minutes.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// Queue names and similar identifiers: 1-64 of a-z, 0-9, '-', '_'.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
