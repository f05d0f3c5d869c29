//! A redis-server of the test's own, for faults that must not touch the shared Redis: kill -9
//! and restart (with or without persistence), writes refused, connections killed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::app::Running;

use super::topology::free_ports;

/// A redis-server of the test's own on a spare port, in a directory of its own, killed with
/// SIGKILL and restarted on the same port and directory at will.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Append-only file with an fsync on every write; without it the server keeps nothing
    /// over a restart.
    persistent: bool,
}

impl OwnRedis {
    /// Persistent: a restart brings back every acknowledged write.
    pub fn start() -> OwnRedis {
        OwnRedis::launch(true)
    }

    /// Without persistence: a restart comes back empty.
    pub fn volatile() -> OwnRedis {
        OwnRedis::launch(false)
    }

    fn launch(persistent: bool) -> OwnRedis {
        let [port] = free_ports::<1>();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-faults-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = OwnRedis {
            port,
            dir,
            child: None,
            persistent,
        };
        r.spawn();
        r
    }

    /// Starts the server (again, after `crash`).
    pub fn spawn(&mut self) {
        let aof = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().unwrap(), "--save", ""])
            .args(["--appendonly", aof, "--appendfsync", "always"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while !self.cli(&["PING"]).contains("PONG") {
            assert!(Instant::now() < end, "own redis on {} not up", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` against this server; what it printed, errors included.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// A crash: SIGKILL, by this test's own child handle.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every write refused (used memory above `maxmemory`, nothing may be evicted).
    pub fn refuse_writes(&self) {
        self.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        self.cli(&["CONFIG", "SET", "maxmemory", "1"]);
        let probe = self.cli(&["SET", "probe", "x"]);
        assert!(probe.contains("OOM"), "writes still accepted: {probe}");
    }

    pub fn accept_writes(&self) {
        self.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    }

    pub fn hget(&self, key: &str, field: &str) -> String {
        self.cli(&["HGET", key, field]).trim().to_string()
    }

    /// Whether `agent` may be offered a chat of `general` now.
    pub fn routable(&self, node: &Running, agent: &str) -> bool {
        let avail = node.service.redis.keys.avail("general");
        !self.cli(&["ZSCORE", &avail, agent]).trim().is_empty()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
