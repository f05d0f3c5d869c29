//! The presence scripts' rules after a Redis outage, on a real Redis, with the nodes' beats
//! and a timer's check sent by hand at chosen times (milliseconds from 0): so that a beat sent
//! during the outage and run after it, with the earlier time it was sent at, can be placed
//! exactly. Nodes of a running cluster beat on their own and could not be held to that order.

mod common;

use common::*;
use switchboard::redis::{PresenceClock, RedisLayer};

const CLOCK: PresenceClock = PresenceClock {
    node_ttl_ms: 1_500,
    gap_ms: 1_000,
    settle_ms: 3_000,
    here_ttl_ms: 60_000,
};

struct Scripts {
    redis: RedisLayer,
}

impl Scripts {
    async fn new() -> Scripts {
        let prefix = format!("t-{}", unique());
        let redis = RedisLayer::connect(&redis_url(), &prefix, 2, 1024)
            .await
            .expect("redis");
        Scripts { redis }
    }

    /// One batch of `node`'s beat at `now` holding one connection of `party`; `last` completes
    /// the beat.
    async fn beat(&self, node: &str, now: i64, last: bool, party: &str) {
        self.redis
            .presence_beat(
                node,
                now,
                &CLOCK,
                last,
                &[(party.to_string(), 1, now as u64)],
                &[],
            )
            .await
            .expect("beat");
    }

    /// What a grace timer of `party` that fires at `now` decides.
    async fn check(&self, party: &str, now: i64) -> String {
        let member = format!("grace:{}", &party[2..]);
        self.redis
            .presence_check(party, &member, now, &CLOCK, 500)
            .await
            .expect("check")
    }
}

/// Node B's first beat after the outage was sent during it (at 6,500) and ran after it; B's
/// next beat is late. Its visitor waits for that beat while the cluster settles, and is judged
/// only when the settle time is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_first_beat_after_an_outage_is_stale_is_waited_for() {
    let s = Scripts::new().await;
    s.beat("a", 0, true, "v:a1").await;
    s.beat("b", 0, true, "v:b1").await;
    assert_eq!(s.check("v:b1", 100).await, "present");
    // The outage ends; A's first batch finds it (settling until 9,000).
    s.beat("a", 6_000, false, "v:a1").await;
    s.beat("b", 6_500, true, "v:b1").await;
    s.beat("a", 6_700, true, "v:a1").await;
    assert_eq!(s.check("v:b1", 7_000).await, "present");
    s.beat("a", 7_500, true, "v:a1").await;
    // B's beat of 6,500 is older than the node TTL now, and B has not beaten since.
    assert_eq!(s.check("v:b1", 8_100).await, "settling");
    // B beats again (and A): its visitor is there.
    s.beat("a", 8_200, true, "v:a1").await;
    s.beat("b", 8_200, true, "v:b1").await;
    assert_eq!(s.check("v:b1", 8_300).await, "present");
    // The wait is bounded: once B's beats stop (A beating on) and the settle time is over,
    // its visitor is gone.
    for now in (9_000..=10_800).step_by(900) {
        s.beat("a", now, true, "v:a1").await;
    }
    assert_eq!(s.check("v:b1", 11_000).await, "gone");
}

/// B's beat sent during the outage (at 5,000) runs first after it and finds the outage; A's
/// first batch (7,000) finds another, since B's beat moved the pulse to 5,000. The second does
/// not replace the first: A, beating before the outage and not done re-asserting, is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_found_twice_still_waits_for_the_nodes_beating_before_the_first() {
    let s = Scripts::new().await;
    s.beat("a", 0, true, "v:a1").await;
    s.beat("b", 0, true, "v:b1").await;
    s.beat("b", 5_000, true, "v:b1").await;
    s.beat("a", 7_000, false, "v:a1").await;
    s.beat("b", 7_050, true, "v:b1").await;
    assert_eq!(s.check("v:a1", 7_100).await, "settling");
    s.beat("a", 7_200, true, "v:a1").await;
    assert_eq!(s.check("v:a1", 7_300).await, "present");
}
