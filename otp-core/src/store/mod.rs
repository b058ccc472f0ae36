//! Where a user's tokens and state live (`store`), behind one seam.
//!
//! The module and every `otp-enroll` command reach a user's tokens through
//! [`Store`], so each store gives the same guarantees: a code is accepted
//! at most once under concurrent logins ([`Store::verify`] holds the
//! user's lock from reading to saving), the rate limit is applied and
//! recorded, and a save that fails leaves the old state and refuses the
//! login ([`StoreError::NotSaved`]).
//!
//! - `home`: the user's own file, the `secret` template ([`FileStore`]
//!   with the user's file-system identity).
//! - `system`: `<state_dir>/users/<user>.toml`, root's ([`FileStore`] as
//!   root): out of the user's reach.
//!
//! - `postgresql`: one database for a fleet ([`PgStore`]): a host asks it
//!   to verify a code ([`Store::verify`]) or to create a user's first
//!   token ([`Store::create`]); it never gets a seed back. Only the
//!   admin's operations ([`Store::open`], used by `otp-enroll` with the
//!   admin role) see a whole record.

mod file;
mod pending;
pub mod postgresql;

use std::fmt;
use std::net::IpAddr;

use crate::account::Account;
use crate::config::{Config, StoreKind};
use crate::pq::PqError;
use crate::safe_fs::FsError;
use crate::secret_file::{SecretFile, SecretFileError};
use crate::verify::{Policy, Verdict};

pub use file::FileStore;
pub use postgresql::PgStore;

/// The directory of `state_dir` that holds the `system` store's files.
pub const USERS_DIR: &str = "users";
/// The directory of `state_dir` that holds the "enroll at next login" marks.
pub const PENDING_DIR: &str = "pending";

/// What a user has in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Presence {
    /// A record with tokens (or something there that the open will judge).
    Tokens,
    /// Nothing: the user has never enrolled (or was removed).
    Nothing,
    /// Nothing, and an admin asked for enrollment at the next login
    /// (`otp-enroll reset`).
    Pending,
}

/// What splitting "password + code" needs to know of a user's tokens: the
/// first token's code length, and the emergency codes left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub digits: u8,
    pub scratch_codes: Vec<String>,
}

#[derive(Debug)]
pub enum StoreError {
    /// The record went away between looking and opening.
    NotFound,
    Unreadable(FsError),
    Malformed(SecretFileError),
    /// A code was checked, but its new state could not be saved: the old
    /// record stays, and the login is refused either way.
    NotSaved {
        verdict: Box<Verdict>,
        err: FsError,
    },
    /// The new state would not make a valid record (it is not written).
    Unwritable {
        verdict: Option<Box<Verdict>>,
        err: SecretFileError,
    },
    /// `create`: the user has a record already.
    Exists,
    /// A new record could not be written.
    NotCreated(FsError),
    /// The "enroll at next login" mark cannot be read or written.
    Pending(FsError),
    /// The fleet database cannot be reached, or refused: the login is
    /// refused (`PAM_AUTHINFO_UNAVAIL`), whatever the code was.
    Database(PqError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => write!(f, "no such file"),
            StoreError::Unreadable(err) => write!(f, "{err}"),
            StoreError::Malformed(err) => write!(f, "{err}"),
            StoreError::NotSaved { verdict, err } => {
                write!(f, "{verdict}, but saving failed: {err}")
            }
            StoreError::Unwritable {
                verdict: Some(verdict),
                err,
            } => write!(f, "{verdict}, but the new state is invalid: {err}"),
            StoreError::Unwritable { verdict: None, err } => {
                write!(f, "the new contents would be invalid: {err}")
            }
            StoreError::Exists => write!(f, "already exists"),
            StoreError::NotCreated(err) => write!(f, "cannot create it: {err}"),
            StoreError::Pending(err) => write!(f, "enrollment mark: {err}"),
            StoreError::Database(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A user's record, read and locked; the lock is held until it is dropped.
pub trait Held {
    fn file(&self) -> &SecretFile;
    fn file_mut(&mut self) -> &mut SecretFile;
    /// Writes [`Held::file`] back atomically (temp file, fsync, rename).
    fn save(&self) -> Result<(), StoreError>;
    /// Deletes the record.
    fn remove(self: Box<Self>) -> Result<(), StoreError>;
}

/// One user's tokens and state, in whatever store the config names.
pub trait Store {
    /// Where the record is, for the log and for messages (a path).
    fn location(&self) -> String;

    /// Whether the user has tokens, none, or none and a pending enrollment.
    fn presence(&self) -> Result<Presence, StoreError>;

    /// How to split "password + code" for this user.
    fn shape(&self) -> Result<Shape, StoreError>;

    /// Checks `code` under the user's lock and saves what changed: the
    /// token's state, the rate limit, and with `grace` = (address, period)
    /// the address a right code came from. A verdict that cannot be saved
    /// is [`StoreError::NotSaved`].
    fn verify(
        &self,
        code: &str,
        policy: &Policy,
        now: u64,
        grace: Option<(IpAddr, u64)>,
    ) -> Result<Verdict, StoreError>;

    /// When a code was accepted from `from` less than `period` s ago.
    fn grace(&self, from: IpAddr, period: u64, now: u64) -> Result<Option<u64>, StoreError>;

    /// Saves the first record of a user who has none (never replaces one:
    /// [`StoreError::Exists`]) and clears a pending enrollment.
    fn create(&self, file: &SecretFile) -> Result<(), StoreError>;

    /// The whole record, locked, for an admin's change (`otp-enroll`).
    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError>;

    /// Whether an admin asked for enrollment at the next login.
    fn pending(&self) -> Result<bool, StoreError>;

    /// Asks for (`true`) or withdraws enrollment at the next login.
    fn set_pending(&self, pending: bool) -> Result<(), StoreError>;
}

/// The store `cfg` names, for `account`, as the module sees it (the
/// database's host role). `secret` overrides the config's template
/// (`otp-enroll --secret-file`; only for `home`).
pub fn for_user(
    cfg: &Config,
    account: &Account,
    secret: Option<&str>,
) -> Result<Box<dyn Store>, StoreError> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => Ok(Box::new(FileStore::new(cfg, account, secret))),
        StoreKind::Postgresql => Ok(Box::new(PgStore::new(
            &cfg.postgresql,
            postgresql::Role::Host,
            &account.name,
        ))),
    }
}
