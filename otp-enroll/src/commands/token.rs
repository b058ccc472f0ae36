//! `otp-enroll token`: add a hardware token (HOTP or TOTP) beside the
//! user's others.

use otp_core::key;
use otp_core::otp;
use otp_core::secret_file::{self, hotp_search, OtpKind, SecretFile, Token, MAX_COUNTER};
use otp_core::verify::MAX_DRIFT_STEPS;

use crate::cli::TokenOpts;
use crate::commands::lifecycle;
use crate::commands::new;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::output::{quoted, say};
use crate::target::Target;
use crate::{prompt, store};

/// How far past --counter the one code may be.
pub const SEARCH: u64 = 1000;

/// The seed as vendors ship it (hex), or `base32:KEY`.
pub fn parse_seed(text: &str) -> Option<Vec<u8>> {
    match text.strip_prefix("base32:") {
        Some(b32) => key::decode_base32(b32),
        None => key::decode_hex(text),
    }
}

pub fn run(t: &Target, o: TokenOpts, now: u64) -> Result<(), Error> {
    let serial = o
        .serial
        .clone()
        .ok_or_else(|| Error::usage("token needs --serial"))?;
    secret_file::check_serial(&serial).map_err(Error::bad_option)?;
    // A hardware token is known by its serial, in commands and the log.
    secret_file::check_id(&serial).map_err(|_| {
        Error::usage(format!(
            "--serial {} cannot name a token: ids are 1 to {} of A-Z a-z 0-9 . _ -",
            quoted(&serial),
            secret_file::MAX_ID_LEN
        ))
    })?;
    let code = o
        .code
        .clone()
        .ok_or_else(|| Error::usage("token needs --code (press the token once)"))?;
    let dates = lifecycle::from_options(o.not_before.as_deref(), o.expires.as_deref())?;
    // Without --secret, the token comes from the inventory, which stays
    // locked until the assignment is saved: two admins cannot hand one
    // token to two users.
    let mut inventory = None;
    let mut token = match &o.secret {
        Some(seed) => token_from_options(&serial, seed, &o)?,
        None => {
            let inv = Inventory::open(&t.config)?;
            let token = token_from_inventory(&inv, &serial, t, &o)?;
            inventory = Some(inv);
            token
        }
    };
    token.created = Some(now);
    let kind = token.kind;
    let code = otp::normalize_code(&code).ok_or_else(|| Error::usage("--code must be digits"))?;
    if code.len() != usize::from(token.digits) {
        return Err(Error::refused(format!(
            "--code has {} digits, the token's codes have {}{}: nothing was saved",
            code.len(),
            token.digits,
            if inventory.is_some() {
                " (from the inventory)"
            } else {
                " (see --digits)"
            }
        )));
    }
    let from = match &inventory {
        Some(_) => token.counter.max(o.counter),
        None => o.counter,
    };
    let found = match kind {
        OtpKind::Hotp => prove_hotp(&mut token, from, &code)?,
        OtpKind::Totp => prove_totp(&mut token, &code, now)?,
    };
    // The dates given here, else the vendor file's (kept by the
    // inventory), each on its own.
    if let Some(dates) = dates {
        if o.not_before.is_some() {
            token.lifecycle.not_before = dates.not_before;
        }
        if o.expires.is_some() {
            token.lifecycle.expires = dates.expires;
        }
    }
    lifecycle::check_order(&token.lifecycle)?;
    let force = o.force;
    let token_counter = token.counter;
    let saved = if store::exists(t)? {
        store::update(t, |file| {
            let replaced = match file.tokens.iter_mut().find(|x| x.id == token.id) {
                Some(_) if !force => {
                    return Err(Error::refused(format!(
                        "{} has a token {serial} already: nothing was saved (--force replaces it)",
                        t.shown_name()
                    )))
                }
                Some(old) => {
                    *old = token;
                    true
                }
                None => {
                    new::id_beside(file, Some(&token.id))?;
                    file.tokens.push(token);
                    false
                }
            };
            Ok(((replaced, new::ids(file)), true))
        })?
    } else {
        store::save_new(t, &SecretFile::with_token(token), false)?;
        (false, quoted(&serial))
    };
    let (replaced, now_held) = saved;
    if let Some(mut inv) = inventory {
        if let Some(entry) = inv.find_mut(&serial) {
            entry.assigned_to = Some(t.account.name.clone());
            entry.token.counter = token_counter;
        }
        inv.save().map_err(|e| {
            Error::failed(format!(
                "{e}: the token was saved for {} but the inventory still shows {serial} unassigned; run otp-enroll inventory list and fix it by hand",
                t.shown_name()
            ))
        })?;
    }
    say!(
        "Token {serial} ({}) {} {} ({found}). Saved {}; tokens now: {now_held}.",
        kind.as_str().to_uppercase(),
        if replaced {
            "replaced for"
        } else {
            "associated with"
        },
        t.shown_name(),
        t.shown_path()
    );
    Ok(())
}

/// The token as the options describe it: `--secret`, `--totp`,
/// `--period`, `--digits`, `--algorithm`.
fn token_from_options(serial: &str, seed: &str, o: &TokenOpts) -> Result<Token, Error> {
    let seed = prompt::secret_arg(seed, "Seed (hex, or base32:KEY): ")
        .ok_or_else(|| Error::usage("--secret -: no seed on standard input"))?;
    let key = parse_seed(&seed)
        .ok_or_else(|| Error::usage("--secret is not valid hex (or base32:KEY)"))?;
    secret_file::check_key(&key).map_err(Error::bad_option)?;
    secret_file::check_digits(o.digits).map_err(Error::bad_option)?;
    secret_file::check_period(o.period).map_err(Error::bad_option)?;
    let kind = if o.totp { OtpKind::Totp } else { OtpKind::Hotp };
    let mut token = Token::new(serial, kind, key);
    token.algorithm = o.algorithm;
    token.digits = o.digits;
    token.period = o.period;
    token.serial = Some(serial.to_string());
    Ok(token)
}

/// The token as the inventory holds it: seed, type, algorithm, digits,
/// period and the counter the vendor shipped (or it was returned with).
fn token_from_inventory(
    inv: &Inventory,
    serial: &str,
    t: &Target,
    o: &TokenOpts,
) -> Result<Token, Error> {
    let entry = inv.find(serial).ok_or_else(|| {
        Error::refused(format!(
            "no token {serial} in the inventory (otp-enroll inventory list --unassigned shows what is there); import the vendor's file, or give the seed with --secret"
        ))
    })?;
    match &entry.assigned_to {
        Some(user) if *user != t.account.name => {
            return Err(Error::refused(format!(
                "token {serial} is assigned to {user}: nothing was saved (otp-enroll --user {user} remove --token {serial} returns it)",
                user = crate::output::shown(user)
            )))
        }
        Some(_) if !o.force => {
            return Err(Error::refused(format!(
                "token {serial} is assigned to {} already: nothing was saved (--force associates it again)",
                t.shown_name()
            )))
        }
        _ => {}
    }
    if o.totp && entry.token.kind != OtpKind::Totp {
        return Err(Error::usage(format!(
            "--totp: the inventory says {serial} is an HOTP token"
        )));
    }
    let mut token = Token::new(serial, entry.token.kind, entry.token.key.clone());
    token.algorithm = entry.token.algorithm;
    token.digits = entry.token.digits;
    token.period = entry.token.period;
    token.counter = entry.token.counter;
    token.serial = Some(serial.to_string());
    token.lifecycle.not_before = entry.token.not_before;
    token.lifecycle.expires = entry.token.expires;
    Ok(token)
}

/// Finds an HOTP token's code from `from` on; the token's counter is set
/// past it. Says where it was found.
fn prove_hotp(token: &mut Token, from: u64, code: &str) -> Result<String, Error> {
    let g = token
        .generator()
        .ok_or_else(|| Error::failed("the key and --digits make no code generator"))?;
    // The counter's one range (secret_file::MAX_COUNTER): a code can be
    // at most at MAX_COUNTER - 1, as the counter stored is one past it.
    let search = hotp_search(from, SEARCH).ok_or_else(|| {
        Error::usage(format!(
            "--counter {from} is out of range: HOTP counters are 0 to {} (below 2^53)",
            MAX_COUNTER - 1
        ))
    })?;
    let (first, last) = (*search.start(), *search.end());
    let found = g.find(search, code).ok_or_else(|| {
        Error::refused(format!(
            "the code does not match this seed within counters {first}..{last}: nothing was saved (check the seed and serial, press the token again)"
        ))
    })?;
    token.counter = found + 1;
    Ok(format!("counter now {}", token.counter))
}

/// Finds a TOTP token's code within [`MAX_DRIFT_STEPS`] of now: a
/// hardware token's clock may be off by then. The step is marked used and
/// the offset learned, as a login would.
fn prove_totp(token: &mut Token, code: &str, now: u64) -> Result<String, Error> {
    let g = token
        .generator()
        .ok_or_else(|| Error::failed("the key and --digits make no code generator"))?;
    let now_step = now / token.period;
    let reach = MAX_DRIFT_STEPS.unsigned_abs();
    let step = g
        .find(otp::steps_nearest_first(now_step, reach), code)
        .ok_or_else(|| {
            Error::refused(format!(
                "the code does not match this seed within {reach} steps of {} s of now: nothing was saved (check the seed, --period and the token's clock)",
                token.period
            ))
        })?;
    let drift =
        i64::try_from(step).unwrap_or(i64::MAX) - i64::try_from(now_step).unwrap_or(i64::MAX);
    token.state.last_step = Some(step);
    token.state.drift = drift;
    if drift != 0 {
        token.state.drift_moved = now;
    }
    Ok(match drift {
        0 => "its clock is right".to_string(),
        d => format!(
            "its clock is {} step(s) {}",
            d.unsigned_abs(),
            if d > 0 { "ahead" } else { "behind" }
        ),
    })
}
