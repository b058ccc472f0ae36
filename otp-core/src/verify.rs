//! Checking a typed code against a secret file at a given time.
//!
//! [`verify`] is pure: it takes the file, the code and the clock, updates
//! the file's state (counter, last step, scratch codes, failures) and says
//! what happened. Saving the file is the caller's job, and a code counts as
//! accepted only once that save succeeded.

use std::fmt;

use crate::otp::{self, code_eq, normalize_code};
use crate::rate_limit::RateLimit;
use crate::secret_file::{
    hotp_search, Inactive, OtpKind, SecretFile, State, TempCodeGone, Token, TokenState,
    MAX_COUNTER, TEMP_CODE_DIGITS,
};

/// Learned TOTP drift stays within this many steps of the server clock.
pub const MAX_DRIFT_STEPS: i64 = 10;

/// After the learned drift moved one step, it does not move again for this
/// long (a day).
///
/// Why drift learning is bounded. The window is `now + drift ± totp_skew`;
/// an accepted code at offset `o` from now (so `|o - drift| <= totp_skew`)
/// moves the drift one step towards `o`, and only if the last move was at
/// least this long ago (or never). So after `n` accepted codes, the first
/// of which moved it at time `t0`, `|drift| <= min(n, 1 + (now - t0) / a day,
/// MAX_DRIFT_STEPS)`: whoever holds the key can no longer take it to +10
/// within one period (each code at the window's leading edge used to move
/// it one more step), but needs ten logins spread over nine days.
///
/// A real device is still followed. Phones keep network time and do not
/// drift at all; a hardware token's crystal (20 to 50 ppm) loses or gains
/// a few seconds a day, one 30 s step in a week or more. A step a day is
/// several times faster than that, and between moves the ±`totp_skew`
/// window keeps accepting the device where it is.
///
/// What it does not stop: a key holder who logs in a day apart can still
/// shift the window past the real device (drift beyond `totp_skew`, two
/// days with the default skew of 1). Holding the key is the whole second
/// factor anyway; the admin's way back is `otp-enroll unlock`, which
/// forgets the drift ([`crate::secret_file::TokenState::forget_drift`]).
pub const DRIFT_MOVE_INTERVAL: u64 = 24 * 60 * 60;

/// Login-time settings that come from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub totp_skew: u32,
    pub hotp_window: u32,
    pub rate_limit: RateLimit,
}

/// How a code was accepted; `token` is the id of the token that accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Totp {
        token: String,
        step: u64,
    },
    Hotp {
        token: String,
        counter: u64,
    },
    Scratch {
        left: usize,
    },
    /// `otp-enroll temp-code`: uses left after this one, and when it
    /// expires (Unix time).
    TempCode {
        left: u32,
        expires: u64,
    },
}

/// Why a code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not 6–8 digits after removing spaces and dashes.
    Malformed,
    Wrong,
    /// Right code, already used (TOTP step at or before the last accepted),
    /// and no other token accepted it.
    Replay,
    /// HOTP: a token of the code's length is at [`MAX_COUNTER`], so no
    /// code of it can be accepted.
    CounterExhausted,
    /// The user's temporary code, which is used up or expired: refused
    /// and counted as a wrong code is (the user is told the same).
    TempCodeGone(TempCodeGone),
}

/// What became of a code. A caller that drops it has not decided the login.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted(Method),
    Refused(Refusal),
    /// Too many failures: refused without looking at the code.
    Locked {
        retry_in: u64,
    },
    /// The code is right only for a token that accepts nothing now
    /// (disabled, not yet valid, expired), or it is an emergency code of a
    /// user none of whose tokens is active. Refused and counted as a
    /// failure like a wrong code, and the user is told nothing more than
    /// for a wrong code, so a guesser learns nothing from it; only the log
    /// says which token and why. `token` is `None` for an emergency code.
    Inactive {
        token: Option<String>,
        why: Inactive,
    },
}

impl Verdict {
    /// Whether the state changed and the file must be saved.
    pub fn changes_state(&self) -> bool {
        !matches!(self, Verdict::Locked { .. })
    }

    /// [`Verdict`]'s text for the log (auth.rs calls this name).
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

/// For the log. A verdict does not hold the code, so its text cannot show it.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accepted(Method::Totp { token, step }) => {
                write!(f, "TOTP code accepted (token {token}, step {step})")
            }
            Verdict::Accepted(Method::Hotp { token, counter }) => {
                write!(f, "HOTP code accepted (token {token}, counter {counter})")
            }
            Verdict::Accepted(Method::Scratch { left }) => {
                write!(f, "emergency code accepted ({left} left)")
            }
            Verdict::Accepted(Method::TempCode { left, expires }) => write!(
                f,
                "temporary code accepted ({left} uses left, expires at {expires})"
            ),
            Verdict::Refused(Refusal::TempCodeGone(why)) => {
                write!(f, "refused: the temporary code, which is {why}")
            }
            Verdict::Refused(Refusal::Malformed) => f.write_str("malformed code"),
            Verdict::Refused(Refusal::Wrong) => f.write_str("wrong code"),
            Verdict::Refused(Refusal::Replay) => f.write_str("replayed code (already used)"),
            Verdict::Refused(Refusal::CounterExhausted) => f.write_str(
                "wrong code (the HOTP counter is at its limit, 2^53: the token needs a new seed)",
            ),
            Verdict::Locked { retry_in } => {
                write!(f, "rate limited (locked for {retry_in} s more)")
            }
            Verdict::Inactive {
                token: Some(token),
                why,
            } => write!(f, "refused: code of token {token}, which is {why}"),
            Verdict::Inactive { token: None, why } => write!(
                f,
                "refused: emergency code, but no token of the user is active (e.g. {why})"
            ),
        }
    }
}

/// Checks `typed` at Unix time `now` against every token of `file`,
/// updating the state of the token that accepts it and the user's rate
/// limit: one failure per wrong code, however many tokens there are.
pub fn verify(file: &mut SecretFile, typed: &str, policy: &Policy, now: u64) -> Verdict {
    if let Some(retry_in) = policy.rate_limit.locked_for(&file.state, now) {
        return Verdict::Locked { retry_in };
    }
    let verdict = match normalize_code(typed) {
        Some(code) => check(file, &code, policy, now),
        None => Verdict::Refused(Refusal::Malformed),
    };
    match verdict {
        Verdict::Accepted(_) => RateLimit::record_success(&mut file.state),
        _ => policy.rate_limit.record_failure(&mut file.state, now),
    }
    // A temporary code used up or expired goes with this write.
    file.prune_temp_code(now);
    verdict
}

/// Checks `typed` for a user who has no token: nothing is right, but the
/// rate limit is applied and recorded in `state` exactly as [`verify`]
/// does for a wrong code, so the answers (and "Too many failed attempts")
/// look the same as for a user who has one.
pub fn verify_no_token(state: &mut State, typed: &str, policy: &Policy, now: u64) -> Verdict {
    if let Some(retry_in) = policy.rate_limit.locked_for(state, now) {
        return Verdict::Locked { retry_in };
    }
    let verdict = match normalize_code(typed) {
        Some(code) if code.len() == 6 || code.len() == otp::SCRATCH_DIGITS => {
            Verdict::Refused(Refusal::Wrong)
        }
        _ => Verdict::Refused(Refusal::Malformed),
    };
    policy.rate_limit.record_failure(state, now);
    verdict
}

/// What one token made of a code.
enum TokenAnswer {
    Accepted(Method),
    Replay,
    Exhausted,
    NoMatch,
}

fn check(file: &mut SecretFile, code: &str, policy: &Policy, now: u64) -> Verdict {
    let mut replay = false;
    let mut exhausted = false;
    let mut fits_a_token = false;
    // The first inactive token the code was right for, and why it is.
    let mut inactive_hit = None;
    // Why some token is inactive, when none is active: emergency codes
    // then accept nothing either (see `check_scratch`'s caller).
    let mut any_active = false;
    let mut some_inactive = None;
    // In the file's order, stopping at the first token that accepts: each
    // token's replay state and drift are its own.
    for token in file.tokens.iter_mut() {
        let inactive = token.lifecycle.inactive_at(now);
        match inactive {
            None => any_active = true,
            Some(why) => some_inactive = some_inactive.or(Some(why)),
        }
        if code.len() != usize::from(token.digits) {
            continue;
        }
        fits_a_token = true;
        if let Some(why) = inactive {
            // Checked on a copy, so that its state does not move: it keeps
            // its counter and state, and accepts nothing.
            let mut copy = token.clone();
            let right = matches!(
                check_token(&mut copy, code, policy, now),
                TokenAnswer::Accepted(_) | TokenAnswer::Replay
            );
            if right && inactive_hit.is_none() {
                inactive_hit = Some((token.id.clone(), why));
            }
            continue;
        }
        match check_token(token, code, policy, now) {
            TokenAnswer::Accepted(method) => {
                token.state.last_used = Some(now);
                return Verdict::Accepted(method);
            }
            TokenAnswer::Replay => replay = true,
            TokenAnswer::Exhausted => exhausted = true,
            TokenAnswer::NoMatch => {}
        }
    }
    // The temporary code of a lost phone: whatever the tokens' state (that
    // is its point: the lost phone is disabled). Tried before emergency
    // codes, which `otp-enroll temp-code` never makes it equal to.
    let mut temp_gone = None;
    if code.len() == TEMP_CODE_DIGITS {
        if let Some(temp) = file.temp_code.as_mut().filter(|t| t.matches(code)) {
            match temp.gone_at(now) {
                None => {
                    temp.uses_left = temp.uses_left.saturating_sub(1);
                    return Verdict::Accepted(Method::TempCode {
                        left: temp.uses_left,
                        expires: temp.expires,
                    });
                }
                Some(why) => temp_gone = Some(why),
            }
        }
    }
    if code.len() == otp::SCRATCH_DIGITS {
        if any_active {
            if let Some(verdict) = check_scratch(file, code) {
                return verdict;
            }
        } else if let Some(why) = some_inactive {
            // Emergency codes stand in for the user's tokens: when an admin
            // disabled every one (or every one is outside its dates), they
            // accept nothing either, and the file keeps them.
            if scratch_index(&file.scratch_codes, code).is_some() {
                return Verdict::Inactive { token: None, why };
            }
        }
    }
    if let Some(why) = temp_gone {
        return Verdict::Refused(Refusal::TempCodeGone(why));
    }
    if let Some((token, why)) = inactive_hit {
        if !replay && !exhausted {
            return Verdict::Inactive {
                token: Some(token),
                why,
            };
        }
    }
    if replay {
        Verdict::Refused(Refusal::Replay)
    } else if exhausted {
        Verdict::Refused(Refusal::CounterExhausted)
    } else if fits_a_token || code.len() == otp::SCRATCH_DIGITS {
        Verdict::Refused(Refusal::Wrong)
    } else {
        Verdict::Refused(Refusal::Malformed)
    }
}

fn check_token(token: &mut Token, code: &str, policy: &Policy, now: u64) -> TokenAnswer {
    let Some(generator) = token.generator() else {
        return TokenAnswer::NoMatch;
    };
    match token.kind {
        OtpKind::Totp => {
            let now_step = now / token.period;
            let drift = token.state.drift.clamp(-MAX_DRIFT_STEPS, MAX_DRIFT_STEPS);
            let center = now_step.saturating_add_signed(drift);
            let skew = u64::from(policy.totp_skew);
            let Some(step) = generator.find(otp::steps_nearest_first(center, skew), code) else {
                return TokenAnswer::NoMatch;
            };
            if token.state.last_step.is_some_and(|last| step <= last) {
                return TokenAnswer::Replay;
            }
            token.state.last_step = Some(step);
            learn_drift(&mut token.state, drift, step, now_step, now);
            TokenAnswer::Accepted(Method::Totp {
                token: token.id.clone(),
                step,
            })
        }
        OtpKind::Hotp => {
            // Clipped so that `counter + 1` below stays in the range.
            let Some(window) = hotp_search(token.counter, u64::from(policy.hotp_window)) else {
                return TokenAnswer::Exhausted;
            };
            let Some(counter) = generator.find(window, code) else {
                return if token.counter >= MAX_COUNTER {
                    TokenAnswer::Exhausted
                } else {
                    TokenAnswer::NoMatch
                };
            };
            token.counter = counter + 1;
            TokenAnswer::Accepted(Method::Hotp {
                token: token.id.clone(),
                counter,
            })
        }
    }
}

/// Follows a device whose clock is off: one step towards where its code
/// was found, at most once per [`DRIFT_MOVE_INTERVAL`], within
/// ±[`MAX_DRIFT_STEPS`] (see there why). `drift` is the (clamped) drift the
/// window was centred on.
fn learn_drift(state: &mut TokenState, drift: i64, step: u64, now_step: u64, now: u64) {
    let offset = i64::try_from(step)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(now_step).unwrap_or(i64::MAX));
    let moved = drift
        .saturating_add((offset - drift).signum())
        .clamp(-MAX_DRIFT_STEPS, MAX_DRIFT_STEPS);
    let may_move =
        state.drift_moved == 0 || now >= state.drift_moved.saturating_add(DRIFT_MOVE_INTERVAL);
    if moved != drift && may_move {
        state.drift = moved;
        state.drift_moved = now;
    } else {
        state.drift = drift;
    }
}

/// Which emergency code `code` is. Compares against every code so timing
/// does not reveal which matched.
fn scratch_index(codes: &[String], code: &str) -> Option<usize> {
    let mut hit = None;
    for (i, candidate) in codes.iter().enumerate() {
        if code_eq(candidate, code) && hit.is_none() {
            hit = Some(i);
        }
    }
    hit
}

fn check_scratch(file: &mut SecretFile, code: &str) -> Option<Verdict> {
    let i = scratch_index(&file.scratch_codes, code)?;
    file.scratch_codes.remove(i);
    Some(Verdict::Accepted(Method::Scratch {
        left: file.scratch_codes.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Generator};

    const KEY: &[u8] = b"12345678901234567890";
    const POLICY: Policy = Policy {
        totp_skew: 1,
        hotp_window: 10,
        rate_limit: RateLimit {
            max_failures: 3,
            interval: 30,
        },
    };
    const T0: u64 = 1_111_111_111; // step 37037037, RFC 6238 table

    fn file(kind: OtpKind, key: Vec<u8>) -> SecretFile {
        SecretFile::with_token(Token::new("app", kind, key))
    }

    fn totp_file() -> SecretFile {
        file(OtpKind::Totp, KEY.to_vec())
    }

    fn totp(step: u64) -> Method {
        Method::Totp {
            token: "app".into(),
            step,
        }
    }

    fn hotp(counter: u64) -> Method {
        Method::Hotp {
            token: "app".into(),
            counter,
        }
    }

    fn code_at(step: u64) -> String {
        Generator::new(KEY, Algorithm::SHA1, 6).unwrap().code(step)
    }

    #[test]
    fn verdicts_are_described_for_the_log() {
        let cases = [
            (
                Verdict::Accepted(totp(56_666_666)),
                "TOTP code accepted (token app, step 56666666)",
            ),
            (
                Verdict::Accepted(hotp(0)),
                "HOTP code accepted (token app, counter 0)",
            ),
            (
                Verdict::Accepted(Method::Scratch { left: 4 }),
                "emergency code accepted (4 left)",
            ),
            (Verdict::Refused(Refusal::Malformed), "malformed code"),
            (Verdict::Refused(Refusal::Wrong), "wrong code"),
            (
                Verdict::Refused(Refusal::CounterExhausted),
                "wrong code (the HOTP counter is at its limit, 2^53: the token needs a new seed)",
            ),
            (
                Verdict::Refused(Refusal::Replay),
                "replayed code (already used)",
            ),
            (
                Verdict::Locked { retry_in: 29 },
                "rate limited (locked for 29 s more)",
            ),
        ];
        for (verdict, text) in cases {
            assert_eq!(verdict.to_string(), text);
            assert_eq!(verdict.describe(), text);
        }
    }

    #[test]
    fn totp_right_code_is_accepted_once() {
        let mut f = totp_file();
        // RFC 6238: 14050471 at 1111111111 -> 6 digits 050471
        assert_eq!(
            verify(&mut f, "050471", &POLICY, T0),
            Verdict::Accepted(totp(T0 / 30))
        );
        assert_eq!(
            verify(&mut f, "050471", &POLICY, T0 + 1),
            Verdict::Refused(Refusal::Replay)
        );
        assert_eq!(f.state.failures, 1, "a replay counts as a failure");
    }

    #[test]
    fn totp_skew_window() {
        let step = T0 / 30;
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let mut f = totp_file();
            let s = step.checked_add_signed(offset).unwrap();
            let v = verify(&mut f, &code_at(s), &POLICY, T0);
            assert_eq!(
                matches!(v, Verdict::Accepted(_)),
                ok,
                "offset {offset}: {v:?}"
            );
        }
        let wide = Policy {
            totp_skew: 3,
            ..POLICY
        };
        let mut f = totp_file();
        assert!(matches!(
            verify(&mut f, &code_at(step - 3), &wide, T0),
            Verdict::Accepted(_)
        ));
    }

    #[test]
    fn an_older_step_after_a_newer_one_is_a_replay() {
        let step = T0 / 30;
        let mut f = totp_file();
        assert!(matches!(
            verify(&mut f, &code_at(step + 1), &POLICY, T0),
            Verdict::Accepted(_)
        ));
        assert_eq!(
            verify(&mut f, &code_at(step), &POLICY, T0),
            Verdict::Refused(Refusal::Replay)
        );
    }

    #[test]
    fn drift_is_learned_and_followed() {
        let step = T0 / 30;
        let mut f = totp_file();
        // Device runs one step slow.
        assert!(matches!(
            verify(&mut f, &code_at(step - 1), &POLICY, T0),
            Verdict::Accepted(_)
        ));
        assert_eq!(
            (f.tokens[0].state.drift, f.tokens[0].state.drift_moved),
            (-1, T0)
        );
        // Ten minutes later it is two slow: accepted, as the window is
        // centred on the drift, but the drift moved less than a day ago.
        let later = T0 + 600;
        assert!(matches!(
            verify(&mut f, &code_at(later / 30 - 2), &POLICY, later),
            Verdict::Accepted(_)
        ));
        assert_eq!(
            (f.tokens[0].state.drift, f.tokens[0].state.drift_moved),
            (-1, T0)
        );
        // A day after the last move, still two slow: the drift follows.
        let day = T0 + DRIFT_MOVE_INTERVAL;
        assert!(matches!(
            verify(&mut f, &code_at(day / 30 - 2), &POLICY, day),
            Verdict::Accepted(_)
        ));
        assert_eq!(
            (f.tokens[0].state.drift, f.tokens[0].state.drift_moved),
            (-2, day)
        );
        // A hand-edited drift is clamped to its bound.
        let mut g = totp_file();
        g.tokens[0].state.drift = 500;
        let v = verify(&mut g, &code_at(step + MAX_DRIFT_STEPS as u64), &POLICY, T0);
        assert!(matches!(v, Verdict::Accepted(_)), "{v:?}");
    }

    /// The step a key holder takes to push the drift: the furthest ahead
    /// the window allows.
    fn furthest_ahead(f: &SecretFile, now: u64) -> u64 {
        let center = (now / 30).saturating_add_signed(f.tokens[0].state.drift);
        center + u64::from(POLICY.totp_skew)
    }

    /// The old attack: within one period, each login at the window's
    /// leading edge moved the drift one step more, to +10, and the real
    /// device's codes were refused from then on.
    #[test]
    fn a_key_holder_cannot_push_the_drift_within_a_period() {
        let mut f = totp_file();
        let mut accepted = 0;
        for i in 0..20 {
            let now = T0 + i; // T0 is 1 s into its step: all in one period
            let step = furthest_ahead(&f, now);
            if matches!(
                verify(&mut f, &code_at(step), &POLICY, now),
                Verdict::Accepted(_)
            ) {
                accepted += 1;
            }
        }
        assert!(accepted >= 1);
        assert!(
            f.tokens[0].state.drift <= 1,
            "drift pushed to {}",
            f.tokens[0].state.drift
        );
        // The real device (clock right) works again as soon as its step
        // is past the last one the key holder used.
        let later = (f.tokens[0].state.last_step.unwrap() + 1) * 30 + 5;
        let v = verify(&mut f, &code_at(later / 30), &POLICY, later);
        assert!(matches!(v, Verdict::Accepted(_)), "{v:?}");
    }

    /// A key holder logging in at the leading edge every ten minutes: the
    /// drift gains one step a day at most, and +10 takes nine days.
    #[test]
    fn a_key_holder_gains_at_most_a_step_a_day() {
        let mut f = totp_file();
        let mut reached_max = None;
        for i in 0..(12 * 24 * 6) {
            let now = T0 + i * 600;
            let step = furthest_ahead(&f, now);
            let v = verify(&mut f, &code_at(step), &POLICY, now);
            assert!(matches!(v, Verdict::Accepted(_)), "{v:?}");
            let days = (now - T0) / 86_400;
            assert!(
                f.tokens[0].state.drift <= 1 + i64::try_from(days).unwrap(),
                "drift {} after {days} days",
                f.tokens[0].state.drift
            );
            if f.tokens[0].state.drift == MAX_DRIFT_STEPS && reached_max.is_none() {
                reached_max = Some(now);
            }
        }
        let at = reached_max.expect("a device this far off is still followed");
        assert!(at - T0 >= 9 * 86_400, "+10 after {} s", at - T0);
    }

    /// Pushed past the real device, which is then refused; after `unlock`
    /// (forget_drift) the real device's next code works, while the steps
    /// the key holder used stay used.
    #[test]
    fn the_real_device_works_again_after_unlock() {
        let mut f = totp_file();
        let mut now = T0;
        for _ in 0..3 {
            let step = furthest_ahead(&f, now);
            assert!(matches!(
                verify(&mut f, &code_at(step), &POLICY, now),
                Verdict::Accepted(_)
            ));
            now += DRIFT_MOVE_INTERVAL;
        }
        assert_eq!(f.tokens[0].state.drift, 3);
        let real = |t: u64| code_at(t / 30);
        assert_eq!(
            verify(&mut f, &real(now), &POLICY, now),
            Verdict::Refused(Refusal::Wrong)
        );
        f.tokens[0].state.forget_drift();
        assert_eq!(
            (f.tokens[0].state.drift, f.tokens[0].state.drift_moved),
            (0, 0)
        );
        // The last step the key holder used is still a replay...
        let used = f.tokens[0].state.last_step.unwrap();
        let at_used = used * 30 + 1;
        assert_eq!(
            verify(&mut f, &code_at(used), &POLICY, at_used),
            Verdict::Refused(Refusal::Replay)
        );
        // ...and the real device's next code is accepted.
        let next = at_used + 30;
        let v = verify(&mut f, &real(next), &POLICY, next);
        assert_eq!(v, Verdict::Accepted(totp(next / 30)));
        assert_eq!(f.tokens[0].state.drift, 0);
    }

    /// A token whose clock loses 10 s a day (about 116 ppm, worse than any
    /// crystal's tolerance), logged in with every two hours for 27 days:
    /// every code is accepted and the drift follows it to 9 steps behind.
    #[test]
    fn a_slowly_drifting_device_is_followed() {
        let mut f = totp_file();
        for i in 0..(27 * 12) {
            let now = T0 + i * 7200;
            let device_clock = now - (now - T0) / 8640;
            let v = verify(&mut f, &code_at(device_clock / 30), &POLICY, now);
            assert!(matches!(v, Verdict::Accepted(_)), "login {i}: {v:?}");
        }
        assert!(
            (-10..=-8).contains(&f.tokens[0].state.drift),
            "{}",
            f.tokens[0].state.drift
        );
    }

    #[test]
    fn totp_honours_digits_algorithm_and_period() {
        let key256 = b"12345678901234567890123456789012".to_vec();
        let mut f = file(OtpKind::Totp, key256);
        f.tokens[0].algorithm = Algorithm::SHA256;
        f.tokens[0].digits = 8;
        // RFC 6238: SHA256 at 1234567890 -> 91819424
        assert!(matches!(
            verify(&mut f, "91819424", &POLICY, 1_234_567_890),
            Verdict::Accepted(_)
        ));
        let mut g = totp_file();
        g.tokens[0].period = 60;
        let code = code_at(T0 / 60);
        assert!(matches!(
            verify(&mut g, &code, &POLICY, T0),
            Verdict::Accepted(_)
        ));
    }

    #[test]
    fn hotp_window_ahead_and_behind() {
        // RFC 4226 codes: 0 755224, 1 287082, 2 359152, 3 969429, ... 9 520489
        let mut f = file(OtpKind::Hotp, KEY.to_vec());
        assert_eq!(
            verify(&mut f, "969429", &POLICY, 0),
            Verdict::Accepted(hotp(3))
        );
        assert_eq!(f.tokens[0].counter, 4);
        // Behind the counter: refused.
        assert_eq!(
            verify(&mut f, "359152", &POLICY, 0),
            Verdict::Refused(Refusal::Wrong)
        );
        // Same code again: refused.
        assert_eq!(
            verify(&mut f, "969429", &POLICY, 100),
            Verdict::Refused(Refusal::Wrong)
        );
        // Beyond the window: refused; inside: accepted.
        let narrow = Policy {
            hotp_window: 2,
            ..POLICY
        };
        let mut g = file(OtpKind::Hotp, KEY.to_vec());
        assert_eq!(
            verify(&mut g, "338314", &narrow, 0),
            Verdict::Refused(Refusal::Wrong)
        ); // counter 4
        let mut g = file(OtpKind::Hotp, KEY.to_vec());
        assert!(matches!(
            verify(&mut g, "359152", &narrow, 0),
            Verdict::Accepted(_)
        )); // counter 2
    }

    /// Near the top of the counter range, a code is accepted only if the
    /// counter saved after it (one past it) is one the file can hold: the
    /// saved file always parses again.
    #[test]
    fn hotp_never_saves_a_counter_it_cannot_read() {
        use crate::secret_file::MAX_COUNTER;
        let start = MAX_COUNTER - 1;
        for ahead in 0..=u64::from(POLICY.hotp_window) {
            let mut f = file(OtpKind::Hotp, KEY.to_vec());
            f.tokens[0].counter = start;
            let v = verify(&mut f, &code_at(start + ahead), &POLICY, 0);
            let saved = f.to_text().and_then(|text| SecretFile::parse(&text));
            assert!(
                saved.is_ok(),
                "code at MAX-1+{ahead}: {v:?} saved {saved:?}"
            );
            if ahead == 0 {
                assert_eq!(v, Verdict::Accepted(hotp(start)));
                assert_eq!(f.tokens[0].counter, MAX_COUNTER);
            } else {
                assert!(matches!(v, Verdict::Refused(_)), "MAX-1+{ahead}: {v:?}");
                assert_eq!(f.tokens[0].counter, start);
            }
        }
        // At the limit no code is accepted, and the log says why.
        let mut f = file(OtpKind::Hotp, KEY.to_vec());
        f.tokens[0].counter = MAX_COUNTER;
        let v = verify(&mut f, &code_at(MAX_COUNTER), &POLICY, 0);
        assert_eq!(v, Verdict::Refused(Refusal::CounterExhausted));
        assert!(v.describe().contains("limit"), "{}", v.describe());
        assert_eq!(f.tokens[0].counter, MAX_COUNTER);
        // Emergency codes still work there.
        f.scratch_codes = vec!["31415926".into()];
        f.tokens[0].digits = 8;
        assert!(matches!(
            verify(&mut f, "31415926", &POLICY, 0),
            Verdict::Accepted(Method::Scratch { left: 0 })
        ));
    }

    /// A phone (TOTP) and a hardware token (HOTP, its own key): the
    /// SPEC's two-token user.
    fn phone_and_key() -> SecretFile {
        let mut f = SecretFile::with_token(Token::new("phone", OtpKind::Totp, KEY.to_vec()));
        let mut hw = Token::new("OATH0001", OtpKind::Hotp, b"abcdefghijabcdefghij".to_vec());
        hw.serial = Some("OATH0001".into());
        f.tokens.push(hw);
        f
    }

    fn hw_code(counter: u64) -> String {
        Generator::new(b"abcdefghijabcdefghij", Algorithm::SHA1, 6)
            .unwrap()
            .code(counter)
    }

    #[test]
    fn any_token_may_accept_and_each_keeps_its_own_state() {
        let mut f = phone_and_key();
        let phone = code_at(T0 / 30);
        assert_eq!(
            verify(&mut f, &phone, &POLICY, T0),
            Verdict::Accepted(Method::Totp {
                token: "phone".into(),
                step: T0 / 30
            })
        );
        assert_eq!(f.tokens[0].state.last_used, Some(T0));
        assert_eq!(f.tokens[1].state.last_used, None);
        assert_eq!(
            verify(&mut f, &hw_code(2), &POLICY, T0 + 1),
            Verdict::Accepted(Method::Hotp {
                token: "OATH0001".into(),
                counter: 2
            })
        );
        assert_eq!(f.tokens[1].counter, 3);
        assert_eq!(f.tokens[1].state.last_used, Some(T0 + 1));
        // The phone's state is untouched by the key's code, and the other
        // way round.
        assert_eq!(f.tokens[0].state.last_step, Some(T0 / 30));
        // Each code a second time: refused, the phone's as a replay.
        assert_eq!(
            verify(&mut f, &phone, &POLICY, T0 + 2),
            Verdict::Refused(Refusal::Replay)
        );
        assert_eq!(
            verify(&mut f, &hw_code(2), &POLICY, T0 + 3),
            Verdict::Refused(Refusal::Wrong)
        );
        // Removing one leaves the other working.
        f.tokens.remove(0);
        assert!(matches!(
            verify(&mut f, &hw_code(3), &POLICY, T0 + 60),
            Verdict::Accepted(Method::Hotp { counter: 3, .. })
        ));
    }

    /// A code one token has used up may still be another's right code
    /// (two phones with one key, say): the replay of one does not hide it.
    #[test]
    fn a_replay_on_one_token_does_not_hide_another() {
        let mut f = SecretFile::with_token(Token::new("old", OtpKind::Totp, KEY.to_vec()));
        f.tokens
            .push(Token::new("new", OtpKind::Totp, KEY.to_vec()));
        let code = code_at(T0 / 30);
        assert!(matches!(
            verify(&mut f, &code, &POLICY, T0),
            Verdict::Accepted(Method::Totp { ref token, .. }) if token == "old"
        ));
        assert!(matches!(
            verify(&mut f, &code, &POLICY, T0),
            Verdict::Accepted(Method::Totp { ref token, .. }) if token == "new"
        ));
        assert_eq!(
            verify(&mut f, &code, &POLICY, T0),
            Verdict::Refused(Refusal::Replay)
        );
    }

    /// A wrong code is one failure, whatever the number of tokens.
    #[test]
    fn a_wrong_code_counts_once_however_many_tokens() {
        let mut f = phone_and_key();
        for i in 2..MAX_TOKENS_IN_TEST {
            f.tokens.push(Token::new(
                format!("t{i}"),
                OtpKind::Totp,
                vec![i as u8; 20],
            ));
        }
        assert_eq!(f.tokens.len(), MAX_TOKENS_IN_TEST);
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| {
                let mut probe = f.clone();
                verify(&mut probe, c, &POLICY, T0) == Verdict::Refused(Refusal::Wrong)
            })
            .unwrap();
        assert_eq!(
            verify(&mut f, &wrong, &POLICY, T0),
            Verdict::Refused(Refusal::Wrong)
        );
        assert_eq!(f.state.failures, 1);
        assert!(f
            .tokens
            .iter()
            .all(|t| t.state == TokenState::default() && t.counter == 0));
    }

    const MAX_TOKENS_IN_TEST: usize = crate::secret_file::MAX_TOKENS;

    /// Only tokens whose codes have the typed length are tried; an 8-digit
    /// token beside a 6-digit one takes its own codes.
    #[test]
    fn codes_go_to_the_tokens_of_their_length() {
        let mut f = totp_file();
        let mut eight = Token::new("eight", OtpKind::Hotp, KEY.to_vec());
        eight.digits = 8;
        f.tokens.push(eight);
        let g8 = Generator::new(KEY, Algorithm::SHA1, 8).unwrap();
        assert!(matches!(
            verify(&mut f, &g8.code(0), &POLICY, T0),
            Verdict::Accepted(Method::Hotp { ref token, counter: 0 }) if token == "eight"
        ));
        assert_eq!(
            verify(&mut f, "1234567", &POLICY, T0),
            Verdict::Refused(Refusal::Malformed)
        );
    }

    #[test]
    fn scratch_codes_work_once() {
        let mut f = totp_file();
        f.scratch_codes = vec!["31415926".into(), "27182818".into()];
        assert_eq!(
            verify(&mut f, "2718 2818", &POLICY, T0),
            Verdict::Accepted(Method::Scratch { left: 1 })
        );
        assert_eq!(f.scratch_codes, vec!["31415926"]);
        assert_eq!(
            verify(&mut f, "27182818", &POLICY, T0 + 1),
            Verdict::Refused(Refusal::Wrong)
        );
    }

    #[test]
    fn spaces_and_dashes_are_ignored_and_garbage_is_malformed() {
        let mut f = totp_file();
        assert!(matches!(
            verify(&mut f, "050 471", &POLICY, T0),
            Verdict::Accepted(_)
        ));
        let mut f = totp_file();
        assert!(matches!(
            verify(&mut f, "050-471", &POLICY, T0),
            Verdict::Accepted(_)
        ));
        for bad in ["", "abc", "05047", "0504711", "050471x"] {
            let mut f = totp_file();
            assert_eq!(
                verify(&mut f, bad, &POLICY, T0),
                Verdict::Refused(Refusal::Malformed),
                "{bad:?}"
            );
            assert_eq!(f.state.failures, 1);
        }
    }

    #[test]
    fn rate_limit_refuses_even_a_right_code_until_it_passes() {
        let mut f = totp_file();
        for i in 0..3 {
            assert!(matches!(
                verify(&mut f, "000000", &POLICY, T0 + i),
                Verdict::Refused(_)
            ));
        }
        let right = code_at((T0 + 3) / 30);
        let v = verify(&mut f, &right, &POLICY, T0 + 3);
        assert_eq!(v, Verdict::Locked { retry_in: 29 });
        assert!(!v.changes_state());
        assert!(
            f.tokens[0].state.last_step.is_none(),
            "a locked try checks nothing"
        );
        let after = T0 + 2 + 30;
        let right = code_at(after / 30);
        assert!(matches!(
            verify(&mut f, &right, &POLICY, after),
            Verdict::Accepted(_)
        ));
        assert_eq!(f.state.failures, 0);
    }
}
