//! The `postgresql` store: one database for a fleet of hosts.
//!
//! A host never sees a seed. Its role (`pam_otp_host`) may only call the
//! schema's functions (`otp-core/sql/schema.sql`): `login_info` (has the
//! user tokens, how long are their codes, where were codes accepted
//! recently), `verify` (checks a code inside the database and records
//! its use, the rate limit and the grace address in the same transaction,
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
use crate::grace;
use crate::key;
use crate::otp::Algorithm;
use crate::pq::{Connection, PqError, Rows};
use crate::rate_limit::RateLimit;
use crate::secret_file::{Grace, OtpKind, SecretFile, State, Token, TokenState};
use crate::verify::{Method, Policy, Refusal, Verdict};

use super::census::{Census, Found, Known, Lock, Summary, TokenSummary};
use super::{AdminStore, Held, LoginStore, Presence, Shape, StoreError};

/// The schema this version of pam_otp calls, created and upgraded by
/// `otp-enroll db init`.
pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");
/// The version `pam_otp.meta` holds once [`SCHEMA_SQL`] ran.
pub const SCHEMA_VERSION: i32 = 2;

/// SQLSTATEs meaning "there is no pam_otp schema here yet".
const UNDEFINED_TABLE: &str = "42P01";
const INVALID_SCHEMA: &str = "3F000";
/// The SQLSTATE of a call to a function the schema lacks: an older one.
const UNDEFINED_FUNCTION: &str = "42883";

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
    grace: Vec<Grace>,
    now: u64,
}

/// One user's record in the fleet database, through one role's
/// connection (made on first use).
struct Db {
    cfg: Postgresql,
    conninfo: String,
    user: String,
    conn: RefCell<Option<Connection>>,
    info: RefCell<Option<LoginInfo>>,
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
}

impl PgHost {
    /// The store of `user` in the database `cfg` names, as a host.
    pub fn new(cfg: &Postgresql, user: &str) -> PgHost {
        PgHost {
            db: Db::new(cfg, &cfg.conninfo, user),
        }
    }
}

impl PgAdmin {
    /// The store of `user` in the database `cfg` names, as the admin.
    pub fn new(cfg: &Postgresql, user: &str) -> PgAdmin {
        PgAdmin {
            db: Db::new(cfg, &cfg.admin_conninfo, user),
        }
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
        }
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
        let rows = self.query(
            "SELECT presence, digits, grace, now FROM pam_otp.login_info($1)",
            &[Some(&self.user)],
        )?;
        let info = parse_login_info(&rows)?;
        *self.info.borrow_mut() = Some(info.clone());
        Ok(info)
    }

    /// `enroll`: a first record, never replacing one.
    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        let json = record_to_json(file, false)?;
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

    fn presence(&self) -> Result<Presence, StoreError> {
        self.db.login_info().map(|i| i.presence)
    }

    /// Emergency codes are not in the shape: they stay in the database. A
    /// `split_pass` stack therefore splits by the first token's digits
    /// only (an emergency code still works at a prompt of its own).
    fn shape(&self) -> Result<Shape, StoreError> {
        let info = self.db.login_info()?;
        Ok(Shape {
            digits: info.digits.unwrap_or(6),
            scratch_codes: Vec::new(),
            temp_code: None,
        })
    }

    /// One statement: the check, the new state and the audit row (with
    /// `origin`'s service and remote host) in one transaction.
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
        let rows = self
            .db
            .query(
                "SELECT verdict, token, detail FROM pam_otp.verify($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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

    /// The database's clock decides (`login_info`'s `now`), as in `verify`.
    fn grace(&self, from: IpAddr, period: u64) -> Result<Option<u64>, StoreError> {
        let info = self.db.login_info()?;
        let state = State {
            grace: info.grace,
            ..State::default()
        };
        Ok(grace::granted_at(&state, from, period, info.now))
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.create(file)
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

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.create(file)
    }

    /// Whether or not there is one (`otp-enroll new --force`).
    fn replace(&self, file: &SecretFile) -> Result<(), StoreError> {
        self.db.write_record(file)?;
        self.set_pending(false)
    }

    /// The database holds no record it could not read back: through
    /// [`AdminStore::open`].
    fn remove(&self) -> Result<(), StoreError> {
        self.open()?.remove()
    }

    fn pending(&self) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query("SELECT pam_otp.admin_pending($1)", &[Some(&self.db.user)])?;
        parse_bool(rows.get(0, 0))
    }

    fn set_pending(&self, pending: bool) -> Result<(), StoreError> {
        self.db
            .query(
                "SELECT pam_otp.admin_set_pending($1, $2)",
                &[
                    Some(&self.db.user),
                    Some(if pending { "true" } else { "false" }),
                ],
            )
            .map(|_| ())
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
}

impl PgCensus {
    pub fn new(cfg: &Postgresql, rate_limit: RateLimit) -> PgCensus {
        PgCensus {
            db: Db::new(cfg, &cfg.admin_conninfo, ""),
            rate_limit,
        }
    }
}

impl Census for PgCensus {
    /// Every user with a row in the database (the accounts are not
    /// needed: a record is no account's home).
    fn census(&self, _: &[Account], _: Duration) -> Result<Vec<Known>, StoreError> {
        let max = self.rate_limit.max_failures.to_string();
        let interval = self.rate_limit.interval.to_string();
        let rows = self
            .db
            .query(
                "SELECT name, pending, tokens, emergency_codes, failures, last_failure, \
                        locked_until FROM pam_otp.admin_census($1, $2)",
                &[Some(&max), Some(&interval)],
            )
            .map_err(older_schema)?;
        parse_census(&rows)
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
            let found = if tokens.is_empty() {
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
                            // The fleet schema keeps no lifecycle yet
                            // (issue 31): otp-enroll refuses to set one.
                            lifecycle: Default::default(),
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
                    // Not in the fleet schema yet (issue 31).
                    temp_code: None,
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

/// A call the database does not know (SQLSTATE 42883): its schema is
/// older than this pam_otp's, which says what to do.
fn older_schema(err: StoreError) -> StoreError {
    match err {
        StoreError::Database(PqError::Server { sqlstate, message })
            if sqlstate == UNDEFINED_FUNCTION =>
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

    fn remove(self: Box<Self>) -> Result<(), StoreError> {
        self.db
            .query("SELECT pam_otp.admin_remove($1)", &[Some(&self.db.user)])?;
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
    let grace = match rows.get(0, 2) {
        None => Vec::new(),
        Some(json) => serde_json::from_str(json)
            .map_err(|_| unexpected("login_info grace", Some("(invalid JSON)")))?,
    };
    let now = rows
        .get(0, 3)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| unexpected("login_info now", rows.get(0, 3)))?;
    Ok(LoginInfo {
        presence,
        digits,
        grace,
        now,
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
        Some("malformed") => Verdict::Refused(Refusal::Malformed),
        Some("wrong") => Verdict::Refused(Refusal::Wrong),
        Some("replay") => Verdict::Refused(Refusal::Replay),
        Some("exhausted") => Verdict::Refused(Refusal::CounterExhausted),
        Some("locked") => Verdict::Locked {
            retry_in: detail()?,
        },
        // Removed or reset since login_info said it had tokens.
        Some("nothing") => return Err(StoreError::NotFound),
        other => return Err(unexpected("verify", other)),
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
    tokens: Vec<TokenJson>,
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
}

fn record_to_json(file: &SecretFile, pending: bool) -> Result<String, StoreError> {
    let record = RecordJson {
        pending,
        scratch_codes: file.scratch_codes.clone(),
        failures: file.state.failures,
        last_failure: file.state.last_failure,
        grace: file.state.grace.clone(),
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
                lifecycle: Default::default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let file = SecretFile {
        version: 2,
        tokens,
        scratch_codes: record.scratch_codes,
        state: State {
            failures: record.failures,
            last_failure: record.last_failure,
            grace: record.grace,
        },
        // The fleet schema keeps no temporary code yet (issue 31):
        // otp-enroll temp-code refuses under postgresql.
        temp_code: None,
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
        let tokens = r#"[{"id": "app", "type": "totp", "serial": null, "created": 1000, "last_used": 5000},
                         {"id": "K1", "type": "hotp", "serial": "K1", "created": null, "last_used": null}]"#;
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
                            lifecycle: Default::default(),
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
    }

    #[test]
    fn login_info_is_read_with_its_grace_entries() {
        let info = parse_login_info(&rows(&[
            Some("tokens"),
            Some("8"),
            Some(r#"[{"from": "10.0.0.1", "at": 100}]"#),
            Some("150"),
        ]))
        .ok();
        let info = info.map(|i| (i.presence, i.digits, i.grace, i.now));
        assert_eq!(
            info,
            Some((
                Presence::Tokens,
                Some(8),
                vec![Grace {
                    from: "10.0.0.1".into(),
                    at: 100
                }],
                150
            ))
        );
        assert!(parse_login_info(&rows(&[Some("yes"), None, None, Some("1")])).is_err());
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
        let mut file = SecretFile::with_token(token);
        file.tokens.push(hotp);
        file.upgrade();
        file.scratch_codes = vec!["31415926".into()];
        file.state.failures = 2;
        file.state.last_failure = 77;
        let json = record_to_json(&file, false).ok();
        let back = json.as_deref().map(record_from_json).and_then(Result::ok);
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
    }
}
