//! One file per subcommand.

pub mod audit;
pub mod db;
pub mod import_google;
pub mod inventory;
pub mod lifecycle;
pub mod list;
pub mod migrate;
pub mod new;
pub mod orphans;
pub mod remove;
pub mod report;
pub mod reset;
pub mod resync;
pub mod rollout;
pub mod scratch;
pub mod status;
pub mod tempcode;
pub mod token;
pub mod unlock;

use otp_core::config::{Missing, StoreKind};

use crate::cli::Command;
use crate::error::Error;
use crate::inventory::is_root;
use crate::target::Target;

/// Runs one subcommand for `t` at Unix time `now`; the exit code.
pub fn run(t: &Target, command: Command, now: u64) -> Result<i32, Error> {
    if !t.is_home() && !is_root() {
        // Root's record: a plain user can neither read nor change it. Said
        // before anything is made or shown (no secret is ever printed).
        if let Command::New(o) = &command {
            // The login hook (profile.d): nothing to do in a shell here.
            if o.if_missing {
                return Ok(0);
            }
        }
        return Err(Error::SystemStore {
            user: t.account.name.clone(),
            reading: matches!(command, Command::List { .. } | Command::Status { .. }),
            at_login: t.config.missing == Missing::Enroll,
            fleet: t.config.store == StoreKind::Postgresql,
        });
    }
    let change = audit::change_of(t, &command);
    match command {
        Command::New(o) => new::run(t, o, now)?,
        Command::Token(o) => token::run(t, o, now)?,
        Command::Resync {
            token,
            codes: (c1, c2),
        } => resync::run(t, token.as_deref(), &c1, &c2)?,
        Command::List { json } => {
            if !list::run(t, json, now)? {
                return Ok(1);
            }
        }
        Command::Status { json, .. } => {
            if !status::run(t, now, json)? {
                return Ok(1);
            }
        }
        Command::Scratch(n) => scratch::run(t, n)?,
        Command::Unlock => unlock::run(t)?,
        Command::Remove { token, yes, force } => remove::run(t, token, yes, force)?,
        Command::ImportGoogle { path, force } => import_google::run(t, path, force, now)?,
        Command::Reset { yes } => reset::run(t, yes)?,
        Command::Disable { token, disable } => lifecycle::disable(t, &token, disable)?,
        Command::Expire { token, date } => lifecycle::expire(t, &token, &date, now)?,
        Command::TempCode(o) => tempcode::run(t, &o, now)?,
        Command::Require => rollout::require(t, now)?,
        Command::Exempt { until, reason } => {
            rollout::exempt(t, until.as_deref(), reason.as_deref(), now)?
        }
        Command::Unexempt => rollout::unexempt(t)?,
        Command::Inventory(c) => return inventory::run(&t.config, c, now),
        // main.rs runs it (no single target).
        Command::Migrate { .. }
        | Command::Report { .. }
        | Command::RemoveOrphans { .. }
        | Command::DbInit { .. }
        | Command::Audit { .. }
        | Command::Help(_)
        | Command::Generate(_) => {}
    }
    // The fleet's audit row, for a command that changed something (the
    // same notes as the syslog line's).
    if let Some(change) = change.filter(|_| crate::audit::changed_anything()) {
        audit::record(t, &change)?;
    }
    Ok(0)
}
