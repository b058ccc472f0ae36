//! Whose secret file this run is about, and where it is.

use std::path::PathBuf;

use pam_otp::account::{self, Account};
use pam_otp::config::{self, Config};
use pam_otp::safe_fs::Owner;

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
    pub fn owner(&self) -> Owner {
        self.account.owner()
    }

    pub fn path_str(&self) -> String {
        self.path.display().to_string()
    }
}

/// `--user` is for root only; without it, the invoking user.
pub fn resolve(
    user: Option<&str>,
    config_path: Option<&str>,
    secret_file: Option<&str>,
) -> Result<Target, Error> {
    // SAFETY: getuid/geteuid cannot fail and touch no memory.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    let me = account::lookup_uid(uid)
        .map_err(Error::failed)?
        .ok_or_else(|| Error::failed(format!("uid {uid} has no account")))?;
    let account = match user {
        None => me.clone(),
        Some(name) => {
            if !account::plausible_user_name(name) {
                return Err(Error::usage(format!("{name:?} is not a valid user name")));
            }
            if name != me.name && euid != 0 {
                return Err(Error::failed("only root may act for another user (--user)"));
            }
            account::lookup(name)
                .map_err(Error::failed)?
                .ok_or_else(|| Error::failed(format!("no such user: {name}")))?
        }
    };
    let config_path = config_path.unwrap_or(config::DEFAULT_PATH);
    let config = config::load(config_path).map_err(Error::failed)?;
    let template = secret_file.unwrap_or(&config.secret).to_string();
    if !(template.starts_with('/') || template.starts_with("%h")) {
        return Err(Error::usage(format!(
            "--secret-file {template:?} must be an absolute path"
        )));
    }
    let path = PathBuf::from(config::expand_template(
        &template,
        &account.name,
        &account.home,
    ));
    let for_other = account.uid != me.uid;
    Ok(Target {
        account,
        config,
        path,
        for_other,
    })
}
