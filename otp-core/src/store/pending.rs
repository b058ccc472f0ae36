//! "Enroll at next login" (`otp-enroll reset`): an empty root-owned file
//! `<state_dir>/pending/<user>` per user, whatever the store. It is root's
//! even under `store = "home"`, so a user cannot withdraw their own reset
//! by deleting a file in their home.

use std::path::{Path, PathBuf};

use crate::safe_fs::{self, FsError, Owner};

const TEXT: &[u8] = b"# pam_otp: enroll this user at their next login (otp-enroll reset)\n";

pub struct Mark {
    pub state_dir: PathBuf,
    pub path: PathBuf,
}

impl Mark {
    pub fn new(state_dir: &Path, user: &str) -> Mark {
        Mark {
            state_dir: state_dir.to_path_buf(),
            path: state_dir.join(super::PENDING_DIR).join(user),
        }
    }

    /// Whether the mark is there. Only root's own directory counts: a
    /// mark anyone else could create or remove would be worthless.
    pub fn is_set(&self) -> Result<bool, FsError> {
        // No directory: no marks (it is made with the first one).
        if !self.state_dir.join(super::PENDING_DIR).exists() {
            return Ok(false);
        }
        safe_fs::exists(&self.path, &self.state_dir, Owner::current())
    }

    pub fn set(&self) -> Result<(), FsError> {
        let dir = self.state_dir.join(super::PENDING_DIR);
        safe_fs::ensure_dir(&self.state_dir, Owner::current())?;
        safe_fs::ensure_dir(&dir, Owner::current())?;
        match safe_fs::create_new(&self.path, &self.state_dir, Owner::current(), TEXT) {
            Ok(()) | Err(FsError::Exists) => Ok(()),
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
