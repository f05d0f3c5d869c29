//! The real `switchboard` binary as a child process: for what only a process shows (exit codes,
//! its log, its resource limits). Stopped by its PID when the guard drops.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// Settings every child shares: the test Redis under a fresh prefix, a fresh SQLite file, a
/// port picked by the caller, a valid token secret. Callers override or remove entries.
pub fn base_env(port: u16) -> Vec<(String, String)> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let db = std::env::temp_dir().join(format!("switchboard-proc-{id}.db"));
    [
        ("SWITCHBOARD__SERVER__LISTEN", format!("127.0.0.1:{port}")),
        ("SWITCHBOARD__SERVER__DRAIN_SECONDS", "2".into()),
        ("SWITCHBOARD__SERVER__DRAIN_LISTEN_SECONDS", "0".into()),
        ("SWITCHBOARD__REDIS__URL", super::redis_url()),
        ("SWITCHBOARD__REDIS__KEY_PREFIX", format!("p-{id}")),
        (
            "SWITCHBOARD__STORE__URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        ),
        (
            "SWITCHBOARD__FILES__URL",
            std::env::temp_dir()
                .join(format!("switchboard-proc-{id}-files"))
                .display()
                .to_string(),
        ),
        (
            "SWITCHBOARD__AUTH__TOKEN_SECRET",
            format!("process-test-secret-{id}-0123456789"),
        ),
        ("NO_COLOR", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A command for the binary with exactly `env` as its SWITCHBOARD settings (none inherited).
pub fn command(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    c
}

/// A running node process; its output is collected for assertions.
pub struct NodeProcess {
    child: Child,
    pub log: Arc<Mutex<String>>,
    pub port: u16,
}

impl NodeProcess {
    /// Starts `serve` through `bash -c "PRELUDE; exec BIN serve"` (e.g. a `ulimit`) and waits
    /// until `/readyz` answers 200.
    pub fn start(env: &[(String, String)], port: u16, prelude: &str) -> NodeProcess {
        let script = format!("{prelude}\nexec \"$0\" serve");
        let mut bash = Command::new("bash");
        for (k, _) in std::env::vars() {
            if k.starts_with("SWITCHBOARD") {
                bash.env_remove(k);
            }
        }
        let mut child = bash
            .args(["-c", &script, BIN])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs the node");
        let log = Arc::new(Mutex::new(String::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut node = NodeProcess { child, log, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node exited with {status}: {}", node.log());
            }
            if http_status(port, "/readyz") == Some(200) {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node not ready in 30 s: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's resident memory in kB (`VmRSS`).
    pub fn rss_kb(&self) -> u64 {
        rss_kb_of(&format!("/proc/{}/status", self.pid()))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` in kB from a `/proc/PID/status` file.
pub fn rss_kb_of(status_file: &str) -> u64 {
    std::fs::read_to_string(status_file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The status of `GET path` on 127.0.0.1:`port` over a fresh connection, or None when no
/// answer came within 3 s.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A path for a file of the test's own under the temp directory.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "switchboard-{}-{name}",
        uuid::Uuid::new_v4().simple()
    ))
}
