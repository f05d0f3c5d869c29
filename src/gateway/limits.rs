//! Per-connection frame rate limit: a token bucket (`limits.frames_per_second`, bursts up to
//! `limits.burst_frames`). A frame over the rate is refused with 4100, not queued.

use std::time::Instant;

pub struct RateLimit {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_sec: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_sec: per_sec as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    pub fn allow_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    /// Milliseconds until the next frame would be allowed (after a refusal).
    pub fn retry_after_ms(&self) -> u64 {
        (((1.0 - self.tokens).max(0.0) / self.per_sec) * 1000.0).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(10, 3);
        assert!((0..3).all(|_| r.allow_at(t0)));
        assert!(!r.allow_at(t0));
        assert!(r.allow_at(t0 + Duration::from_millis(100)));
        assert!(!r.allow_at(t0 + Duration::from_millis(100)));
    }
}
