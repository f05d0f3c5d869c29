//! The paced sender: one thread that sleeps until the earliest scheduled send and performs it
//! itself, writing the frame straight to the socket (see `wire`), so a send costs one wake-up
//! of this thread and no other. tokio's timer wheel has millisecond granularity, and waking a
//! connection's task for each send cost a second thread's wake-up per message.
//!
//! Each registered [`Paced`] sends `rate × weight` times per second (its weight is, for
//! instance, the number of live chats of a connection), the first send at `phase` of an
//! interval after a change, each later one exactly one interval after the previous
//! *scheduled* time: latency counts from that time, so a sender that falls behind is not
//! excused (it catches up as fast as it can). The thread asks for no timer slack: Linux may
//! otherwise let its sleeps end up to 50 µs late to group wake-ups.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Something sent on a schedule, from the sender's thread.
pub trait Paced: Send + Sync {
    /// Sends the message scheduled for `due` (now or a little earlier). Must not block.
    fn fire(&self, due: Instant);
}

enum Cmd {
    Add(usize, Arc<dyn Paced>, f64),
    Weight(usize, f64),
    Rate(f64),
    Remove(usize),
}

#[derive(Default)]
struct Queue {
    cmds: Vec<Cmd>,
    next_id: usize,
    stop: bool,
}

struct Shared {
    q: Mutex<Queue>,
    changed: Condvar,
}

/// A handle on the sender thread; cheap to clone. The thread ends when the last handle goes.
#[derive(Clone)]
pub struct Sender(Arc<Handle>);

struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.q.lock().unwrap().stop = true;
        self.0.changed.notify_one();
    }
}

impl Sender {
    pub fn start() -> Sender {
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || {
                precise_sleeps();
                run(&s)
            })
            .expect("spawn the sender thread");
        Sender(Arc::new(Handle(shared)))
    }

    fn push(&self, c: Cmd) {
        self.0 .0.q.lock().unwrap().cmds.push(c);
        self.0 .0.changed.notify_one();
    }

    /// Registers `p` with weight 0 (silent); its slot number.
    pub fn add(&self, p: Arc<dyn Paced>, phase: f64) -> usize {
        let id = {
            let mut q = self.0 .0.q.lock().unwrap();
            let id = q.next_id;
            q.next_id += 1;
            q.cmds.push(Cmd::Add(id, p, phase.clamp(0.0, 1.0)));
            id
        };
        self.0 .0.changed.notify_one();
        id
    }

    /// Sets how many times the base rate slot `id` sends (0: silent); its schedule restarts.
    pub fn weight(&self, id: usize, w: f64) {
        self.push(Cmd::Weight(id, w));
    }

    /// Sets the base rate (sends per second per unit of weight); every schedule restarts.
    pub fn rate(&self, hz: f64) {
        self.push(Cmd::Rate(hz));
    }

    pub fn remove(&self, id: usize) {
        self.push(Cmd::Remove(id));
    }
}

/// Sleeps of the calling thread end on time rather than up to the default 50 µs late (the
/// kernel's timer slack). Best effort: a kernel that refuses leaves the default.
pub fn precise_sleeps() {
    if let Err(e) = nix::sys::prctl::set_timerslack(1) {
        eprintln!("timer slack stays at the default: {e}");
    }
}

struct Slot {
    p: Arc<dyn Paced>,
    phase: f64,
    weight: f64,
    interval: Duration,
    /// Bumped at each restart: heap entries of an older schedule are skipped.
    gen: u32,
}

struct State {
    slots: Vec<Option<Slot>>,
    heap: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    rate: f64,
}

impl State {
    fn restart(&mut self, id: usize, now: Instant) {
        let rate = self.rate;
        let Some(Some(s)) = self.slots.get_mut(id) else {
            return;
        };
        s.gen = s.gen.wrapping_add(1);
        let hz = rate * s.weight;
        if hz > 0.0 && hz.is_finite() {
            s.interval = Duration::from_secs_f64(1.0 / hz);
            let first = now + s.interval.mul_f64(s.phase);
            self.heap.push(Reverse((first, id, s.gen)));
        } else {
            s.interval = Duration::ZERO;
        }
    }

    fn apply(&mut self, c: Cmd, now: Instant) {
        match c {
            Cmd::Add(id, p, phase) => {
                if self.slots.len() <= id {
                    self.slots.resize_with(id + 1, || None);
                }
                self.slots[id] = Some(Slot {
                    p,
                    phase,
                    weight: 0.0,
                    interval: Duration::ZERO,
                    gen: 0,
                });
            }
            Cmd::Weight(id, w) => {
                if let Some(Some(s)) = self.slots.get_mut(id) {
                    s.weight = w;
                }
                self.restart(id, now);
            }
            Cmd::Rate(hz) => {
                self.rate = hz;
                for id in 0..self.slots.len() {
                    self.restart(id, now);
                }
            }
            Cmd::Remove(id) => {
                if let Some(s) = self.slots.get_mut(id) {
                    *s = None;
                }
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut st = State {
        slots: Vec::new(),
        heap: BinaryHeap::new(),
        rate: 0.0,
    };
    let mut cmds = Vec::new();
    loop {
        {
            let mut q = shared.q.lock().unwrap();
            loop {
                if q.stop {
                    return;
                }
                if !q.cmds.is_empty() {
                    break;
                }
                let Some(Reverse((at, ..))) = st.heap.peek() else {
                    q = shared.changed.wait(q).unwrap();
                    continue;
                };
                let now = Instant::now();
                if *at <= now {
                    break;
                }
                q = shared.changed.wait_timeout(q, *at - now).unwrap().0;
            }
            std::mem::swap(&mut q.cmds, &mut cmds);
        }
        let now = Instant::now();
        for c in cmds.drain(..) {
            st.apply(c, now);
        }
        while let Some(&Reverse((at, id, gen))) = st.heap.peek() {
            if at > now {
                break;
            }
            st.heap.pop();
            let Some(Some(s)) = st.slots.get(id) else {
                continue;
            };
            if s.gen != gen || s.interval.is_zero() {
                continue;
            }
            s.p.fire(at);
            st.heap.push(Reverse((at + s.interval, id, gen)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Count {
        n: AtomicU64,
        first_due: Mutex<Option<Instant>>,
    }
    impl Paced for Count {
        fn fire(&self, due: Instant) {
            assert!(Instant::now() >= due, "fired before its time");
            self.first_due.lock().unwrap().get_or_insert(due);
            self.n.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn sends_at_rate_times_weight_and_stops_at_weight_zero() {
        let s = Sender::start();
        let c = Arc::new(Count {
            n: AtomicU64::new(0),
            first_due: Mutex::new(None),
        });
        let id = s.add(c.clone(), 0.5);
        s.rate(100.0);
        let t = Instant::now();
        s.weight(id, 2.0);
        std::thread::sleep(Duration::from_millis(500));
        let n = c.n.load(Ordering::Relaxed);
        // 200 per second for half a second; generous bounds for a loaded machine.
        assert!((70..=110).contains(&n), "{n} sends");
        let first = c.first_due.lock().unwrap().unwrap();
        assert!(
            first >= t + Duration::from_micros(2400),
            "phase: half an interval"
        );
        s.weight(id, 0.0);
        std::thread::sleep(Duration::from_millis(50));
        let stopped = c.n.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.n.load(Ordering::Relaxed), stopped);
    }

    #[test]
    fn the_thread_ends_with_the_last_handle() {
        let s = Sender::start();
        let shared = Arc::downgrade(&s.0 .0);
        drop(s.clone());
        assert!(shared.upgrade().is_some());
        drop(s);
        for _ in 0..200 {
            if shared.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the sender thread kept running");
    }
}
