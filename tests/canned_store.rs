//! Canned responses in the SQL store, on SQLite and PostgreSQL: scopes and owners, search,
//! refused fields. The HTTP API is in `tests/canned.rs`, rendering in `tests/canned_render.rs`.

mod common;

use common::canned::fields;
use common::*;
use switchboard::store::{CannedQuery, CannedScope, StoreError};

/// Scopes and owners: shortcut uniqueness per scope+owner, shadowing, visibility, update,
/// delete.
async fn store_scopes_and_uniqueness(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let bob = cluster.agent("bob", 2).await;

    let shared = store
        .create_canned(
            CannedScope::Shared,
            None,
            &fields("Greeting", "greeting", "Hello {visitor_name|there}!"),
        )
        .await
        .unwrap();
    assert_eq!(shared.scope, CannedScope::Shared);
    assert_eq!(shared.owner_id, None);
    assert_eq!(shared.created_at, shared.updated_at);
    assert!(matches!(
        store
            .create_canned(CannedScope::Shared, None, &fields("Other", "greeting", "x"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // A personal shortcut may shadow a shared one, and two agents may use the same one.
    let mine = store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("My greeting", "greeting", "Hi, Ann here"),
        )
        .await
        .unwrap();
    assert_eq!(mine.owner_id, Some(ann));
    let bobs = store
        .create_canned(
            CannedScope::Personal,
            Some(bob),
            &fields("Bob's greeting", "greeting", "Hi, Bob here"),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_canned(
                CannedScope::Personal,
                Some(ann),
                &fields("Again", "greeting", "x")
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Scope and owner must agree.
    for (scope, owner) in [
        (CannedScope::Shared, Some(ann)),
        (CannedScope::Personal, None),
    ] {
        assert!(matches!(
            store
                .create_canned(scope, owner, &fields("T", "t", "x"))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }

    // Visibility: shared to all, personal to the owner only.
    assert_eq!(
        store.visible_canned(shared.id, bob).await.unwrap(),
        Some(shared.clone())
    );
    assert_eq!(
        store.visible_canned(mine.id, ann).await.unwrap(),
        Some(mine.clone())
    );
    assert_eq!(store.visible_canned(mine.id, bob).await.unwrap(), None);
    assert_eq!(store.visible_canned(bobs.id, ann).await.unwrap(), None);
    assert_eq!(store.visible_canned(9_999, ann).await.unwrap(), None);

    // Update keeps scope, owner and created_at; a taken shortcut is a conflict.
    let other = store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("Bye", "bye", "Bye!"),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edited = store
        .update_canned(
            other.id,
            &fields("  Goodbye ", "goodbye", "Goodbye, {visitor_name|friend}"),
        )
        .await
        .unwrap();
    assert_eq!(edited.title, "Goodbye");
    assert_eq!(edited.shortcut, "goodbye");
    assert_eq!(edited.owner_id, Some(ann));
    assert_eq!(edited.created_at, other.created_at);
    assert!(edited.updated_at > other.updated_at);
    assert!(matches!(
        store.update_canned(other.id, &fields("Goodbye", "greeting", "x")).await,
        Err(StoreError::Conflict(m)) if m.contains("personal")
    ));
    assert!(matches!(
        store.update_canned(9_999, &fields("T", "t", "x")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_canned(other.id, &fields("", "t", "x")).await,
        Err(StoreError::Invalid(_))
    ));

    store.delete_canned(other.id).await.unwrap();
    assert!(matches!(
        store.delete_canned(other.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.visible_canned(other.id, ann).await.unwrap(), None);
    cluster.cleanup().await;
}

/// Search by shortcut prefix and by words, the order, the escaping of LIKE wildcards, case
/// folding beyond ASCII, and the limit.
async fn store_search(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let bob = cluster.agent("bob", 2).await;
    let shared = |t: &'static str, s: &'static str, x: &'static str| {
        let f = fields(t, s, x);
        async move {
            store
                .create_canned(CannedScope::Shared, None, &f)
                .await
                .unwrap()
        }
    };
    shared("Greeting", "greeting", "Hello and welcome!").await;
    shared("Green tea offer", "green-tea", "Our tea is 100% organic").await;
    shared("Refund policy", "refund", "Refunds take 5 working days").await;
    shared("Été", "ete", "Summer opening hours").await;
    shared("Underscore", "a_b", "with an underscore").await;
    store
        .create_canned(
            CannedScope::Personal,
            Some(ann),
            &fields("Ann says hello", "greeting", "Hi, I am Ann"),
        )
        .await
        .unwrap();
    store
        .create_canned(
            CannedScope::Personal,
            Some(bob),
            &fields("Bob's refund note", "bob-refund", "Refund approved"),
        )
        .await
        .unwrap();
    let search = |agent: i64, q: &'static str| async move {
        let q = CannedQuery::parse(q).unwrap();
        store
            .search_canned(agent, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.shortcut, c.scope))
            .collect::<Vec<_>>()
    };
    let names = |agent: i64, q: &'static str| async move {
        search(agent, q)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect::<Vec<_>>()
    };

    // Everything visible, by title; Bob's personal one is not Ann's to see.
    assert_eq!(
        names(ann, "").await,
        ["greeting", "green-tea", "greeting", "refund", "a_b", "ete"]
    );
    // Shortcut prefix; the exact shortcut first, Ann's before the shared one it shadows.
    assert_eq!(
        search(ann, "/greeting").await,
        [
            ("greeting".to_string(), CannedScope::Personal),
            ("greeting".to_string(), CannedScope::Shared)
        ]
    );
    assert_eq!(
        names(ann, "/gre").await,
        ["greeting", "green-tea", "greeting"]
    );
    assert_eq!(
        names(ann, "/GRE").await,
        ["greeting", "green-tea", "greeting"]
    );
    assert_eq!(names(bob, "/gre").await, ["green-tea", "greeting"]);
    assert_eq!(names(ann, "/").await.len(), 6);
    assert!(names(ann, "/tea").await.is_empty(), "prefix, not substring");
    // `_` is not a wildcard.
    assert_eq!(names(ann, "/a_").await, ["a_b"]);
    assert!(names(ann, "/a%").await.is_empty());
    // Words: every word somewhere in title, shortcut or text, in any case.
    assert_eq!(names(ann, "REFUND").await, ["refund"]);
    // By title "Bob's refund note" would come first, but an exact shortcut ranks higher.
    assert_eq!(names(bob, "refund").await, ["refund", "bob-refund"]);
    assert_eq!(names(ann, "tea organic").await, ["green-tea"]);
    assert!(names(ann, "tea refund").await.is_empty());
    assert_eq!(names(ann, "hello").await, ["greeting", "greeting"]);
    assert_eq!(names(ann, "100%").await, ["green-tea"]);
    assert!(names(ann, "1%0").await.is_empty(), "% is not a wildcard");
    assert_eq!(
        names(ann, "ÉTÉ").await,
        ["ete"],
        "case folding beyond ASCII"
    );
    assert_eq!(names(ann, "greeting").await, ["greeting", "greeting"]);

    // At most 50.
    for i in 0..55 {
        store
            .create_canned(
                CannedScope::Personal,
                Some(bob),
                &fields(&format!("Note {i:02}"), &format!("note-{i:02}"), "note"),
            )
            .await
            .unwrap();
    }
    let notes = names(bob, "/note").await;
    assert_eq!(notes.len(), 50);
    assert_eq!(notes[0], "note-00");
    assert_eq!(notes[49], "note-49");
    cluster.cleanup().await;
}

/// Field rules hold on both backends, before anything is written.
async fn store_refuses_bad_fields(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let store = &cluster.store;
    let ann = cluster.agent("ann", 2).await;
    let long_title = "t".repeat(101);
    let long_text = "x".repeat(4001);
    let long_shortcut = "s".repeat(33);
    for f in [
        fields("", "ok", "x"),
        fields(&long_title, "ok", "x"),
        fields("T", "", "x"),
        fields("T", &long_shortcut, "x"),
        fields("T", "Hello", "x"),
        fields("T", "/hello", "x"),
        fields("T", "he llo", "x"),
        fields("T", "ok", ""),
        fields("T", "ok", "   "),
        fields("T", "ok", &long_text),
    ] {
        assert!(
            matches!(
                store
                    .create_canned(CannedScope::Personal, Some(ann), &f)
                    .await,
                Err(StoreError::Invalid(_))
            ),
            "{f:?}"
        );
    }
    let at_the_limit = fields(&"é".repeat(100), &"s".repeat(32), &"ü".repeat(4000));
    store
        .create_canned(CannedScope::Personal, Some(ann), &at_the_limit)
        .await
        .expect("limits are inclusive, in characters");
    assert_eq!(
        store
            .search_canned(ann, &CannedQuery::All)
            .await
            .unwrap()
            .len(),
        1
    );
    cluster.cleanup().await;
}

sqlite_and_postgres!(store_scopes_and_uniqueness => store_scopes_and_uniqueness_sqlite, store_scopes_and_uniqueness_postgres);

sqlite_and_postgres!(store_search => store_search_sqlite, store_search_postgres);

sqlite_and_postgres!(store_refuses_bad_fields => store_refuses_bad_fields_sqlite, store_refuses_bad_fields_postgres);
