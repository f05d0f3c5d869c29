//! A small WebSocket client (RFC 6455, client side, no extensions) built for the load
//! generator's hot path. A frame can be written from any thread, the paced sender's included,
//! straight to the socket: it is encoded in place into the connection's reused buffer, masked,
//! and handed to a non-blocking `write`, with no allocation and no wake-up of another thread.
//! Reads parse frames out of one reused buffer and lend out the payload. (A tungstenite sink
//! needs `&mut` access from the socket's own task: each paced send used to wake that task on
//! a runtime thread, and every frame went through a fresh allocation.)
//!
//! Only what a full socket buffer leaves over is written later, by the socket's reader (its
//! `recv` also waits for the socket to become writable while anything is left over), so a
//! frame is never split by another one and the sender never waits.

use anyhow::{bail, Context, Result};
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// Room for the longest client frame header (2 + 8 length + 4 mask) ahead of the payload.
const HEAD: usize = 14;
/// Initial read buffer: an idle connection should stay small; it grows for larger frames.
const READ_BUFFER: usize = 4096;
/// A frame larger than this ends the connection (site-visitors snapshots are the largest).
const MAX_FRAME: usize = 64 << 20;

/// The writing side of a connection; shared by the socket's task and the paced sender.
pub struct Writer {
    stream: Arc<TcpStream>,
    st: Mutex<WriteState>,
    /// Tells the reader that bytes were left over and wait for the socket to drain.
    left_over: Notify,
}

struct WriteState {
    /// The frame being written (reused).
    frame: Vec<u8>,
    /// Bytes the socket did not take yet, written before anything else.
    backlog: Vec<u8>,
    mask: [u8; 4],
    dead: bool,
}

/// A payload as read: borrowed from the connection's buffer until the next `recv`.
pub enum In<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    /// The server closed (its close code, 1005 when none) or the socket failed (1006).
    Closed(u16),
}

/// The reading side of a connection; owned by the socket's task.
pub struct Reader {
    stream: Arc<TcpStream>,
    wr: Arc<Writer>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the frame lent out by the last `recv`, dropped at the next one.
    lent: usize,
    /// A fragmented message being put together (rare: servers here send whole frames).
    frag: Vec<u8>,
    frag_op: u8,
    closed: Option<u16>,
    /// Bytes of WebSocket frames read so far (headers included).
    pub bytes_in: u64,
}

static MASK_SEED: AtomicU32 = AtomicU32::new(0x9e37_79b9);
static KEY_SEED: AtomicU64 = AtomicU64::new(0x0123_4567_89ab_cdef);

/// XORs `data` with the four-byte `mask`, eight bytes at a time.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let m8 = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c[..8].try_into().expect("8 bytes")) ^ m8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Performs the opening handshake on `stream` (`GET path` with `Upgrade: websocket`, asking for
/// `subprotocol` if given) and returns both sides once the server answered 101. The accept
/// key is not checked: the targets are our own loopback servers.
pub async fn connect(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<(Reader, Arc<Writer>)> {
    let key_bits = KEY_SEED
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .to_le_bytes();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([key_bits, key_bits].concat());
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = subprotocol {
        req += &format!("Sec-WebSocket-Protocol: {p}\r\n");
    }
    req += "\r\n";
    stream.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut end = 0;
    let head_len = loop {
        if end == buf.len() {
            bail!("handshake answer over {} bytes", buf.len());
        }
        let n = stream.read(&mut buf[end..]).await?;
        if n == 0 {
            bail!("closed during the handshake");
        }
        end += n;
        if let Some(i) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..head_len]).context("handshake answer")?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        bail!("upgrade refused: {status}");
    }
    let stream = Arc::new(stream);
    let seed = MASK_SEED.fetch_add(0x6d2b_79f5, Ordering::Relaxed);
    let wr = Arc::new(Writer {
        stream: stream.clone(),
        st: Mutex::new(WriteState {
            frame: Vec::new(),
            backlog: Vec::new(),
            mask: seed.wrapping_mul(0x2c1b_3c6d).to_le_bytes(),
            dead: false,
        }),
        left_over: Notify::new(),
    });
    let rd = Reader {
        stream,
        wr: wr.clone(),
        buf,
        start: head_len,
        end,
        lent: 0,
        frag: Vec::new(),
        frag_op: 0,
        closed: None,
        bytes_in: 0,
    };
    Ok((rd, wr))
}

impl Writer {
    /// Writes one frame whose payload `fill` appends to the buffer it is given. Never waits:
    /// what the socket does not take now is written by the reader later.
    pub fn frame(&self, op: u8, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut guard = self.st.lock().unwrap();
        let st = &mut *guard;
        if st.dead {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        st.frame.clear();
        st.frame.resize(HEAD, 0);
        fill(&mut st.frame);
        let len = st.frame.len() - HEAD;
        let mut h = [0u8; HEAD];
        h[0] = 0x80 | op;
        let mut n = 2;
        if len < 126 {
            h[1] = 0x80 | len as u8;
        } else if len <= 0xffff {
            h[1] = 0x80 | 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            n = 4;
        } else {
            h[1] = 0x80 | 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            n = 10;
        }
        h[n..n + 4].copy_from_slice(&st.mask);
        n += 4;
        let at = HEAD - n;
        st.frame[at..HEAD].copy_from_slice(&h[..n]);
        apply_mask(&mut st.frame[HEAD..], st.mask);
        let bytes = &st.frame[at..];
        if st.backlog.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(k) if k == bytes.len() => return Ok(()),
                Ok(k) => st.backlog.extend_from_slice(&bytes[k..]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    st.backlog.extend_from_slice(bytes)
                }
                Err(e) => {
                    st.dead = true;
                    return Err(e);
                }
            }
        } else {
            st.backlog.extend_from_slice(bytes);
        }
        drop(guard);
        self.left_over.notify_one();
        Ok(())
    }

    pub fn binary(&self, payload: &[u8]) -> io::Result<()> {
        self.frame(OP_BINARY, |b| b.extend_from_slice(payload))
    }

    pub fn text(&self, payload: &[u8]) -> io::Result<()> {
        self.frame(OP_TEXT, |b| b.extend_from_slice(payload))
    }

    /// Sends a close frame with `code`; nothing is written after it.
    pub fn close(&self, code: u16) {
        let _ = self.frame(OP_CLOSE, |b| b.extend_from_slice(&code.to_be_bytes()));
        self.st.lock().unwrap().dead = true;
    }

    /// Writes what is left over, as far as the socket takes it; true once nothing is left.
    fn flush_some(&self) -> io::Result<bool> {
        let mut st = self.st.lock().unwrap();
        while !st.backlog.is_empty() {
            match self.stream.try_write(&st.backlog) {
                Ok(k) => {
                    st.backlog.drain(..k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => {
                    st.dead = true;
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    fn has_backlog(&self) -> bool {
        !self.st.lock().unwrap().backlog.is_empty()
    }
}

/// A frame header parsed from the front of a buffer.
struct Head {
    fin: bool,
    op: u8,
    /// Offset of the payload from the frame's start.
    at: usize,
    len: usize,
    mask: Option<[u8; 4]>,
}

/// Parses a frame header; `Err(n)`: at least `n` more bytes are needed.
fn head(b: &[u8]) -> Result<Head, usize> {
    if b.len() < 2 {
        return Err(2 - b.len());
    }
    let (fin, op, masked) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0);
    let (len, mut at) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize,
            10,
        ),
        126 | 127 => return Err(10 - b.len()),
        l => (l as usize, 2),
    };
    let mask = if masked {
        if b.len() < at + 4 {
            return Err(at + 4 - b.len());
        }
        at += 4;
        Some([b[at - 4], b[at - 3], b[at - 2], b[at - 1]])
    } else {
        None
    };
    Ok(Head {
        fin,
        op,
        at,
        len,
        mask,
    })
}

impl Reader {
    /// The next text or binary payload (pings are answered, pongs skipped); cancel-safe. The
    /// payload is lent until the next call.
    pub async fn recv(&mut self) -> In<'_> {
        self.start += std::mem::take(&mut self.lent);
        loop {
            if let Some(code) = self.closed {
                return In::Closed(code);
            }
            let avail = self.end - self.start;
            let need = match head(&self.buf[self.start..self.end]) {
                Ok(h) if h.len > MAX_FRAME => {
                    self.closed = Some(1009);
                    continue;
                }
                Ok(h) if avail >= h.at + h.len => {
                    let total = h.at + h.len;
                    self.bytes_in += total as u64;
                    let p = self.start + h.at..self.start + total;
                    if let Some(m) = h.mask {
                        apply_mask(&mut self.buf[p.clone()], m);
                    }
                    match (h.op, h.fin) {
                        (OP_TEXT | OP_BINARY, true) => {
                            self.lent = total;
                            let payload = &self.buf[p];
                            return if h.op == OP_TEXT {
                                In::Text(payload)
                            } else {
                                In::Binary(payload)
                            };
                        }
                        (OP_TEXT | OP_BINARY, false) => {
                            self.frag_op = h.op;
                            self.frag.clear();
                            self.frag.extend_from_slice(&self.buf[p]);
                        }
                        (OP_CONT, fin) => {
                            self.frag.extend_from_slice(&self.buf[p]);
                            if fin {
                                self.start += total;
                                return if self.frag_op == OP_TEXT {
                                    In::Text(&self.frag)
                                } else {
                                    In::Binary(&self.frag)
                                };
                            }
                        }
                        (OP_PING, _) => {
                            let _ = self
                                .wr
                                .frame(OP_PONG, |b| b.extend_from_slice(&self.buf[p]));
                        }
                        (OP_CLOSE, _) => {
                            let code = self.buf[p]
                                .get(..2)
                                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                                .unwrap_or(1005);
                            self.closed = Some(code);
                        }
                        _ => {}
                    }
                    self.start += total;
                    continue;
                }
                Ok(h) => h.at + h.len - avail,
                Err(n) => n,
            };
            // Make room for at least `need` more bytes.
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if self.end + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if self.end + need > self.buf.len() {
                    self.buf.resize((self.end + need).max(READ_BUFFER), 0);
                }
            }
            if let Err(code) = self.fill().await {
                self.closed = Some(code);
            }
        }
    }

    /// Reads what the socket has (at least one byte), writing left-over bytes meanwhile.
    async fn fill(&mut self) -> Result<(), u16> {
        loop {
            let flushing = self.wr.has_backlog();
            tokio::select! {
                r = self.stream.readable() => {
                    r.map_err(|_| 1006u16)?;
                    match self.stream.try_read(&mut self.buf[self.end..]) {
                        Ok(0) => return Err(1006),
                        Ok(n) => {
                            self.end += n;
                            return Ok(());
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Err(1006),
                    }
                }
                r = self.stream.writable(), if flushing => {
                    r.map_err(|_| 1006u16)?;
                    self.wr.flush_some().map_err(|_| 1006u16)?;
                }
                _ = self.wr.left_over.notified(), if !flushing => {}
            }
        }
    }

    /// Sends a close frame and waits (up to 2 s) for the server's answer.
    pub async fn close(mut self) {
        self.wr.close(1000);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while !matches!(self.recv().await, In::Closed(_)) {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_round_trips_at_every_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut m = data.clone();
            apply_mask(&mut m, [1, 2, 3, 4]);
            if len > 0 {
                assert_ne!(m, data);
            }
            assert_eq!(m[..len.min(4)], [1u8, 3, 1, 7][..len.min(4)]);
            apply_mask(&mut m, [1, 2, 3, 4]);
            assert_eq!(m, data);
        }
    }

    #[test]
    fn headers_of_each_length_form() {
        let h = head(&[0x82, 5, 0, 0, 0, 0, 0]).unwrap();
        assert!((h.fin, h.op, h.at, h.len) == (true, 2, 2, 5));
        let h = head(&[0x01, 126, 1, 0]).unwrap();
        assert!((h.fin, h.op, h.at, h.len) == (false, 1, 4, 256));
        assert_eq!(head(&[0x82, 127, 0]).err(), Some(7));
        let h = head(&[0x82, 0x80 | 3, 9, 9, 9, 9]).unwrap();
        assert_eq!((h.at, h.mask), (6, Some([9; 4])));
        assert_eq!(head(&[0x82]).err(), Some(1));
    }

    /// A real loopback server (a tokio listener speaking the server side by hand): the
    /// handshake, a masked frame each way, a ping answered, a fragmented message joined.
    #[tokio::test]
    async fn talks_to_a_server_over_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 1024];
            let mut n = 0;
            while !req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                n += s.read(&mut req[n..]).await.unwrap();
            }
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                .await
                .unwrap();
            // A ping, a fragmented text "ab" + "c", a binary frame.
            s.write_all(&[
                0x89, 1, b'p', 0x01, 2, b'a', b'b', 0x80, 1, b'c', 0x82, 2, 7, 8,
            ])
            .await
            .unwrap();
            // Expect the pong, then the client's binary frame, unmasked here.
            let mut got = Vec::new();
            let mut b = [0u8; 64];
            while got.len() < 7 + 9 {
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            }
            let pong = head(&got).unwrap();
            assert_eq!((pong.op, pong.len), (OP_PONG, 1));
            let mut p = got[pong.at..pong.at + 1].to_vec();
            apply_mask(&mut p, pong.mask.unwrap());
            assert_eq!(p, b"p");
            let rest = &got[pong.at + 1..];
            let f = head(rest).unwrap();
            let mut p = rest[f.at..f.at + f.len].to_vec();
            apply_mask(&mut p, f.mask.unwrap());
            assert_eq!((f.op, p.as_slice()), (OP_BINARY, &b"hello"[..]));
            s.write_all(&[0x88, 2, 0x0f, 0xa0]).await.unwrap();
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut rd, wr) = connect(tcp, &addr.to_string(), "/ws", None).await.unwrap();
        match rd.recv().await {
            In::Text(t) => assert_eq!(t, b"abc"),
            _ => panic!("expected the joined text"),
        }
        match rd.recv().await {
            In::Binary(b) => assert_eq!(b, [7, 8]),
            _ => panic!("expected binary"),
        }
        wr.binary(b"hello").unwrap();
        assert!(matches!(rd.recv().await, In::Closed(4000)));
        server.await.unwrap();
    }
}
