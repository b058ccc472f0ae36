//! `otp-enroll migrate --to system|postgresql (--user NAME | --all)`
//! (root): copy users' `home` files into the `system` store or the fleet
//! database (through the admin role, `admin_conninfo`).
//!
//! Each home file is read as the module reads it under `store = "home"`
//! (the config's `secret` template, the user's identity, no symlinks, the
//! directory checks), under its lock, and written with `AdminStore::create`
//! into `<state_dir>/users/` or the database, which never replaces a
//! record: a user who has one there keeps it. The copy is read back and compared; one that
//! does not read back the same is removed again. Home files stay where
//! they are, and so do the "enroll at next login" marks (they belong to
//! no store).

use otp_core::account::{self, Account};
use otp_core::config::{Config, StoreKind};
use otp_core::secret_file::SecretFile;
use otp_core::store::StoreError;

use crate::cli::MigrateTo;
use crate::commands::reset::count;
use crate::error::Error;
use crate::output::say;
use crate::target;

/// What became of one user.
enum Outcome {
    Copied(String),
    NoHomeFile(String),
    AlreadyThere(String),
    /// Not copied (or the copy undone) for a reason the admin must see.
    Skipped(String),
}

/// Migrates `user`, or with `all` every account; the exit code.
pub fn run(cfg: &Config, user: Option<&str>, all: bool, to: MigrateTo) -> Result<i32, Error> {
    let accounts = match (user, all) {
        (Some(name), false) => vec![target::account(Some(name), target::invoker()?)?],
        (None, true) => account::all_accounts().map_err(Error::failed)?,
        _ => return Err(Error::usage("migrate needs --user NAME or --all")),
    };
    let mut home_cfg = cfg.clone();
    home_cfg.store = StoreKind::Home;
    let mut system_cfg = cfg.clone();
    system_cfg.store = StoreKind::System;
    let (target_kind, target_name) = match to {
        MigrateTo::System => (StoreKind::System, "the system store"),
        MigrateTo::Postgresql => (StoreKind::Postgresql, "the fleet database"),
    };
    let (mut copied, mut none, mut there, mut skipped) = (0usize, 0usize, 0usize, 0usize);
    for a in &accounts {
        let outcome = match to {
            MigrateTo::System => one(&home_cfg, a, |file| to_system(&system_cfg, a, file)),
            MigrateTo::Postgresql => one(&home_cfg, a, |file| to_database(cfg, a, file)),
        };
        let line = match outcome {
            Outcome::Copied(s) => {
                copied += 1;
                s
            }
            Outcome::NoHomeFile(s) => {
                none += 1;
                s
            }
            Outcome::AlreadyThere(s) => {
                there += 1;
                s
            }
            Outcome::Skipped(s) => {
                skipped += 1;
                format!("skipped: {s}")
            }
        };
        // The outcome quotes paths and errors as they are: escaped here, once.
        say!(
            "{}: {}",
            crate::output::shown(&a.name),
            crate::output::shown(&line)
        );
    }
    say!(
        "migrate: {copied} copied, {there} already in {target_name}, {none} without a home file, {skipped} skipped."
    );
    if cfg.store != target_kind && copied + there > 0 {
        say!(
            "The config says store = \"{}\": set store = \"{}\" to use the copies (the home files are then no longer read; they are left in place).",
            cfg.store.as_str(),
            target_kind.as_str()
        );
    }
    Ok(i32::from(skipped > 0))
}

/// Reads `a`'s home file under its lock and hands it to `copy`.
fn one(home_cfg: &Config, a: &Account, copy: impl FnOnce(&SecretFile) -> Outcome) -> Outcome {
    if !account::plausible_user_name(&a.name) {
        return Outcome::Skipped(
            "not a plausible user name (pam_otp never uses it in a path)".into(),
        );
    }
    let home = crate::audit::admin(home_cfg, a, None);
    let from = home.location();
    // Nothing at the path (looked at as the user) is nothing to copy,
    // whatever the directories are like: the open below judges a file
    // that is there, directories included. (`exists` would refuse to
    // answer "no file" under a directory others may write to, /var/mail
    // of Debian's `mail` account, say: right for a login, where the file
    // may have been taken away, but nothing is there to copy.)
    match home.anything_there() {
        Ok(true) => {}
        Ok(false) => return Outcome::NoHomeFile(format!("no home file (no {from})")),
        Err(e) => return Outcome::Skipped(format!("{from}: {e}")),
    }
    // Held (locked) until the copy is made: a login meanwhile waits, and
    // the copy is of one state, not half of two.
    let held = match home.open() {
        Ok(held) => held,
        Err(StoreError::NotFound) => {
            return Outcome::NoHomeFile(format!("no home file (no {from})"))
        }
        Err(StoreError::Malformed(e)) => {
            return Outcome::Skipped(format!(
                "{from} cannot be used ({e}); fix it, then migrate again"
            ))
        }
        Err(e) => return Outcome::Skipped(format!("{from}: {e}")),
    };
    let file = held.file().clone();
    let outcome = copy(&file);
    drop(held);
    match outcome {
        Outcome::Copied(to) => Outcome::Copied(format!(
            "copied {} and {} to {to} (the home file {from} is left in place)",
            count(file.tokens.len(), "token"),
            count(file.scratch_codes.len(), "emergency code")
        )),
        other => other,
    }
}

/// Copies `file` into `<state_dir>/users/`; `Copied` holds where.
fn to_system(system_cfg: &Config, a: &Account, file: &SecretFile) -> Outcome {
    let system = crate::audit::admin(system_cfg, a, None);
    let to = system.location();
    // `create` withdraws a pending reset; a migration leaves marks alone.
    let was_pending = match system.pending() {
        Ok(p) => p,
        Err(e) => return Outcome::Skipped(format!("{e}")),
    };
    // As the store writes it: with the account's uid (version 2).
    let mut file = file.clone();
    file.upgrade();
    file.uid = Some(a.uid);
    let file = &file;
    match system.create(file) {
        // Pending: made, only the mark could not be withdrawn.
        Ok(()) | Err(StoreError::Pending { .. }) => {}
        Err(StoreError::Exists) => {
            return Outcome::AlreadyThere(format!(
                "already in the system store ({to}), left as it is"
            ))
        }
        Err(e) => return Outcome::Skipped(format!("cannot write {to}: {e}")),
    }
    if was_pending {
        if let Err(e) = system.set_pending(true) {
            return Outcome::Skipped(format!(
                "copied to {to}, but the pending reset could not be kept ({e}): run otp-enroll --user {} reset again",
                a.name
            ));
        }
    }
    let back = system.open().map(|h| h.file().clone());
    if !matches!(&back, Ok(b) if b == file) {
        let why = match back {
            Ok(_) => "it does not read back the same".to_string(),
            Err(e) => format!("it cannot be read back ({e})"),
        };
        let undone = system.remove();
        return Outcome::Skipped(match undone {
            Ok(()) => format!("the copy in {to} was removed again: {why}"),
            Err(e) => format!("the copy in {to} is wrong ({why}) and could not be removed ({e}): remove it by hand"),
        });
    }
    Outcome::Copied(to)
}

/// Copies `file` into the fleet database (admin role); `Copied` holds
/// where. A mark of `reset` in `<state_dir>/pending` becomes the
/// database's: there is no other place a fleet host would look.
fn to_database(cfg: &Config, a: &Account, file: &SecretFile) -> Outcome {
    let mut db_cfg = cfg.clone();
    db_cfg.store = StoreKind::Postgresql;
    let db = crate::audit::admin(&db_cfg, a, None);
    let to = db.location();
    // The marks of the file stores, `<state_dir>/pending`.
    let mut system_cfg = cfg.clone();
    system_cfg.store = StoreKind::System;
    let was_pending = match crate::audit::admin(&system_cfg, a, None).pending() {
        Ok(p) => p,
        Err(e) => return Outcome::Skipped(format!("{e}")),
    };
    let mut file = file.clone();
    file.upgrade();
    file.uid = Some(a.uid);
    match db.create(&file) {
        Ok(()) => {}
        Err(StoreError::Exists) => {
            return Outcome::AlreadyThere(format!(
                "already in the fleet database ({to}), left as it is"
            ))
        }
        Err(e) => return Outcome::Skipped(format!("cannot write {to}: {e}")),
    }
    if was_pending {
        if let Err(e) = db.set_pending(true) {
            return Outcome::Skipped(format!(
                "copied to {to}, but the pending reset could not be kept ({e}): run otp-enroll --user {} reset again",
                a.name
            ));
        }
    }
    let back = db.open().map(|h| h.file().clone());
    if !matches!(&back, Ok(b) if *b == file) {
        let why = match back {
            Ok(_) => "it does not read back the same".to_string(),
            Err(e) => format!("it cannot be read back ({e})"),
        };
        let undone = db.remove();
        return Outcome::Skipped(match undone {
            Ok(()) => format!("the copy in {to} was removed again: {why}"),
            Err(e) => format!("the copy in {to} is wrong ({why}) and could not be removed ({e}): remove it with otp-enroll --user {} remove", a.name),
        });
    }
    Outcome::Copied(to)
}
