//! The SQLite migration that adds the `supervisor` role rebuilds the agents table (SQLite cannot
//! change a CHECK constraint in place): a store with agents, their queues and personal canned
//! responses from before it keeps all of them, ids and foreign keys included.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;
use std::borrow::Cow;
use switchboard::store::{AgentChanges, CannedQuery, Store};

/// The migrations before the supervisor role, as the node embeds them (same versions and
/// descriptions, so the same checksums).
const BEFORE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "canned",
        include_str!("../migrations/sqlite/0002_canned.sql"),
    ),
    (
        3,
        "offline",
        include_str!("../migrations/sqlite/0003_offline.sql"),
    ),
    (
        4,
        "access",
        include_str!("../migrations/sqlite/0004_access.sql"),
    ),
    (
        5,
        "integrations",
        include_str!("../migrations/sqlite/0005_integrations.sql"),
    ),
];

#[tokio::test]
async fn sqlite_store_from_before_keeps_its_agents_queues_and_canned_responses() {
    let path = std::env::temp_dir().join(format!(
        "switchboard-mig-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let old = Migrator::with_migrations(
        BEFORE
            .iter()
            .map(|&(v, d, sql)| {
                Migration::new(
                    v,
                    Cow::Borrowed(d),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    old.run(&pool).await.unwrap();
    for sql in [
        "PRAGMA foreign_keys = ON",
        "INSERT INTO queues (name, created_at) VALUES ('general', 1)",
        "INSERT INTO agents (username, display_name, password_hash, role, max_chats, created_at) VALUES ('a1', 'Ann', 'h', 'admin', 3, 1)",
        "INSERT INTO agents (username, display_name, password_hash, role, max_chats, created_at) VALUES ('a2', 'Bob', 'h', 'agent', 3, 1)",
        "INSERT INTO agents (username, display_name, password_hash, role, max_chats, created_at) VALUES ('a3', 'Gone', 'h', 'agent', 3, 1)",
        "DELETE FROM agents WHERE id = 3",
        "INSERT INTO agent_queues (agent_id, queue) VALUES (1, 'general'), (2, 'general')",
        "INSERT INTO canned_responses (scope, owner_id, title, shortcut, text, title_key, search, created_at, updated_at) VALUES ('personal', 2, 'Hi', 'hi', 'Hello', 'hi', 'hi hello', 1, 1)",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
    }
    pool.close().await;

    // The node applies the rest.
    let store = Store::connect(&url, 2).await.expect("migrated");
    let agents = store.agents().await.unwrap();
    let summary: Vec<(i64, &str, Vec<String>)> = agents
        .iter()
        .map(|a| (a.id, a.username.as_str(), a.queues.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "a1", vec!["general".to_string()]),
            (2, "a2", vec!["general".to_string()])
        ]
    );
    let bob = agents.iter().find(|a| a.id == 2).unwrap();
    let canned = store
        .search_canned(bob.id, &CannedQuery::All)
        .await
        .unwrap();
    assert!(canned.iter().any(|c| c.shortcut == "hi"), "{canned:?}");
    // The new role is accepted, an unknown one still refused.
    let changed = store
        .update_agent(
            2,
            &AgentChanges {
                role: Some("supervisor".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.role, "supervisor");
    assert!(store
        .update_agent(
            2,
            &AgentChanges {
                role: Some("boss".into()),
                ..Default::default()
            }
        )
        .await
        .is_err());
    // Ids go on after the deleted one (the id sequence was kept).
    let new = store
        .create_agent(&switchboard::store::NewAgent {
            username: "a4".into(),
            display_name: "New".into(),
            password: "secret-password".into(),
            role: "agent".into(),
            max_chats: 3,
            queues: vec!["general".into()],
        })
        .await
        .unwrap();
    assert_eq!(new.id, 4);
    let _ = std::fs::remove_file(&path);
}
