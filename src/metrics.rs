//! The node's Prometheus registry and the metric families the other modules update.
//! Labels are low-cardinality only (role, code, kind, outcome); never chat or user ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod edge;
pub use edge::{EdgeMetrics, LOGIN_FAILURE_REASONS};

pub struct Metrics {
    pub registry: Registry,
    pub connections: IntGaugeVec,
    pub messages: IntCounter,
    pub frames_rejected: IntCounterVec,
    pub chats_requested: IntCounter,
    pub chats_ended: IntCounterVec,
    pub offers: IntCounter,
    pub offer_timeouts: IntCounter,
    pub denials: IntCounter,
    pub request_to_accept: Histogram,
    pub request_to_offer: Histogram,
    pub entries_out: IntCounter,
    pub agent_load: IntGauge,
    pub free_capacity: IntGauge,
    pub timers_fired: IntCounterVec,
    pub flush_jobs: IntCounterVec,
    pub flush_duration: Histogram,
    /// History searches (`GET /api/history`), answered or not.
    pub history_search_duration: Histogram,
    pub subscriptions: IntGauge,
    pub slow_consumers: IntCounter,
    /// Times every local connection was told to resume, by why live traffic may have been lost.
    pub resyncs: IntCounterVec,
    /// Failed attempts to subscribe again after the subscriber connection came back.
    pub resubscribe_failures: IntCounter,
    /// Times this node found Redis's epoch changed: Redis lost its data and the live chats
    /// of this node's clients were ended with `chat_lost`.
    pub redis_state_lost: IntCounter,
    pub redis_errors: IntCounter,
    /// Visitors on the site (cluster-wide, sampled by every node).
    pub site_visitors: IntGauge,
    /// Site-visitor changes this node published, and batches it published them in.
    pub visitor_changes: IntCounter,
    pub visitor_batches: IntCounter,
    /// Requests, frames and sockets refused by a limit on clients, by limit (`LIMITS`).
    pub limited: IntCounterVec,
    /// `visitors_changed` frames not sent to a watcher over its byte budget, and the bytes sent.
    pub visitor_list_dropped: IntCounter,
    pub visitor_list_bytes: IntCounter,
    /// Invitations (proactive chat) by result: sent, accepted, declined, expired, gone.
    pub invitations: IntCounterVec,
    pub redis_latency: prometheus::HistogramVec,
    /// `redis_latency` for the hot path (appending an entry), resolved once.
    pub redis_append: Histogram,
    pub chats_waiting: IntGaugeVec,
    pub agents_available: IntGaugeVec,
    pub flush_backlog: IntGauge,
    pub drains: IntCounter,
    /// Presence timers that asked whether their party was still connected, by timer and
    /// outcome (gone: acted on; present / settling: set again instead).
    pub presence_rechecks: IntCounterVec,
    /// Redis outages this node's presence beat found (no node could beat for a while).
    pub presence_outages: IntCounter,
    /// Agents set away because they let an offer time out.
    pub set_away: IntCounter,
    /// Requests taken from a Waiting list.
    pub picks: IntCounter,
    /// Offline messages, by outcome (`created`, `limited`).
    pub offline_messages: IntCounterVec,
    /// Offline-message notifications, by outcome (`sent`, `failed`).
    pub mail: IntCounterVec,
    /// Post-chat ratings stored, by queue and rating (`good`, `bad`).
    pub ratings: IntCounterVec,
    /// Transcripts e-mailed to visitors, by outcome (`sent`, `failed`).
    pub transcript_mails: IntCounterVec,
    /// The HTTP edge: connections, slow clients, logins.
    pub edge: EdgeMetrics,
    /// `/readyz` checks that failed or ran out of time, by dependency (redis, store).
    pub ready_check_failures: IntCounterVec,
    /// SQL store calls cut off by a time bound, by kind; handed to the store at start.
    pub store_timeouts: IntCounterVec,
    /// Agent requests and sockets refused because the token's session had ended.
    pub sessions_refused: IntCounter,
    /// Times an agent's sessions were ended, by reason.
    pub sessions_revoked: IntCounterVec,
    /// Agent sockets this node closed because of their agent's control messages, by reason.
    pub agent_sockets_closed: IntCounterVec,
    /// Files deleted from the file storage with their trashed chat.
    pub files_deleted: IntCounter,
    /// Webhook delivery attempts made by this node, by outcome.
    pub webhook_deliveries: IntCounterVec,
    /// Webhook endpoints disabled after repeated failures (cluster-wide, sampled).
    pub webhook_endpoints_disabled: IntGauge,
    /// Webhook events not yet handed out and deliveries waiting for a retry (cluster-wide).
    pub webhook_pending: IntGaugeVec,
    /// Rows (or files) the retention job deleted on this node, by kind of data.
    pub retention_purged: IntCounterVec,
    /// Retention job runs on this node, by outcome.
    pub retention_runs: IntCounterVec,
    /// Supervisor actions taken on this node, by action.
    pub supervisor_actions: IntCounterVec,
    /// Connections on this node watching the supervisors' monitor.
    pub monitor_watchers: IntGauge,
    /// Time to read one monitor snapshot from Redis (once per node per interval while watched).
    pub monitor_refresh: Histogram,
    /// Monitor reads that failed (Redis or the store); the watchers keep the last state.
    pub monitor_refresh_failures: IntCounter,
    /// Bytes of monitor frames handed to watchers on this node.
    pub monitor_bytes: IntCounter,
    /// Monitor changes a watcher skipped for its byte budget (it gets the whole monitor later).
    pub monitor_skipped: IntCounter,
}

/// The `limit` label values of `switchboard_limited_total`.
pub const LIMITS: [&str; 11] = [
    "new_visitors_ip",
    "sockets_visitor",
    "sockets_ip",
    "chat_requests_visitor",
    "chat_requests_ip",
    "page_views_visitor",
    "page_views_ip",
    "frames_connection",
    "frames_visitor",
    "frames_agent",
    "transcript",
];

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let connections = IntGaugeVec::new(
            Opts::new(
                "switchboard_connections",
                "Open WebSocket connections on this node.",
            ),
            &["role"],
        )
        .expect("valid metric");
        r.register(Box::new(connections.clone()))
            .expect("unique metric");
        let subscriptions = IntGauge::new(
            "switchboard_redis_subscriptions",
            "Redis channels this node is subscribed to.",
        )
        .expect("valid metric");
        r.register(Box::new(subscriptions.clone()))
            .expect("unique metric");
        let seconds = vec![
            0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0,
        ];
        let redis_latency = {
            let h = prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "switchboard_redis_command_seconds",
                    "Round trip of the node's main Redis operations: append (a participant's entry), request (a new chat request with its own routing pass), route (a routing pass for any other reason).",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5,
                ]),
                &["op"],
            )
            .expect("valid metric");
            r.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        Metrics {
            connections,
            messages: counter(
                &r,
                "switchboard_messages_total",
                "Chat messages stored through this node.",
            ),
            frames_rejected: counter_vec(
                &r,
                "switchboard_frames_rejected_total",
                "Client frames refused, by error code.",
                &["code"],
            ),
            chats_requested: counter(
                &r,
                "switchboard_chats_requested_total",
                "Chat requests created through this node.",
            ),
            chats_ended: counter_vec(
                &r,
                "switchboard_chats_ended_total",
                "Chats ended through this node, by who ended them.",
                &["by"],
            ),
            offers: counter(
                &r,
                "switchboard_offers_total",
                "Offers made by routing on this node.",
            ),
            offer_timeouts: counter(
                &r,
                "switchboard_offer_timeouts_total",
                "Offers not answered in time and re-routed.",
            ),
            denials: counter(
                &r,
                "switchboard_offer_denials_total",
                "Offers denied by agents and re-routed.",
            ),
            request_to_accept: histogram(
                &r,
                "switchboard_request_to_accept_seconds",
                "Time from a visitor's request to an agent's accept.",
                seconds.clone(),
            ),
            request_to_offer: histogram(
                &r,
                "switchboard_request_to_offer_seconds",
                "Time from a visitor's request to each offer of it (a re-offer after a deny or timeout counts from the request too).",
                seconds.clone(),
            ),
            entries_out: counter(
                &r,
                "switchboard_entries_delivered_total",
                "Transcript entries written to client sockets by this node (messages out).",
            ),
            agent_load: {
                let g = IntGauge::new("switchboard_agent_chats", "Chats offered to or running with agents (cluster-wide, sampled).").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            free_capacity: {
                let g = IntGauge::new("switchboard_agent_free_capacity", "Free chat slots of available agents (cluster-wide, sampled).").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            timers_fired: counter_vec(
                &r,
                "switchboard_timers_fired_total",
                "Redis timers fired by this node, by kind.",
                &["kind"],
            ),
            flush_jobs: counter_vec(
                &r,
                "switchboard_flush_jobs_total",
                "Flush jobs handled by this node, by outcome: written, already_written, gone, not_decided; locked (another transaction held the chat's rows past store.lock_timeout_ms: retried) and failed (retried).",
                &["outcome"],
            ),
            flush_duration: histogram(
                &r,
                "switchboard_flush_duration_seconds",
                "Time to flush a chat: reading its transcript from Redis, writing it to the SQL store (in a transaction of up to 8 chats) and removing its Redis keys.",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            history_search_duration: histogram(
                &r,
                "switchboard_history_search_duration_seconds",
                "Time to answer a history search (GET /api/history) from the SQL store's full-text and filter indexes, failed ones included.",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            ),
            subscriptions,
            slow_consumers: counter(
                &r,
                "switchboard_slow_consumers_total",
                "Connections closed because their outbound queue was full.",
            ),
            resyncs: counter_vec(
                &r,
                "switchboard_resyncs_total",
                "Times this node's pub/sub subscription may have missed live traffic and its connections caught up from the chats' streams, by cause.",
                &["cause"],
            ),
            resubscribe_failures: counter(
                &r,
                "switchboard_resubscribe_failures_total",
                "Failed attempts to subscribe this node's channels again after its subscriber connection to Redis came back (retried with a growing pause; live traffic for this node's clients is missed until one succeeds).",
            ),
            redis_state_lost: counter(
                &r,
                "switchboard_redis_state_lost_total",
                "Times this node found Redis's epoch changed (Redis lost its data: a restart without persistence, a flush); the clients of its live chats got chat_lost and close 4410.",
            ),
            redis_errors: counter(
                &r,
                "switchboard_redis_errors_total",
                "Redis commands that failed.",
            ),
            site_visitors: {
                let g = IntGauge::new(
                    "switchboard_site_visitors",
                    "Visitors on the site now (cluster-wide, sampled).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            visitor_changes: counter(
                &r,
                "switchboard_visitor_changes_total",
                "Site-visitor changes (arrive, page, update, leave) published by this node.",
            ),
            visitor_batches: counter(
                &r,
                "switchboard_visitor_batches_total",
                "Batches of site-visitor changes published by this node.",
            ),
            limited: {
                let c = counter_vec(
                    &r,
                    "switchboard_limited_total",
                    "Requests, frames and sockets refused by a limit on clients, by limit: new_visitors_ip, sockets_visitor, sockets_ip, chat_requests_visitor, chat_requests_ip, page_views_visitor, page_views_ip, frames_connection, frames_visitor, frames_agent, transcript.",
                    &["limit"],
                );
                // Every series exists from the start, so a rate or an alert sees the first one.
                for l in LIMITS {
                    c.with_label_values(&[l]);
                }
                c
            },
            visitor_list_dropped: counter(
                &r,
                "switchboard_visitor_list_dropped_total",
                "Site-visitor list changes (coalesced frames) not sent to a watching connection over its byte budget (abuse.visitor_list_bytes_per_second); it is told to read the list again.",
            ),
            visitor_list_bytes: counter(
                &r,
                "switchboard_visitor_list_bytes_total",
                "Bytes of site-visitor list changes sent to watching connections by this node.",
            ),
            invitations: counter_vec(
                &r,
                "switchboard_invitations_total",
                "Chat invitations to site visitors, by result (sent, accepted, declined, expired, gone).",
                &["result"],
            ),
            chats_waiting: gauge_vec(
                &r,
                "switchboard_chats_waiting",
                "Chat requests waiting in each queue (cluster-wide, sampled).",
                &["queue"],
            ),
            agents_available: gauge_vec(
                &r,
                "switchboard_agents_available",
                "Agents able to take an offer now in each queue (cluster-wide, sampled).",
                &["queue"],
            ),
            flush_backlog: {
                let g = IntGauge::new(
                    "switchboard_flush_jobs_pending",
                    "Flush jobs in the stream not yet acknowledged (cluster-wide, sampled).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            set_away: counter(
                &r,
                "switchboard_agents_set_away_total",
                "Agents set away after letting an offer time out (chat.away_on_missed_offer).",
            ),
            picks: counter(
                &r,
                "switchboard_waiting_picks_total",
                "Waiting requests taken by an agent from the Waiting list.",
            ),
            offline_messages: counter_vec(
                &r,
                "switchboard_offline_messages_total",
                "Offline messages left by visitors (created) or refused at the hourly allowance (limited).",
                &["outcome"],
            ),
            mail: counter_vec(
                &r,
                "switchboard_mail_notifications_total",
                "Offline-message e-mail notifications: sent, or failed (retried after mail.claim_idle_ms).",
                &["outcome"],
            ),
            ratings: counter_vec(
                &r,
                "switchboard_ratings_total",
                "Post-chat ratings stored, by queue and rating (good, bad); CSAT is good over all.",
                &["queue", "rating"],
            ),
            transcript_mails: counter_vec(
                &r,
                "switchboard_transcript_mails_total",
                "Chat transcripts e-mailed to visitors at their request: sent, or failed (the visitor is told to retry).",
                &["outcome"],
            ),
            drains: counter(
                &r,
                "switchboard_drains_total",
                "Times this node started draining.",
            ),
            presence_rechecks: counter_vec(
                &r,
                "switchboard_presence_rechecks_total",
                "Presence timers (grace, agentgone, unroutable) fired by this node, by whether their party was gone (acted on), still present on a live node or not yet judged because the cluster was settling after a Redis outage (both set again instead).",
                &["timer", "outcome"],
            ),
            presence_outages: counter(
                &r,
                "switchboard_presence_outages_total",
                "Redis outages found by this node's presence beat: no node could beat for a while, so presence timers waited for the nodes to re-assert their connections.",
            ),
            edge: EdgeMetrics::new(&r),
            ready_check_failures: counter_vec(
                &r,
                "switchboard_ready_check_failures_total",
                "/readyz checks that failed or did not answer within server.ready_timeout_ms, by dependency (redis, store).",
                &["dependency"],
            ),
            store_timeouts: counter_vec(
                &r,
                "switchboard_store_timeouts_total",
                "SQL store calls cut off by a time bound, by kind: lock (store.lock_timeout_ms), statement (store.statement_timeout_ms), idle_transaction (PostgreSQL ended a transaction left idle too long), acquire (no pool connection within store.connect_timeout_ms), call (no answer at all within connect + statement timeout).",
                &["kind"],
            ),
            sessions_refused: counter(
                &r,
                "switchboard_agent_sessions_refused_total",
                "Agent requests and sockets refused because the token's session had ended (logout, password reset, agent disabled or deleted).",
            ),
            sessions_revoked: counter_vec(
                &r,
                "switchboard_agent_sessions_revoked_total",
                "Times an agent's sessions were ended through this node, by reason (logout, password, disabled, deleted, admin).",
                &["reason"],
            ),
            agent_sockets_closed: counter_vec(
                &r,
                "switchboard_agent_sockets_closed_total",
                "Agent sockets this node closed because their sessions ended (revoked) or an admin changed the agent (changed).",
                &["reason"],
            ),
            files_deleted: counter(
                &r,
                "switchboard_files_deleted_total",
                "Chat files deleted from the file storage because their chat was trashed.",
            ),
            webhook_deliveries: counter_vec(
                &r,
                "switchboard_webhook_deliveries_total",
                "Webhook delivery attempts made by this node, by outcome (delivered; failed: retried later; given_up: retries exhausted; refused: the address is not allowed, retried; dropped: the endpoint was disabled or deleted).",
                &["outcome"],
            ),
            webhook_endpoints_disabled: {
                let g = IntGauge::new(
                    "switchboard_webhook_endpoints_disabled",
                    "Webhook endpoints disabled after repeated failures (cluster-wide, sampled).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            webhook_pending: gauge_vec(
                &r,
                "switchboard_webhook_pending",
                "Webhook work waiting (cluster-wide, sampled), by kind: events in the stream not yet finished, deliveries waiting for a retry.",
                &["kind"],
            ),
            retention_purged: counter_vec(
                &r,
                "switchboard_retention_purged_total",
                "Rows (files for kind files) the retention job deleted on this node, by kind of data.",
                &["kind"],
            ),
            retention_runs: counter_vec(
                &r,
                "switchboard_retention_runs_total",
                "Retention job runs on this node, by outcome (done; skipped: another node held the lease; failed: the store or Redis failed, tried again next interval).",
                &["outcome"],
            ),
            supervisor_actions: counter_vec(
                &r,
                "switchboard_supervisor_actions_total",
                "Supervisor actions taken on this node, by action (whisper; take_over; follow: a chat opened read-only).",
                &["action"],
            ),
            monitor_watchers: {
                let g = IntGauge::new(
                    "switchboard_monitor_watchers",
                    "Connections on this node watching the supervisors' monitor.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            monitor_refresh: histogram(
                &r,
                "switchboard_monitor_refresh_seconds",
                "Time to read one monitor snapshot from Redis and the store (once per node per interval while anyone watches).",
                vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            ),
            monitor_refresh_failures: counter(
                &r,
                "switchboard_monitor_refresh_failures_total",
                "Monitor reads that failed (Redis or the store unreachable); watchers keep the last state until the next read succeeds.",
            ),
            monitor_bytes: counter(
                &r,
                "switchboard_monitor_bytes_total",
                "Bytes of monitor frames (changes and renewed snapshots) handed to watching supervisors on this node.",
            ),
            monitor_skipped: counter(
                &r,
                "switchboard_monitor_skipped_total",
                "Monitor changes a watcher skipped for its byte budget (chat.monitor_bytes_per_second); it gets the whole monitor again once the budget allows.",
            ),
            redis_append: redis_latency.with_label_values(&["append"]),
            redis_latency,
            registry: r,
        }
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
