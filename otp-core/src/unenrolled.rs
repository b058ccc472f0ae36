//! The failure tally of a user who has no token, under `missing = "deny"`.
//!
//! Such a user is prompted like everyone else, and every answer is wrong.
//! If nothing were recorded, a guesser could tell who is enrolled: only
//! enrolled users would ever be told "Too many failed attempts", and only
//! their wrong codes would cost a lock, a write and two fsyncs. So the
//! failures of an unenrolled user are counted too, by the same rate limit,
//! in a small root-owned file `<state_dir>/unenrolled/<user>.toml` written
//! the same way as a secret file (lock, temp file, fsync, rename, fsync).
//!
//! Under `store = "postgresql"` the database keeps the tally instead
//! (`pam_otp.unenrolled`, through `verify_no_token`, with its own limits
//! as for an enrolled user's failures): this file is for the file stores.
//!
//! The file records the uid of the account it counts (issue 31, item 7):
//! a tally of another uid (a deleted account whose name was given again)
//! is started afresh, so a new account does not begin locked out by the
//! old one's failures. One without a uid (written before) is kept: it
//! only delays, and the rate limit's window ends it.
//!
//! Only existing accounts get a tally: one file per account at most. A name
//! that is not an account gets none, or a remote guesser could fill the
//! disk with names of their choosing (SECURITY.md says what that leaves).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::safe_fs::{self, FsError, LockedFile, Owner};
use crate::secret_file::State;

/// The sub-directory of `state_dir` that holds the tallies.
pub const DIR: &str = "unenrolled";

/// An unenrolled user's tally, locked until dropped.
pub struct Tally {
    locked: LockedFile,
    path: PathBuf,
    /// Only `failures` and `last_failure` are used.
    pub state: State,
    /// The account's uid, written with every save.
    uid: u32,
    /// The uid of another account whose tally this was, now started
    /// afresh (the login logs it).
    pub reset_from: Option<u32>,
}

impl fmt::Debug for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tally({})", self.path.display())
    }
}

#[derive(Debug)]
pub enum TallyError {
    /// `state_dir` or its `unenrolled` directory is not safe to use.
    Dir {
        dir: PathBuf,
        why: String,
    },
    File {
        path: PathBuf,
        err: FsError,
    },
    Syntax {
        path: PathBuf,
        why: String,
    },
}

impl fmt::Display for TallyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TallyError::Dir { dir, why } => write!(f, "tally directory {}: {why}", dir.display()),
            TallyError::File { path, err } => write!(f, "tally {}: {err}", path.display()),
            TallyError::Syntax { path, why } => write!(f, "tally {}: {why}", path.display()),
        }
    }
}

impl std::error::Error for TallyError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTally {
    failures: u32,
    last_failure: u64,
    #[serde(default)]
    uid: Option<u32>,
}

/// Makes (0700) and checks `dir`: `owner`'s (root's, in the module) and
/// writable by nobody else, for whoever could write it could reset the tally.
fn make_dir(dir: &Path, owner: Owner) -> Result<(), TallyError> {
    safe_fs::ensure_dir(dir, owner).map_err(|err| TallyError::Dir {
        dir: dir.to_path_buf(),
        why: err.to_string(),
    })
}

/// Opens (creating it and its directory if need be) and locks `user`'s
/// tally under `state_dir`, as `owner`, for the account of uid `uid`.
/// `user` must be a plausible name.
pub fn open(state_dir: &Path, user: &str, uid: u32, owner: Owner) -> Result<Tally, TallyError> {
    make_dir(state_dir, owner)?;
    let dir = state_dir.join(DIR);
    make_dir(&dir, owner)?;
    let path = path(state_dir, user);
    let file_err = |err| TallyError::File {
        path: path.clone(),
        err,
    };
    // Created at the first failure only: afterwards a try costs what a
    // wrong code of an enrolled user costs (lock, read, write, fsyncs).
    let (locked, bytes) = match safe_fs::open_locked(&path, Path::new("/"), owner) {
        Err(FsError::NotFound) => {
            match safe_fs::create_new(
                &path,
                Path::new("/"),
                owner,
                to_toml(&State::default(), uid).as_bytes(),
            ) {
                Ok(()) | Err(FsError::Exists) => {}
                Err(err) => return Err(file_err(err)),
            }
            safe_fs::open_locked(&path, Path::new("/"), owner).map_err(file_err)?
        }
        opened => opened.map_err(file_err)?,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| TallyError::Syntax {
        path: path.clone(),
        why: "not UTF-8".into(),
    })?;
    let raw: RawTally = toml::from_str(text).map_err(|e| TallyError::Syntax {
        path: path.clone(),
        why: e.message().trim().replace('\n', " "),
    })?;
    let reset_from = raw.uid.filter(|&recorded| recorded != uid);
    let state = match reset_from {
        Some(_) => State::default(),
        None => State {
            failures: raw.failures,
            last_failure: raw.last_failure,
            grace: Vec::new(),
        },
    };
    Ok(Tally {
        locked,
        path,
        state,
        uid,
        reset_from,
    })
}

fn to_toml(state: &State, uid: u32) -> String {
    format!(
        "# pam_otp: failed codes of a user who has no token (missing = \"deny\")\n\
         failures = {}\nlast_failure = {}\nuid = {uid}\n",
        state.failures, state.last_failure
    )
}

impl Tally {
    /// Saves `state` (temp file, fsync, rename, fsync), as a secret file is.
    pub fn save(&self) -> Result<(), TallyError> {
        self.locked
            .replace(to_toml(&self.state, self.uid).as_bytes())
            .map_err(|err| TallyError::File {
                path: self.path.clone(),
                err,
            })
    }
}

/// The uid a tally's text records (`None`: none, or not a tally).
pub fn recorded_uid(text: &str) -> Option<u32> {
    toml::from_str::<RawTally>(text).ok().and_then(|r| r.uid)
}

/// Where `user`'s tally is kept.
pub fn path(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join(DIR).join(format!("{user}.toml"))
}

/// Forgets `user`'s tally (`otp-enroll unlock`, `remove --orphans`);
/// whether there was one. A login holding its lock counts on in the file
/// it opened, which is then no one's: its next failure starts a new one.
pub fn remove(state_dir: &Path, user: &str) -> Result<bool, TallyError> {
    let path = path(state_dir, user);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(TallyError::File {
            path,
            err: FsError::Io { op: "unlink", err },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> Owner {
        Owner::current()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pam_otp-tally-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn a_tally_is_created_counted_and_read_back() {
        let dir = temp_dir("count");
        let mut tally = open(&dir, "alice", 1001, me()).unwrap();
        assert_eq!(tally.state, State::default());
        tally.state.failures = 4;
        tally.state.last_failure = 1_700_000_000;
        tally.save().unwrap();
        drop(tally);
        let again = open(&dir, "alice", 1001, me()).unwrap();
        assert_eq!(again.state.failures, 4);
        assert_eq!(again.state.last_failure, 1_700_000_000);
        let sub = fs::metadata(dir.join(DIR)).unwrap();
        assert_eq!(sub.mode() & 0o777, 0o700);
        let file = fs::metadata(dir.join(DIR).join("alice.toml")).unwrap();
        assert_eq!(file.mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tally_of_another_uid_is_started_afresh() {
        let dir = temp_dir("recycled");
        let mut tally = open(&dir, "alice", 1001, me()).unwrap();
        tally.state.failures = 40;
        tally.state.last_failure = 1_700_000_000;
        tally.save().unwrap();
        drop(tally);
        let path = dir.join(DIR).join("alice.toml");
        assert!(fs::read_to_string(&path).unwrap().contains("uid = 1001\n"));
        // `userdel alice`, `useradd alice` with another uid.
        let fresh = open(&dir, "alice", 1002, me()).unwrap();
        assert_eq!(fresh.state, State::default());
        assert_eq!(fresh.reset_from, Some(1001));
        drop(fresh);
        // One without a uid (written before) is kept.
        fs::write(&path, "failures = 7\nlast_failure = 1700000000\n").unwrap();
        let old = open(&dir, "alice", 1002, me()).unwrap();
        assert_eq!((old.state.failures, old.reset_from), (7, None));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unsafe_state_dir_is_refused() {
        let dir = temp_dir("unsafe");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = open(&dir, "alice", 1001, me()).unwrap_err();
        assert!(err.to_string().contains("is writable by others"), "{err}");
        assert!(!dir.join(DIR).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_tally_is_an_error_and_left_alone() {
        let dir = temp_dir("damaged");
        drop(open(&dir, "bob", 1001, me()).unwrap());
        let path = dir.join(DIR).join("bob.toml");
        fs::write(&path, "failures = \"many\"\n").unwrap();
        let err = open(&dir, "bob", 1001, me()).unwrap_err();
        assert!(matches!(err, TallyError::Syntax { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "failures = \"many\"\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
