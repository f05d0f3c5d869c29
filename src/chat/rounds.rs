//! Folds bursts of "something changed in queue Q" into rounds of work: while a round for Q runs
//! on this node, further changes only ask for one more round after it. A burst of N changes
//! then costs about two rounds instead of N, and the last round always starts after the last
//! change, so nothing is left out.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Rounds {
    /// Keys with a round running -> whether another change came in meanwhile.
    running: Mutex<HashMap<String, bool>>,
}

impl Rounds {
    /// Starts a round for `key`, or, when one is already running, asks it to go once more and
    /// returns false (the caller has nothing to do).
    pub fn begin(&self, key: &str) -> bool {
        let mut r = self.running.lock().unwrap();
        match r.get_mut(key) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                r.insert(key.to_string(), false);
                true
            }
        }
    }

    /// Ends a round for `key`; true when changes arrived meanwhile and it must run again.
    pub fn end(&self, key: &str) -> bool {
        let mut r = self.running.lock().unwrap();
        match r.get_mut(key) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                r.remove(key);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_during_a_round_fold_into_one_more() {
        let r = Rounds::default();
        assert!(r.begin("q"));
        assert!(!r.begin("q"));
        assert!(!r.begin("q"));
        assert!(r.begin("other"));
        // Two changes came in: one more round, then done.
        assert!(r.end("q"));
        assert!(!r.end("q"));
        assert!(r.begin("q"));
        assert!(!r.end("q"));
    }
}
