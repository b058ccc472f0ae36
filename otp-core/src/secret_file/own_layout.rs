//! A fast path for reading the layout [`SecretFile::to_toml`] writes.
//!
//! The module reads the secret file at every login, and nearly always it is
//! the file the module (or otp-enroll) wrote itself: a comment line, one
//! `key = value` line per setting, `[state]`, its keys. Reading that
//! through toml + serde cost ~11 000 instructions of a login; this reads it
//! in a few hundred.
//!
//! It accepts only a strict subset of TOML whose meaning is not in doubt:
//! bare known keys followed by exactly ` = `, decimal integers without
//! leading zeros, basic strings without escapes or control characters, an
//! array of such strings on one line, whole-line comments, `\n` line ends.
//! Anything else (a hand-edited file with other spacing, an escape, a
//! trailing comment, an unknown or repeated key, a value out of range for
//! its field) answers `None`, and the caller parses the text with toml as
//! before, which gives the same precise error it always gave. So this path
//! never refuses a file and never words an error.
//!
//! Whatever it accepts must mean exactly what toml makes of it: the fuzz
//! target `secret_file` checks that on every input it runs, and the tests
//! below on the shapes the writer produces.
//!
//! [`SecretFile::to_toml`]: super::SecretFile::to_toml

use super::{OtpKind, Raw, RawState};
use crate::otp::Algorithm;

/// `text` as [`Raw`], if it is in the strict subset described above.
pub(super) fn parse(text: &str) -> Option<Raw> {
    let mut top = Top::default();
    let mut state = State::default();
    let mut in_state = false;
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if line.chars().any(char::is_control) {
                return None;
            }
            continue;
        }
        if line == "[state]" {
            if in_state {
                return None;
            }
            in_state = true;
            continue;
        }
        let (key, value) = key_value(line)?;
        if in_state {
            state.set(key, value)?;
        } else {
            top.set(key, value)?;
        }
    }
    Some(Raw {
        version: top.version?,
        kind: top.kind?,
        secret: top.secret?,
        algorithm: top.algorithm,
        digits: top.digits,
        period: top.period,
        counter: top.counter,
        serial: top.serial,
        created: top.created,
        scratch_codes: top.scratch_codes.unwrap_or_default(),
        state: RawState {
            last_step: state.last_step,
            drift: state.drift.unwrap_or(0),
            drift_moved: state.drift_moved.unwrap_or(0),
            failures: state.failures.unwrap_or(0),
            last_failure: state.last_failure.unwrap_or(0),
        },
    })
}

#[derive(Default)]
struct Top {
    version: Option<u32>,
    kind: Option<OtpKind>,
    secret: Option<String>,
    algorithm: Option<Algorithm>,
    digits: Option<u8>,
    period: Option<u64>,
    counter: Option<u64>,
    serial: Option<String>,
    created: Option<u64>,
    scratch_codes: Option<Vec<String>>,
}

impl Top {
    /// Sets `key`; `None` for an unknown or repeated key or a value
    /// outside the subset.
    fn set(&mut self, key: &str, value: &str) -> Option<()> {
        match key {
            "version" => once(&mut self.version, int(value)?),
            "type" => once(
                &mut self.kind,
                match string(value)? {
                    "totp" => OtpKind::Totp,
                    "hotp" => OtpKind::Hotp,
                    _ => return None,
                },
            ),
            "secret" => once(&mut self.secret, string(value)?.to_owned()),
            "algorithm" => once(
                &mut self.algorithm,
                match string(value)? {
                    "SHA1" => Algorithm::SHA1,
                    "SHA256" => Algorithm::SHA256,
                    "SHA512" => Algorithm::SHA512,
                    _ => return None,
                },
            ),
            "digits" => once(&mut self.digits, int(value)?),
            "period" => once(&mut self.period, int(value)?),
            "counter" => once(&mut self.counter, int(value)?),
            "serial" => once(&mut self.serial, string(value)?.to_owned()),
            "created" => once(&mut self.created, int(value)?),
            "scratch_codes" => once(&mut self.scratch_codes, string_array(value)?),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    last_step: Option<u64>,
    drift: Option<i64>,
    drift_moved: Option<u64>,
    failures: Option<u32>,
    last_failure: Option<u64>,
}

impl State {
    fn set(&mut self, key: &str, value: &str) -> Option<()> {
        match key {
            "last_step" => once(&mut self.last_step, int(value)?),
            "drift" => once(&mut self.drift, int(value)?),
            "drift_moved" => once(&mut self.drift_moved, int(value)?),
            "failures" => once(&mut self.failures, int(value)?),
            "last_failure" => once(&mut self.last_failure, int(value)?),
            _ => None,
        }
    }
}

/// `key = value` split at the first space, which must be followed by `= `
/// (a bare key holds no space).
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_at(line.find(' ')?);
    Some((key, rest.strip_prefix(" = ")?))
}

/// Sets a field that must not be set yet (TOML refuses a repeated key).
fn once<T>(field: &mut Option<T>, value: T) -> Option<()> {
    if field.is_some() {
        return None;
    }
    *field = Some(value);
    Some(())
}

/// A decimal integer as TOML writes it (`0`, `42`, `-7`; no `+`, no `_`,
/// no leading zero), within TOML's i64 and then within the field's type,
/// as serde would convert it.
fn int<T: TryFrom<i64>>(text: &str) -> Option<T> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bytes = digits.as_bytes();
    let well_formed = match bytes {
        [] => false,
        [b'0'] => !negative,
        [first, ..] => *first != b'0' && bytes.iter().all(u8::is_ascii_digit),
    };
    if !well_formed {
        return None;
    }
    let mut value: i64 = 0;
    for &b in bytes {
        let digit = i64::from(b - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    T::try_from(value).ok()
}

/// The contents of a basic string with nothing to unescape: no quote, no
/// backslash, no control character inside.
fn string(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let plain = if inner.is_ascii() {
        // Printable ASCII but the quote and the backslash.
        inner
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    } else {
        !inner.contains(['"', '\\']) && !inner.chars().any(char::is_control)
    };
    plain.then_some(inner)
}

/// `[]` or `["a", "b"]`: plain strings separated by `, `. A string holds
/// no quote, so the pieces between `, ` cannot be cut from anything else.
fn string_array(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(", ")
        .map(|item| string(item).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{OtpKind, SecretFile, State};
    use super::*;
    use crate::otp::Algorithm;

    /// Both readings of `text`: this fast path (None when it steps aside)
    /// and toml's.
    fn both(
        text: &str,
    ) -> (
        Option<Result<SecretFile, String>>,
        Result<SecretFile, String>,
    ) {
        let fast = parse(text).map(|raw| SecretFile::from_raw(raw).map_err(|e| e.to_string()));
        let slow = SecretFile::parse_with_toml(text).map_err(|e| e.to_string());
        (fast, slow)
    }

    fn every_shape() -> Vec<SecretFile> {
        let key = b"12345678901234567890".to_vec();
        let mut files = Vec::new();
        let mut f = SecretFile::new(OtpKind::Totp, key.clone());
        files.push(f.clone());
        f.algorithm = Algorithm::SHA512;
        f.digits = 8;
        f.period = 60;
        f.created = Some(1_700_000_000);
        f.scratch_codes = vec!["12345678".into(), "87654321".into()];
        f.state = State {
            last_step: Some(56_666_666),
            drift: -2,
            drift_moved: 1_700_000_100,
            failures: 3,
            last_failure: 1_700_000_123,
        };
        files.push(f.clone());
        f.state.drift = 5;
        files.push(f);
        let mut h = SecretFile::new(OtpKind::Hotp, key);
        h.algorithm = Algorithm::SHA256;
        h.counter = 1 << 53;
        h.serial = Some("UBAM 1234-5678 é".into());
        files.push(h.clone());
        h.serial = Some("with \"quote\" and \\".into());
        files.push(h);
        files
    }

    #[test]
    fn reads_every_file_the_writer_produces_as_toml_does() {
        for file in every_shape() {
            let text = file.to_toml();
            let (fast, slow) = both(&text);
            assert_eq!(slow.as_ref(), Ok(&file), "{text}");
            if let Some(fast) = fast {
                assert_eq!(fast, slow, "{text}");
            } else {
                // Only an escaped serial may send the writer's own output
                // to the slow path.
                assert!(text.contains('\\'), "fast path refused:\n{text}");
            }
        }
    }

    #[test]
    fn steps_aside_for_whatever_is_outside_the_subset() {
        let ok = "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n";
        assert!(parse(ok).is_some());
        for text in [
            // other spacing, a trailing comment, CRLF
            "version=1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1 # one\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\r\ntype = \"totp\"\r\nsecret = \"GEZDGNBVGY3TQOJQ\"\r\n",
            // integers TOML writes otherwise or refuses
            "version = +1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 01\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1_0\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = -0\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 0x1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 99999999999\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\ndigits = 256\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nperiod = -30\n",
            // strings with escapes, literal strings, unknown enum names
            "version = 1\ntype = \"totp\"\nsecret = \"GEZD\\u0047NBVGY3TQOJQ\"\n",
            "version = 1\ntype = 'totp'\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"TOTP\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nalgorithm = \"sha1\"\n",
            // arrays in other shapes
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nscratch_codes = [\"12345678\",\"2\"]\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nscratch_codes = [ ]\n",
            // repeated and unknown keys and tables, keys out of place
            "version = 1\nversion = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nwindow = 3\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n[state]\n[state]\n",
            "version = 1\ntype = \"totp\"\n[state]\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n[other]\n",
            // required keys missing
            "version = 1\ntype = \"totp\"\n",
            "",
            // a comment with a control character
            "# \u{7f}\nversion = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
        ] {
            assert!(parse(text).is_none(), "fast path took {text:?}");
        }
    }

    #[test]
    fn what_it_accepts_means_what_toml_means_even_when_refused() {
        // Accepted by the subset, refused by validation: the same error
        // either way.
        for text in [
            "version = 2\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"not base32!\"\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\ndigits = 9\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\nscratch_codes = [\"1\"]\n",
            "version = 1\ntype = \"hotp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\ncounter = 9007199254740993\n",
            "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQ\"\n[state]\ndrift = -9223372036854775808\n",
        ] {
            let (fast, slow) = both(text);
            assert!(slow.is_err(), "{text}");
            assert_eq!(fast, Some(slow), "{text}");
        }
    }
}
