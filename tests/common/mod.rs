//! Test harness: real nodes on port 0 against a real Redis (own key prefix per test) and a real
//! SQL store (own SQLite file, or own PostgreSQL schema), plus WebSocket and HTTP clients.
#![allow(dead_code)]

pub mod accounts;
pub mod canned;
pub mod chats;
pub mod fault_node;
pub mod integrations;
pub mod local_files;
pub mod own_redis;
pub mod process;
pub mod proxy;
pub mod smtp;
pub mod store_backends;
pub mod topology;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::app::{self, Running};
use switchboard::config::Settings;
use switchboard::store::{NewAgent, Store};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// Every test file includes this module; those that take no chat step leave these unused.
#[allow(unused_imports)]
pub use chats::*;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn redis_url() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Runs `redis-cli` against the test Redis; returns what it printed.
pub fn redis_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(redis_url())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The `id` of the client named `name` in a `CLIENT LIST` answer.
pub fn client_id_named(list: &str, name: &str) -> String {
    let name = format!("name={name}");
    list.lines()
        .find(|l| l.split(' ').any(|kv| kv == name))
        .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix("id=")))
        .unwrap_or_else(|| panic!("no client with {name} in {list}"))
        .to_string()
}

pub fn pg_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Runs one statement on the PostgreSQL test database (schema set-up and tear-down).
pub async fn pg_admin(sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&pg_url())
        .await
        .expect("PostgreSQL must be reachable (SWITCHBOARD_TEST_PG_URL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .expect("admin statement");
}

/// Which SQL backend a cluster uses.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `sqlite_and_postgres!(body => name_sqlite, name_postgres)` makes the two tests that run the
/// test body `async fn body(backend: Backend)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! sqlite_and_postgres {
    ($body:ident => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $body($crate::common::Backend::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $body($crate::common::Backend::Postgres).await;
        }
    };
}

/// A test's shared world: one Redis prefix, one store, any number of nodes.
pub struct Cluster {
    pub settings: Settings,
    pub store: Store,
    pub prefix: String,
    pg_schema: Option<String>,
}

impl Cluster {
    pub async fn new(backend: Backend) -> Cluster {
        Cluster::with(backend, |_| {}).await
    }

    /// Fast timers for tests; `tweak` adjusts further.
    pub async fn with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Cluster {
        // Node warnings show up in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let id = unique();
        let mut s = Settings::defaults();
        s.server.listen = "127.0.0.1:0".into();
        s.redis.url = redis_url();
        s.redis.key_prefix = format!("t-{id}");
        s.auth.token_secret = format!("test-secret-{id}-0123456789abcdefghij");
        s.chat.timer_poll_ms = 50;
        s.chat.timer_lease_ms = 2_000;
        s.flush.claim_idle_ms = 1_000;
        s.server.drain_seconds = 5;
        // Every test client comes from 127.0.0.1: the per-address quotas would otherwise
        // throttle tests that open many visitors (tests/abuse.rs sets its own small limits;
        // the per-visitor ones stay as configured).
        s.abuse.new_visitors_per_ip_per_minute = 100_000;
        s.abuse.new_visitors_per_ip_burst = 100_000;
        s.abuse.chat_requests_per_ip_per_hour = 100_000;
        s.abuse.chat_requests_per_ip_burst = 100_000;
        s.abuse.page_views_per_ip_per_minute = 100_000;
        s.abuse.page_views_per_ip_burst = 100_000;
        // A drain ends once its work is done: no load balancer here needs time to notice.
        s.server.drain_listen_seconds = 0;
        let mut pg_schema = None;
        s.store.url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}/switchboard-test-{id}.db?mode=rwc",
                std::env::temp_dir().display()
            ),
            Backend::Postgres => {
                let schema = format!("t_{id}");
                pg_admin(&format!("CREATE SCHEMA {schema}")).await;
                pg_schema = Some(schema.clone());
                format!("{}?options=-c%20search_path%3D{schema}", pg_url())
            }
        };
        tweak(&mut s);
        // A test that shortens a grace period gets a keep-alive interval that fits the rule
        // `Settings::validate` checks: at most a sixth of the shorter grace.
        let shortest = s.chat.visitor_grace_ms.min(s.chat.agent_grace_ms);
        if s.limits.ping_interval_ms.saturating_mul(6) > shortest {
            s.limits.ping_interval_ms = (shortest / 6).max(1);
        }
        s.validate().expect("test settings are valid");
        let store = Store::connect(&s.store.url, 4).await.expect("store");
        Cluster {
            prefix: s.redis.key_prefix.clone(),
            settings: s,
            store,
            pg_schema,
        }
    }

    pub async fn node(&self) -> Running {
        self.node_with(|_| {}).await
    }

    /// A node of this cluster with some of its own settings changed.
    pub async fn node_with(&self, tweak: impl FnOnce(&mut Settings)) -> Running {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        app::start(settings).await.expect("node starts")
    }

    pub async fn agent(&self, username: &str, max_chats: i64) -> i64 {
        self.store
            .create_agent(&NewAgent {
                username: username.into(),
                display_name: format!("Agent {username}"),
                password: "secret-password".into(),
                role: "agent".into(),
                max_chats,
                queues: vec!["general".into()],
            })
            .await
            .expect("agent created")
            .id
    }

    /// Number of keys under this test's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        redis_cli(&["--scan", "--pattern", &format!("{}*", self.prefix)])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Keys that still name `chat` once it is forgotten, except its after-chat ticket
    /// (`{a:CHAT}`), which outlives the chat on purpose: its visitor may rate it or have its
    /// transcript e-mailed for `chat.after_chat_window_ms`.
    pub async fn chat_keys_left(&self, chat: &str) -> Vec<String> {
        let ticket = format!("{}{{a:{chat}}}", self.prefix);
        self.redis_keys()
            .await
            .into_iter()
            .filter(|k| k.contains(chat) && *k != ticket)
            .collect()
    }

    pub async fn cleanup(self) {
        if let Some(schema) = &self.pg_schema {
            pg_admin(&format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}

pub fn http(node: &Running) -> String {
    format!("http://{}", node.addr)
}

pub async fn post(url: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    accounts::call(reqwest::Method::POST, url, Some(body), token).await
}

pub async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    accounts::call(reqwest::Method::GET, url, None, token).await
}

pub async fn put(url: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    accounts::call(reqwest::Method::PUT, url, Some(body), token).await
}

pub async fn delete(url: &str, token: Option<&str>) -> (u16, Value) {
    accounts::call(reqwest::Method::DELETE, url, None, token).await
}

/// Uploads `body` into `chat` as `token` (visitor or agent), named by `?name=` when given;
/// returns the status and the JSON answer.
pub async fn try_upload(
    node: &Running,
    chat: &str,
    name: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    token: &str,
) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&format!("{}/api/chats/{chat}/files", http(node))).unwrap();
    if let Some(n) = name {
        url.query_pairs_mut().append_pair("name", n);
    }
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Uploads a file named `name` into `chat` as `token` (visitor or agent); returns its id.
pub async fn upload(
    node: &Running,
    chat: &str,
    token: &str,
    name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> String {
    let (status, v) = try_upload(node, chat, Some(name), content_type, body, token).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().expect("file id").to_string()
}

/// The Prometheus text of `GET {base}/metrics`.
pub async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("http")
        .text()
        .await
        .expect("metrics text")
}

pub async fn visitor_token(node: &Running) -> (String, String) {
    let (status, v) = post(
        &format!("{}/api/visitor/session", http(node)),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    (
        v["visitor_id"].as_str().unwrap().into(),
        v["token"].as_str().unwrap().into(),
    )
}

pub async fn agent_token(node: &Running, username: &str) -> String {
    let (status, v) = post(
        &format!("{}/api/agent/login", http(node)),
        json!({"username": username, "password": "secret-password"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().into()
}

/// A WebSocket client speaking JSON frames.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub welcome: Value,
    /// Frames received but not yet consumed by an `expect`.
    backlog: Vec<Value>,
    pub closed: Option<u16>,
}

impl Client {
    pub async fn connect(node: &Running, role: &str, token: &str) -> Client {
        Client::connect_to(node.addr, role, token).await
    }

    /// Connects to a node by its address (e.g. a node run as its own process).
    pub async fn connect_to(addr: std::net::SocketAddr, role: &str, token: &str) -> Client {
        let url = format!("ws://{addr}/ws/{role}?token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut c = Client {
            ws,
            welcome: Value::Null,
            backlog: vec![],
            closed: None,
        };
        c.welcome = c.expect("welcome").await;
        c
    }

    /// Connects with extra request headers (e.g. `x-forwarded-for` through a trusted proxy).
    pub async fn connect_with_headers(
        node: &Running,
        role: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Client {
        match Client::try_connect_with_headers(node, role, token, headers).await {
            Ok(c) => c,
            Err(code) => panic!("no welcome frame: the node closed the socket with {code}"),
        }
    }

    /// Connects with extra request headers; Err(close code) when the node closes the socket
    /// instead of sending `welcome` (a refused token, origin or limit).
    pub async fn try_connect_with_headers(
        node: &Running,
        role: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/ws/{role}?token={token}", node.addr)
            .into_client_request()
            .expect("request");
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                    .expect("header name"),
                v.parse().expect("header value"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connect");
        let mut c = Client {
            ws,
            welcome: Value::Null,
            backlog: vec![],
            closed: None,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        match c.next_frame(deadline).await {
            Some(f) if f["type"] == "welcome" => {
                c.welcome = f;
                Ok(c)
            }
            Some(f) => panic!("expected welcome or a close, got {f}"),
            None => Err(c.closed.expect("closed without welcome")),
        }
    }

    pub async fn visitor(node: &Running, token: &str) -> Client {
        Client::connect(node, "visitor", token).await
    }

    pub async fn agent(node: &Running, token: &str) -> Client {
        Client::connect(node, "agent", token).await
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        let _ = self.ws.send(m).await;
    }

    async fn next_frame(&mut self, deadline: tokio::time::Instant) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("json frame")),
                Ok(Message::Close(f)) => {
                    self.closed = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                    return None;
                }
                Ok(_) => continue,
                Err(_) => {
                    self.closed.get_or_insert(1006);
                    return None;
                }
            }
        }
    }

    /// Sends `request` (a `request_chat` frame) and returns the chat id its `queued` answer
    /// names.
    pub async fn request_chat(&mut self, request: Value) -> String {
        self.send(request).await;
        self.expect("queued").await["chat_id"]
            .as_str()
            .expect("queued names its chat")
            .to_string()
    }

    /// Waits for a frame matching `pred`; frames skipped on the way stay in the backlog.
    pub async fn expect_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Some(f) = self.next_frame(deadline).await {
            if pred(&f) {
                return f;
            }
            self.backlog.push(f);
        }
        panic!(
            "no {what} frame within {WAIT:?}; closed={:?}; got: {:#?}",
            self.closed, self.backlog
        );
    }

    pub async fn expect(&mut self, kind: &str) -> Value {
        let k = kind.to_string();
        self.expect_where(kind, move |f| f["type"] == k.as_str())
            .await
    }

    /// Collects every frame arriving within `d`.
    pub async fn drain_for(&mut self, d: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + d;
        let mut out = std::mem::take(&mut self.backlog);
        while let Some(f) = self.next_frame(deadline).await {
            out.push(f);
        }
        out
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.closed.is_none() {
            if self.next_frame(deadline).await.is_none() && self.closed.is_none() {
                panic!("connection not closed within {WAIT:?}");
            }
        }
        self.closed.unwrap()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// An entry frame with this text.
    pub async fn expect_text(&mut self, text: &str) -> Value {
        let t = text.to_string();
        self.expect_where(text, move |f| {
            f["type"] == "entry" && f["entry"]["text"] == t.as_str()
        })
        .await
    }
}

/// Opens a WebSocket that the node is expected to close at once; returns the close code.
pub async fn close_code_of(
    req: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
) -> u16 {
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade accepted");
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)).unwrap_or(1005),
            Some(Ok(Message::Text(t))) => panic!("unexpected frame {t}"),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Polls `f` until it returns Some, for up to `WAIT`.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
