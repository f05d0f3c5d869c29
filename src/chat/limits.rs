//! Limits on what one client may make the cluster do, held across nodes (state in Redis, see
//! `redis::limits`): new visitor identities per IP, open visitor sockets per visitor and per
//! IP, chat requests, page views, ratings and transcript e-mails per visitor and per IP, and frames per identity over all
//! its sockets. A refusal is a `ChatError` with its wire code and when to retry, counted in
//! `switchboard_limited_total{limit}`. While Redis cannot answer, these limits are not enforced
//! (the per-connection ones still are): an outage must not lock every visitor out.

use super::{ChatError, ChatResult, Party};
use crate::config::Abuse;
use crate::metrics::Metrics;
use crate::protocol::ErrorCode;
use crate::redis::RedisLayer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The per-visitor rates (names of their Redis keys), which an erasure forgets with the visitor.
const REQUESTS_PER_VISITOR: &str = "req-v";
const PAGE_VIEWS_PER_VISITOR: &str = "pv-v";
const FRAMES_PER_VISITOR: &str = "fr-v";
pub(crate) const VISITOR_RATES: [&str; 3] = [
    REQUESTS_PER_VISITOR,
    PAGE_VIEWS_PER_VISITOR,
    FRAMES_PER_VISITOR,
];

/// Socket counts written at once during a refresh (pipelined on the pool).
const REFRESH_CONCURRENCY: usize = 256;
/// A frame lease no frame used for this long is forgotten (its tokens were already taken from
/// the cluster's bucket, so forgetting them only makes the limit stricter).
const LEASE_IDLE: Duration = Duration::from_secs(60);

/// One cluster-wide rate: `burst` tokens at most, one more every `ms_per_token`.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Part of the Redis key.
    key: &'static str,
    /// The `limit` label of `switchboard_limited_total`.
    label: &'static str,
    ms_per_token: f64,
    burst: u32,
}

impl Rate {
    fn per(
        key: &'static str,
        label: &'static str,
        count: u32,
        period: Duration,
        burst: u32,
    ) -> Rate {
        Rate {
            key,
            label,
            ms_per_token: period.as_millis() as f64 / count.max(1) as f64,
            burst: burst.max(1),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const SECOND: Duration = Duration::from_secs(1);

/// Frame tokens this node took from an identity's cluster-wide bucket and has not spent yet.
struct Lease {
    tokens: u32,
    used: Instant,
}

/// The node's side of the limits: Redis does the counting; the node keeps its own socket
/// counts (written back on every refresh, so a lost decrement heals) and its frame leases.
pub struct Limits {
    redis: RedisLayer,
    metrics: Arc<Metrics>,
    cfg: Abuse,
    /// This process among the nodes (a restarted node is a new instance: the counts of the
    /// old one expire on their own).
    instance: String,
    /// Socket subject (`v:ID`, `ip:IP`) -> sockets open on this node.
    sockets: Mutex<HashMap<String, u64>>,
    /// Unspent frame tokens per visitor and per agent. Short lock, never held across an await.
    visitor_leases: Mutex<HashMap<String, Lease>>,
    agent_leases: Mutex<HashMap<i64, Lease>>,
    /// Set when the node is killed (tests of crash recovery): closing sockets then tells Redis
    /// nothing, as a crashed process would not.
    halted: AtomicBool,
    /// How long this node's socket counts stay valid in Redis without a refresh
    /// (`abuse.socket_count_ttl_seconds`): a node that dies stops counting after this long.
    socket_ttl_ms: u64,
}

/// One open visitor socket, counted for its visitor and its IP while it lives.
pub struct SocketLease {
    limits: Arc<Limits>,
    subjects: [String; 2],
}

impl Drop for SocketLease {
    fn drop(&mut self) {
        self.limits
            .socket_closed(std::mem::take(&mut self.subjects));
    }
}

impl Limits {
    pub fn new(redis: RedisLayer, metrics: Arc<Metrics>, cfg: &Abuse, node: &str) -> Limits {
        let boot = super::identity::new_id();
        Limits {
            redis,
            metrics,
            cfg: cfg.clone(),
            instance: format!("{node}#{}", boot.get(..8).unwrap_or(&boot)),
            sockets: Mutex::new(HashMap::new()),
            visitor_leases: Mutex::new(HashMap::new()),
            agent_leases: Mutex::new(HashMap::new()),
            halted: AtomicBool::new(false),
            socket_ttl_ms: cfg.socket_count_ttl_seconds * 1000,
        }
    }

    /// How often this node writes its socket counts again: a third of their lifetime.
    fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.socket_ttl_ms / 3)
    }

    /// The node was killed: from now on it tells Redis nothing.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Relaxed);
    }

    /// Counts a refusal of `limit` (a per-connection one included).
    pub fn refused(&self, limit: &str) {
        self.metrics.limited.with_label_values(&[limit]).inc();
    }

    fn redis_failed(&self, e: crate::redis::RedisError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "limit not checked: redis failed");
    }

    /// Takes one token of `rate` for `subject`; Err with when to retry when there is none.
    async fn take(&self, rate: Rate, subject: &str) -> Result<(), u64> {
        match self
            .redis
            .rate_take(rate.key, subject, rate.ms_per_token, rate.burst, 1)
            .await
        {
            Ok(g) if g.tokens == 0 => Err(g.retry_after_ms),
            Ok(_) => Ok(()),
            Err(e) => {
                self.redis_failed(e);
                Ok(())
            }
        }
    }

    /// Takes one token of each rate (side by side: they live on different shards); refused
    /// when either has none, naming the first refusing one.
    async fn take_both(
        &self,
        (a, a_subject): (Rate, &str),
        (b, b_subject): (Rate, &str),
        message: impl Fn(&'static str) -> String,
    ) -> ChatResult<()> {
        let (ra, rb) = tokio::join!(self.take(a, a_subject), self.take(b, b_subject));
        let refused = match (ra, rb) {
            (Err(ms), _) => Some((a.label, ms)),
            (_, Err(ms)) => Some((b.label, ms)),
            _ => None,
        };
        match refused {
            None => Ok(()),
            Some((label, ms)) => {
                self.refused(label);
                Err(ChatError::limited(
                    ErrorCode::TooManyRequests,
                    message(label),
                    ms,
                ))
            }
        }
    }

    /// A new visitor identity for a client at `ip`.
    pub async fn new_visitor(&self, ip: &str) -> ChatResult<()> {
        let c = &self.cfg;
        let rate = Rate::per(
            "newvis",
            "new_visitors_ip",
            c.new_visitors_per_ip_per_minute,
            MINUTE,
            c.new_visitors_per_ip_burst,
        );
        self.take(rate, ip).await.map_err(|ms| {
            self.refused(rate.label);
            ChatError::limited(
                ErrorCode::TooManyRequests,
                "too many new visitors from this address; retry later",
                ms,
            )
        })
    }

    /// A `request_chat` of `visitor` at `ip`.
    pub async fn chat_request(&self, visitor: &str, ip: &str) -> ChatResult<()> {
        let c = &self.cfg;
        self.take_both(
            (
                Rate::per(
                    REQUESTS_PER_VISITOR,
                    "chat_requests_visitor",
                    c.chat_requests_per_visitor_per_hour,
                    HOUR,
                    c.chat_requests_per_visitor_burst,
                ),
                visitor,
            ),
            (
                Rate::per(
                    "req-ip",
                    "chat_requests_ip",
                    c.chat_requests_per_ip_per_hour,
                    HOUR,
                    c.chat_requests_per_ip_burst,
                ),
                ip,
            ),
            |label| {
                match label {
                    "chat_requests_ip" => "too many chat requests from this address; retry later",
                    _ => "too many chat requests; retry later",
                }
                .to_string()
            },
        )
        .await
    }

    /// A `page_view` of `visitor` at `ip`.
    pub async fn page_view(&self, visitor: &str, ip: &str) -> ChatResult<()> {
        let c = &self.cfg;
        self.take_both(
            (
                Rate::per(
                    PAGE_VIEWS_PER_VISITOR,
                    "page_views_visitor",
                    c.page_views_per_visitor_per_minute,
                    MINUTE,
                    c.page_views_per_visitor_burst,
                ),
                visitor,
            ),
            (
                Rate::per(
                    "pv-ip",
                    "page_views_ip",
                    c.page_views_per_ip_per_minute,
                    MINUTE,
                    c.page_views_per_ip_burst,
                ),
                ip,
            ),
            |label| {
                match label {
                    "page_views_ip" => "too many page views from this address; slow down",
                    _ => "too many page views; slow down",
                }
                .to_string()
            },
        )
        .await
    }

    /// A post-chat rating (`transcript` false) or transcript e-mail (true) of `visitor` at `ip`.
    pub async fn after_chat(&self, transcript: bool, visitor: &str, ip: &str) -> ChatResult<()> {
        let c = &self.cfg;
        let (v, i) = if transcript {
            (
                Rate::per(
                    "tm-v",
                    "transcript_mails_visitor",
                    c.transcript_mails_per_visitor_per_hour,
                    HOUR,
                    c.transcript_mails_per_visitor_burst,
                ),
                Rate::per(
                    "tm-ip",
                    "transcript_mails_ip",
                    c.transcript_mails_per_ip_per_hour,
                    HOUR,
                    c.transcript_mails_per_ip_burst,
                ),
            )
        } else {
            (
                Rate::per(
                    "rate-v",
                    "ratings_visitor",
                    c.ratings_per_visitor_per_hour,
                    HOUR,
                    c.ratings_per_visitor_burst,
                ),
                Rate::per(
                    "rate-ip",
                    "ratings_ip",
                    c.ratings_per_ip_per_hour,
                    HOUR,
                    c.ratings_per_ip_burst,
                ),
            )
        };
        self.take_both((v, visitor), (i, ip), |_| {
            "too many requests; try again later".to_string()
        })
        .await
    }

    /// One client frame of `party`, against its identity's rate over all its sockets on every
    /// node. The node takes tokens from the cluster's bucket a few at a time (a lease) and
    /// spends them here, so most frames cost no Redis call: one in `lease_size` does.
    pub async fn frame(&self, party: &Party) -> ChatResult<()> {
        let now = Instant::now();
        let spent = match party {
            Party::Visitor { id } => spend(&self.visitor_leases, id.as_str(), now),
            Party::Agent { id, .. } => spend(&self.agent_leases, id, now),
        };
        if spent {
            return Ok(());
        }
        let (rate, subject) = self.frame_rate(party);
        let want = lease_size(&rate);
        let got = match self
            .redis
            .rate_take(rate.key, &subject, rate.ms_per_token, rate.burst, want)
            .await
        {
            Ok(g) if g.tokens == 0 => {
                self.refused(rate.label);
                return Err(ChatError::limited(
                    ErrorCode::RateLimited,
                    format!(
                        "too many frames from this {} over all its connections; slow down",
                        party.role()
                    ),
                    g.retry_after_ms,
                ));
            }
            Ok(g) => g.tokens,
            Err(e) => {
                self.redis_failed(e);
                want
            }
        };
        // One token is this frame; the rest wait in the lease.
        let rest = got - 1;
        match party {
            Party::Visitor { id } => add(&self.visitor_leases, id.as_str(), id.clone(), rest, now),
            Party::Agent { id, .. } => add(&self.agent_leases, id, *id, rest, now),
        }
        Ok(())
    }

    fn frame_rate(&self, party: &Party) -> (Rate, String) {
        let c = &self.cfg;
        match party {
            Party::Visitor { id } => (
                Rate::per(
                    FRAMES_PER_VISITOR,
                    "frames_visitor",
                    c.visitor_frames_per_second,
                    SECOND,
                    c.visitor_burst_frames,
                ),
                id.clone(),
            ),
            Party::Agent { id, .. } => (
                Rate::per(
                    "fr-a",
                    "frames_agent",
                    c.agent_frames_per_second,
                    SECOND,
                    c.agent_burst_frames,
                ),
                id.to_string(),
            ),
        }
    }

    /// Counts a new visitor socket for its visitor and its IP, across the cluster; refused
    /// (and counted nowhere) when either is at its limit.
    pub async fn open_visitor_socket(
        self: &Arc<Self>,
        visitor: &str,
        ip: &str,
    ) -> ChatResult<SocketLease> {
        let subjects = [format!("v:{visitor}"), format!("ip:{ip}")];
        let max = [self.cfg.sockets_per_visitor, self.cfg.sockets_per_ip];
        let ttl = self.socket_ttl_ms;
        let (a, b) = tokio::join!(
            self.redis
                .sockets_add(&subjects[0], &self.instance, ttl, 1, max[0]),
            self.redis
                .sockets_add(&subjects[1], &self.instance, ttl, 1, max[1]),
        );
        // A failed call counts as done: the next refresh writes this node's count anyway.
        let done = [a, b].map(|r| match r {
            Ok(done) => done,
            Err(e) => {
                self.redis_failed(e);
                true
            }
        });
        if done != [true, true] {
            for (i, d) in done.iter().enumerate() {
                if *d {
                    let _ = self
                        .redis
                        .sockets_add(&subjects[i], &self.instance, ttl, -1, 0)
                        .await;
                }
            }
            let (label, message) = if !done[0] {
                (
                    "sockets_visitor",
                    "too many connections of this visitor; close some",
                )
            } else {
                (
                    "sockets_ip",
                    "too many connections from this address; retry later",
                )
            };
            self.refused(label);
            return Err(ChatError::limited(
                ErrorCode::TooManyRequests,
                message,
                self.refresh_every().as_millis() as u64,
            ));
        }
        {
            let mut local = self.sockets.lock().unwrap();
            for s in &subjects {
                *local.entry(s.clone()).or_insert(0) += 1;
            }
        }
        Ok(SocketLease {
            limits: self.clone(),
            subjects,
        })
    }

    fn socket_closed(&self, subjects: [String; 2]) {
        {
            let mut local = self.sockets.lock().unwrap();
            for s in &subjects {
                if let Some(n) = local.get_mut(s) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        local.remove(s);
                    }
                }
            }
        }
        if self.halted.load(Ordering::Relaxed) {
            return;
        }
        let redis = self.redis.clone();
        let instance = self.instance.clone();
        let ttl = self.socket_ttl_ms;
        // Best effort: a decrement lost here is healed by the next refresh of this node's
        // counts (or by their expiry if the node dies first).
        tokio::spawn(async move {
            for s in subjects {
                let _ = redis.sockets_add(&s, &instance, ttl, -1, 0).await;
            }
        });
    }

    /// Writes this node's socket counts again (moving their expiry on) and forgets idle
    /// frame leases.
    async fn refresh(&self) {
        let counts: Vec<(String, u64)> = self
            .sockets
            .lock()
            .unwrap()
            .iter()
            .map(|(s, n)| (s.clone(), *n))
            .collect();
        let ttl = self.socket_ttl_ms;
        for chunk in counts.chunks(REFRESH_CONCURRENCY) {
            let results = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|(s, n)| self.redis.sockets_set(s, &self.instance, ttl, *n)),
            )
            .await;
            if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                self.redis_failed(e);
            }
        }
        let now = Instant::now();
        self.visitor_leases
            .lock()
            .unwrap()
            .retain(|_, l| now.duration_since(l.used) < LEASE_IDLE);
        self.agent_leases
            .lock()
            .unwrap()
            .retain(|_, l| now.duration_since(l.used) < LEASE_IDLE);
    }
}

/// Frame tokens asked for at once: half a second's worth (at least 1), never more than a
/// quarter of the burst, so a few nodes' unspent leases cannot hold the whole bucket.
fn lease_size(rate: &Rate) -> u32 {
    let per_second = 1000.0 / rate.ms_per_token;
    ((per_second / 2.0) as u32).clamp(1, (rate.burst / 4).max(1))
}

/// Spends one leased token, if the identity has one.
fn spend<K, Q>(leases: &Mutex<HashMap<K, Lease>>, who: &Q, now: Instant) -> bool
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let mut m = leases.lock().unwrap();
    match m.get_mut(who) {
        Some(l) if l.tokens > 0 => {
            l.tokens -= 1;
            l.used = now;
            true
        }
        _ => false,
    }
}

/// Adds unspent tokens to the identity's lease.
fn add<K, Q>(leases: &Mutex<HashMap<K, Lease>>, who: &Q, key: K, tokens: u32, now: Instant)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let mut m = leases.lock().unwrap();
    match m.get_mut(who) {
        Some(l) => {
            l.tokens += tokens;
            l.used = now;
        }
        None => {
            m.insert(key, Lease { tokens, used: now });
        }
    }
}

/// Background work of the limits, run by every node: refreshes its socket counts.
pub async fn run(limits: Arc<Limits>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(limits.refresh_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    loop {
        tokio::select! {
            _ = tick.tick() => limits.refresh().await,
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_half_a_second_and_at_most_a_quarter_of_the_burst() {
        let r = |per_s, burst| Rate::per("k", "l", per_s, SECOND, burst);
        assert_eq!(lease_size(&r(10, 40)), 5);
        assert_eq!(lease_size(&r(50, 200)), 25);
        assert_eq!(lease_size(&r(1000, 8)), 2);
        assert_eq!(lease_size(&r(1, 1)), 1);
        let hourly = Rate::per("k", "l", 12, HOUR, 4);
        assert!((hourly.ms_per_token - 300_000.0).abs() < 1e-6);
    }

    #[test]
    fn leases_spend_what_they_hold() {
        let m: Mutex<HashMap<String, Lease>> = Mutex::new(HashMap::new());
        let now = Instant::now();
        assert!(!spend(&m, "v1", now));
        add(&m, "v1", "v1".to_string(), 2, now);
        assert!(spend(&m, "v1", now));
        assert!(spend(&m, "v1", now));
        assert!(!spend(&m, "v1", now));
    }
}
