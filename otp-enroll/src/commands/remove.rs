//! `otp-enroll remove`: delete the secret.

use pam_otp::safe_fs;

use crate::error::Error;
use crate::prompt;
use crate::target::Target;

pub fn run(t: &Target, yes: bool) -> Result<(), Error> {
    let path = t.path_str();
    if !yes && prompt::stdin_is_terminal() {
        let q = format!(
            "Remove the two-factor secret of {} ({path})? [y/N] ",
            t.account.name
        );
        if !prompt::confirm(&q) {
            return Err(Error::failed("not removed"));
        }
    }
    let (locked, _) =
        safe_fs::open_locked(&t.path, t.owner()).map_err(|e| Error::file(&path, e))?;
    locked.remove().map_err(|e| Error::file(&path, e))?;
    println!(
        "Removed {path}: {} no longer has a two-factor secret.",
        t.account.name
    );
    Ok(())
}
