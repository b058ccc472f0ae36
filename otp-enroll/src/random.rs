//! Secrets and emergency codes from the kernel's random generator
//! (`otp_core::random`), with otp-enroll's errors.

use otp_core::random;

use crate::error::Error;

fn failed(err: std::io::Error) -> Error {
    Error::failed(format!("cannot get random bytes: {err}"))
}

/// A new 160-bit key (RFC 4226's recommendation).
pub fn key() -> Result<Vec<u8>, Error> {
    random::key().map_err(failed)
}

/// `n` bytes from the kernel (a temporary code's salt).
pub fn bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut b = vec![0u8; n];
    random::fill(&mut b).map_err(failed)?;
    Ok(b)
}

/// `n` distinct 8-digit emergency codes.
pub fn scratch_codes(n: usize) -> Result<Vec<String>, Error> {
    random::scratch_codes(n).map_err(failed)
}
