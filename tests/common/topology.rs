//! Throw-away Redis topologies on loopback for tests: a 3-master Cluster, a Sentinel set
//! (master, replica, one sentinel) and a server that speaks TLS. Every process is a child of the test and is stopped by its
//! PID when the guard drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Procs {
    children: Vec<Child>,
    pub dir: std::path::PathBuf,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `N` distinct ports nothing listens on now: all are held open together while they are
/// picked, so none is handed out twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// Runs `redis-cli` against the server on `port`; returns what it printed.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Procs {
    fn new() -> Procs {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-redis-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Procs {
            children: vec![],
            dir,
        }
    }

    fn spawn(&mut self, program: &str, args: &[String]) {
        let child = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        self.children.push(child);
    }

    fn redis(&mut self, port: u16, extra: &[&str]) {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn("redis-server", &args);
        wait_until("redis up", Duration::from_secs(5), || {
            cli(port, &["ping"]).contains("PONG")
        });
    }

    /// One throw-away standalone server on a spare port (a test that stops Redis uses its own,
    /// never the shared one). Returns its port.
    pub fn standalone() -> (Procs, u16) {
        let mut p = Procs::new();
        let [port] = free_ports::<1>();
        p.redis(port, &[]);
        (p, port)
    }

    /// One server with a TLS port beside its plaintext one, its certificate (for 127.0.0.1)
    /// signed by a CA made for this test with `openssl`. Returns the TLS port, the plaintext
    /// port and the CA's PEM file.
    pub fn tls() -> (Procs, u16, u16, std::path::PathBuf) {
        let mut p = Procs::new();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&p.dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=switchboard test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ][..],
                &ec,
            ]
            .concat(),
        );
        openssl(
            &[
                &[
                    "req",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                ][..],
                &ec,
            ]
            .concat(),
        );
        std::fs::write(
            p.dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        let [plain, tls] = free_ports::<2>();
        let tls_port = tls.to_string();
        p.redis(
            plain,
            &[
                "--tls-port",
                &tls_port,
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
                "--tls-ca-cert-file",
                "ca.pem",
                "--tls-auth-clients",
                "no",
            ],
        );
        let ca = p.dir.join("ca.pem");
        (p, tls, plain, ca)
    }

    /// Three masters, no replicas; returns the fred URL.
    pub fn cluster() -> (Procs, String) {
        let mut p = Procs::new();
        // Each node's cluster bus gets a port of its own: the default (port + 10,000) can fall
        // outside the port range, or on a port in use, for a port the kernel handed out.
        let [p0, p1, p2, b0, b1, b2] = free_ports::<6>();
        let ports = [p0, p1, p2];
        for (i, (port, bus)) in ports.iter().zip([b0, b1, b2]).enumerate() {
            let conf = p.dir.join(format!("nodes-{i}.conf"));
            p.redis(
                *port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf.to_str().unwrap(),
                    "--cluster-port",
                    &bus.to_string(),
                ],
            );
        }
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(hosts.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new("redis-cli").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for port in &ports {
            wait_until("cluster_state:ok", Duration::from_secs(10), || {
                cli(*port, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        let url = format!(
            "redis-cluster://{}?node={}&node={}",
            hosts[0], hosts[1], hosts[2]
        );
        (p, url)
    }

    /// A master, a replica and a sentinel watching them as `switchboard`; returns
    /// (procs, fred URL, master port, sentinel port).
    pub fn sentinel() -> (Procs, String, u16, u16) {
        let mut p = Procs::new();
        let [master, replica, sentinel] = free_ports::<3>();
        p.redis(master, &[]);
        p.redis(replica, &["--replicaof", "127.0.0.1", &master.to_string()]);
        wait_until("replica in sync", Duration::from_secs(10), || {
            cli(replica, &["info", "replication"]).contains("master_link_status:up")
        });
        let conf = p.dir.join("sentinel.conf");
        std::fs::write(&conf, format!("port {sentinel}\nbind 127.0.0.1\nsentinel monitor switchboard 127.0.0.1 {master} 1\nsentinel down-after-milliseconds switchboard 1000\nsentinel failover-timeout switchboard 5000\n")).unwrap();
        p.spawn("redis-sentinel", &[conf.to_str().unwrap().to_string()]);
        wait_until(
            "sentinel knows the replica",
            Duration::from_secs(10),
            || {
                cli(sentinel, &["sentinel", "replicas", "switchboard"])
                    .contains(&replica.to_string())
            },
        );
        let url =
            format!("redis-sentinel://127.0.0.1:{sentinel}/0?sentinelServiceName=switchboard");
        (p, url, master, sentinel)
    }

    /// Asks the sentinel to promote the replica and waits until it reports the new master.
    pub fn failover(sentinel: u16, old_master: u16) {
        cli(sentinel, &["sentinel", "failover", "switchboard"]);
        wait_until("failover", Duration::from_secs(15), || {
            !cli(
                sentinel,
                &["sentinel", "get-master-addr-by-name", "switchboard"],
            )
            .contains(&old_master.to_string())
        });
    }
}
