//! "Enroll at next login" (`otp-enroll reset`): a root-owned file
//! `<state_dir>/pending/<user>` per user, whatever the store. It is root's
//! even under `store = "home"`, so a user cannot withdraw their own reset
//! by deleting a file in their home.
//!
//! The file is keyed by the name, so it records the uid of the account it
//! was made for (issue 31, item 7), one text line after the comment:
//!
//! ```text
//! # pam_otp: enroll this user at their next login (otp-enroll reset)
//! uid = 1001
//! ```
//!
//! A login of an account of that name with another uid (a deleted
//! account's name given again) counts it as no mark, and the log says so
//! ([`MarkState::OtherAccount`]). A mark without a uid line, as every
//! released version wrote it, is honoured: it cannot say whose it is, and
//! refusing it would drop every admin's reset waiting on the machines
//! (under `missing = "deny"` locking those users out). What it can give a
//! new account of a deleted name is an enrollment at login in place of a
//! refusal, behind the first factor that account has anyway: it never
//! skips a code of an enrolled account. SECURITY.md says so.

use std::path::{Path, PathBuf};

use crate::safe_fs::{self, FsError, Holds, Owner};

const TEXT: &str = "# pam_otp: enroll this user at their next login (otp-enroll reset)\n";
const MAX_SIZE: u64 = 4096;

/// A mark as the account of a known uid sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkState {
    /// No mark.
    Unset,
    /// A mark for this account (or one that records no uid: see above).
    Set,
    /// A mark made for another account of the name (`recorded`), or one
    /// whose uid line cannot be read (`None`): no mark.
    OtherAccount { recorded: Option<u32> },
}

pub struct Mark {
    pub state_dir: PathBuf,
    pub path: PathBuf,
    /// The uid of the account it is for, when known: written into a new
    /// mark, and checked against the one a mark records.
    pub uid: Option<u32>,
}

impl Mark {
    pub fn new(state_dir: &Path, user: &str) -> Mark {
        Mark {
            state_dir: state_dir.to_path_buf(),
            path: state_dir.join(super::PENDING_DIR).join(user),
            uid: None,
        }
    }

    /// The mark of the account of uid `uid`.
    pub fn of_uid(self, uid: u32) -> Mark {
        Mark {
            uid: Some(uid),
            ..self
        }
    }

    /// Whether the mark is there for this account.
    pub fn is_set(&self) -> Result<bool, FsError> {
        Ok(self.state()? == MarkState::Set)
    }

    /// The mark as this account sees it. Only root's own directory and
    /// file count: a mark anyone else could create or remove would be
    /// worthless.
    pub fn state(&self) -> Result<MarkState, FsError> {
        // No directory: no marks (it is made with the first one).
        if !self.state_dir.join(super::PENDING_DIR).exists() {
            return Ok(MarkState::Unset);
        }
        if !safe_fs::exists(&self.path, &self.state_dir, Owner::current())? {
            return Ok(MarkState::Unset);
        }
        let Some(uid) = self.uid else {
            return Ok(MarkState::Set);
        };
        safe_fs::check_dirs(&self.path, &self.state_dir, Owner::current())?;
        let text = safe_fs::read_trusted(&self.path, Holds::Settings, MAX_SIZE)?;
        Ok(match recorded_uid(&text) {
            None => MarkState::Set,
            Some(Some(recorded)) if recorded == uid => MarkState::Set,
            Some(recorded) => MarkState::OtherAccount { recorded },
        })
    }

    /// Sets the mark, with this account's uid when known; one of another
    /// account there is replaced.
    pub fn set(&self) -> Result<(), FsError> {
        let dir = self.state_dir.join(super::PENDING_DIR);
        safe_fs::ensure_dir(&self.state_dir, Owner::current())?;
        safe_fs::ensure_dir(&dir, Owner::current())?;
        let text = match self.uid {
            Some(uid) => format!("{TEXT}uid = {uid}\n"),
            None => TEXT.to_string(),
        };
        match safe_fs::create_new(
            &self.path,
            &self.state_dir,
            Owner::current(),
            text.as_bytes(),
        ) {
            Ok(()) => Ok(()),
            Err(FsError::Exists) if self.state()? == MarkState::Set => Ok(()),
            Err(FsError::Exists) => safe_fs::replace_file(&self.path, text.as_bytes()),
            Err(e) => Err(e),
        }
    }

    pub fn clear(&self) -> Result<(), FsError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(FsError::Io { op: "unlink", err }),
        }
    }
}

/// The uid a mark's text records: `None` without a `uid` line (a mark of
/// a released version), `Some(None)` for one that cannot be read.
pub fn recorded_uid(text: &str) -> Option<Option<u32>> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("uid") && !l.starts_with('#'))?;
    Some(
        line.strip_prefix("uid")
            .map(str::trim_start)
            .and_then(|l| l.strip_prefix('='))
            .and_then(|v| v.trim().parse().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uid_line_is_read_back() {
        assert_eq!(recorded_uid(TEXT), None);
        assert_eq!(recorded_uid(""), None);
        assert_eq!(
            recorded_uid(&format!("{TEXT}uid = 1001\n")),
            Some(Some(1001))
        );
        assert_eq!(recorded_uid("uid=7"), Some(Some(7)));
        assert_eq!(recorded_uid("uid = -1\n"), Some(None));
        assert_eq!(recorded_uid("uid = 1 2\n"), Some(None));
    }

    #[test]
    fn a_mark_of_another_uid_is_no_mark_and_an_old_empty_one_holds() {
        let dir = std::env::temp_dir().join(format!("pam_otp-pending-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let old = Mark::new(&dir, "alice").of_uid(1001);
        old.set().unwrap();
        let text = std::fs::read_to_string(&old.path).unwrap();
        assert!(text.ends_with("uid = 1001\n"), "{text}");
        assert_eq!(old.state().unwrap(), MarkState::Set);
        let new = Mark::new(&dir, "alice").of_uid(1002);
        assert_eq!(
            new.state().unwrap(),
            MarkState::OtherAccount {
                recorded: Some(1001)
            }
        );
        assert!(!new.is_set().unwrap());
        // A census, which knows no account, sees a mark.
        assert!(Mark::new(&dir, "alice").is_set().unwrap());
        // The new account's own reset replaces the old account's mark.
        new.set().unwrap();
        assert_eq!(new.state().unwrap(), MarkState::Set);
        assert_eq!(
            old.state().unwrap(),
            MarkState::OtherAccount {
                recorded: Some(1002)
            }
        );
        // A mark of a released version (the comment alone) holds, even
        // one made by hand that others may read (it holds no secret).
        std::fs::write(&new.path, TEXT).unwrap();
        assert_eq!(new.state().unwrap(), MarkState::Set);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&new.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(new.state().unwrap(), MarkState::Set);
        new.clear().unwrap();
        assert_eq!(new.state().unwrap(), MarkState::Unset);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
