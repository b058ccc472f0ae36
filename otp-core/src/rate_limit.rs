//! Failed-code rate limiting, with lockouts that grow fourfold.
//!
//! `max_failures` failed codes since the last success lock the account for
//! `interval` seconds; every further failure multiplies the lock by four, up
//! to a day. Failures are forgotten only by a right code, `otp-enroll
//! unlock`, or a day without failures after the last lock ended: spacing
//! guesses out buys nothing. Tries made while locked are refused without
//! looking at the code and are not counted, so waiting out a lock is never
//! punished.
//!
//! With the defaults (3, 30 s) a guesser who has the password gets at most
//! 3 + 6 = 9 tries in any day (locks of 30 s, 2, 8, 32 min, 2.1 h, 8.5 h, then
//! a day each), each right with probability (2·totp_skew + 1)/10^6 = 3·10^-6
//! for TOTP or (hotp_window + 1)/10^6 = 1.1·10^-5 for HOTP: below 2.7·10^-5
//! and 9.9·10^-5 per day. An honest user who mistypes twice is never locked;
//! a third mistake costs 30 s.

use crate::secret_file::State;

/// The longest lock, and the quiet after a lock that forgets the failures.
pub const MAX_LOCK: u64 = 86_400;
pub const FORGET_AFTER: u64 = 86_400;

/// The most `max_failures` may be.
pub const MAX_FAILURES_LIMIT: u32 = 1000;

/// A rate-limit setting out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitError {
    Interval(u64),
    MaxFailures(u32),
}

impl RateLimitError {
    /// The setting's name in the config's `[rate_limit]` table.
    pub fn key(&self) -> &'static str {
        match self {
            RateLimitError::Interval(_) => "interval",
            RateLimitError::MaxFailures(_) => "max_failures",
        }
    }

    fn reason(&self) -> String {
        match self {
            RateLimitError::Interval(i) => {
                format!("{i} is out of range (1..={MAX_LOCK} seconds)")
            }
            RateLimitError::MaxFailures(n) => format!("{n} is more than {MAX_FAILURES_LIMIT}"),
        }
    }
}

impl std::fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key(), self.reason())
    }
}

impl std::error::Error for RateLimitError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Failed codes allowed before a lockout; 0 turns rate limiting off.
    pub max_failures: u32,
    /// Seconds: the first lockout.
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
    /// Whether the settings are usable: an interval of 1 s to a day, at
    /// most [`MAX_FAILURES_LIMIT`] failures.
    pub fn check(&self) -> Result<(), RateLimitError> {
        if self.interval == 0 || self.interval > MAX_LOCK {
            return Err(RateLimitError::Interval(self.interval));
        }
        if self.max_failures > MAX_FAILURES_LIMIT {
            return Err(RateLimitError::MaxFailures(self.max_failures));
        }
        Ok(())
    }

    /// [`RateLimit::check`] as (key, reason): only until config.rs calls
    /// `check`; then it goes.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.check().map_err(|e| (e.key(), e.reason()))
    }

    fn enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// How long `failures` (at or past the threshold) lock for.
    fn lock(&self, failures: u32) -> u64 {
        let steps = failures.saturating_sub(self.max_failures).min(16);
        self.interval
            .saturating_mul(1u64 << (2 * steps))
            .min(MAX_LOCK)
    }

    /// Whether the failures recorded so far are forgotten at `now`: a day
    /// of quiet after the last lock (or failure) ended.
    fn forgotten(&self, state: &State, now: u64) -> bool {
        let lock = if self.enabled() && state.failures >= self.max_failures {
            self.lock(state.failures)
        } else {
            0
        };
        now.saturating_sub(state.last_failure) >= lock.saturating_add(FORGET_AFTER)
    }

    /// Seconds until the next try is allowed, or `None` if it is now.
    pub fn locked_for(&self, state: &State, now: u64) -> Option<u64> {
        if !self.enabled() || state.failures < self.max_failures {
            return None;
        }
        let until = state.last_failure.saturating_add(self.lock(state.failures));
        (now < until).then(|| until - now)
    }

    /// Records a failed code at `now`.
    pub fn record_failure(&self, state: &mut State, now: u64) {
        if self.forgotten(state, now) {
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
    fn lockouts_grow_fourfold_after_the_threshold_up_to_a_day() {
        let mut s = State::default();
        let mut t = 5_000_000;
        for _ in 0..3 {
            RL.record_failure(&mut s, t);
        }
        let mut expected: u64 = 30;
        for _ in 0..20 {
            let lock = expected.min(MAX_LOCK);
            assert_eq!(RL.locked_for(&s, t), Some(lock));
            t += lock;
            assert_eq!(RL.locked_for(&s, t), None);
            RL.record_failure(&mut s, t);
            assert!(
                s.failures > 3,
                "failures must not be forgotten between locks"
            );
            expected = expected.saturating_mul(4);
        }
    }

    #[test]
    fn spacing_guesses_out_does_not_reset_the_count() {
        let mut s = State::default();
        RL.record_failure(&mut s, 100);
        RL.record_failure(&mut s, 110);
        RL.record_failure(&mut s, 200); // 90 s later: still the third
        assert_eq!(s.failures, 3);
        assert_eq!(RL.locked_for(&s, 200), Some(30));
    }

    #[test]
    fn a_day_of_quiet_after_the_lock_forgets_it() {
        let mut s = State::default();
        for i in 0..4 {
            RL.record_failure(&mut s, 100 + i);
        }
        // 4 failures: a 120 s lock from t=103.
        assert_eq!(RL.locked_for(&s, 103), Some(120));
        RL.record_failure(&mut s, 103 + 120 + FORGET_AFTER - 1);
        assert_eq!(s.failures, 5, "not quite a day after the lock ended");
        let last = s.last_failure;
        RL.record_failure(&mut s, last + 480 + FORGET_AFTER);
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

    /// The figures in the module docs: tries a guesser gets in a day, both
    /// retrying the moment a lock ends and pacing tries out.
    #[test]
    fn guesser_tries_per_day_under_defaults() {
        let rl = RateLimit::default();
        for pace in [0u64, 1, 31, 61, 600] {
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
                        t += pace;
                    }
                }
            }
            assert!(tries <= 9, "pace {pace}: {tries} tries in a day");
            let p_totp = 3.0 / 1e6; // ±1 step: three codes out of 10^6
            let p_hotp = 11.0 / 1e6; // counter ..= counter + 10
            assert!(tries as f64 * p_totp < 1e-4);
            assert!(tries as f64 * p_hotp < 1e-4, "pace {pace}");
        }
    }

    #[test]
    fn clock_going_backwards_does_not_panic_or_unlock_forever() {
        let mut s = State::default();
        for _ in 0..3 {
            RL.record_failure(&mut s, 1000);
        }
        assert_eq!(RL.locked_for(&s, 10), Some(1020));
    }

    #[test]
    fn settings_out_of_range_are_named() {
        assert_eq!(RL.check(), Ok(()));
        let off = RateLimit {
            max_failures: 0,
            interval: 1,
        };
        assert_eq!(off.check(), Ok(()));
        let bad = |max_failures, interval| {
            RateLimit {
                max_failures,
                interval,
            }
            .check()
            .unwrap_err()
            .to_string()
        };
        assert_eq!(bad(3, 0), "interval: 0 is out of range (1..=86400 seconds)");
        assert_eq!(
            bad(3, 86_401),
            "interval: 86401 is out of range (1..=86400 seconds)"
        );
        assert_eq!(bad(1001, 30), "max_failures: 1001 is more than 1000");
        let shim = RateLimit {
            max_failures: 1001,
            interval: 30,
        }
        .validate();
        assert_eq!(shim, Err(("max_failures", "1001 is more than 1000".into())));
    }
}
