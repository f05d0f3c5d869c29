//! Gap-free delivery of one chat's live entries to one connection.
//!
//! Pub/sub is lossy around a lapse of the node's subscription: while its subscriber connection
//! is down (or the listener lags behind it) entries are published that never arrive, and the
//! entries that arrive next carry higher sequence numbers. A connection that delivered such an
//! entry would move its client's last sequence number past the gap, and the client's next
//! `resume` would skip the missed entries for good.
//!
//! So the node keeps a subscription generation (`Generation`). It turns odd the moment a lapse
//! is known (the subscriber connection came back and follows nothing yet) and even again once
//! every channel is subscribed again; a lag of the listener behind an intact subscription moves
//! it on by two at once. Each live entry is stamped with the generation current when the
//! listener received it, and each connection keeps, per followed chat, a `Cursor`: the highest
//! sequence it delivered and the generation it is caught up to. A live entry stamped with a
//! newer generation is held until the connection has read the chat's stream after `delivered`
//! (a catch-up, in order); only then is the live entry delivered, or dropped when the catch-up
//! already sent it. A catch-up records the last even generation reached before its first
//! stream read: one that runs during a lapse can never count as caught up with it, so every
//! entry received during a lapse goes out through a stream read made after it was appended,
//! and the first entry after the lapse catches up once more.

use super::hub::Seq;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's subscription generation (see the module documentation): odd during a lapse.
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    /// The stamp for a live entry received now.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// What a catch-up (or a new follow, or a resume) that reads the stream from now on is
    /// caught up to: never the generation of a lapse still under way.
    pub fn settled(&self) -> u64 {
        let g = self.current();
        g - (g & 1)
    }

    /// The subscription lost its channels (the subscriber connection came back): called before
    /// anything is subscribed again.
    pub fn lapse_begins(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| {
                (g & 1 == 0).then_some(g + 1)
            });
    }

    /// Every channel is subscribed again.
    pub fn lapse_ends(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| {
                (g & 1 == 1).then_some(g + 1)
            });
    }

    /// Live traffic was dropped behind an intact subscription (the listener lagged): entries
    /// received from now on make their connections catch up first. During a lapse nothing
    /// changes: entries then go out through stream reads anyway.
    pub fn lost(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| {
                (g & 1 == 0).then_some(g + 2)
            });
    }
}

/// What a connection does with a live entry of a chat it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Write it.
    Deliver,
    /// Already delivered (by a replay or a catch-up): drop it.
    Skip,
    /// Read the chat's stream after `delivered` first, then ask again.
    CatchUpFirst,
}

/// Entries delivered outside a `resume` that a later `resume`'s replay skips. Bounded; an
/// entry that fell off is sent again and the client drops it by its sequence number.
const OUTSIDE_RESUME_KEPT: usize = 256;

/// One followed chat's delivery position on one connection.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    /// Highest sequence delivered; live entries at or below it are a replay's overlap.
    delivered: Seq,
    /// The subscription generation this connection is caught up to on this chat.
    caught_up: u64,
    /// Entries delivered live or by a catch-up since the last resume. Live traffic may start
    /// before the client's resume (an accept follows the chat first), so `delivered` can be
    /// ahead of history the client has not seen: the replay skips exactly these.
    outside_resume: Vec<Seq>,
}

impl Cursor {
    /// A chat followed from now on: `delivered` is what the client already has, `generation`
    /// the node's `Generation::settled` read before the chat was followed.
    pub fn new(delivered: Seq, generation: u64) -> Cursor {
        Cursor {
            delivered,
            caught_up: generation,
            outside_resume: Vec::new(),
        }
    }

    pub fn delivered(&self) -> Seq {
        self.delivered
    }

    pub fn caught_up_to(&self) -> u64 {
        self.caught_up
    }

    /// What to do with a live entry `seq` received at `generation`.
    pub fn on_live(&self, seq: Seq, generation: u64) -> Step {
        if generation > self.caught_up {
            Step::CatchUpFirst
        } else if seq <= self.delivered {
            Step::Skip
        } else {
            Step::Deliver
        }
    }

    /// Whether a catch-up (or a replay) still has to send `seq`.
    pub fn wants(&self, seq: Seq) -> bool {
        seq > self.delivered
    }

    /// `seq` was written outside a resume (live or by a catch-up).
    pub fn sent(&mut self, seq: Seq) {
        self.delivered = self.delivered.max(seq);
        if self.outside_resume.len() == OUTSIDE_RESUME_KEPT {
            self.outside_resume.remove(0);
        }
        self.outside_resume.push(seq);
    }

    /// A catch-up that read `Generation::settled` as `generation` before its first stream read
    /// has read the stream to its end.
    pub fn caught_up(&mut self, generation: u64) {
        self.caught_up = self.caught_up.max(generation);
    }

    /// A `resume` from the client's `from`: what the replay must skip besides everything at or
    /// below `from` (the entries already sent outside a resume).
    pub fn begin_resume(&mut self, from: Seq) -> Vec<Seq> {
        self.delivered = self.delivered.max(from);
        std::mem::take(&mut self.outside_resume)
    }

    /// `seq` was written by a resume's replay.
    pub fn replayed(&mut self, seq: Seq) {
        self.delivered = self.delivered.max(seq);
    }
}

#[cfg(test)]
#[path = "delivery_model.rs"]
mod model;
