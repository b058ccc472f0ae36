//! What the audit keeps under `store = "postgresql"` (the table
//! `pam_otp.audit`, otp-core/sql/schema.sql): a change `otp-enroll` made
//! ([`Change`], through [`crate::store::AdminStore::record_change`] or
//! [`crate::store::record_change`]), what a login's verify was about
//! besides the code ([`Origin`], given to [`crate::store::LoginStore::verify`]),
//! and the rows as `otp-enroll audit` reads them ([`Entry`]).
//!
//! The database stamps what it knows itself: when (its own clock), which
//! role connected (`session_user`) and from where (`inet_client_addr()`).
//! What `otp-enroll` says of the process that made a change ([`Claims`]:
//! uid, login uid, `SUDO_USER`, host name) is kept apart, as claims: root
//! can make each of them say anything.
//!
//! The file stores keep no table: each host's syslog (facility authpriv)
//! is their record, one line per login (the module's) and per change
//! (`otp-enroll`'s).

use std::fmt;

/// What a login's `verify` was about besides the code, as the module read
/// it when the login began (PAM items are read once: SECURITY.md): the
/// audit's `service` and `rhost`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `PAM_SERVICE`.
    pub service: &'a str,
    /// `PAM_RHOST`, as given (unset: `None`).
    pub rhost: Option<&'a str>,
}

/// One change `otp-enroll` made: the same fields as its syslog line.
/// Never a seed or a code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The command, as typed on its command line: "remove", "reset",
    /// "inventory import", "db init" (lower-case ASCII letters, digits,
    /// spaces and dashes; the database refuses anything else).
    pub command: String,
    /// The user acted on (none: the inventory, the database).
    pub user: Option<String>,
    /// The token's id.
    pub token: Option<String>,
    /// A hardware token's serial.
    pub serial: Option<String>,
    /// What else the command said (how many tokens an import added, the
    /// store a migration copied into).
    pub detail: Option<String>,
    pub claims: Claims,
}

/// What `otp-enroll` says of the process that made a change: evidence,
/// not proof. The database keeps them in columns named `claimed_*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// The real uid.
    pub uid: u32,
    /// `/proc/self/loginuid` as found ("unset" when the kernel says
    /// 4294967295): the user who logged in, whoever they became since
    /// (root with `CAP_AUDIT_CONTROL` can change it unless it was made
    /// immutable).
    pub login_uid: String,
    /// `SUDO_USER`, when set.
    pub sudo_user: Option<String>,
    /// The host name.
    pub host: String,
}

/// What a row records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A change `otp-enroll` made.
    Change,
    /// A code a host asked the database to check (`verify()`).
    Verify,
    /// A first token created through `enroll()`: at a login (`missing =
    /// "enroll"`, or after `reset`), or by `otp-enroll` for a user who had
    /// none.
    Enroll,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Change => "change",
            Kind::Verify => "verify",
            Kind::Enroll => "enroll",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "change" => Some(Kind::Change),
            "verify" => Some(Kind::Verify),
            "enroll" => Some(Kind::Enroll),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the audit table, as the database keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The row's number: rows are numbered in the order they were written.
    pub id: u64,
    /// Unix seconds, by the database's clock.
    pub at: u64,
    pub kind: Kind,
    /// The database role that connected (`session_user`): the host's
    /// role, the admin's, or the owner's.
    pub db_role: String,
    /// Where that connection came from (none: a Unix socket).
    pub client_addr: Option<String>,
    /// [`Change::command`].
    pub command: Option<String>,
    /// The user acted on, or logging in.
    pub user: Option<String>,
    pub token: Option<String>,
    pub serial: Option<String>,
    pub detail: Option<String>,
    /// A verify's `PAM_SERVICE` (none from a version 1 module).
    pub service: Option<String>,
    /// A verify's `PAM_RHOST`.
    pub rhost: Option<String>,
    /// A verify's verdict (`totp`, `hotp`, `scratch`: accepted; `wrong`,
    /// `replay`, `malformed`, `exhausted`, `locked`, `nothing`: refused),
    /// an enroll's `created`.
    pub result: Option<String>,
    pub claimed_uid: Option<u64>,
    pub claimed_login_uid: Option<String>,
    pub claimed_sudo_user: Option<String>,
    pub claimed_host: Option<String>,
}

/// The verdicts `verify()` records that let a login in.
pub const ACCEPTED: [&str; 3] = ["totp", "hotp", "scratch"];

impl Entry {
    /// For a verify row, whether the code was accepted.
    pub fn accepted(&self) -> Option<bool> {
        match (self.kind, self.result.as_deref()) {
            (Kind::Verify, Some(r)) => Some(ACCEPTED.contains(&r)),
            _ => None,
        }
    }
}

/// Which rows `otp-enroll audit` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Only this user's (`--user`).
    pub user: Option<String>,
    /// Only rows written at or after this Unix time (`--since`).
    pub since: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_only_accepting_verdicts_accept() {
        for k in [Kind::Change, Kind::Verify, Kind::Enroll] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("Verify"), None);
        let mut e = Entry {
            id: 1,
            at: 0,
            kind: Kind::Verify,
            db_role: "web1".into(),
            client_addr: None,
            command: None,
            user: Some("alice".into()),
            token: None,
            serial: None,
            detail: None,
            service: None,
            rhost: None,
            result: Some("wrong".into()),
            claimed_uid: None,
            claimed_login_uid: None,
            claimed_sudo_user: None,
            claimed_host: None,
        };
        assert_eq!(e.accepted(), Some(false));
        e.result = Some("scratch".into());
        assert_eq!(e.accepted(), Some(true));
        e.kind = Kind::Enroll;
        assert_eq!(e.accepted(), None);
    }
}
