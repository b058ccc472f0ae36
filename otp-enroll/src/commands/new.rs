//! `otp-enroll new`: create a secret, show it, confirm it, save it.

use std::io::IsTerminal;

use otp_core::enroll;
use otp_core::key;
use otp_core::secret_file::{self, OtpKind, SecretFile, Token, DEFAULT_ID, MAX_TOKENS};

use crate::cli::NewOpts;
use crate::commands::lifecycle;
use crate::error::Error;
use crate::output::{self, quoted, say};
use crate::qr::{self, QrStyle};
use crate::target::Target;
use crate::{prompt, random, store, uri};

pub const MAX_NEW_SCRATCH_CODES: usize = 20;

pub fn run(t: &Target, o: NewOpts, now: u64) -> Result<(), Error> {
    if o.add && o.force {
        return Err(Error::usage(
            "--add keeps the other tokens, --force replaces them all: give one of the two",
        ));
    }
    // Said before the store is asked anything (under store = "postgresql"
    // the dates are refused).
    let dates = lifecycle::from_options(o.not_before.as_deref(), o.expires.as_deref())?;
    // Usage errors before the store is asked anything: exit 2 whatever
    // the account's home or the store says.
    secret_file::check_digits(o.digits).map_err(Error::bad_option)?;
    secret_file::check_period(o.period).map_err(Error::bad_option)?;
    if o.scratch_codes > MAX_NEW_SCRATCH_CODES {
        return Err(Error::usage(format!(
            "--scratch-codes: at most {MAX_NEW_SCRATCH_CODES}"
        )));
    }
    for (flag, value) in [("--issuer", &o.issuer), ("--label", &o.label)] {
        if value
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.chars().any(char::is_control))
        {
            return Err(Error::usage(format!(
                "{flag} must be non-empty text without control characters"
            )));
        }
    }
    if let Some(arg) = o.secret.as_deref().filter(|a| *a != "-") {
        let key =
            key::decode_base32(arg).ok_or_else(|| Error::usage("--secret is not valid base32"))?;
        secret_file::check_key(&key).map_err(Error::bad_option)?;
    }
    let exists = store::exists(t)?;
    // A record that holds only a temporary code (temp-code for a user
    // without a token): the new token goes beside it, as with --add (the
    // login hook's --if-missing too: the user has no token to keep).
    let only_temp_code = exists && !o.force && {
        let file = store::read(t)?;
        file.tokens.is_empty()
    };
    if exists && !only_temp_code {
        if o.if_missing {
            return Ok(());
        }
        if !o.force && !o.add {
            return Err(Error::AlreadyEnrolled { path: t.path_str() });
        }
    }
    if let Some(id) = &o.id {
        secret_file::check_id(id).map_err(Error::bad_option)?;
    }
    // --add: the tokens already there decide the id and whether one more
    // fits, before anything is made or shown.
    let existing = if (o.add || only_temp_code) && exists {
        Some(store::read(t)?)
    } else {
        None
    };
    let id = match &existing {
        Some(file) => id_beside(file, o.id.as_deref())?,
        None => o.id.clone().unwrap_or_else(|| DEFAULT_ID.to_string()),
    };
    // The issuer and account name the apps show: a ':' in either is read
    // differently by different apps (uri::check_name).
    let host = enroll::host_name();
    let issuer = o.issuer.clone().unwrap_or_else(|| host.clone());
    let label = o
        .label
        .clone()
        .unwrap_or_else(|| format!("{}@{host}", t.account.name));
    for (what, flag, value) in [
        ("issuer", "--issuer", &issuer),
        ("account name", "--label", &label),
    ] {
        uri::check_name(value).map_err(|e| {
            Error::usage(format!(
                "the {what} {} {e}; choose another with {flag}",
                quoted(value)
            ))
        })?;
    }
    // Before anything is made or shown: a secret that cannot be saved is
    // useless, one shown but not saved misleads, and one in a directory
    // others can write to would be refused by the module at every login.
    store::check_can_save(t, o.force || existing.is_some())?;
    let key = match &o.secret {
        Some(arg) => {
            let b32 = prompt::secret_arg(arg, "Key (base32): ")
                .ok_or_else(|| Error::usage("--secret -: no key on standard input"))?;
            key::decode_base32(&b32).ok_or_else(|| Error::usage("--secret is not valid base32"))?
        }
        None => random::key()?,
    };
    secret_file::check_key(&key).map_err(Error::bad_option)?;
    let kind = if o.hotp { OtpKind::Hotp } else { OtpKind::Totp };
    let mut token = Token::new(id, kind, key);
    token.algorithm = o.algorithm;
    token.digits = o.digits;
    token.period = o.period;
    token.created = Some(now);
    // A token added beside others leaves the user's emergency codes alone.
    // Beside a temporary code alone, the first token brings them (unless
    // the record kept some when its last token was removed).
    let keeps_codes = existing
        .as_ref()
        .is_some_and(|f| !f.tokens.is_empty() || !f.scratch_codes.is_empty());
    let scratch_codes = match keeps_codes {
        true => Vec::new(),
        false => random::scratch_codes(o.scratch_codes)?,
    };

    let uri = uri::key_uri(&token, &issuer, &label);
    let style = o.qr.unwrap_or_else(default_style);
    let picture = qr::render(&uri, style).ok_or_else(|| {
        Error::usage("the key URI is too long for a QR code (shorten --issuer/--label)")
    })?;

    // Every line is written before anything is saved: if the output fails
    // (a closed pipe), nothing is saved for a secret nobody saw.
    say!(
        "Two-factor login for {} ({}, token \"{}\"{})",
        t.shown_name(),
        token.kind.as_str().to_uppercase(),
        token.id,
        match &existing {
            Some(f) if !f.tokens.is_empty() => format!(", beside {}", ids(f)),
            Some(_) => ", beside the temporary code".to_string(),
            None => String::new(),
        }
    );
    if style != QrStyle::None {
        say!();
        // qr.rs: plain text shows the code twice, once for each theme.
        let which = if style == QrStyle::Utf8 {
            " — of the two copies, the one with a light border"
        } else {
            ""
        };
        say!("Scan this QR code with your authenticator app (Google Authenticator, FreeOTP, Aegis, ...){which}:");
        output::write(format_args!("{picture}"))?;
    }
    say!();
    say!("Or add it by hand:");
    say!("  URI:    {uri}");
    say!("  Key:    {}   (base32)", key::grouped_base32(&token.key));
    say!("  Hex:    {}", key::encode_hex(&token.key));
    say!(
        "  Type:   {}, {}, {} digits{}",
        if o.hotp {
            "counter-based (HOTP)"
        } else {
            "time-based (TOTP)"
        },
        token.algorithm.as_str(),
        token.digits,
        if o.hotp {
            String::new()
        } else {
            format!(", every {} s", token.period)
        }
    );
    if let Some(f) = existing.as_ref().filter(|_| keeps_codes) {
        say!();
        say!(
            "Emergency codes: unchanged ({} left; otp-enroll scratch makes new ones).",
            f.scratch_codes.len()
        );
    } else if !scratch_codes.is_empty() {
        say!();
        say!("Emergency codes (each works once; keep them away from your phone):");
        for c in &scratch_codes {
            say!("  {c}");
        }
    }
    say!();
    output::flush()?;

    if !o.no_confirm {
        confirm(t, &mut token, now)?;
    }
    // After the confirmation: the code typed now proves the key was
    // scanned, whatever dates the token will have.
    if let Some(dates) = dates {
        token.lifecycle = dates;
    }
    let id = token.id.clone();
    if existing.is_some() {
        let beside = store::update(t, |file| {
            // Looked at again under the lock: another command may have
            // added a token since.
            id_beside(file, Some(&id))?;
            let beside = match file.tokens.is_empty() {
                true => "the temporary code".to_string(),
                false => ids(file),
            };
            if file.scratch_codes.is_empty() {
                file.scratch_codes = scratch_codes;
            }
            file.tokens.push(token);
            Ok((beside, true))
        })?;
        say!(
            "Added token \"{id}\" for {} beside {beside}; saved {}. Any of them logs in.",
            t.shown_name(),
            t.shown_path()
        );
        return Ok(());
    }
    // --force: say what goes (a file that cannot be read goes too).
    let replaced = if exists {
        store::read(t).ok().map(|f| ids(&f))
    } else {
        None
    };
    let mut file = SecretFile::with_token(token);
    file.scratch_codes = scratch_codes;
    store::save_new(t, &file, o.force)?;
    if let Some(old) = replaced {
        say!("Replaced the tokens {old} and their emergency codes.");
    }
    say!(
        "Saved {} — codes are now needed to log in{}.",
        t.shown_path(),
        if t.for_other {
            format!(" as {}", t.shown_name())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The user's token ids, for messages: `"app", "OATH0001"`.
pub fn ids(file: &SecretFile) -> String {
    let quoted: Vec<String> = file
        .tokens
        .iter()
        .map(|t| format!("\"{}\"", t.id))
        .collect();
    quoted.join(", ")
}

/// The id a new token gets beside `file`'s: `wanted` if it is free, else
/// the first free of "app", "app2", "app3"...; refused when the user has
/// as many tokens as a file holds.
pub fn id_beside(file: &SecretFile, wanted: Option<&str>) -> Result<String, Error> {
    if file.tokens.len() >= MAX_TOKENS {
        return Err(Error::refused(format!(
            "{} tokens already, the most a user can have: nothing was changed (otp-enroll remove --token ID makes room)",
            file.tokens.len()
        )));
    }
    match wanted {
        Some(id) if file.token(id).is_some() => Err(Error::refused(format!(
            "there is a token \"{id}\" already: choose another --id (see otp-enroll list); nothing was changed"
        ))),
        Some(id) => Ok(id.to_string()),
        None => (1..=MAX_TOKENS + 1)
            .map(|n| match n {
                1 => DEFAULT_ID.to_string(),
                n => format!("{DEFAULT_ID}{n}"),
            })
            .find(|id| file.token(id).is_none())
            .ok_or_else(|| Error::failed("no free token id")),
    }
}

/// Explicit colours on a terminal (readable whatever its theme), plain
/// half blocks into a pipe or on a terminal that cannot do colours.
fn default_style() -> QrStyle {
    let dumb = std::env::var_os("TERM").is_none_or(|t| t == "dumb" || t.is_empty());
    if std::io::stdout().is_terminal() && !dumb {
        QrStyle::Ansi
    } else {
        QrStyle::Utf8
    }
}

/// Asks for a current code; only a right one lets the file be saved. The
/// code is checked and marked used as a login would (one function with the
/// module's enrollment: `enroll::confirm_first_code`), so it cannot be
/// replayed.
fn confirm(t: &Target, token: &mut Token, now: u64) -> Result<(), Error> {
    let (skew, window) = (t.config.totp_skew, t.config.hotp_window);
    for attempt in 1..=enroll::TRIES {
        let Some(answer) = prompt::ask("Enter the code your app shows now, to confirm: ") else {
            return Err(Error::refused("no code given: nothing was saved"));
        };
        if enroll::confirm_first_code(token, &answer, skew, window, now) {
            return Ok(());
        }
        if attempt < enroll::TRIES {
            output::warn(format_args!(
                "That code is not right. Check that the app shows the new entry (and the phone's clock is right), then try again."
            ));
        }
    }
    Err(Error::refused(format!(
        "{} wrong codes: nothing was saved. Run otp-enroll again and scan the new QR code.",
        enroll::TRIES
    )))
}
