//! `otp-enroll db init [--conninfo C]` (root): create or upgrade the
//! fleet database's schema (`otp-core/sql/schema.sql`, shipped inside the
//! binary, so the schema and the code that calls it are one version).

use otp_core::store::postgresql::{self, SchemaChange, SchemaError, SCHEMA_VERSION};

use crate::audit::{self, Note};
use crate::error::Error;
use crate::output::{quoted, say, shown};

/// Runs the schema script unless the database is newer; the exit code.
pub fn init(
    pg: &otp_core::config::Postgresql,
    conninfo: &str,
    record: &otp_core::audit::Change,
) -> Result<i32, Error> {
    let change = postgresql::init_schema(pg, conninfo, record).map_err(|e| {
        Error::failed(match e {
            SchemaError::Database(e) => format!(
                "db init: {} (connection {}); nothing was changed",
                shown(&e.to_string()),
                quoted(conninfo)
            ),
            e @ SchemaError::Newer { .. } => {
                format!("db init: {e}: nothing was changed (upgrade pam_otp on this host)")
            }
            e @ SchemaError::Script(_) => format!("db init: {e}; nothing was changed"),
            e @ (SchemaError::After { .. } | SchemaError::Recorded(_)) => format!("db init: {e}"),
        })
    })?;
    match &change {
        SchemaChange::Current => {}
        SchemaChange::Upgraded { from } => audit::note(Note::Schema(format!(
            "upgraded from version {from} to {SCHEMA_VERSION}"
        ))),
        SchemaChange::Created => {
            audit::note(Note::Schema(format!("created version {SCHEMA_VERSION}")))
        }
    }
    match change {
        SchemaChange::Current => {
            say!("db init: schema pam_otp is at version {SCHEMA_VERSION}; nothing to change.")
        }
        SchemaChange::Upgraded { from } => {
            say!("db init: schema pam_otp upgraded from version {from} to {SCHEMA_VERSION}.")
        }
        SchemaChange::Created => {
            say!("db init: created schema pam_otp version {SCHEMA_VERSION}, with the roles pam_otp_host and pam_otp_admin.");
            say!("Next: a login role per host, e.g. CREATE ROLE web1 LOGIN IN ROLE pam_otp_host; and one for admins in pam_otp_admin (see the admin guide, \"The fleet\", in /usr/share/doc/libpam-otp/).");
        }
    }
    Ok(0)
}
