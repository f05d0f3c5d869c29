//! Who downloads a chat's files, across two nodes: signed short-lived links instead of tokens in
//! URLs, only the agents who handled a flushed chat (and supervisors and admins), and nothing
//! at all of a trashed chat, whose files leave the file storage with it.

mod common;

use common::accounts::{admin, call, create_with_role};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use switchboard::app::Running;
use switchboard::chat::identity::{FileLink, Tokens};

fn png(len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..len - b.len()).map(|i| (i * 7 % 251) as u8));
    b
}

fn stored(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// GET a path of `node` without any credentials but what the URL carries.
async fn fetch(node: &Running, path_and_query: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(format!("{}{path_and_query}", http(node)))
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// A download with a bearer token: the status.
async fn download(node: &Running, id: &str, token: &str) -> u16 {
    get(&format!("{}/api/files/{id}", http(node)), Some(token))
        .await
        .0
}

/// A signed link for the caller: its URL.
async fn link(node: &Running, id: &str, token: &str) -> (u16, Value) {
    call(
        Method::POST,
        &format!("{}/api/files/{id}/link", http(node)),
        None,
        Some(token),
    )
    .await
}

async fn decided_and_flushed(agent: &mut Client, cluster: &Cluster, chat: &str, decision: &str) {
    agent
        .send(json!({"type": "decide", "chat_id": chat, "decision": decision}))
        .await;
    agent.expect("decided").await;
    eventually("flushed", || async {
        cluster.store.message_by_chat(chat).await.unwrap()
    })
    .await;
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("sb-files-{}", uuid::Uuid::new_v4().simple()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_signed_short_lived_and_never_carry_an_agent_token() {
    let dir = temp_dir();
    let dir_s = dir.to_str().unwrap().to_string();
    let cluster = Cluster::with(Backend::Sqlite, |s| s.files.url = dir_s.clone()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let atoken = agent_token(&b, "ann").await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "photo").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    let photo = png(5_000);
    let id = upload(&a, &chat, &vtoken, "photo.png", "image/png", photo.clone()).await;
    let other = upload(&a, &chat, &vtoken, "photo.png", "image/png", png(100)).await;

    // The agent asks node B for a link and follows it on node A with no token at all.
    let (status, l) = link(&b, &id, &atoken).await;
    assert_eq!(status, 200, "{l}");
    let url = l["url"].as_str().unwrap().to_string();
    assert!(!url.contains(&atoken) && !url.contains("token="), "{url}");
    assert!(l["expires_at"].as_i64().unwrap() <= switchboard::chat::now_ms() + 61_000);
    assert_eq!(fetch(&a, &url).await, (200, photo.clone()));
    // The visitor too.
    let (status, vl) = link(&a, &id, &vtoken).await;
    assert_eq!(status, 200);
    assert_eq!(fetch(&b, vl["url"].as_str().unwrap()).await.0, 200);
    // Bound to the file, the party and the time: any change is refused.
    let sig = url.rsplit("sig=").next().unwrap().to_string();
    assert_eq!(fetch(&a, &url.replace(&id, &other)).await.0, 403);
    assert_eq!(fetch(&a, &url.replace("exp=", "exp=9")).await.0, 403);
    let first = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{first}{}", &sig[1..]);
    assert_eq!(fetch(&a, &url.replace(&sig, &forged)).await.0, 403);
    let tokens = Tokens::new(&cluster.settings.auth.token_secret, 60, 60);
    let agent_id = agent.welcome["id"].as_str().unwrap();
    let expired = FileLink {
        file: id.clone(),
        party: format!("a:{agent_id}:1"),
        expires: 1_000,
    };
    let stale = format!(
        "/api/files/{id}?by={}&exp=1000&sig={}",
        expired.party,
        tokens.sign_file_link(&expired)
    );
    assert_eq!(fetch(&a, &stale).await.0, 403);
    // An agent token in a URL is refused outright; a visitor's still works (the widget).
    let (status, body) = fetch(&a, &format!("/api/files/{id}?token={atoken}")).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        fetch(&a, &format!("/api/files/{id}?token={vtoken}"))
            .await
            .0,
        200
    );
    // A link dies with the session it was issued under.
    let (status, l) = link(&b, &id, &atoken).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        Method::POST,
        &format!("{}/api/agent/logout", http(&a)),
        None,
        Some(&atoken),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(fetch(&a, l["url"].as_str().unwrap()).await.0, 403);
    cluster.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_files_go_to_their_agents_and_trashed_ones_are_deleted() {
    let dir = temp_dir();
    let dir_s = dir.to_str().unwrap().to_string();
    let cluster = Cluster::with(Backend::Sqlite, |s| s.files.url = dir_s.clone()).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let boss = admin(&cluster, &a, "boss").await;
    let mut ann = available_agent(&cluster, &b, "ann", 2).await;
    let ann_token = agent_token(&b, "ann").await;
    let mut bob = available_agent(&cluster, &a, "bob", 2).await;
    let bob_token = agent_token(&a, "bob").await;
    cluster.agent("carl", 2).await;
    let carl_token = agent_token(&a, "carl").await;
    create_with_role(&cluster, "sue", "supervisor").await;
    let sue_token = agent_token(&b, "sue").await;

    // Ann takes the chat, the visitor sends a file, Ann hands the chat to Bob, who ends it.
    set_status(&mut bob, "away").await;
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "photo").await;
    accept_offer(&mut ann, &mut visitor, &chat).await;
    let id = upload(&a, &chat, &vtoken, "photo.png", "image/png", png(3_000)).await;
    // While the chat runs: a supervisor (who may follow it read-only) downloads its file,
    // another agent does not.
    assert_eq!(download(&b, &id, &sue_token).await, 200);
    assert_eq!(download(&b, &id, &carl_token).await, 403);
    set_status(&mut bob, "available").await;
    let bob_id: i64 = bob.welcome["id"].as_str().unwrap().parse().unwrap();
    ann.send(json!({"type": "transfer", "chat_id": chat, "to_agent": bob_id}))
        .await;
    bob.expect("chat_assigned").await;
    bob.send(json!({"type": "resume", "chat_id": chat, "last_seq": ""}))
        .await;
    bob.expect("resumed").await;
    bob.send(json!({"type": "end", "chat_id": chat})).await;
    bob.expect("chat_ended").await;
    decided_and_flushed(&mut bob, &cluster, &chat, "create").await;
    eventually("chat gone from redis", || async {
        let r = a.service.redis.chat_record(&chat).await.unwrap();
        r.is_empty().then_some(())
    })
    .await;
    let msg = cluster.store.message_by_chat(&chat).await.unwrap().unwrap();
    let ann_id: i64 = ann.welcome["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(msg.agents, vec![ann_id, bob_id]);
    // Both agents who handled it, the supervisor and the admin download it; another agent and
    // the visitor not.
    for (token, want) in [
        (&ann_token, 200),
        (&bob_token, 200),
        (&sue_token, 200),
        (&boss, 200),
        (&carl_token, 403),
        (&vtoken, 403),
    ] {
        assert_eq!(download(&b, &id, token).await, want);
        assert_eq!(link(&a, &id, token).await.0, want);
    }

    // A trashed chat: its file is deleted from the storage with the flush.
    set_status(&mut ann, "away").await;
    let before = stored(&dir);
    let (mut visitor, chat, _, vtoken) = requesting_visitor(&a, "secret").await;
    accept_offer(&mut bob, &mut visitor, &chat).await;
    let trashed = upload(&a, &chat, &vtoken, "photo.png", "image/png", png(2_000)).await;
    assert_eq!(stored(&dir), before + 2, "the file and its sidecar");
    assert_eq!(download(&b, &trashed, &bob_token).await, 200);
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    bob.expect_where("ended", |f| {
        f["type"] == "chat_ended" && f["chat_id"] == chat.as_str()
    })
    .await;
    decided_and_flushed(&mut bob, &cluster, &chat, "trash").await;
    eventually("the trashed chat's file deleted", || async {
        (stored(&dir) == before).then_some(())
    })
    .await;
    for token in [&bob_token, &boss] {
        assert_eq!(download(&b, &trashed, token).await, 404);
    }
    cluster.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}
