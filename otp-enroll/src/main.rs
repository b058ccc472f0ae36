//! otp-enroll: set up and manage pam_otp secrets (see `otp-enroll --help`).

mod cli;
mod commands;
mod error;
mod prompt;
mod qr;
mod random;
mod store;
mod target;
mod uri;

use cli::Command;
use error::Error;

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("otp-enroll: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32, Error> {
    let (g, command) = cli::parse(std::env::args_os().skip(1))?;
    match command {
        Command::Help(text) => {
            print!("{text}");
            return Ok(0);
        }
        Command::Version => {
            println!("otp-enroll {}", env!("CARGO_PKG_VERSION"));
            return Ok(0);
        }
        _ => {}
    }
    #[allow(clippy::disallowed_methods)] // the CLI is where the clock is read
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::failed("the system clock is before 1970"))?
        .as_secs();
    let t = target::resolve(
        g.user.as_deref(),
        g.config.as_deref(),
        g.secret_file.as_deref(),
    )?;
    match command {
        Command::New(o) => commands::new::run(&t, o, now)?,
        Command::Token(o) => commands::token::run(&t, o, now)?,
        Command::Resync(c1, c2) => commands::resync::run(&t, &c1, &c2)?,
        Command::Status => {
            if !commands::status::run(&t, now)? {
                return Ok(1);
            }
        }
        Command::Scratch(n) => commands::scratch::run(&t, n)?,
        Command::Unlock => commands::unlock::run(&t)?,
        Command::Remove { yes } => commands::remove::run(&t, yes)?,
        Command::ImportGoogle { path, force } => {
            commands::import_google::run(&t, path, force, now)?
        }
        Command::Help(_) | Command::Version => {}
    }
    Ok(0)
}
