//! The `otpauth://` Key URI that authenticator apps scan (Google's Key URI
//! format): `otpauth://TYPE/ISSUER:ACCOUNT?secret=...&issuer=...`.
//!
//! The label's first `:` ends the issuer, and parsers find it after
//! percent-decoding or before it (the JavaScript `otpauth` library that
//! many apps build on reads `%3A` as the separator, pyotp does not), so
//! an issuer or account name holding a `:` is read differently by
//! different apps. The Key URI format allows none in either: callers
//! refuse such a name with [`check_name`] before they make a URI.

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

/// Why a name cannot be a key URI's issuer or account name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Colon,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::Colon => f.write_str(
                "contains ':', which authenticator apps read as the end of the issuer in the key \
                 URI, so they would show another issuer and account (the Key URI format allows no \
                 ':' in either)",
            ),
        }
    }
}

/// Whether `name` can be the issuer or account name of a key URI: every
/// app reads it back the same.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.contains(':') {
        return Err(NameError::Colon);
    }
    Ok(())
}

/// The key URI of `token`. `issuer` and `account` must pass
/// [`check_name`].
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
        assert!(key_uri(&h, "i", "a&c").contains("/i:a%26c?"));
        assert!(key_uri(&h, "i", "a").ends_with("&counter=7"));
        assert_eq!(percent_encode("ä/?#"), "%C3%A4%2F%3F%23");
    }

    #[test]
    fn a_colon_in_a_name_is_refused() {
        assert_eq!(check_name("Shop & Co"), Ok(()));
        assert_eq!(check_name("jörg@example.org"), Ok(()));
        assert_eq!(check_name("Shop: Berlin"), Err(NameError::Colon));
        assert_eq!(check_name("a:b@host"), Err(NameError::Colon));
    }
}
