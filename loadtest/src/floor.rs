//! The machine's own floor: one message's round trip between two threads over loopback TCP,
//! paced like the chat scenario, with no server, Redis or protocol in the way. A relay's
//! message crosses loopback and wakes a sleeping thread several times, so its latency tail
//! cannot be lower than what this measures on the same machine at the same time; running it
//! next to the other scenarios tells a slow machine from a slow build.
//!
//! Both ends are blocking std sockets on threads of their own (TCP_NODELAY, one listener on
//! 127.0.0.1 with a port from the kernel), and the client sleeps until each scheduled send,
//! so the report also gives how late a sleeping thread wakes up (with no timer slack, as the
//! chat scenario's sender sleeps).

use crate::stats::{hist, summary};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub struct FloorOpts {
    /// Round trips per second.
    pub rate: f64,
    /// Seconds measured, after one second of warm-up.
    pub duration: f64,
    /// Bytes each way per round trip.
    pub bytes: usize,
}

const WARMUP: Duration = Duration::from_secs(1);

/// Runs the round trips (blocking: call it off the async runtime).
pub fn run(o: &FloorOpts) -> Result<Value> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the echo listener")?;
    let addr = listener.local_addr()?;
    let bytes = o.bytes.max(1);
    let echo = std::thread::Builder::new()
        .name("floor-echo".into())
        .spawn(move || -> std::io::Result<()> {
            let (mut s, _) = listener.accept()?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; bytes];
            // Ends when the client closes its end.
            while s.read_exact(&mut buf).is_ok() {
                s.write_all(&buf)?;
            }
            Ok(())
        })?;
    crate::sender::precise_sleeps();
    let mut s = TcpStream::connect(addr).context("connecting to the echo thread")?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let out = vec![b'x'; bytes];
    let mut back = vec![0u8; bytes];
    let (mut rtt, mut late) = (hist(), hist());
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1.0));
    let start = Instant::now();
    let end = start + WARMUP + Duration::from_secs_f64(o.duration.max(0.1));
    let mut due = start;
    let mut n: u64 = 0;
    while due < end {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent = Instant::now();
        s.write_all(&out)?;
        s.read_exact(&mut back)
            .context("the echo did not come back within 5 s")?;
        if due >= start + WARMUP {
            rtt.saturating_record(sent.elapsed().as_micros() as u64);
            late.saturating_record(sent.saturating_duration_since(due).as_micros() as u64);
        }
        n += 1;
        // A stalled round trip does not queue a burst behind it: the next send is due one
        // interval after the later of its schedule and now.
        due = (due + interval).max(Instant::now());
    }
    drop(s);
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(json!({
        "rate": o.rate,
        "bytes": bytes,
        "round_trips": n,
        "round_trip": summary(&rtt),
        "wake_up_lateness": summary(&late),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_come_back_and_are_measured_after_the_warmup() {
        let r = run(&FloorOpts {
            rate: 200.0,
            duration: 0.5,
            bytes: 250,
        })
        .unwrap();
        let trips = r["round_trips"].as_u64().unwrap();
        let measured = r["round_trip"]["count"].as_u64().unwrap();
        // 1.5 s at 200/s is 300 sends; a slow machine sends fewer, never more.
        assert!((100..=301).contains(&trips), "{trips} round trips");
        assert!(
            measured < trips && measured >= 30,
            "{measured} measured of {trips}"
        );
        assert!(r["round_trip"]["p50_ms"].as_f64().unwrap() > 0.0);
    }
}
