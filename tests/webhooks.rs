//! Outgoing webhooks against a real HTTP receiver on a loopback port: events of a chat arrive
//! signed and once, across two nodes; a failing receiver gets the event again until it takes
//! it, once; a node killed mid-delivery loses nothing; an endpoint that keeps failing is
//! disabled and can be redelivered to once enabled; internal addresses are refused at
//! registration and at send; a pick and an offline message are events too.

mod common;

use common::accounts::admin;
use common::integrations::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::app::Running;

async fn register(node: &Running, token: &str, url: &str, events: &[&str]) -> Value {
    let (status, v) = post(
        &format!("{}/api/admin/webhooks", http(node)),
        json!({ "url": url, "secret": SECRET, "events": events }),
        Some(token),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(v.get("secret").is_some(), "the secret is shown once: {v}");
    assert!(v["endpoint"].get("secret").is_none(), "{v}");
    v["endpoint"].clone()
}

async fn deliveries(node: &Running, token: &str, endpoint: i64) -> Vec<Value> {
    let (status, v) = get(
        &format!("{}/api/admin/webhooks/{endpoint}/deliveries", http(node)),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["deliveries"].as_array().unwrap().clone()
}

/// Waits until the receiver has `n` delivered requests, then a little more, so that a
/// duplicate that was going to come has come.
async fn delivered_settled(rx: &Receiver, n: usize) -> Vec<Received> {
    eventually(&format!("{n} deliveries"), || async {
        (rx.delivered().len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    rx.delivered()
}

/// A whole chat across two nodes: every event type arrives once, signed, with its data.
async fn chat_events_arrive_signed_and_once(backend: Backend) {
    let cluster = Cluster::with(backend, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &a, "root").await;
    let all = [
        "chat.requested",
        "chat.accepted",
        "chat.ended",
        "interaction.decided",
    ];
    let endpoint = register(&a, &admin, &rx.url, &all).await;

    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (mut visitor, chat, vid, _) = requesting_visitor(&a, "Where is my order?").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    visitor
        .send(json!({"type": "send", "chat_id": chat, "client_msg_id": "v1", "text": "parcel 42"}))
        .await;
    agent.expect_text("parcel 42").await;
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    decide(&mut agent, &chat, "create").await;

    let got = delivered_settled(&rx, 4).await;
    assert_eq!(got.len(), 4, "each event exactly once: {got:#?}");
    assert_eq!(rx.received().len(), 4, "{:#?}", rx.received());
    for r in &got {
        assert!(r.signed, "signature: {r:?}");
        assert_eq!(r.attempt, 1);
        assert_eq!(r.body["id"], r.event_id.as_str());
        assert_eq!(r.body["type"], r.event_type.as_str());
        assert_eq!(r.body["data"]["chat_id"], chat.as_str());
    }
    let of = |t: &str| got.iter().find(|r| r.event_type == t).unwrap().body["data"].clone();
    let requested = of("chat.requested");
    assert_eq!(requested["visitor_id"], vid.as_str());
    assert_eq!(requested["question"], "Where is my order?");
    assert_eq!(requested["email"], "vera@example.com");
    assert!(of("chat.accepted")["agent_id"].is_i64());
    let ended = of("chat.ended");
    let texts: Vec<&str> = ended["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"parcel 42"), "{ended}");
    assert_eq!(ended["end_reason"], "Visitor ended the chat");
    let decided = of("interaction.decided");
    assert_eq!(decided["decision"], "create");
    let stored = cluster.store.message_by_chat(&chat).await.unwrap().unwrap();
    assert_eq!(decided["interaction_id"], json!(stored.interaction_id));
    assert_eq!(decided["message_id"], json!(stored.id));

    // The log on the other node shows the four, delivered.
    let log = deliveries(&b, &admin, endpoint["id"].as_i64().unwrap()).await;
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(log
        .iter()
        .all(|d| d["outcome"] == "delivered" && d["status"] == 204));
    let (_, audit) = get(&format!("{}/api/admin/audit", http(&b)), Some(&admin)).await;
    assert_eq!(audit["entries"][0]["action"], "webhook.create", "{audit}");
    assert_eq!(audit["entries"][0]["actor"], "root");
    cluster.cleanup().await;
}

sqlite_and_postgres!(chat_events_arrive_signed_and_once => chat_events_arrive_signed_and_once_sqlite, chat_events_arrive_signed_and_once_postgres);

/// A receiver that fails twice gets the event a third time, with the same id, and then no
/// more: the log shows failed, failed, delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_event_again_until_it_takes_it() {
    let cluster = Cluster::with(Backend::Sqlite, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::FailFirst(2)).await;
    let admin = admin(&cluster, &a, "root").await;
    let endpoint = register(&a, &admin, &rx.url, &["chat.requested"]).await;
    let (_v, chat, _, _) = requesting_visitor(&b, "hello").await;

    let got = delivered_settled(&rx, 1).await;
    assert_eq!(got.len(), 1);
    let all = rx.received();
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all
        .iter()
        .all(|r| r.event_id == format!("evt_{chat}_requested")));
    assert_eq!(
        all.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        all.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 500, 204]
    );
    let mut log = deliveries(&a, &admin, endpoint["id"].as_i64().unwrap()).await;
    log.reverse();
    let outcomes: Vec<&str> = log.iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, vec!["failed", "failed", "delivered"]);
    assert!(log[0]["error"].as_str().unwrap().starts_with("HTTP 500"));
    let (_, e) = get(
        &format!("{}/api/admin/webhooks/{}", http(&b), endpoint["id"]),
        Some(&admin),
    )
    .await;
    assert_eq!(
        e["consecutive_failures"], 0,
        "a success clears the count: {e}"
    );
    let (ma, mb) = (metrics_text(&http(&a)).await, metrics_text(&http(&b)).await);
    let total = |o: &str| {
        let series = format!("switchboard_webhook_deliveries_total{{outcome=\"{o}\"}}");
        metric(&ma, &series) + metric(&mb, &series)
    };
    assert_eq!((total("failed"), total("delivered")), (2.0, 1.0));
}

/// The node that took the event dies while the receiver holds its request: another node
/// takes the event over after the claim period and delivers it, with the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_does_not_lose_the_event() {
    let cluster = Cluster::with(Backend::Sqlite, fast_hooks).await;
    let a = cluster.node().await;
    let rx = Receiver::start(Plan::HangFirst).await;
    let admin = admin(&cluster, &a, "root").await;
    register(&a, &admin, &rx.url, &["chat.requested"]).await;
    let (_v, chat, _, _) = requesting_visitor(&a, "hello").await;
    eventually("the first request", || async {
        (!rx.received().is_empty()).then_some(())
    })
    .await;
    let node_a = a.service.node.clone();
    a.kill();

    let b = cluster.node().await;
    // Taken over once it has been idle for the claim period (4 s) at B's next look (2 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rx.delivered().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = delivered_settled(&rx, 1).await;
    assert_eq!(got.len(), 1, "{:#?}", rx.received());
    let all = rx.received();
    assert_eq!(
        all.len(),
        2,
        "the hung request, then the delivery: {all:#?}"
    );
    assert!(all
        .iter()
        .all(|r| r.event_id == format!("evt_{chat}_requested")));
    let token = agent_token(&b, "root").await;
    let (_, list) = get(&format!("{}/api/admin/webhooks", http(&b)), Some(&token)).await;
    let log = deliveries(&b, &token, list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(log.len(), 1, "the killed node logged nothing: {log:#?}");
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["node"], b.service.node.as_str());
    assert_ne!(log[0]["node"], node_a.as_str());
}

/// Two nodes read the same stream: in the normal case each event is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_each_event_once() {
    let cluster = Cluster::with(Backend::Sqlite, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &a, "root").await;
    register(&a, &admin, &rx.url, &["chat.requested"]).await;
    let mut chats = Vec::new();
    let mut visitors = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (v, chat, _, _) = requesting_visitor(node, "hello").await;
        visitors.push(v);
        chats.push(format!("evt_{chat}_requested"));
    }
    let got = delivered_settled(&rx, 20).await;
    let mut ids: Vec<String> = got.iter().map(|r| r.event_id.clone()).collect();
    ids.sort();
    chats.sort();
    assert_eq!(ids, chats, "each event once");
    assert_eq!(rx.received().len(), 20);
    assert!(got.iter().all(|r| r.signed && r.attempt == 1));
}

/// An endpoint that keeps failing is disabled after `disable_after_failures` attempts (no
/// more events go to it); enabled again, it takes a redelivery of the event with the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_and_can_be_redelivered_to() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        fast_hooks(s);
        s.webhooks.disable_after_failures = 3;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let failing = Receiver::start(Plan::Always(503)).await;
    let admin = admin(&cluster, &a, "root").await;
    let endpoint = register(&a, &admin, &failing.url, &["chat.requested"]).await;
    let id = endpoint["id"].as_i64().unwrap();
    let (_v, chat, _, _) = requesting_visitor(&b, "hello").await;

    let url = format!("{}/api/admin/webhooks/{id}", http(&b));
    let disabled = eventually("the endpoint disabled", || async {
        let (_, e) = get(&url, Some(&admin)).await;
        (e["enabled"] == false).then_some(e)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("3 failed attempts in a row"),
        "{disabled}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(failing.received().len(), 3, "no attempt after disabling");
    // A cluster-wide gauge: the node that disabled it knows at once, every node within 10 s.
    let gauge = "switchboard_webhook_endpoints_disabled";
    let (ma, mb) = (metrics_text(&http(&a)).await, metrics_text(&http(&b)).await);
    assert_eq!(metric(&ma, gauge).max(metric(&mb, gauge)), 1.0);
    let (_, audit) = get(
        &format!("{}/api/admin/audit?action=webhook.disabled", http(&a)),
        Some(&admin),
    )
    .await;
    assert_eq!(audit["entries"][0]["actor"], "system", "{audit}");
    assert_eq!(audit["entries"][0]["target"], format!("webhook:{id}"));

    // Disabled: a new event is not even queued for it.
    let (_v2, _chat2, _, _) = requesting_visitor(&a, "again").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(failing.received().len(), 3);
    // A redelivery to a disabled endpoint is refused.
    let redeliver = format!("{}/api/admin/webhooks/{id}/redeliver", http(&a));
    let event = format!("evt_{chat}_requested");
    let (status, v) = post(&redeliver, json!({ "event_id": event }), Some(&admin)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("wrong_state")),
        "{v}"
    );

    // Pointed at a receiver that works and enabled: the redelivery arrives, same id.
    let working = Receiver::start(Plan::Ok).await;
    let (status, e) = patch(&url, json!({ "url": working.url, "enabled": true }), &admin).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["endpoint"]["consecutive_failures"], 0);
    assert!(e["endpoint"]["disabled_reason"].is_null());
    let (status, v) = post(&redeliver, json!({ "event_id": event }), Some(&admin)).await;
    assert_eq!(status, 202, "{v}");
    let got = delivered_settled(&working, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id, event);
    assert_eq!(got[0].attempt, 4, "counted on from the three failures");
    assert!(got[0].signed);
    let (status, _) = post(&redeliver, json!({ "event_id": "evt_nope" }), Some(&admin)).await;
    assert_eq!(status, 404);
}

/// Internal addresses: refused at registration without the allow-list, and at send by a node
/// whose rules do not allow them (the name is resolved and each address checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_at_registration_and_at_send() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    // Default rules, but a quick take-over: the lenient node below is killed in-process, and
    // its Redis connection may still take the event for its aborted reader, as a dead node's.
    let strict = cluster
        .node_with(|s| s.webhooks.claim_idle_ms = 1_000)
        .await;
    let admin = admin(&cluster, &strict, "root").await;
    let url = format!("{}/api/admin/webhooks", http(&strict));
    for bad in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://localhost:9/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ] {
        let (status, v) = post(
            &url,
            json!({ "url": bad, "events": ["chat.requested"] }),
            Some(&admin),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_field")),
            "{bad}: {v}"
        );
    }
    let (status, v) = post(
        &url,
        json!({ "url": "https://example.com/hook", "events": ["chat.nope"] }),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let agent_id = cluster.agent("plain", 1).await;
    let _ = agent_id;
    let plain = agent_token(&strict, "plain").await;
    let (status, _) = get(&url, Some(&plain)).await;
    assert_eq!(status, 403, "agents do not manage webhooks");

    // Registered through a node that allows loopback, sent by one that does not.
    let rx = Receiver::start(Plan::Ok).await;
    let lenient = cluster.node_with(fast_hooks).await;
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    let endpoint = register(&lenient, &admin, &by_name, &["chat.requested"]).await;
    lenient.kill();
    let (_v, _chat, _, _) = requesting_visitor(&strict, "hello").await;
    let log = eventually("a refused attempt", || async {
        let log = deliveries(&strict, &admin, endpoint["id"].as_i64().unwrap()).await;
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert_eq!(log[0]["outcome"], "refused", "{log:#?}");
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .contains("internal address"),
        "{log:#?}"
    );
    assert!(rx.received().is_empty(), "nothing reached the receiver");
}

/// An invitation the visitor accepts is a `chat.accepted` too, marked proactive; an
/// invitation that is never answered sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_invitation_is_a_proactive_chat_accepted_event() {
    let cluster = Cluster::with(Backend::Sqlite, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &a, "root").await;
    register(&a, &admin, &rx.url, &["chat.requested", "chat.accepted"]).await;
    let mut agent = available_agent(&cluster, &b, "ivy", 2).await;
    let (vid, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    v.send(json!({"type": "page_view", "url": "https://shop.example/shoes"}))
        .await;
    v.send(json!({"type": "ping"})).await;
    v.expect("pong").await;
    agent
        .send(json!({"type": "invite", "visitor_id": vid, "message": "Need a size?"}))
        .await;
    let chat = v.expect("invitation").await["chat_id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.received().is_empty(), "an invitation is no event yet");
    v.send(json!({"type": "accept_invitation", "chat_id": chat}))
        .await;
    v.expect("chat_started").await;
    let got = delivered_settled(&rx, 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let data = &got[0].body["data"];
    assert_eq!(got[0].event_type, "chat.accepted");
    assert_eq!(data["chat_id"], chat.as_str());
    assert_eq!(data["visitor_id"], vid.as_str());
    assert_eq!(data["proactive"], true);
    assert_eq!(
        data["agent_id"].to_string(),
        agent.welcome["id"].as_str().unwrap()
    );
}

/// A request an agent picks from the Waiting list is a `chat.accepted` like an accepted offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_from_the_waiting_list_is_a_chat_accepted_event() {
    let cluster = Cluster::with(Backend::Sqlite, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &a, "root").await;
    register(&a, &admin, &rx.url, &["chat.accepted"]).await;
    // Away: routing offers it nothing, so the request waits for a pick.
    let mut agent = available_agent(&cluster, &b, "pia", 2).await;
    set_status(&mut agent, "away").await;
    let (mut visitor, chat, vid, _) = requesting_visitor(&a, "Anyone?").await;
    let c = chat.clone();
    agent
        .expect_where("the request in the Waiting list", move |f| {
            f["type"] == "waiting"
                && f["requests"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|i| i["chat_id"] == c.as_str()))
        })
        .await;
    agent.send(json!({"type": "pick", "chat_id": chat})).await;
    visitor.expect("chat_started").await;
    let got = delivered_settled(&rx, 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].signed);
    assert_eq!(got[0].event_type, "chat.accepted");
    let data = &got[0].body["data"];
    assert_eq!(data["chat_id"], chat.as_str());
    assert_eq!(data["visitor_id"], vid.as_str());
    assert_eq!(data["proactive"], false);
    assert_eq!(
        data["agent_id"].to_string(),
        agent.welcome["id"].as_str().unwrap()
    );
    cluster.cleanup().await;
}

/// A message left while nobody is there is an `offline_message.created`, once: the outbox timer
/// the node set before storing it is gone once the event is appended; a timer left behind (the
/// node died in between) appends the same event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_message_is_an_event_once() {
    let cluster = Cluster::with(Backend::Postgres, fast_hooks).await;
    cluster.store.ensure_queue("general").await.unwrap();
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = admin(&cluster, &b, "root").await;
    register(&b, &admin, &rx.url, &["offline_message.created"]).await;
    let (vid, token) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &token).await;
    v.send(
        json!({"type": "leave_message", "name": "Vera", "email": "Vera@Example.com",
                  "message": "Please call me back", "page_url": "https://shop.example/contact"}),
    )
    .await;
    let uid = v.expect("message_left").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = delivered_settled(&rx, 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].signed);
    assert_eq!(got[0].event_type, "offline_message.created");
    assert_eq!(got[0].event_id, format!("evt_{uid}_offline"));
    let data = &got[0].body["data"];
    assert_eq!(data["uid"], uid.as_str());
    assert_eq!(data["visitor_id"], vid.as_str());
    assert_eq!(data["queue"], "general");
    assert_eq!(data["name"], "Vera");
    assert_eq!(data["email"], "Vera@Example.com");
    assert_eq!(data["message"], "Please call me back");
    assert_eq!(data["page_url"], "https://shop.example/contact");
    assert!(data["interaction_id"].as_i64().is_some(), "{data}");
    // Past the outbox timer's due time (chat.timer_lease_ms): still one event.
    tokio::time::sleep(Duration::from_millis(
        cluster.settings.chat.timer_lease_ms + 500,
    ))
    .await;
    assert_eq!(rx.delivered().len(), 1, "{:#?}", rx.delivered());
    let timers = redis_cli(&[
        "zrange",
        &format!("{}{{r}}:timers", cluster.prefix),
        "0",
        "-1",
    ]);
    assert!(!timers.contains(&uid), "{timers}");

    // What a node that died between the insert and the append leaves: the timer, which any
    // node fires; the event comes (again, with the same id), and once.
    let due = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis())
    .to_string();
    redis_cli(&[
        "zadd",
        &format!("{}{{r}}:timers", cluster.prefix),
        &due,
        &format!("offline_hook:{uid}"),
    ]);
    let got = delivered_settled(&rx, 2).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].event_id, got[0].event_id);
    assert_eq!(got[1].body, got[0].body);
    cluster.cleanup().await;
}
