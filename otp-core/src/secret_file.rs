//! The per-user secret file: TOML, `version = 1`.
//!
//! Read and written through one serde mirror of the file ([`Raw`]) and the
//! toml crate. Reading refuses unknown keys (a typo must not silently
//! weaken a login), then [`SecretFile::from_raw`] checks every value with
//! the `check_*` functions below, which otp-enroll applies to its options
//! too, and names the field that is wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key;
use crate::otp::{self, Algorithm, Generator};

pub const VERSION: u32 = 1;
pub const DEFAULT_PERIOD: u64 = 30;
pub const MAX_PERIOD: u64 = 300;
pub const MAX_SCRATCH_CODES: usize = 100;
/// The one range of an HOTP counter, everywhere: a file holds a `counter`
/// (the next one expected) of at most this, parsing refuses more, and no
/// command or login ever stores more ([`hotp_search`]). Far below
/// i64::MAX, TOML's integer limit. Also the bound of the other integers
/// in `[state]`.
pub const MAX_COUNTER: u64 = 1 << 53;

/// The counters a code may be found at when looking from `first` up to
/// `ahead` further, clipped so that the counter stored after a match at
/// `c` (that is `c + 1`) stays within [`MAX_COUNTER`]. `None` when no
/// counter is left: the token is exhausted.
pub fn hotp_search(first: u64, ahead: u64) -> Option<std::ops::RangeInclusive<u64>> {
    let last = first.saturating_add(ahead).min(MAX_COUNTER - 1);
    (first <= last).then_some(first..=last)
}

/// How codes are derived from the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpKind {
    Totp,
    Hotp,
}

impl OtpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpKind::Totp => "totp",
            OtpKind::Hotp => "hotp",
        }
    }
}

/// What the module keeps between logins. Owned by the module; `otp-enroll
/// unlock` clears the failures and the learned drift.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// TOTP: the last time step accepted; a step at or before it is a replay.
    pub last_step: Option<u64>,
    /// TOTP: learned clock offset of the user's device, in steps.
    pub drift: i64,
    /// TOTP: Unix time the learned drift last moved (0: never). It moves
    /// one step at most per `verify::DRIFT_MOVE_INTERVAL`.
    pub drift_moved: u64,
    /// Failed codes since the last success (see `rate_limit`).
    pub failures: u32,
    /// Unix time of the last failed code.
    pub last_failure: u64,
}

impl State {
    /// Forgets the learned TOTP drift, as at enrollment: what `otp-enroll
    /// unlock` does, the way back from a drift pushed away from the real
    /// device. `last_step` stays: a used code must stay used.
    pub fn forget_drift(&mut self) {
        self.drift = 0;
        self.drift_moved = 0;
    }
}

/// A validated secret file.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub kind: OtpKind,
    pub key: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u8,
    /// TOTP step length in seconds.
    pub period: u64,
    /// HOTP: the next counter expected.
    pub counter: u64,
    /// Hardware token serial number, if the key came from one.
    pub serial: Option<String>,
    /// Unix time of enrollment, if known.
    pub created: Option<u64>,
    /// Unused one-time emergency codes, 8 digits each.
    pub scratch_codes: Vec<String>,
    pub state: State,
}

impl fmt::Debug for SecretFile {
    // Never print the key, even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("kind", &self.kind)
            .field("key", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("counter", &self.counter)
            .field("serial", &self.serial)
            .field("scratch_codes", &self.scratch_codes.len())
            .field("state", &self.state)
            .finish()
    }
}

/// Why a secret file was refused. Each names the field and never a value
/// that could be secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFileError {
    /// Not TOML, a missing required key, an unknown key, or a wrong type.
    Syntax(String),
    Version(u32),
    Secret(&'static str),
    /// The decoded key's length in bytes, outside 10..=128.
    KeyLength(usize),
    Digits(u8),
    Period(u64),
    Counter(u64),
    ScratchCode(usize),
    TooManyScratchCodes(usize),
    Serial,
    State(&'static str),
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretFileError::Syntax(m) => write!(f, "{m}"),
            SecretFileError::Version(v) => {
                write!(
                    f,
                    "version: {v} is not supported (this build reads version {VERSION})"
                )
            }
            SecretFileError::Secret(why) => write!(f, "secret: {why}"),
            SecretFileError::KeyLength(n) => write!(
                f,
                "secret: the key is {n} bytes, it must be {} to {} ({} to {} bits)",
                key::MIN_KEY_BYTES,
                key::MAX_KEY_BYTES,
                key::MIN_KEY_BYTES * 8,
                key::MAX_KEY_BYTES * 8
            ),
            SecretFileError::Digits(d) => write!(
                f,
                "digits: {d} is out of range ({}..={})",
                otp::MIN_DIGITS,
                otp::MAX_DIGITS
            ),
            SecretFileError::Period(p) => {
                write!(f, "period: {p} is out of range (1..={MAX_PERIOD} seconds)")
            }
            SecretFileError::Counter(c) => write!(f, "counter: {c} is out of range"),
            SecretFileError::ScratchCode(i) => {
                write!(f, "scratch_codes[{i}]: must be exactly 8 digits")
            }
            SecretFileError::TooManyScratchCodes(n) => {
                write!(f, "scratch_codes: {n} codes, at most {MAX_SCRATCH_CODES}")
            }
            SecretFileError::Serial => {
                write!(f, "serial: must be 1 to 64 printable characters")
            }
            SecretFileError::State(why) => write!(f, "state: {why}"),
        }
    }
}

impl std::error::Error for SecretFileError {}

/// The file as TOML sees it, read and written. Optional settings are
/// written out all the same, so an admin reading the file sees what is in
/// force; state at its default is left out.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: u32,
    #[serde(rename = "type")]
    kind: OtpKind,
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    algorithm: Option<Algorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digits: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    #[serde(default)]
    scratch_codes: Vec<String>,
    #[serde(default)]
    state: RawState,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_step: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift_moved: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    failures: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    last_failure: u64,
}

fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// What the file starts with (TOML has no place for it in the mirror).
const HEADER: &str = "# pam_otp secret file: keep it private (mode 0600). Managed by otp-enroll.\n";

/// Whether `code` is a well-formed scratch code.
pub fn is_scratch_code(code: &str) -> bool {
    code.len() == otp::SCRATCH_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// A key of a length the module accepts.
pub fn check_key(key: &[u8]) -> Result<(), SecretFileError> {
    if (key::MIN_KEY_BYTES..=key::MAX_KEY_BYTES).contains(&key.len()) {
        Ok(())
    } else {
        Err(SecretFileError::KeyLength(key.len()))
    }
}

/// Code length: 6 to 8 digits.
pub fn check_digits(digits: u8) -> Result<(), SecretFileError> {
    if (otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&digits) {
        Ok(())
    } else {
        Err(SecretFileError::Digits(digits))
    }
}

/// TOTP step: 1 to [`MAX_PERIOD`] seconds.
pub fn check_period(period: u64) -> Result<(), SecretFileError> {
    if (1..=MAX_PERIOD).contains(&period) {
        Ok(())
    } else {
        Err(SecretFileError::Period(period))
    }
}

/// A hardware token's serial: 1 to 64 bytes, no control characters (it is
/// shown and logged).
pub fn check_serial(serial: &str) -> Result<(), SecretFileError> {
    if serial.is_empty() || serial.len() > 64 || serial.chars().any(char::is_control) {
        Err(SecretFileError::Serial)
    } else {
        Ok(())
    }
}

impl SecretFile {
    /// A fresh file with defaults for everything but the kind and the key.
    pub fn new(kind: OtpKind, key: Vec<u8>) -> SecretFile {
        SecretFile {
            kind,
            key,
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: DEFAULT_PERIOD,
            counter: 0,
            serial: None,
            created: None,
            scratch_codes: Vec::new(),
            state: State::default(),
        }
    }

    pub fn parse(text: &str) -> Result<SecretFile, SecretFileError> {
        let raw: Raw = toml::from_str(text).map_err(|e| SecretFileError::Syntax(one_line(&e)))?;
        SecretFile::from_raw(raw)
    }

    /// Parses bytes read from disk; anything not UTF-8 is refused.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SecretFile, SecretFileError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| SecretFileError::Syntax("not UTF-8 text".into()))?;
        SecretFile::parse(text)
    }

    fn from_raw(raw: Raw) -> Result<SecretFile, SecretFileError> {
        if raw.version != VERSION {
            return Err(SecretFileError::Version(raw.version));
        }
        let key =
            key::decode_base32(&raw.secret).ok_or(SecretFileError::Secret("not valid base32"))?;
        let file = SecretFile {
            kind: raw.kind,
            key,
            algorithm: raw.algorithm.unwrap_or_default(),
            digits: raw.digits.unwrap_or(6),
            period: raw.period.unwrap_or(DEFAULT_PERIOD),
            counter: raw.counter.unwrap_or(0),
            serial: raw.serial,
            created: raw.created,
            scratch_codes: raw.scratch_codes,
            state: State {
                last_step: raw.state.last_step,
                drift: raw.state.drift,
                drift_moved: raw.state.drift_moved,
                failures: raw.state.failures,
                last_failure: raw.state.last_failure,
            },
        };
        file.check()?;
        Ok(file)
    }

    /// Every rule a file's values must follow: what parsing enforces, and
    /// what [`SecretFile::to_text`] checks before writing, so that nothing
    /// is written that the next login would refuse.
    pub fn check(&self) -> Result<(), SecretFileError> {
        check_key(&self.key)?;
        check_digits(self.digits)?;
        check_period(self.period)?;
        if self.counter > MAX_COUNTER {
            return Err(SecretFileError::Counter(self.counter));
        }
        if self.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(SecretFileError::TooManyScratchCodes(
                self.scratch_codes.len(),
            ));
        }
        if let Some(i) = self.scratch_codes.iter().position(|c| !is_scratch_code(c)) {
            return Err(SecretFileError::ScratchCode(i));
        }
        if let Some(serial) = &self.serial {
            check_serial(serial)?;
        }
        let st = &self.state;
        if st.last_step.is_some_and(|s| s > MAX_COUNTER) {
            return Err(SecretFileError::State("last_step is out of range"));
        }
        if st.drift.unsigned_abs() > MAX_COUNTER {
            return Err(SecretFileError::State("drift is out of range"));
        }
        if st.last_failure > MAX_COUNTER {
            return Err(SecretFileError::State("last_failure is out of range"));
        }
        if st.drift_moved > MAX_COUNTER {
            return Err(SecretFileError::State("drift_moved is out of range"));
        }
        Ok(())
    }

    /// The file's text, which [`SecretFile::parse`] reads back as the same
    /// file. Refused if a value breaks a rule of [`SecretFile::check`].
    pub fn to_text(&self) -> Result<String, SecretFileError> {
        self.check()?;
        let st = &self.state;
        let totp = self.kind == OtpKind::Totp;
        let raw = Raw {
            version: VERSION,
            kind: self.kind,
            secret: key::encode_base32(&self.key),
            algorithm: Some(self.algorithm),
            digits: Some(self.digits),
            // Each kind's own setting always; the other's only if it is
            // not the default, so that a rewrite keeps what was there.
            period: (totp || self.period != DEFAULT_PERIOD).then_some(self.period),
            counter: (!totp || self.counter != 0).then_some(self.counter),
            serial: self.serial.clone(),
            created: self.created,
            scratch_codes: self.scratch_codes.clone(),
            state: RawState {
                last_step: st.last_step,
                drift: st.drift,
                drift_moved: st.drift_moved,
                failures: st.failures,
                last_failure: st.last_failure,
            },
        };
        let body =
            toml::to_string(&raw).map_err(|e| SecretFileError::Syntax(format!("TOML: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// The code generator for this file's key and settings.
    pub fn generator(&self) -> Option<Generator> {
        Generator::new(&self.key, self.algorithm, self.digits)
    }
}

/// toml's errors span several lines with a source excerpt; a log line and a
/// short message want one. The excerpt could show a secret, so keep only the
/// message and the line number.
fn one_line(err: &toml::de::Error) -> String {
    format!("TOML: {}", err.message().trim().replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
type = "totp"
secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
scratch_codes = ["31415926", "27182818"]
"#;

    #[test]
    fn minimal_hand_written_file_gets_defaults() {
        let f = SecretFile::parse(MINIMAL).unwrap();
        assert_eq!(f.kind, OtpKind::Totp);
        assert_eq!(f.algorithm, Algorithm::SHA1);
        assert_eq!(f.digits, 6);
        assert_eq!(f.period, 30);
        assert_eq!(f.counter, 0);
        assert_eq!(f.scratch_codes, vec!["31415926", "27182818"]);
        assert_eq!(f.state, State::default());
    }

    #[test]
    fn round_trip_keeps_all_data() {
        let mut f = SecretFile::new(OtpKind::Hotp, b"12345678901234567890".to_vec());
        f.algorithm = Algorithm::SHA256;
        f.digits = 8;
        f.counter = 42;
        f.serial = Some("OATH0001234".into());
        f.created = Some(1_700_000_000);
        f.scratch_codes = vec!["12345678".into()];
        f.state = State {
            last_step: Some(5),
            drift: -1,
            drift_moved: 77,
            failures: 2,
            last_failure: 99,
        };
        let text = f.to_text().unwrap();
        assert!(text.contains("counter = 42"));
        assert!(!text.contains("period"), "period is TOTP-only:\n{text}");
        assert_eq!(SecretFile::parse(&text).unwrap(), f);
    }

    fn err(text: &str) -> String {
        SecretFile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n";
        assert!(
            err("version = 2\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"")
                .starts_with("version:")
        );
        assert!(
            err(&base.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "not base32!"))
                .starts_with("secret:")
        );
        assert!(
            err(&base.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSWY3DP"))
                .starts_with("secret:")
        );
        assert!(err(&format!("{base}digits = 5")).starts_with("digits:"));
        assert!(err(&format!("{base}digits = 9")).starts_with("digits:"));
        assert!(err(&format!("{base}period = 0")).starts_with("period:"));
        assert!(err(&format!("{base}period = 301")).starts_with("period:"));
        assert!(err(&format!("{base}counter = 9007199254740993")).starts_with("counter:"));
        assert!(
            err(&format!("{base}scratch_codes = [\"12345678\", \"1234\"]"))
                .starts_with("scratch_codes[1]")
        );
        assert!(err(&format!("{base}serial = \"\"")).starts_with("serial:"));
        assert!(err(&format!("{base}[state]\nlast_step = 9007199254740993")).starts_with("state:"));
        assert!(
            err(&format!("{base}[state]\ndrift_moved = 9007199254740993"))
                .starts_with("state: drift_moved")
        );
        // serde-level errors carry the key's name.
        assert!(err(&format!("{base}digitz = 6")).contains("digitz"));
        assert!(err(&format!("{base}algorithm = \"MD5\"")).contains("MD5"));
        assert!(err(&format!("{base}digits = \"six\"")).contains("TOML"));
        assert!(err(&format!("{base}digits = 1000")).contains("TOML"));
        assert!(err(&format!("{base}[state]\nfoo = 1")).contains("foo"));
        assert!(err("type = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"").contains("version"));
        assert!(err("version = 1\ntype = \"sms\"\nsecret = \"JBSWY3DPEHPK3PXP\"").contains("sms"));
        assert!(err("version = 1\ntype = \"totp\"").contains("secret"));
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let text = "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\ndigits = \"x\"\n";
        let e = err(text);
        assert!(!e.contains("JBSWY3DP"), "{e}");
        let e = err("version = 1\ntype = \"totp\"\nsecret = \"JBSW!Y3DPEHPK3PXP\"");
        assert!(!e.contains("JBSW"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SecretFile::parse_bytes(&[0xff, 0xfe, 0x00, 0x41]).is_err());
        assert!(SecretFile::parse("").is_err());
        assert!(SecretFile::parse(&MINIMAL[..40]).is_err());
    }

    #[test]
    fn debug_output_hides_the_key() {
        let f = SecretFile::parse(MINIMAL).unwrap();
        let dbg = format!("{f:?}");
        assert!(!dbg.contains("72, 101"));
        assert!(dbg.contains("redacted"));
    }

    /// Every shape the writer produces parses back to the same file:
    /// both kinds, optional fields present and absent, state at its limits,
    /// serials with quotes, backslashes and non-ASCII text.
    #[test]
    fn serialisation_round_trips() {
        let base = SecretFile::parse(MINIMAL).unwrap();
        let mut shapes = vec![base.clone()];
        let mut hotp = base.clone();
        hotp.kind = OtpKind::Hotp;
        hotp.counter = MAX_COUNTER;
        hotp.serial = Some(r#"OATH "12\34" ütf-8 #x = [y]"#.into());
        hotp.scratch_codes.clear();
        hotp.algorithm = Algorithm::SHA512;
        hotp.digits = 8;
        shapes.push(hotp);
        let mut state = base.clone();
        state.created = Some(1_700_000_000);
        state.state = State {
            last_step: Some(MAX_COUNTER),
            drift: -crate::verify::MAX_DRIFT_STEPS,
            drift_moved: MAX_COUNTER,
            failures: u32::MAX,
            last_failure: MAX_COUNTER,
        };
        state.period = 60;
        shapes.push(state);
        for f in shapes {
            let text = f.to_text().unwrap();
            let back = SecretFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(back == f, "{text}");
        }
    }

    /// The file says what is in force: every setting, defaults included,
    /// under the header; state only where it is not at its default.
    #[test]
    fn written_file_shows_every_setting() {
        let text = SecretFile::parse(MINIMAL).unwrap().to_text().unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        for line in [
            "version = 1",
            "type = \"totp\"",
            "secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"",
            "algorithm = \"SHA1\"",
            "digits = 6",
            "period = 30",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("failures"), "{text}");
    }

    /// A value parsing would refuse is an error, not a file that the next
    /// login could not read.
    #[test]
    fn out_of_range_values_are_not_written() {
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        f.state.last_step = Some(u64::MAX);
        assert_eq!(
            f.to_text(),
            Err(SecretFileError::State("last_step is out of range"))
        );
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        f.digits = 9;
        assert_eq!(f.to_text(), Err(SecretFileError::Digits(9)));
    }

    /// A setting of the other kind (a hand-written `counter` in a TOTP
    /// file) survives a rewrite.
    #[test]
    fn the_other_kinds_setting_is_kept() {
        let text = format!("{MINIMAL}counter = 7\n");
        let f = SecretFile::parse(&text).unwrap();
        assert_eq!(SecretFile::parse(&f.to_text().unwrap()).unwrap(), f);
        let hotp = MINIMAL.replace("totp", "hotp") + "period = 60\n";
        let f = SecretFile::parse(&hotp).unwrap();
        assert_eq!(SecretFile::parse(&f.to_text().unwrap()).unwrap(), f);
    }

    /// The checks otp-enroll shares with parsing.
    #[test]
    fn each_rule_has_one_check() {
        assert_eq!(check_key(&[0; 9]), Err(SecretFileError::KeyLength(9)));
        assert_eq!(check_key(&[0; 10]), Ok(()));
        assert_eq!(check_key(&[0; 128]), Ok(()));
        assert_eq!(check_key(&[0; 129]), Err(SecretFileError::KeyLength(129)));
        assert_eq!(
            SecretFileError::KeyLength(9).to_string(),
            "secret: the key is 9 bytes, it must be 10 to 128 (80 to 1024 bits)"
        );
        assert_eq!(check_digits(5), Err(SecretFileError::Digits(5)));
        assert!((6..=8).all(|d| check_digits(d).is_ok()));
        assert_eq!(check_digits(9), Err(SecretFileError::Digits(9)));
        assert_eq!(check_period(0), Err(SecretFileError::Period(0)));
        assert_eq!(check_period(MAX_PERIOD), Ok(()));
        assert_eq!(
            check_period(MAX_PERIOD + 1),
            Err(SecretFileError::Period(MAX_PERIOD + 1))
        );
        assert_eq!(check_serial(""), Err(SecretFileError::Serial));
        assert_eq!(check_serial(&"x".repeat(65)), Err(SecretFileError::Serial));
        assert_eq!(check_serial("a\tb"), Err(SecretFileError::Serial));
        assert_eq!(check_serial("OATH0001234"), Ok(()));
    }
}
