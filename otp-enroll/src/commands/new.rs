//! `otp-enroll new`: create a secret, show it, confirm it, save it.

use std::io::IsTerminal;

use otp_core::key;
use otp_core::otp::{self, Generator};
use otp_core::safe_fs;
use otp_core::secret_file::{self, OtpKind, SecretFile};

use crate::cli::NewOpts;
use crate::error::Error;
use crate::output::{self, say};
use crate::qr::{self, QrStyle};
use crate::target::Target;
use crate::{prompt, random, store, uri};

const CONFIRM_TRIES: usize = 3;
pub const MAX_NEW_SCRATCH_CODES: usize = 20;

pub fn run(t: &Target, o: NewOpts, now: u64) -> Result<(), Error> {
    if store::exists(t)? {
        if o.if_missing {
            return Ok(());
        }
        if !o.force {
            return Err(Error::AlreadyEnrolled { path: t.path_str() });
        }
    }
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
    // Before anything is made or shown: a secret that cannot be saved is
    // useless, one shown but not saved misleads, and one in a directory
    // others can write to would be refused by the module at every login.
    safe_fs::check_dirs(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))?;
    store::check_can_save(t, o.force)?;
    let key = match &o.secret {
        Some(arg) => {
            let b32 = prompt::secret_arg(arg, "Key (base32): ")
                .ok_or_else(|| Error::usage("--secret -: no key on standard input"))?;
            key::decode_base32(&b32).ok_or_else(|| Error::usage("--secret is not valid base32"))?
        }
        None => random::key()?,
    };
    secret_file::check_key(&key).map_err(Error::bad_option)?;
    let mut file = SecretFile::new(if o.hotp { OtpKind::Hotp } else { OtpKind::Totp }, key);
    file.algorithm = o.algorithm;
    file.digits = o.digits;
    file.period = o.period;
    file.created = Some(now);
    file.scratch_codes = random::scratch_codes(o.scratch_codes)?;

    let host = hostname();
    let issuer = o.issuer.clone().unwrap_or_else(|| host.clone());
    let label = o
        .label
        .clone()
        .unwrap_or_else(|| format!("{}@{host}", t.account.name));
    let uri = uri::key_uri(&file, &issuer, &label);
    let style = o.qr.unwrap_or_else(default_style);
    let picture = qr::render(&uri, style).ok_or_else(|| {
        Error::usage("the key URI is too long for a QR code (shorten --issuer/--label)")
    })?;

    // Every line is written before anything is saved: if the output fails
    // (a closed pipe), nothing is saved for a secret nobody saw.
    say!(
        "Two-factor login for {} ({})",
        t.account.name,
        file.kind.as_str().to_uppercase()
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
    say!("  Key:    {}   (base32)", key::grouped_base32(&file.key));
    say!("  Hex:    {}", key::encode_hex(&file.key));
    say!(
        "  Type:   {}, {}, {} digits{}",
        if o.hotp {
            "counter-based (HOTP)"
        } else {
            "time-based (TOTP)"
        },
        file.algorithm.as_str(),
        file.digits,
        if o.hotp {
            String::new()
        } else {
            format!(", every {} s", file.period)
        }
    );
    if !file.scratch_codes.is_empty() {
        say!();
        say!("Emergency codes (each works once; keep them away from your phone):");
        for c in &file.scratch_codes {
            say!("  {c}");
        }
    }
    say!();
    output::flush()?;

    if !o.no_confirm {
        confirm(t, &mut file, now)?;
    }
    store::save_new(t, &file, o.force)?;
    say!(
        "Saved {} — codes are now needed to log in{}.",
        t.path_str(),
        if t.for_other {
            format!(" as {}", t.account.name)
        } else {
            String::new()
        }
    );
    Ok(())
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
/// code is marked used (as a login would), so it cannot be replayed.
fn confirm(t: &Target, file: &mut SecretFile, now: u64) -> Result<(), Error> {
    let g = Generator::new(&file.key, file.algorithm, file.digits)
        .ok_or_else(|| Error::failed("invalid key settings"))?;
    for attempt in 1..=CONFIRM_TRIES {
        let Some(answer) = prompt::ask("Enter the code your app shows now, to confirm: ") else {
            return Err(Error::refused("no code given: nothing was saved"));
        };
        let code = otp::normalize_code(&answer).filter(|c| c.len() == usize::from(file.digits));
        if let Some(code) = code {
            match file.kind {
                OtpKind::Totp => {
                    let now_step = now / file.period;
                    let skew = u64::from(t.config.totp_skew);
                    if let Some(step) =
                        g.find(now_step.saturating_sub(skew)..=now_step + skew, &code)
                    {
                        file.state.last_step = Some(step);
                        file.state.drift = step as i64 - now_step as i64;
                        // Learned now: the next move waits its interval.
                        if file.state.drift != 0 {
                            file.state.drift_moved = now;
                        }
                        return Ok(());
                    }
                }
                OtpKind::Hotp => {
                    let last = file.counter + u64::from(t.config.hotp_window);
                    if let Some(counter) = g.find(file.counter..=last, &code) {
                        file.counter = counter + 1;
                        return Ok(());
                    }
                }
            }
        }
        if attempt < CONFIRM_TRIES {
            output::warn(format_args!(
                "That code is not right. Check that the app shows the new entry (and the phone's clock is right), then try again."
            ));
        }
    }
    Err(Error::refused(
        "three wrong codes: nothing was saved. Run otp-enroll again and scan the new QR code.",
    ))
}

fn hostname() -> String {
    match nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()) {
        Ok(name) if !name.is_empty() && !name.chars().any(char::is_control) => name,
        _ => "localhost".into(),
    }
}
