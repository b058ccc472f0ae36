//! `otp-enroll temp-code [--valid DURATION] [--uses N]` and `temp-code
//! --revoke` (root, issue 31): the temporary code of a lost phone. Made
//! from the kernel's random generator as emergency codes are, printed
//! once, kept as a salted hash (`otp_core::secret_file::TempCode`).
//!
//! Root only, like reset: a password thief who could make one for
//! themselves would own a way in that survives the wiping of the phone
//! and the disabling of its token. (Under store = "home" the user owns
//! the file and can write anything into it by hand; the system store is
//! where an administrator's word holds: SECURITY.md.) Under store =
//! "postgresql" the record is the database's (`pam_otp.temp_codes`), and
//! the database decides at each login (`verify_at`).

use otp_core::account::{self, LoginUid};
use otp_core::secret_file::{SecretFile, State, TempCode, TEMP_CODE_SALT_BYTES, VERSION_2};
use otp_core::store::StoreError;

use crate::cli::TempCodeOpts;
use crate::commands::status::format_utc;
use crate::error::Error;
use crate::output::say;
use crate::store::{self, Edit};
use crate::target::Target;

/// Who makes the code, for its `created_by`: the real uid's name, and the
/// login uid when another (who logged in before su or sudo). Evidence, as
/// the audit line's fields are.
fn creator() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name);
    let mut by = match account::login_uid() {
        LoginUid::Set(l) if l != uid.as_raw() => format!("{name} (login uid {l})"),
        _ => name,
    };
    by.retain(|c| !c.is_control());
    by.chars().take(64).collect()
}

/// `n` grouped for reading aloud: "4815 1623".
fn grouped(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a} {b}"),
        _ => code.to_string(),
    }
}

pub fn run(t: &Target, o: &TempCodeOpts, now: u64) -> Result<(), Error> {
    if o.revoke {
        return revoke(t);
    }
    let expires = now.saturating_add(o.valid);
    let salt = crate::random::bytes(TEMP_CODE_SALT_BYTES)?;
    let by = creator();
    // A code equal to one of the user's emergency codes would be used up
    // by it: drawn again (the record is read again under the lock below).
    let mut code = String::new();
    let make = |code: &str| TempCode::new(code, salt.clone(), now, expires, o.uses, by.clone());
    let exists = store::exists(t)?;
    let replaced = if exists {
        store::update(t, |file| {
            code = fresh_code(file)?;
            let replaced = file.temp_code.is_some();
            file.temp_code = Some(make(&code));
            Ok((replaced, true))
        })?
    } else {
        // No record: one holding the code alone.
        code = fresh_code(&SecretFile {
            version: VERSION_2,
            tokens: Vec::new(),
            scratch_codes: Vec::new(),
            state: State::default(),
            temp_code: None,
            uid: None,
        })?;
        let file = SecretFile {
            version: VERSION_2,
            tokens: Vec::new(),
            scratch_codes: Vec::new(),
            state: State::default(),
            temp_code: Some(make(&code)),
            uid: None,
        };
        match t.store.create(&file) {
            Ok(()) | Err(StoreError::Pending { .. }) => false,
            Err(e) => return Err(store::error(t, e)),
        }
    };
    // Saved first: a code shown but not saved would mislead. A failure to
    // print leaves a code nobody knows: the message says to run again.
    let printed = (|| -> Result<(), Error> {
        say!(
            "Temporary code for {} (shown only now; tell it to them by a channel you trust):",
            t.shown_name()
        );
        say!();
        say!("  {}", grouped(&code));
        say!();
        say!(
            "It logs in {} at the code prompt, until {} ({} from now), whatever their tokens' state.",
            match o.uses {
                1 => "once".to_string(),
                n => format!("{n} times"),
            },
            format_utc(expires),
            describe_duration(o.valid)
        );
        if replaced {
            say!("It replaces their earlier temporary code, which no longer works.");
        }
        say!(
            "otp-enroll --user {} temp-code --revoke removes it.",
            t.shown_name()
        );
        Ok(())
    })();
    printed.map_err(|e| {
        Error::failed(format!(
            "{e}: a temporary code was saved but not shown; run otp-enroll temp-code again"
        ))
    })
}

/// An 8-digit code from the kernel, none of `file`'s emergency codes.
fn fresh_code(file: &SecretFile) -> Result<String, Error> {
    loop {
        let code = crate::random::scratch_codes(1)?
            .pop()
            .ok_or_else(|| Error::failed("cannot make a code"))?;
        if !file.scratch_codes.contains(&code) {
            return Ok(code);
        }
    }
}

fn describe_duration(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `temp-code --revoke`: removes the code; a record that held nothing
/// else goes with it.
fn revoke(t: &Target) -> Result<(), Error> {
    if !store::exists(t)? {
        say!(
            "{} has no temporary code (no record): nothing was changed.",
            t.shown_name()
        );
        return Ok(());
    }
    let had = store::edit(t, |file| {
        if file.temp_code.is_none() {
            return Ok((false, Edit::Keep));
        }
        file.temp_code = None;
        Ok((
            true,
            if file.tokens.is_empty() {
                Edit::Delete
            } else {
                Edit::Save
            },
        ))
    })?;
    if had {
        say!(
            "Revoked the temporary code of {}: it no longer works.",
            t.shown_name()
        );
    } else {
        say!(
            "{} has no temporary code: nothing was changed.",
            t.shown_name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_for_reading_aloud() {
        assert_eq!(grouped("48151623"), "4815 1623");
        assert_eq!(describe_duration(8 * 3600), "8 h");
        assert_eq!(describe_duration(2 * 86_400), "2 d");
        assert_eq!(describe_duration(90 * 60), "90 min");
    }
}
