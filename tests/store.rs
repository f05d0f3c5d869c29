//! The SQL store against SQLite and PostgreSQL, agents, queues and contacts: each behaviour is
//! one test body, run on a fresh SQLite file and in a fresh PostgreSQL schema
//! (`tests/common/store_backends.rs`). Writing decided chats is in `tests/store_flush.rs`.

mod common;

use common::store_backends::{new_agent, transcript, written};
use switchboard::store::{NewAgent, Store, StoreError};

on_both_backends!(
    migrations_apply_twice,
    agents_and_passwords,
    invalid_agents_are_refused,
    interactions_newest_first,
    contact_matched_by_email,
    queue_created_on_another_node_is_known_at_once,
);

async fn migrations_apply_twice(url: String) {
    let first = Store::connect(&url, 2).await.expect("first connect");
    first.ping().await.expect("ping");
    let expected = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(first.backend(), expected);
    first.create_agent(&new_agent("ann")).await.expect("create");
    let second = Store::connect(&url, 2)
        .await
        .expect("second connect on a migrated database");
    second.ping().await.expect("ping");
    assert_eq!(second.agent_count().await.unwrap(), 1);
    assert_eq!(first.agent_count().await.unwrap(), 1);
}

async fn agents_and_passwords(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let mut admin = new_agent("boss");
    admin.role = "admin".into();
    admin.display_name = String::new();
    admin.queues = vec!["sales".into(), "billing".into(), "sales".into()];
    let created = store.create_agent(&admin).await.expect("create admin");
    assert_eq!(created.username, "boss");
    assert_eq!(
        created.display_name, "boss",
        "empty display name falls back to username"
    );
    assert_eq!(created.role, "admin");
    assert_eq!(created.queues, vec!["billing", "sales"]);
    assert!(created.created_at > 0);

    let other = store
        .create_agent(&new_agent("ann"))
        .await
        .expect("create agent");
    assert_eq!(
        store.agent(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.agent(other.id + 1000).await.unwrap(), None);
    assert_eq!(
        store.agents().await.unwrap(),
        vec![created.clone(), other.clone()]
    );
    assert_eq!(store.agent_count().await.unwrap(), 2);
    assert_eq!(
        store.queues().await.unwrap(),
        vec!["billing", "sales", "support"]
    );

    let json = serde_json::to_string(&created).unwrap();
    assert!(
        !json.contains("argon2"),
        "agent JSON must not carry the hash: {json}"
    );

    let ok = store
        .verify_password("boss", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(ok, Some(created.clone()));
    assert_eq!(
        store
            .verify_password("boss", "wrong password")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .verify_password("nobody", "correct horse battery")
            .await
            .unwrap(),
        None
    );

    match store.create_agent(&new_agent("ann")).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("duplicate username must be Conflict, got {other:?}"),
    }
    assert_eq!(store.agent_count().await.unwrap(), 2);

    store.ensure_queue("vip").await.unwrap();
    store.ensure_queue("vip").await.unwrap();
    assert_eq!(
        store.queues().await.unwrap(),
        vec!["billing", "sales", "support", "vip"]
    );
    assert!(matches!(
        store.ensure_queue("VIP").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.ensure_queue("").await,
        Err(StoreError::Invalid(_))
    ));
}

/// Chat requests check their queue through `queue_exists`, which remembers names it found:
/// a queue another node creates must still be found the first time it is asked for.
async fn queue_created_on_another_node_is_known_at_once(url: String) {
    let one = Store::connect(&url, 2).await.expect("connect node one");
    let two = Store::connect(&url, 2).await.expect("connect node two");
    assert!(!one.queue_exists("late").await.unwrap());
    two.ensure_queue("late").await.unwrap();
    assert!(
        one.queue_exists("late").await.unwrap(),
        "a miss is looked up again"
    );
    assert!(
        one.queue_exists("late").await.unwrap(),
        "and then remembered"
    );
    assert!(!one.queue_exists("never-made").await.unwrap());
    assert!(!one.queue_exists("").await.unwrap());
}

async fn invalid_agents_are_refused(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    type Spoil = fn(&mut NewAgent);
    let cases: [(&str, Spoil); 10] = [
        ("empty username", |a| a.username = String::new()),
        ("long username", |a| a.username = "u".repeat(65)),
        ("short password", |a| a.password = "1234567".into()),
        ("zero max_chats", |a| a.max_chats = 0),
        ("too many max_chats", |a| a.max_chats = 101),
        ("unknown role", |a| a.role = "root".into()),
        ("upper-case queue", |a| a.queues = vec!["Sales".into()]),
        ("empty queue", |a| a.queues = vec![String::new()]),
        ("long queue", |a| a.queues = vec!["q".repeat(65)]),
        ("queue with space", |a| a.queues = vec!["a b".into()]),
    ];
    for (what, change) in cases {
        let mut a = new_agent("carol");
        change(&mut a);
        match store.create_agent(&a).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    let mut edge = new_agent(&"u".repeat(64));
    edge.max_chats = 100;
    edge.password = "12345678".into();
    edge.queues = vec!["q".repeat(64), "a-b_c9".into()];
    store
        .create_agent(&edge)
        .await
        .expect("limits themselves are valid");
    assert_eq!(store.agent_count().await.unwrap(), 1);
}

async fn interactions_newest_first(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let mut ids = Vec::new();
    for (chat, decided_at) in [
        ("chat-old", 1_000),
        ("chat-new", 3_000),
        ("chat-mid", 2_000),
    ] {
        let mut t = transcript(chat, "v-order", None, "create");
        t.decided_at = decided_at;
        let (_, interaction) = written(store.write_transcript(&t).await.unwrap());
        ids.push(interaction.unwrap());
    }
    let contact = store.contact_for("v-order", None).await.unwrap().unwrap();
    let listed: Vec<_> = store
        .interactions_of_contact(contact.id)
        .await
        .unwrap()
        .iter()
        .map(|i| (i.id, i.created_at))
        .collect();
    assert_eq!(
        listed,
        vec![(ids[1], 3_000), (ids[2], 2_000), (ids[0], 1_000)]
    );
    let recent: Vec<_> = store
        .recent_interactions(2)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(recent, vec![ids[1], ids[2]]);
    assert!(store.recent_interactions(-5).await.unwrap().is_empty());
    assert!(store
        .interactions_of_contact(contact.id + 100)
        .await
        .unwrap()
        .is_empty());
}

async fn contact_matched_by_email(url: String) {
    let store = Store::connect(&url, 2).await.expect("connect");
    let first = transcript("chat-e1", "visitor-a", Some("Ann@Example.com "), "create");
    written(store.write_transcript(&first).await.unwrap());
    let mut second = transcript("chat-e2", "visitor-b", Some("ann@example.com"), "create");
    second.contact_name = Some("Ann".into());
    written(store.write_transcript(&second).await.unwrap());

    let m1 = store.message_by_chat("chat-e1").await.unwrap().unwrap();
    let m2 = store.message_by_chat("chat-e2").await.unwrap().unwrap();
    assert_eq!(
        m1.contact_id, m2.contact_id,
        "one person across two visitor ids"
    );
    let contact = store
        .contact_for("visitor-b", Some("ANN@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.id, m1.contact_id);
    assert_eq!(contact.email.as_deref(), Some("ann@example.com"));
    assert_eq!(
        contact.visitor_id.as_deref(),
        Some("visitor-a"),
        "first known visitor id stays"
    );
    assert_eq!(
        contact.name.as_deref(),
        Some("Ann"),
        "name filled in when newly known"
    );
    assert_eq!(
        store.contact_for("visitor-a", None).await.unwrap(),
        Some(contact.clone())
    );
    assert_eq!(
        store
            .interactions_of_contact(contact.id)
            .await
            .unwrap()
            .len(),
        2
    );

    // An anonymous visitor who later gives an e-mail keeps their contact.
    let anon = transcript("chat-anon", "visitor-c", None, "create");
    written(store.write_transcript(&anon).await.unwrap());
    let before = store.contact_for("visitor-c", None).await.unwrap().unwrap();
    assert_eq!(before.email, None);
    let known = transcript("chat-known", "visitor-c", Some("cat@example.com"), "create");
    written(store.write_transcript(&known).await.unwrap());
    let after = store
        .contact_for("", Some("cat@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(store.contact_for("nobody", None).await.unwrap(), None);
    assert_eq!(store.contact_for("", None).await.unwrap(), None);
}
