//! `otp-enroll --user NAME reset` (root): remove all of the user's tokens
//! and emergency codes, and have them enroll at their next login.

use crate::commands::remove::return_to_inventory;
use crate::error::Error;
use crate::output::say;
use crate::prompt;
use crate::store::{self, Edit};
use crate::target::Target;

/// "1 token", "2 tokens".
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

pub fn run(t: &Target, yes: bool) -> Result<(), Error> {
    let name = &t.shown_name();
    let had = store::exists(t)?;
    if had && !yes && prompt::stdin_is_terminal() && !prompt::confirm(&format!(
        "Remove all tokens and emergency codes of {name} ({}), to be set up again at the next login? [y/N] ",
        t.shown_path()
    )) {
        return Err(Error::refused("not reset"));
    }
    // The mark first: should the removal fail, the user keeps their tokens
    // (a mark beside a record is not acted on). The other order could
    // leave them with neither, which under missing = "allow" is a login
    // without a code.
    store::set_pending(t, true)?;
    let next = format!("{name} will set up a new token at the next login");
    if !had {
        say!("{name}: had no tokens; {next}.");
        return Ok(());
    }
    // Read and deleted under one lock: a token added meanwhile is not
    // missed on its way back to the inventory. A record that does not
    // parse is removed all the same.
    let gone = match store::edit(t, |file| Ok((file.clone(), Edit::Delete))) {
        Ok(file) => Some(file),
        Err(Error::Corrupt { .. }) => {
            store::remove(t)?;
            None
        }
        Err(e) => return Err(e),
    };
    match &gone {
        Some(file) => say!(
            "{name}: removed {} and {}; {next}.",
            count(file.tokens.len(), "token"),
            count(file.scratch_codes.len(), "emergency code")
        ),
        None => say!(
            "{name}: removed {} (it could not be read, so what it held is not known); {next}.",
            t.shown_path()
        ),
    }
    match gone {
        Some(file) => return_to_inventory(t, &file.tokens),
        None => Ok(()),
    }
}
