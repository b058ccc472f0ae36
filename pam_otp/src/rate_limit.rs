//! Failed-code rate limiting, with lockouts that double.
//!
//! `max_failures` failed codes in a row (each within `interval` seconds of
//! the one before) lock the account for `interval` seconds. Every further
//! failure after a lockout doubles it, up to `interval << MAX_DOUBLINGS`.
//! A success, `otp-enroll unlock`, or a day without failures clears it.
//! Tries made while locked are refused without looking at the code and are
//! not counted, so waiting out a lock is never punished.
//!
//! With the defaults (3 per 30 s, ±1 step) a guesser who has the password
//! gets at most 3 + 11 = 14 tries in the first day (30 s · (2^11 − 1) ≤ 1 day)
//! and about one a day after that, each right with probability 3 / 10^6:
//! below 5 · 10^-5 per day. An honest user who mistypes twice is never
//! locked; a third mistake costs 30 s.

use crate::secret_file::State;

/// Doublings stop here: 30 s << 11 is about 17 hours, below FORGET_AFTER.
pub const MAX_DOUBLINGS: u32 = 11;
/// Failures are forgotten after this long without one.
pub const FORGET_AFTER: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Failed codes allowed before a lockout; 0 turns rate limiting off.
    pub max_failures: u32,
    /// Seconds: the first lockout, and the gap that forgives a few failures.
    pub interval: u64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            max_failures: 3,
            interval: 30,
        }
    }
}

impl RateLimit {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.interval == 0 || self.interval > 86_400 {
            return Err((
                "interval",
                format!("{} is out of range (1..=86400 seconds)", self.interval),
            ));
        }
        if self.max_failures > 1000 {
            return Err((
                "max_failures",
                format!("{} is more than 1000", self.max_failures),
            ));
        }
        Ok(())
    }

    fn enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// Seconds until the next try is allowed, or `None` if it is now.
    pub fn locked_for(&self, state: &State, now: u64) -> Option<u64> {
        if !self.enabled() || state.failures < self.max_failures {
            return None;
        }
        if now.saturating_sub(state.last_failure) >= FORGET_AFTER {
            return None;
        }
        let doublings = (state.failures - self.max_failures).min(MAX_DOUBLINGS);
        let until = state
            .last_failure
            .saturating_add(self.interval << doublings);
        (now < until).then(|| until - now)
    }

    /// Records a failed code at `now`.
    pub fn record_failure(&self, state: &mut State, now: u64) {
        let quiet = now.saturating_sub(state.last_failure);
        let forgiven =
            quiet >= FORGET_AFTER || (state.failures < self.max_failures && quiet >= self.interval);
        if forgiven {
            state.failures = 0;
        }
        state.failures = state.failures.saturating_add(1);
        state.last_failure = now;
    }

    /// A right code clears the failures.
    pub fn record_success(state: &mut State) {
        state.failures = 0;
        state.last_failure = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RL: RateLimit = RateLimit {
        max_failures: 3,
        interval: 30,
    };

    #[test]
    fn two_mistakes_never_lock_three_lock_for_the_interval() {
        let mut s = State::default();
        let t = 1_000_000;
        RL.record_failure(&mut s, t);
        RL.record_failure(&mut s, t + 5);
        assert_eq!(RL.locked_for(&s, t + 6), None);
        RL.record_failure(&mut s, t + 10);
        assert_eq!(RL.locked_for(&s, t + 10), Some(30));
        assert_eq!(RL.locked_for(&s, t + 33), Some(7));
        assert_eq!(RL.locked_for(&s, t + 40), None);
    }

    #[test]
    fn lockouts_double_after_the_threshold_and_cap() {
        let mut s = State::default();
        let mut t = 5_000_000;
        for _ in 0..3 {
            RL.record_failure(&mut s, t);
        }
        let mut expected = 30;
        for _ in 0..20 {
            assert_eq!(
                RL.locked_for(&s, t),
                Some(expected.min(30 << MAX_DOUBLINGS))
            );
            t += expected.min(30 << MAX_DOUBLINGS);
            assert_eq!(RL.locked_for(&s, t), None);
            RL.record_failure(&mut s, t);
            expected *= 2;
        }
    }

    #[test]
    fn spaced_out_failures_below_the_threshold_are_forgiven() {
        let mut s = State::default();
        RL.record_failure(&mut s, 100);
        RL.record_failure(&mut s, 110);
        RL.record_failure(&mut s, 200); // 90 s later: a fresh start
        assert_eq!(s.failures, 1);
        assert_eq!(RL.locked_for(&s, 200), None);
    }

    #[test]
    fn a_day_of_quiet_forgets_a_lockout() {
        let mut s = State::default();
        for i in 0..10 {
            RL.record_failure(&mut s, 100 + i);
        }
        assert!(RL.locked_for(&s, 200).is_some());
        assert_eq!(RL.locked_for(&s, 109 + FORGET_AFTER), None);
        RL.record_failure(&mut s, 109 + FORGET_AFTER);
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn success_clears_and_zero_disables() {
        let mut s = State::default();
        for i in 0..5 {
            RL.record_failure(&mut s, 100 + i);
        }
        RateLimit::record_success(&mut s);
        assert_eq!(RL.locked_for(&s, 105), None);
        let off = RateLimit {
            max_failures: 0,
            interval: 30,
        };
        for i in 0..50 {
            off.record_failure(&mut s, 100 + i);
        }
        assert_eq!(off.locked_for(&s, 150), None);
    }

    /// The figure in the module docs: tries a guesser gets in a day.
    #[test]
    fn guesser_tries_per_day_under_defaults() {
        let rl = RateLimit::default();
        let mut s = State::default();
        let start = 10_000_000;
        let mut t = start;
        let mut tries = 0;
        while t < start + 86_400 {
            match rl.locked_for(&s, t) {
                Some(wait) => t += wait,
                None => {
                    tries += 1;
                    rl.record_failure(&mut s, t);
                }
            }
        }
        assert_eq!(tries, 14);
        let p_per_try = 3.0 / 1e6; // ±1 step: three codes out of 10^6
        assert!(tries as f64 * p_per_try < 1e-4);
    }

    #[test]
    fn clock_going_backwards_does_not_panic_or_unlock_forever() {
        let mut s = State::default();
        for _ in 0..3 {
            RL.record_failure(&mut s, 1000);
        }
        assert_eq!(RL.locked_for(&s, 10), Some(1020));
    }
}
