//! New keys and emergency codes from the kernel's random generator, for
//! otp-enroll and for enrollment at login.

use std::io;

use crate::sys;

/// A new key's length: 160 bits, RFC 4226's recommendation.
pub const KEY_BYTES: usize = 20;
/// How many emergency codes a new enrollment gets.
pub const DEFAULT_SCRATCH_CODES: usize = 5;

/// A new 160-bit key.
pub fn key() -> io::Result<Vec<u8>> {
    let mut k = vec![0u8; KEY_BYTES];
    sys::fill_random(&mut k)?;
    Ok(k)
}

/// Fills `buf` from the kernel (a temporary code's salt).
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    sys::fill_random(buf)
}

const SCRATCH_LOW: u32 = 10_000_000;
const SCRATCH_SPAN: u32 = 90_000_000;

/// `n` distinct 8-digit emergency codes, uniform over 10000000..=99999999.
pub fn scratch_codes(n: usize) -> io::Result<Vec<String>> {
    // Reject the top of the u32 range that would bias the modulo.
    let limit = u32::MAX - (u32::MAX % SCRATCH_SPAN);
    let mut codes: Vec<String> = Vec::with_capacity(n);
    while codes.len() < n {
        let mut b = [0u8; 4];
        sys::fill_random(&mut b)?;
        let v = u32::from_ne_bytes(b);
        if v >= limit {
            continue;
        }
        let code = (SCRATCH_LOW + v % SCRATCH_SPAN).to_string();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_codes_are_eight_distinct_digits() {
        let codes = scratch_codes(50).unwrap();
        assert_eq!(codes.len(), 50);
        for c in &codes {
            assert!(crate::secret_file::is_scratch_code(c), "{c}");
            assert!(c.as_bytes()[0] != b'0');
        }
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 50);
    }

    #[test]
    fn keys_differ() {
        assert_ne!(key().unwrap(), key().unwrap());
        assert_eq!(key().unwrap().len(), KEY_BYTES);
    }
}
