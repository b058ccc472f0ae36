//! `otp-enroll token`: associate a hardware HOTP token.

use pam_otp::key;
use pam_otp::otp::{self, Generator};
use pam_otp::secret_file::{OtpKind, SecretFile};

use crate::cli::TokenOpts;
use crate::error::Error;
use crate::store;
use crate::target::Target;

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
        .ok_or_else(|| Error::usage("token needs --serial"))?;
    if serial.is_empty() || serial.len() > 64 || serial.chars().any(char::is_control) {
        return Err(Error::usage(
            "--serial must be 1 to 64 printable characters",
        ));
    }
    let seed = o
        .secret
        .ok_or_else(|| Error::usage("token needs --secret (the seed, hex or base32:KEY)"))?;
    let code = o
        .code
        .ok_or_else(|| Error::usage("token needs --code (press the token once)"))?;
    let key = parse_seed(&seed)
        .ok_or_else(|| Error::usage("--secret is not valid hex (or base32:KEY)"))?;
    if !key::key_length_ok(&key) {
        return Err(Error::usage("--secret must be 10 to 128 bytes"));
    }
    let g = Generator::new(&key, o.algorithm, o.digits)
        .ok_or_else(|| Error::usage("--digits must be 6, 7 or 8"))?;
    let code = otp::normalize_code(&code).ok_or_else(|| Error::usage("--code must be digits"))?;
    if o.counter > pam_otp::secret_file::MAX_COUNTER {
        return Err(Error::usage("--counter is too large"));
    }
    if store::exists(t)? && !o.force {
        return Err(Error::failed(format!(
            "{}: a secret already exists; use --force to replace it with the token",
            t.path_str()
        )));
    }
    let found = g.find(o.counter..=o.counter + SEARCH, &code).ok_or_else(|| {
        Error::failed(format!(
            "the code does not match this seed within counters {}..{}: nothing was saved (check the seed and serial, press the token again)",
            o.counter,
            o.counter + SEARCH
        ))
    })?;
    let mut file = SecretFile::new(OtpKind::Hotp, key);
    file.algorithm = o.algorithm;
    file.digits = o.digits;
    file.counter = found + 1;
    file.serial = Some(serial.clone());
    file.created = Some(now);
    store::save_new(t, &file, o.force)?;
    println!(
        "Token {serial} associated with {} (counter now {}). Saved {}.",
        t.account.name,
        file.counter,
        t.path_str()
    );
    Ok(())
}
