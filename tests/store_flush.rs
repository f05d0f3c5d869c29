//! Writing decided chats to the SQL store, on SQLite and PostgreSQL: each behaviour is one test
//! body, run on a fresh SQLite file and in a fresh PostgreSQL schema
//! (`tests/common/store_backends.rs`): every decision, duplicates and concurrent or batched
//! flushes written once.
//!
//! The last test runs the flush workers of two real nodes (Redis and PostgreSQL) on a burst of
//! chats decided at once.

mod common;

use common::store_backends::{entry, transcript, written};
use switchboard::store::{FlushOutcome, Store, StoreError, TranscriptRecord};

on_both_backends!(
    each_decision_is_written,
    add_to_another_contacts_interaction_falls_back,
    same_chat_twice_is_written_once,
    concurrent_flushes_write_once,
    batches_fall_back_per_chat,
    many_concurrent_batched_flushes_land_once,
);

async fn each_decision_is_written(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");

    // create: a new interaction named after the question.
    let create = transcript("chat-create", "v1", None, "create");
    let (create_msg, create_int) = written(store.write_transcript(&create).await.unwrap());
    let create_int = create_int.expect("create makes an interaction");
    let msg = store
        .message_by_chat("chat-create")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(msg.id, create_msg);
    assert_eq!(msg.interaction_id, Some(create_int));
    assert_eq!(msg.entries, create.entries);
    assert_eq!(msg.agent_id, Some(7));
    assert_eq!(msg.queue, "support");
    assert_eq!(
        (msg.started_at, msg.accepted_at, msg.ended_at),
        (1_000, Some(1_500), 9_000)
    );
    assert_eq!(msg.end_reason, "agent_ended");
    assert_eq!(msg.decision, "create");
    assert_eq!((msg.decided_by, msg.decided_at), (Some(7), 10_000));
    assert!(!msg.trashed);
    let (interaction, messages) = store
        .interaction(create_int)
        .await
        .unwrap()
        .expect("interaction");
    assert_eq!(interaction.subject, "Question of chat-create");
    assert_eq!(interaction.contact_id, msg.contact_id);
    assert_eq!(interaction.created_by, Some(7));
    assert!(!interaction.auto_kept);
    assert_eq!(messages, vec![msg.clone()]);
    let contact = store
        .contact_for("v1", None)
        .await
        .unwrap()
        .expect("contact");
    assert_eq!(contact.id, msg.contact_id);
    assert_eq!(contact.visitor_id.as_deref(), Some("v1"));

    // add: joins the existing interaction of the same contact.
    let mut add = transcript("chat-add", "v1", None, "add");
    add.interaction_id = Some(create_int);
    add.started_at = 2_000;
    let (_, add_int) = written(store.write_transcript(&add).await.unwrap());
    assert_eq!(add_int, Some(create_int));
    let (_, messages) = store.interaction(create_int).await.unwrap().unwrap();
    let chats: Vec<_> = messages.iter().map(|m| m.chat_id.as_str()).collect();
    assert_eq!(chats, vec!["chat-create", "chat-add"]);

    // keep: a new, auto-kept interaction named after the first visitor message.
    let mut keep = transcript("chat-keep", "v1", None, "keep");
    keep.question = None;
    keep.decided_by = None;
    let long = "x".repeat(200);
    keep.entries = vec![entry(1, "agent", "Hi there"), entry(2, "visitor", &long)];
    let (_, keep_int) = written(store.write_transcript(&keep).await.unwrap());
    let (kept, _) = store.interaction(keep_int.unwrap()).await.unwrap().unwrap();
    assert!(kept.auto_kept);
    assert_eq!(kept.created_by, None);
    assert_eq!(kept.subject, "x".repeat(120));

    // trash: stored, but in no interaction.
    let mut trash = transcript("chat-trash", "v1", None, "trash");
    trash.decided_by = Some(9);
    trash.decided_at = 12_345;
    let (trash_msg, trash_int) = written(store.write_transcript(&trash).await.unwrap());
    assert_eq!(trash_int, None);
    let msg = store.message_by_chat("chat-trash").await.unwrap().unwrap();
    assert_eq!(msg.id, trash_msg);
    assert!(msg.trashed);
    assert_eq!(msg.interaction_id, None);
    assert_eq!((msg.decided_by, msg.decided_at), (Some(9), 12_345));

    // No question and no visitor message: the subject names the chat.
    let mut bare = transcript("chat-bare", "v1", None, "create");
    bare.question = Some("   ".into());
    bare.entries = vec![entry(1, "system", "")];
    let (_, bare_int) = written(store.write_transcript(&bare).await.unwrap());
    let (bare_interaction, _) = store.interaction(bare_int.unwrap()).await.unwrap().unwrap();
    assert_eq!(bare_interaction.subject, "Chat chat-bare");

    assert_eq!(
        store
            .interactions_of_contact(contact.id)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.message_by_chat("chat-none").await.unwrap(), None);
    assert_eq!(store.interaction(999_999).await.unwrap(), None);

    let mut bad = transcript("chat-bad", "v1", None, "archive");
    assert!(matches!(
        store.write_transcript(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad.decision = "create".into();
    bad.chat_id = String::new();
    assert!(matches!(
        store.write_transcript(&bad).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn add_to_another_contacts_interaction_falls_back(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let ann = transcript("chat-ann", "v-ann", Some("ann@example.com"), "create");
    let (_, ann_int) = written(store.write_transcript(&ann).await.unwrap());
    let ann_int = ann_int.unwrap();

    let mut bob = transcript("chat-bob", "v-bob", Some("bob@example.com"), "add");
    bob.interaction_id = Some(ann_int);
    let (bob_msg, bob_int) = written(store.write_transcript(&bob).await.unwrap());
    let bob_int = bob_int.expect("falls back to a new interaction");
    assert_ne!(bob_int, ann_int);
    let (interaction, messages) = store.interaction(bob_int).await.unwrap().unwrap();
    let bob_contact = store
        .contact_for("v-bob", Some("bob@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(interaction.contact_id, bob_contact.id);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id, bob_msg);
    assert_eq!(messages[0].decision, "add");
    let (_, ann_messages) = store.interaction(ann_int).await.unwrap().unwrap();
    assert_eq!(
        ann_messages.len(),
        1,
        "another contact's interaction is untouched"
    );

    // add to an interaction that does not exist also falls back.
    let mut lost = transcript("chat-lost", "v-bob", Some("bob@example.com"), "add");
    lost.interaction_id = Some(987_654);
    let (_, lost_int) = written(store.write_transcript(&lost).await.unwrap());
    assert!(lost_int.is_some());
    assert_ne!(lost_int, Some(987_654));
    assert_eq!(
        store
            .interactions_of_contact(bob_contact.id)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn same_chat_twice_is_written_once(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let t = transcript("chat-dup", "v1", Some("dup@example.com"), "create");
    let (message_id, _) = written(store.write_transcript(&t).await.unwrap());
    // A retried flush may carry a different decision; it must still write nothing.
    let mut again = t.clone();
    again.decision = "keep".into();
    assert_eq!(
        store.write_transcript(&again).await.unwrap(),
        FlushOutcome::AlreadyWritten { message_id }
    );
    let contact = store
        .contact_for("v1", Some("dup@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .interactions_of_contact(contact.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.recent_interactions(10).await.unwrap().len(), 1);
}

async fn concurrent_flushes_write_once(url: String) {
    let one = Store::connect(&url, 4).await.expect("connect node one");
    let two = Store::connect(&url, 4).await.expect("connect node two");
    for i in 0..10 {
        let email = format!("race{i}@example.com");
        let t = transcript(
            &format!("chat-race-{i}"),
            &format!("v-race-{i}"),
            Some(&email),
            "create",
        );
        let (a, b) = tokio::join!(one.write_transcript(&t), two.write_transcript(&t));
        let (a, b) = (a.expect("node one"), b.expect("node two"));
        let (message_id, interaction_id) = match (a, b) {
            (
                FlushOutcome::Written {
                    message_id,
                    interaction_id,
                },
                FlushOutcome::AlreadyWritten { message_id: other },
            )
            | (
                FlushOutcome::AlreadyWritten { message_id: other },
                FlushOutcome::Written {
                    message_id,
                    interaction_id,
                },
            ) => {
                assert_eq!(message_id, other);
                (message_id, interaction_id)
            }
            other => panic!("exactly one flush must write, got {other:?}"),
        };
        let contact = one
            .contact_for("", Some(&email))
            .await
            .unwrap()
            .expect("one contact");
        let interactions = two.interactions_of_contact(contact.id).await.unwrap();
        assert_eq!(interactions.len(), 1);
        assert_eq!(Some(interactions[0].id), interaction_id);
        let (_, messages) = one.interaction(interactions[0].id).await.unwrap().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].id, message_id);
    }

    // Anonymous visitors race on the contact row too.
    let t = transcript("chat-race-anon", "v-anon", None, "keep");
    let (a, b) = tokio::join!(one.write_transcript(&t), two.write_transcript(&t));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, FlushOutcome::Written { .. }))
            .count(),
        1
    );
    let contact = two.contact_for("v-anon", None).await.unwrap().unwrap();
    assert_eq!(
        one.interactions_of_contact(contact.id).await.unwrap().len(),
        1
    );
    assert_eq!(one.recent_interactions(100).await.unwrap().len(), 11);
}

/// A batch meeting a chat already written, or a chat that cannot be written, still gives every
/// other chat its Message, and each chat its own outcome in the order given.
async fn batches_fall_back_per_chat(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let first = transcript("chat-b1", "v-b1", Some("b1@example.com"), "create");
    let (first_id, _) = written(store.write_transcript(&first).await.unwrap());

    let mut bad = transcript("chat-b-bad", "v-b2", None, "create");
    bad.decision = "archive".into();
    let batch = vec![
        transcript("chat-b2", "v-b2", None, "trash"),
        first.clone(),
        bad,
        transcript("chat-b3", "v-b3", Some("b3@example.com"), "keep"),
    ];
    let outcomes = store.write_transcripts(&batch).await;
    assert_eq!(outcomes.len(), 4);
    let (b2, b2_interaction) = written(*outcomes[0].as_ref().unwrap());
    assert_eq!(b2_interaction, None, "trash has no interaction");
    assert_eq!(
        outcomes[1].as_ref().unwrap(),
        &FlushOutcome::AlreadyWritten {
            message_id: first_id
        }
    );
    assert!(matches!(outcomes[2], Err(StoreError::Invalid(_))));
    let (b3, b3_interaction) = written(*outcomes[3].as_ref().unwrap());
    assert!(b3_interaction.is_some());
    assert_eq!(
        store.message_by_chat("chat-b2").await.unwrap().unwrap().id,
        b2
    );
    assert_eq!(
        store.message_by_chat("chat-b3").await.unwrap().unwrap().id,
        b3
    );
    assert!(store.message_by_chat("chat-b-bad").await.unwrap().is_none());
    // The rolled-back batch left no interaction behind: chat-b1's and chat-b3's only.
    assert_eq!(store.recent_interactions(100).await.unwrap().len(), 2);

    // A batch of chats all new is one transaction; written again, all are found.
    let fresh: Vec<_> = (0..5)
        .map(|i| transcript(&format!("chat-f{i}"), &format!("v-f{i}"), None, "create"))
        .collect();
    let ids: Vec<i64> = store
        .write_transcripts(&fresh)
        .await
        .into_iter()
        .map(|o| written(o.unwrap()).0)
        .collect();
    let again: Vec<_> = store
        .write_transcripts(&fresh)
        .await
        .into_iter()
        .map(|o| o.unwrap())
        .collect();
    assert_eq!(
        again,
        ids.iter()
            .map(|&message_id| FlushOutcome::AlreadyWritten { message_id })
            .collect::<Vec<_>>()
    );
    assert_eq!(store.recent_interactions(100).await.unwrap().len(), 7);
}

/// Two nodes flush the same 120 chats at once, in batches of different sizes and orders (and
/// some one by one), as the flush workers do with duplicate or taken-over jobs: every chat
/// is written exactly once, with one interaction per written chat that asks for one, and
/// people sharing an e-mail or a visitor id meet on one contact.
async fn many_concurrent_batched_flushes_land_once(url: String) {
    let one = Store::connect(&url, 4).await.expect("connect node one");
    let two = Store::connect(&url, 4).await.expect("connect node two");
    let decisions = ["create", "keep", "trash", "add"];
    let all: Vec<TranscriptRecord> = (0..120)
        .map(|i| {
            // Every fourth chat shares its person with three others: by e-mail, or by
            // visitor id when anonymous.
            let email = (i % 2 == 0).then(|| format!("p{}@example.com", i % 30));
            transcript(
                &format!("chat-m{i}"),
                &format!("v-m{}", i % 30),
                email.as_deref(),
                decisions[i % 4],
            )
        })
        .collect();
    let reversed: Vec<TranscriptRecord> = all.iter().rev().cloned().collect();

    let node_one = async {
        let mut out = Vec::new();
        let mut runs = Vec::new();
        for chunk in all.chunks(8) {
            runs.push(one.write_transcripts(chunk));
        }
        for r in futures_util::future::join_all(runs).await {
            out.extend(r.into_iter().map(|o| o.expect("node one")));
        }
        out
    };
    let node_two = async {
        let mut out = Vec::new();
        let mut runs = Vec::new();
        for chunk in reversed[..100].chunks(5) {
            runs.push(two.write_transcripts(chunk));
        }
        for r in futures_util::future::join_all(runs).await {
            out.extend(r.into_iter().map(|o| o.expect("node two")));
        }
        for t in &reversed[100..] {
            out.push(two.write_transcript(t).await.expect("node two, one by one"));
        }
        out
    };
    let (a, b) = tokio::join!(node_one, node_two);
    assert_eq!((a.len(), b.len()), (120, 120));

    let mut want_interactions = 0;
    for (i, t) in all.iter().enumerate() {
        let pair = [&a[i], &b[119 - i]];
        let wrote: Vec<_> = pair
            .iter()
            .filter(|o| matches!(o, FlushOutcome::Written { .. }))
            .collect();
        assert_eq!(
            wrote.len(),
            1,
            "{}: exactly one write, got {pair:?}",
            t.chat_id
        );
        let m = one
            .message_by_chat(&t.chat_id)
            .await
            .unwrap()
            .expect("written");
        for o in pair {
            let id = match o {
                FlushOutcome::Written { message_id, .. }
                | FlushOutcome::AlreadyWritten { message_id } => *message_id,
            };
            assert_eq!(id, m.id, "{}: both report the one Message", t.chat_id);
        }
        assert_eq!(m.entries.len(), 3);
        assert_eq!(m.interaction_id.is_some(), t.decision != "trash");
        if t.decision != "trash" {
            want_interactions += 1;
        }
    }
    assert_eq!(
        one.recent_interactions(1000).await.unwrap().len(),
        want_interactions,
        "no interaction of a rolled-back batch is left"
    );
    // 15 people by e-mail (even chats), 15 anonymous visitors (odd chats).
    for p in 0..30 {
        let email = (p % 2 == 0).then(|| format!("p{p}@example.com"));
        let contact = two
            .contact_for(&format!("v-m{p}"), email.as_deref())
            .await
            .unwrap()
            .expect("a contact");
        let messages: usize = {
            let mut n = 0;
            for t in all.iter().filter(|t| t.visitor_id == format!("v-m{p}")) {
                let m = two.message_by_chat(&t.chat_id).await.unwrap().unwrap();
                assert_eq!(m.contact_id, contact.id, "{}: one contact", t.chat_id);
                n += 1;
            }
            n
        };
        assert_eq!(messages, 4);
    }
}

/// Many chats decided at once, each flush job queued a second time (as a lost ack or a job
/// taken over from a slow node would): the two nodes' flush workers, batching and writing
/// concurrently, put every chat in PostgreSQL exactly once with its messages and one
/// interaction, acknowledge every job and forget every chat in Redis. All the chats belong to
/// one person (the site vouches for the same e-mail on every visitor), so concurrent batches
/// meet on one contact row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_workers_write_a_burst_of_chats_once_each() {
    use common::{
        accept_offer, available_agent, eventually, visitor_token, Backend, Client, Cluster,
    };
    use serde_json::json;
    use switchboard::chat::identity::identify_signature;
    const CHATS: usize = 16;
    const SECRET: &str = "identify-secret-of-the-shop-0123456789";
    let cluster = Cluster::with(Backend::Postgres, |s| {
        s.auth.identify_secret = SECRET.into()
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "bea", CHATS as i64).await;
    let mut visitors = Vec::new();
    let sig = identify_signature(SECRET, "vera@example.com");
    for i in 0..CHATS {
        let (_, token) = visitor_token(&a).await;
        let mut v = Client::visitor(&a, &token).await;
        v.send(json!({"type": "page_view", "url": "https://shop.example/"}))
            .await;
        v.send(json!({"type": "identify", "email": "vera@example.com", "signature": sig}))
            .await;
        let chat = v
            .request_chat(json!({"type": "request_chat", "question": format!("question {i}")}))
            .await;
        accept_offer(&mut agent, &mut v, &chat).await;
        v.send(json!({"type": "send", "chat_id": chat, "client_msg_id": "m1", "text": format!("hello {i}")}))
            .await;
        v.expect("ack").await;
        visitors.push((v, chat));
    }
    for (v, chat) in &mut visitors {
        v.send(json!({"type": "end", "chat_id": chat})).await;
    }
    for (_, chat) in &visitors {
        let c = chat.clone();
        agent
            .expect_where("chat_ended", move |f| {
                f["type"] == "chat_ended" && f["chat_id"] == c.as_str()
            })
            .await;
    }
    for (_, chat) in &visitors {
        agent
            .send(json!({"type": "decide", "chat_id": chat, "decision": "create"}))
            .await;
    }
    for _ in 0..CHATS {
        agent.expect("decided").await;
    }
    for (_, chat) in &visitors {
        a.service.redis.enqueue_flush(chat).await.unwrap();
    }

    let chats: Vec<String> = visitors.iter().map(|(_, c)| c.clone()).collect();
    let messages = eventually("every chat flushed", || {
        let (store, chats) = (cluster.store.clone(), chats.clone());
        async move {
            let mut out = Vec::new();
            for chat in &chats {
                out.push(store.message_by_chat(chat).await.unwrap()?);
            }
            Some(out)
        }
    })
    .await;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.decision, "create");
        assert!(m.interaction_id.is_some());
        assert!(
            m.entries.iter().any(|e| e.text == format!("hello {i}")),
            "{}: the visitor's message is in the transcript",
            m.chat_id
        );
    }
    let contact = cluster
        .store
        .contact_for("", Some("vera@example.com"))
        .await
        .unwrap()
        .expect("one contact");
    assert!(messages.iter().all(|m| m.contact_id == contact.id));
    let svc = a.service.clone();
    eventually("every flush job acknowledged", || {
        let svc = svc.clone();
        async move { (svc.redis.flush_backlog().await.unwrap() == 0).then_some(()) }
    })
    .await;
    // Late duplicates found their chat gone; nothing was written twice.
    assert_eq!(
        cluster
            .store
            .interactions_of_contact(contact.id)
            .await
            .unwrap()
            .len(),
        CHATS
    );
    for chat in &chats {
        let left = cluster.chat_keys_left(chat).await;
        assert!(left.is_empty(), "{chat}: forgotten in Redis, left {left:?}");
    }
    drop(visitors);
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
