//! `--json`: the one convention of every command's JSON output
//! ([`CONVENTION`], the man page's JSON OUTPUT section), and the objects
//! shared by several commands. Each command builds its object from the
//! values themselves, never from its text output: serde_json escapes
//! strings as JSON does, and nothing is cut or quoted the terminal's way.

use otp_core::secret_file::{OtpKind, Token};
use serde::Serialize;

use crate::error::Error;

/// The man page's JSON OUTPUT section (troff-free text, paragraphs
/// separated by a blank line).
pub const CONVENTION: &str = "\
With --json, status, list, report, audit and inventory list print one JSON
object (RFC 8259, UTF-8) on standard output, followed by a newline, in place
of their text, and nothing else there. Messages and errors go to standard
error as without --json, and the exit status is the same: status and list
print their object and exit 1 for a user who is not enrolled; a command
that fails prints no object.

The object's first member is \"schema\": \"otp-enroll.COMMAND/1\", COMMAND
being status, list, report, audit or inventory-list: a program reading it
checks that first. A schema's version 1 only ever gains members; a member
that changes meaning or goes away makes version 2.

Values are exact: a string is the value itself, JSON-escaped (never
escaped, quoted or cut as the text output is for a terminal); a value that
is not known or does not apply is null, never left out; times are Unix
seconds (integers, UTC); a token's type is \"totp\" or \"hotp\". Nothing
secret is ever in it: no key, no seed, no code, no emergency code (only
how many there are).";

/// `otp-enroll.<command>/1`.
pub fn schema(command: &str) -> String {
    format!("otp-enroll.{command}/1")
}

/// Prints `value` as one line of JSON on standard output.
pub fn print<T: Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::failed(format!("cannot write the JSON output: {e}")))?;
    crate::output::write(format_args!("{text}\n"))
}

/// "totp" or "hotp".
pub fn kind(kind: OtpKind) -> &'static str {
    kind.as_str()
}

/// One token of a user's record (`status` and `list`): what it is, never
/// its key.
#[derive(Serialize, Debug)]
pub struct TokenJson {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub serial: Option<String>,
    pub algorithm: &'static str,
    pub digits: u8,
    /// TOTP: the step in seconds (null for HOTP).
    pub period: Option<u64>,
    /// HOTP: the next counter a code is looked for from (null for TOTP).
    pub counter: Option<u64>,
    pub created: Option<u64>,
    /// When a code was last accepted (see `list::last_used`).
    pub last_used: Option<u64>,
    /// TOTP: the clock drift learned at login, in steps (null for HOTP).
    pub drift: Option<i64>,
    /// At the command's time: "active", "disabled", "not_yet_valid" or
    /// "expired" (see otp-enroll disable and expire).
    pub state: &'static str,
    /// Set by otp-enroll disable (also outside the dates).
    pub disabled: bool,
    /// Valid from (Unix seconds), null when not limited.
    pub not_before: Option<u64>,
    /// Accepts nothing from (Unix seconds, exclusive), null for never.
    pub expires: Option<u64>,
}

/// A temporary code in status, list and report --json: never the code.
#[derive(Serialize)]
pub struct TempCodeJson {
    /// At the command's time: "active", "used_up" or "expired".
    pub state: &'static str,
    /// Accepts nothing from (Unix seconds, exclusive).
    pub expires: u64,
    pub uses_left: u32,
    /// When it was made (Unix seconds), and by whom.
    pub created: u64,
    pub created_by: String,
}

impl TempCodeJson {
    pub fn of(t: &otp_core::store::TempCodeSummary, now: u64) -> TempCodeJson {
        TempCodeJson {
            state: t.state_at(now),
            expires: t.expires,
            uses_left: t.uses_left,
            created: t.created,
            created_by: t.created_by.clone(),
        }
    }
}

impl TokenJson {
    pub fn of(t: &Token, now: u64) -> TokenJson {
        let totp = t.kind == OtpKind::Totp;
        TokenJson {
            id: t.id.clone(),
            kind: kind(t.kind),
            serial: t.serial.clone(),
            algorithm: t.algorithm.as_str(),
            digits: t.digits,
            period: totp.then_some(t.period),
            counter: (!totp).then_some(t.counter),
            created: t.created,
            last_used: crate::commands::list::last_used_at(t),
            drift: totp.then_some(t.state.drift),
            state: crate::commands::lifecycle::state_word(t, now),
            disabled: t.lifecycle.disabled,
            not_before: t.lifecycle.not_before,
            expires: t.lifecycle.expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::secret_file::Token;

    #[test]
    fn a_token_is_exact_and_has_no_key() {
        let mut t = Token::new(
            "ph\"one\u{202e}",
            OtpKind::Hotp,
            b"12345678901234567890".to_vec(),
        );
        t.serial = Some("S/1\n".into());
        t.counter = 42;
        let v: serde_json::Value = serde_json::to_value(TokenJson::of(&t, 0)).unwrap();
        assert_eq!(v["id"], "ph\"one\u{202e}");
        assert_eq!(v["serial"], "S/1\n");
        assert_eq!(v["type"], "hotp");
        assert_eq!(v["counter"], 42);
        assert!(v["period"].is_null() && v["drift"].is_null());
        let text = serde_json::to_string(&TokenJson::of(&t, 0)).unwrap();
        for secret in ["12345678901234567890", "GEZDGNBV", "3132333435"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(schema("inventory-list"), "otp-enroll.inventory-list/1");
    }
}
