//! `otp-enroll import-google [PATH]`: convert a google-authenticator file.
//!
//! Format (google-authenticator-libpam's FILEFORMAT and source): line 1 is
//! the base32 key; option lines start with `"`; lines of 8 digits
//! (10000000-99999999) are emergency codes; empty lines are skipped;
//! reading stops at the first line that is none of these. Codes are always
//! HMAC-SHA1 with 6 digits.
//!
//! What maps onto our secret file: the key, TOTP or HOTP and the next
//! counter, STEP_SIZE (the period), TIME_SKEW (the learned drift),
//! DISALLOW_REUSE's used steps (the last accepted step) and the emergency
//! codes. WINDOW_SIZE and RATE_LIMIT are per-user there and config-wide
//! here: they are reported next to the config's values. The skew-learning
//! and grace-period state (RESETTING_TIME_SKEW, LAST0..9) has no
//! counterpart and is dropped.

use std::io;
use std::path::PathBuf;

use otp_core::config::Config;
use otp_core::secret_file::{
    self, OtpKind, SecretFile, Token, DEFAULT_ID, MAX_COUNTER, MAX_SCRATCH_CODES,
};
use otp_core::store::FsError;
use otp_core::verify::MAX_DRIFT_STEPS;

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

/// google-authenticator's STEP_SIZE range.
const GOOGLE_MAX_STEP: u64 = 60;

/// What the google file said that our secret file does not hold the same
/// way; each becomes a note for the admin.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notes {
    pub window_size: Option<u32>,
    /// Logins allowed, per seconds.
    pub rate_limit: Option<(u32, u64)>,
    pub disallow_reuse: bool,
    /// Neither TOTP_AUTH nor HOTP_COUNTER: only emergency codes worked.
    pub no_otp_kind: bool,
    /// TIME_SKEW beyond what pam_otp follows, as found.
    pub skew_clamped: Option<i64>,
}

/// google-authenticator's base32 decoder, with its leniency: any case;
/// spaces, tabs, CR, LF and '-' skipped; '0' read as O, '1' as L, '8' as B;
/// no '=' padding; trailing bits that do not fill a byte dropped.
pub fn decode_google_secret(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let c = match c {
            b' ' | b'\t' | b'\r' | b'\n' | b'-' => continue,
            b'0' => b'O',
            b'1' => b'L',
            b'8' => b'B',
            c => c.to_ascii_uppercase(),
        };
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5 | u32::from(v)) & 0xffff;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn google_scratch_code(line: &str) -> bool {
    line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) && !line.starts_with('0')
}

/// Converts the file's text; `now` dates the new file and bounds the used
/// time steps carried over.
pub fn parse(text: &str, now: u64) -> Result<(SecretFile, Notes), String> {
    if text.contains('\0') {
        return Err("contains NUL bytes: not a google-authenticator file".into());
    }
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let key = decode_google_secret(first).ok_or("line 1 is not a base32 secret")?;
    secret_file::check_key(&key).map_err(|e| e.to_string())?;
    let mut token = Token::new(DEFAULT_ID, OtpKind::Totp, key);
    token.created = Some(now);
    let mut scratch_codes: Vec<String> = Vec::new();
    let mut notes = Notes {
        no_otp_kind: true,
        ..Notes::default()
    };
    let mut used_steps: Vec<u64> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if let Some(opt) = line.strip_prefix('"') {
            let mut words = opt.split_whitespace();
            let name = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            let arg = |i: usize| args.get(i).copied().unwrap_or("");
            match name {
                "HOTP_COUNTER" => {
                    let c: u64 = arg(0)
                        .parse()
                        .ok()
                        .filter(|c| *c <= MAX_COUNTER)
                        .ok_or("HOTP_COUNTER: not a counter")?;
                    // google-authenticator treats a counter below 1 as
                    // "not HOTP".
                    if c >= 1 {
                        token.kind = OtpKind::Hotp;
                        token.counter = c;
                        notes.no_otp_kind = false;
                    }
                }
                "TOTP_AUTH" => notes.no_otp_kind = false,
                "STEP_SIZE" => {
                    token.period = arg(0)
                        .parse()
                        .ok()
                        .filter(|s| (1..=GOOGLE_MAX_STEP).contains(s))
                        .ok_or("STEP_SIZE: must be 1 to 60 seconds")?;
                }
                "TIME_SKEW" => {
                    let s: i64 = arg(0).parse().map_err(|_| "TIME_SKEW: not a number")?;
                    token.state.drift = s.clamp(-MAX_DRIFT_STEPS, MAX_DRIFT_STEPS);
                    if token.state.drift != s {
                        notes.skew_clamped = Some(s);
                    }
                }
                "WINDOW_SIZE" => {
                    notes.window_size = Some(
                        arg(0)
                            .parse()
                            .ok()
                            .filter(|w| (1..=100).contains(w))
                            .ok_or("WINDOW_SIZE: must be 1 to 100")?,
                    );
                }
                "RATE_LIMIT" => {
                    let n = arg(0).parse().ok().filter(|n| (1..=100).contains(n));
                    let m = arg(1).parse().ok().filter(|m| (1..=3600).contains(m));
                    match (n, m) {
                        (Some(n), Some(m)) => notes.rate_limit = Some((n, m)),
                        _ => {
                            return Err("RATE_LIMIT: must be 1-100 logins per 1-3600 seconds".into())
                        }
                    }
                }
                "DISALLOW_REUSE" => {
                    notes.disallow_reuse = true;
                    used_steps.extend(args.iter().filter_map(|a| a.parse::<u64>().ok()));
                }
                // RESETTING_TIME_SKEW, LAST0..9 and anything newer: state
                // with no counterpart here; google-authenticator ignores
                // option lines it does not know, and so do we.
                _ => {}
            }
        } else if google_scratch_code(line) {
            if scratch_codes.len() == MAX_SCRATCH_CODES {
                return Err(format!("more than {MAX_SCRATCH_CODES} emergency codes"));
            }
            if !scratch_codes.iter().any(|c| c == line) {
                scratch_codes.push(line.to_string());
            }
        } else {
            break;
        }
    }
    if token.kind == OtpKind::Totp {
        // The newest step already used stays used. A step beyond any clock
        // the module would accept (corrupt state) is not carried: it would
        // refuse every code.
        let horizon = (now / token.period).saturating_add(MAX_DRIFT_STEPS as u64 + 100);
        token.state.last_step = used_steps.into_iter().filter(|s| *s <= horizon).max();
    }
    let mut file = SecretFile::with_token(token);
    file.scratch_codes = scratch_codes;
    Ok((file, notes))
}

pub fn run(t: &Target, path: Option<String>, force: bool, now: u64) -> Result<(), Error> {
    let path = path
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(&t.account.home).join(".google_authenticator"));
    let raw = path.display().to_string();
    let shown = crate::output::shown(&raw);
    if store::exists(t)? && !force {
        return Err(Error::AlreadyEnrolled { path: t.path_str() });
    }
    // Read it like our own file: as the user, no symlink, not group/world
    // readable, small, in directories only the user and root can write to.
    // (google-authenticator writes 0400 or 0600.)
    let bytes = t.account.read_own_file(&path).map_err(|e| match e {
        FsError::NotFound => Error::failed(format!(
            "{shown}: no such file (give the google-authenticator file's path)"
        )),
        FsError::NoDir { ref err, .. } if err.kind() == io::ErrorKind::NotFound => {
            Error::failed(format!(
                "{shown}: no such file, {} (give the google-authenticator file's path)",
                crate::output::shown(&e.to_string())
            ))
        }
        e => Error::File {
            path: raw.clone(),
            err: e,
        },
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::failed(format!(
            "{shown}: not a google-authenticator file (not text)"
        ))
    })?;
    let (file, notes) = parse(text, now)
        .map_err(|e| Error::failed(format!("{shown}: {}", crate::output::shown(&e))))?;
    let Some(token) = file.tokens.first() else {
        return Err(Error::failed(format!("{shown}: no token")));
    };
    store::save_new(t, &file, force)?;
    say!(
        "Imported {shown} into {}: {}{}, {} emergency codes.",
        t.shown_path(),
        match token.kind {
            OtpKind::Totp => format!("TOTP every {} s", token.period),
            OtpKind::Hotp => format!("HOTP, next counter {}", token.counter),
        },
        if token.state.drift != 0 {
            format!(", clock skew {} steps", token.state.drift)
        } else {
            String::new()
        },
        file.scratch_codes.len()
    );
    say!("The old file was left in place: remove it once logins through pam_otp work.");
    for note in describe(token, &notes, &t.config) {
        say!("note: {}", crate::output::shown(&note));
    }
    Ok(())
}

/// What the admin should know about the settings that did not carry over.
pub fn describe(token: &Token, notes: &Notes, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if notes.no_otp_kind {
        out.push(
            "the file had neither TOTP_AUTH nor HOTP_COUNTER (google-authenticator accepted only its emergency codes); imported as TOTP".to_string(),
        );
    }
    if let Some(s) = notes.skew_clamped {
        out.push(format!(
            "TIME_SKEW {s} is more than pam_otp follows; kept as {} steps",
            token.state.drift
        ));
    }
    if let Some(w) = notes.window_size {
        match token.kind {
            OtpKind::Totp => out.push(format!(
                "WINDOW_SIZE {w} is a setting of the config here: totp_skew = {} in force (accepts {} steps around now; WINDOW_SIZE {w} is about totp_skew = {})",
                config.totp_skew,
                2 * config.totp_skew + 1,
                w / 2
            )),
            OtpKind::Hotp => out.push(format!(
                "WINDOW_SIZE {w} is a setting of the config here: hotp_window = {} in force (WINDOW_SIZE {w} is hotp_window = {})",
                config.hotp_window,
                w.saturating_sub(1)
            )),
        }
    }
    if let Some((n, m)) = notes.rate_limit {
        out.push(format!(
            "RATE_LIMIT {n} {m} (logins per seconds) is a setting of the config here: [rate_limit] max_failures = {} per interval = {} s, counting failed codes only",
            config.rate_limit.max_failures, config.rate_limit.interval
        ));
    }
    if !notes.disallow_reuse && token.kind == OtpKind::Totp {
        out.push(
            "the file allowed a code to be used more than once; pam_otp never does (as DISALLOW_REUSE)".to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::key;

    const EXAMPLE: &str = "GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n59204058\n67424791\n35582731\n";

    #[test]
    fn reference_example() {
        let (f, n) = parse(EXAMPLE, 5).unwrap();
        assert_eq!(f.tokens[0].kind, OtpKind::Totp);
        assert_eq!(f.scratch_codes, vec!["59204058", "67424791", "35582731"]);
        assert_eq!(
            f.tokens[0].key,
            key::decode_base32("GHSRB5Q7UU4JBGQUNM4WHIUVQE").unwrap()
        );
        assert_eq!(f.tokens[0].key.len(), 16);
        assert_eq!(f.tokens[0].state.last_step, None);
        assert_eq!(
            n,
            Notes {
                window_size: Some(3),
                rate_limit: Some((3, 30)),
                disallow_reuse: true,
                no_otp_kind: false,
                skew_clamped: None,
            }
        );
        let notes = describe(&f.tokens[0], &n, &Config::default());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("totp_skew = 1"), "{notes:?}");
    }

    #[test]
    fn hotp_step_skew_used_steps_and_lenient_secret() {
        let text = "ghsr b5q7-uu4j bgqu nm4w hiuv qe\r\n\" HOTP_COUNTER 17\n\" TOTP_AUTH\n\" STEP_SIZE 60\n\" TIME_SKEW -2\n\" RESETTING_TIME_SKEW 1+2 3+4\n\" LAST0 host 123\n\n12345678\n\nnot a code\n87654321\n";
        let (f, n) = parse(text, 0).unwrap();
        assert_eq!(f.tokens[0].kind, OtpKind::Hotp);
        assert_eq!(f.tokens[0].counter, 17);
        assert_eq!(f.tokens[0].period, 60);
        assert_eq!(f.tokens[0].state.drift, -2);
        assert!(!n.no_otp_kind);
        assert_eq!(
            f.scratch_codes,
            vec!["12345678"],
            "reading stops at the first other line"
        );

        let (f, n) = parse(
            "GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" DISALLOW_REUSE 55000000 55000002 55000001\n\" TOTP_AUTH\n\" TIME_SKEW 40\n",
            55_000_002 * 30,
        )
        .unwrap();
        assert_eq!(f.tokens[0].state.last_step, Some(55_000_002));
        assert_eq!(f.tokens[0].state.drift, MAX_DRIFT_STEPS);
        assert_eq!(n.skew_clamped, Some(40));
        // A used step far in the future would refuse every code: dropped.
        let (f, _) = parse(
            "GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" DISALLOW_REUSE 99999999999\n\" TOTP_AUTH\n",
            1000 * 30,
        )
        .unwrap();
        assert_eq!(f.tokens[0].state.last_step, None);
    }

    #[test]
    fn google_decoder_leniency() {
        let exact = key::decode_base32("GHSRB5Q7UU4JBGQUNM4WHIUVQO").unwrap();
        assert_eq!(
            decode_google_secret("GHSRB5Q7UU4JBGQUNM4WHIUVQ0").unwrap(),
            exact
        );
        assert_eq!(
            decode_google_secret("ghsr-b5q7 uu4j\tbgqunm4whiuvqo").unwrap(),
            exact
        );
        assert_eq!(decode_google_secret("L8"), decode_google_secret("1B"));
        assert!(decode_google_secret("GHSRB5Q7UU4JBGQUNM4WHIUVQE==").is_none());
        assert!(decode_google_secret("GHSRB5Q7!").is_none());
        assert!(decode_google_secret("").is_none());
        assert!(decode_google_secret("A").is_none(), "5 bits are no byte");
        // Every 32-character key decodes as the standard decoder does.
        let k = b"12345678901234567890";
        assert_eq!(
            decode_google_secret(&key::encode_base32(k)).unwrap(),
            k.to_vec()
        );
    }

    #[test]
    fn refusals_and_kinds() {
        assert!(parse("", 0).is_err());
        assert!(parse("JBSWY3DP\n\" TOTP_AUTH\n", 0)
            .unwrap_err()
            .contains("5 bytes"));
        assert!(parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" STEP_SIZE 61\n", 0).is_err());
        assert!(parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" HOTP_COUNTER x\n", 0).is_err());
        assert!(parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" WINDOW_SIZE 0\n", 0).is_err());
        assert!(parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\0\n", 0).is_err());
        let (f, n) = parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n12345678\n", 0).unwrap();
        assert!(n.no_otp_kind);
        assert_eq!(f.tokens[0].kind, OtpKind::Totp);
        let (f, n) = parse(
            "GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" HOTP_COUNTER 0\n\" TOTP_AUTH\n",
            0,
        )
        .unwrap();
        assert_eq!(
            f.tokens[0].kind,
            OtpKind::Totp,
            "counter 0 is not HOTP for google"
        );
        assert!(!n.no_otp_kind);
        let many: String = (0..150).map(|i| format!("{}\n", 10_000_000 + i)).collect();
        assert!(parse(&format!("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n{many}"), 0).is_err());
        let (f, _) = parse("GHSRB5Q7UU4JBGQUNM4WHIUVQE\n01234567\n12345678\n", 0).unwrap();
        assert!(
            f.scratch_codes.is_empty(),
            "a leading 0 is no google scratch code"
        );
    }
}
