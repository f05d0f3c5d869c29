//! One connection's state, shared by its task (which reads the socket) and the sender thread
//! (which writes the paced messages): the chats it takes part in, what it sent that is not
//! acknowledged yet, and the handling of every frame that arrives. The hot path (a paced
//! send; an `entry`, `ack` or Socket.IO `msg` arriving) allocates nothing.

use super::{micros, parse_text, seq, ChatShared, World, AGENT, ROLE, VISITOR};
use crate::frames;
use crate::net::{decode, send_frame, Incoming};
use crate::sender::Paced;
use crate::socketio::{self, Packet};
use crate::wire::{Writer, OP_BINARY, OP_TEXT};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use switchboard::protocol::{AgentStatus, ClientFrame, Encoding, ServerFrame};

/// How a connection's frames are written.
#[derive(Clone, Copy, PartialEq)]
pub enum Proto {
    /// Switchboard's protocol (also the relay's subset) in this encoding.
    Switchboard(Encoding),
    SocketIo,
}

/// One chat as seen by one connection.
pub struct LocalChat {
    pub id: String,
    pub shared: Arc<ChatShared>,
    next_counter: u64,
    pub live: bool,
    /// The last sequence number seen, for a resume.
    pub last_seq: (u64, u64),
}

/// A message sent and not acknowledged yet: enough to write it again, byte for byte.
struct Pending {
    chat: usize,
    counter: u64,
    due_us: u64,
    sent_us: u64,
}

pub struct Peer {
    pub w: Arc<World>,
    pub role: usize,
    proto: Proto,
    /// The socket to write to; none while a dropped visitor reconnects.
    pub wr: Option<Arc<Writer>>,
    pub chats: Vec<LocalChat>,
    rr: usize,
    pending: VecDeque<Pending>,
    /// Reused buffers of the text and the client message id being sent.
    text: String,
    cmid: String,
    pub requested_at: Option<Instant>,
    ready: bool,
    /// Since when a dropped visitor resumes (no paced sends meanwhile).
    pub resuming: Option<Instant>,
    /// A resume sent to recover a missed `chat_started`: its replay repeats entries up to this
    /// sequence, which were already counted.
    pub recovering: Option<(u64, u64)>,
}

/// What the connection's task does after a frame.
pub enum Step {
    /// Nothing: a hot frame, handled.
    Hot,
    /// A control frame was handled; the connection's sending state may have changed.
    Changed,
    Reply(ClientFrame),
    /// A Socket.IO ping: answer `3`.
    Pong,
    Closed(u16),
}

/// A connection's state behind its lock, as the sender thread sees it.
pub struct Link(pub Mutex<Peer>);

impl Paced for Link {
    fn fire(&self, due: Instant) {
        self.0.lock().unwrap().send_next(due);
    }
}

impl Peer {
    pub fn new(w: Arc<World>, role: usize, proto: Proto) -> Peer {
        Peer {
            w,
            role,
            proto,
            wr: None,
            chats: Vec::new(),
            rr: 0,
            pending: VecDeque::with_capacity(16),
            text: String::with_capacity(512),
            cmid: String::with_capacity(24),
            requested_at: None,
            ready: false,
            resuming: None,
            recovering: None,
        }
    }

    pub fn live(&self) -> usize {
        self.chats.iter().filter(|c| c.live).count()
    }

    /// The index of chat `id` (added if new).
    pub fn local(&mut self, id: &str) -> usize {
        if let Some(i) = self.chats.iter().position(|c| c.id == id) {
            return i;
        }
        let shared = self.w.chat(id);
        self.chats.push(LocalChat {
            id: id.to_string(),
            shared,
            next_counter: 0,
            live: false,
            last_seq: (0, 0),
        });
        self.chats.len() - 1
    }

    /// Writes the next message (round-robin over live chats), stamped with its scheduled time.
    fn send_next(&mut self, due: Instant) {
        if self.wr.is_none() || self.resuming.is_some() {
            return;
        }
        let n = self.chats.len();
        let Some(i) = (0..n)
            .map(|k| (self.rr + k) % n)
            .find(|&i| self.chats[i].live)
        else {
            return;
        };
        self.rr = i + 1;
        let counter = self.chats[i].next_counter;
        self.chats[i].next_counter += 1;
        let w = &self.w;
        w.count_sent(&self.chats[i].shared, self.role);
        let p = Pending {
            chat: i,
            counter,
            due_us: micros(w, due),
            sent_us: micros(w, Instant::now()),
        };
        if self.write(&p).is_err() {
            self.w.stats.closed.add(1006, "send failed");
            self.wr = None;
            return;
        }
        if matches!(self.proto, Proto::Switchboard(_)) {
            self.pending.push_back(p);
        }
    }

    /// Writes message `p` (again, after a reconnect: the same bytes).
    fn write(&mut self, p: &Pending) -> std::io::Result<()> {
        let Some(wr) = &self.wr else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        self.w
            .put_text(&mut self.text, p.counter, p.due_us, p.sent_us);
        let text = &self.text;
        match self.proto {
            Proto::Switchboard(enc) => {
                self.cmid.clear();
                let _ = write!(self.cmid, "{}{}", &ROLE[self.role][..1], p.counter);
                let (chat, cmid) = (&self.chats[p.chat].id, &self.cmid);
                let op = if enc == Encoding::Json {
                    OP_TEXT
                } else {
                    OP_BINARY
                };
                wr.frame(op, |b| frames::put_send(b, enc, chat, cmid, text))
            }
            Proto::SocketIo => wr.frame(OP_TEXT, |b| frames::put_socketio_msg(b, text)),
        }
    }

    /// Writes every unacknowledged message again (the server stores each client message id
    /// once, so a copy it already has is acknowledged, not stored twice).
    pub fn resend_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            let _ = self.write(p);
        }
        self.pending = pending;
    }

    /// Handles one payload read from the socket.
    pub fn on_payload(&mut self, payload: &[u8]) -> Step {
        let enc = match self.proto {
            Proto::SocketIo => return self.on_socketio(payload),
            Proto::Switchboard(enc) => enc,
        };
        if let Some(h) = frames::hot(payload, enc) {
            match (&*h.kind, h.entry) {
                ("entry", Some(e)) => {
                    self.on_entry(&h.chat_id, &e.seq, &e.kind, &e.author, &e.text, &e.event);
                    return Step::Hot;
                }
                ("ack", _) => {
                    self.on_ack(&h.chat_id, &h.client_msg_id);
                    return Step::Hot;
                }
                _ => {}
            }
        }
        match decode(payload, enc) {
            Incoming::Frame(f) => self.on_frame(f),
            Incoming::Closed(code) => Step::Closed(code),
            Incoming::Undecodable(_) => {
                self.w.stats.undecodable.inc();
                Step::Hot
            }
        }
    }

    fn on_socketio(&mut self, payload: &[u8]) -> Step {
        if let Some(text) = frames::socketio_msg(payload) {
            match (parse_text(text), self.chats.first()) {
                (Some(stamp), Some(c)) => self.w.received(&c.shared, 1 - self.role, stamp),
                _ => self.w.stats.undecodable.inc(),
            }
            return Step::Hot;
        }
        match std::str::from_utf8(payload).map(socketio::parse) {
            Ok(Ok(Packet::Ping)) => Step::Pong,
            Ok(Ok(Packet::Close | Packet::Disconnect)) => Step::Closed(1000),
            Ok(Ok(_)) => Step::Hot,
            _ => {
                self.w.stats.undecodable.inc();
                Step::Hot
            }
        }
    }

    fn on_entry(
        &mut self,
        chat_id: &str,
        seq_s: &str,
        kind: &str,
        author: &str,
        text: &str,
        event: &str,
    ) {
        let s = seq(seq_s).unwrap_or_default();
        if let Some(upto) = self.recovering {
            if s <= upto {
                return;
            }
        }
        let i = self.local(chat_id);
        self.chats[i].last_seq = s;
        if event == "joined" {
            self.w.joined_entries[self.role].inc();
        }
        if kind == "message" && author != ROLE[self.role] {
            if let Some(stamp) = parse_text(text) {
                self.w.received(&self.chats[i].shared, 1 - self.role, stamp);
            }
        }
    }

    fn on_ack(&mut self, chat_id: &str, cmid: &str) {
        self.w.stats.acked.inc();
        let Some(counter) = cmid.get(1..).and_then(|c| c.parse::<u64>().ok()) else {
            return;
        };
        let chats = &self.chats;
        if let Some(i) = self
            .pending
            .iter()
            .position(|p| p.counter == counter && chats[p.chat].id == chat_id)
        {
            self.pending.remove(i);
        }
    }

    /// Every frame but the hot ones, fully decoded.
    fn on_frame(&mut self, f: ServerFrame) -> Step {
        let w = self.w.clone();
        match f {
            ServerFrame::Queued { chat_id, .. } => {
                let first = !self.chats.iter().any(|c| c.id == chat_id);
                self.local(&chat_id);
                if first {
                    w.queued.inc();
                    if let Some(t) = self.requested_at {
                        w.requested.lock().unwrap().insert(chat_id, t);
                    }
                }
            }
            ServerFrame::Offer { chat_id, .. } => {
                if w.offered
                    .lock()
                    .unwrap()
                    .insert(chat_id.clone(), Instant::now())
                    .is_some()
                {
                    w.offered_twice.inc();
                }
                self.local(&chat_id);
                return Step::Reply(ClientFrame::Accept { chat_id });
            }
            ServerFrame::ChatStarted { chat_id, .. } => {
                w.started_frames[self.role].inc();
                let i = self.local(&chat_id);
                if !self.chats[i].live {
                    self.chats[i].live = true;
                    if self.role == VISITOR {
                        w.started.inc();
                        if let Some(t) = self.requested_at {
                            let _ = w
                                .accept_lat
                                .lock()
                                .unwrap()
                                .record((t.elapsed().as_micros() as u64).max(1));
                        }
                    }
                }
            }
            ServerFrame::Entry { chat_id, entry } => {
                let kind = match entry.kind {
                    switchboard::protocol::EntryKind::Message => "message",
                    switchboard::protocol::EntryKind::System => "system",
                };
                self.on_entry(
                    &chat_id,
                    &entry.seq,
                    kind,
                    &entry.author,
                    &entry.text,
                    &entry.event,
                );
            }
            ServerFrame::Ack {
                chat_id,
                client_msg_id,
                ..
            } => self.on_ack(&chat_id, &client_msg_id),
            ServerFrame::ChatEnded { chat_id, .. } => {
                let i = self.local(&chat_id);
                self.chats[i].live = false;
                if self.role == VISITOR {
                    w.ended.inc();
                } else {
                    return Step::Reply(ClientFrame::Decide {
                        chat_id,
                        decision: *w.decision.lock().unwrap(),
                        interaction_id: None,
                    });
                }
            }
            ServerFrame::Decided { .. } => w.decided.inc(),
            ServerFrame::Status { status, .. }
                if status == AgentStatus::Available && !self.ready =>
            {
                self.ready = true;
                w.agents_ready.inc();
            }
            ServerFrame::Resumed { .. } => {
                self.recovering = None;
                if let Some(since) = self.resuming.take() {
                    let _ = w
                        .resume_lat
                        .lock()
                        .unwrap()
                        .record((since.elapsed().as_micros() as u64).max(1));
                    w.resumed.inc();
                }
            }
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } => {
                if self.role == AGENT && !self.ready {
                    w.setup_errors.add(code, &message);
                    return Step::Changed;
                }
                w.stats.errors.add(code, &message);
                let counter = reference
                    .as_deref()
                    .and_then(|r| r.get(1..))
                    .and_then(|c| c.parse::<u64>().ok());
                if let Some(counter) = counter {
                    if let Some(i) = self.pending.iter().position(|p| p.counter == counter) {
                        let p = self.pending.remove(i).expect("found");
                        self.chats[p.chat].shared.recv[self.role]
                            .lock()
                            .unwrap()
                            .refused
                            .insert(counter);
                    }
                }
            }
            // Welcome, offer_revoked, pong and frames these scenarios do not use.
            _ => {}
        }
        Step::Changed
    }

    /// Writes a control frame (set-up, replies; allocates).
    pub fn send(&self, f: &ClientFrame) -> anyhow::Result<()> {
        match (&self.wr, self.proto) {
            (Some(wr), Proto::Switchboard(enc)) => send_frame(wr, enc, f),
            _ => anyhow::bail!("not connected"),
        }
    }
}
