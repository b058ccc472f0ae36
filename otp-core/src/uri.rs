//! The `otpauth://` Key URI that authenticator apps scan (Google's Key URI
//! format): `otpauth://TYPE/ISSUER:ACCOUNT?secret=...&issuer=...`.

use crate::key::encode_base32;
use crate::secret_file::{OtpKind, Token};

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn key_uri(token: &Token, issuer: &str, account: &str) -> String {
    let mut uri = format!(
        "otpauth://{}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}",
        token.kind.as_str(),
        percent_encode(issuer),
        percent_encode(account),
        encode_base32(&token.key),
        percent_encode(issuer),
        token.algorithm.as_str(),
        token.digits,
    );
    match token.kind {
        OtpKind::Totp => uri.push_str(&format!("&period={}", token.period)),
        OtpKind::Hotp => uri.push_str(&format!("&counter={}", token.counter)),
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_encoded() {
        let f = Token::new("app", OtpKind::Totp, b"12345678901234567890".to_vec());
        let uri = key_uri(&f, "ACME Co", "alice@host.example");
        assert_eq!(
            uri,
            "otpauth://totp/ACME%20Co:alice%40host.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
        );
        let mut h = Token::new("key", OtpKind::Hotp, b"12345678901234567890".to_vec());
        h.counter = 7;
        assert!(key_uri(&h, "i", "a:b&c").contains("/i:a%3Ab%26c?"));
        assert!(key_uri(&h, "i", "a").ends_with("&counter=7"));
        assert_eq!(percent_encode("ä/?#"), "%C3%A4%2F%3F%23");
    }
}
