//! `otp-enroll unlock`: clear the failed-attempt lockout and forget the
//! learned clock drift.

use otp_core::rate_limit::RateLimit;

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

pub fn run(t: &Target) -> Result<(), Error> {
    let (had, drift) = store::update(t, |f| {
        let had = f.state.failures;
        let drift = f.state.drift;
        let changed = f.state.failures != 0
            || f.state.last_failure != 0
            || f.state.drift != 0
            || f.state.drift_moved != 0;
        RateLimit::record_success(&mut f.state);
        // The way back from a drift pushed away from the real device (see
        // otp_core::verify::DRIFT_MOVE_INTERVAL); the used steps stay used.
        f.state.forget_drift();
        Ok(((had, drift), changed))
    })?;
    if drift == 0 {
        say!(
            "Unlocked {} ({had} failed attempts cleared).",
            t.account.name
        );
    } else {
        say!(
            "Unlocked {} ({had} failed attempts cleared; learned clock drift of {} steps reset to 0).",
            t.account.name,
            drift
        );
    }
    Ok(())
}
