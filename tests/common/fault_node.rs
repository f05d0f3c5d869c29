//! A node of a test `Cluster` run as its own OS process (the built `switchboard serve`), for faults that need a
//! real process: SIGSTOP / SIGCONT (a frozen node), kill -9. It shares the test cluster's Redis
//! prefix, token secret and timer settings; the store URL is the test's to give (e.g. through
//! a proxy). Its log goes to a file that a failing test prints.

use super::Cluster;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NodeProcess {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    dir: PathBuf,
}

impl NodeProcess {
    /// Starts a node with the cluster's settings, `store_url` as its store and `extra`
    /// environment variables (`SWITCHBOARD__SECTION__KEY`) on top; returns once `/readyz`
    /// answers 200.
    pub async fn start(cluster: &Cluster, store_url: &str, extra: &[(&str, String)]) -> Self {
        let s = &cluster.settings;
        let [port] = super::topology::free_ports::<1>();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-node-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("node.log");
        let out = std::fs::File::create(&log).unwrap();
        let vars: Vec<(String, String)> = [
            ("SERVER__LISTEN", format!("127.0.0.1:{port}")),
            ("SERVER__NODE_NAME", format!("proc-{port}")),
            ("SERVER__DRAIN_SECONDS", s.server.drain_seconds.to_string()),
            ("REDIS__URL", s.redis.url.clone()),
            ("REDIS__KEY_PREFIX", s.redis.key_prefix.clone()),
            ("AUTH__TOKEN_SECRET", s.auth.token_secret.clone()),
            ("STORE__URL", store_url.to_string()),
            ("FILES__URL", format!("file://{}/files", dir.display())),
            ("CHAT__TIMER_POLL_MS", s.chat.timer_poll_ms.to_string()),
            ("CHAT__TIMER_LEASE_MS", s.chat.timer_lease_ms.to_string()),
            (
                "CHAT__VISITOR_GRACE_MS",
                s.chat.visitor_grace_ms.to_string(),
            ),
            ("CHAT__AGENT_GRACE_MS", s.chat.agent_grace_ms.to_string()),
            (
                "LIMITS__PING_INTERVAL_MS",
                s.limits.ping_interval_ms.to_string(),
            ),
            ("FLUSH__CLAIM_IDLE_MS", s.flush.claim_idle_ms.to_string()),
            (
                "STORE__STATEMENT_TIMEOUT_MS",
                s.store.statement_timeout_ms.to_string(),
            ),
            (
                "STORE__LOCK_TIMEOUT_MS",
                s.store.lock_timeout_ms.to_string(),
            ),
            (
                "STORE__CONNECT_TIMEOUT_MS",
                s.store.connect_timeout_ms.to_string(),
            ),
            (
                "SERVER__READY_TIMEOUT_MS",
                s.server.ready_timeout_ms.to_string(),
            ),
            ("LOG__LEVEL", "info".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("serve")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in vars {
            cmd.env(format!("SWITCHBOARD__{k}"), v);
        }
        let child = cmd.spawn().expect("switchboard binary");
        let mut node = NodeProcess {
            child,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            log,
            dir,
        };
        node.wait_ready().await;
        node
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("node exited with {status}:\n{}", self.log_text());
            }
            let r = client
                .get(format!("{}/readyz", self.http()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(r, Ok(ref r) if r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < end,
                "node not ready in 30 s:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Through the shell's own `kill` (no procps needed on a minimal machine).
    fn signal(&self, sig: &str) {
        let ok = Command::new("sh")
            .args(["-c", &format!("kill {sig} {}", self.pid())])
            .status()
            .expect("sh")
            .success();
        assert!(ok, "kill {sig} {}", self.pid());
    }

    /// SIGSTOP: the process stops where it is; the kernel keeps its sockets open.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    /// Stopped by its PID: thawed first (a stopped process would not act on a signal), then
    /// killed; its files removed.
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -CONT {}", self.pid())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} log ---\n{}", self.addr, self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
