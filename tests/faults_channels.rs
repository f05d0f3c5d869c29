//! Delivery while Redis refuses a node its channels for a while (an ACL change that also cuts
//! its subscriber connection; in production a failover that is not over yet), on real
//! processes: the node's clients stay connected and catch up from the streams, and what was
//! published meanwhile (a message, a logout, an admin's change to an agent) still reaches them.

mod common;

use common::*;
use serde_json::json;
use switchboard::app::Running;

/// The subscriber connection comes back but Redis refuses to subscribe it again (here an ACL
/// change that also cut the connection; in production a failover that is not over yet): the
/// node's connections catch up at once with what the streams hold, the node keeps trying with
/// a growing pause, and once subscribing succeeds they catch up again and it follows its
/// channels as before; the clients stay connected throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_resubscribe_is_retried_until_the_node_follows_its_channels_again() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, acl) = node_as_own_redis_user(&cluster).await;
    let user = acl.0.clone();
    let b = cluster.node().await;
    let mut agent = available_agent(&cluster, &b, "ren", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "q").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    let resyncs = || {
        a.service
            .metrics
            .resyncs
            .with_label_values(&["reconnected"])
            .get()
    };

    refuse_channels(&a, &user).await;
    eventually("a catch-up at once", || async {
        (resyncs() == 1).then_some(())
    })
    .await;
    // Written while node A follows nothing: the visitor gets it once node A subscribes again.
    agent
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "a0", "text": "while refused"}))
        .await;
    agent.expect("ack").await;
    let queue_channel = a.service.redis.keys.queue_channel();
    let numsub = redis_cli(&["PUBSUB", "SHARDNUMSUB", &queue_channel]);
    assert_eq!(numsub.lines().nth(1), Some("1"), "only node B: {numsub:?}");

    // Channels allowed again: the next attempt succeeds, the clients are told once more, and
    // node A follows the queue channel again.
    allow_channels(&user);
    eventually("a second resync after subscribing again", || async {
        (resyncs() == 2).then_some(())
    })
    .await;
    let numsub = redis_cli(&["PUBSUB", "SHARDNUMSUB", &queue_channel]);
    assert_eq!(numsub.lines().nth(1), Some("2"), "{numsub:?}");

    // The chat goes on both ways through node A, on the same connection.
    visitor.expect_text("while refused").await;
    assert_eq!(visitor.closed, None);
    both_ways(&mut visitor, &mut agent, &chat, "back", "welcome back").await;
    cluster.cleanup().await;
}

/// A logout and an admin's change published while a node follows nothing (its subscriber
/// connection is back but its channels are refused) never reach that node as `revoked` and
/// `changed` messages. The catch-up that follows a lapse checks each agent socket's session and
/// record again: the logged-out agent's socket on that node is closed with 4401, the changed
/// agent's with 4409 (to reconnect with its new settings), all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_messages_missed_in_a_lapse_still_reach_the_agents_sockets() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, acl) = node_as_own_redis_user(&cluster).await;
    let user = acl.0.clone();
    let b = cluster.node().await;
    let boss = accounts::admin(&cluster, &b, "boss").await;
    cluster.agent("rae", 1).await;
    let sam_id = cluster.agent("sam", 1).await;
    let token = agent_token(&a, "rae").await;
    let mut rae = Client::agent(&a, &token).await;
    rae.expect("status").await;
    let mut sam = Client::agent(&a, &agent_token(&a, "sam").await).await;
    sam.expect("status").await;

    refuse_channels(&a, &user).await;
    // Through node B while node A follows nothing: rae logs out, an admin changes sam.
    let out = reqwest::Client::new()
        .post(format!("{}/api/agent/logout", http(&b)))
        .bearer_auth(&token)
        .send()
        .await
        .expect("http");
    assert_eq!(out.status().as_u16(), 204);
    let (status, changed) = accounts::call(
        reqwest::Method::PATCH,
        &format!("{}/api/admin/agents/{sam_id}", http(&b)),
        Some(json!({"max_chats": 3})),
        Some(&boss),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    allow_channels(&user);
    assert_eq!(rae.expect_close().await, 4401);
    assert_eq!(sam.expect_close().await, 4409);
    cluster.cleanup().await;
}

/// Takes a node's channels away from its Redis user: Redis closes its subscriber connection
/// (clients subscribed to channels they may no longer use), fred reconnects at once, and
/// subscribing again is refused (NOPERM) until `allow_channels`. Waits for the first refusal.
async fn refuse_channels(node: &Running, user: &str) {
    let revoked = redis_cli(&["ACL", "SETUSER", user, "resetchannels"]);
    assert_eq!(revoked.trim(), "OK", "{revoked}");
    eventually("a refused resubscribe", || async {
        (node.service.metrics.resubscribe_failures.get() >= 1).then_some(())
    })
    .await;
}

fn allow_channels(user: &str) {
    let restored = redis_cli(&["ACL", "SETUSER", user, "&*"]);
    assert_eq!(restored.trim(), "OK", "{restored}");
}

/// A node that logs in to Redis as a user of its own (all keys, channels and commands), so a
/// test can change only that node's permissions; the user goes when the guard drops.
async fn node_as_own_redis_user(cluster: &Cluster) -> (Running, AclUser) {
    let user = format!(
        "sb-acl-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let granted = redis_cli(&["ACL", "SETUSER", &user, "on", ">pw", "~*", "&*", "+@all"]);
    assert_eq!(granted.trim(), "OK", "{granted}");
    let guard = AclUser(user.clone());
    let node = cluster
        .node_with(|s| {
            s.redis.url = redis_url().replacen("redis://", &format!("redis://{user}:pw@"), 1)
        })
        .await;
    (node, guard)
}

/// A Redis user a test created, deleted when the test ends, passed or not.
struct AclUser(String);

impl Drop for AclUser {
    fn drop(&mut self) {
        redis_cli(&["ACL", "DELUSER", &self.0]);
    }
}
