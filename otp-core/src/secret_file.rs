//! The per-user secret file: TOML, `version = 1`.
//!
//! Parsing goes through a serde mirror of the file ([`Raw`]) that refuses
//! unknown keys (a typo must not silently weaken a login), then through
//! [`SecretFile::from_raw`], which checks every value and names the field
//! that is wrong. The layout the module writes itself is read into the same
//! mirror by a fast path ([`own_layout`]) that steps aside for anything else.

mod own_layout;

use std::fmt;

use serde::Deserialize;

use crate::key;
use crate::otp::{self, Algorithm, Generator};
use crate::text::push_decimal;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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

/// The file as TOML sees it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: u32,
    #[serde(rename = "type")]
    kind: OtpKind,
    secret: String,
    #[serde(default)]
    algorithm: Option<Algorithm>,
    #[serde(default)]
    digits: Option<u8>,
    #[serde(default)]
    period: Option<u64>,
    #[serde(default)]
    counter: Option<u64>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    scratch_codes: Vec<String>,
    #[serde(default)]
    state: RawState,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    #[serde(default)]
    last_step: Option<u64>,
    #[serde(default)]
    drift: i64,
    #[serde(default)]
    drift_moved: u64,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    last_failure: u64,
}

/// Whether `code` is a well-formed scratch code.
pub fn is_scratch_code(code: &str) -> bool {
    code.len() == otp::SCRATCH_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
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
        match own_layout::parse(text) {
            Some(raw) => SecretFile::from_raw(raw),
            None => SecretFile::parse_with_toml(text),
        }
    }

    /// [`SecretFile::parse`] through toml alone. Public for the fuzz target
    /// that checks the fast path against it.
    #[doc(hidden)]
    pub fn parse_with_toml(text: &str) -> Result<SecretFile, SecretFileError> {
        let raw: Raw = toml::from_str(text).map_err(|e| SecretFileError::Syntax(one_line(&e)))?;
        SecretFile::from_raw(raw)
    }

    /// [`SecretFile::parse`] through the fast path alone (`None`: it steps
    /// aside). Public for the same fuzz target.
    #[doc(hidden)]
    pub fn parse_own_layout(text: &str) -> Option<Result<SecretFile, SecretFileError>> {
        own_layout::parse(text).map(SecretFile::from_raw)
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
        if !key::key_length_ok(&key) {
            return Err(SecretFileError::Secret(
                "key must be 10 to 128 bytes (16 to 205 base32 characters)",
            ));
        }
        let digits = raw.digits.unwrap_or(6);
        if !(otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&digits) {
            return Err(SecretFileError::Digits(digits));
        }
        let period = raw.period.unwrap_or(DEFAULT_PERIOD);
        if !(1..=MAX_PERIOD).contains(&period) {
            return Err(SecretFileError::Period(period));
        }
        let counter = raw.counter.unwrap_or(0);
        if counter > MAX_COUNTER {
            return Err(SecretFileError::Counter(counter));
        }
        if raw.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(SecretFileError::TooManyScratchCodes(
                raw.scratch_codes.len(),
            ));
        }
        if let Some(i) = raw.scratch_codes.iter().position(|c| !is_scratch_code(c)) {
            return Err(SecretFileError::ScratchCode(i));
        }
        if let Some(serial) = &raw.serial {
            if serial.is_empty() || serial.len() > 64 || serial.chars().any(|c| c.is_control()) {
                return Err(SecretFileError::Serial);
            }
        }
        if raw.state.last_step.is_some_and(|s| s > MAX_COUNTER) {
            return Err(SecretFileError::State("last_step is out of range"));
        }
        if raw.state.drift.unsigned_abs() > MAX_COUNTER {
            return Err(SecretFileError::State("drift is out of range"));
        }
        if raw.state.last_failure > MAX_COUNTER {
            return Err(SecretFileError::State("last_failure is out of range"));
        }
        if raw.state.drift_moved > MAX_COUNTER {
            return Err(SecretFileError::State("drift_moved is out of range"));
        }
        Ok(SecretFile {
            kind: raw.kind,
            key,
            algorithm: raw.algorithm.unwrap_or_default(),
            digits,
            period,
            counter,
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
        })
    }

    /// The file's text. Every setting is written out, so an admin reading
    /// it sees what is in force.
    ///
    /// Written by hand rather than through toml's serializer: the module
    /// rewrites the file at every login, and this is a fixed layout of a
    /// dozen keys (toml::to_string cost 11 000 instructions of a login, this
    /// under 2 000). Strings are TOML basic strings, escaped below; the
    /// round-trip tests parse every shape back. An integer beyond TOML's
    /// range (which parsing never lets in) gives an empty text, which the
    /// writer refuses rather than saving a file that would not parse.
    pub fn to_toml(&self) -> String {
        /// `key = value` for an integer, if TOML can hold it (by hand, not
        /// through fmt: ~1 500 instructions of a login).
        fn int_line(out: &mut String, key: &str, value: impl TryInto<i64>) -> Option<()> {
            let value: i64 = value.try_into().ok()?;
            out.push_str(key);
            out.push_str(" = ");
            push_decimal(out, value);
            out.push('\n');
            Some(())
        }
        let mut out = String::with_capacity(320);
        let ok = (|| -> Option<()> {
            let w = &mut out;
            w.push_str(
                "# pam_otp secret file: keep it private (mode 0600). Managed by otp-enroll.\n",
            );
            int_line(w, "version", VERSION)?;
            w.push_str("type = \"");
            w.push_str(self.kind.as_str());
            w.push_str("\"\nsecret = \"");
            w.push_str(&key::encode_base32(&self.key));
            w.push_str("\"\nalgorithm = \"");
            w.push_str(self.algorithm.as_str());
            w.push_str("\"\n");
            int_line(w, "digits", self.digits)?;
            match self.kind {
                OtpKind::Totp => int_line(w, "period", self.period)?,
                OtpKind::Hotp => int_line(w, "counter", self.counter)?,
            }
            if let Some(serial) = &self.serial {
                w.push_str("serial = ");
                push_toml_string(w, serial);
                w.push('\n');
            }
            if let Some(created) = self.created {
                int_line(w, "created", created)?;
            }
            w.push_str("scratch_codes = [");
            for (i, code) in self.scratch_codes.iter().enumerate() {
                if i > 0 {
                    w.push_str(", ");
                }
                push_toml_string(w, code);
            }
            w.push_str("]\n\n[state]\n");
            let st = &self.state;
            if let Some(step) = st.last_step {
                int_line(w, "last_step", step)?;
            }
            if st.drift != 0 {
                int_line(w, "drift", st.drift)?;
            }
            if st.drift_moved != 0 {
                int_line(w, "drift_moved", st.drift_moved)?;
            }
            if st.failures != 0 {
                int_line(w, "failures", st.failures)?;
            }
            if st.last_failure != 0 {
                int_line(w, "last_failure", st.last_failure)?;
            }
            Some(())
        })();
        if ok.is_none() {
            out.clear();
        }
        out
    }

    /// The code generator for this file's key and settings.
    pub fn generator(&self) -> Option<Generator> {
        Generator::new(&self.key, self.algorithm, self.digits)
    }
}

/// `text` as a TOML basic string: quotes, backslashes and control
/// characters escaped, everything else as it is (TOML is UTF-8).
fn push_toml_string(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
        let text = f.to_toml();
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
    fn hand_written_serialisation_round_trips() {
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
            let text = f.to_toml();
            assert!(!text.is_empty());
            let back = SecretFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(back == f, "{text}");
        }
    }

    /// Any string, control characters included, survives the escaping.
    #[test]
    fn toml_strings_are_escaped() {
        #[derive(Deserialize)]
        struct One {
            s: String,
        }
        for text in [
            "",
            "plain",
            "quote \" backslash \\ end",
            "tab\tnewline\ncr\r nul\0 del\u{7f} esc\u{1b} c1\u{85}",
            "ünïcødé ✓ \u{10ffff}",
            "\"\"\"",
            "\\u0041",
        ] {
            let mut doc = String::from("s = ");
            push_toml_string(&mut doc, text);
            let one: One = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
            assert_eq!(one.s, text, "{doc}");
        }
    }

    /// A value TOML cannot hold gives no text (the writer refuses it)
    /// rather than a file that would not parse at the next login.
    #[test]
    fn out_of_range_integers_give_no_text() {
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        f.state.last_step = Some(u64::MAX);
        assert_eq!(f.to_toml(), "");
    }
}
