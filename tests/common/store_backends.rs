//! Store tests run each behaviour as one test body, called with a store URL: on a fresh SQLite
//! file and in a fresh PostgreSQL schema (`SWITCHBOARD_TEST_PG_URL`; if it is unreachable the
//! PostgreSQL tests fail). Also the records those bodies write.

use std::future::Future;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use switchboard::store::{FlushOutcome, NewAgent, Store, TranscriptEntry, TranscriptRecord};

/// `on_both_backends!(a, b)` makes the tests `sqlite::a`, `postgres::a`, ... from the bodies
/// `async fn a(url: String)` in the calling file.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::store_backends::with_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::store_backends::with_postgres(super::$name).await
                }
            )*
        }
    };
}

/// Runs `body` against a new SQLite file, then deletes the file even if `body` panicked.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = std::env::temp_dir().join(format!(
        "switchboard-store-{}-{:016x}.db",
        std::process::id(),
        rand::random::<u64>()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let outcome = tokio::spawn(body(url)).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `body` with a store URL whose `search_path` is a new schema, then drops the schema
/// even if `body` panicked.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = super::pg_url();
    let mut admin = match tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect(&base),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "PostgreSQL is not reachable at {base} (set SWITCHBOARD_TEST_PG_URL to a reachable server): {e}"
        ),
        Err(_) => panic!(
            "PostgreSQL at {base} did not answer within 10 s (set SWITCHBOARD_TEST_PG_URL to a reachable server)"
        ),
    };
    let schema = format!("t_{:016x}", rand::random::<u64>());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    // The store must really live in the test schema, not in `public`.
    let probe = Store::connect(&url, 1)
        .await
        .expect("connect to the test schema");
    drop(probe);
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'messages'",
    )
    .bind(schema.as_str())
    .fetch_one(&mut admin)
    .await
    .expect("look up the test schema");
    assert_eq!(tables, 1, "store tables must be created in schema {schema}");

    let outcome = tokio::spawn(body(url)).await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop test schema");
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn new_agent(username: &str) -> NewAgent {
    NewAgent {
        username: username.into(),
        display_name: format!("Agent {username}"),
        password: "correct horse battery".into(),
        role: "agent".into(),
        max_chats: 3,
        queues: vec!["support".into()],
    }
}

pub fn entry(seq: u32, author: &str, text: &str) -> TranscriptEntry {
    TranscriptEntry {
        seq: format!("{seq}-0"),
        kind: if author == "system" {
            "system"
        } else {
            "message"
        }
        .into(),
        author: author.into(),
        name: author.into(),
        text: text.into(),
        at: 1_000 + i64::from(seq),
        event: if author == "system" { "ended" } else { "" }.into(),
        data: None,
        internal: false,
    }
}

pub fn transcript(
    chat_id: &str,
    visitor_id: &str,
    email: Option<&str>,
    decision: &str,
) -> TranscriptRecord {
    TranscriptRecord {
        chat_id: chat_id.into(),
        visitor_id: visitor_id.into(),
        contact_name: None,
        contact_email: email.map(Into::into),
        visitor_email: email.map(Into::into),
        email_verified: email.is_some(),
        agents: vec![7],
        question: Some(format!("Question of {chat_id}")),
        queue: "support".into(),
        agent_id: Some(7),
        started_at: 1_000,
        accepted_at: Some(1_500),
        ended_at: 9_000,
        end_reason: "agent_ended".into(),
        decision: decision.into(),
        interaction_id: None,
        decided_by: Some(7),
        decided_at: 10_000,
        entries: vec![
            entry(1, "visitor", "Hello, my order is late"),
            entry(2, "agent", "Let me check"),
            entry(3, "system", ""),
        ],
    }
}

pub fn written(outcome: FlushOutcome) -> (i64, Option<i64>) {
    match outcome {
        FlushOutcome::Written {
            message_id,
            interaction_id,
        } => (message_id, interaction_id),
        other => panic!("expected Written, got {other:?}"),
    }
}
