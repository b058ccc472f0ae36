//! Whose secret file this run is about, and where it is: `--user`,
//! `--config` and `--secret-file` resolved against the real uid.

use std::path::{Path, PathBuf};

use otp_core::account::{self, Account};
use otp_core::config::{self, Config};
use otp_core::safe_fs::{FsError, Owner};

use crate::error::Error;

/// The user acted for, the config in force and the secret file's path.
pub struct Target {
    pub account: Account,
    pub config: Config,
    pub path: PathBuf,
    /// Whether an administrator is acting for someone else.
    pub for_other: bool,
}

impl Target {
    /// Every file access happens with this file-system identity.
    pub fn owner(&self) -> Owner {
        self.account.owner()
    }

    /// The user's home: the directories from the secret file up to it (or
    /// up to `/` for a path outside it) must be safe (`safe_fs::check_dirs`).
    pub fn home(&self) -> &Path {
        Path::new(&self.account.home)
    }

    pub fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    pub fn file_error(&self, err: FsError) -> Error {
        Error::file(&self.path_str(), &self.account.name, err)
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
        return Err(Error::usage(format!("{name:?} is not a valid user name")));
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
    let template = match secret_file {
        Some(t) => {
            config::check_template(t)
                .map_err(|why| Error::usage(format!("--secret-file: {t:?}: {why}")))?;
            t
        }
        None => &config.secret,
    };
    let path = PathBuf::from(config::expand_template(
        template,
        &account.name,
        &account.home,
    ));
    let for_other = account.uid != my_uid;
    Ok(Target {
        account,
        config,
        path,
        for_other,
    })
}
