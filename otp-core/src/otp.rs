//! One-time code arithmetic: HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! TOTP at step s is HOTP(s), so one [`Generator`] serves both: the caller
//! turns a time into a step. The HMAC is keyed once per login and cloned
//! for each counter in the window (the inner and outer key blocks are not
//! hashed again), which is most of what a login computes. The RFC 4226 and
//! RFC 6238 vectors below pin the arithmetic, and a test checks it against
//! totp-rs, an independent implementation.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// The HMAC behind the codes. Names as in the Key URI and the secret file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
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

/// An HMAC already keyed: cloning it skips the key schedule.
#[derive(Clone)]
enum Keyed {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// RFC 4226 section 5.3: the 31-bit number at the offset the last nibble
/// names. The offset is at most 15 and every digest here is 20 bytes or
/// more, so the slice is always there.
fn dynamic_truncation(mac: &[u8]) -> u32 {
    let offset = usize::from(mac.last().map_or(0, |b| b & 0x0f));
    match mac.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    }
}

fn hotp_value<M: Mac + Clone>(keyed: &M, counter: u64) -> u32 {
    let mut mac = keyed.clone();
    mac.update(&counter.to_be_bytes());
    dynamic_truncation(&mac.finalize().into_bytes())
}

/// Computes and checks codes for one key.
#[derive(Clone)]
pub struct Generator {
    keyed: Keyed,
    digits: u8,
}

impl Generator {
    /// `digits` must be 6..=8, the key non-empty. Short keys are accepted
    /// (hardware tokens and older google-authenticator files use 80-bit
    /// ones); the secret file enforces its own minimum.
    pub fn new(key: &[u8], algorithm: Algorithm, digits: u8) -> Option<Generator> {
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) || key.is_empty() {
            return None;
        }
        // HMAC takes keys of any length; these never fail.
        let keyed = match algorithm {
            Algorithm::SHA1 => Keyed::Sha1(Hmac::new_from_slice(key).ok()?),
            Algorithm::SHA256 => Keyed::Sha256(Hmac::new_from_slice(key).ok()?),
            Algorithm::SHA512 => Keyed::Sha512(Hmac::new_from_slice(key).ok()?),
        };
        Some(Generator { keyed, digits })
    }

    /// The code for `counter` as ASCII digits, zero-padded: the first
    /// `digits` bytes of the array.
    fn code_bytes(&self, counter: u64) -> [u8; MAX_DIGITS as usize] {
        let value = match &self.keyed {
            Keyed::Sha1(k) => hotp_value(k, counter),
            Keyed::Sha256(k) => hotp_value(k, counter),
            Keyed::Sha512(k) => hotp_value(k, counter),
        };
        let mut rest = value % 10u32.pow(u32::from(self.digits));
        let mut out = [b'0'; MAX_DIGITS as usize];
        for slot in out.iter_mut().take(usize::from(self.digits)).rev() {
            // rest % 10 < 10: the cast cannot truncate.
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out
    }

    /// The code for counter (HOTP) or time step (TOTP) `counter`.
    pub fn code(&self, counter: u64) -> String {
        let bytes = self.code_bytes(counter);
        bytes
            .iter()
            .take(usize::from(self.digits))
            .map(|&b| char::from(b))
            .collect()
    }

    /// Whether `typed` (already normalised) is the code for `counter`. A
    /// length other than `digits` never matches (the length is no secret);
    /// the digits themselves are compared in constant time.
    pub fn matches(&self, counter: u64, typed: &str) -> bool {
        let bytes = self.code_bytes(counter);
        let want = bytes.get(..usize::from(self.digits)).unwrap_or(&[]);
        typed.len() == want.len() && code_eq_bytes(want, typed.as_bytes())
    }

    /// The first counter in `candidates` whose code is `typed`; callers
    /// list the likeliest first. Each comparison is constant-time, and the
    /// search stops at the first match: a code from an authenticator app
    /// costs one HMAC instead of one per window step (a third of a TOTP
    /// login's own work with the default window).
    ///
    /// The time taken tells how many candidates were tried, that is whether
    /// and where `typed` matched. That tells a guesser nothing the answer
    /// does not: a matching code logs in, or is refused as a replay, which
    /// needs a code that was right, so the guess was not a guess. Which
    /// candidate matched is no secret either (it is the device's clock
    /// offset, or how far a token ran ahead).
    pub fn find(&self, candidates: impl IntoIterator<Item = u64>, typed: &str) -> Option<u64> {
        candidates
            .into_iter()
            .find(|&counter| self.matches(counter, typed))
    }
}

/// The time steps within `skew` of `center`, nearest first (`center`, then
/// one back, one ahead, two back, ...): where a device's code most likely
/// is, so that [`Generator::find`] stops early.
pub fn steps_nearest_first(center: u64, skew: u64) -> impl Iterator<Item = u64> {
    std::iter::once(center).chain((1..=skew).flat_map(move |d| {
        [center.checked_sub(d), center.checked_add(d)]
            .into_iter()
            .flatten()
    }))
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
    code_eq_bytes(a.as_bytes(), b.as_bytes())
}

/// Two digests compared in constant time (a temporary code's).
pub fn code_eq_digest(a: &[u8], b: &[u8]) -> bool {
    code_eq_bytes(a, b)
}

fn code_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(a, b)
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

    /// totp-rs, an independent implementation, agrees on many keys,
    /// counters, algorithms and lengths.
    #[test]
    fn agrees_with_totp_rs() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            let len = 10 + (next() % 60) as usize;
            let key: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let counter = if round % 3 == 0 {
                next()
            } else {
                next() % 100_000
            };
            let digits = 6 + (next() % 3) as u8;
            for (ours, theirs) in [
                (Algorithm::SHA1, totp_rs::Algorithm::SHA1),
                (Algorithm::SHA256, totp_rs::Algorithm::SHA256),
                (Algorithm::SHA512, totp_rs::Algorithm::SHA512),
            ] {
                let reference = totp_rs::Builder::new()
                    .with_algorithm(theirs)
                    .with_digits(digits)
                    .with_secret(key.as_slice())
                    .with_skew(0)
                    .with_step_duration(1)
                    .build_noncompliant();
                let g = Generator::new(&key, ours, digits).unwrap();
                assert_eq!(
                    g.code(counter),
                    reference.generate(counter).to_string(),
                    "{ours:?} {digits} digits, counter {counter}"
                );
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
    fn steps_are_tried_nearest_first_and_stay_in_range() {
        let steps: Vec<u64> = steps_nearest_first(100, 2).collect();
        assert_eq!(steps, [100, 99, 101, 98, 102]);
        assert_eq!(steps_nearest_first(7, 0).collect::<Vec<_>>(), [7]);
        // No wrap-around at either end of the range.
        assert_eq!(steps_nearest_first(1, 2).collect::<Vec<_>>(), [1, 0, 2, 3]);
        let top: Vec<u64> = steps_nearest_first(u64::MAX, 1).collect();
        assert_eq!(top, [u64::MAX, u64::MAX - 1]);
    }

    #[test]
    fn find_takes_the_first_match_in_the_callers_order() {
        let g = Generator::new(RFC4226_KEY, Algorithm::SHA1, 6).unwrap();
        // Counter 3's code, listed after others and before a later repeat.
        assert_eq!(g.find([5, 1, 3, 3], "969429"), Some(3));
        assert_eq!(g.find(std::iter::empty(), "969429"), None);
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
