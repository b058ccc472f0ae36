//! pam_otp: one-time codes (TOTP, RFC 6238; HOTP, RFC 4226) for PAM, with
//! rules on address, user, group and service.
//!
//! This crate is the core: the PAM module (`pam_otp/`, a thin glue
//! crate) and `otp-enroll` are built on it. Only the module's entry points
//! talk to libpam and read the clock; everything here is plain Rust that
//! takes its inputs and is tested without PAM or root.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// The core's unsafe code is in `sys` (system calls) and `pq` (libpq).
#![deny(unsafe_code)]

pub mod account;
pub mod audit;
pub mod auth;
pub mod config;
pub mod date;
pub mod enroll;
pub mod grace;
pub mod key;
pub mod log;
pub mod otp;
#[allow(unsafe_code)]
pub mod pq;
pub mod qr;
pub mod random;
pub mod rate_limit;
pub mod remote;
pub mod rules;
pub mod safe_fs;
pub mod secret_file;
pub mod store;
#[allow(unsafe_code)]
pub mod sys;
pub mod unenrolled;
pub mod uri;
pub mod verify;
