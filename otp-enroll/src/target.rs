//! Whose tokens this run is about, and in which store: `--user`,
//! `--config` and `--secret-file` resolved against the real uid.

use otp_core::account::{self, Account};
use otp_core::config::{self, Config, StoreKind};
use otp_core::store::{self, AdminStore, FsError};

use crate::error::Error;
use crate::output::{quoted, shown};

/// The user acted for, the config in force and the store that keeps the
/// user's tokens.
pub struct Target {
    pub account: Account,
    pub config: Config,
    /// The config's store for this user, as an administrator sees it
    /// (the database's admin role).
    pub store: Box<dyn AdminStore>,
    /// Whether an administrator is acting for someone else.
    pub for_other: bool,
}

impl Target {
    /// Whether the store is the user's own file (`home`).
    pub fn is_home(&self) -> bool {
        self.config.store == StoreKind::Home
    }

    /// Where the user's record is, for messages.
    pub fn path_str(&self) -> String {
        self.store.location()
    }

    /// The user's name as it may be printed ([`shown`]).
    pub fn shown_name(&self) -> String {
        shown(&self.account.name)
    }

    /// [`Target::path_str`] as it may be printed ([`shown`]).
    pub fn shown_path(&self) -> String {
        shown(&self.path_str())
    }

    pub fn file_error(&self, err: FsError) -> Error {
        match err {
            // Root's state directory is not the user's home: the hint
            // `Error::NoDirectory` gives would mislead.
            FsError::NoDir { .. } if !self.is_home() => Error::File {
                path: self.path_str(),
                err,
            },
            err => Error::file(&self.path_str(), &self.account.name, err),
        }
    }
}

/// Who is asking: the real uid (not the effective one, not $USER).
pub fn invoker() -> Result<Account, Error> {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = nix::unistd::getuid().as_raw();
    account::lookup_uid(uid)
        .map_err(Error::failed)?
        .ok_or_else(|| {
            Error::failed(format!(
                "uid {uid} has no account (user look-up found nothing)"
            ))
        })
}

/// Only root may name another user; anyone may name themselves.
pub fn account(user: Option<&str>, me: Account) -> Result<Account, Error> {
    let Some(name) = user else {
        return Ok(me);
    };
    if !account::plausible_user_name(name) {
        return Err(Error::usage(format!(
            "{} is not a valid user name",
            quoted(name)
        )));
    }
    // SAFETY: as above.
    let (uid, euid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::geteuid().as_raw(),
    );
    if name != me.name && (uid != 0 || euid != 0) {
        return Err(Error::NotRoot);
    }
    account::lookup(name)
        .map_err(Error::failed)?
        .ok_or_else(|| Error::NoSuchUser(name.to_string()))
}

pub fn config(config_path: Option<&str>) -> Result<Config, Error> {
    config::load(config_path.unwrap_or(config::DEFAULT_PATH))
        .map_err(|e| Error::failed(e.to_string()))
}

pub fn resolve(
    user: Option<&str>,
    config_path: Option<&str>,
    secret_file: Option<&str>,
) -> Result<Target, Error> {
    let me = invoker()?;
    let my_uid = me.uid;
    let account = account(user, me)?;
    let config = config(config_path)?;
    if let Some(t) = secret_file {
        if config.store != StoreKind::Home {
            return Err(Error::usage(format!(
                "--secret-file applies only to store = \"home\"; this config has store = \"{}\", which keeps each user's tokens in {}/{}/NAME.toml",
                config.store.as_str(),
                config.state_dir.trim_end_matches('/'),
                store::USERS_DIR
            )));
        }
        config::check_template(t).map_err(|why| {
            Error::usage(format!(
                "--secret-file: {}: {}",
                quoted(t),
                shown(&why.to_string())
            ))
        })?;
    }
    // A database connects only when used: a plain user is turned away
    // before (`commands::run`), as for `system`.
    let store = crate::audit::admin(&config, &account, secret_file);
    let for_other = account.uid != my_uid;
    Ok(Target {
        account,
        config,
        store,
        for_other,
    })
}
