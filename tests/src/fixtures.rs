//! Shared helpers for the `it_*` integration tests: a private PAM service
//! with a private config, secret-file snapshots, code helpers.

use std::path::{Path, PathBuf};

pub use crate::harness::{names, snapshot, snapshot_dir, Rng, RootDir, Snapshot};
pub use crate::*;

/// The RFC 4226 / RFC 6238 SHA1 test key, in base32 and hex.
pub const KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub const KEY_HEX: &str = "3132333435363738393031323334353637383930";

pub const PROMPT: &str = "Verification code";

/// How pamtester reports the PAM results (pam_strerror), on stderr.
pub const SUCCESS: &str = "successfully authenticated";
pub const AUTH_ERR: &str = "Authentication failure";
pub const AUTHINFO_UNAVAIL: &str = "cannot retrieve authentication info";
pub const USER_UNKNOWN: &str = "User not known";

/// A minimal TOTP secret file with the test key.
pub fn totp_secret() -> String {
    format!("version = 1\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n")
}

/// An HOTP secret file with the test key, next expected counter `counter`.
pub fn hotp_secret(counter: u64) -> String {
    format!("version = 1\ntype = \"hotp\"\nsecret = \"{KEY_B32}\"\ncounter = {counter}\n")
}

/// A private PAM service with pam_otp alone ([`OTP_ONLY`]), its private
/// config holding `config`.
pub fn simple_service(config: &str) -> PamService {
    PamService::with_config(OTP_ONLY, config)
}

/// Sets the user's password (for stacks with pam_unix).
pub fn set_password(user: &TestUser, password: &str) {
    crate::set_password(&user.name, password);
}

/// Everything pamtester printed (prompts, messages, its verdict).
pub fn output(run: &PamRun) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

/// The current TOTP code (SHA1, 6 digits) of the test key, with at least
/// 5 s left in its step.
pub fn fresh_code() -> String {
    wait_for_fresh_step(5);
    oathtool_totp(KEY_B32, None, &[])
}

/// Runs oathtool with `args` and returns the code it printed.
pub fn oathtool(args: &[&str]) -> String {
    let out = std::process::Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool installed");
    assert!(
        out.status.success(),
        "oathtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A 6-digit code that is none of the codes accepted around now (±2 steps).
pub fn wrong_code() -> String {
    let t = now();
    let near: Vec<String> = (0..5)
        .map(|i| oathtool_totp(KEY_B32, Some(t + i * 30 - 60), &[]))
        .collect();
    (0..1000u32)
        .map(|n| format!("{:06}", 123_000 + n))
        .find(|c| !near.contains(c))
        .unwrap()
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
