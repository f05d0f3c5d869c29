//! Cluster-wide gauges every node samples from Redis for its /metrics: chats waiting and
//! agents available per queue, flush jobs pending, agents' load and free capacity. Cheap: a
//! few commands every few seconds.

use super::Service;
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(5);

/// Agent records read side by side in one batch.
const AGENTS_READ_AT_ONCE: usize = 256;

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    loop {
        sample(&svc).await;
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sample(svc: &Service) {
    let m = &svc.metrics;
    let queues = match svc.store.queues().await {
        Ok(q) => q,
        Err(_) => return,
    };
    for q in queues {
        if let Ok(n) = svc.redis.queue_len(&q).await {
            m.chats_waiting.with_label_values(&[&q]).set(n as i64);
        }
        if let Ok(n) = svc.redis.available_agents(&q).await {
            m.agents_available.with_label_values(&[&q]).set(n as i64);
        }
    }
    if let Ok(n) = svc.redis.flush_backlog().await {
        m.flush_backlog.set(n as i64);
    }
    // Load and free capacity over every agent the store knows (their live state is in Redis).
    // The records are read side by side, a bounded batch at a time (the commands pipeline on
    // the pooled connections): one round trip after another took a node 500 round trips every
    // sample at 500 agents.
    if let Ok(agents) = svc.store.agents().await {
        let (mut load, mut free) = (0i64, 0i64);
        for batch in agents.chunks(AGENTS_READ_AT_ONCE) {
            let ids: Vec<String> = batch.iter().map(|a| a.id.to_string()).collect();
            let records = join_all(ids.iter().map(|id| svc.redis.agent_record(id))).await;
            for r in records.into_iter().flatten() {
                let num = |k: &str| r.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                load += num("load");
                if r.get("status").map(String::as_str) == Some("available") {
                    free += (num("max") - num("load")).max(0);
                }
            }
        }
        m.agent_load.set(load);
        m.free_capacity.set(free);
    }
}
