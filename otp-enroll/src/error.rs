//! What can go wrong, in words a user understands.

use std::fmt;

use pam_otp::safe_fs::FsError;

#[derive(Debug)]
pub enum Error {
    /// Wrong arguments: exit code 2.
    Usage(String),
    /// Anything else: exit code 1.
    Failed(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    pub fn failed(msg: impl Into<String>) -> Error {
        Error::Failed(msg.into())
    }

    /// A file operation on `path` that failed.
    pub fn file(path: &str, err: FsError) -> Error {
        let hint = match err {
            FsError::Mode { .. } => format!(" (fix with: chmod 600 {path})"),
            FsError::NotFound => " (not enrolled: run otp-enroll)".to_string(),
            FsError::Exists => " (use --force to replace it, or otp-enroll remove)".to_string(),
            _ => String::new(),
        };
        Error::Failed(format!("{path}: {err}{hint}"))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}\nTry 'otp-enroll --help'."),
            Error::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}
