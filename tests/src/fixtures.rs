//! The prelude of the `it_*` tests: `use testkit::fixtures::*` brings the
//! whole crate root, the snapshot helpers of [`crate::harness`], and the
//! few helpers only those tests use.

use std::path::{Path, PathBuf};

pub use crate::harness::{names, snapshot, snapshot_dir, stopwatch, Rng, RootDir, Snapshot};
pub use crate::*;

/// How pamtester reports the PAM results (pam_strerror), on stderr.
pub const SUCCESS: &str = "successfully authenticated";
pub const AUTH_ERR: &str = "Authentication failure";
pub const AUTHINFO_UNAVAIL: &str = "cannot retrieve authentication info";
pub const USER_UNKNOWN: &str = "User not known";

/// A private PAM service with pam_otp alone ([`OTP_ONLY`]), its private
/// config holding `config`.
pub fn simple_service(config: &str) -> PamService {
    PamService::with_config(OTP_ONLY, config)
}

/// Everything pamtester printed (prompts, messages, its verdict).
pub fn output(run: &PamRun) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

/// The names in a directory that look like leftovers of a write (temp or
/// lock files next to the secret).
pub fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".pam_otp.toml") && n != ".pam_otp.toml")
        .collect()
}

/// Writes the user's secret as a valid file followed by a 20 MB comment
/// (only its size is wrong); its path and length.
pub fn write_twenty_megabyte_secret(user: &TestUser) -> (PathBuf, usize) {
    let mut text = totp_secret().into_bytes();
    text.push(b'#');
    text.resize(20 * 1024 * 1024, b'x');
    text.push(b'\n');
    let path = user.secret_path();
    user.write_owned(&path, &text, 0o600);
    (path, text.len())
}
