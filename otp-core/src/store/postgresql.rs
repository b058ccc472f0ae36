//! The `postgresql` store: one database for a fleet of hosts.
//!
//! A host never sees a seed. Its role (`pam_otp_host`) may only call the
//! schema's functions (`otp-core/sql/schema.sql`): `login_info` (has the
//! user tokens, how long are their codes, and does grace hold for this
//! login: the database decides, with its own period and clock, for the
//! same service only), `verify_code` (checks a code inside the database,
//! skipping the tokens that are disabled or outside their dates at the
//! database's time, and records its use, the rate limit and the grace
//! address (with the service and the host role) in the same transaction,
//! under a row lock: a code is accepted once across all hosts, and its
//! audit row is written in the same transaction) and `enroll` (a user's
//! first token). A login costs two queries: one `login_info`, one
//! `verify`.
//!
//! A host's store is a [`PgHost`], a [`LoginStore`] only: the host role
//! could not call the admin's functions anyway, and the type has no
//! method that would try. `otp-enroll`, run as root, has a [`PgAdmin`]
//! (an [`AdminStore`]), connected with the admin role (`admin_conninfo`):
//! it reads and writes whole records (`admin_read` under `FOR UPDATE`,
//! `admin_write`) inside one transaction, so an admin's change and a
//! login's verify never interleave.
//!
//! The database's clock decides, not the host's (the store owns the
//! clock: see [`LoginStore`]): every host then agrees on the TOTP step,
//! the lock and the grace period.
//!
//! The audit table ([`crate::audit`]) is written by the schema's functions
//! only: `verify` and `enroll` write their rows themselves, an admin's
//! change is recorded through `admin_record_change` ([`PgAdmin`]'s
//! [`AdminStore::record_change`], or [`PgAudit`] for a change that is no
//! one user's) and read through `admin_audit` ([`PgAudit::page`]).

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::audit::{Change, Entry, Kind, Origin, Query};
use crate::config::Postgresql;
use crate::key;
use crate::otp::Algorithm;
use crate::pq::{Connection, PqError, Rows};
use crate::rate_limit::RateLimit;
use crate::secret_file::{
    Grace, Inactive, Lifecycle, OtpKind, SecretFile, State, TempCode, TempCodeGone, Token,
    TokenState,
};
use crate::verify::{Method, Policy, Refusal, Verdict};

use super::census::{Census, Found, Known, Lock, Summary, TempCodeSummary, TokenSummary};
use super::exempt::{self, Exemption};
use super::orphans::{Kind as OrphanKind, Orphan};
use super::{AdminStore, Held, LoginStore, Presence, Shape, StoreError};

/// The schema this version of pam_otp calls, created and upgraded by
/// `otp-enroll db init`.
pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");
/// The version `pam_otp.meta` holds once [`SCHEMA_SQL`] ran.
pub const SCHEMA_VERSION: i32 = 3;

/// SQLSTATEs meaning "there is no pam_otp schema here yet".
const UNDEFINED_TABLE: &str = "42P01";
const INVALID_SCHEMA: &str = "3F000";
/// The SQLSTATE of a call to a function the schema lacks: an older one.
const UNDEFINED_FUNCTION: &str = "42883";
/// The SQLSTATE of a column a function of the schema does not return (a
/// `login_info` made before it gave the exemption): an older one too.
const UNDEFINED_COLUMN: &str = "42703";

/// What `init_schema` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SchemaChange {
    Created,
    Upgraded {
        from: i32,
    },
    /// At [`SCHEMA_VERSION`] already: nothing changed.
    Current,
}

/// Why `init_schema` changed nothing.
#[derive(Debug)]
pub enum SchemaError {
    /// The database cannot be reached, or refused.
    Database(PqError),
    /// The database's schema is newer than this pam_otp's.
    Newer { version: i32 },
    /// The script failed (its one transaction is rolled back).
    Script(PqError),
    /// After the script, the schema says another version.
    After { version: Option<i32> },
    /// The schema is made, but the record of `db init` could not be
    /// written to the audit.
    Recorded(PqError),
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Database(err) => write!(f, "{err}"),
            SchemaError::Newer { version } => write!(
                f,
                "the database has schema version {version}, newer than this otp-enroll's {SCHEMA_VERSION}"
            ),
            SchemaError::Script(err) => write!(f, "the schema could not be applied: {err}"),
            SchemaError::After { version } => write!(
                f,
                "after the script the schema says version {version:?}, not {SCHEMA_VERSION}"
            ),
            SchemaError::Recorded(err) => write!(
                f,
                "the schema is at version {SCHEMA_VERSION}, but this db init could not be recorded in the audit: {err}"
            ),
        }
    }
}

impl std::error::Error for SchemaError {}

/// Creates or upgrades the fleet database's schema ([`SCHEMA_SQL`], one
/// transaction: a failure leaves the database as it was) through
/// `conninfo`, unless the database's is newer. The script also purges the
/// audit rows past their retention. Then `change` (`db init`, with what it
/// did as its detail) is recorded in the audit through the same
/// connection (the owner's).
pub fn init_schema(
    cfg: &Postgresql,
    conninfo: &str,
    change: &Change,
) -> Result<SchemaChange, SchemaError> {
    let mut conn = Connection::connect(cfg, conninfo).map_err(SchemaError::Database)?;
    let before = schema_version(&mut conn).map_err(SchemaError::Database)?;
    if let Some(version) = before.filter(|&v| v > SCHEMA_VERSION) {
        return Err(SchemaError::Newer { version });
    }
    conn.execute_script(SCHEMA_SQL)
        .map_err(SchemaError::Script)?;
    let after = schema_version(&mut conn).map_err(SchemaError::Database)?;
    if after != Some(SCHEMA_VERSION) {
        return Err(SchemaError::After { version: after });
    }
    let done = match before {
        Some(v) if v == SCHEMA_VERSION => SchemaChange::Current,
        Some(from) => SchemaChange::Upgraded { from },
        None => SchemaChange::Created,
    };
    let detail = match done {
        SchemaChange::Current => format!("at version {SCHEMA_VERSION}"),
        SchemaChange::Upgraded { from } => {
            format!("upgraded from version {from} to {SCHEMA_VERSION}")
        }
        SchemaChange::Created => format!("created version {SCHEMA_VERSION}"),
    };
    let change = Change {
        detail: Some(detail),
        ..change.clone()
    };
    let (sql, params) = record_change_sql(&change);
    let params: Vec<Option<&str>> = params.iter().map(Option::as_deref).collect();
    conn.query(sql, &params).map_err(SchemaError::Recorded)?;
    Ok(done)
}

/// The schema's version, or `None` when there is none yet.
fn schema_version(conn: &mut Connection) -> Result<Option<i32>, PqError> {
    match conn.query("SELECT version FROM pam_otp.meta", &[]) {
        Ok(rows) => Ok(rows.get(0, 0).and_then(|v| v.parse().ok())),
        Err(PqError::Server { sqlstate, .. })
            if sqlstate == UNDEFINED_TABLE || sqlstate == INVALID_SCHEMA =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What `login_info` said, kept for the rest of the login: presence,
/// shape and grace come from one query.
#[derive(Clone, Debug)]
struct LoginInfo {
    presence: Presence,
    digits: Option<u8>,
    /// When the code that grants grace to this login was accepted (the
    /// database decides: its period and clock, the login's service and
    /// address); `None`: no grace.
    grace_at: Option<u64>,
    /// The uid the user's record was made for (`None`: none kept).
    uid: Option<u32>,
    /// The database's time of the query.
    now: u64,
    /// The user's exemption when it holds by the database (its clock, its
    /// `max_exemption`); the login checks the uid and its own maximum.
    exemption: Option<Exemption>,
}

/// What the login asks `login_info` about grace: its service, its
/// address (none: no grace asked) and the host's `grace_period`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ask {
    service: Option<String>,
    from: Option<IpAddr>,
    period: u64,
}

/// One user's record in the fleet database, through one role's
/// connection (made on first use).
struct Db {
    cfg: Postgresql,
    conninfo: String,
    user: String,
    conn: RefCell<Option<Connection>>,
    info: RefCell<Option<LoginInfo>>,
    /// The uid the record was made for, as the first `login_info` said.
    record_uid: RefCell<Option<Option<u32>>>,
    ask: Ask,
    /// The account's uid: written into a new record, checked against the
    /// one a record holds (`None`: not known, not checked).
    uid: Option<u32>,
}

/// A host's view of one user's record: the module's, through the host
/// role (`conninfo`). It is a [`LoginStore`] and nothing more: the
/// admin's methods are not there to call, so no code a host runs can
/// even try to read a record or set a mark.
///
/// ```compile_fail,E0599
/// use otp_core::config::Postgresql;
/// use otp_core::store::{AdminStore, PgHost};
///
/// let host = PgHost::new(&Postgresql::default(), "alice");
/// let _ = host.set_pending(true); // no method `set_pending` on a host
/// ```
///
/// The same lines with the admin role's store, [`PgAdmin`], compile: the
/// type alone is what refuses (E0599, no such method).
///
/// ```no_run
/// use otp_core::config::Postgresql;
/// use otp_core::store::{AdminStore, PgAdmin};
///
/// let admin = PgAdmin::new(&Postgresql::default(), "alice");
/// let _ = admin.set_pending(true);
/// ```
pub struct PgHost {
    db: Db,
}

/// An administrator's view of one user's record (`otp-enroll` as root),
/// through the admin role (`admin_conninfo`): an [`AdminStore`].
pub struct PgAdmin {
    db: Db,
    /// The database's time and longest exemption (seconds), as
    /// `admin_exemptions` last said.
    judged_by: RefCell<Option<(u64, u64)>>,
}

impl PgHost {
    /// The store of `user` in the database `cfg` names, as a host.
    pub fn new(cfg: &Postgresql, user: &str) -> PgHost {
        PgHost {
            db: Db::new(cfg, &cfg.conninfo, user),
        }
    }

    /// The login is through `service`, from `from` (when it has an
    /// address and the host keeps grace), with the host's `period`: the
    /// first `login_info` also says whether grace holds.
    /// The account's uid (see [`SecretFile::uid`]).
    pub fn of_uid(mut self, uid: u32) -> PgHost {
        self.db.uid = Some(uid);
        self
    }

    pub fn asking(mut self, service: &str, from: Option<IpAddr>, period: u64) -> PgHost {
        self.db.ask = Ask {
            service: Some(service.to_string()),
            from,
            period,
        };
        self
    }
}

impl PgAdmin {
    /// The store of `user` in the database `cfg` names, as the admin.
    pub fn new(cfg: &Postgresql, user: &str) -> PgAdmin {
        PgAdmin {
            db: Db::new(cfg, &cfg.admin_conninfo, user),
            judged_by: RefCell::new(None),
        }
    }

    /// The account's uid (see [`SecretFile::uid`]).
    pub fn of_uid(mut self, uid: u32) -> PgAdmin {
        self.db.uid = Some(uid);
        self
    }
}

impl Db {
    fn new(cfg: &Postgresql, conninfo: &str, user: &str) -> Db {
        Db {
            cfg: cfg.clone(),
            conninfo: conninfo.to_string(),
            user: user.to_string(),
            conn: RefCell::new(None),
            info: RefCell::new(None),
            record_uid: RefCell::new(None),
            ask: Ask::default(),
            uid: None,
        }
    }

    /// Refuses a record made for another account of the same name. The
    /// uid `login_info` gave is kept for the whole login (a verify does
    /// not change it), so a second code costs no extra round trip.
    fn check_record_uid(&self) -> Result<(), StoreError> {
        let seen = *self.record_uid.borrow();
        let recorded = match seen {
            Some(uid) => uid,
            None => self.login_info()?.uid,
        };
        super::file::check_uid(recorded, self.uid)
    }

    /// `file` as a new record of this account: with its uid.
    fn stamped(&self, file: &SecretFile) -> SecretFile {
        let mut file = file.clone();
        if self.uid.is_some() {
            file.upgrade();
            file.uid = self.uid;
        }
        file
    }

    fn location(&self) -> String {
        format!("postgresql:{}", self.user)
    }

    /// Runs `sql` on the connection, made on first use. A failed query
    /// drops the connection: the next one starts afresh (and a transaction
    /// left open by an error is rolled back by the server).
    fn query(&self, sql: &str, params: &[Option<&str>]) -> Result<Rows, StoreError> {
        let mut slot = self.conn.borrow_mut();
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(
                Connection::connect(&self.cfg, &self.conninfo).map_err(StoreError::Database)?,
            ),
        };
        match conn.query(sql, params) {
            Ok(rows) => Ok(rows),
            Err(err) => {
                if !matches!(err, PqError::Server { .. }) {
                    *slot = None;
                }
                Err(StoreError::Database(err))
            }
        }
    }

    fn login_info(&self) -> Result<LoginInfo, StoreError> {
        if let Some(info) = self.info.borrow().as_ref() {
            return Ok(info.clone());
        }
        let info = self.login_info_for(&self.ask)?;
        *self.info.borrow_mut() = Some(info.clone());
        self.record_uid.borrow_mut().get_or_insert(info.uid);
        Ok(info)
    }

    /// `login_info` (version 3): whether the user has tokens, and whether
    /// grace holds for `ask`, decided by the database.
    fn login_info_for(&self, ask: &Ask) -> Result<LoginInfo, StoreError> {
        let from = ask.from.map(|a| a.to_string());
        let period = ask.period.to_string();
        let rows = self
            .query(
                "SELECT presence, digits, grace_at, uid, now, exempt_until, exempt_granted, \
                        exempt_by, exempt_reason, exempt_uid FROM pam_otp.login_info($1, $2, $3, $4)",
                &[
                    Some(&self.user),
                    ask.service.as_deref(),
                    from.as_deref(),
                    Some(&period),
                ],
            )
            .map_err(older_schema)?;
        parse_login_info(&rows)
    }

    /// `enroll`: a first record, never replacing one.
    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        let json = record_to_json(&self.stamped(file), false)?;
        let rows = self.query(
            "SELECT pam_otp.enroll($1, $2::jsonb)",
            &[Some(&self.user), Some(&json)],
        )?;
        *self.info.borrow_mut() = None;
        match rows.get(0, 0) {
            Some("created") => Ok(()),
            Some("exists") => Err(StoreError::Exists),
            other => Err(unexpected("enroll", other)),
        }
    }

    /// Reads the user's whole record (admin role), locking it for the
    /// transaction the caller has begun when `lock`.
    fn read_record(&self, lock: bool) -> Result<Option<SecretFile>, StoreError> {
        let rows = self.query(
            "SELECT pam_otp.admin_read($1, $2)",
            &[Some(&self.user), Some(if lock { "true" } else { "false" })],
        )?;
        match rows.get(0, 0) {
            None => Ok(None),
            Some(json) => record_from_json(json).map(Some),
        }
    }

    fn record_change(&self, change: &Change) -> Result<(), StoreError> {
        let (sql, params) = record_change_sql(change);
        let params: Vec<Option<&str>> = params.iter().map(Option::as_deref).collect();
        self.query(sql, &params).map(|_| ()).map_err(older_schema)
    }

    fn write_record(&self, file: &SecretFile) -> Result<(), StoreError> {
        let json = record_to_json(file, false)?;
        self.query(
            "SELECT pam_otp.admin_write($1, $2::jsonb)",
            &[Some(&self.user), Some(&json)],
        )
        .map(|_| ())
    }
}

impl LoginStore for PgHost {
    fn location(&self) -> String {
        self.db.location()
    }

    /// A pending mark set for another account of the name (its uid, kept
    /// since version 3) is no mark, as on the file stores.
    fn presence(&self) -> Result<Presence, StoreError> {
        let info = self.db.login_info()?;
        Ok(match (info.presence, info.uid, self.db.uid) {
            (Presence::Pending, Some(recorded), Some(uid)) if recorded != uid => {
                Presence::OtherAccountsMark {
                    recorded: Some(recorded),
                }
            }
            (p, _, _) => p,
        })
    }

    /// From the `login_info` the login makes anyway: no query of its own,
    /// so an exemption costs no round trip that tells anything.
    fn exemption_now(&self) -> Result<Option<(Exemption, u64)>, StoreError> {
        let info = self.db.login_info()?;
        Ok(info.exemption.map(|e| (e, info.now)))
    }

    /// Emergency codes are not in the shape: they stay in the database,
    /// and so does the temporary code. A `split_pass` stack therefore
    /// splits by the first token's digits only (an emergency code or the
    /// temporary code still works at a prompt of its own).
    fn shape(&self) -> Result<Shape, StoreError> {
        let info = self.db.login_info()?;
        Ok(Shape {
            digits: info.digits.unwrap_or(6),
            scratch_codes: Vec::new(),
            temp_code: None,
        })
    }

    /// One statement: the check, the new state and the audit row (with
    /// `origin`'s service and remote host) in one transaction. The
    /// database skips the tokens that are inactive at its own time: a
    /// host never filters tokens.
    fn verify(
        &self,
        code: &str,
        policy: &Policy,
        grace: Option<(IpAddr, u64)>,
        origin: &Origin<'_>,
    ) -> Result<Verdict, StoreError> {
        let rhost = grace.map(|(from, _)| from.to_string());
        let period = grace.map_or(0, |(_, p)| p).to_string();
        let skew = policy.totp_skew.to_string();
        let window = policy.hotp_window.to_string();
        let max = policy.rate_limit.max_failures.to_string();
        let interval = policy.rate_limit.interval.to_string();
        // A record made for another account of this name accepts nothing.
        self.db.check_record_uid()?;
        let rows = self
            .db
            .query(
                "SELECT verdict, token, detail, why FROM pam_otp.verify_code($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    Some(&self.db.user),
                    Some(code),
                    rhost.as_deref(),
                    Some(&period),
                    Some(&skew),
                    Some(&window),
                    Some(&max),
                    Some(&interval),
                    Some(origin.service),
                    origin.rhost,
                ],
            )
            .map_err(older_schema)?;
        // The user's state changed; what was cached of it is stale.
        *self.db.info.borrow_mut() = None;
        parse_verdict(&rows)
    }

    /// The database decides (its own `grace_period` when shorter than
    /// `period`, its clock, the service), in the `login_info` the login
    /// made first when it asked the same (else in one of its own).
    fn grace(&self, from: IpAddr, service: &str, period: u64) -> Result<Option<u64>, StoreError> {
        let ask = Ask {
            service: Some(service.to_string()),
            from: Some(from),
            period,
        };
        if ask == self.db.ask {
            self.db.check_record_uid()?;
            return Ok(self.db.login_info()?.grace_at);
        }
        Ok(self.db.login_info_for(&ask)?.grace_at)
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.create(file)
    }

    /// `verify_no_token`: the database's limits for an account's failures,
    /// and the same round trip (nothing kept) for a name that is none.
    fn verify_no_token(
        &self,
        code: &str,
        policy: &Policy,
        account: bool,
        origin: &Origin<'_>,
    ) -> Result<Option<Verdict>, StoreError> {
        let skew = policy.totp_skew.to_string();
        let max = policy.rate_limit.max_failures.to_string();
        let interval = policy.rate_limit.interval.to_string();
        let rows = self
            .db
            .query(
                "SELECT verdict, detail FROM pam_otp.verify_no_token($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    Some(&self.db.user),
                    Some(code),
                    Some(&skew),
                    Some(&max),
                    Some(&interval),
                    Some(if account { "true" } else { "false" }),
                    Some(origin.service),
                    origin.rhost,
                ],
            )
            .map_err(older_schema)?;
        parse_no_token_verdict(&rows).map(Some)
    }
}

impl PgAdmin {
    /// The record read under `FOR UPDATE` in a transaction, whoever it
    /// was made for.
    fn open_any(&self) -> Result<Box<dyn Held + '_>, StoreError> {
        self.db.query("BEGIN", &[])?;
        match self.db.read_record(true) {
            Ok(Some(file)) => Ok(Box::new(PgHeld {
                db: &self.db,
                file,
                done: RefCell::new(false),
            })),
            Ok(None) => {
                let _ = self.db.query("ROLLBACK", &[]);
                Err(StoreError::NotFound)
            }
            Err(err) => {
                let _ = self.db.query("ROLLBACK", &[]);
                Err(err)
            }
        }
    }
}

impl AdminStore for PgAdmin {
    fn location(&self) -> String {
        self.db.location()
    }

    fn exists(&self) -> Result<bool, StoreError> {
        Ok(self.db.login_info()?.presence == Presence::Tokens)
    }

    /// [`AdminStore::exists`]: the database has no directories to judge.
    fn anything_there(&self) -> Result<bool, StoreError> {
        self.exists()
    }

    /// No directories: the database is reached (or not) right here.
    fn check_can_save(&self, replace: bool) -> Result<(), StoreError> {
        if self.exists()? && !replace {
            return Err(StoreError::Exists);
        }
        Ok(())
    }

    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError> {
        let held = self.open_any()?;
        super::file::check_uid(held.file().uid, self.db.uid)?;
        Ok(held)
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.create(file)
    }

    /// Whether or not there is one (`otp-enroll new --force`).
    fn replace(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.write_record(&self.db.stamped(file))?;
        self.set_pending(false)
    }

    /// The database holds no record it could not read back: through
    /// [`PgAdmin::open_any`], also a record made for another account of
    /// the same name (that is what removing it is for).
    fn remove(&self) -> Result<(), StoreError> {
        self.open_any()?.remove()
    }

    fn pending(&self) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query("SELECT pam_otp.admin_pending($1)", &[Some(&self.db.user)])?;
        parse_bool(rows.get(0, 0))
    }

    /// With the account's uid (version 3), as the file stores' marks.
    fn set_pending(&self, pending: bool) -> Result<(), StoreError> {
        let uid = self.db.uid.map(|u| u.to_string());
        self.db
            .query(
                "SELECT pam_otp.admin_set_pending($1, $2, $3)",
                &[
                    Some(&self.db.user),
                    Some(if pending { "true" } else { "false" }),
                    uid.as_deref(),
                ],
            )
            .map(|_| ())
            .map_err(older_schema)
    }

    fn exemption(&self) -> Result<Option<Exemption>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT name, uid, until, granted, by, reason, now, max_days FROM pam_otp.admin_exemptions($1)",
                &[Some(&self.db.user)],
            )
            .map_err(older_schema)?;
        *self.judged_by.borrow_mut() = judged_by(&rows);
        Ok(parse_exemptions(&rows)?.into_iter().next().map(|(_, e)| e))
    }

    fn exemption_judged_by(&self) -> Option<(u64, u64)> {
        *self.judged_by.borrow()
    }

    /// Withdrawal only (`None`): an exemption is granted through
    /// [`AdminStore::grant_exemption`], whose time is the database's.
    fn set_exemption(&self, e: Option<&Exemption>) -> Result<bool, StoreError> {
        if let Some(e) = e {
            let ask = exempt::Ask {
                until: Some(e.until),
                now: e.granted,
                max: e.until.saturating_sub(e.granted),
                by: e.by.clone(),
                reason: e.reason.clone(),
                uid: e
                    .uid
                    .ok_or(StoreError::Unsupported("an exemption without a uid"))?,
            };
            return self.grant_exemption(&ask).map(|kept| kept != *e);
        }
        let rows = self
            .db
            .query("SELECT pam_otp.admin_unexempt($1)", &[Some(&self.db.user)])
            .map_err(older_schema)?;
        parse_bool(rows.get(0, 0))
    }

    /// `admin_set_exemption`: `granted` is the database's now, and the end
    /// is refused past its own `max_exemption` (and past `ask.max`).
    fn grant_exemption(&self, ask: &exempt::Ask) -> Result<Exemption, StoreError> {
        let (uid, max) = (ask.uid.to_string(), ask.max.to_string());
        let until = ask.until.map(|u| u.to_string());
        let rows = self
            .db
            .query(
                "SELECT until, granted FROM pam_otp.admin_set_exemption($1, $2, $3, $4, $5, $6)",
                &[
                    Some(&self.db.user),
                    Some(&uid),
                    until.as_deref(),
                    Some(&max),
                    Some(&ask.by),
                    Some(&ask.reason),
                ],
            )
            .map_err(older_schema)?;
        let number = |c: usize, what: &str| -> Result<u64, StoreError> {
            rows.get(0, c)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| unexpected(what, rows.get(0, c)))
        };
        let (until, granted) = (
            number(0, "admin_set_exemption until")?,
            number(1, "admin_set_exemption granted")?,
        );
        // What it kept, `by` as the database stamped it.
        self.exemption()?
            .filter(|e| e.until == until && e.granted == granted)
            .ok_or_else(|| unexpected("admin_exemptions", Some("(not the exemption just granted)")))
    }

    fn clear_unenrolled(&self) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT pam_otp.admin_clear_unenrolled($1)",
                &[Some(&self.db.user)],
            )
            .map_err(older_schema)?;
        parse_bool(rows.get(0, 0))
    }

    /// Through the connection the change was made on.
    fn record_change(&self, change: &Change) -> Result<(), StoreError> {
        self.db.record_change(change)
    }
}

/// The audit table through the admin role (`admin_conninfo`), for what is
/// no one user's: a change to the inventory, `otp-enroll audit`.
pub struct PgAudit {
    db: Db,
}

impl PgAudit {
    pub fn new(cfg: &Postgresql) -> PgAudit {
        PgAudit {
            db: Db::new(cfg, &cfg.admin_conninfo, ""),
        }
    }

    /// [`AdminStore::record_change`] for a change of no one user.
    pub fn record(&self, change: &Change) -> Result<(), StoreError> {
        self.db.record_change(change)
    }

    /// At most `limit` rows `query` asks for, after row `after`, oldest
    /// first.
    pub fn page(&self, query: &Query, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let since = query.since.map(|s| s.to_string());
        let (after, limit) = (after.to_string(), limit.to_string());
        let rows = self
            .db
            .query(
                "SELECT id, at, kind, db_role, client_addr, command, username, token, serial, detail, \
                        service, rhost, result, claimed_uid, claimed_login_uid, claimed_sudo_user, \
                        claimed_host FROM pam_otp.admin_audit($1, $2, $3, $4)",
                &[
                    query.user.as_deref(),
                    since.as_deref(),
                    Some(&after),
                    Some(&limit),
                ],
            )
            .map_err(older_schema)?;
        parse_entries(&rows)
    }
}

/// The whole fleet database for `otp-enroll report`, through the admin
/// role (`admin_conninfo`): one query, `admin_census`, whatever the
/// number of users. The lock is the database's judgement ([`Lock::Judged`]):
/// this host's rate limit under the database's ceilings, by its clock,
/// as `verify` would judge the next code.
pub struct PgCensus {
    db: Db,
    rate_limit: RateLimit,
    judged_by: RefCell<Option<(u64, u64)>>,
}

impl PgCensus {
    pub fn new(cfg: &Postgresql, rate_limit: RateLimit) -> PgCensus {
        PgCensus {
            db: Db::new(cfg, &cfg.admin_conninfo, ""),
            rate_limit,
            judged_by: RefCell::new(None),
        }
    }
}

impl Census for PgCensus {
    /// `admin_exemptions`: every one the database keeps, holding or not.
    fn exemptions(&self) -> Result<Vec<(String, Exemption)>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT name, uid, until, granted, by, reason, now, max_days FROM pam_otp.admin_exemptions(NULL)",
                &[],
            )
            .map_err(older_schema)?;
        *self.judged_by.borrow_mut() = judged_by(&rows);
        parse_exemptions(&rows)
    }

    fn exemption_judged_by(&self) -> Option<(u64, u64)> {
        *self.judged_by.borrow()
    }

    /// Every user with a row in the database (the accounts are not
    /// needed: a record is no account's home).
    /// A record made for another uid than the account of its name has
    /// now (the name deleted and made again) is unreadable, and says why.
    fn census(&self, accounts: &[Account], _: Duration) -> Result<Vec<Known>, StoreError> {
        let max = self.rate_limit.max_failures.to_string();
        let interval = self.rate_limit.interval.to_string();
        let rows = self
            .db
            .query(
                "SELECT name, pending, tokens, emergency_codes, failures, last_failure, \
                        locked_until, uid, temp_code FROM pam_otp.admin_census($1, $2)",
                &[Some(&max), Some(&interval)],
            )
            .map_err(older_schema)?;
        let mut known = parse_census(&rows)?;
        for (r, k) in known.iter_mut().enumerate() {
            let recorded = match rows.get(r, 7) {
                None => None,
                Some(u) => Some(
                    u.parse()
                        .map_err(|_| unexpected("admin_census uid", Some(u)))?,
                ),
            };
            let account = accounts.iter().find(|a| a.name == k.name).map(|a| a.uid);
            if let (Found::Record(_), Err(orphan)) =
                (&k.found, super::file::check_uid(recorded, account))
            {
                k.found = Found::Unreadable(orphan.to_string());
            }
        }
        Ok(known)
    }
}

/// The database's time and longest exemption (seconds) in the first row
/// of `admin_exemptions` (columns 6 and 7), if it has one.
fn judged_by(rows: &Rows) -> Option<(u64, u64)> {
    let now = rows.get(0, 6)?.parse().ok()?;
    let days: u64 = rows.get(0, 7)?.parse().ok()?;
    Some((now, days.saturating_mul(86_400)))
}

/// Rows of `admin_exemptions`: name, uid, until, granted, by, reason.
fn parse_exemptions(rows: &Rows) -> Result<Vec<(String, Exemption)>, StoreError> {
    (0..rows.rows.len())
        .map(|r| {
            let number = |c: usize, what: &str| -> Result<u64, StoreError> {
                rows.get(r, c)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| unexpected(what, rows.get(r, c)))
            };
            let name = rows
                .get(r, 0)
                .ok_or_else(|| unexpected("admin_exemptions name", None))?
                .to_string();
            let uid = u32::try_from(number(1, "admin_exemptions uid")?)
                .map_err(|_| unexpected("admin_exemptions uid", rows.get(r, 1)))?;
            Ok((
                name,
                Exemption {
                    until: number(2, "admin_exemptions until")?,
                    granted: number(3, "admin_exemptions granted")?,
                    by: rows.get(r, 4).unwrap_or("").to_string(),
                    reason: rows.get(r, 5).unwrap_or("").to_string(),
                    uid: Some(uid),
                },
            ))
        })
        .collect()
}

/// What the fleet database holds of each name, with the uid it records
/// (`otp-enroll remove --orphans`), through the admin role.
pub struct PgOrphans {
    db: Db,
}

impl PgOrphans {
    pub fn new(cfg: &Postgresql) -> PgOrphans {
        PgOrphans {
            db: Db::new(cfg, &cfg.admin_conninfo, ""),
        }
    }

    /// `admin_owners`: (name, kind, uid recorded), by name.
    pub fn owners(&self) -> Result<Vec<(String, OrphanKind, Option<u32>)>, StoreError> {
        let rows = self
            .db
            .query("SELECT name, kind, uid FROM pam_otp.admin_owners()", &[])
            .map_err(older_schema)?;
        (0..rows.rows.len())
            .map(|r| {
                let name = rows
                    .get(r, 0)
                    .ok_or_else(|| unexpected("admin_owners name", None))?
                    .to_string();
                let kind = match rows.get(r, 1) {
                    Some("record") => OrphanKind::Record,
                    Some("pending_mark") => OrphanKind::Mark,
                    Some("exemption") => OrphanKind::Exemption,
                    Some("unenrolled_tally") => OrphanKind::Tally,
                    other => return Err(unexpected("admin_owners kind", other)),
                };
                let uid = match rows.get(r, 2) {
                    None => None,
                    Some(u) => Some(
                        u.parse()
                            .map_err(|_| unexpected("admin_owners uid", Some(u)))?,
                    ),
                };
                Ok((name, kind, uid))
            })
            .collect()
    }

    /// `admin_remove_orphan`: removes `o` if it still records the uid it
    /// was found with; the ids of the tokens a record held.
    pub fn remove(&self, o: &Orphan) -> Result<Vec<String>, StoreError> {
        let uid = o.recorded.map(|u| u.to_string());
        let rows = self
            .db
            .query(
                "SELECT array_to_json(pam_otp.admin_remove_orphan($1, $2, $3))",
                &[Some(&o.user), Some(o.kind.as_str()), uid.as_deref()],
            )
            .map_err(older_schema)?;
        match rows.get(0, 0) {
            None => Err(StoreError::NotFound),
            Some(json) => serde_json::from_str(json)
                .map_err(|_| unexpected("admin_remove_orphan", Some(json))),
        }
    }
}

/// A token as `admin_census` gives it: never its secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CensusToken {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    serial: Option<String>,
    created: Option<u64>,
    last_used: Option<u64>,
    disabled: bool,
    not_before: Option<u64>,
    expires: Option<u64>,
}

/// A temporary code as `admin_census` gives it: never the code's hash.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CensusTempCode {
    expires: u64,
    uses_left: u32,
    created: u64,
    created_by: String,
}

impl From<CensusTempCode> for TempCodeSummary {
    fn from(t: CensusTempCode) -> TempCodeSummary {
        TempCodeSummary {
            expires: t.expires,
            uses_left: t.uses_left,
            created: t.created,
            created_by: t.created_by,
        }
    }
}

fn parse_census(rows: &Rows) -> Result<Vec<Known>, StoreError> {
    let number = |r: usize, c: usize, what: &str| -> Result<u64, StoreError> {
        rows.get(r, c)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| unexpected(what, rows.get(r, c)))
    };
    (0..rows.rows.len())
        .map(|r| {
            let name = rows
                .get(r, 0)
                .ok_or_else(|| unexpected("admin_census name", None))?
                .to_string();
            let pending = parse_bool(rows.get(r, 1))?;
            let tokens: Vec<CensusToken> = rows
                .get(r, 2)
                .and_then(|j| serde_json::from_str(j).ok())
                .ok_or_else(|| unexpected("admin_census tokens", Some("(not a token list)")))?;
            // The temporary code (version 3): never its salt or hash.
            let temp_code = match rows.get(r, 8) {
                None => None,
                Some(j) => Some(
                    serde_json::from_str::<CensusTempCode>(j)
                        .map_err(|_| unexpected("admin_census temp_code", Some(j)))?
                        .into(),
                ),
            };
            // A record holds a token or a temporary code (a used-up one
            // included, as the file stores' census reads it).
            let found = if tokens.is_empty() && temp_code.is_none() {
                Found::Nothing
            } else {
                let tokens = tokens
                    .into_iter()
                    .map(|t| {
                        Ok(TokenSummary {
                            kind: match t.kind.as_str() {
                                "totp" => OtpKind::Totp,
                                "hotp" => OtpKind::Hotp,
                                other => return Err(unexpected("admin_census type", Some(other))),
                            },
                            id: t.id,
                            serial: t.serial,
                            created: t.created,
                            last_used: t.last_used,
                            lifecycle: Lifecycle {
                                disabled: t.disabled,
                                not_before: t.not_before,
                                expires: t.expires,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let emergency = number(r, 3, "admin_census emergency_codes")?;
                let failures = number(r, 4, "admin_census failures")?;
                Found::Record(Summary {
                    tokens,
                    scratch_codes: usize::try_from(emergency).unwrap_or(usize::MAX),
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    last_failure: number(r, 5, "admin_census last_failure")?,
                    lock: Lock::Judged(match rows.get(r, 6) {
                        None => None,
                        Some(_) => Some(number(r, 6, "admin_census locked_until")?),
                    }),
                    temp_code,
                })
            };
            Ok(Known {
                name,
                found,
                pending,
            })
        })
        .collect()
}

/// The statement that records `change` and its parameters.
fn record_change_sql(change: &Change) -> (&'static str, [Option<String>; 9]) {
    let c = &change.claims;
    (
        "SELECT pam_otp.admin_record_change($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            Some(change.command.clone()),
            change.user.clone(),
            change.token.clone(),
            change.serial.clone(),
            change.detail.clone(),
            Some(c.uid.to_string()),
            Some(c.login_uid.clone()),
            c.sudo_user.clone(),
            Some(c.host.clone()),
        ],
    )
}

/// A call the database does not know (SQLSTATE 42883), or a column its
/// function does not return (42703): its schema is older than this
/// pam_otp's, which says what to do.
fn older_schema(err: StoreError) -> StoreError {
    match err {
        StoreError::Database(PqError::Server { sqlstate, message })
            if sqlstate == UNDEFINED_FUNCTION || sqlstate == UNDEFINED_COLUMN =>
        {
            StoreError::Database(PqError::Server {
                message: format!(
                    "the database's schema is older than this pam_otp's (version {SCHEMA_VERSION}): run otp-enroll db init of this version ({message})"
                ),
                sqlstate,
            })
        }
        err => err,
    }
}

fn parse_entries(rows: &Rows) -> Result<Vec<Entry>, StoreError> {
    let text = |r: usize, c: usize| rows.get(r, c).map(str::to_string);
    let number = |r: usize, c: usize, what: &str| -> Result<u64, StoreError> {
        rows.get(r, c)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| unexpected(what, rows.get(r, c)))
    };
    (0..rows.rows.len())
        .map(|r| {
            Ok(Entry {
                id: number(r, 0, "admin_audit id")?,
                at: number(r, 1, "admin_audit at")?,
                kind: rows
                    .get(r, 2)
                    .and_then(Kind::parse)
                    .ok_or_else(|| unexpected("admin_audit kind", rows.get(r, 2)))?,
                db_role: rows.get(r, 3).unwrap_or("").to_string(),
                client_addr: text(r, 4),
                command: text(r, 5),
                user: text(r, 6),
                token: text(r, 7),
                serial: text(r, 8),
                detail: text(r, 9),
                service: text(r, 10),
                rhost: text(r, 11),
                result: text(r, 12),
                claimed_uid: match rows.get(r, 13) {
                    None => None,
                    Some(_) => Some(number(r, 13, "admin_audit claimed_uid")?),
                },
                claimed_login_uid: text(r, 14),
                claimed_sudo_user: text(r, 15),
                claimed_host: text(r, 16),
            })
        })
        .collect()
}

/// A record read under `FOR UPDATE` inside a transaction: saved and
/// committed, removed and committed, or rolled back when dropped.
struct PgHeld<'s> {
    db: &'s Db,
    file: SecretFile,
    done: RefCell<bool>,
}

impl PgHeld<'_> {
    fn commit(&self) -> Result<(), StoreError> {
        self.db.query("COMMIT", &[])?;
        *self.done.borrow_mut() = true;
        Ok(())
    }
}

impl Held for PgHeld<'_> {
    fn file(&self) -> &SecretFile {
        &self.file
    }

    fn file_mut(&mut self) -> &mut SecretFile {
        &mut self.file
    }

    fn save(&self) -> Result<(), StoreError> {
        self.db.write_record(&self.file)?;
        self.commit()
    }

    /// A pending mark left (reset marks first) records the account's uid.
    fn remove(self: Box<Self>) -> Result<(), StoreError> {
        let uid = self.db.uid.map(|u| u.to_string());
        self.db
            .query(
                "SELECT pam_otp.admin_remove($1, $2)",
                &[Some(&self.db.user), uid.as_deref()],
            )
            .map_err(older_schema)?;
        self.commit()
    }
}

impl Drop for PgHeld<'_> {
    fn drop(&mut self) {
        if !*self.done.borrow() {
            let _ = self.db.query("ROLLBACK", &[]);
        }
    }
}

fn unexpected(what: &str, got: Option<&str>) -> StoreError {
    StoreError::Database(PqError::Broken(format!(
        "{what}: unexpected answer {got:?} (is the schema the version this pam_otp expects? run otp-enroll db init)"
    )))
}

fn parse_bool(v: Option<&str>) -> Result<bool, StoreError> {
    match v {
        Some("t") => Ok(true),
        Some("f") => Ok(false),
        other => Err(unexpected("a yes/no answer", other)),
    }
}

fn parse_login_info(rows: &Rows) -> Result<LoginInfo, StoreError> {
    let presence = match rows.get(0, 0) {
        Some("tokens") => Presence::Tokens,
        Some("pending") => Presence::Pending,
        Some("nothing") => Presence::Nothing,
        other => return Err(unexpected("login_info", other)),
    };
    let digits = match rows.get(0, 1) {
        None => None,
        Some(d) => Some(
            d.parse()
                .map_err(|_| unexpected("login_info digits", Some(d)))?,
        ),
    };
    let grace_at = match rows.get(0, 2) {
        None => None,
        Some(at) => Some(
            at.parse()
                .map_err(|_| unexpected("login_info grace_at", Some(at)))?,
        ),
    };
    let uid = match rows.get(0, 3) {
        None => None,
        Some(u) => Some(
            u.parse()
                .map_err(|_| unexpected("login_info uid", Some(u)))?,
        ),
    };
    let number = |c: usize, what: &str| -> Result<Option<u64>, StoreError> {
        match rows.get(0, c) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| unexpected(what, Some(v))),
        }
    };
    let now = number(4, "login_info now")?.unwrap_or(0);
    let exemption = match (
        number(5, "login_info exempt_until")?,
        number(6, "login_info exempt_granted")?,
    ) {
        (Some(until), Some(granted)) => Some(Exemption {
            until,
            granted,
            by: rows.get(0, 7).unwrap_or("").to_string(),
            reason: rows.get(0, 8).unwrap_or("").to_string(),
            uid: number(9, "login_info exempt_uid")?
                .map(|u| {
                    u32::try_from(u)
                        .map_err(|_| unexpected("login_info exempt_uid", rows.get(0, 9)))
                })
                .transpose()?,
        }),
        _ => None,
    };
    Ok(LoginInfo {
        presence,
        digits,
        grace_at,
        uid,
        now,
        exemption,
    })
}

fn parse_verdict(rows: &Rows) -> Result<Verdict, StoreError> {
    let token = || rows.get(0, 1).unwrap_or("").to_string();
    let detail = || -> Result<u64, StoreError> {
        rows.get(0, 2)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| unexpected("verify detail", rows.get(0, 2)))
    };
    Ok(match rows.get(0, 0) {
        Some("totp") => Verdict::Accepted(Method::Totp {
            token: token(),
            step: detail()?,
        }),
        Some("hotp") => Verdict::Accepted(Method::Hotp {
            token: token(),
            counter: detail()?,
        }),
        Some("scratch") => Verdict::Accepted(Method::Scratch {
            left: usize::try_from(detail()?).unwrap_or(usize::MAX),
        }),
        // The temporary code of a lost phone: the uses left, and when it
        // expires (in `why`).
        Some("temp_code") => Verdict::Accepted(Method::TempCode {
            left: u32::try_from(detail()?).unwrap_or(u32::MAX),
            expires: rows
                .get(0, 3)
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| unexpected("verify temp_code expires", rows.get(0, 3)))?,
        }),
        Some("temp_code_gone") => Verdict::Refused(Refusal::TempCodeGone(match rows.get(0, 3) {
            Some("used_up") => TempCodeGone::UsedUp,
            Some("expired") => TempCodeGone::Expired(detail()?),
            other => return Err(unexpected("verify why", other)),
        })),
        Some("malformed") => Verdict::Refused(Refusal::Malformed),
        Some("wrong") => Verdict::Refused(Refusal::Wrong),
        Some("replay") => Verdict::Refused(Refusal::Replay),
        Some("exhausted") => Verdict::Refused(Refusal::CounterExhausted),
        Some("locked") => Verdict::Locked {
            retry_in: detail()?,
        },
        // Right only for a token that accepts nothing now (or an
        // emergency code while none is active): the database says why.
        Some("inactive") => Verdict::Inactive {
            token: rows.get(0, 1).map(str::to_string),
            why: match rows.get(0, 3) {
                Some("disabled") => Inactive::Disabled,
                Some("not_yet_valid") => Inactive::NotYetValid(detail()?),
                Some("expired") => Inactive::Expired(detail()?),
                other => return Err(unexpected("verify why", other)),
            },
        },
        // Removed or reset since login_info said it had tokens.
        Some("nothing") => return Err(StoreError::NotFound),
        other => return Err(unexpected("verify", other)),
    })
}

fn parse_no_token_verdict(rows: &Rows) -> Result<Verdict, StoreError> {
    Ok(match rows.get(0, 0) {
        Some("wrong") => Verdict::Refused(Refusal::Wrong),
        Some("malformed") => Verdict::Refused(Refusal::Malformed),
        Some("locked") => Verdict::Locked {
            retry_in: rows
                .get(0, 1)
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| unexpected("verify_no_token detail", rows.get(0, 1)))?,
        },
        // Never an acceptance.
        other => return Err(unexpected("verify_no_token", other)),
    })
}

/// A user's record as the schema's functions take and give it.
#[derive(Serialize, Deserialize)]
struct RecordJson {
    #[serde(default)]
    pending: bool,
    #[serde(default)]
    scratch_codes: Vec<String>,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    last_failure: u64,
    #[serde(default)]
    grace: Vec<Grace>,
    /// Version 3: the account the record was made for.
    #[serde(default)]
    uid: Option<u32>,
    /// Version 3: the temporary code (its salted hash).
    #[serde(default)]
    temp_code: Option<TempCodeJson>,
    tokens: Vec<TokenJson>,
}

/// [`TempCode`] as the schema keeps it: salt and hash in hex.
#[derive(Serialize, Deserialize)]
struct TempCodeJson {
    salt: String,
    hash: String,
    expires: u64,
    uses_left: u32,
    created: u64,
    created_by: String,
}

#[derive(Serialize, Deserialize)]
struct TokenJson {
    id: String,
    #[serde(rename = "type")]
    kind: OtpKind,
    /// The key's bytes in hex.
    secret: String,
    algorithm: Algorithm,
    digits: u8,
    period: u64,
    counter: u64,
    serial: Option<String>,
    created: Option<u64>,
    last_step: Option<u64>,
    drift: i64,
    drift_moved: u64,
    last_used: Option<u64>,
    /// Version 3: the lifecycle (a version 2 schema has none to give).
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    not_before: Option<u64>,
    #[serde(default)]
    expires: Option<u64>,
}

fn record_to_json(file: &SecretFile, pending: bool) -> Result<String, StoreError> {
    let record = RecordJson {
        pending,
        scratch_codes: file.scratch_codes.clone(),
        failures: file.state.failures,
        last_failure: file.state.last_failure,
        grace: file.state.grace.clone(),
        uid: file.uid,
        temp_code: file.temp_code.as_ref().map(|t| TempCodeJson {
            salt: key::encode_hex(&t.salt),
            hash: key::encode_hex(&t.hash),
            expires: t.expires,
            uses_left: t.uses_left,
            created: t.created,
            created_by: t.created_by.clone(),
        }),
        tokens: file
            .tokens
            .iter()
            .map(|t| TokenJson {
                id: t.id.clone(),
                kind: t.kind,
                secret: key::encode_hex(&t.key),
                algorithm: t.algorithm,
                digits: t.digits,
                period: t.period,
                counter: t.counter,
                serial: t.serial.clone(),
                created: t.created,
                last_step: t.state.last_step,
                drift: t.state.drift,
                drift_moved: t.state.drift_moved,
                last_used: t.state.last_used,
                disabled: t.lifecycle.disabled,
                not_before: t.lifecycle.not_before,
                expires: t.lifecycle.expires,
            })
            .collect(),
    };
    serde_json::to_string(&record).map_err(|e| {
        StoreError::Database(PqError::Broken(format!("cannot encode the record: {e}")))
    })
}

/// A record from the database, checked as a secret file would be: the
/// database is trusted like root's files, but a bad row must not become a
/// token that accepts anything.
fn record_from_json(json: &str) -> Result<SecretFile, StoreError> {
    let bad = |why: String| unexpected("admin_read", Some(&why));
    let record: RecordJson = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let tokens = record
        .tokens
        .into_iter()
        .map(|t| {
            Ok(Token {
                key: key::decode_hex(&t.secret)
                    .ok_or_else(|| bad(format!("token {}: secret is not hex", t.id)))?,
                id: t.id,
                kind: t.kind,
                algorithm: t.algorithm,
                digits: t.digits,
                period: t.period,
                counter: t.counter,
                serial: t.serial,
                created: t.created,
                state: TokenState {
                    last_step: t.last_step,
                    drift: t.drift,
                    drift_moved: t.drift_moved,
                    last_used: t.last_used,
                },
                lifecycle: Lifecycle {
                    disabled: t.disabled,
                    not_before: t.not_before,
                    expires: t.expires,
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let temp_code = match record.temp_code {
        None => None,
        Some(t) => Some(TempCode {
            salt: key::decode_hex(&t.salt)
                .ok_or_else(|| bad("temp_code: salt is not hex".into()))?,
            hash: key::decode_hex(&t.hash)
                .ok_or_else(|| bad("temp_code: hash is not hex".into()))?,
            expires: t.expires,
            uses_left: t.uses_left,
            created: t.created,
            created_by: t.created_by,
        }),
    };
    let file = SecretFile {
        version: 2,
        tokens,
        scratch_codes: record.scratch_codes,
        state: State {
            failures: record.failures,
            last_failure: record.last_failure,
            grace: record.grace,
        },
        uid: record.uid,
        temp_code,
    };
    file.check().map_err(StoreError::Malformed)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[Option<&str>]) -> Rows {
        Rows {
            rows: vec![cells.iter().map(|c| c.map(str::to_string)).collect()],
        }
    }

    #[test]
    fn a_census_row_maps_to_the_file_stores_summary_and_a_bad_one_is_refused() {
        let tokens = r#"[{"id": "app", "type": "totp", "serial": null, "created": 1000, "last_used": 5000,
                          "disabled": false, "not_before": null, "expires": null},
                         {"id": "K1", "type": "hotp", "serial": "K1", "created": null, "last_used": null,
                          "disabled": true, "not_before": 100, "expires": 200}]"#;
        let row = |t: &str, locked: Option<&str>| {
            rows(&[
                Some("alice"),
                Some("t"),
                Some(t),
                Some("3"),
                Some("7"),
                Some("900"),
                locked,
                Some("1000"),
            ])
        };
        let known = parse_census(&row(tokens, Some("2000"))).unwrap();
        // A temporary code alone is a record: its summary, never its hash.
        let mut alone = row("[]", None);
        alone.rows[0].push(Some(
            r#"{"expires": 9, "uses_left": 1, "created": 2, "created_by": "root"}"#.into(),
        ));
        let found = parse_census(&alone).map(|k| k[0].found.clone());
        assert!(
            matches!(&found, Ok(Found::Record(s)) if s.tokens.is_empty()
                && s.temp_code == Some(TempCodeSummary { expires: 9, uses_left: 1, created: 2, created_by: "root".into() })),
            "{found:?}"
        );
        alone.rows[0][8] = Some(r#"{"expires": 9, "hash": "00"}"#.into());
        assert!(parse_census(&alone).is_err());
        assert_eq!(
            known,
            [Known {
                name: "alice".into(),
                pending: true,
                found: Found::Record(Summary {
                    tokens: vec![
                        TokenSummary {
                            id: "app".into(),
                            kind: OtpKind::Totp,
                            serial: None,
                            created: Some(1000),
                            last_used: Some(5000),
                            lifecycle: Default::default(),
                        },
                        TokenSummary {
                            id: "K1".into(),
                            kind: OtpKind::Hotp,
                            serial: Some("K1".into()),
                            created: None,
                            last_used: None,
                            lifecycle: Lifecycle {
                                disabled: true,
                                not_before: Some(100),
                                expires: Some(200),
                            },
                        },
                    ],
                    scratch_codes: 3,
                    failures: 7,
                    last_failure: 900,
                    lock: Lock::Judged(Some(2000)),
                    temp_code: None,
                }),
            }]
        );
        // The database's judgement wins over the reader's rate limit.
        if let Found::Record(s) = &known[0].found {
            assert_eq!(s.locked_until(&RateLimit::default(), 5_000_000), Some(2000));
        }
        // No token: a mark only.
        assert_eq!(
            parse_census(&row("[]", None)).unwrap()[0].found,
            Found::Nothing
        );
        // Anything else is the wrong schema, never a guess.
        for bad in [
            r#"[{"id": "app", "type": "sms"}]"#,
            r#"[{"id": "app", "type": "totp", "secret": "07"}]"#,
            "not json",
        ] {
            assert!(parse_census(&row(bad, None)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_verdict_of_the_schema_maps_to_the_rust_one() {
        let cases = [
            (
                rows(&[Some("totp"), Some("phone"), Some("57")]),
                Verdict::Accepted(Method::Totp {
                    token: "phone".into(),
                    step: 57,
                }),
            ),
            (
                rows(&[Some("hotp"), Some("key"), Some("12")]),
                Verdict::Accepted(Method::Hotp {
                    token: "key".into(),
                    counter: 12,
                }),
            ),
            (
                rows(&[Some("scratch"), None, Some("4")]),
                Verdict::Accepted(Method::Scratch { left: 4 }),
            ),
            (
                rows(&[Some("malformed"), None, None]),
                Verdict::Refused(Refusal::Malformed),
            ),
            (
                rows(&[Some("wrong"), None, None]),
                Verdict::Refused(Refusal::Wrong),
            ),
            (
                rows(&[Some("replay"), None, None]),
                Verdict::Refused(Refusal::Replay),
            ),
            (
                rows(&[Some("exhausted"), None, None]),
                Verdict::Refused(Refusal::CounterExhausted),
            ),
            (
                rows(&[Some("locked"), None, Some("90")]),
                Verdict::Locked { retry_in: 90 },
            ),
            (
                rows(&[Some("inactive"), Some("phone"), None, Some("disabled")]),
                Verdict::Inactive {
                    token: Some("phone".into()),
                    why: Inactive::Disabled,
                },
            ),
            (
                rows(&[
                    Some("inactive"),
                    Some("key"),
                    Some("1800000000"),
                    Some("not_yet_valid"),
                ]),
                Verdict::Inactive {
                    token: Some("key".into()),
                    why: Inactive::NotYetValid(1_800_000_000),
                },
            ),
            (
                rows(&[Some("inactive"), None, Some("77"), Some("expired")]),
                Verdict::Inactive {
                    token: None,
                    why: Inactive::Expired(77),
                },
            ),
            (
                rows(&[Some("temp_code"), None, Some("2"), Some("1800000000")]),
                Verdict::Accepted(Method::TempCode {
                    left: 2,
                    expires: 1_800_000_000,
                }),
            ),
            (
                rows(&[Some("temp_code_gone"), None, None, Some("used_up")]),
                Verdict::Refused(Refusal::TempCodeGone(TempCodeGone::UsedUp)),
            ),
            (
                rows(&[Some("temp_code_gone"), None, Some("99"), Some("expired")]),
                Verdict::Refused(Refusal::TempCodeGone(TempCodeGone::Expired(99))),
            ),
        ];
        for (r, want) in cases {
            assert_eq!(parse_verdict(&r).ok(), Some(want));
        }
        assert!(matches!(
            parse_verdict(&rows(&[Some("nothing"), None, None])),
            Err(StoreError::NotFound)
        ));
        // Anything else is an error, never an acceptance.
        for odd in [Some("TOTP"), Some(""), None, Some("accepted")] {
            assert!(matches!(
                parse_verdict(&rows(&[odd, Some("phone"), Some("1")])),
                Err(StoreError::Database(_))
            ));
        }
        assert!(parse_verdict(&rows(&[Some("totp"), Some("phone"), Some("x")])).is_err());
        // An inactive verdict without a reason, or a date where one is
        // needed, is the wrong schema.
        for odd in [
            rows(&[Some("inactive"), Some("phone"), None, None]),
            rows(&[Some("inactive"), Some("phone"), None, Some("expired")]),
            rows(&[Some("inactive"), Some("phone"), None, Some("stolen")]),
            // A temporary code accepted without its expiry or uses, or
            // spent for no reason the schema gives.
            rows(&[Some("temp_code"), None, Some("1"), None]),
            rows(&[Some("temp_code"), None, None, Some("1800000000")]),
            rows(&[Some("temp_code_gone"), None, None, Some("expired")]),
            rows(&[Some("temp_code_gone"), None, None, None]),
        ] {
            assert!(parse_verdict(&odd).is_err());
        }
    }

    #[test]
    fn an_older_schema_is_named_as_such() {
        for (sqlstate, older) in [("42883", true), ("42703", true), ("22023", false)] {
            let err = older_schema(StoreError::Database(PqError::Server {
                sqlstate: sqlstate.into(),
                message: "column \"exempt_until\" does not exist".into(),
            }));
            assert_eq!(
                err.to_string().contains("run otp-enroll db init"),
                older,
                "{sqlstate}: {err}"
            );
        }
    }

    #[test]
    fn exemptions_are_read_with_the_databases_clock_and_maximum() {
        let r = rows(&[
            Some("alice"),
            Some("1001"),
            Some("1800000000"),
            Some("1799000000"),
            Some("db_role=\"ops\""),
            Some(""),
            Some("1799500000"),
            Some("30"),
        ]);
        assert_eq!(judged_by(&r), Some((1_799_500_000, 30 * 86_400)));
        let e = parse_exemptions(&r).ok();
        assert_eq!(
            e.as_deref()
                .map(|e| (e[0].0.as_str(), e[0].1.uid, e[0].1.until)),
            Some(("alice", Some(1001), 1_800_000_000))
        );
        // No row: nothing to judge by; a uid out of range is refused.
        assert_eq!(judged_by(&Rows { rows: Vec::new() }), None);
        let bad = rows(&[
            Some("a"),
            Some("4294967296"),
            Some("2"),
            Some("1"),
            None,
            None,
        ]);
        assert!(parse_exemptions(&bad).is_err());
    }

    #[test]
    fn a_no_token_verdict_is_a_refusal_or_an_error() {
        assert_eq!(
            parse_no_token_verdict(&rows(&[Some("wrong"), None])).ok(),
            Some(Verdict::Refused(Refusal::Wrong))
        );
        assert_eq!(
            parse_no_token_verdict(&rows(&[Some("malformed"), None])).ok(),
            Some(Verdict::Refused(Refusal::Malformed))
        );
        assert_eq!(
            parse_no_token_verdict(&rows(&[Some("locked"), Some("30")])).ok(),
            Some(Verdict::Locked { retry_in: 30 })
        );
        for odd in [Some("totp"), Some("scratch"), None, Some("locked")] {
            assert!(
                parse_no_token_verdict(&rows(&[odd, None])).is_err(),
                "{odd:?}"
            );
        }
    }

    #[test]
    fn login_info_is_read_with_the_databases_grace_decision() {
        let info = |cells: &[Option<&str>]| {
            parse_login_info(&rows(cells))
                .ok()
                .map(|i| (i.presence, i.digits, i.grace_at))
        };
        assert_eq!(
            info(&[Some("tokens"), Some("8"), Some("100")]),
            Some((Presence::Tokens, Some(8), Some(100)))
        );
        assert_eq!(
            info(&[Some("nothing"), None, None]),
            Some((Presence::Nothing, None, None))
        );
        assert!(parse_login_info(&rows(&[Some("yes"), None, None])).is_err());
        assert!(parse_login_info(&rows(&[Some("tokens"), Some("6"), Some("soon")])).is_err());
        // The exemption that holds by the database, with its time.
        let info = parse_login_info(&rows(&[
            Some("tokens"),
            Some("6"),
            None,
            Some("1001"),
            Some("1799999999"),
            Some("1800000000"),
            Some("1799000000"),
            Some("db_role=\"ops\" uid=0"),
            Some("phone lost"),
            Some("1001"),
        ]))
        .ok();
        assert_eq!(
            info.map(|i| (i.now, i.exemption)),
            Some((
                1_799_999_999,
                Some(Exemption {
                    until: 1_800_000_000,
                    granted: 1_799_000_000,
                    by: "db_role=\"ops\" uid=0".into(),
                    reason: "phone lost".into(),
                    uid: Some(1001),
                })
            ))
        );
        for bad in [Some("soon"), Some("-1")] {
            let cells = [
                Some("tokens"),
                Some("6"),
                None,
                None,
                Some("1"),
                bad,
                Some("1"),
                None,
                None,
                Some("1"),
            ];
            assert!(parse_login_info(&rows(&cells)).is_err(), "{bad:?}");
        }
        // The uid the record was made for.
        let info = parse_login_info(&rows(&[Some("tokens"), Some("6"), None, Some("1001")]));
        assert_eq!(info.ok().and_then(|i| i.uid), Some(1001));
        assert!(parse_login_info(&rows(&[Some("tokens"), Some("6"), None, Some("-1")])).is_err());
    }

    #[test]
    fn a_record_survives_the_trip_through_json() {
        let mut token = Token::new("phone", OtpKind::Totp, b"12345678901234567890".to_vec());
        token.state.last_step = Some(9);
        token.state.drift = -2;
        token.created = Some(1);
        let mut hotp = Token::new("OATH1", OtpKind::Hotp, vec![0xff; 20]);
        hotp.counter = 7;
        hotp.serial = Some("OATH1".into());
        hotp.algorithm = Algorithm::SHA512;
        hotp.digits = 8;
        hotp.lifecycle = Lifecycle {
            disabled: true,
            not_before: Some(1_700_000_000),
            expires: Some(1_900_000_000),
        };
        let mut file = SecretFile::with_token(token);
        file.tokens.push(hotp);
        file.upgrade();
        file.scratch_codes = vec!["31415926".into()];
        file.state.failures = 2;
        file.state.last_failure = 77;
        file.uid = Some(1001);
        file.temp_code = Some(TempCode::new(
            "48151623",
            vec![7; 16],
            10,
            1_800_000_000,
            3,
            "root (login uid 1000)".into(),
        ));
        let json = record_to_json(&file, false).ok();
        let back = json.as_deref().map(record_from_json).and_then(Result::ok);
        assert_eq!(back.as_ref(), Some(&file));
        // A temporary code alone (no token) is a record too.
        file.tokens.clear();
        file.scratch_codes.clear();
        let json = record_to_json(&file, false).ok();
        let back = json.as_deref().map(record_from_json).and_then(Result::ok);
        assert!(back
            .as_ref()
            .is_some_and(|b| b.temp_code.as_ref().is_some_and(|t| t.matches("48151623"))));
        assert_eq!(back, Some(file));
    }

    #[test]
    fn a_bad_record_from_the_database_is_refused() {
        let t = r#"{"tokens": [{"id": "p", "type": "totp", "secret": "zz", "algorithm": "SHA1",
            "digits": 6, "period": 30, "counter": 0, "serial": null, "created": null,
            "last_step": null, "drift": 0, "drift_moved": 0, "last_used": null}]}"#;
        assert!(record_from_json(t).is_err());
        let digits = t
            .replace("\"zz\"", "\"3132\"")
            .replace("\"digits\": 6", "\"digits\": 12");
        assert!(record_from_json(&digits).is_err());
        assert!(record_from_json("{}").is_err());
        // No token and no temporary code; a temporary code with a short
        // salt or too many uses.
        assert!(record_from_json(r#"{"tokens": []}"#).is_err());
        let temp = |salt: &str, uses: u32| {
            format!(
                r#"{{"tokens": [], "temp_code": {{"salt": "{salt}", "hash": "{}", "expires": 5,
                    "uses_left": {uses}, "created": 1, "created_by": "root"}}}}"#,
                "ab".repeat(32)
            )
        };
        assert!(record_from_json(&temp(&"07".repeat(16), 1)).is_ok());
        assert!(record_from_json(&temp(&"07".repeat(15), 1)).is_err());
        assert!(record_from_json(&temp(&"07".repeat(16), 21)).is_err());
    }
}
