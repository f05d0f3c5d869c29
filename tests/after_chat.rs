//! After the chat: the visitor rates it (once, own chats only, within the window, limited per
//! visitor across nodes), before or after the flush, and the rating is shown to the agent live,
//! in `GET /api/interactions/{id}`, in the metrics and as a signed `rating.submitted` webhook
//! event on a real HTTP receiver; the transcript is e-mailed to a real SMTP server (aiosmtpd).

mod common;

use common::integrations::*;
use common::smtp::SmtpSink;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::app::Running;
use switchboard::store::PurgeKind;

async fn rate(node: &Running, chat: &str, token: &str, body: Value) -> (u16, Value) {
    post(
        &format!("{}/api/visitor/chats/{chat}/rating", http(node)),
        body,
        Some(token),
    )
    .await
}

async fn mail(node: &Running, chat: &str, token: &str, email: &str) -> (u16, Value) {
    post(
        &format!("{}/api/visitor/chats/{chat}/transcript", http(node)),
        json!({ "email": email }),
        Some(token),
    )
    .await
}

/// A chat on `a` (visitor) and `b` (agent), ended by the visitor; returns (visitor client,
/// agent client, chat id, visitor token).
async fn ended_chat(agent: &mut Client, a: &Running, text: &str) -> (Client, String, String) {
    let (mut v, chat, _, token) = requesting_visitor(a, "hello").await;
    accept_offer(agent, &mut v, &chat).await;
    v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "m1", "text": text}))
        .await;
    agent.expect_text(text).await;
    v.send(json!({"type": "end", "chat_id": chat})).await;
    let c = chat.clone();
    agent
        .expect_where("chat_ended", move |f| {
            f["type"] == "chat_ended" && f["chat_id"] == c.as_str()
        })
        .await;
    (v, chat, token)
}

async fn decide_and_flush(cluster: &Cluster, agent: &mut Client, chat: &str) -> i64 {
    decide(agent, chat, "create").await;
    eventually("the chat flushed", || async {
        cluster
            .store
            .message_by_chat(chat)
            .await
            .ok()
            .flatten()
            .and_then(|m| m.interaction_id)
    })
    .await
}

async fn rating_of(node: &Running, token: &str, interaction: i64) -> Value {
    let (status, v) = get(
        &format!("{}/api/interactions/{interaction}", http(node)),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["messages"][0]["rating"].clone()
}

async fn rated_once_before_or_after_the_flush(backend: Backend) {
    let cluster = Cluster::with(backend, fast_hooks).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let rx = Receiver::start(Plan::Ok).await;
    let admin = common::accounts::admin(&cluster, &a, "root").await;
    let (status, v) = post(
        &format!("{}/api/admin/webhooks", http(&a)),
        json!({ "url": rx.url, "secret": SECRET, "events": ["rating.submitted"] }),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let agent_http = agent_token(&b, "ann").await;

    // Rated before the agent decided (the chat is still in Redis), on the other node.
    let (_v1, first, token1) = ended_chat(&mut agent, &a, "parcel 42").await;
    let (status, v) = rate(&b, &first, &token1, json!({"rating": "meh"})).await;
    assert_eq!((status, v["code"].as_i64()), (400, Some(4003)), "{v}");
    let (status, v) = rate(
        &b,
        &first,
        &token1,
        json!({"rating": "good", "comment": "Quick and kind"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["queue"], "general");
    let rated = agent.expect("rated").await;
    assert_eq!(rated["chat_id"], first.as_str());
    assert_eq!(rated["rating"], "good");
    assert_eq!(rated["comment"], "Quick and kind");
    // Once: a second rating, from either node, is refused and changes nothing.
    let (status, v) = rate(&a, &first, &token1, json!({"rating": "bad"})).await;
    assert_eq!((status, v["code"].as_i64()), (409, Some(4006)), "{v}");
    // Someone else's chat looks like one that cannot be rated.
    let (_, other) = visitor_token(&a).await;
    let (status, v) = rate(&a, &first, &other, json!({"rating": "bad"})).await;
    assert_eq!((status, v["code"].as_i64()), (404, Some(4004)), "{v}");
    let first_interaction = decide_and_flush(&cluster, &mut agent, &first).await;
    let r = rating_of(&a, &agent_http, first_interaction).await;
    assert_eq!(r["rating"], "good", "{r}");
    assert_eq!(r["comment"], "Quick and kind");

    // Rated after the flush: Redis has forgotten the chat, the ticket has not.
    let (_v2, second, token2) = ended_chat(&mut agent, &a, "refund please").await;
    let second_interaction = decide_and_flush(&cluster, &mut agent, &second).await;
    eventually("redis forgot the chat", || async {
        let keys = cluster.redis_keys().await;
        (!keys.iter().any(|k| k.contains(&format!("chat:{second}")))).then_some(())
    })
    .await;
    let (status, v) = rate(&a, &second, &token2, json!({"rating": "bad"})).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        rating_of(&b, &agent_http, second_interaction).await["rating"],
        "bad"
    );
    let (status, _) = rate(&b, &second, &token2, json!({"rating": "good"})).await;
    assert_eq!(status, 409);

    // Counted by queue and rating (summed over the nodes that stored them).
    let count = |text: &str, rating: &str| {
        metric(
            text,
            &format!("switchboard_ratings_total{{queue=\"general\",rating=\"{rating}\"}}"),
        )
    };
    let (ta, tb) = (metrics_text(&http(&a)).await, metrics_text(&http(&b)).await);
    assert_eq!(count(&ta, "good") + count(&tb, "good"), 1.0);
    assert_eq!(count(&ta, "bad") + count(&tb, "bad"), 1.0);

    // One signed event per rating.
    eventually("two rating events", || async {
        (rx.delivered().len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let got = rx.delivered();
    assert_eq!(got.len(), 2, "{got:#?}");
    for chat in [&first, &second] {
        let r = got
            .iter()
            .find(|r| r.body["data"]["chat_id"] == chat.as_str())
            .expect("an event per rated chat");
        assert!(r.signed);
        assert_eq!(r.event_type, "rating.submitted");
        assert_eq!(r.event_id, format!("evt_{chat}_rated"));
        assert_eq!(r.body["data"]["chat_id"], chat.as_str());
        assert_eq!(r.body["data"]["queue"], "general");
    }
    let (_, types) = get(
        &format!("{}/api/admin/webhooks/event-types", http(&b)),
        Some(&admin),
    )
    .await;
    let listed = types.to_string();
    assert!(
        listed.contains(r#""emitted":true,"name":"rating.submitted""#)
            || listed.contains(r#""name":"rating.submitted","emitted":true"#),
        "{listed}"
    );

    // Retention takes a chat's rating with its transcript.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1_000;
    cluster
        .store
        .purge_batch(PurgeKind::Transcripts, later, 100)
        .await
        .unwrap();
    let left = cluster
        .store
        .ratings_of(&[first.clone(), second.clone()])
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    cluster.cleanup().await;
}

sqlite_and_postgres!(rated_once_before_or_after_the_flush => a_rating_is_stored_once_before_or_after_the_flush_sqlite, a_rating_is_stored_once_before_or_after_the_flush_postgres);

/// The window closes; a request nobody took has nothing to rate; ratings are limited per
/// visitor over every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_close_after_the_window_and_are_limited_per_visitor_across_nodes() {
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.chat.after_chat_window_ms = 1_500;
        s.abuse.ratings_per_visitor_burst = 2;
        s.abuse.ratings_per_visitor_per_hour = 1;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (_v, chat, token) = ended_chat(&mut agent, &a, "hi").await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let (status, v) = rate(&a, &chat, &token, json!({"rating": "good"})).await;
    assert_eq!(status, 404, "the window has closed: {v}");

    // Cancelled while waiting: nobody to rate.
    set_status(&mut agent, "away").await;
    let (mut w, waiting, _, wtoken) = requesting_visitor(&a, "anyone?").await;
    w.send(json!({"type": "end", "chat_id": waiting})).await;
    w.expect("chat_ended").await;
    let (status, _) = rate(&b, &waiting, &wtoken, json!({"rating": "bad"})).await;
    assert_eq!(status, 404);

    // The third attempt of this visitor (over both nodes) meets the burst.
    let (status, _) = rate(&b, &waiting, &wtoken, json!({"rating": "bad"})).await;
    assert_eq!(status, 404);
    let (status, v) = rate(&a, &waiting, &wtoken, json!({"rating": "bad"})).await;
    assert_eq!((status, v["code"].as_i64()), (429, Some(4102)), "{v}");
    cluster.cleanup().await;
}

/// "E-mail me this transcript": the visitor-visible transcript reaches a real SMTP server, from
/// either node; the visitor is limited across nodes; a chat not theirs is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_is_emailed_to_the_visitor_and_limited_across_nodes() {
    let port = SmtpSink::free_port();
    let sink = SmtpSink::start(port).await;
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
        s.mail.from = "chat@example.com".into();
        s.mail.timeout_ms = 2_000;
        s.abuse.transcript_mails_per_visitor_burst = 2;
        s.abuse.transcript_mails_per_visitor_per_hour = 1;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (status, session) = post(
        &format!("{}/api/visitor/session", http(&a)),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(session["transcript_mail"], true, "{session}");
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (_v, chat, token) = ended_chat(&mut agent, &a, "my parcel 42 is late").await;

    let (status, v) = mail(&b, &chat, &token, "not an address").await;
    assert_eq!(status, 400, "{v}");
    let (_, other) = visitor_token(&a).await;
    let (status, _) = mail(&a, &chat, &other, "x@example.com").await;
    assert_eq!(status, 404);
    let (status, v) = mail(&b, &chat, &token, "vera@example.com").await;
    assert_eq!(status, 200, "{v}");
    let got = eventually("the e-mail", || async {
        sink.received().into_iter().next()
    })
    .await;
    assert!(got.contains("To: vera@example.com"), "{got}");
    assert!(got.contains("Subject: Your chat transcript"), "{got}");
    assert!(got.contains("Vera: my parcel 42 is late"), "{got}");
    assert!(got.contains("Visitor ended the chat"), "{got}");

    // Third request of this visitor, on the other node: limited (the second used the burst).
    let (status, v) = mail(&a, &chat, &token, "vera@example.com").await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = mail(&b, &chat, &token, "vera@example.com").await;
    assert_eq!((status, v["code"].as_i64()), (429, Some(4102)), "{v}");
    let sent = |t: &str| metric(t, "switchboard_transcript_mails_total{outcome=\"sent\"}");
    let (ta, tb) = (metrics_text(&http(&a)).await, metrics_text(&http(&b)).await);
    assert_eq!(sent(&ta) + sent(&tb), 2.0);
    eventually("both e-mails", || async {
        (sink.received().len() == 2).then_some(())
    })
    .await;
    drop(sink);
    cluster.cleanup().await;
}

/// Without an SMTP server configured the widget is told it cannot work here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mail_the_transcript_cannot_be_emailed() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (_, session) = post(
        &format!("{}/api/visitor/session", http(&a)),
        json!({}),
        None,
    )
    .await;
    assert_eq!(session["transcript_mail"], false);
    assert!(session["files"]["allowed_types"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let (_v, chat, token) = ended_chat(&mut agent, &a, "hi").await;
    let (status, v) = mail(&a, &chat, &token, "vera@example.com").await;
    assert_eq!((status, v["code"].as_i64()), (503, Some(4501)), "{v}");
    cluster.cleanup().await;
}
