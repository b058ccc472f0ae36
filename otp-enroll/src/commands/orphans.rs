//! `otp-enroll remove --orphans` (root): removes what deleted accounts
//! left in root's `state_dir` under their names (issue 31, item 7): the
//! system store's records, exemptions, "enroll at next login" marks and
//! failure tallies of users without a token, each of a name that is no
//! account any more or made for a uid that is not the account's of that
//! name now (otp_core::store::orphans says which). Logins already ignore
//! or refuse them; this clears them, and the audit log records each user.
//!
//! Under `store = "postgresql"` the same in the fleet database: its
//! records, marks, exemptions and tallies of users without a token,
//! listed with their uid by the admin role and judged against this
//! host's name service (which must be the fleet's), each removed only
//! while it still records the uid it was found with, and recorded in the
//! audit table as well as the syslog.

use serde::Serialize;

use otp_core::account::{self, Account};
use otp_core::config::{Config, StoreKind};
use otp_core::store::orphans::{self, Kind, Orphan};

use crate::audit::{self, Note, RecordChange};
use crate::error::Error;
use crate::json;
use crate::output::{self, say, shown};
use crate::prompt;

#[derive(Serialize)]
struct OrphanJson {
    user: String,
    kind: &'static str,
    recorded_uid: Option<u32>,
    account_uid: Option<u32>,
    why: String,
    removed: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct Unanswered {
    user: String,
    error: String,
}

#[derive(Serialize)]
struct Doc {
    schema: String,
    store: &'static str,
    orphans: Vec<OrphanJson>,
    unanswered: Vec<Unanswered>,
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Record => "record",
        Kind::Exemption => "exemption",
        Kind::Mark => "\"enroll at next login\" mark",
        Kind::Tally => "failure tally (no token)",
    }
}

/// Removes `o`: a record through the audited admin store (under its
/// lock; the audit line names its tokens), the rest through the core;
/// under postgresql everything through the core (the database removes
/// only what still records the uid it was found with), and each in the
/// audit table too.
fn remove(cfg: &Config, o: &Orphan) -> Result<(), String> {
    if cfg.store == StoreKind::Postgresql {
        let tokens = orphans::remove_one(cfg, o).map_err(|e| match e {
            orphans::RemoveError::Store(otp_core::store::StoreError::NotFound) => {
                "changed since it was listed: left alone".to_string()
            }
            e => e.to_string(),
        })?;
        if o.kind == Kind::Record {
            audit::note(Note::Record {
                user: o.user.clone(),
                store: cfg.store,
                change: RecordChange::Removed,
                tokens,
                serials: Vec::new(),
                emergency_codes: None,
                lockout_cleared: false,
                temp_code: None,
            });
        }
        note(o);
        let mut change =
            crate::commands::audit::change("remove --orphans", Some(&o.user), None, None);
        change.detail = Some(format!("{}: {}", o.kind.as_str(), o.why()));
        return crate::commands::audit::record_global(cfg, &change).map_err(|e| e.to_string());
    }
    if o.kind == Kind::Record {
        // The account the record was made for (the store checks no other
        // uid against it): gone, or of another uid now.
        let owner = Account {
            name: o.user.clone(),
            uid: o.recorded.or(o.account).unwrap_or(u32::MAX),
            gid: u32::MAX,
            home: "/".into(),
        };
        return audit::admin(cfg, &owner, None)
            .remove()
            .map_err(|e| e.to_string());
    }
    orphans::remove_one(cfg, o).map_err(|e| e.to_string())?;
    note(o);
    Ok(())
}

fn note(o: &Orphan) {
    match o.kind {
        // Noted by the audited store.
        Kind::Record => {}
        Kind::Exemption => audit::note(Note::Exemption {
            user: o.user.clone(),
            granted: None,
        }),
        Kind::Mark => audit::note(Note::Pending {
            user: o.user.clone(),
            set: false,
        }),
        // Not a record: no line of its own (as unlock's).
        Kind::Tally => {}
    }
}

/// Exit status 0 when everything found was removed and every name was
/// answered for, 1 otherwise.
pub fn run(cfg: &Config, as_json: bool, yes: bool) -> Result<i32, Error> {
    let found = orphans::find_in(cfg, &account::lookup)
        .map_err(|e| Error::failed(format!("remove --orphans: {}", shown(&e.to_string()))))?;
    if !found.orphans.is_empty()
        && !yes
        && !as_json
        && prompt::stdin_is_terminal()
        && !prompt::confirm(&format!(
            "Remove {} things left by deleted accounts? [y/N] ",
            found.orphans.len()
        ))
    {
        return Err(Error::refused("not removed"));
    }
    let mut out = Vec::new();
    let mut failed = false;
    for o in &found.orphans {
        let result = remove(cfg, o);
        failed |= result.is_err();
        out.push(OrphanJson {
            user: o.user.clone(),
            kind: o.kind.as_str(),
            recorded_uid: o.recorded,
            account_uid: o.account,
            why: o.why(),
            removed: result.is_ok(),
            error: result.err(),
        });
    }
    let code = i32::from(failed || !found.unanswered.is_empty());
    let unanswered: Vec<Unanswered> = found
        .unanswered
        .into_iter()
        .map(|(user, error)| Unanswered { user, error })
        .collect();
    if as_json {
        json::print(&Doc {
            schema: json::schema("remove-orphans"),
            store: cfg.store.as_str(),
            orphans: out,
            unanswered,
        })?;
        return Ok(code);
    }
    for (o, j) in found.orphans.iter().zip(&out) {
        match &j.error {
            None => say!(
                "Removed the {} of {}: {}.",
                what(o.kind),
                shown(&o.user),
                j.why
            ),
            Some(e) => output::warn(format_args!(
                "otp-enroll: the {} of {} ({}) could not be removed: {}",
                what(o.kind),
                shown(&o.user),
                j.why,
                shown(e)
            )),
        }
    }
    for u in &unanswered {
        output::warn(format_args!(
            "otp-enroll: {}: the name service did not answer ({}): left alone",
            shown(&u.user),
            shown(&u.error)
        ));
    }
    if out.is_empty() && unanswered.is_empty() {
        say!("Nothing left by deleted accounts.");
    }
    Ok(code)
}
