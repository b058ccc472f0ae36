//! `otp-enroll db init [--conninfo C]` (root): create or upgrade the
//! fleet database's schema (`otp-core/sql/schema.sql`, shipped inside the
//! binary, so the schema and the code that calls it are one version).

use otp_core::pq::{Connection, PqError};
use otp_core::store::postgresql::{SCHEMA_SQL, SCHEMA_VERSION};

use crate::error::Error;
use crate::output::{quoted, say, shown};

/// SQLSTATEs meaning "there is no pam_otp schema here yet".
const UNDEFINED_TABLE: &str = "42P01";
const INVALID_SCHEMA: &str = "3F000";

/// Runs the schema script unless the database is newer; the exit code.
pub fn init(pg: &otp_core::config::Postgresql, conninfo: &str) -> Result<i32, Error> {
    let fail = |e: PqError| {
        Error::failed(format!(
            "db init: {} (connection {}); nothing was changed",
            shown(&e.to_string()),
            quoted(conninfo)
        ))
    };
    let mut conn = Connection::connect(pg, conninfo).map_err(fail)?;
    let before = version(&mut conn).map_err(fail)?;
    if let Some(v) = before.filter(|&v| v > SCHEMA_VERSION) {
        return Err(Error::failed(format!(
            "db init: the database has schema version {v}, newer than this otp-enroll's {SCHEMA_VERSION}: nothing was changed (upgrade pam_otp on this host)"
        )));
    }
    // One transaction (the script's own BEGIN/COMMIT): a failure leaves
    // the database as it was.
    conn.execute_script(SCHEMA_SQL).map_err(|e| {
        Error::failed(format!(
            "db init: the schema could not be applied: {e}; nothing was changed"
        ))
    })?;
    let after = version(&mut conn).map_err(fail)?;
    if after != Some(SCHEMA_VERSION) {
        return Err(Error::failed(format!(
            "db init: after the script the schema says version {after:?}, not {SCHEMA_VERSION}"
        )));
    }
    match before {
        Some(v) if v == SCHEMA_VERSION => {
            say!("db init: schema pam_otp is at version {v}; nothing to change.")
        }
        Some(v) => say!("db init: schema pam_otp upgraded from version {v} to {SCHEMA_VERSION}."),
        None => {
            say!("db init: created schema pam_otp version {SCHEMA_VERSION}, with the roles pam_otp_host and pam_otp_admin.");
            say!("Next: a login role per host, e.g. CREATE ROLE web1 LOGIN IN ROLE pam_otp_host; and one for admins in pam_otp_admin (see the admin guide, \"The fleet\", in /usr/share/doc/libpam-otp/).");
        }
    }
    Ok(0)
}

/// The schema's version, or `None` when there is none yet.
fn version(conn: &mut Connection) -> Result<Option<i32>, PqError> {
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
