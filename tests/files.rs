//! Files both ways: uploads over HTTP into a running chat, live `file` entries on the other
//! node, downloads only by participants with the safe headers, limits, and the flushed
//! transcript. Visitor on one node, agent on another, real Redis and SQLite.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use switchboard::app::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX: usize = 64 * 1024;

fn png(len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..len - b.len()).map(|i| (i * 7 % 251) as u8));
    b
}

/// Objects in the file directory (data and sidecars; staging files of aborted uploads too).
fn stored(dir: &PathBuf) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Downloads with the token in the query string (as the widget's links do; visitor tokens
/// only) or as Bearer.
async fn download(node: &Running, id: &str, token: &str, in_query: bool) -> reqwest::Response {
    let c = reqwest::Client::new();
    let r = if in_query {
        c.get(format!("{}/api/files/{id}?token={token}", http(node)))
    } else {
        c.get(format!("{}/api/files/{id}", http(node)))
            .bearer_auth(token)
    };
    r.send().await.expect("http")
}

async fn download_ok(
    node: &Running,
    id: &str,
    token: &str,
    in_query: bool,
) -> (Vec<u8>, reqwest::header::HeaderMap) {
    let r = download(node, id, token, in_query).await;
    assert_eq!(r.status().as_u16(), 200);
    let headers = r.headers().clone();
    (r.bytes().await.unwrap().to_vec(), headers)
}

async fn refused(node: &Running, id: &str, token: &str) -> (u16, Value) {
    let r = download(node, id, token, false).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sends a chunked body (no Content-Length) of up to `total` bytes and returns the status
/// line's code: the node must answer 413 once the limit passes, without reading it all.
async fn chunked_upload(node: &Running, chat: &str, token: &str, total: usize) -> u16 {
    let stream = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /api/chats/{chat}/files?name=big.txt HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {token}\r\nContent-Type: text/plain\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 16 * 1024];
        let mut sent = 0;
        while sent < total {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<usize, std::io::Error>(sent)
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without a response");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a response before the body ends");
    let sent = writer.await.unwrap();
    // The node refused long before the end: the writer was cut off or finished into a
    // closed request, but the answer never waited for the whole body.
    let _ = sent;
    String::from_utf8_lossy(&got)
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_both_ways_between_participants_only() {
    let dir = std::env::temp_dir().join(format!("sb-files-{}", uuid::Uuid::new_v4().simple()));
    let dir_s = dir.to_str().unwrap().to_string();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.files.url = dir_s.clone();
        s.files.max_bytes = MAX as u64;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "ann", 2).await;
    let atoken = agent_token(&b, "ann").await;
    let (mut visitor, chat, _vid, vtoken) = requesting_visitor(&a, "Here is a photo").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    agent.expect("chat_started").await;

    // Visitor -> agent, uploaded on the visitor's node, announced on the agent's.
    let photo = png(20_000);
    let (status, v) = try_upload(
        &a,
        &chat,
        Some("photo.png"),
        "image/png",
        photo.clone(),
        &vtoken,
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["name"], "photo.png");
    assert_eq!(v["size"], 20_000);
    assert_eq!(v["content_type"], "image/png");
    let photo_id = v["id"].as_str().unwrap().to_string();
    let live = agent
        .expect_where("file entry", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "file"
        })
        .await;
    assert_eq!(live["chat_id"], chat.as_str());
    assert_eq!(live["entry"]["seq"], v["seq"]);
    assert_eq!(live["entry"]["author"], "visitor");
    assert_eq!(live["entry"]["text"], "photo.png");
    assert_eq!(
        live["entry"]["data"],
        json!({"id": photo_id, "name": "photo.png", "size": 20_000, "content_type": "image/png"})
    );

    // Agent -> visitor, with a charset parameter and a UTF-8 name.
    let notes = "Steps:\n1. restart\n2. retry\n".as_bytes().to_vec();
    let (status, v) = try_upload(
        &b,
        &chat,
        Some("Schritte für Sie.txt"),
        "text/plain; charset=utf-8",
        notes.clone(),
        &atoken,
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let notes_id = v["id"].as_str().unwrap().to_string();
    let live = visitor
        .expect_where("file entry", |f| {
            f["type"] == "entry" && f["entry"]["event"] == "file" && f["entry"]["author"] == "agent"
        })
        .await;
    assert_eq!(live["entry"]["data"]["id"], notes_id.as_str());
    assert_eq!(live["entry"]["data"]["content_type"], "text/plain");

    // Both participants download both files, from either node, identical bytes, safe headers.
    for (node, token, in_query) in [
        (&a, &vtoken, false),
        (&b, &atoken, false),
        (&a, &atoken, false),
        (&b, &vtoken, true),
    ] {
        let (bytes, h) = download_ok(node, &photo_id, token, in_query).await;
        assert_eq!(bytes, photo);
        assert_eq!(h["content-type"], "image/png");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "private, no-store");
        assert_eq!(h["content-security-policy"], "sandbox");
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png"
        );
        let (bytes, h) = download_ok(node, &notes_id, token, in_query).await;
        assert_eq!(bytes, notes);
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"Schritte f_r Sie.txt\"; filename*=UTF-8''Schritte%20f%C3%BCr%20Sie.txt"
        );
    }

    // Shown in place on request: raster images only, same credentials, same safe headers.
    let inline = |node: &Running, id: &str, token: &str| {
        let url = format!("{}/api/files/{id}?token={token}&view=image", http(node));
        async move { reqwest::get(url).await.expect("http") }
    };
    let r = inline(&b, &photo_id, &vtoken).await;
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"photo.png\"; filename*=UTF-8''photo.png"
    );
    let r = inline(&a, &notes_id, &vtoken).await;
    assert_eq!(r.status(), 415);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], 4003, "{e}");
    let (_, stranger) = visitor_token(&a).await;
    assert_eq!(inline(&a, &photo_id, &stranger).await.status(), 403);

    // Not a participant: another visitor, an agent not assigned, no token, a forged token.
    let (_, other_visitor) = visitor_token(&a).await;
    cluster.agent("bob", 1).await;
    let other_agent = agent_token(&a, "bob").await;
    for t in [&other_visitor, &other_agent] {
        let (status, e) = refused(&a, &photo_id, t).await;
        assert_eq!((status, e["code"].as_u64()), (403, Some(4005)), "{e}");
        let (status, _) =
            try_upload(&a, &chat, Some("x.txt"), "text/plain", b"x".to_vec(), t).await;
        assert_eq!(status, 403);
    }
    let r = reqwest::get(format!("{}/api/files/{photo_id}", http(&a)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(refused(&a, &photo_id, "forged.token").await.0, 403);
    assert_eq!(
        refused(&a, "0123456789abcdef0123456789abcdef", &vtoken)
            .await
            .0,
        404
    );
    assert_eq!(refused(&a, "..%2F..%2Fetc", &vtoken).await.0, 404);

    let before = stored(&dir);
    assert_eq!(before, 4, "two files, two sidecars");

    // Limits: too big (declared and streamed), wrong type, content not matching its type.
    let (status, e) = try_upload(
        &a,
        &chat,
        Some("big.png"),
        "image/png",
        png(MAX + 1),
        &vtoken,
    )
    .await;
    assert_eq!((status, e["code"].as_u64()), (413, Some(4001)), "{e}");
    assert_eq!(
        chunked_upload(&a, &chat, &vtoken, 4 * 1024 * 1024).await,
        413
    );
    let (status, v) = try_upload(&a, &chat, Some("max.png"), "image/png", png(MAX), &vtoken).await;
    assert_eq!(status, 201, "exactly files.max_bytes is fine: {v}");
    for (ct, body) in [
        ("text/html", b"<html><script>alert(1)</script>".to_vec()),
        (
            "image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>".to_vec(),
        ),
        ("image/png", b"<html><script>alert(1)</script>".to_vec()),
        ("application/pdf", b"MZ\x90\x00 not a pdf".to_vec()),
        ("", b"no type".to_vec()),
    ] {
        let (status, e) = try_upload(&a, &chat, Some("x"), ct, body, &vtoken).await;
        assert_eq!((status, e["code"].as_u64()), (415, Some(4003)), "{ct}: {e}");
    }

    // Names: required, never a path, no control or direction-changing characters.
    let long = "x".repeat(201);
    for name in [
        None,
        Some(""),
        Some("../../etc/passwd"),
        Some("..\\boot.ini"),
        Some("a\nb.txt"),
        Some("gpj\u{202E}.exe"),
        Some(long.as_str()),
    ] {
        let (status, e) = try_upload(&a, &chat, name, "text/plain", b"x".to_vec(), &vtoken).await;
        assert_eq!(
            (status, e["code"].as_u64()),
            (400, Some(4003)),
            "{name:?}: {e}"
        );
    }
    let (status, _) = try_upload(&a, &chat, Some("empty.txt"), "text/plain", vec![], &vtoken).await;
    assert_eq!(status, 400);
    assert_eq!(stored(&dir), before + 2, "only max.png was kept");

    // The chat ends: no more uploads; participants still download until the flush.
    visitor.send(json!({"type": "end", "chat_id": chat})).await;
    agent.expect("chat_ended").await;
    let (status, e) = try_upload(
        &a,
        &chat,
        Some("late.txt"),
        "text/plain",
        b"late".to_vec(),
        &vtoken,
    )
    .await;
    assert_eq!((status, e["code"].as_u64()), (409, Some(4006)), "{e}");
    download_ok(&a, &photo_id, &vtoken, true).await;

    decide(&mut agent, &chat, "create").await;
    let msg = eventually("transcript in SQL", || async {
        cluster.store.message_by_chat(&chat).await.unwrap()
    })
    .await;
    let files: Vec<(&str, &str)> = msg
        .entries
        .iter()
        .filter(|e| e.event == "file")
        .map(|e| (e.author.as_str(), e.text.as_str()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("visitor", "photo.png"),
            ("agent", "Schritte für Sie.txt"),
            ("visitor", "max.png")
        ]
    );
    // The flushed entries keep the file id, so agents can still download from the transcript.
    let first = msg.entries.iter().find(|e| e.event == "file").unwrap();
    assert_eq!(first.data.as_ref().unwrap()["id"], photo_id.as_str());

    // Flushed: the visitor's link stops working; the agent who handled the chat keeps access,
    // another agent has none.
    eventually("chat gone from redis", || async {
        let r = a.service.redis.chat_record(&chat).await.unwrap();
        r.is_empty().then_some(())
    })
    .await;
    assert_eq!(refused(&a, &photo_id, &vtoken).await.0, 403);
    assert_eq!(download_ok(&b, &photo_id, &atoken, false).await.0, photo);
    assert_eq!(refused(&b, &photo_id, &other_agent).await.0, 403);

    agent.close().await;
    visitor.close().await;
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The same storage code against S3: set `SWITCHBOARD_TEST_S3_URL=s3://bucket/prefix` and the
/// usual `AWS_*` variables (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true` for a local S3-compatible
/// server such as `moto_server` or MinIO). Skipped when unset. Covers a small upload (one PUT)
/// and one over the 5 MiB part size (a multipart upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_small_and_multipart() {
    let Ok(base) = std::env::var("SWITCHBOARD_TEST_S3_URL") else {
        eprintln!("SWITCHBOARD_TEST_S3_URL is not set: S3 round trip skipped");
        return;
    };
    let url = format!(
        "{}/t-{}",
        base.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    );
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.files.url = url.clone();
        s.files.max_bytes = 12 << 20;
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "s3ann", 1).await;
    let atoken = agent_token(&b, "s3ann").await;
    let (mut visitor, chat, _vid, vtoken) = requesting_visitor(&a, "s3").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    for size in [3_000, (5 << 20) + 12_345] {
        let body = png(size);
        let (status, v) = try_upload(
            &a,
            &chat,
            Some("s3.png"),
            "image/png",
            body.clone(),
            &vtoken,
        )
        .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["size"], size);
        let id = v["id"].as_str().unwrap();
        let (got, h) = download_ok(&b, id, &atoken, false).await;
        assert_eq!(got.len(), body.len());
        assert!(got == body);
        assert_eq!(h["content-type"], "image/png");
    }
    // Over the limit after two parts went up: the multipart upload is aborted. Streamed
    // without Content-Length (an early refusal of a declared length resets the connection
    // under a client still sending megabytes).
    assert_eq!(chunked_upload(&a, &chat, &vtoken, 13 << 20).await, 413);
    a.drain().await;
    b.drain().await;
    cluster.cleanup().await;
}
