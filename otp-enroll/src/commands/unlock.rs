//! `otp-enroll unlock`: clear the failed-attempt lockout.

use pam_otp::rate_limit::RateLimit;

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

pub fn run(t: &Target) -> Result<(), Error> {
    let had = store::update(t, |f| {
        let had = f.state.failures;
        let changed = f.state.failures != 0 || f.state.last_failure != 0;
        RateLimit::record_success(&mut f.state);
        Ok((had, changed))
    })?;
    say!(
        "Unlocked {} ({had} failed attempts cleared).",
        t.account.name
    );
    Ok(())
}
