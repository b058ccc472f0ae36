//! `otp-enroll unlock`: clear the failed-attempt lockout.

use pam_otp::rate_limit::RateLimit;

use crate::error::Error;
use crate::store;
use crate::target::Target;

pub fn run(t: &Target) -> Result<(), Error> {
    let had = store::update(t, |f| {
        let had = f.state.failures;
        RateLimit::record_success(&mut f.state);
        Ok((had, had > 0))
    })?;
    println!(
        "Unlocked {} ({had} failed attempts cleared).",
        t.account.name
    );
    Ok(())
}
