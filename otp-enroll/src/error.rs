//! What can go wrong, in words a user understands. Messages never contain a
//! secret or a code.

use std::fmt;
use std::io;

use otp_core::store::{DirProblem, FsError};

use crate::output::shown;
use otp_core::secret_file::{SecretFileError, TokenError};

#[derive(Debug)]
pub enum Error {
    /// Wrong arguments (exit code 2).
    Usage(String),
    /// Wrong arguments as the parser words them, with its usage line and
    /// hint (exit code 2).
    Syntax(String),
    /// `--user` for someone else without being root.
    NotRoot,
    NoSuchUser(String),
    /// There is no secret file to act on.
    NotEnrolled {
        user: String,
        path: String,
    },
    /// A secret exists and the command would replace it.
    AlreadyEnrolled {
        path: String,
    },
    /// The secret file's directory does not exist.
    NoDirectory {
        path: String,
    },
    /// The secret file could not be created there (found before any
    /// secret is shown).
    CannotSave {
        path: String,
        user: String,
        reason: String,
    },
    /// A file operation failed (refused as unsafe, permissions, I/O).
    File {
        path: String,
        err: FsError,
    },
    /// The secret file is there but cannot be used as it is.
    Corrupt {
        path: String,
        err: SecretFileError,
    },
    /// A plain user under `store = "system"`: their record is root's, out
    /// of their reach (`reading`: they asked to see it). `at_login`: the
    /// config enrolls users without a token at login (`missing = "enroll"`).
    SystemStore {
        user: String,
        reading: bool,
        at_login: bool,
        /// `postgresql` rather than `system`.
        fleet: bool,
    },
    /// A command only root may run (`reset`, `migrate`).
    RootOnly(&'static str),
    /// A code or seed did not prove what it had to; nothing was changed.
    Refused(String),
    /// Standard output could not be written (closed pipe, full disk).
    Output(io::Error),
    /// Anything else (config, account look-up, the system).
    Failed(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    /// An option's value breaks a rule of the secret file: the rule's own
    /// words, which name the field, as the option ("--digits: 5 is out of
    /// range (6..=8)").
    pub fn bad_option(err: TokenError) -> Error {
        Error::Usage(format!("--{err}"))
    }

    pub fn failed(msg: impl std::fmt::Display) -> Error {
        Error::Failed(msg.to_string())
    }

    pub fn refused(msg: impl Into<String>) -> Error {
        Error::Refused(msg.into())
    }

    /// A file operation on `path` that failed while reading or changing an
    /// existing secret.
    pub fn file(path: &str, user: &str, err: FsError) -> Error {
        match err {
            FsError::NotFound => Error::NotEnrolled {
                user: user.to_string(),
                path: path.to_string(),
            },
            FsError::Exists => Error::AlreadyEnrolled {
                path: path.to_string(),
            },
            FsError::NoDir { err, .. } if err.kind() == io::ErrorKind::NotFound => {
                Error::NoDirectory {
                    path: path.to_string(),
                }
            }
            err => Error::File {
                path: path.to_string(),
                err,
            },
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Syntax(_) => 2,
            _ => 1,
        }
    }

    /// Whether the message is worth printing (a closed output pipe is not:
    /// whoever closed it is not reading).
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What came from input (names, paths, the errors of other crates,
        // which quote paths) is escaped here, once; Usage, Refused and
        // Failed messages are built with their input escaped already.
        let (sh, shp) = (shown, |p: &std::path::Path| shown(&p.to_string_lossy()));
        match self {
            Error::Usage(m) => write!(f, "{m}\nTry 'otp-enroll --help'."),
            Error::Syntax(m) => write!(f, "{m}"),
            Error::NotRoot => write!(
                f,
                "only root may act for another user (--user); run it without --user for yourself"
            ),
            Error::NoSuchUser(name) => write!(f, "no such user: {}", sh(name)),
            Error::NotEnrolled { user, path } => write!(
                f,
                "{user} has no two-factor secret ({path} does not exist); set one up with otp-enroll",
                user = sh(user),
                path = sh(path)
            ),
            Error::AlreadyEnrolled { path } => write!(
                f,
                "{}: a secret already exists; use --force to replace it (the old one stops working), or otp-enroll remove",
                sh(path)
            ),
            Error::NoDirectory { path } => write!(
                f,
                "{}: its directory does not exist (is the home directory there? is the config's `secret` template right?)",
                sh(path)
            ),
            Error::CannotSave { path, user, reason } => write!(
                f,
                "cannot save {} as {}: {}; nothing was created and no secret shown",
                sh(path),
                sh(user),
                sh(reason)
            ),
            Error::File { path, err } => {
                let path = &sh(path);
                let hint = match err {
                    FsError::Mode { .. } => format!(" (fix with: chmod 600 {path})"),
                    FsError::Busy => " (a login is in progress; try again)".to_string(),
                    FsError::UnsafeDir {
                        dir,
                        why: DirProblem::GroupWritable { .. } | DirProblem::WorldWritable { .. },
                    } => format!(
                        " (the login would be refused; fix with: chmod go-w {})",
                        shp(dir)
                    ),
                    FsError::UnsafeDir { .. } => " (the login would be refused)".to_string(),
                    _ => String::new(),
                };
                write!(f, "{path}: {}{hint}", sh(&err.to_string()))
            }
            Error::Corrupt { path, err } => write!(
                f,
                "{}: cannot be used ({}); fix it by hand, or replace it with otp-enroll new --force",
                sh(path),
                sh(&err.to_string())
            ),
            Error::SystemStore {
                user,
                reading,
                at_login,
                fleet,
            } => {
                let user = &sh(user);
                let kept = if *fleet {
                    "in the fleet database (store = \"postgresql\")"
                } else {
                    "by the system (store = \"system\")"
                };
                let how = if *at_login {
                    format!("you are set up at your next login, or by an administrator (otp-enroll --user {user} new, or token for a hardware token)")
                } else {
                    format!("an administrator sets you up (otp-enroll --user {user} new, or token for a hardware token), or has you set up at your next login (otp-enroll --user {user} reset)")
                };
                if *reading {
                    write!(
                        f,
                        "your tokens are kept {kept}, where only root can read them: an administrator can show them (otp-enroll --user {user} status); if you have none, {how}"
                    )
                } else {
                    write!(
                        f,
                        "your tokens are kept {kept}, out of your reach: {how}; nothing was changed"
                    )
                }
            }
            Error::RootOnly(what) => write!(
                f,
                "only root may run otp-enroll {what} (nothing was read or changed)"
            ),
            Error::Refused(m) | Error::Failed(m) => write!(f, "{m}"),
            Error::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The inventory's errors are worded (and escaped) by otp-core.
impl From<crate::inventory::InventoryError> for Error {
    fn from(err: crate::inventory::InventoryError) -> Error {
        Error::Failed(err.to_string())
    }
}
