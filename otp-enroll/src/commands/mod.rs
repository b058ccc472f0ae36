//! One file per subcommand.

pub mod import_google;
pub mod inventory;
pub mod new;
pub mod remove;
pub mod resync;
pub mod scratch;
pub mod status;
pub mod token;
pub mod unlock;

use crate::cli::Command;
use crate::error::Error;
use crate::target::Target;

/// Runs one subcommand for `t` at Unix time `now`; the exit code.
pub fn run(t: &Target, command: Command, now: u64) -> Result<i32, Error> {
    match command {
        Command::New(o) => new::run(t, o, now)?,
        Command::Token(o) => token::run(t, o, now)?,
        Command::Resync(c1, c2) => resync::run(t, &c1, &c2)?,
        Command::Status { .. } => {
            if !status::run(t, now)? {
                return Ok(1);
            }
        }
        Command::Scratch(n) => scratch::run(t, n)?,
        Command::Unlock => unlock::run(t)?,
        Command::Remove { yes } => remove::run(t, yes)?,
        Command::ImportGoogle { path, force } => import_google::run(t, path, force, now)?,
        Command::Inventory(c) => {
            return inventory::run(std::path::Path::new(&t.config.state_dir), c, now)
        }
        Command::Help(_) | Command::Version => {}
    }
    Ok(0)
}
