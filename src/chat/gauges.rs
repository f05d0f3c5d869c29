//! Cluster-wide gauges every node samples from Redis for its /metrics: chats waiting and
//! agents available per queue, flush jobs pending, agents' load and free capacity. Cheap: a
//! few commands every few seconds, two per queue and none per agent (the agents' sums are
//! kept by the routing scripts, see `RedisLayer::agent_totals`).

use super::Service;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(5);

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
    if let Ok(t) = svc.redis.agent_totals().await {
        m.agent_load.set(t.load);
        m.free_capacity.set(t.free);
    }
}
