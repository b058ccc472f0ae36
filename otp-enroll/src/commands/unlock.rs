//! `otp-enroll unlock`: clear the failed-attempt lockout and forget the
//! learned clock drift.

use otp_core::rate_limit::RateLimit;

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

pub fn run(t: &Target) -> Result<(), Error> {
    let (had, drifted) = store::update(t, |f| {
        let had = f.state.failures;
        let drifted: Vec<String> = f
            .tokens
            .iter()
            .filter(|t| t.state.drift != 0)
            .map(|t| format!("\"{}\" (was {} steps)", t.id, t.state.drift))
            .collect();
        let changed = f.state.failures != 0
            || f.state.last_failure != 0
            || f.tokens
                .iter()
                .any(|t| t.state.drift != 0 || t.state.drift_moved != 0);
        RateLimit::record_success(&mut f.state);
        // The way back from a drift pushed away from the real device (see
        // otp_core::verify::DRIFT_MOVE_INTERVAL); the used steps stay used.
        for token in &mut f.tokens {
            token.state.forget_drift();
        }
        Ok(((had, drifted), changed))
    })?;
    if drifted.is_empty() {
        say!(
            "Unlocked {} ({had} failed attempts cleared).",
            t.shown_name()
        );
    } else {
        say!(
            "Unlocked {} ({had} failed attempts cleared; learned clock drift reset to 0 for {}).",
            t.shown_name(),
            drifted.join(", ")
        );
    }
    Ok(())
}
