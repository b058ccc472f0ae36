//! Shared-secret encodings: base32 (authenticator apps, the secret file) and
//! hex (hardware token vendors).

use base32::Alphabet;

/// Shortest key accepted: 80 bits, what older google-authenticator files and
/// some hardware tokens use. New secrets are 160 bits (RFC 4226's advice).
pub const MIN_KEY_BYTES: usize = 10;
/// Longest key accepted (SHA-512's block size; more adds nothing).
pub const MAX_KEY_BYTES: usize = 128;

/// Decodes base32 the way people write it: any case, spaces and dashes
/// between groups, with or without `=` padding.
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let unpadded = cleaned.trim_end_matches('=');
    if unpadded.is_empty()
        || !unpadded
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    base32::decode(Alphabet::Rfc4648 { padding: false }, unpadded)
}

/// Upper-case base32 without padding: the Key URI's form.
pub fn encode_base32(key: &[u8]) -> String {
    base32::encode(Alphabet::Rfc4648 { padding: false }, key)
}

/// Base32 in groups of four, for reading off a screen and typing in.
pub fn grouped_base32(key: &[u8]) -> String {
    let plain = encode_base32(key);
    let groups: Vec<&str> = plain
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    groups.join(" ")
}

/// Decodes hex, ignoring spaces and case ("3132 3334..." as vendors print it).
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'-' | b':' | b'\t'))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

pub fn encode_hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trip_and_leniency() {
        let key = b"12345678901234567890";
        let b32 = encode_base32(key);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(decode_base32(&b32).unwrap(), key);
        assert_eq!(decode_base32(&b32.to_lowercase()).unwrap(), key);
        assert_eq!(
            decode_base32("gezd gnbv-gy3t qojq gezd gnbv gy3t qojq").unwrap(),
            key
        );
        assert_eq!(decode_base32("JBSWY3DPEE======").unwrap(), b"Hello!");
        assert_eq!(
            grouped_base32(key),
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
        );
    }

    #[test]
    fn base32_rejects_garbage() {
        assert!(decode_base32("").is_none());
        assert!(decode_base32("GEZD1").is_none()); // '1' is not base32
        assert!(decode_base32("GEZD!").is_none());
        assert!(decode_base32("====").is_none());
    }

    #[test]
    fn hex_round_trip() {
        let key = b"12345678901234567890";
        let hex = encode_hex(key);
        assert_eq!(hex, "3132333435363738393031323334353637383930");
        assert_eq!(decode_hex(&hex).unwrap(), key);
        assert_eq!(
            decode_hex("31 32 3A 3b").unwrap(),
            vec![0x31, 0x32, 0x3a, 0x3b]
        );
        assert!(decode_hex("313").is_none());
        assert!(decode_hex("zz").is_none());
        assert!(decode_hex("").is_none());
    }
}
