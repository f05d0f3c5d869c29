//! Where the load tester may connect (loopback targets only), and how: sockets bound to a
//! rotating 127.0.0.x source address before connecting, the WebSocket client of `wire`, and
//! set-up frames encoded with the server's own protocol types (the hot path's frames are in
//! `frames`, the Socket.IO peer's protocol in `socketio`).

use crate::wire::{self, In, Reader, Writer};
use anyhow::{anyhow, bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use switchboard::protocol::{
    decode_server, encode_client, ClientFrame, Encoding, ServerFrame, MSGPACK_SUBPROTOCOL,
};
use tokio::net::{TcpSocket, TcpStream};

/// One node to load, as given on the command line.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:8080`, for the HTTP API.
    pub base: String,
    pub addr: SocketAddr,
}

/// Parses `http://host:port,...`. Only loopback IPv4 addresses (or `localhost`) are accepted:
/// the tool must never load a machine it was not pointed at on purpose.
pub fn parse_targets(list: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = raw
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("target {raw}: must start with http://"))?;
        let hostport = rest.trim_end_matches('/');
        if hostport.contains('/') {
            bail!("target {raw}: give only scheme, host and port");
        }
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("target {raw}: port missing"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("target {raw}: bad port"))?;
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .with_context(|| format!("target {raw}: host must be an IP address or localhost"))?
        };
        if !ip.is_loopback() {
            bail!(
                "target {raw}: refusing a non-loopback address; this tool only loads 127.0.0.0/8"
            );
        }
        if !ip.is_ipv4() {
            bail!("target {raw}: use an IPv4 loopback address (127.x.x.x) so source addresses can be spread");
        }
        let addr = SocketAddr::new(ip, port);
        out.push(Target {
            base: format!("http://{addr}"),
            addr,
        });
    }
    if out.is_empty() {
        bail!("no targets given");
    }
    Ok(out)
}

/// Hands out client sockets spread over `127.0.0.1 ..= 127.0.0.N` (one source address has
/// about 28,000 ephemeral ports), and says which server the targets are.
pub struct Net {
    pub encoding: Encoding,
    pub peer: Peer,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Net {
    pub fn new(encoding: Encoding, peer: Peer, source_addrs: u8) -> Net {
        let n = source_addrs.max(1);
        let sources = (1..=n)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        Net {
            encoding,
            peer,
            sources,
            next: AtomicUsize::new(0),
        }
    }

    pub async fn tcp(&self, to: SocketAddr) -> Result<TcpStream> {
        let src = self.sources[self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len()];
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src, 0))
            .with_context(|| format!("bind {src}"))?;
        let s = sock.connect(to).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// Opens `ws://target/path` (asking for `subprotocol` if given) and returns both sides of
    /// the socket once the HTTP upgrade is done.
    pub async fn raw_ws(
        &self,
        target: &Target,
        path: &str,
        subprotocol: Option<&str>,
    ) -> Result<(Reader, Arc<Writer>)> {
        let stream = self.tcp(target.addr).await?;
        wire::connect(stream, &target.addr.to_string(), path, subprotocol).await
    }

    /// Opens a Switchboard socket at `path` and returns it once the handshake is done (the
    /// `welcome` frame is left for the caller to read).
    pub async fn ws(&self, target: &Target, path: &str) -> Result<Ws> {
        let sub = (self.encoding == Encoding::MsgPack).then_some(MSGPACK_SUBPROTOCOL);
        let (rd, wr) = self.raw_ws(target, path, sub).await?;
        Ok(Ws {
            rd,
            wr,
            enc: self.encoding,
        })
    }
}

/// The server the scenarios talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// Switchboard nodes (HTTP API and `/ws/...` sockets).
    Switchboard,
    /// The Socket.IO peer of `loadtest/peers/socketio` (Engine.IO v4 / Socket.IO v5 over a
    /// plain WebSocket).
    Socketio,
    /// The bare relay of `loadtest/peers/relay`: Switchboard's frames, no sessions, a chat
    /// joined with `resume`.
    Relay,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Switchboard => "switchboard",
            Peer::Socketio => "socketio",
            Peer::Relay => "relay",
        }
    }
}

/// What a read from the socket yields. Nearly every read is a frame, moved once to its
/// handler: boxing it would cost the load generator an allocation per frame for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Incoming {
    Frame(ServerFrame),
    /// Closed by the server with this code (1005 when none, 1006 when abrupt).
    Closed(u16),
    Undecodable(String),
}

/// A Switchboard socket with the protocol's full frame types: for set-up and control frames
/// (the hot path encodes and decodes in place, see `frames`).
pub struct Ws {
    pub rd: Reader,
    pub wr: Arc<Writer>,
    pub enc: Encoding,
}

/// Writes one client frame (allocates: not for the hot path).
pub fn send_frame(wr: &Writer, enc: Encoding, f: &ClientFrame) -> Result<()> {
    let bytes = encode_client(f, enc);
    match enc {
        Encoding::Json => wr.text(&bytes)?,
        Encoding::MsgPack => wr.binary(&bytes)?,
    }
    Ok(())
}

/// Decodes a whole server frame from a payload.
pub fn decode(payload: &[u8], enc: Encoding) -> Incoming {
    decoded(decode_server(payload, enc))
}

impl Ws {
    pub fn send(&self, f: &ClientFrame) -> Result<()> {
        send_frame(&self.wr, self.enc, f)
    }

    /// Next server frame; cancel-safe (usable in `select!`).
    pub async fn recv(&mut self) -> Incoming {
        match self.rd.recv().await {
            In::Text(p) | In::Binary(p) => decode(p, self.enc),
            In::Closed(code) => Incoming::Closed(code),
        }
    }

    pub async fn close(self) {
        self.rd.close().await;
    }
}

fn decoded(r: Result<ServerFrame, switchboard::protocol::DecodeError>) -> Incoming {
    match r {
        Ok(f) => Incoming::Frame(f),
        Err(e) => Incoming::Undecodable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert_eq!(
            parse_targets("http://127.0.0.1:8080,http://localhost:81")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_targets("http://10.0.0.1:8080").is_err());
        assert!(parse_targets("http://example.com:80").is_err());
        assert!(parse_targets("https://127.0.0.1:80").is_err());
        assert!(parse_targets("http://[::1]:80").is_err());
        assert!(parse_targets("").is_err());
    }
}
