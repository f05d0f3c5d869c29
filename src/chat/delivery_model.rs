//! A model of one chat's delivery around the node's subscription: a stream, a lossy pub/sub
//! link that drops, reconnects and lags, the listener that stamps generations, and one
//! connection driving the real `Cursor`. Thousands of random interleavings; the client must
//! see the stream exactly, in order, with no gap at any moment, and everything in the end.

use super::{Cursor, Generation, Step};
use crate::chat::hub::Seq;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    /// The subscriber connection dropped: nothing published arrives.
    Down,
    /// Connected again but not yet subscribed again.
    Reconnected,
}

/// Where the node bumps the generation after a reconnect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// On the reconnect event, before subscribing again (what the node does).
    BumpThenSubscribe,
    /// After subscribing again, as a separate step: live entries can slip in between.
    SubscribeThenBump,
}

enum Item {
    Live(u64, u64),
    CatchUp,
}

struct Model {
    order: Order,
    stream: Vec<u64>,
    link: Link,
    bump_owed: bool,
    generation: Generation,
    /// Published and received by the subscriber connection, not yet handed out by the listener.
    received: VecDeque<u64>,
    inbox: VecDeque<Item>,
    cursor: Cursor,
    /// A catch-up under way: the generation read before its stream read, and the live entry
    /// it holds back.
    catching_up: Option<(u64, Option<(u64, u64)>)>,
    client: Vec<u64>,
}

fn seq(n: u64) -> Seq {
    Seq(n, 0)
}

impl Model {
    fn new(order: Order) -> Model {
        Model {
            order,
            stream: Vec::new(),
            link: Link::Up,
            bump_owed: false,
            generation: Generation::default(),
            received: VecDeque::new(),
            inbox: VecDeque::new(),
            cursor: Cursor::new(Seq::default(), 0),
            catching_up: None,
            client: Vec::new(),
        }
    }

    fn append(&mut self) {
        let n = self.stream.len() as u64 + 1;
        self.stream.push(n);
        if self.link == Link::Up {
            self.received.push_back(n);
        }
    }

    fn reconnect(&mut self) {
        if self.link == Link::Down {
            self.link = Link::Reconnected;
            match self.order {
                Order::BumpThenSubscribe => self.generation.lapse_begins(),
                Order::SubscribeThenBump => self.bump_owed = true,
            }
        }
    }

    fn subscribe_again(&mut self) {
        if self.link == Link::Reconnected {
            self.link = Link::Up;
            if self.order == Order::BumpThenSubscribe {
                self.generation.lapse_ends();
                self.inbox.push_back(Item::CatchUp);
            }
        }
    }

    fn late_bump(&mut self) {
        if self.bump_owed && self.link == Link::Up {
            self.bump_owed = false;
            self.generation.lost();
            self.inbox.push_back(Item::CatchUp);
        }
    }

    /// The listener fell behind: the oldest `k` received messages are lost.
    fn lag(&mut self, k: usize) {
        if self.received.is_empty() {
            return;
        }
        for _ in 0..k.min(self.received.len()) {
            self.received.pop_front();
        }
        self.generation.lost();
    }

    fn listen(&mut self) {
        if let Some(n) = self.received.pop_front() {
            self.inbox
                .push_back(Item::Live(n, self.generation.current()));
        }
    }

    fn write(&mut self, n: u64) {
        self.client.push(n);
        self.cursor.sent(seq(n));
    }

    fn offer_live(&mut self, n: u64, g: u64) {
        match self.cursor.on_live(seq(n), g) {
            Step::Deliver => self.write(n),
            Step::Skip => {}
            Step::CatchUpFirst => {
                self.catching_up = Some((self.generation.settled(), Some((n, g))));
            }
        }
    }

    /// One step of the connection: finish a catch-up, or take the next inbox item.
    fn connection(&mut self) {
        if let Some((g0, held)) = self.catching_up.take() {
            // The stream read: everything appended so far, after `delivered`.
            let after: Vec<u64> = self
                .stream
                .iter()
                .copied()
                .filter(|n| self.cursor.wants(seq(*n)))
                .collect();
            for n in after {
                self.write(n);
            }
            self.cursor.caught_up(g0);
            if let Some((n, g)) = held {
                self.offer_live(n, g);
            }
            return;
        }
        match self.inbox.pop_front() {
            Some(Item::Live(n, g)) => self.offer_live(n, g),
            Some(Item::CatchUp) if self.cursor.caught_up_to() < self.generation.current() => {
                self.catching_up = Some((self.generation.settled(), None));
            }
            Some(Item::CatchUp) | None => {}
        }
    }

    /// What the client has is exactly the start of the stream.
    fn gap_free(&self) -> bool {
        self.client
            .iter()
            .enumerate()
            .all(|(i, n)| *n == i as u64 + 1)
    }

    /// Faults stop; the node settles and the connection drains.
    fn settle(&mut self) {
        if self.link == Link::Down {
            self.reconnect();
        }
        self.subscribe_again();
        self.late_bump();
        self.inbox.push_back(Item::CatchUp);
        while !self.received.is_empty() || !self.inbox.is_empty() || self.catching_up.is_some() {
            self.listen();
            self.connection();
        }
    }
}

/// Runs one random interleaving; false when the client saw a gap or missed something.
fn run(order: Order, seed: u64) -> bool {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = Model::new(order);
    let steps = rng.gen_range(20..300);
    for _ in 0..steps {
        match rng.gen_range(0..100) {
            0..=29 => m.append(),
            30..=32 => {
                if m.link == Link::Up {
                    m.link = Link::Down;
                }
            }
            33..=37 => m.reconnect(),
            38..=42 => m.subscribe_again(),
            43..=45 => m.late_bump(),
            46..=47 => m.lag(rng.gen_range(1..4)),
            48..=49 => m.inbox.push_back(Item::CatchUp),
            50..=69 => m.listen(),
            _ => m.connection(),
        }
        if !m.gap_free() {
            return false;
        }
    }
    m.settle();
    m.gap_free() && m.client.len() == m.stream.len()
}

#[test]
fn reconnects_and_lags_at_random_points_never_leave_a_gap() {
    for seed in 0..5_000 {
        assert!(run(Order::BumpThenSubscribe, seed), "gap with seed {seed}");
    }
}

/// The model finds the gap of subscribing again before bumping the generation (a live entry
/// received in between is delivered past the missed ones), so the test above can fail.
#[test]
fn subscribing_again_before_the_bump_is_caught_as_a_gap() {
    let gaps = (0..5_000)
        .filter(|seed| !run(Order::SubscribeThenBump, *seed))
        .count();
    assert!(gaps > 0, "no interleaving found the gap");
}
