//! Vendor token files as vendors ship them: PSKC (RFC 6030, [`pskc`]) and
//! CSV lines ([`csv`]). Bytes in; tokens, and for every entry that cannot
//! be used the reason, out. Where the tokens then go (the inventory) is
//! `otp-enroll`'s `inventory` module; what the admin is told is
//! `commands/inventory.rs`.
//!
//! Three steps, each a pure function:
//! 1. [`detect`]: which format the content is (when `--format` is not
//!    given): XML after an optional UTF-8 byte order mark is PSKC,
//!    anything else CSV; UTF-16 and UTF-32 are refused by name.
//! 2. [`pskc::parse`] or [`csv::parse`]: the file's entries. A problem of
//!    the whole file refuses it (`Err`); a problem of one entry skips it.
//! 3. [`select`]: the per-key decisions that need the clock or the
//!    admin's options (an expired key, a PIN policy), then the serials
//!    found more than once among the keys that would be imported.
//!
//! Every text quoted from the file is escaped as the log escapes it
//! (`otp_core::log::escape`), so a message can be printed as it is.

pub mod csv;
pub mod datetime;
pub mod pskc;

use std::fmt;

use otp_core::otp::Algorithm;
use otp_core::secret_file::{self, OtpKind, MAX_COUNTER};

/// At most this many entries in one file.
pub const MAX_ENTRIES: usize = 100_000;

/// Text from the file, escaped for printing.
pub(crate) fn shown(text: &str) -> String {
    otp_core::log::escape(text)
}

/// [`shown`] between double quotes (a quote inside is escaped).
pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", otp_core::log::escape_quoted(text))
}

/// A vendor file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pskc,
    Csv,
}

/// The format of a file by its content: PSKC when its first character
/// after an optional UTF-8 byte order mark and white space is `<` (XML),
/// else CSV (a CSV line starts with a serial, never with `<`). Text in
/// UTF-16 or UTF-32 is refused by name: both readers read UTF-8, and
/// taken for CSV it would give one garbled "serial" a line.
pub fn detect(bytes: &[u8]) -> Result<Format, String> {
    if let Some(name) = wide_encoding(bytes) {
        return Err(format!(
            "the file is {name} text; PSKC and CSV files are read as UTF-8: convert it first \
             (iconv -f {name} -t UTF-8)"
        ));
    }
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Ok(Format::Pskc),
        _ => Ok(Format::Csv),
    }
}

/// UTF-32 or UTF-16, by byte order mark or by the zero bytes around a
/// first ASCII character (an XML file without a mark starts with `<`).
pub fn wide_encoding(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xff, 0xfe, 0, 0, ..] | [0, 0, 0xfe, 0xff, ..] => Some("UTF-32"),
        [a, 0, 0, 0, ..] | [0, 0, 0, a, ..] if a.is_ascii() && *a != 0 => Some("UTF-32"),
        [0xff, 0xfe, ..] | [0xfe, 0xff, ..] => Some("UTF-16"),
        [a, 0, ..] | [0, a, ..] if a.is_ascii() && *a != 0 => Some("UTF-16"),
        _ => None,
    }
}

/// How a key's PIN is used, from RFC 6030's `PINUsageMode`, for the modes
/// that leave a key usable here: `Local` (the device checks the PIN) is
/// no concern and is not recorded; `Algorithmic` keys are skipped by the
/// parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinMode {
    /// The PIN is typed before each code, and the server checks it.
    Prepend,
    /// The PIN is typed after each code, and the server checks it.
    Append,
}

impl PinMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Prepend => "Prepend",
            PinMode::Append => "Append",
        }
    }
}

/// A token as a vendor file describes it.
#[derive(Clone, PartialEq, Eq)]
pub struct VendorToken {
    pub serial: String,
    pub kind: OtpKind,
    pub key: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub counter: u64,
    /// The key may not be used before this time (Unix seconds): the later
    /// of the key's `Policy/StartDate` and its device's
    /// `DeviceInfo/StartDate`. Shown at import, not stored yet: the token
    /// lifecycle (issue 31) makes it the token's not-before date.
    pub not_before: Option<i64>,
    /// The key may not be used from this time on (Unix seconds): the
    /// earlier of `Policy/ExpiryDate` and `DeviceInfo/ExpiryDate`. A key
    /// already expired is skipped at import ([`select`]); otherwise shown,
    /// not stored yet: the token lifecycle (issue 31) makes it the token's
    /// expiry.
    pub expires: Option<i64>,
    /// A PIN the server would have to check (`PINUsageMode` Prepend or
    /// Append): such a key is skipped unless the admin drops that factor
    /// (`--ignore-pin-policy`).
    pub pin: Option<PinMode>,
}

impl fmt::Debug for VendorToken {
    // Never print the key, even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorToken")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .field("key", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("counter", &self.counter)
            .field("not_before", &self.not_before)
            .field("expires", &self.expires)
            .field("pin", &self.pin)
            .finish()
    }
}

impl VendorToken {
    /// The rules of the secret file, in words naming the value.
    pub fn check(&self) -> Result<(), String> {
        secret_file::check_serial(&self.serial).map_err(|e| e.to_string())?;
        secret_file::check_key(&self.key).map_err(|e| e.to_string())?;
        secret_file::check_digits(self.digits).map_err(|e| e.to_string())?;
        secret_file::check_period(self.period).map_err(|e| e.to_string())?;
        if self.counter > MAX_COUNTER {
            return Err(format!(
                "counter {} is out of range (at most {MAX_COUNTER})",
                self.counter
            ));
        }
        Ok(())
    }

    /// "hotp, 6 digits, counter 0" or "totp, 8 digits, period 60 s".
    pub fn describe(&self) -> String {
        match self.kind {
            OtpKind::Hotp => format!("hotp, {} digits, counter {}", self.digits, self.counter),
            OtpKind::Totp => format!("totp, {} digits, period {} s", self.digits, self.period),
        }
    }
}

/// An entry of a vendor file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The serial (escaped), or where the entry is when it has none.
    pub what: String,
    pub why: String,
}

/// What a vendor file holds.
#[derive(Debug, Default)]
pub struct Parsed {
    pub tokens: Vec<VendorToken>,
    pub skipped: Vec<Skipped>,
    /// Whether the file had encrypted values (PSKC).
    pub encrypted: bool,
}

/// What the admin decided for this import.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `--ignore-pin-policy`: import keys whose PIN the server would have
    /// to check (Prepend, Append), without that PIN.
    pub ignore_pin_policy: bool,
}

/// A key that passed every per-key decision, and what the admin is to be
/// told about it beyond its type, digits and counter or period.
#[derive(Debug)]
pub struct Accepted {
    pub token: VendorToken,
    /// Remarks for the import line ("PIN policy Prepend ignored: ...",
    /// the dates), in the order printed.
    pub notes: Vec<String>,
}

/// The decision for one key of [`Parsed::tokens`].
#[derive(Debug)]
pub enum Choice {
    Take(Accepted),
    Skip(Skipped),
}

/// The per-key decisions at time `now` (Unix seconds), in file order:
/// an expired key, or one whose start date is after its expiry, is
/// skipped; a PIN policy the server would have to check skips the key
/// unless `opts.ignore_pin_policy`; and a serial is imported only when it
/// is the serial of exactly one key that would otherwise be imported —
/// keys skipped for any other reason (a PIN key beside its OTP key, as in
/// RFC 6030's figure 5; an expired key beside its replacement; a bad CSV
/// line) do not count.
pub fn select(tokens: Vec<VendorToken>, now: i64, opts: Options) -> Vec<Choice> {
    let first: Vec<Choice> = tokens.into_iter().map(|t| decide(t, now, opts)).collect();
    let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for c in &first {
        if let Choice::Take(a) = c {
            *count.entry(a.token.serial.clone()).or_default() += 1;
        }
    }
    first
        .into_iter()
        .map(|c| match c {
            Choice::Take(a) if count.get(&a.token.serial).copied().unwrap_or(0) > 1 => {
                Choice::Skip(Skipped {
                    what: shown(&a.token.serial),
                    why: "the serial is in the file more than once (none of them imported)".into(),
                })
            }
            other => other,
        })
        .collect()
}

fn decide(token: VendorToken, now: i64, opts: Options) -> Choice {
    let skip = |why: String| {
        Choice::Skip(Skipped {
            what: shown(&token.serial),
            why,
        })
    };
    if let (Some(start), Some(end)) = (token.not_before, token.expires) {
        if start >= end {
            return skip(format!(
                "its start date ({}) is not before its expiry date ({}): it can never be used",
                datetime::format(start),
                datetime::format(end)
            ));
        }
    }
    if let Some(end) = token.expires {
        if end <= now {
            return skip(format!("expired on {}", datetime::format(end)));
        }
    }
    let mut notes = Vec::new();
    if let Some(mode) = token.pin {
        if !opts.ignore_pin_policy {
            return skip(format!(
                "its PIN policy (PINUsageMode {}) has a PIN typed {} each code for the server to \
                 check, and pam_otp never checks it (--ignore-pin-policy imports it without that \
                 PIN)",
                mode.as_str(),
                if mode == PinMode::Prepend {
                    "before"
                } else {
                    "after"
                }
            ));
        }
        notes.push(format!(
            "PIN policy {} ignored: no PIN is asked for, the code alone is the factor",
            mode.as_str()
        ));
    }
    let mut dates = Vec::new();
    if let Some(start) = token.not_before {
        dates.push(format!("starts {}", datetime::format(start)));
    }
    if let Some(end) = token.expires {
        dates.push(format!("expires {}", datetime::format(end)));
    }
    if !dates.is_empty() {
        notes.push(format!(
            "{}: once assigned, the token accepts nothing outside them",
            dates.join(", ")
        ));
    }
    Choice::Take(Accepted { token, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(serial: &str) -> VendorToken {
        VendorToken {
            serial: serial.into(),
            kind: OtpKind::Hotp,
            key: b"12345678901234567890".to_vec(),
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
            counter: 0,
            not_before: None,
            expires: None,
            pin: None,
        }
    }

    fn said(c: &[Choice]) -> Vec<String> {
        c.iter()
            .map(|c| match c {
                Choice::Take(a) => format!("take {} {:?}", a.token.serial, a.notes),
                Choice::Skip(s) => format!("skip {}: {}", s.what, s.why),
            })
            .collect()
    }

    #[test]
    fn content_decides_the_format() {
        assert_eq!(detect(b"<?xml version=\"1.0\"?><a/>"), Ok(Format::Pskc));
        assert_eq!(
            detect(b"\xef\xbb\xbf\r\n  <KeyContainer/>"),
            Ok(Format::Pskc)
        );
        assert_eq!(detect(b"serial,seed\nA,3132\n"), Ok(Format::Csv));
        assert_eq!(detect(b"\xef\xbb\xbfA,3132\n"), Ok(Format::Csv));
        assert_eq!(detect(b""), Ok(Format::Csv));
        let utf16 = |s: &str, le: bool| -> Vec<u8> {
            s.encode_utf16()
                .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                .collect()
        };
        for (bytes, name) in [
            ([&[0xff, 0xfe][..], &utf16("<a/>", true)].concat(), "UTF-16"),
            (
                [&[0xfe, 0xff][..], &utf16("<a/>", false)].concat(),
                "UTF-16",
            ),
            (utf16("<a/>", true), "UTF-16"),
            (utf16("A,31", false), "UTF-16"),
            (vec![0xff, 0xfe, 0, 0, b'<', 0, 0, 0], "UTF-32"),
            (vec![b'<', 0, 0, 0], "UTF-32"),
        ] {
            let e = detect(&bytes).unwrap_err();
            assert!(
                e.starts_with(&format!("the file is {name} text;"))
                    && e.contains(&format!("iconv -f {name} -t UTF-8")),
                "{e}"
            );
        }
    }

    /// RFC 6030 figure 5: the PIN key package shares the OTP key's serial;
    /// the parser skips it, so only the OTP key counts here. Two keys that
    /// would both be imported refuse the serial.
    #[test]
    fn only_keys_that_would_be_imported_count_as_duplicates() {
        let c = select(
            vec![token("A"), token("B"), token("A")],
            0,
            Options::default(),
        );
        assert_eq!(
            said(&c),
            [
                "skip A: the serial is in the file more than once (none of them imported)",
                "take B []",
                "skip A: the serial is in the file more than once (none of them imported)",
            ]
        );
        // An expired key beside its replacement: the replacement is taken.
        let mut old = token("A");
        old.expires = Some(1_000);
        let c = select(vec![old, token("A")], 2_000, Options::default());
        assert_eq!(
            said(&c),
            ["skip A: expired on 1970-01-01T00:16:40Z", "take A []"]
        );
    }

    #[test]
    fn dates_and_pin_policies() {
        let mut t = token("D");
        t.not_before = Some(1_000);
        t.expires = Some(5_000);
        let c = select(vec![t.clone()], 4_999, Options::default());
        assert_eq!(
            said(&c),
            [
                "take D [\"starts 1970-01-01T00:16:40Z, expires 1970-01-01T01:23:20Z: once \
              assigned, the token accepts nothing outside them\"]"
            ]
        );
        // Expiry is exclusive: at the instant itself the key is expired.
        let c = select(vec![t.clone()], 5_000, Options::default());
        assert_eq!(said(&c), ["skip D: expired on 1970-01-01T01:23:20Z"]);
        t.not_before = Some(5_000);
        let c = select(vec![t], 0, Options::default());
        assert_eq!(
            said(&c),
            [
                "skip D: its start date (1970-01-01T01:23:20Z) is not before its expiry date \
              (1970-01-01T01:23:20Z): it can never be used"
            ]
        );

        for (mode, word) in [(PinMode::Prepend, "before"), (PinMode::Append, "after")] {
            let mut p = token("P");
            p.pin = Some(mode);
            let c = select(vec![p.clone()], 0, Options::default());
            assert_eq!(
                said(&c),
                [format!(
                    "skip P: its PIN policy (PINUsageMode {}) has a PIN typed {word} each code for \
                     the server to check, and pam_otp never checks it (--ignore-pin-policy imports \
                     it without that PIN)",
                    mode.as_str()
                )]
            );
            let c = select(
                vec![p],
                0,
                Options {
                    ignore_pin_policy: true,
                },
            );
            assert_eq!(
                said(&c),
                [format!(
                    "take P [\"PIN policy {} ignored: no PIN is asked for, the code alone is the \
                     factor\"]",
                    mode.as_str()
                )]
            );
        }
    }

    #[test]
    fn debug_redacts_the_key() {
        let d = format!("{:?}", token("A1"));
        assert!(d.contains("redacted") && !d.contains("49, 50"), "{d}");
    }
}
