//! The node's Prometheus registry and the metric families the other modules update.
//! Labels are low-cardinality only (role, code, kind, outcome); never chat or user ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

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
    pub subscriptions: IntGauge,
    pub slow_consumers: IntCounter,
    /// Times every local connection was told to resume, by why live traffic may have been lost.
    pub resyncs: IntCounterVec,
    /// Failed attempts to subscribe again after the subscriber connection came back.
    pub resubscribe_failures: IntCounter,
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
                "Flush jobs finished by this node, by outcome.",
                &["outcome"],
            ),
            flush_duration: histogram(
                &r,
                "switchboard_flush_duration_seconds",
                "Time to flush a chat: reading its transcript from Redis, writing it to the SQL store (in a transaction of up to 8 chats) and removing its Redis keys.",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
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
                "Times this node closed all its connections so they resume from Redis, because live pub/sub traffic may have been missed, by cause.",
                &["cause"],
            ),
            resubscribe_failures: counter(
                &r,
                "switchboard_resubscribe_failures_total",
                "Failed attempts to subscribe this node's channels again after its subscriber connection to Redis came back (retried with a growing pause; live traffic for this node's clients is missed until one succeeds).",
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
            drains: counter(
                &r,
                "switchboard_drains_total",
                "Times this node started draining.",
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
