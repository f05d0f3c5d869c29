//! Precise wake-ups for paced senders. tokio's timer wheel has millisecond granularity: a task
//! asleep until a scheduled send wakes up to a millisecond after it, and a latency measured
//! from the scheduled time (as ours is, so that a stalled sender is not excused) counted that
//! lag against every system under test. One thread here sleeps until the earliest due time
//! (a futex wait, usually tens of microseconds late; the `floor` scenario measures how late on
//! a given machine) and wakes the sender's task through its `Notify`; the task then runs on
//! the runtime like any other wake-up. The thread asks for no timer slack: by default Linux may
//! let a sleeping thread's timer fire up to 50 µs late so that it can group wake-ups, and
//! every microsecond of that would count as latency.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// A handle on the wake-up thread; cheap to clone. The thread ends when the last handle goes.
#[derive(Clone)]
pub struct Ticker(Arc<Handle>);

struct Handle(Arc<Shared>);

struct Shared {
    due: Mutex<BinaryHeap<Reverse<Due>>>,
    changed: Condvar,
    stop: AtomicBool,
    /// Breaks ties between equal instants, so ordering never looks at the `Notify`.
    order: AtomicU64,
}

struct Due {
    at: Instant,
    n: u64,
    wake: Arc<Notify>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.n) == (o.at, o.n)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.n).cmp(&(o.at, o.n))
    }
}

impl Ticker {
    pub fn start() -> Ticker {
        let shared = Arc::new(Shared {
            due: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            order: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("ticker".into())
            .spawn(move || {
                precise_sleeps();
                run(&s)
            })
            .expect("spawn the ticker thread");
        Ticker(Arc::new(Handle(shared)))
    }

    /// Notifies `wake` once `at` has come. A task woken early (a stale wake-up after its
    /// schedule changed) checks the time and waits again.
    pub fn wake_at(&self, at: Instant, wake: &Arc<Notify>) {
        let s = &self.0 .0;
        let n = s.order.fetch_add(1, Ordering::Relaxed);
        let mut due = s.due.lock().unwrap();
        let earliest = due.peek().is_none_or(|Reverse(d)| at < d.at);
        due.push(Reverse(Due {
            at,
            n,
            wake: wake.clone(),
        }));
        drop(due);
        if earliest {
            s.changed.notify_one();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        // Taking the lock orders the flag before the thread's next check.
        drop(self.0.due.lock().unwrap());
        self.0.changed.notify_one();
    }
}

/// Sleeps of the calling thread end on time rather than up to the default 50 µs late (the
/// kernel's timer slack). Best effort: a kernel that refuses leaves the default.
pub fn precise_sleeps() {
    if let Err(e) = nix::sys::prctl::set_timerslack(1) {
        eprintln!("timer slack stays at the default: {e}");
    }
}

fn run(s: &Shared) {
    let mut due = s.due.lock().unwrap();
    while !s.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        due = match due.peek() {
            None => s.changed.wait(due).unwrap(),
            Some(Reverse(d)) if d.at <= now => {
                let Reverse(d) = due.pop().expect("peeked");
                d.wake.notify_one();
                due
            }
            Some(Reverse(d)) => {
                let wait = d.at - now;
                s.changed.wait_timeout(due, wait).unwrap().0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_in_order_and_not_before_time() {
        let t = Ticker::start();
        let start = Instant::now();
        let late = Arc::new(Notify::new());
        let soon = Arc::new(Notify::new());
        t.wake_at(start + Duration::from_millis(30), &late);
        t.wake_at(start + Duration::from_millis(10), &soon);
        soon.notified().await;
        let soon_at = start.elapsed();
        late.notified().await;
        let late_at = start.elapsed();
        assert!(soon_at >= Duration::from_millis(10), "{soon_at:?}");
        assert!(late_at >= Duration::from_millis(30), "{late_at:?}");
    }

    #[test]
    fn precise_sleeps_sets_the_slack_of_this_thread_only() {
        let before = nix::sys::prctl::get_timerslack().unwrap();
        let inside = std::thread::spawn(|| {
            precise_sleeps();
            nix::sys::prctl::get_timerslack().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 1);
        assert_eq!(nix::sys::prctl::get_timerslack().unwrap(), before);
    }

    #[test]
    fn the_thread_ends_with_the_last_handle() {
        let t = Ticker::start();
        let shared = Arc::downgrade(&t.0 .0);
        drop(t.clone());
        assert!(shared.upgrade().is_some());
        drop(t);
        for _ in 0..200 {
            if shared.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the ticker thread kept running");
    }
}
