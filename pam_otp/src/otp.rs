//! One-time code arithmetic: HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! totp-rs computes the codes. HOTP(c) is a TOTP with a 1-second step
//! evaluated at "time" c, which the RFC 4226 vectors below pin down. TOTP at
//! step s is HOTP(s), so one [`Generator`] serves both: the caller turns a
//! time into a step.

use serde::{Deserialize, Serialize};
use totp_rs::{Builder, Totp};

/// The HMAC behind the codes. Names as in the Key URI and the secret file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    #[default]
    SHA1,
    SHA256,
    SHA512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::SHA1 => "SHA1",
            Algorithm::SHA256 => "SHA256",
            Algorithm::SHA512 => "SHA512",
        }
    }

    /// Parses a name case-insensitively ("sha256", "SHA256").
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Algorithm::SHA1),
            "SHA256" => Some(Algorithm::SHA256),
            "SHA512" => Some(Algorithm::SHA512),
            _ => None,
        }
    }
}

pub const MIN_DIGITS: u8 = 6;
pub const MAX_DIGITS: u8 = 8;
/// Scratch (emergency) codes are always this long.
pub const SCRATCH_DIGITS: usize = 8;

/// Computes and checks codes for one key.
pub struct Generator {
    totp: Totp,
    digits: u8,
}

impl Generator {
    /// `digits` must be 6..=8 (checked: totp-rs panics on 10 or more).
    pub fn new(key: &[u8], algorithm: Algorithm, digits: u8) -> Option<Generator> {
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) || key.is_empty() {
            return None;
        }
        let algorithm = match algorithm {
            Algorithm::SHA1 => totp_rs::Algorithm::SHA1,
            Algorithm::SHA256 => totp_rs::Algorithm::SHA256,
            Algorithm::SHA512 => totp_rs::Algorithm::SHA512,
        };
        // build_noncompliant: build() insists on 128-bit keys, but hardware
        // tokens and older google-authenticator files use 80-bit ones. The
        // secret file enforces its own minimum; digits and step are valid here.
        let totp = Builder::new()
            .with_algorithm(algorithm)
            .with_digits(digits)
            .with_secret(key)
            .with_skew(0)
            .with_step_duration(1)
            .build_noncompliant();
        Some(Generator { totp, digits })
    }

    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// The code for counter (HOTP) or time step (TOTP) `counter`.
    pub fn code(&self, counter: u64) -> String {
        self.totp.generate(counter).to_string()
    }

    /// Whether `typed` (already normalised) is the code for `counter`.
    /// The comparison itself is constant-time (totp-rs' `Token` equality).
    pub fn matches(&self, counter: u64, typed: &str) -> bool {
        self.totp.check(typed, counter).is_some()
    }

    /// The first counter in `candidates` whose code is `typed`. Every
    /// candidate is computed and compared, so the time taken does not tell
    /// where (or whether) the code matched.
    pub fn find(&self, candidates: impl Iterator<Item = u64>, typed: &str) -> Option<u64> {
        let mut found = None;
        for counter in candidates {
            if self.matches(counter, typed) && found.is_none() {
                found = Some(counter);
            }
        }
        found
    }
}

/// What a person typed, cleaned up: spaces and dashes inside it are
/// ignored ("123 456", "1234-5678"). `None` unless the rest is 1 to 10 ASCII digits.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(code)
}

/// Constant-time equality for codes of any length.
pub fn code_eq(a: &str, b: &str) -> bool {
    constant_time_eq::constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4226_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        let g = Generator::new(RFC4226_KEY, Algorithm::SHA1, 6).unwrap();
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(g.code(counter as u64), *code, "counter {counter}");
            assert!(g.matches(counter as u64, code));
        }
    }

    /// RFC 6238 appendix B: 8-digit codes, one key per algorithm.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, c1, c256, c512) in table {
            let step = time / 30;
            for (key, alg, code) in [
                (sha1, Algorithm::SHA1, c1),
                (sha256, Algorithm::SHA256, c256),
                (sha512, Algorithm::SHA512, c512),
            ] {
                let g = Generator::new(key, alg, 8).unwrap();
                assert_eq!(g.code(step), code, "{alg:?} at {time}");
                // The 6-digit code is the same value modulo 10^6.
                let g6 = Generator::new(key, alg, 6).unwrap();
                assert_eq!(g6.code(step), code[2..], "{alg:?} 6 digits at {time}");
            }
        }
    }

    #[test]
    fn seven_digits_work() {
        let g = Generator::new(RFC4226_KEY, Algorithm::SHA1, 7).unwrap();
        // 1284755224 mod 10^7 (RFC 4226 appendix D, counter 0)
        assert_eq!(g.code(0), "4755224");
    }

    #[test]
    fn find_reports_the_first_match_and_none_for_a_wrong_code() {
        let g = Generator::new(RFC4226_KEY, Algorithm::SHA1, 6).unwrap();
        assert_eq!(g.find(0..10, "969429"), Some(3));
        assert_eq!(g.find(4..10, "969429"), None);
        assert_eq!(g.find(0..10, "000000"), None);
        // Wrong length never matches.
        assert_eq!(g.find(0..10, "96942"), None);
        assert_eq!(g.find(0..10, "0969429"), None);
    }

    #[test]
    fn bad_digits_are_refused_not_panicking() {
        for d in [0u8, 5, 9, 10, 255] {
            assert!(Generator::new(RFC4226_KEY, Algorithm::SHA1, d).is_none());
        }
        assert!(Generator::new(b"", Algorithm::SHA1, 6).is_none());
    }

    #[test]
    fn normalize_code_ignores_spaces_and_dashes() {
        assert_eq!(normalize_code("123 456").as_deref(), Some("123456"));
        assert_eq!(normalize_code(" 1234-5678 \n").as_deref(), Some("12345678"));
        assert_eq!(normalize_code("12a456"), None);
        assert_eq!(normalize_code(""), None);
        assert_eq!(normalize_code("   "), None);
        assert_eq!(normalize_code("１２３４５６"), None); // full-width digits
        assert_eq!(normalize_code("12345678901"), None);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(Algorithm::parse("sha256"), Some(Algorithm::SHA256));
        assert_eq!(Algorithm::parse("MD5"), None);
        assert_eq!(Algorithm::SHA512.as_str(), "SHA512");
    }
}
