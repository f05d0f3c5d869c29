//! The node's local fan-out: which of this node's connections follow which channel (a chat, or
//! one agent's / visitor's own channel), and the node's Redis subscriptions that feed them.
//! A node subscribes to a channel when its first local follower appears and unsubscribes
//! after the last one leaves, so Redis sends a node only what its own sockets need.

use super::delivery::Generation;
use crate::metrics::Metrics;
use crate::protocol::{close_codes, encode_server, Encoding, Entry, ServerFrame};
use crate::redis::RedisLayer;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What the hub hands a connection's writer.
#[derive(Debug, Clone)]
pub enum Out {
    /// A frame already encoded for every encoding; the connection picks its own.
    Frame(Arc<Encoded>),
    /// A transcript entry (with the frames it implies); the connection drops it if it already
    /// delivered its `seq` (the overlap of a resume's replay and live traffic), and catches up
    /// from the stream first when the entry's generation is newer than its own
    /// (`chat::delivery`). Behind one `Arc` so `Out` stays two words: every connection's inbox
    /// preallocates slots of it.
    Entry(Arc<LiveEntry>),
    /// The node's subscription may have missed entries: catch up every followed chat that is
    /// behind the node's generation, even if no live entry of it comes.
    CatchUp,
    /// Close with this code after what was queued before it (unlike `Follower::end_with`).
    End(u16),
}

#[derive(Debug)]
pub struct LiveEntry {
    pub seq: Seq,
    /// The node's subscription generation when the listener received the entry.
    pub generation: u64,
    /// An internal entry (whisper): visitor connections skip it.
    pub internal: bool,
    pub frames: EntryFrames,
}

/// A frame encoded lazily once per encoding and shared by every recipient.
#[derive(Debug)]
pub struct Encoded {
    frame: ServerFrame,
    /// The chat whose channel carried the frame (typing, receipts, queue positions): a
    /// connection that does not follow that chat drops it.
    chat: Option<String>,
    json: OnceLock<Bytes>,
    msgpack: OnceLock<Bytes>,
}

impl Encoded {
    pub fn new(frame: ServerFrame) -> Encoded {
        Encoded {
            frame,
            chat: None,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }
    /// A frame of one chat, for the connections that follow it only.
    pub fn of_chat(chat: &str, frame: ServerFrame) -> Encoded {
        Encoded {
            chat: Some(chat.to_string()),
            ..Encoded::new(frame)
        }
    }
    /// The chat this frame belongs to, when it came through a chat's channel.
    pub fn chat(&self) -> Option<&str> {
        self.chat.as_deref()
    }
    pub fn bytes(&self, enc: Encoding) -> Bytes {
        let cell = match enc {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| encode_server(&self.frame, enc)).clone()
    }
}

/// A stream id `ms-n`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seq(pub u64, pub u64);

impl Seq {
    pub fn parse(s: &str) -> Option<Seq> {
        let (a, b) = s.split_once('-')?;
        Some(Seq(a.parse().ok()?, b.parse().ok()?))
    }

    /// The stream id, or "" for the start of a stream (nothing delivered yet).
    pub fn id(&self) -> String {
        if *self == Seq::default() {
            String::new()
        } else {
            format!("{}-{}", self.0, self.1)
        }
    }
}

/// The frames a transcript entry implies: the entry itself, then `chat_started` for a join and
/// `chat_ended` for an end. Held inline: a live entry's frames take no allocation of their own.
#[derive(Debug)]
pub struct EntryFrames {
    entry: Encoded,
    extra: Option<Encoded>,
}

impl LiveEntry {
    /// The entry's chat (named once, in its `entry` frame: `EntryFrames` are built only by
    /// `frames_for_entry`, which always puts one first).
    pub fn chat(&self) -> &str {
        match &self.frames.entry.frame {
            ServerFrame::Entry { chat_id, .. } => chat_id,
            _ => unreachable!("EntryFrames starts with an entry frame"),
        }
    }
}

impl EntryFrames {
    pub fn iter(&self) -> impl Iterator<Item = &Encoded> {
        std::iter::once(&self.entry).chain(self.extra.as_ref())
    }
}

impl IntoIterator for EntryFrames {
    type Item = Encoded;
    type IntoIter = std::iter::Chain<std::iter::Once<Encoded>, std::option::IntoIter<Encoded>>;
    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.entry).chain(self.extra)
    }
}

/// Used both for live delivery and for replay.
pub fn frames_for_entry(chat: &str, entry: Entry) -> EntryFrames {
    let extra = match entry.event.as_str() {
        "joined" => Some(ServerFrame::ChatStarted {
            chat_id: chat.to_string(),
            agent_name: entry.name.clone(),
        }),
        "ended" => Some(ServerFrame::ChatEnded {
            chat_id: chat.to_string(),
            by: entry.author.clone(),
            reason: entry.text.clone(),
        }),
        _ => None,
    };
    EntryFrames {
        entry: Encoded::new(ServerFrame::Entry {
            chat_id: chat.to_string(),
            entry,
        }),
        extra: extra.map(Encoded::new),
    }
}

pub type ConnId = u64;

/// A connection's inbox: what the hub and the chat service hand the connection's task.
/// Bounded: a full inbox means a slow client, which is closed (4408) and resumes elsewhere.
/// A queue that holds nothing allocates nothing, so an idle connection's inbox costs one small
/// shared block (a channel would preallocate a block of slots and padded counters per socket).
#[derive(Clone)]
pub struct Follower(Arc<Inbox>);

struct Inbox {
    queue: Mutex<VecDeque<Out>>,
    capacity: usize,
    notify: tokio::sync::Notify,
    slow: AtomicBool,
    closed: AtomicBool,
    /// A close code the connection must end with (0: none), e.g. its agent's sessions ended.
    ending: AtomicU16,
}

/// What a connection takes from its inbox.
pub enum Inbound {
    Out(Out),
    /// The inbox overflowed (or the node lost live traffic): close as a slow consumer.
    Slow,
    /// Close with this code and reason (`Follower::end_with`).
    Close(u16, &'static str),
}

/// The reason sent with a close code raised through `Follower::end_with` or `Out::End`.
pub fn ending_reason(code: u16) -> &'static str {
    match code {
        close_codes::UNAUTHORIZED => "session ended; log in again",
        close_codes::AGENT_CHANGED => "agent settings changed; reconnect",
        close_codes::STATE_LOST => "the service lost its live state",
        _ => "closed by the node",
    }
}

/// Queues grown past this capacity are given back when they drain, so a burst does not
/// leave a large buffer behind on an idle socket.
const KEEP_QUEUE_CAPACITY: usize = 16;

impl Follower {
    pub fn new(capacity: usize) -> Follower {
        Follower(Arc::new(Inbox {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            notify: tokio::sync::Notify::new(),
            slow: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            ending: AtomicU16::new(0),
        }))
    }

    /// Queues for the connection without waiting. A full inbox marks the connection slow
    /// instead; returns false when that happened just now (a new slow consumer to count).
    pub fn push(&self, out: Out) -> bool {
        let inbox = &self.0;
        if inbox.closed.load(Ordering::Relaxed) {
            return true;
        }
        {
            let mut q = inbox.queue.lock().unwrap();
            if q.len() >= inbox.capacity {
                drop(q);
                return !self.raise_slow();
            }
            q.push_back(out);
        }
        inbox.notify.notify_one();
        true
    }

    /// Tells the connection to close as a slow consumer; returns whether this call raised it.
    pub fn raise_slow(&self) -> bool {
        let raised = !self.0.slow.swap(true, Ordering::Relaxed);
        if raised {
            self.0.notify.notify_one();
        }
        raised
    }

    /// Tells the connection to close with `code` (before anything still queued).
    pub fn end_with(&self, code: u16) {
        self.0.ending.store(code, Ordering::Relaxed);
        self.0.notify.notify_one();
    }

    /// The next item; waits until one is queued. Cancel-safe: nothing is taken until it is
    /// returned.
    pub async fn recv(&self) -> Inbound {
        loop {
            let code = self.0.ending.load(Ordering::Relaxed);
            if code != 0 {
                return Inbound::Close(code, ending_reason(code));
            }
            if self.0.slow.load(Ordering::Relaxed) {
                return Inbound::Slow;
            }
            if let Some(out) = self.try_recv() {
                return Inbound::Out(out);
            }
            self.0.notify.notified().await;
        }
    }

    /// The next queued item, if any.
    pub fn try_recv(&self) -> Option<Out> {
        let mut q = self.0.queue.lock().unwrap();
        let out = q.pop_front();
        if q.is_empty() && q.capacity() > KEEP_QUEUE_CAPACITY {
            *q = VecDeque::new();
        }
        out
    }

    /// The connection is gone: drop what is queued and ignore what comes.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
        *self.0.queue.lock().unwrap() = VecDeque::new();
    }
}

/// Whether this node is subscribed to one channel, behind that channel's own async lock.
type Slot = Arc<tokio::sync::Mutex<bool>>;

pub struct Hub {
    redis: RedisLayer,
    metrics: Arc<Metrics>,
    /// channel name -> followers on this node. Short sync lock, never held across an await.
    followers: Mutex<HashMap<String, HashMap<ConnId, Follower>>>,
    /// One slot per channel this node is subscribed to or busy (un)subscribing: whether the
    /// subscription is on, behind an async lock that orders that channel's subscribe and
    /// unsubscribe calls (a late unsubscribe never undoes a newer subscribe). Per channel, so
    /// thousands of connections arriving at once subscribe side by side, pipelined, instead of
    /// one round trip after another.
    slots: Mutex<HashMap<String, Slot>>,
    /// Channels subscribed now (the `subscriptions` gauge).
    subscribed: AtomicI64,
    /// Bumped whenever the node's subscription may have missed live traffic
    /// (`chat::delivery`).
    pub generation: Generation,
}

impl Hub {
    pub fn new(redis: RedisLayer, metrics: Arc<Metrics>) -> Hub {
        Hub {
            redis,
            metrics,
            followers: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            subscribed: AtomicI64::new(0),
            generation: Generation::default(),
        }
    }

    /// Adds a follower; returns once the node is subscribed, so nothing published after this
    /// returns is missed.
    pub async fn follow(
        &self,
        channel: &str,
        conn: ConnId,
        f: Follower,
    ) -> Result<(), crate::redis::RedisError> {
        self.followers
            .lock()
            .unwrap()
            .entry(channel.to_string())
            .or_default()
            .insert(conn, f);
        let slot = self.slot(channel);
        let mut on = slot.lock().await;
        if !*on {
            if let Err(e) = self.redis.subscribe(channel).await {
                drop(on);
                self.release(channel, slot);
                return Err(e);
            }
            *on = true;
            let n = self.subscribed.fetch_add(1, Ordering::Relaxed) + 1;
            self.metrics.subscriptions.set(n);
        }
        drop(on);
        self.release(channel, slot);
        Ok(())
    }

    /// The channel's slot, created when missing.
    fn slot(&self, channel: &str) -> Slot {
        self.slots
            .lock()
            .unwrap()
            .entry(channel.to_string())
            .or_default()
            .clone()
    }

    /// Hands back a slot taken with `slot`; an off slot nobody else holds is removed, so the
    /// map only keeps channels that are subscribed or being worked on.
    fn release(&self, channel: &str, slot: Slot) {
        let mut slots = self.slots.lock().unwrap();
        // Two references: the map's and this one. Anyone else would have cloned it from the
        // map under this lock, so nobody can be waiting on it.
        if Arc::strong_count(&slot) == 2 && slot.try_lock().is_ok_and(|on| !*on) {
            slots.remove(channel);
        }
    }

    pub fn is_following(&self, channel: &str, conn: ConnId) -> bool {
        self.followers
            .lock()
            .unwrap()
            .get(channel)
            .is_some_and(|m| m.contains_key(&conn))
    }

    /// Whether any local connection follows `channel`.
    pub fn has_followers(&self, channel: &str) -> bool {
        self.followers.lock().unwrap().contains_key(channel)
    }

    /// Removes a follower; the subscription goes when the last one leaves.
    pub async fn unfollow(&self, channel: &str, conn: ConnId) {
        let empty = {
            let mut map = self.followers.lock().unwrap();
            match map.get_mut(channel) {
                Some(m) => {
                    m.remove(&conn);
                    if m.is_empty() {
                        map.remove(channel);
                        true
                    } else {
                        false
                    }
                }
                None => false,
            }
        };
        if empty {
            let slot = self.slot(channel);
            let mut on = slot.lock().await;
            let still_empty = !self.followers.lock().unwrap().contains_key(channel);
            if still_empty && *on {
                *on = false;
                if let Err(e) = self.redis.unsubscribe(channel).await {
                    tracing::warn!(channel, error = %e, "unsubscribe failed");
                }
                let n = self.subscribed.fetch_sub(1, Ordering::Relaxed) - 1;
                self.metrics.subscriptions.set(n);
            }
            drop(on);
            self.release(channel, slot);
        }
    }

    /// Tells every local connection to catch up its chats from their streams (`Out::CatchUp`),
    /// once per connection. Used after the generation moved on, so entries missed by the
    /// subscription reach clients even when no later live entry of their chat comes.
    pub fn catch_up_all(&self) {
        let all: HashMap<ConnId, Follower> = self
            .followers
            .lock()
            .unwrap()
            .values()
            .flat_map(|m| m.iter().map(|(k, v)| (*k, v.clone())))
            .collect();
        for f in all.into_values() {
            if !f.push(Out::CatchUp) {
                self.metrics.slow_consumers.inc();
            }
        }
    }

    /// Ends every local connection that follows a chat: each gets `frame(chat)` for each chat
    /// it follows (`chat_of` names the chat of a channel, None for other channels), then a
    /// close with `code` after them. Followers of the channels `also` picks are closed with
    /// `code` too, without frames. Returns how many connections.
    pub fn end_chats(
        &self,
        chat_of: impl Fn(&str) -> Option<&str>,
        also: impl Fn(&str) -> bool,
        frame: impl Fn(&str) -> Out,
        code: u16,
    ) -> usize {
        let mut conns: HashMap<ConnId, (Follower, Vec<String>)> = HashMap::new();
        for (channel, followers) in self.followers.lock().unwrap().iter() {
            let chat = chat_of(channel);
            if chat.is_none() && !also(channel) {
                continue;
            }
            for (id, f) in followers {
                let (_, chats) = conns.entry(*id).or_insert_with(|| (f.clone(), Vec::new()));
                chats.extend(chat.map(str::to_string));
            }
        }
        for (f, chats) in conns.values() {
            for chat in chats {
                f.push(frame(chat));
            }
            f.push(Out::End(code));
        }
        conns.len()
    }

    /// This node's connections that follow `channel`.
    pub fn followers_of(&self, channel: &str) -> Vec<ConnId> {
        match self.followers.lock().unwrap().get(channel) {
            Some(m) => m.keys().copied().collect(),
            None => Vec::new(),
        }
    }

    /// Closes every local follower of `channel` with `code` (an agent's own channel: all of
    /// that agent's connections here). Returns how many.
    pub fn end_followers(&self, channel: &str, code: u16) -> usize {
        let targets: Vec<Follower> = match self.followers.lock().unwrap().get(channel) {
            Some(m) => m.values().cloned().collect(),
            None => return 0,
        };
        for f in &targets {
            f.end_with(code);
        }
        targets.len()
    }

    /// Delivers to every local follower of `channel`. A follower whose inbox is full is told
    /// to close (slow consumer); fan-out never waits.
    pub fn deliver(&self, channel: &str, out: Out) {
        // Queued under the map's lock (a push only takes the inbox's own short lock and never
        // waits), so fan-out collects no list of its targets.
        let mut slow = 0;
        if let Some(m) = self.followers.lock().unwrap().get(channel) {
            for f in m.values() {
                if !f.push(out.clone()) {
                    slow += 1;
                }
            }
        }
        if slow > 0 {
            self.metrics.slow_consumers.inc_by(slow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Out {
        Out::Frame(Arc::new(Encoded::new(ServerFrame::Pong { nonce: Some(n) })))
    }

    fn nonce(i: Inbound) -> u64 {
        match i {
            Inbound::Out(Out::Frame(f)) => match &f.frame {
                ServerFrame::Pong { nonce } => nonce.unwrap_or_default(),
                other => panic!("unexpected {other:?}"),
            },
            _ => panic!("expected a frame"),
        }
    }

    #[tokio::test]
    async fn inbox_delivers_in_order_and_wakes_a_waiting_receiver() {
        let f = Follower::new(8);
        let rx = f.clone();
        let waiter = tokio::spawn(async move { nonce(rx.recv().await) });
        tokio::task::yield_now().await;
        assert!(f.push(frame(1)));
        assert_eq!(waiter.await.unwrap(), 1);
        for n in 2..=4 {
            assert!(f.push(frame(n)));
        }
        assert_eq!(nonce(f.recv().await), 2);
        assert_eq!(nonce(f.recv().await), 3);
        assert!(f.try_recv().is_some());
        assert!(f.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_full_inbox_marks_the_connection_slow_once() {
        let f = Follower::new(2);
        assert!(f.push(frame(1)));
        assert!(f.push(frame(2)));
        // The first overflow is reported (counted as a slow consumer), later ones are not.
        assert!(!f.push(frame(3)));
        assert!(f.push(frame(4)));
        assert!(matches!(f.recv().await, Inbound::Slow));
    }

    #[tokio::test]
    async fn an_ending_goes_ahead_of_what_is_queued() {
        let f = Follower::new(8);
        assert!(f.push(frame(1)));
        f.end_with(close_codes::AGENT_CHANGED);
        assert!(matches!(
            f.recv().await,
            Inbound::Close(close_codes::AGENT_CHANGED, _)
        ));
    }

    #[tokio::test]
    async fn a_closed_inbox_drops_what_comes_and_gives_back_its_buffer() {
        let f = Follower::new(1000);
        for n in 0..100 {
            f.push(frame(n));
        }
        while f.try_recv().is_some() {}
        assert!(f.0.queue.lock().unwrap().capacity() <= KEEP_QUEUE_CAPACITY);
        f.close();
        assert!(f.push(frame(1)));
        assert!(f.try_recv().is_none());
    }
}
