//! `otp-enroll remove`: delete the secret (disassociate a token).

use crate::error::Error;
use crate::output::say;
use crate::target::Target;
use crate::{prompt, store};

pub fn run(t: &Target, yes: bool) -> Result<(), Error> {
    let path = t.path_str();
    if !store::exists(t)? {
        return Err(Error::NotEnrolled {
            user: t.account.name.clone(),
            path,
        });
    }
    if !yes && prompt::stdin_is_terminal() {
        let q = format!(
            "Remove the two-factor secret of {} ({path})? [y/N] ",
            t.account.name
        );
        if !prompt::confirm(&q) {
            return Err(Error::refused("not removed"));
        }
    }
    store::remove(t)?;
    say!(
        "Removed {path}: {} no longer has a two-factor secret.",
        t.account.name
    );
    Ok(())
}
