//! `otp-enroll import-google [PATH]`: convert a google-authenticator file.
//!
//! Format (see google-authenticator-libpam's FILEFORMAT): line 1 is the
//! base32 key; option lines start with `" `; 8-digit lines are emergency
//! codes; reading stops at the first line that is neither.

use std::path::PathBuf;

use pam_otp::key;
use pam_otp::safe_fs;
use pam_otp::secret_file::{is_scratch_code, OtpKind, SecretFile, MAX_PERIOD};
use pam_otp::verify::MAX_DRIFT_STEPS;

use crate::error::Error;
use crate::store;
use crate::target::Target;

/// What the google file said that our secret file cannot hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notes {
    pub window_size: Option<u32>,
    pub rate_limit: Option<(u32, u32)>,
    pub disallow_reuse: bool,
}

/// google-authenticator's base32 decoder: any case, spaces, tabs, CR/LF and
/// dashes skipped, 0 read as O, 1 as L, 8 as B; no `=` padding.
pub fn decode_google_secret(line: &str) -> Option<Vec<u8>> {
    if line.contains('=') {
        return None;
    }
    let cleaned: String = line
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' => 'L',
            '8' => 'B',
            u => u,
        })
        .collect();
    key::decode_base32(&cleaned)
}

pub fn parse(text: &str, now: u64) -> Result<(SecretFile, Notes), Error> {
    let mut lines = text.lines();
    let first = lines
        .next()
        .ok_or_else(|| Error::failed("the file is empty"))?;
    let key = decode_google_secret(first)
        .ok_or_else(|| Error::failed("line 1 is not a base32 secret"))?;
    if !key::key_length_ok(&key) {
        return Err(Error::failed("the secret is too short or too long"));
    }
    let mut file = SecretFile::new(OtpKind::Totp, key);
    file.created = Some(now);
    let mut notes = Notes::default();
    for line in lines {
        if let Some(opt) = line.strip_prefix("\" ") {
            let mut words = opt.split_whitespace();
            let name = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            let num = |i: usize| args.get(i).and_then(|v| v.parse::<i64>().ok());
            match name {
                "HOTP_COUNTER" => {
                    let c = num(0)
                        .filter(|c| *c >= 0)
                        .ok_or_else(|| Error::failed("HOTP_COUNTER: not a number"))?;
                    file.kind = OtpKind::Hotp;
                    file.counter = c as u64;
                }
                "TOTP_AUTH" => {}
                "STEP_SIZE" => {
                    let s = num(0)
                        .filter(|s| (1..=MAX_PERIOD as i64).contains(s))
                        .ok_or_else(|| Error::failed("STEP_SIZE: out of range"))?;
                    file.period = s as u64;
                }
                "TIME_SKEW" => {
                    if let Some(s) = num(0) {
                        file.state.drift = s.clamp(-MAX_DRIFT_STEPS, MAX_DRIFT_STEPS);
                    }
                }
                "WINDOW_SIZE" => notes.window_size = num(0).map(|w| w as u32),
                "RATE_LIMIT" => {
                    if let (Some(n), Some(m)) = (num(0), num(1)) {
                        notes.rate_limit = Some((n as u32, m as u32));
                    }
                }
                "DISALLOW_REUSE" => notes.disallow_reuse = true,
                _ => {} // RESETTING_TIME_SKEW, LASTn: state we rebuild ourselves
            }
        } else if is_scratch_code(line.trim()) {
            file.scratch_codes.push(line.trim().to_string());
        } else {
            break;
        }
    }
    // HOTP_COUNTER wins over TOTP_AUTH, as in google-authenticator.
    Ok((file, notes))
}

pub fn run(t: &Target, path: Option<String>, force: bool, now: u64) -> Result<(), Error> {
    let path = path
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(&t.account.home).join(".google_authenticator"));
    let shown = path.display().to_string();
    // Read it like our own file: as the user, no symlink, not group/world
    // readable, small. (google-authenticator writes 0400 or 0600.)
    let (locked, bytes) =
        safe_fs::open_locked(&path, t.owner()).map_err(|e| Error::file(&shown, e))?;
    drop(locked);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Error::failed(format!("{shown}: not text")))?;
    let (file, notes) = parse(text, now).map_err(|e| Error::failed(format!("{shown}: {e}")))?;
    if store::exists(t)? && !force {
        return Err(Error::failed(format!(
            "{}: a secret already exists; use --force to replace it",
            t.path_str()
        )));
    }
    store::save_new(t, &file, force)?;
    println!(
        "Imported {shown} into {} ({}, {} emergency codes). The old file was left in place; remove it once logins work.",
        t.path_str(),
        file.kind.as_str().to_uppercase(),
        file.scratch_codes.len()
    );
    if let Some(w) = notes.window_size {
        println!("note: WINDOW_SIZE {w} is not per user here: set totp_skew / hotp_window in /etc/security/pam_otp.toml.");
    }
    if let Some((n, m)) = notes.rate_limit {
        println!("note: RATE_LIMIT {n} {m} is not per user here: pam_otp's [rate_limit] in the config applies.");
    }
    if !notes.disallow_reuse {
        println!("note: codes can never be reused with pam_otp (google-authenticator's DISALLOW_REUSE is always on).");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "GHSRB5Q7UU4JBGQUNM4WHIUVQE\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n59204058\n67424791\n35582731\n";

    #[test]
    fn reference_example() {
        let (f, n) = parse(EXAMPLE, 5).unwrap();
        assert_eq!(f.kind, OtpKind::Totp);
        assert_eq!(f.scratch_codes, vec!["59204058", "67424791", "35582731"]);
        assert_eq!(
            f.key,
            key::decode_base32("GHSRB5Q7UU4JBGQUNM4WHIUVQE").unwrap()
        );
        assert_eq!(
            n,
            Notes {
                window_size: Some(3),
                rate_limit: Some((3, 30)),
                disallow_reuse: true
            }
        );
    }

    #[test]
    fn hotp_step_skew_and_lenient_secret() {
        let text = "ghsr b5q7-uu4j bgqu nm4w hiuv qe\n\" HOTP_COUNTER 17\n\" TOTP_AUTH\n\" STEP_SIZE 60\n\" TIME_SKEW -2\n12345678\nnot a code\n87654321\n";
        let (f, _) = parse(text, 0).unwrap();
        assert_eq!(f.kind, OtpKind::Hotp);
        assert_eq!(f.counter, 17);
        assert_eq!(f.period, 60);
        assert_eq!(f.state.drift, -2);
        assert_eq!(
            f.scratch_codes,
            vec!["12345678"],
            "reading stops at the first other line"
        );
        assert_eq!(
            decode_google_secret("GHSRB5Q7UU4JBGQUNM4WHIUVQ0"),
            decode_google_secret("GHSRB5Q7UU4JBGQUNM4WHIUVQO")
        );
        assert!(decode_google_secret("GHSRB5Q7UU4JBGQUNM4WHIUVQE==").is_none());
    }
}
