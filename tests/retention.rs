//! Retention on Redis with SQLite and PostgreSQL, across two nodes: old rows of every kind
//! deleted in batches, recent ones kept, and one node purging at a time.

mod common;

use common::accounts::admin;
use common::integrations::*;
use common::local_files::*;
use common::*;
use serde_json::json;
use std::time::Duration;
use switchboard::app::Running;
use switchboard::store::{
    Delivery, NewOfflineMessage, StoredEvent, TranscriptEntry, TranscriptRecord,
};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn transcript(chat: &str, ended_at: i64) -> TranscriptRecord {
    TranscriptRecord {
        chat_id: chat.into(),
        visitor_id: format!("v-{chat}"),
        contact_name: None,
        contact_email: None,
        visitor_email: None,
        email_verified: false,
        agents: vec![],
        question: Some("q".into()),
        queue: "general".into(),
        agent_id: None,
        started_at: ended_at - 60_000,
        accepted_at: None,
        ended_at,
        end_reason: "Customer Rejected".into(),
        decision: "keep".into(),
        interaction_id: None,
        decided_by: None,
        decided_at: ended_at,
        entries: vec![TranscriptEntry {
            seq: "1-0".into(),
            kind: "message".into(),
            author: "visitor".into(),
            name: "V".into(),
            text: "hi".into(),
            at: ended_at,
            event: String::new(),
            data: None,
            internal: false,
        }],
    }
}

/// Runs one statement on the cluster's store (rows the API cannot backdate).
async fn sql(cluster: &Cluster, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cluster.settings.store.url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn count(cluster: &Cluster, table: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cluster.settings.store.url)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// Old and recent rows of every kind; two nodes asked to purge at once: one purges only the
/// old ones, in batches, while the other is turned away by the lease.
async fn retention(backend: Backend) {
    let dir = files_dir();
    let cluster = Cluster::with(backend, |s| {
        files_in(&dir)(s);
        s.retention.transcripts_days = 30;
        s.retention.files_days = 30;
        s.retention.webhook_log_days = 7;
        s.retention.audit_days = 365;
        s.retention.offline_messages_days = 30;
        s.retention.batch = 2;
    })
    .await;
    let store = &cluster.store;
    let old = now() - 40 * DAY;
    for i in 0..25 {
        store
            .write_transcript(&transcript(&format!("old{i}"), old + i))
            .await
            .unwrap();
    }
    for i in 0..3 {
        store
            .write_transcript(&transcript(&format!("new{i}"), now()))
            .await
            .unwrap();
    }
    // Offline messages: three left long ago (backdated below), one today.
    for uid in ["off-old-0", "off-old-1", "off-old-2", "off-new"] {
        store
            .create_offline_message(&NewOfflineMessage {
                uid: uid.into(),
                queue: "general".into(),
                visitor_id: format!("v-{uid}"),
                name: "Vera".into(),
                email: "vera@example.com".into(),
                message: "call me".into(),
                page_url: String::new(),
                ip: "127.0.0.1".into(),
            })
            .await
            .unwrap();
    }
    sql(
        &cluster,
        &format!("UPDATE offline_messages SET created_at = {old} WHERE uid LIKE 'off-old-%'"),
    )
    .await;
    let ep = store
        .create_endpoint(
            "https://hooks.example.com/",
            SECRET,
            &["chat.requested".into()],
            "",
            true,
        )
        .await
        .unwrap();
    for (i, at) in [(0, old), (1, old), (2, old), (3, now())] {
        let id = format!("evt_{i}");
        let ev = StoredEvent {
            id: id.clone(),
            event_type: "chat.requested".into(),
            created_at: at,
            body: "{}".into(),
        };
        store.save_event(&ev, None).await.unwrap();
        let d = Delivery {
            id: 0,
            endpoint_id: ep.id,
            event_id: id,
            event_type: "chat.requested".into(),
            attempt: 1,
            at,
            outcome: "delivered".into(),
            status: Some(204),
            error: None,
            duration_ms: 5,
            node: "n".into(),
        };
        store.record_delivery(&d).await.unwrap();
    }
    sql(
        &cluster,
        &format!(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, detail) VALUES \
             ({}, NULL, 'system', 'old.entry', '', '{{}}'), ({}, NULL, 'system', 'new.entry', '', '{{}}')",
            now() - 400 * DAY,
            now() - DAY
        ),
    )
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let admin = admin(&cluster, &a, "root").await;
    // Two files: one aged past the window (its data and sidecar), one recent.
    let fs = &a.service.files;
    for (id, body) in [("oldfile", "x"), ("newfile", "y")] {
        let chunk = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
        fs.put_data(id, chunk, 10).await.unwrap();
    }
    let aged = std::process::Command::new("touch")
        .args(["-d", "40 days ago"])
        .arg(dir.join("oldfile"))
        .status()
        .unwrap();
    assert!(aged.success());

    // Node A starts; node B asks while A is still deleting (13 batches of 2, 20 ms apart):
    // exactly one of them purges, the other is turned away by the lease (whichever came first
    // on a loaded machine).
    let run = |node: &Running| format!("{}/api/admin/retention/run", http(node));
    let (run_a, run_b) = (run(&a), run(&b));
    let (from_a, from_b) = tokio::join!(post(&run_a, json!({}), Some(&admin)), async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        post(&run_b, json!({}), Some(&admin)).await
    });
    assert_eq!((from_a.0, from_b.0), (200, 200), "{from_a:?} {from_b:?}");
    assert_ne!(
        from_a.1["ran"], from_b.1["ran"],
        "the lease lets one node purge at a time: {from_a:?} {from_b:?}"
    );
    let (first, purger, skipper) = if from_a.1["ran"] == true {
        (from_a, &a, &b)
    } else {
        (from_b, &b, &a)
    };
    let kinds: Vec<(String, u64, u64)> = first.1["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k[0].as_str().unwrap().to_string(),
                k[1].as_u64().unwrap(),
                k[2].as_u64().unwrap(),
            )
        })
        .collect();
    let of = |name: &str| kinds.iter().find(|k| k.0 == name).cloned().unwrap();
    assert_eq!(
        of("transcripts"),
        ("transcripts".into(), 25, 13),
        "{kinds:?}"
    );
    assert_eq!(of("files").1, 1, "{kinds:?}");
    assert_eq!(
        of("webhook_log").1,
        6,
        "3 deliveries and 3 events: {kinds:?}"
    );
    assert_eq!(of("audit").1, 1, "{kinds:?}");
    assert_eq!(
        of("offline_messages"),
        ("offline_messages".into(), 3, 2),
        "{kinds:?}"
    );

    // Only what was older than each window went.
    assert_eq!(count(&cluster, "messages").await, 3);
    assert_eq!(
        count(&cluster, "interactions").await,
        4,
        "three chats and the recent offline message"
    );
    assert_eq!(count(&cluster, "offline_messages").await, 1);
    assert!(store.offline_message("off-new").await.unwrap().is_some());
    assert!(store.offline_message("off-old-0").await.unwrap().is_none());
    assert_eq!(count(&cluster, "webhook_deliveries").await, 1);
    assert_eq!(count(&cluster, "webhook_events").await, 1);
    assert!(store.message_by_chat("new0").await.unwrap().is_some());
    assert!(store.message_by_chat("old0").await.unwrap().is_none());
    assert_eq!(stored_objects(&dir, "oldfile"), 0);
    assert_eq!(stored_objects(&dir, "newfile"), 1);
    let (_, audit) = get(&format!("{}/api/admin/audit", http(&b)), Some(&admin)).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"new.entry") && !actions.contains(&"old.entry"),
        "{actions:?}"
    );
    let purge = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "retention.purge")
        .unwrap();
    // Pages of one entry, newest first, follow each other without gaps.
    let (_, page1) = get(
        &format!("{}/api/admin/audit?limit=1", http(&b)),
        Some(&admin),
    )
    .await;
    let (_, page2) = get(
        &format!(
            "{}/api/admin/audit?limit=1&before={}",
            http(&b),
            page1["next_before"]
        ),
        Some(&admin),
    )
    .await;
    assert_eq!(page1["entries"][0], audit["entries"][0]);
    assert_eq!(page2["entries"][0], audit["entries"][1]);
    let (status, _) = get(
        &format!("{}/api/admin/audit?limit=0", http(&b)),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(purge["actor"], "system");
    assert_eq!(purge["detail"]["transcripts"], 25);

    let purged = "switchboard_retention_purged_total{kind=\"transcripts\"}";
    assert_eq!(metric(&metrics_text(&http(purger)).await, purged), 25.0);
    let purged = "switchboard_retention_purged_total{kind=\"offline_messages\"}";
    assert_eq!(metric(&metrics_text(&http(purger)).await, purged), 3.0);
    let skipped = "switchboard_retention_runs_total{outcome=\"skipped\"}";
    assert_eq!(metric(&metrics_text(&http(skipper)).await, skipped), 1.0);
    // The lease was released: the next run (on B) runs, and finds nothing more to delete.
    let (_, again) = post(&run(&b), json!({}), Some(&admin)).await;
    assert_eq!(again["ran"], true, "{again}");
    assert!(
        again["kinds"].as_array().unwrap().iter().all(|k| k[1] == 0),
        "{again}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    cluster.cleanup().await;
}

sqlite_and_postgres!(retention => retention_sqlite, retention_postgres);
