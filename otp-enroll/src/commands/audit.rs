//! `otp-enroll audit [--user NAME] [--since DATE] [--json]` (root): the
//! record of changes and logins. Under `store = "postgresql"` it is the
//! fleet database's audit table (`otp_core::audit`), read page by page
//! through the admin role; the file stores keep none, and the command
//! says where their record is (each host's syslog) and exits 0: that is
//! the answer, not a failure.
//!
//! Also here until the syslog line of every change shares its place: the
//! audit row of each change otp-enroll makes ([`record`],
//! [`record_global`]), with what otp-enroll says of its caller
//! ([`claims`]).

use otp_core::account;
use otp_core::audit::{Change, Claims, Entry, Query};
use otp_core::config::Config;
use otp_core::store::{self, AuditLog};
use otp_enroll::vendor::datetime;

use crate::cli::{Command, InventoryCommand};
use crate::error::Error;
use crate::output::{quoted, say, shown};
use crate::target::Target;

/// The JSON object's `schema`.
pub const SCHEMA: &str = "otp-enroll.audit/1";

/// `/proc/self/loginuid`'s value when no login set it.
const LOGINUID_UNSET: &str = "4294967295";

/// What otp-enroll says of the process running it: the real uid, the
/// login uid as found ("unset", or "unreadable" when the file cannot be
/// read), `SUDO_USER`, the host name. Claims: root can make each say
/// anything.
pub fn claims() -> Claims {
    let login_uid = match std::fs::read_to_string("/proc/self/loginuid") {
        Ok(v) if v.trim() == LOGINUID_UNSET => "unset".to_string(),
        Ok(v) => v.trim().to_string(),
        Err(_) => "unreadable".to_string(),
    };
    Claims {
        uid: nix::unistd::getuid().as_raw(),
        login_uid,
        sudo_user: std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty()),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// A change to `user`'s tokens (or of no one user's), with [`claims`].
pub fn change(
    command: &str,
    user: Option<&str>,
    token: Option<&str>,
    serial: Option<&str>,
) -> Change {
    Change {
        command: command.to_string(),
        user: user.map(str::to_string),
        token: token.map(str::to_string),
        serial: serial.map(str::to_string),
        detail: None,
        claims: claims(),
    }
}

/// The change `command` makes to `t`'s tokens, if it makes one (`list`
/// and `status` read only).
pub fn change_of(t: &Target, command: &Command) -> Option<Change> {
    let user = Some(t.account.name.as_str());
    let (name, token, serial) = match command {
        Command::New(o) => ("new", o.id.as_deref(), None),
        Command::Token(o) => ("token", None, o.serial.as_deref()),
        Command::Resync { token, .. } => ("resync", token.as_deref(), None),
        Command::Scratch(_) => ("scratch", None, None),
        Command::Unlock => ("unlock", None, None),
        Command::Remove { token, .. } => ("remove", token.as_deref(), None),
        Command::ImportGoogle { .. } => ("import-google", None, None),
        Command::Reset { .. } => ("reset", None, None),
        Command::Require => ("require", None, None),
        Command::Exempt { .. } => ("exempt", None, None),
        Command::Unexempt => ("unexempt", None, None),
        Command::Disable { token, disable } => (
            if *disable { "disable" } else { "enable" },
            Some(token.as_str()),
            None,
        ),
        Command::Expire { token, .. } => ("expire", Some(token.as_str()), None),
        Command::TempCode(o) => {
            // What was made (never the code) or that it was revoked.
            let mut c = change("temp-code", user, None, None);
            c.detail = Some(if o.revoke {
                "revoke".to_string()
            } else {
                format!("uses={} valid={}s", o.uses, o.valid)
            });
            return Some(c);
        }
        _ => return None,
    };
    Some(change(name, user, token, serial))
}

/// The change an inventory command makes (`list` reads only).
pub fn inventory_change(command: &InventoryCommand) -> Option<Change> {
    match command {
        InventoryCommand::Import(o) => {
            let mut c = change("inventory import", None, None, None);
            c.detail = Some(o.file.clone());
            Some(c)
        }
        InventoryCommand::Remove { serial } => {
            Some(change("inventory remove", None, None, Some(serial)))
        }
        InventoryCommand::List { .. } => None,
    }
}

fn not_recorded(what: &str, err: impl std::fmt::Display) -> Error {
    Error::failed(format!(
        "{what} was done, but it could not be recorded in the audit: {}",
        shown(&err.to_string())
    ))
}

/// Records `change`, made to `t`'s tokens and done, in the store's audit
/// (nothing on the file stores).
pub fn record(t: &Target, change: &Change) -> Result<(), Error> {
    t.store
        .record_change(change)
        .map_err(|e| not_recorded(&change.command, e))
}

/// [`record`] for a change of no one user's (the inventory, migrate).
pub fn record_global(cfg: &Config, change: &Change) -> Result<(), Error> {
    store::record_change(cfg, change).map_err(|e| not_recorded(&change.command, e))
}

/// `--since`: `YYYY-MM-DD` (that day, 00:00 UTC) or an RFC 3339 time
/// with `Z` or an offset; Unix seconds. Nothing reads `TZ`.
pub fn parse_since(text: &str) -> Option<u64> {
    let t = if text.len() == 10 && !text.contains('T') {
        datetime::parse(&format!("{text}T00:00:00Z"))?
    } else {
        // A time without a zone would be a guess: refused.
        let (_, time) = text.split_once('T')?;
        if !(time.ends_with('Z') || time.contains('+') || time.contains('-')) {
            return None;
        }
        datetime::parse(text)?
    };
    u64::try_from(t).ok()
}

/// Runs `audit` for `query` on `cfg`'s store; the exit code.
pub fn run(cfg: &Config, query: Query, json: bool) -> Result<i32, Error> {
    if let Some(u) = &query.user {
        if !account::plausible_user_name(u) {
            return Err(Error::usage(format!(
                "{} is not a valid user name",
                quoted(u)
            )));
        }
    }
    let store_name = cfg.store.as_str();
    // "schema" first (the JSON convention); serde_json's own maps sort
    // their keys, so the envelope is written in order here.
    let head = |record: &str| {
        format!(
            "{{\"schema\":{},\"store\":{},\"record\":{},\"facility\":{},\"user\":{},\"since\":{}",
            serde_json::Value::from(SCHEMA),
            serde_json::Value::from(store_name),
            serde_json::Value::from(record),
            if record == "syslog" {
                serde_json::Value::from("authpriv")
            } else {
                serde_json::Value::Null
            },
            serde_json::Value::from(query.user.clone()),
            serde_json::Value::from(query.since),
        )
    };
    let mut pages = match store::audit_log(cfg, query.clone()) {
        AuditLog::Syslog => {
            if json {
                say!("{},\"entries\":null}}", head("syslog"));
            } else {
                say!(
                    "otp-enroll audit: store = \"{store_name}\" keeps no audit table: the record is each host's syslog, facility authpriv (journalctl SYSLOG_FACILITY=10, or /var/log/auth.log): a line from pam_otp for each login, one from otp-enroll for each change."
                );
            }
            return Ok(0);
        }
        AuditLog::Table(pages) => pages,
    };
    let failed = |e: otp_core::store::StoreError| {
        Error::failed(format!(
            "postgresql:audit: {} (admin_conninfo = {})",
            shown(&e.to_string()),
            quoted(&cfg.postgresql.admin_conninfo)
        ))
    };
    // The first page before any output: a database that cannot be
    // reached prints nothing but the error. The rows are streamed (a
    // year of logins is more than a page, or memory, holds); a page that
    // fails later leaves the output cut short, and the exit status 1.
    let mut page = pages.next_page().map_err(failed)?;
    let mut count = 0usize;
    if json {
        crate::output::write(format_args!("{},\"entries\":[", head("table")))?;
    }
    while let Some(rows) = page {
        for e in &rows {
            if json {
                let sep = if count == 0 { "" } else { "," };
                crate::output::write(format_args!("{sep}\n{}", entry_json(e)))?;
            } else {
                say!("{}", entry_line(e));
            }
            count += 1;
        }
        page = pages.next_page().map_err(failed)?;
    }
    if json {
        say!("\n]}}");
    } else {
        say!("{count} row{}", if count == 1 { "" } else { "s" });
    }
    Ok(0)
}

/// One row as a JSON object: exact values, JSON-escaped.
pub fn entry_json(e: &Entry) -> serde_json::Value {
    let claims = e.claimed_login_uid.is_some()
        || e.claimed_uid.is_some()
        || e.claimed_host.is_some()
        || e.claimed_sudo_user.is_some();
    serde_json::json!({
        "id": e.id,
        "at": e.at,
        "kind": e.kind.as_str(),
        "db_role": e.db_role,
        "client_addr": e.client_addr,
        "command": e.command,
        "user": e.user,
        "token": e.token,
        "serial": e.serial,
        "detail": e.detail,
        "service": e.service,
        "rhost": e.rhost,
        "result": e.result,
        "accepted": e.accepted(),
        "claims": if claims {
            serde_json::json!({
                "uid": e.claimed_uid,
                "login_uid": e.claimed_login_uid,
                "sudo_user": e.claimed_sudo_user,
                "host": e.claimed_host,
            })
        } else {
            serde_json::Value::Null
        },
    })
}

/// One row as a line: the time (UTC), the kind, then `key="value"`
/// pairs as the log writes them (everything from input escaped).
pub fn entry_line(e: &Entry) -> String {
    let mut line = format!(
        "{} {}",
        datetime::format(i64::try_from(e.at).unwrap_or(i64::MAX)),
        e.kind
    );
    let mut put = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            line.push_str(&format!(" {key}={}", quoted(v)));
        }
    };
    put("command", &e.command);
    put("user", &e.user);
    put("token", &e.token);
    put("serial", &e.serial);
    put("result", &e.result);
    put("service", &e.service);
    put("rhost", &e.rhost);
    put("detail", &e.detail);
    put("db_role", &Some(e.db_role.clone()));
    put(
        "from",
        &Some(e.client_addr.clone().unwrap_or_else(|| "socket".into())),
    );
    put("claimed_uid", &e.claimed_uid.map(|u| u.to_string()));
    put("claimed_login_uid", &e.claimed_login_uid);
    put("claimed_sudo_user", &e.claimed_sudo_user);
    put("claimed_host", &e.claimed_host);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::audit::Kind;

    #[test]
    fn since_is_a_utc_day_or_a_time_with_its_zone() {
        assert_eq!(parse_since("2026-05-31"), Some(1_780_185_600));
        assert_eq!(parse_since("2026-05-31T00:00:00Z"), Some(1_780_185_600));
        assert_eq!(
            parse_since("2026-05-31T02:00:00+02:00"),
            Some(1_780_185_600)
        );
        assert_eq!(
            parse_since("2026-05-30T19:30:00-04:30"),
            Some(1_780_185_600)
        );
        for bad in [
            "",
            "2026-5-31",
            "2026-02-30",
            "2026-05-31T00:00:00",
            "2026-05-31 00:00:00Z",
            "31.05.2026",
            "1969-12-31",
            "yesterday",
        ] {
            assert_eq!(parse_since(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_row_is_one_line_with_its_input_escaped_and_exact_in_json() {
        let e = Entry {
            id: 7,
            at: 1_780_185_600,
            kind: Kind::Change,
            db_role: "ops".into(),
            client_addr: None,
            command: Some("remove".into()),
            user: Some("al\"ice\n".into()),
            token: Some("phone".into()),
            serial: None,
            detail: None,
            service: None,
            rhost: None,
            result: None,
            claimed_uid: Some(0),
            claimed_login_uid: Some("1000".into()),
            claimed_sudo_user: Some("bob".into()),
            claimed_host: Some("adm1".into()),
        };
        let line = entry_line(&e);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.starts_with(
                r#"2026-05-31T00:00:00Z change command="remove" user="al\x22ice\x0a""#
            ),
            "{line}"
        );
        assert!(line.contains(" from=\"socket\""), "{line}");
        assert!(line.contains(" claimed_login_uid=\"1000\""), "{line}");
        let j = entry_json(&e);
        assert_eq!(j["user"], "al\"ice\n");
        assert_eq!(j["claims"]["sudo_user"], "bob");
        assert_eq!(j["claims"]["uid"], 0);
        assert_eq!(j["accepted"], serde_json::Value::Null);
        assert_eq!(j["at"], 1_780_185_600u64);
    }
}
