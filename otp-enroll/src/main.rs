//! otp-enroll: set up and manage pam_otp secrets (see `otp-enroll --help`).
//!
//! No input may make it panic: errors are [`Error`] values, printed to
//! standard error with a non-zero exit status.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![deny(unsafe_code)]

mod audit;
mod cli;
mod commands;
mod error;
mod inventory;
mod json;
mod output;
mod prompt;
use otp_core::qr;
mod random;
mod store;
mod target;
use otp_core::uri;

use cli::Command;
use error::Error;

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            if !e.is_silent() {
                output::warn(format_args!("otp-enroll: {e}"));
            }
            e.exit_code()
        }
    };
    // Whatever the outcome: what was changed before an error is recorded.
    audit::flush(code);
    std::process::exit(code);
}

/// Unix time now.
fn now() -> Result<u64, Error> {
    #[allow(clippy::disallowed_methods)] // the CLI is where the clock is read
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::failed("the system clock is before 1970"))
        .map(|d| d.as_secs())
}

fn run() -> Result<i32, Error> {
    let (g, command) = cli::parse(std::env::args_os().skip(1))?;
    audit::begin(command.name());
    let code = match command {
        Command::Help(text) => {
            output::write(format_args!("{text}"))?;
            0
        }
        Command::Generate(what) => {
            // Built whole first: a closed pipe is then an error, not a panic.
            let text = cli::generate(what)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &text)
                .map_err(Error::Output)?;
            0
        }
        Command::Status {
            enroll_on_login_query: true,
            ..
        } => {
            // For the login hook: the config's answer as an exit code,
            // parsed by the same code as the module's.
            let config = target::config(g.config.as_deref())?;
            i32::from(!config.enroll_on_login)
        }
        Command::Inventory(c) => {
            // Root only, said before anything (the config included) is read.
            if !inventory::is_root() {
                return Err(Error::failed(inventory::NOT_ROOT));
            }
            let config = target::config(g.config.as_deref())?;
            let change = commands::audit::inventory_change(&c);
            let code = commands::inventory::run(&config, c, now()?)?;
            if let Some(change) = change {
                commands::audit::record_global(&config, &change)?;
            }
            code
        }
        Command::DbInit { conninfo } => {
            if !inventory::is_root() {
                return Err(Error::RootOnly("db init"));
            }
            let config = target::config(g.config.as_deref())?;
            commands::db::init(
                &config.postgresql,
                conninfo
                    .as_deref()
                    .unwrap_or(&config.postgresql.admin_conninfo),
                &commands::audit::change("db init", None, None, None),
            )?
        }
        Command::Audit { user, since, json } => {
            if !inventory::is_root() {
                return Err(Error::RootOnly("audit"));
            }
            let config = target::config(g.config.as_deref())?;
            commands::audit::run(&config, otp_core::audit::Query { user, since }, json)?
        }
        Command::Migrate { to, all } => {
            if !inventory::is_root() {
                return Err(Error::RootOnly("migrate"));
            }
            let config = target::config(g.config.as_deref())?;
            let code = commands::migrate::run(&config, g.user.as_deref(), all, to)?;
            if to == cli::MigrateTo::Postgresql {
                let mut change = commands::audit::change("migrate", g.user.as_deref(), None, None);
                change.detail = Some(if all { "--all" } else { "--user" }.to_string());
                commands::audit::record_global(&config, &change)?;
            }
            code
        }
        Command::RemoveOrphans { json, yes } => {
            if !inventory::is_root() {
                return Err(Error::RootOnly("remove --orphans"));
            }
            let config = target::config(g.config.as_deref())?;
            commands::orphans::run(&config, json, yes)?
        }
        Command::Report { json, home_timeout } => {
            if !inventory::is_root() {
                return Err(Error::RootOnly("report"));
            }
            let config = target::config(g.config.as_deref())?;
            commands::report::run(&config, json, home_timeout, now()?)?
        }
        Command::TempCode(_) if !inventory::is_root() => {
            return Err(Error::RootOnly("temp-code"));
        }
        Command::TempCode(_) if g.user.is_none() => {
            return Err(Error::usage(
                "temp-code needs --user NAME: otp-enroll --user NAME temp-code",
            ));
        }
        Command::Reset { .. } if !inventory::is_root() => {
            return Err(Error::RootOnly("reset"));
        }
        Command::Require | Command::Exempt { .. } | Command::Unexempt if !inventory::is_root() => {
            return Err(Error::RootOnly(command.name()));
        }
        Command::Require | Command::Exempt { .. } | Command::Unexempt if g.user.is_none() => {
            return Err(Error::usage(format!(
                "{0} needs --user NAME: otp-enroll --user NAME {0}",
                command.name()
            )));
        }
        Command::Reset { .. } if g.user.is_none() => {
            return Err(Error::usage(
                "reset needs --user NAME: otp-enroll --user NAME reset",
            ));
        }
        command => {
            let now = now()?;
            let t = target::resolve(
                g.user.as_deref(),
                g.config.as_deref(),
                g.secret_file.as_deref(),
            )?;
            commands::run(&t, command, now)?
        }
    };
    output::flush()?;
    Ok(code)
}
