//! `otp-enroll remove --orphans` (root): removes what deleted accounts
//! left in root's `state_dir` under their names (issue 31, item 7): the
//! system store's records, exemptions, "enroll at next login" marks and
//! failure tallies of users without a token, each of a name that is no
//! account any more or made for a uid that is not the account's of that
//! name now (otp_core::store::orphans says which). Logins already ignore
//! or refuse them; this clears them, and the audit log records each user.
//!
//! Not under `store = "postgresql"` yet: the fleet database's records
//! carry the uid, but no admin function lists them with it across the
//! fleet's hosts (whose accounts may differ): refused, nothing changed.

use std::path::Path;

use serde::Serialize;

use otp_core::account::{self, Account};
use otp_core::config::{Config, StoreKind};
use otp_core::store::orphans::{self, Kind, Orphan};

use crate::audit::{self, Note};
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
/// lock; the audit line names its tokens), the rest through the core.
fn remove(cfg: &Config, o: &Orphan) -> Result<(), String> {
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
    if cfg.store == StoreKind::Postgresql {
        return Err(Error::failed(
            "remove --orphans: not yet supported with store = \"postgresql\" (nothing was changed)",
        ));
    }
    let found = orphans::find(Path::new(&cfg.state_dir), cfg.store, &account::lookup)
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
