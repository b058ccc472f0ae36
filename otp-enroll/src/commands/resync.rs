//! `otp-enroll resync CODE1 CODE2`: re-find an HOTP token's counter.

use otp_core::otp::{self, Generator};
use otp_core::rate_limit::RateLimit;
use otp_core::secret_file::{OtpKind, MAX_COUNTER};

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

/// How far past the stored counter the two codes may be.
pub const SEARCH: u64 = 10_000;

pub fn run(t: &Target, c1: &str, c2: &str) -> Result<(), Error> {
    let c1 = otp::normalize_code(c1).ok_or_else(|| Error::usage("CODE1 must be digits"))?;
    let c2 = otp::normalize_code(c2).ok_or_else(|| Error::usage("CODE2 must be digits"))?;
    let counter = store::update(t, |file| {
        if file.kind != OtpKind::Hotp {
            return Err(Error::refused(
                "resync is for counter-based (HOTP) tokens; this secret is time-based (TOTP), whose codes follow the clock (otp-enroll unlock resets the clock drift learned at login)",
            ));
        }
        if c1.len() != usize::from(file.digits) || c2.len() != usize::from(file.digits) {
            return Err(Error::refused(format!(
                "the token's codes have {} digits: nothing was changed",
                file.digits
            )));
        }
        let g = Generator::new(&file.key, file.algorithm, file.digits)
            .ok_or_else(|| Error::failed("invalid key settings"))?;
        let start = file.counter;
        // The counter stored afterwards (two past the first code) must stay
        // in the file's range.
        let end = start.saturating_add(SEARCH).min(MAX_COUNTER - 2);
        // Every candidate is computed, whether or not one matched already.
        let mut found = None;
        for c in start..=end {
            if g.matches(c, &c1) && g.matches(c + 1, &c2) && found.is_none() {
                found = Some(c);
            }
        }
        let c = found.ok_or_else(|| {
            Error::refused(format!(
                "no two consecutive codes match within counters {start}..{end}: nothing was changed (press the token twice and give both codes in order)"
            ))
        })?;
        file.counter = c + 2;
        RateLimit::record_success(&mut file.state);
        Ok((file.counter, true))
    })?;
    say!("Resynchronised {}: counter now {counter}.", t.account.name);
    Ok(())
}
