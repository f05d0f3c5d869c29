//! A real SMTP server for tests: Python's aiosmtpd on a loopback port, storing what it receives
//! in a Maildir.

use super::eventually;
use std::process::{Child, Command, Stdio};

/// A real SMTP server (aiosmtpd) on a free loopback port, storing what it receives in a
/// Maildir. Stopped by its PID when dropped.
pub struct SmtpSink {
    child: Child,
    dir: std::path::PathBuf,
}

impl SmtpSink {
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    pub async fn start(port: u16) -> SmtpSink {
        let dir = std::env::temp_dir().join(format!("sb-smtp-{port}-{}", std::process::id()));
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (scripts/test installs it)");
        let sink = SmtpSink { child, dir };
        eventually("the SMTP server listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        sink
    }

    /// The messages received so far, as raw text.
    pub fn received(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dir.join("new")) else {
            return vec![];
        };
        rd.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
