//! The part of otp-enroll that is a library: the readers of vendor token
//! files ([`vendor`]: PSKC and CSV), pure functions from bytes to tokens
//! and reasons, with no store, clock or terminal.
//!
//! They are a library so the fuzz targets (`fuzz/fuzz_targets/pskc.rs`,
//! `csv.rs`) can reach them; the command (`main.rs`) uses them from here.
//! They stay in otp-enroll rather than in otp-core so that their XML and
//! cryptography crates are never in the PAM module's dependency graph,
//! whatever else cargo builds in the same run.

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

pub mod vendor;
