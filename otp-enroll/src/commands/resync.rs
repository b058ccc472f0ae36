//! `otp-enroll resync [--token ID] CODE1 CODE2`: re-find an HOTP token's
//! counter.

use otp_core::otp::{self, Generator};
use otp_core::rate_limit::RateLimit;
use otp_core::secret_file::{OtpKind, Token, MAX_COUNTER};

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

/// How far past the stored counter the two codes may be.
pub const SEARCH: u64 = 10_000;

pub fn run(t: &Target, token: Option<&str>, c1: &str, c2: &str) -> Result<(), Error> {
    let c1 = otp::normalize_code(c1).ok_or_else(|| Error::usage("CODE1 must be digits"))?;
    let c2 = otp::normalize_code(c2).ok_or_else(|| Error::usage("CODE2 must be digits"))?;
    let (id, counter) = store::update(t, |f| {
        let state = &mut f.state;
        let file = pick(&mut f.tokens, token)?;
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
        RateLimit::record_success(state);
        Ok(((file.id.clone(), file.counter), true))
    })?;
    say!(
        "Resynchronised the token \"{id}\" of {}: counter now {counter}.",
        t.shown_name()
    );
    Ok(())
}

const NOT_HOTP: &str = "resync is for counter-based (HOTP) tokens; time-based (TOTP) codes follow the clock (otp-enroll unlock resets the clock drift learned at login)";

/// The token to resync: the one named, or the user's only HOTP token.
fn pick<'f>(tokens: &'f mut [Token], id: Option<&str>) -> Result<&'f mut Token, Error> {
    if let Some(id) = id {
        return match tokens.iter_mut().find(|t| t.id == id) {
            Some(t) if t.kind == OtpKind::Hotp => Ok(t),
            Some(_) => Err(Error::refused(format!(
                "the token \"{id}\" is TOTP: {NOT_HOTP}"
            ))),
            None => Err(Error::refused(format!(
                "no token \"{id}\" (see otp-enroll list): nothing was changed"
            ))),
        };
    }
    let hotp: Vec<String> = tokens
        .iter()
        .filter(|t| t.kind == OtpKind::Hotp)
        .map(|t| format!("\"{}\"", t.id))
        .collect();
    if hotp.len() > 1 {
        return Err(Error::refused(format!(
            "there are {} HOTP tokens ({}): say which with --token ID; nothing was changed",
            hotp.len(),
            hotp.join(", ")
        )));
    }
    tokens
        .iter_mut()
        .find(|t| t.kind == OtpKind::Hotp)
        .ok_or_else(|| Error::refused(NOT_HOTP))
}
