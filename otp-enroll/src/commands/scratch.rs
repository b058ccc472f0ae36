//! `otp-enroll scratch -n N`: new emergency codes, replacing the old.

use crate::error::Error;
use crate::output::say;
use crate::target::Target;
use crate::{random, store};

pub const MAX: usize = 20;

pub fn run(t: &Target, n: usize) -> Result<(), Error> {
    if !(1..=MAX).contains(&n) {
        return Err(Error::usage(format!("-n must be 1 to {MAX}")));
    }
    let codes = random::scratch_codes(n)?;
    let saved = codes.clone();
    let name = t.shown_name();
    store::update(t, move |f| {
        // A record may hold a temporary code alone (the lost phone's
        // token removed); emergency codes open nothing without a token,
        // so codes made there would be printed for nothing.
        if f.tokens.is_empty() {
            return Err(Error::refused(format!(
                "{name} has no token (only a temporary code): emergency codes work only beside                  one; enroll a token first (otp-enroll new --add); nothing was changed"
            )));
        }
        f.scratch_codes = saved;
        Ok(((), true))
    })?;
    // Saved first: codes printed but not saved would be worse than none.
    // A failure to print now leaves the old codes unusable; the message
    // says so and the command can simply be run again.
    let printed = (|| -> Result<(), Error> {
        say!(
            "New emergency codes for {} (each works once; the old ones no longer work):",
            t.shown_name()
        );
        for c in &codes {
            say!("  {c}");
        }
        Ok(())
    })();
    printed.map_err(|e| {
        Error::failed(format!(
            "{e}: new emergency codes were saved but not shown; run otp-enroll scratch again"
        ))
    })
}
