//! Engine.IO v4 / Socket.IO v5 over a plain WebSocket, as much of it as the Socket.IO peer of
//! the benchmarks (`loadtest/peers/socketio`) needs: the open packet, connecting to the default
//! namespace with an auth payload, ping/pong, and events with JSON arguments.
//!
//! Wire format, one packet per WebSocket text frame (no long-polling, so no batching): an
//! Engine.IO type digit (`0` open, `1` close, `2` ping, `3` pong, `4` message, `5` upgrade,
//! `6` noop), and inside a message a Socket.IO type digit (`0` connect, `1` disconnect,
//! `2` event, `3` ack, `4` connect error, `5`/`6` binary), an optional `/namespace,`, an
//! optional ack id, then JSON. A typical exchange:
//!
//! ```text
//! <- 0{"sid":"..","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//! -> 40{"role":"visitor","room":"17"}
//! <- 40{"sid":".."}
//! -> 42["msg","lt 0 1234567 xxx"]
//! <- 42["msg","lt 0 1234890 xxx"]
//! <- 2                     (ping from the server)
//! -> 3                     (pong)
//! ```

use crate::net::{Net, Target};
use crate::wire::{In as WsIn, Reader, Writer};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The Engine.IO endpoint, WebSocket transport straight away.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// One packet as read off the wire.
#[derive(Debug, PartialEq)]
pub enum Packet {
    /// Engine.IO open, with its handshake JSON.
    Open(Value),
    /// Engine.IO close.
    Close,
    Ping,
    Pong,
    /// Socket.IO connect accepted (default namespace), with the socket id.
    Connected(String),
    /// Socket.IO connect refused, with the server's message.
    ConnectError(String),
    /// Socket.IO disconnect: the server dropped this client from the namespace.
    Disconnect,
    /// Socket.IO event on the default namespace: its name and arguments.
    Event(String, Vec<Value>),
    /// Anything else: upgrade, noop, acks, binary packets, other namespaces.
    Other,
}

/// Parses one text frame.
pub fn parse(frame: &str) -> Result<Packet> {
    let rest = frame.get(1..).unwrap_or("");
    Ok(match frame.as_bytes().first() {
        Some(b'0') => Packet::Open(serde_json::from_str(rest).context("open packet")?),
        Some(b'1') => Packet::Close,
        Some(b'2') => Packet::Ping,
        Some(b'3') => Packet::Pong,
        Some(b'4') => parse_socketio(rest)?,
        Some(b'5' | b'6') => Packet::Other,
        _ => bail!("not an Engine.IO packet: {:?}", prefix(frame)),
    })
}

fn prefix(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A Socket.IO packet (the payload of an Engine.IO message).
fn parse_socketio(p: &str) -> Result<Packet> {
    let kind = p
        .as_bytes()
        .first()
        .copied()
        .ok_or_else(|| anyhow!("empty Socket.IO packet"))?;
    let mut rest = &p[1..];
    if rest.starts_with('/') {
        let (nsp, after) = rest.split_once(',').unwrap_or((rest, ""));
        if nsp != "/" {
            return Ok(Packet::Other);
        }
        rest = after;
    }
    // An ack id, when the sender wants one.
    rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    Ok(match kind {
        b'0' => {
            let v: Value = serde_json::from_str(rest).context("connect packet")?;
            Packet::Connected(v["sid"].as_str().unwrap_or_default().to_string())
        }
        b'1' => Packet::Disconnect,
        b'2' => {
            let v: Vec<Value> = serde_json::from_str(rest).context("event packet")?;
            let mut it = v.into_iter();
            match it.next() {
                Some(Value::String(name)) => Packet::Event(name, it.collect()),
                _ => bail!("event without a name: {:?}", prefix(p)),
            }
        }
        b'4' => {
            let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
            let msg = v["message"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v.as_str().map(str::to_string))
                .unwrap_or_else(|| v.to_string());
            Packet::ConnectError(msg)
        }
        b'3' | b'5' | b'6' => Packet::Other,
        _ => bail!("unknown Socket.IO packet type: {:?}", prefix(p)),
    })
}

/// `40{auth}`: connect to the default namespace.
pub fn connect_packet(auth: &Value) -> String {
    format!("40{auth}")
}

/// What a read from a connected socket yields.
#[derive(Debug)]
pub enum In {
    /// An event (the idle connections that read these only hold the socket).
    Event,
    /// The server pinged: answer with [`Conn::pong`] (it drops a client that stays silent for
    /// pingInterval + pingTimeout).
    Ping,
    /// The socket is gone: WebSocket close code (1005 when none, 1006 when abrupt), or 1000
    /// when the server closed the Engine.IO session or dropped the namespace.
    Closed(u16),
    /// A frame that is not a Socket.IO packet (counted, skipped).
    Undecodable,
}

/// A client connected to the default namespace.
pub struct Conn {
    pub rd: Reader,
    pub wr: Arc<Writer>,
    /// The Socket.IO socket id the server gave.
    pub sid: String,
}

impl Conn {
    /// Opens the WebSocket, reads the open packet, connects to the default namespace with
    /// `auth` and waits for the server's `40{"sid":..}`, all within `timeout`.
    pub async fn open(net: &Net, target: &Target, auth: &Value, timeout: Duration) -> Result<Conn> {
        let opening = async {
            let (rd, wr) = net.raw_ws(target, PATH, None).await?;
            let mut c = Conn {
                rd,
                wr,
                sid: String::new(),
            };
            c.handshake(auth).await?;
            Ok::<_, anyhow::Error>(c)
        };
        tokio::time::timeout(timeout, opening)
            .await
            .map_err(|_| anyhow!("no Socket.IO connect within {} s", timeout.as_secs()))?
    }

    async fn handshake(&mut self, auth: &Value) -> Result<()> {
        match self.packet().await? {
            Packet::Open(_) => {}
            p => bail!("expected the open packet, got {p:?}"),
        }
        self.send(&connect_packet(auth))?;
        loop {
            match self.packet().await? {
                Packet::Connected(sid) => {
                    self.sid = sid;
                    return Ok(());
                }
                Packet::ConnectError(m) => bail!("connect refused: {m}"),
                Packet::Ping => self.pong()?,
                p => bail!("expected the connect answer, got {p:?}"),
            }
        }
    }

    /// The next packet, during the handshake.
    async fn packet(&mut self) -> Result<Packet> {
        loop {
            match self.rd.recv().await {
                WsIn::Text(t) => return parse(std::str::from_utf8(t).context("text frame")?),
                WsIn::Binary(_) => continue,
                WsIn::Closed(code) => bail!("closed ({code})"),
            }
        }
    }

    fn send(&self, text: &str) -> Result<()> {
        self.wr.text(text.as_bytes())?;
        Ok(())
    }

    pub fn pong(&self) -> Result<()> {
        self.send("3")
    }

    /// Next event (or ping, or the end); cancel-safe (usable in `select!`).
    pub async fn recv(&mut self) -> In {
        loop {
            match self.rd.recv().await {
                WsIn::Text(t) => {
                    let Ok(t) = std::str::from_utf8(t) else {
                        return In::Undecodable;
                    };
                    return match parse(t) {
                        Ok(Packet::Event(..)) => In::Event,
                        Ok(Packet::Ping) => In::Ping,
                        Ok(Packet::Close | Packet::Disconnect) => In::Closed(1000),
                        Ok(_) => continue,
                        Err(_) => In::Undecodable,
                    };
                }
                WsIn::Binary(_) => continue,
                WsIn::Closed(code) => return In::Closed(code),
            }
        }
    }

    /// Waits until the socket closes, answering pings meanwhile; returns the close code.
    pub async fn hold(&mut self) -> u16 {
        loop {
            match self.recv().await {
                In::Ping => {
                    if self.pong().is_err() {
                        return 1006;
                    }
                }
                In::Closed(code) => return code,
                In::Event | In::Undecodable => {}
            }
        }
    }

    /// Leaves the namespace (`41`) and closes the WebSocket.
    pub async fn close(self) {
        let _ = self.send("41");
        self.rd.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `42["name","arg"]`: an event with one string argument, escaped as JSON.
    fn event_packet(name: &str, arg: &str) -> String {
        format!("42{}", serde_json::to_string(&(name, arg)).unwrap())
    }

    #[test]
    fn engine_io_packets() {
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        match parse(open).unwrap() {
            Packet::Open(v) => assert_eq!(v["pingInterval"], 25000),
            p => panic!("{p:?}"),
        }
        assert_eq!(parse("2").unwrap(), Packet::Ping);
        assert_eq!(parse("3").unwrap(), Packet::Pong);
        assert_eq!(parse("1").unwrap(), Packet::Close);
        assert_eq!(parse("6").unwrap(), Packet::Other);
        assert!(parse("").is_err());
        assert!(parse("x").is_err());
    }

    #[test]
    fn socket_io_packets() {
        assert_eq!(
            parse(r#"40{"sid":"s1"}"#).unwrap(),
            Packet::Connected("s1".into())
        );
        assert_eq!(
            parse(r#"44{"message":"role must be visitor or agent"}"#).unwrap(),
            Packet::ConnectError("role must be visitor or agent".into())
        );
        assert_eq!(parse("41").unwrap(), Packet::Disconnect);
        assert_eq!(
            parse(r#"42["msg","lt 3 17 xx"]"#).unwrap(),
            Packet::Event("msg".into(), vec![json!("lt 3 17 xx")])
        );
        // Ack id and explicit default namespace.
        assert_eq!(
            parse(r#"42/,12["msg","a"]"#).unwrap(),
            Packet::Event("msg".into(), vec![json!("a")])
        );
        assert_eq!(
            parse(r#"4212["msg","a"]"#).unwrap(),
            Packet::Event("msg".into(), vec![json!("a")])
        );
        assert_eq!(parse(r#"42/admin,["msg","a"]"#).unwrap(), Packet::Other);
        assert!(parse("42[1]").is_err());
        assert!(parse("42not json").is_err());
    }

    #[test]
    fn packets_written() {
        assert_eq!(
            connect_packet(&json!({ "role": "agent", "room": "5" })),
            r#"40{"role":"agent","room":"5"}"#
        );
        let p = event_packet("msg", "say \"hi\"\n");
        assert_eq!(p, r#"42["msg","say \"hi\"\n"]"#);
        assert_eq!(
            parse(&p).unwrap(),
            Packet::Event("msg".into(), vec![json!("say \"hi\"\n")])
        );
    }
}
