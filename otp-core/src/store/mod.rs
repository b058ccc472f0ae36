//! Where a user's tokens and state live (`store`), behind two seams.
//!
//! - [`LoginStore`]: what a login needs (the module). Each store gives the
//!   same guarantees: a code is accepted at most once under concurrent
//!   logins ([`LoginStore::verify`] holds the user's lock from reading to
//!   saving), the rate limit is applied and recorded, and a save that
//!   fails leaves the old state and refuses the login
//!   ([`StoreError::NotSaved`]). [`for_user`] makes one.
//! - [`AdminStore`]: what an administrator does (`otp-enroll`): the whole
//!   record read and written under its lock ([`Held`]), records that do
//!   not parse replaced or removed, the "enroll at next login" marks.
//!   [`admin`] makes one. The vendor token inventory ([`inventory`]) is
//!   the admin's too, in whichever store the config names.
//! - [`Census`]: a whole store at once, for `otp-enroll report`: every
//!   user it holds a record or a mark for, never a key. [`census`] makes
//!   one.
//!
//! The stores:
//! - `home`: the user's own file, the `secret` template (`FileStore` with
//!   the user's file-system identity).
//! - `system`: `<state_dir>/users/<user>.toml`, root's (`FileStore` as
//!   root): out of the user's reach.
//! - `postgresql`: one database for a fleet. A host ([`PgHost`], the host
//!   role) asks it to verify a code or to create a user's first token and
//!   never gets a seed back; it is a [`LoginStore`] only, so it has no
//!   admin method to call. The admin role's store ([`PgAdmin`]) is an
//!   [`AdminStore`].
//!
//! Outside this module a store is a `dyn LoginStore` (the module) or a
//! `dyn AdminStore` (`otp-enroll`, whose tests/seam.rs checks that its
//! source names no store type).
//!
//! The audit ([`crate::audit`]) is the store's too: under `postgresql`
//! each verify writes its row in the transaction that checks the code, and
//! `otp-enroll`'s changes theirs through [`AdminStore::record_change`] or
//! [`record_change`]; [`audit_log`] reads them. The file stores keep none
//! (each host's syslog is their record).

pub mod census;
pub mod exempt;
mod file;
pub mod inventory;
pub mod orphans;
mod pending;
pub mod postgresql;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::account::Account;
use crate::audit::{Change, Entry, Origin, Query};
use crate::config::{Config, StoreKind};
use crate::pq::PqError;
use crate::secret_file::{SecretFile, SecretFileError};
use crate::verify::{Policy, Verdict};

/// The errors a store's file operations give (carried by [`StoreError`]).
pub use crate::safe_fs::{DirProblem, FsError};
pub use census::{census, Census, Found, Known, Lock, Summary, TempCodeSummary, TokenSummary};
use file::FileStore;
pub use postgresql::{PgAdmin, PgAudit, PgCensus, PgHost};

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
    /// Nothing, and a mark made for another account of the name (a
    /// deleted one's, `recorded` its uid; `None`: a uid line that cannot
    /// be read): counts as no mark, and the login says so in the log.
    OtherAccountsMark { recorded: Option<u32> },
}

/// What splitting "password + code" needs to know of a user's tokens: the
/// first token's code length, and the emergency codes left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub digits: u8,
    pub scratch_codes: Vec<String>,
    /// The temporary code (its salted hash), so that "password + code"
    /// ending in it is split there.
    pub temp_code: Option<crate::secret_file::TempCode>,
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
    /// The "enroll at next login" mark (at `mark`) cannot be read or
    /// written.
    Pending {
        mark: PathBuf,
        err: FsError,
    },
    /// A new record could not be made where it goes (found by
    /// [`AdminStore::check_can_save`], before any secret is shown).
    CannotSave(CannotSave),
    /// The fleet database cannot be reached, or refused: the login is
    /// refused (`PAM_AUTHINFO_UNAVAIL`), whatever the code was.
    Database(PqError),
    /// The record was made for another account of the same name (uid
    /// `recorded`; this account's is `uid`): the name was deleted and made
    /// again, and the new account inherits nothing. Refused until an
    /// admin removes the record (`otp-enroll remove`).
    Orphan {
        recorded: u32,
        uid: u32,
    },
    /// An exemption (`otp-enroll exempt`) cannot be read or written.
    Exemption(exempt::ExemptError),
    /// Not kept by this store yet (`what`).
    Unsupported(&'static str),
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
            StoreError::Pending { err, .. } => write!(f, "enrollment mark: {err}"),
            StoreError::CannotSave(why) => write!(f, "cannot save it: {why}"),
            StoreError::Database(err) => write!(f, "{err}"),
            StoreError::Orphan { recorded, uid } => write!(
                f,
                "the record was made for uid {recorded}, but the account of this name is uid {uid} \
                 (the name was deleted and made again?): refused; remove the record with \
                 otp-enroll --user NAME remove"
            ),
            StoreError::Exemption(err) => write!(f, "{err}"),
            StoreError::Unsupported(what) => write!(f, "{what}: not kept by this store yet"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why a new record could not be made where it goes.
#[derive(Debug)]
pub enum CannotSave {
    /// The record's path names no file.
    NotAFilePath,
    NotADirectory(PathBuf),
    /// The directory cannot be looked at as the user.
    Unreachable {
        dir: PathBuf,
        err: io::Error,
    },
    /// The user cannot create a file in the directory (permissions, an
    /// ACL, a read-only file system: tried for real).
    NoCreate {
        dir: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for CannotSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CannotSave::NotAFilePath => write!(f, "not a file path"),
            CannotSave::NotADirectory(dir) => write!(f, "{} is not a directory", dir.display()),
            CannotSave::Unreachable { dir, err } => write!(f, "{}: {err}", dir.display()),
            CannotSave::NoCreate { dir, err } => {
                write!(f, "cannot create files in {} ({err})", dir.display())
            }
        }
    }
}

/// A user's record, read and locked; the lock is held until it is dropped.
pub trait Held {
    fn file(&self) -> &SecretFile;
    fn file_mut(&mut self) -> &mut SecretFile;
    /// Writes [`Held::file`] back atomically (temp file, fsync, rename).
    fn save(&self) -> Result<(), StoreError>;
    /// Deletes the record.
    fn remove(self: Box<Self>) -> Result<(), StoreError>;
}

/// What a login needs of one user's tokens and state, in whatever store
/// the config names: the module's whole view of a store.
///
/// # Whose clock
///
/// The store's. The time a code is checked at, a lock lasts from and a
/// grace period counts from is the one the store keeps: a file store is
/// given the time the module read when the login began ([`for_user`]'s
/// `now`; nothing in the core reads the clock), and the fleet's store
/// uses the database server's, so that every host agrees on the TOTP
/// step, the lock and the grace period. No method takes a time, so no
/// caller's clock can be silently ignored.
pub trait LoginStore {
    /// Where the record is, for the log and for messages (a path).
    fn location(&self) -> String;

    /// Whether the user has tokens, none, or none and a pending
    /// enrollment. A directory that cannot be looked at counts as tokens
    /// (the open after the prompt reports it): whether a user is enrolled
    /// must not show before they are asked for a code.
    fn presence(&self) -> Result<Presence, StoreError>;

    /// How to split "password + code" for this user.
    fn shape(&self) -> Result<Shape, StoreError>;

    /// Checks `code` under the user's lock and saves what changed: the
    /// token's state, the rate limit, and with `grace` = (address, period)
    /// the address a right code came from, for `origin`'s service. A verdict that cannot be saved
    /// is [`StoreError::NotSaved`]. `origin` is what the audit records of
    /// the login besides its verdict (the fleet's store, in the same
    /// transaction; the file stores have no audit table).
    fn verify(
        &self,
        code: &str,
        policy: &Policy,
        grace: Option<(IpAddr, u64)>,
        origin: &Origin<'_>,
    ) -> Result<Verdict, StoreError>;

    /// When a code was accepted from `from` for `service` less than
    /// `period` s ago (under `store = "postgresql"`, the database's own
    /// period when it is shorter).
    fn grace(&self, from: IpAddr, service: &str, period: u64) -> Result<Option<u64>, StoreError>;

    /// Saves the first record of a user who has none (never replaces one:
    /// [`StoreError::Exists`]) and clears a pending enrollment.
    fn create(&self, file: &SecretFile) -> Result<(), StoreError>;

    /// The user's exemption as the store keeps it, when the store decides
    /// whether it holds (the fleet's: the database's clock and its
    /// `max_exemption`, in the query the login makes first), with the
    /// store's time: the login still checks the uid and its own
    /// `max_exemption`. `None` from the file stores, whose exemptions the
    /// login reads from root's `<state_dir>/exempt/` itself.
    fn exemption_now(&self) -> Result<Option<(exempt::Exemption, u64)>, StoreError> {
        Ok(None)
    }

    /// A code typed for a name that has no token (`missing = "deny"`):
    /// `Some` verdict when the store decides it itself (the fleet's: the
    /// database counts an account's failures with its own limits, and
    /// makes the same round trip for a name that is no account, counting
    /// nothing); `None` when the host keeps the tally
    /// (`unenrolled.rs`, the file stores).
    fn verify_no_token(
        &self,
        _code: &str,
        _policy: &Policy,
        _account: bool,
        _origin: &Origin<'_>,
    ) -> Result<Option<Verdict>, StoreError> {
        Ok(None)
    }
}

/// What an administrator does with one user's record (`otp-enroll`, as
/// root, or a user on their own `home` file). Every change is made under
/// the record's lock, so it never interleaves with a login's verify.
pub trait AdminStore {
    /// Where the record is, for messages (a path).
    fn location(&self) -> String;

    /// Whether the user has a record. Unlike [`LoginStore::presence`], a
    /// directory that cannot be looked at is an error (a missing home,
    /// say), never "enrolled".
    fn exists(&self) -> Result<bool, StoreError>;

    /// Whether anything is at the record's place, looked at as its owner,
    /// whatever the directories on the way are like: nothing there is
    /// nothing to copy (`migrate`), even in a directory others may write
    /// to, where [`AdminStore::exists`] refuses to answer.
    fn anything_there(&self) -> Result<bool, StoreError>;

    /// Whether a new record can be saved, checked before a secret is
    /// shown: the directories are made (root's) or checked as a login
    /// will check them, the user can create a file there (tried for real),
    /// and a record already there is one [`AdminStore::replace`] can
    /// replace when `replace`, else [`StoreError::Exists`]. The save
    /// checks everything again.
    fn check_can_save(&self, replace: bool) -> Result<(), StoreError>;

    /// The whole record, read and locked.
    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError>;

    /// [`LoginStore::create`]: a first record, never replacing one.
    fn create(&self, file: &SecretFile) -> Result<(), StoreError>;

    /// Replaces the record under its lock, also one that does not parse,
    /// and withdraws a pending enrollment as [`AdminStore::create`] does.
    fn replace(&self, file: &SecretFile) -> Result<(), StoreError>;

    /// Deletes the record under its lock, also one that does not parse.
    fn remove(&self) -> Result<(), StoreError>;

    /// Whether an admin asked for enrollment at the next login.
    fn pending(&self) -> Result<bool, StoreError>;

    /// Asks for (`true`) or withdraws enrollment at the next login.
    fn set_pending(&self, pending: bool) -> Result<(), StoreError>;

    /// The user's exemption (`otp-enroll exempt`), if one is recorded.
    /// The file stores keep it in root's `<state_dir>/exempt/` (see
    /// [`exempt`]); the fleet's store in the database's
    /// `pam_otp.exemptions`.
    fn exemption(&self) -> Result<Option<exempt::Exemption>, StoreError> {
        Err(StoreError::Unsupported("exemptions"))
    }

    /// Records (`Some`) or withdraws (`None`) the user's exemption;
    /// whether anything changed.
    fn set_exemption(&self, e: Option<&exempt::Exemption>) -> Result<bool, StoreError> {
        let _ = e;
        Err(StoreError::Unsupported("exemptions"))
    }

    /// The time and the longest exemption (seconds) of the store, as of
    /// the last [`AdminStore::exemption`], where the store judges
    /// exemptions itself (the fleet's database: its clock and its own
    /// `max_exemption`); `None` on the file stores, where the caller's
    /// clock and config judge.
    fn exemption_judged_by(&self) -> Option<(u64, u64)> {
        None
    }

    /// Grants the exemption `ask` asks for, at the store's time: a file
    /// store records it as asked ([`exempt::Ask::at_now`]); the fleet's
    /// database stamps `granted` with its own clock and refuses an end
    /// past its own `max_exemption`. The exemption as kept.
    fn grant_exemption(&self, ask: &exempt::Ask) -> Result<exempt::Exemption, StoreError> {
        let e = ask.at_now();
        self.set_exemption(Some(&e))?;
        Ok(e)
    }

    /// Forgets the failure tally of an account without a token (`otp-enroll
    /// unlock`) where the store keeps it (the fleet's database); whether
    /// there was one. The file stores keep it in root's
    /// `<state_dir>/unenrolled/` ([`crate::unenrolled`]), not here.
    fn clear_unenrolled(&self) -> Result<bool, StoreError> {
        Err(StoreError::Unsupported(
            "the tally of a user without a token",
        ))
    }

    /// Records `change`, made to this user's tokens and already done, in
    /// the store's audit: under `postgresql` a row of `pam_otp.audit`
    /// that the database stamps (its time, the admin role, the client's
    /// address); nothing on the file stores, whose record is the syslog
    /// line `otp-enroll` writes. No default: a store that wraps another
    /// (otp-enroll's `audit::Audited`) must pass it on, and a default would
    /// have let it drop the record without a word.
    fn record_change(&self, change: &Change) -> Result<(), StoreError>;
}

/// [`AdminStore::record_change`] for a change that is no one user's (the
/// inventory, `migrate --all`): in the store `cfg` names, through
/// `admin_conninfo`; nothing on the file stores.
pub fn record_change(cfg: &Config, change: &Change) -> Result<(), StoreError> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => Ok(()),
        StoreKind::Postgresql => PgAudit::new(&cfg.postgresql).record(change),
    }
}

/// Where the record of changes and logins is, for `otp-enroll audit`.
pub enum AuditLog {
    /// Each host's syslog (facility authpriv): the file stores.
    Syslog,
    /// The fleet database's audit table, read page by page.
    Table(Box<AuditPages>),
}

/// The audit table's rows that a [`Query`] asks for, oldest first, a page
/// at a time (a year of logins does not fit one answer).
pub struct AuditPages {
    source: PgAudit,
    query: Query,
    after: u64,
    done: bool,
}

/// Rows per page.
const AUDIT_PAGE: u32 = 1000;

impl AuditPages {
    /// The next page; `None` once every row was given.
    pub fn next_page(&mut self) -> Result<Option<Vec<Entry>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = self.source.page(&self.query, self.after, AUDIT_PAGE)?;
        if page.len() < AUDIT_PAGE as usize {
            self.done = true;
        }
        match page.last() {
            Some(last) => {
                self.after = last.id;
                Ok(Some(page))
            }
            None => Ok(None),
        }
    }
}

/// The record of changes and logins in the store `cfg` names, as an
/// administrator reads it (`admin_conninfo`): nothing is read before the
/// first [`AuditPages::next_page`].
pub fn audit_log(cfg: &Config, query: Query) -> AuditLog {
    match cfg.store {
        StoreKind::Home | StoreKind::System => AuditLog::Syslog,
        StoreKind::Postgresql => AuditLog::Table(Box::new(AuditPages {
            source: PgAudit::new(&cfg.postgresql),
            query,
            after: 0,
            done: false,
        })),
    }
}

/// The store `cfg` names, for `account`, as a login sees it (the
/// database's host role) at `now`, the time the module read when the
/// login began (see [`LoginStore`], "Whose clock").
pub fn for_user(cfg: &Config, account: &Account, now: u64) -> Box<dyn LoginStore> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => Box::new(FileStore::new(cfg, account, None).at(now)),
        StoreKind::Postgresql => {
            Box::new(PgHost::new(&cfg.postgresql, &account.name).of_uid(account.uid))
        }
    }
}

/// The fleet's store of `name`, a name that is no account (`None` for the
/// file stores, which have nothing to ask): the login asks the database
/// what it asks for an account, so that the round trips do not tell an
/// invented name from a real one.
pub fn for_nobody(cfg: &Config, name: &str, service: &str) -> Option<Box<dyn LoginStore>> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => None,
        StoreKind::Postgresql => Some(Box::new(PgHost::new(&cfg.postgresql, name).asking(
            service,
            None,
            cfg.grace_period,
        ))),
    }
}

/// [`for_user`] for a login through PAM service `service` from `from`
/// (its address, if it has one): the fleet's store asks the database
/// whether grace holds in the same query that says whether the user has
/// tokens, so a login costs the same round trips with grace or without.
pub fn for_login(
    cfg: &Config,
    account: &Account,
    now: u64,
    service: &str,
    from: Option<IpAddr>,
) -> Box<dyn LoginStore> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => for_user(cfg, account, now),
        StoreKind::Postgresql => Box::new(
            PgHost::new(&cfg.postgresql, &account.name)
                .of_uid(account.uid)
                .asking(
                    service,
                    from.filter(|_| cfg.grace_period > 0),
                    cfg.grace_period,
                ),
        ),
    }
}

/// The store `cfg` names, for `account`, as an administrator sees it (the
/// database's admin role, `admin_conninfo`). `secret` overrides the
/// config's `secret` template (`otp-enroll --secret-file`; `home` only).
pub fn admin(cfg: &Config, account: &Account, secret: Option<&str>) -> Box<dyn AdminStore> {
    match cfg.store {
        StoreKind::Home | StoreKind::System => Box::new(FileStore::new(cfg, account, secret)),
        StoreKind::Postgresql => {
            Box::new(PgAdmin::new(&cfg.postgresql, &account.name).of_uid(account.uid))
        }
    }
}
