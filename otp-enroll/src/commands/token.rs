//! `otp-enroll token`: associate a hardware HOTP token.

use otp_core::key;
use otp_core::otp::{self, Generator};
use otp_core::secret_file::{self, hotp_search, OtpKind, SecretFile, MAX_COUNTER};

use crate::cli::TokenOpts;
use crate::error::Error;
use crate::output::say;
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
        .ok_or_else(|| Error::usage("token needs --serial"))?;
    secret_file::check_serial(&serial).map_err(Error::bad_option)?;
    let seed = o
        .secret
        .ok_or_else(|| Error::usage("token needs --secret (the seed, hex or base32:KEY)"))?;
    let seed = prompt::secret_arg(&seed, "Seed (hex, or base32:KEY): ")
        .ok_or_else(|| Error::usage("--secret -: no seed on standard input"))?;
    let code = o
        .code
        .ok_or_else(|| Error::usage("token needs --code (press the token once)"))?;
    let key = parse_seed(&seed)
        .ok_or_else(|| Error::usage("--secret is not valid hex (or base32:KEY)"))?;
    secret_file::check_key(&key).map_err(Error::bad_option)?;
    secret_file::check_digits(o.digits).map_err(Error::bad_option)?;
    let g = Generator::new(&key, o.algorithm, o.digits)
        .ok_or_else(|| Error::failed("the key and --digits make no code generator"))?;
    let code = otp::normalize_code(&code).ok_or_else(|| Error::usage("--code must be digits"))?;
    // The counter's one range (secret_file::MAX_COUNTER): a code can be
    // at most at MAX_COUNTER - 1, as the counter stored is one past it.
    let search = hotp_search(o.counter, SEARCH).ok_or_else(|| {
        Error::usage(format!(
            "--counter {} is out of range: HOTP counters are 0 to {} (below 2^53)",
            o.counter,
            MAX_COUNTER - 1
        ))
    })?;
    if code.len() != usize::from(o.digits) {
        return Err(Error::refused(format!(
            "--code has {} digits, the token's codes have {} (see --digits): nothing was saved",
            code.len(),
            o.digits
        )));
    }
    if store::exists(t)? && !o.force {
        return Err(Error::AlreadyEnrolled { path: t.path_str() });
    }
    let (first, last) = (*search.start(), *search.end());
    let found = g.find(search, &code).ok_or_else(|| {
        Error::refused(format!(
            "the code does not match this seed within counters {first}..{last}: nothing was saved (check the seed and serial, press the token again)"
        ))
    })?;
    let mut file = SecretFile::new(OtpKind::Hotp, key);
    file.algorithm = o.algorithm;
    file.digits = o.digits;
    file.counter = found + 1;
    file.serial = Some(serial.clone());
    file.created = Some(now);
    store::save_new(t, &file, o.force)?;
    say!(
        "Token {serial} associated with {} (counter now {}). Saved {}.",
        t.account.name,
        file.counter,
        t.path_str()
    );
    Ok(())
}
