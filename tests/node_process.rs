//! The binary as an operator runs it: it refuses unsafe configuration with exit code 64, takes
//! an agent's password from stdin or a file, raises its open-file limit, and logs failed
//! logins without their password.

mod common;

use common::process::{base_env, command, http_status, temp_path, NodeProcess};
use common::topology::free_ports;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};
use switchboard::store::Store;

/// Runs the binary to its end (at most 20 s); returns its exit code and what it printed.
fn run_to_end(mut c: std::process::Command, stdin: Option<&str>) -> (i32, String) {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 20 s (it should have refused to start): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn with(env: &[(String, String)], key: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| k != key).cloned().collect();
    if let Some(v) = value {
        env.push((key.to_string(), v.to_string()));
    }
    env
}

#[test]
fn unsafe_token_secrets_stop_the_node_with_64_naming_the_key() {
    let [port] = free_ports::<1>();
    let env = base_env(port);
    for secret in [
        None,
        Some(""),
        Some("change-me-change-me-change-me-change-me"),
        Some("only-31-characters-long-secret!"),
    ] {
        let env = with(&env, "SWITCHBOARD__AUTH__TOKEN_SECRET", secret);
        let (code, out) = run_to_end(command(&env, &["serve"]), None);
        assert_eq!(code, 64, "secret {secret:?}: {out}");
        assert!(
            out.contains("auth.token_secret"),
            "secret {secret:?}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_add_reads_the_password_from_stdin_or_a_file() {
    let env = base_env(0);
    let add = |user: &str, extra: &[&str]| {
        let mut args = vec!["agent", "add", "--username", user];
        args.extend_from_slice(extra);
        command(&env, &args)
    };
    let (code, out) = run_to_end(add("ann", &["--password-stdin"]), Some("from-stdin 1\n"));
    assert_eq!(code, 0, "{out}");
    let file = temp_path("password");
    std::fs::write(&file, "from-file 2\r\nsecond line ignored\n").unwrap();
    let (code, out) = run_to_end(
        add("bob", &["--password-file", file.to_str().unwrap()]),
        None,
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 0, "{out}");
    // The visible form keeps working.
    let (code, out) = run_to_end(add("cy", &["--password", "from-argv 3"]), None);
    assert_eq!(code, 0, "{out}");
    // Nothing to read, or two sources at once, is a usage error.
    let (code, out) = run_to_end(add("dee", &["--password-stdin"]), Some(""));
    assert_eq!(code, 64, "{out}");
    let (code, out) = run_to_end(add("dee", &["--password-stdin", "--password", "x"]), None);
    assert_ne!(code, 0, "{out}");
    let (code, out) = run_to_end(add("dee", &[]), None);
    assert_ne!(code, 0, "{out}");

    let url = &env
        .iter()
        .find(|(k, _)| k == "SWITCHBOARD__STORE__URL")
        .unwrap()
        .1;
    let store = Store::connect(url, 1).await.unwrap();
    for (user, password) in [
        ("ann", "from-stdin 1"),
        ("bob", "from-file 2"),
        ("cy", "from-argv 3"),
    ] {
        let ok = store.verify_password(user, password).await.unwrap();
        assert!(ok.is_some(), "{user} cannot log in with {password:?}");
    }
    // The line ending is not part of the password.
    assert!(store
        .verify_password("bob", "from-file 2\r")
        .await
        .unwrap()
        .is_none());
}

/// 400 idle connections to a node started with a soft limit of 256 open files: the node raises
/// the soft limit to the hard one, so it keeps accepting and `/healthz` answers.
#[test]
fn idle_sockets_beyond_a_low_soft_file_limit_leave_healthz_answering() {
    let [port] = free_ports::<1>();
    let env = with(
        &base_env(port),
        "SWITCHBOARD__SERVER__HEADER_TIMEOUT_MS",
        Some("60000"),
    );
    let node = NodeProcess::start(&env, port, "ulimit -Sn 256");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", node.pid())).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(soft > 256, "soft open-file limit not raised: {limits}");

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let idle: Vec<std::net::TcpStream> = (0..400)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        http_status(port, "/healthz"),
        Some(200),
        "healthz with {} idle sockets open; log: {}",
        idle.len(),
        node.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_and_logged_without_the_password() {
    let [port] = free_ports::<1>();
    let env = base_env(port);
    let (code, out) = run_to_end(
        command(
            &env,
            &["agent", "add", "--username", "ann", "--password-stdin"],
        ),
        Some("the-right-one\n"),
    );
    assert_eq!(code, 0, "{out}");
    let node = NodeProcess::start(&env, port, "");
    let url = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{url}/api/agent/login"))
        .json(&serde_json::json!({"username": "ann", "password": "hunter2-never-logged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let logged = common::eventually("the failed login in the log", || {
        let log = node.log();
        async move { log.contains("login failed").then_some(log) }
    })
    .await;
    assert!(logged.contains("ann"), "{logged}");
    assert!(!logged.contains("hunter2"), "password in the log: {logged}");
    let metrics = common::metrics_text(&url).await;
    assert!(
        metrics.contains("switchboard_login_failures_total{reason=\"wrong_credentials\"} 1"),
        "{metrics}"
    );
}
