//! Agent sessions and the admin API across two nodes: a logout, a password reset, disabling or
//! deleting an agent end its sessions at once on every node (HTTP refused, sockets closed with
//! 4401), role checks read the store, changed settings reach open sockets (4409, reconnect),
//! the last admin stays, and the command line does the same against a running cluster.

mod common;

use common::accounts::{admin, call};
use common::*;
use reqwest::Method;
use serde_json::json;
use switchboard::app::Running;

fn url(node: &Running, path: &str) -> String {
    format!("{}{path}", http(node))
}

/// A console socket of `token` on `node`, past its first frames.
async fn console(node: &Running, token: &str) -> Client {
    let mut c = Client::agent(node, token).await;
    c.expect("status").await;
    c
}

fn id_of(c: &Client) -> i64 {
    c.welcome["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_ends_every_session_of_the_agent_on_every_node() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("lou", 2).await;
    let token = agent_token(&a, "lou").await;
    let other_login = agent_token(&b, "lou").await;
    let (mut tab_a, mut tab_b) = (console(&a, &token).await, console(&b, &other_login).await);
    for node in [&a, &b] {
        assert_eq!(get(&url(node, "/api/agent/me"), Some(&token)).await.0, 200);
    }

    let (status, _) = call(
        Method::POST,
        &url(&a, "/api/agent/logout"),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(status, 204);
    // Both logins, both nodes: sockets closed as "log in again", HTTP refused.
    assert_eq!(tab_a.expect_close().await, 4401);
    assert_eq!(tab_b.expect_close().await, 4401);
    for (node, t) in [(&a, &token), (&b, &token), (&b, &other_login)] {
        let (status, e) = get(&url(node, "/api/agent/me"), Some(t)).await;
        assert_eq!((status, e["code"].as_u64()), (403, Some(4005)), "{e}");
        let (status, _) = get(&url(node, "/api/interactions"), Some(t)).await;
        assert_eq!(status, 403);
        let ws = format!("ws://{}/ws/agent?token={t}", node.addr);
        assert_eq!(close_code_of(ws).await, 4401);
    }
    // Redis losing its copy of the session version brings nothing back: the store has it.
    redis_cli(&[
        "DEL",
        &format!("{}{{u:a:{}}}:session", cluster.prefix, id_of(&tab_a)),
    ]);
    assert_eq!(get(&url(&b, "/api/agent/me"), Some(&token)).await.0, 403);
    // A new login works.
    let fresh = agent_token(&b, "lou").await;
    assert_eq!(get(&url(&a, "/api/agent/me"), Some(&fresh)).await.0, 200);
    console(&a, &fresh).await;
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_come_from_the_store_and_a_deleted_agent_reads_nothing() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let boss = admin(&cluster, &a, "boss").await;
    let deputy = admin(&cluster, &b, "deputy").await;
    let (_, agents) = get(&url(&a, "/api/admin/agents"), Some(&boss)).await;
    let deputy_id = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "deputy")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // Demoted on node A: the deputy's token, still valid, no longer manages agents on B.
    let (status, changed) = call(
        Method::PATCH,
        &url(&a, &format!("/api/admin/agents/{deputy_id}")),
        Some(json!({"role": "agent"})),
        Some(&boss),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["role"], "agent");
    let new_admin = json!({"username": "mallory", "password": "secret-password", "role": "admin"});
    let (status, e) = post(
        &url(&b, "/api/admin/agents"),
        new_admin.clone(),
        Some(&deputy),
    )
    .await;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("only admins manage agents"))
    );
    assert_eq!(
        get(&url(&b, "/api/admin/agents"), Some(&deputy)).await.0,
        403
    );
    assert_eq!(get(&url(&b, "/api/agent/me"), Some(&deputy)).await.0, 200);

    // Deleted: the token reads nothing anywhere, its socket is closed.
    cluster.agent("gone", 2).await;
    let gone = agent_token(&b, "gone").await;
    let mut socket = console(&b, &gone).await;
    let gone_id = id_of(&socket);
    let (status, _) = call(
        Method::DELETE,
        &url(&a, &format!("/api/admin/agents/{gone_id}")),
        None,
        Some(&boss),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(socket.expect_close().await, 4401);
    for path in [
        "/api/interactions",
        "/api/queues",
        "/api/canned",
        "/api/agent/me",
    ] {
        for node in [&a, &b] {
            assert_eq!(get(&url(node, path), Some(&gone)).await.0, 403, "{path}");
        }
    }
    assert_eq!(
        close_code_of(format!("ws://{}/ws/agent?token={gone}", a.addr)).await,
        4401
    );
    let (status, _) = call(
        Method::DELETE,
        &url(&a, &format!("/api/admin/agents/{gone_id}")),
        None,
        Some(&boss),
    )
    .await;
    assert_eq!(status, 404);
    // Only admins reach the admin API at all.
    for (method, path) in [
        (Method::PATCH, format!("/api/admin/agents/{deputy_id}")),
        (
            Method::POST,
            format!("/api/admin/agents/{deputy_id}/disable"),
        ),
        (Method::DELETE, format!("/api/admin/agents/{deputy_id}")),
    ] {
        let (status, _) = call(method, &url(&a, &path), Some(json!({})), Some(&deputy)).await;
        assert_eq!(status, 403, "{path}");
    }
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_agent_is_signed_out_and_its_chats_go_to_someone_else() {
    let cluster = Cluster::new(Backend::Postgres).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let boss = admin(&cluster, &a, "boss").await;
    let mut dora = available_agent(&cluster, &b, "dora", 1).await;
    let dora_id = id_of(&dora);
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "help").await;
    accept_offer(&mut dora, &mut visitor, &chat).await;
    let mut eve = available_agent(&cluster, &a, "eve", 1).await;

    let (status, d) = call(
        Method::POST,
        &url(&a, &format!("/api/admin/agents/{dora_id}/disable")),
        None,
        Some(&boss),
    )
    .await;
    assert_eq!((status, d["disabled"].as_bool()), (200, Some(true)), "{d}");
    assert_eq!(dora.expect_close().await, 4401);
    // The running chat went back to its queue and to the other agent.
    eve.expect_where("offer", |f| {
        f["type"] == "offer" && f["chat_id"] == chat.as_str()
    })
    .await;
    eve.send(json!({"type": "accept", "chat_id": chat})).await;
    let started = visitor
        .expect_where("eve joins", |f| {
            f["type"] == "chat_started" && f["agent_name"] == "Agent eve"
        })
        .await;
    assert_eq!(started["chat_id"], chat.as_str());
    // Cannot log in while disabled; can again once enabled.
    let login = json!({"username": "dora", "password": "secret-password"});
    let (status, e) = post(&url(&b, "/api/agent/login"), login.clone(), None).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("the agent is disabled"))
    );
    let (status, _) = call(
        Method::POST,
        &url(&b, &format!("/api/admin/agents/{dora_id}/enable")),
        None,
        Some(&boss),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(post(&url(&b, "/api/agent/login"), login, None).await.0, 200);

    // The last enabled admin cannot be disabled, demoted or deleted.
    let boss_id = get(&url(&a, "/api/agent/me"), Some(&boss)).await.1["id"]
        .as_i64()
        .unwrap();
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/admin/agents/{boss_id}/disable"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/admin/agents/{boss_id}"),
            Some(json!({"role": "agent"})),
        ),
        (Method::DELETE, format!("/api/admin/agents/{boss_id}"), None),
    ] {
        let (status, e) = call(method, &url(&b, &path), body, Some(&boss)).await;
        assert_eq!(
            (status, e["code"].as_u64()),
            (409, Some(4006)),
            "{path}: {e}"
        );
    }
    assert_eq!(get(&url(&b, "/api/admin/agents"), Some(&boss)).await.0, 200);
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_queues_reach_open_sockets_and_routing_at_once() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let boss = admin(&cluster, &a, "boss").await;
    let mut sam = available_agent(&cluster, &b, "sam", 2).await;
    let sam_id = id_of(&sam);
    let (status, changed) = call(
        Method::PATCH,
        &url(&a, &format!("/api/admin/agents/{sam_id}")),
        Some(json!({"queues": ["sales"], "display_name": "Sam Sales", "max_chats": 1})),
        Some(&boss),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["queues"], json!(["sales"]));
    assert_eq!(sam.expect_close().await, 4409);
    // Reconnected, the agent is still available, now in sales, under its new name.
    let token = agent_token(&b, "sam").await;
    let mut sam = Client::agent(&b, &token).await;
    assert_eq!(sam.expect("status").await["status"], "available");
    let (_, vtoken) = visitor_token(&a).await;
    let mut v = Client::visitor(&a, &vtoken).await;
    let chat = v
        .request_chat(json!({"type": "request_chat", "queue": "sales", "question": "price?"}))
        .await;
    sam.expect_where("offer", |f| {
        f["type"] == "offer" && f["chat_id"] == chat.as_str()
    })
    .await;
    sam.send(json!({"type": "accept", "chat_id": chat})).await;
    let started = v.expect("chat_started").await;
    assert_eq!(started["agent_name"], "Sam Sales");
    // Unknown fields are refused rather than ignored.
    let (status, _) = call(
        Method::PATCH,
        &url(&a, &format!("/api/admin/agents/{sam_id}")),
        Some(json!({"queue": ["general"]})),
        Some(&boss),
    )
    .await;
    assert_eq!(status, 422);
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_ends_sessions_and_the_command_line_manages_agents() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    cluster.agent("pat", 2).await;
    let token = agent_token(&a, "pat").await;
    let mut socket = console(&b, &token).await;
    let cli = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let s = &cluster.settings;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .env("SWITCHBOARD__REDIS__URL", &s.redis.url)
            .env("SWITCHBOARD__REDIS__KEY_PREFIX", &s.redis.key_prefix)
            .env("SWITCHBOARD__STORE__URL", &s.store.url)
            .env("SWITCHBOARD__AUTH__TOKEN_SECRET", &s.auth.token_secret)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("switchboard runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    // The password comes from stdin, never the command line.
    let (code, out) = cli(
        &["agent", "reset-password", "pat", "--password-stdin"],
        "a-new-long-password\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(socket.expect_close().await, 4401);
    assert_eq!(get(&url(&a, "/api/agent/me"), Some(&token)).await.0, 403);
    let old = json!({"username": "pat", "password": "secret-password"});
    assert_eq!(post(&url(&a, "/api/agent/login"), old, None).await.0, 403);
    let new = json!({"username": "pat", "password": "a-new-long-password"});
    let (status, login) = post(&url(&a, "/api/agent/login"), new, None).await;
    assert_eq!(status, 200);
    let token = login["token"].as_str().unwrap().to_string();

    let mut socket = console(&a, &token).await;
    let (code, out) = cli(
        &[
            "agent",
            "set",
            "pat",
            "--role",
            "admin",
            "--queues",
            "general,vip",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(socket.expect_close().await, 4409);
    assert_eq!(
        get(&url(&b, "/api/admin/agents"), Some(&token)).await.0,
        200
    );
    let (code, out) = cli(&["agent", "list"], "");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("pat") && l.contains("admin") && l.contains("general,vip")),
        "{out}"
    );

    // Pat is the only enabled admin: it cannot be disabled until there is another.
    let (code, out) = cli(&["agent", "disable", "pat"], "");
    assert_eq!(code, Some(3), "{out}");
    admin(&cluster, &a, "root").await;
    let mut socket = console(&b, &token).await;
    let (code, out) = cli(&["agent", "disable", "pat"], "");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(socket.expect_close().await, 4401);
    assert_eq!(get(&url(&a, "/api/agent/me"), Some(&token)).await.0, 403);
    let (code, out) = cli(&["agent", "delete", "nobody"], "");
    assert_eq!(code, Some(4), "{out}");
    let (code, out) = cli(
        &["agent", "reset-password", "pat", "--password-stdin"],
        "short\n",
    );
    assert_eq!(code, Some(64), "{out}");
    let (code, _) = cli(
        &[
            "agent",
            "reset-password",
            "pat",
            "secret-on-the-command-line",
        ],
        "",
    );
    assert_eq!(
        code,
        Some(2),
        "clap refuses a password argument (usage error)"
    );
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_sessions_are_checked_against_the_store() {
    let (_redis, port) = common::topology::Procs::standalone();
    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    let a = cluster.node().await;
    cluster.agent("ria", 2).await;
    let old = agent_token(&a, "ria").await;
    let (status, _) = call(
        Method::POST,
        &url(&a, "/api/agent/logout"),
        None,
        Some(&old),
    )
    .await;
    assert_eq!(status, 204);
    let fresh = agent_token(&a, "ria").await;
    // Redis goes away (the process stops): the node falls back to the store, which knows both.
    common::topology::cli(port, &["SHUTDOWN", "NOSAVE"]);
    assert_eq!(get(&url(&a, "/api/agent/me"), Some(&fresh)).await.0, 200);
    assert_eq!(get(&url(&a, "/api/agent/me"), Some(&old)).await.0, 403);
    a.kill();
    cluster.cleanup().await;
}
