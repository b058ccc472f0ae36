//! Exemptions (`otp-enroll exempt`): no code asked of a user until a
//! date. One root-owned file `<state_dir>/exempt/<user>` per user (mode
//! 0600, directory 0700), whatever the store, like the "enroll at next
//! login" marks beside it: under `store = "home"` the user owns their
//! secret file, never this one, so they can neither grant themselves an
//! exemption nor lengthen one. It holds when it ends, when it was granted,
//! who granted it and why:
//!
//! ```toml
//! # pam_otp: no code asked of this user until `until` (otp-enroll exempt)
//! until = 1800000000
//! granted = 1799500000
//! by = "uid=0 loginuid=1000 sudo_user=\"alice\" host=\"db1\""
//! reason = "phone lost; new one on Monday"
//! uid = 1001
//! ```
//!
//! A login honours one only while `granted <= now < until` and `until -
//! granted <= max_exemption` of the config it runs under: a file written
//! by hand (or by an older otp-enroll, or before `max_exemption` was
//! lowered) that asks for more is ignored whole, and said so in the log
//! ([`Standing`]). Anything that cannot be read is no exemption.
//!
//! `uid` is the account's it was granted to (issue 31, item 7): the file
//! is keyed by the name, and after `userdel` and `useradd` a new account
//! of that name must not inherit "no code asked". A login honours one
//! only for the account of that uid ([`Standing::OtherAccount`]); one
//! without a uid is ignored too ([`Standing::NoUid`]): exemptions came
//! with the same unreleased work as the uid, so no released otp-enroll
//! wrote one without it, and only a hand-written file lacks it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::safe_fs::{self, FsError, Holds, Owner};

/// The directory of `state_dir` that holds the exemptions.
pub const EXEMPT_DIR: &str = "exempt";
/// The longest `reason` kept, in characters.
pub const MAX_REASON: usize = 200;
const MAX_SIZE: u64 = 4096;
const HEADER: &str = "# pam_otp: no code asked of this user until `until` (otp-enroll exempt)\n";

/// One user's exemption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    /// Unix seconds: no code is asked before it.
    pub until: u64,
    /// Unix seconds: when it was granted.
    pub granted: u64,
    /// Who granted it, as otp-enroll's audit line says who.
    #[serde(default)]
    pub by: String,
    /// Why, as the administrator wrote it (may be empty).
    #[serde(default)]
    pub reason: String,
    /// The uid of the account it was granted to (see the module's note);
    /// `None` only in a file written by hand, which no login honours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// An exemption as an administrator asks for it (`otp-enroll exempt`):
/// the store grants it at its own time (the fleet's: the database's
/// clock, bounded by its own `max_exemption` too) and says what it kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The end asked for; `None`: the longest allowed.
    pub until: Option<u64>,
    /// The caller's time (what a file store records as `granted`).
    pub now: u64,
    /// The caller's `max_exemption`, in seconds: the store may only
    /// shorten it.
    pub max: u64,
    pub by: String,
    pub reason: String,
    /// The account it is for.
    pub uid: u32,
}

impl Ask {
    /// The exemption granted at the caller's `now`.
    pub fn at_now(&self) -> Exemption {
        Exemption {
            until: self.until.unwrap_or(self.now.saturating_add(self.max)),
            granted: self.now,
            by: self.by.clone(),
            reason: self.reason.clone(),
            uid: Some(self.uid),
        }
    }
}

/// What an exemption means at a login at `now` under `max` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No code asked.
    Holds,
    /// Over: `now >= until`.
    Ended,
    /// `until - granted` is more than `max_exemption`: ignored whole.
    TooLong { max: u64 },
    /// Granted after `now` (a clock set back, a forged file): ignored.
    NotYetGranted,
    /// Granted to another account of the same name (a deleted one whose
    /// name was given again): ignored.
    OtherAccount { recorded: u32 },
    /// No uid recorded (written by hand): ignored.
    NoUid,
}

impl Exemption {
    /// What it means for the account of uid `uid` at `now` under `max`.
    pub fn standing_for(&self, uid: u32, now: u64, max: u64) -> Standing {
        match self.uid {
            None => Standing::NoUid,
            Some(recorded) if recorded != uid => Standing::OtherAccount { recorded },
            Some(_) => self.standing(now, max),
        }
    }

    /// Its standing in time alone, whoever's it is (a census's report).
    pub fn standing(&self, now: u64, max: u64) -> Standing {
        if self.until.saturating_sub(self.granted) > max {
            Standing::TooLong { max }
        } else if self.granted > now {
            Standing::NotYetGranted
        } else if now >= self.until {
            Standing::Ended
        } else {
            Standing::Holds
        }
    }

    /// Why a reason cannot be kept: too long, or control characters
    /// (it is logged at every login it decides).
    pub fn check_reason(reason: &str) -> Result<(), String> {
        if reason.chars().count() > MAX_REASON {
            return Err(format!("longer than {MAX_REASON} characters"));
        }
        if reason.chars().any(char::is_control) {
            return Err("holds control characters (a new line, a tab...)".into());
        }
        Ok(())
    }
}

/// Why an exemption file cannot be used.
#[derive(Debug)]
pub enum ExemptError {
    File { path: PathBuf, err: FsError },
    Malformed { path: PathBuf, why: String },
}

impl fmt::Display for ExemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExemptError::File { path, err } => write!(f, "exemption {}: {err}", path.display()),
            ExemptError::Malformed { path, why } => {
                write!(f, "exemption {}: not an exemption: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for ExemptError {}

/// Where `user`'s exemption is kept.
pub fn path(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join(EXEMPT_DIR).join(user)
}

/// `user`'s exemption, if one is recorded. Only root's own directory and
/// file count (checked as the pending marks are): one anyone else could
/// write would be an exemption anyone could grant.
pub fn read(state_dir: &Path, user: &str) -> Result<Option<Exemption>, ExemptError> {
    let path = path(state_dir, user);
    let file_err = |err| ExemptError::File {
        path: path.clone(),
        err,
    };
    // No directory: no exemptions (it is made with the first one).
    if !state_dir.join(EXEMPT_DIR).exists() {
        return Ok(None);
    }
    if !safe_fs::exists(&path, state_dir, Owner::current()).map_err(file_err)? {
        return Ok(None);
    }
    safe_fs::check_dirs(&path, state_dir, Owner::current()).map_err(file_err)?;
    let text = safe_fs::read_trusted(&path, Holds::Secrets, MAX_SIZE).map_err(file_err)?;
    let e: Exemption = toml::from_str(&text).map_err(|e| ExemptError::Malformed {
        path: path.clone(),
        why: e.message().trim().replace('\n', " "),
    })?;
    Exemption::check_reason(&e.reason)
        .and_then(|()| Exemption::check_reason(&e.by))
        .map_err(|why| ExemptError::Malformed {
            path: path.clone(),
            why,
        })?;
    Ok(Some(e))
}

/// Records `e` for `user` (replacing one there), root's, mode 0600.
pub fn write(state_dir: &Path, user: &str, e: &Exemption) -> Result<(), ExemptError> {
    let path = path(state_dir, user);
    let file_err = |err| ExemptError::File {
        path: path.clone(),
        err,
    };
    safe_fs::ensure_dir(state_dir, Owner::current()).map_err(file_err)?;
    safe_fs::ensure_dir(&state_dir.join(EXEMPT_DIR), Owner::current()).map_err(file_err)?;
    let body = toml::to_string(e).map_err(|e| ExemptError::Malformed {
        path: path.clone(),
        why: e.to_string(),
    })?;
    safe_fs::replace_file(&path, format!("{HEADER}{body}").as_bytes()).map_err(file_err)
}

/// Withdraws `user`'s exemption; whether there was one.
pub fn remove(state_dir: &Path, user: &str) -> Result<bool, ExemptError> {
    let path = path(state_dir, user);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(ExemptError::File {
            path,
            err: FsError::Io { op: "unlink", err },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn granted_for(days: u64) -> Exemption {
        Exemption {
            until: D,
            granted: D - days * DAY,
            by: "uid=0".into(),
            reason: "test".into(),
            uid: Some(1001),
        }
    }

    #[test]
    fn an_exemption_holds_up_to_its_end_exclusive() {
        let e = granted_for(3);
        let max = 30 * DAY;
        assert_eq!(e.standing(D - 1, max), Standing::Holds);
        assert_eq!(e.standing(D, max), Standing::Ended);
        assert_eq!(e.standing(D + 1, max), Standing::Ended);
        assert_eq!(e.standing(e.granted - 1, max), Standing::NotYetGranted);
    }

    #[test]
    fn one_longer_than_max_exemption_is_ignored_whole() {
        let max = 30 * DAY;
        assert_eq!(granted_for(30).standing(D - 1, max), Standing::Holds);
        let long = Exemption {
            granted: D - 30 * DAY - 1,
            ..granted_for(0)
        };
        assert_eq!(long.standing(D - 1, max), Standing::TooLong { max });
        // A lowered max_exemption shortens nothing: it ends what it covers.
        assert_eq!(
            granted_for(10).standing(D - 1, 5 * DAY),
            Standing::TooLong { max: 5 * DAY }
        );
        assert_eq!(
            granted_for(1).standing(D - 1, 0),
            Standing::TooLong { max: 0 }
        );
    }

    #[test]
    fn an_exemption_holds_only_for_the_uid_it_was_granted_to() {
        let e = granted_for(3);
        let max = 30 * DAY;
        assert_eq!(e.standing_for(1001, D - 1, max), Standing::Holds);
        assert_eq!(
            e.standing_for(1002, D - 1, max),
            Standing::OtherAccount { recorded: 1001 }
        );
        let hand = Exemption {
            uid: None,
            ..granted_for(3)
        };
        assert_eq!(hand.standing_for(1001, D - 1, max), Standing::NoUid);
        // Read back from the file as written.
        let text = format!("{HEADER}{}", toml::to_string(&e).unwrap());
        assert!(text.contains("uid = 1001\n"), "{text}");
        assert_eq!(toml::from_str::<Exemption>(&text).unwrap(), e);
    }

    #[test]
    fn reasons_are_short_plain_text() {
        assert!(Exemption::check_reason("phone lost; new one on Monday").is_ok());
        assert!(Exemption::check_reason("").is_ok());
        assert!(Exemption::check_reason(&"x".repeat(MAX_REASON + 1)).is_err());
        assert!(Exemption::check_reason("a\nb").is_err());
        assert!(Exemption::check_reason("a\u{1b}[2J").is_err());
    }

    #[test]
    fn written_read_back_and_removed() {
        let dir = std::env::temp_dir().join(format!("pam_otp-exempt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(read(&dir, "alice").unwrap().is_none());
        let e = granted_for(2);
        write(&dir, "alice", &e).unwrap();
        assert_eq!(read(&dir, "alice").unwrap(), Some(e));
        assert!(read(&dir, "bob").unwrap().is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path(&dir, "alice")), 0o600);
        assert_eq!(mode(&dir.join(EXEMPT_DIR)), 0o700);
        // Written by hand with a key it does not know: refused whole.
        std::fs::write(
            path(&dir, "alice"),
            "until = 1\ngranted = 0\nforever = true\n",
        )
        .unwrap();
        assert!(matches!(
            read(&dir, "alice"),
            Err(ExemptError::Malformed { .. })
        ));
        assert!(remove(&dir, "alice").unwrap());
        assert!(!remove(&dir, "alice").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
