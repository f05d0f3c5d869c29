//! Redis over TLS (`rediss://`): a chat across two nodes whose every Redis connection is
//! encrypted, and a clear refusal where the port does not speak TLS.
//!
//! The nodes trust the test's own CA through `SSL_CERT_FILE` (fred's rustls connector reads
//! the system's certificates, and that variable points it elsewhere). The variable is set for
//! this process only: cargo-nextest runs every test in a process of its own, and this file
//! holds nothing else that would read it.

mod common;

use common::topology::Procs;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_across_nodes_over_tls_and_refusal_of_a_plaintext_port() {
    let (_redis, tls_port, plain_port, ca) = Procs::tls();
    // SAFETY of the call: set before any thread of this test reads the environment (the
    // runtime's workers do not), and nothing else in this process changes it.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca) };

    let cluster = Cluster::with(Backend::Sqlite, |s| {
        s.redis.url = format!("rediss://127.0.0.1:{tls_port}");
    })
    .await;
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut agent = available_agent(&cluster, &b, "tess", 1).await;
    let (mut visitor, chat, _, _) = requesting_visitor(&a, "over TLS?").await;
    accept_offer(&mut agent, &mut visitor, &chat).await;
    both_ways(&mut visitor, &mut agent, &chat, "encrypted?", "all the way").await;

    // Every connection the nodes hold to this server came in on the TLS port (the plaintext
    // one only served the test's own redis-cli).
    let clients = common::topology::cli(plain_port, &["CLIENT", "LIST"]);
    let on = |port: u16| {
        clients
            .lines()
            .filter(|l| l.contains(&format!(" laddr=127.0.0.1:{port} ")))
            .count()
    };
    assert!(on(tls_port) >= 2 * 6, "TLS clients: {clients}");
    assert_eq!(on(plain_port), 1, "only redis-cli itself: {clients}");

    // A rediss:// URL pointing at a port that speaks plaintext: the node refuses to start
    // with an error that says what to check, instead of talking in the clear.
    let mut settings = cluster.settings.clone();
    settings.redis.url = format!("rediss://127.0.0.1:{plain_port}");
    let err = switchboard::app::start(settings)
        .await
        .err()
        .expect("a TLS connection to a plaintext port fails");
    let text = format!("{err:#}");
    assert!(text.contains("TLS"), "{text}");
    cluster.cleanup().await;
}
