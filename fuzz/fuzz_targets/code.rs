//! A typed code against a secret file: never panics, malformed input never
//! accepted, and forward_pass splitting stays on character boundaries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::auth::{split_password_and_code, Shape};
use otp_core::otp::normalize_code;
use otp_core::rate_limit::RateLimit;
use otp_core::secret_file::{OtpKind, SecretFile, Token};
use otp_core::verify::{verify, Policy, Verdict};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two tokens of different lengths, so codes go to each.
    let mut file = SecretFile::with_token(Token::new(
        "phone",
        OtpKind::Totp,
        b"12345678901234567890".to_vec(),
    ));
    let mut hw = Token::new("hw", OtpKind::Hotp, b"abcdefghijabcdefghij".to_vec());
    hw.digits = 8;
    file.tokens.push(hw);
    file.scratch_codes = vec!["31415926".into()];
    let policy = Policy {
        totp_skew: 1,
        hotp_window: 10,
        rate_limit: RateLimit::default(),
    };
    let v = verify(&mut file, text, &policy, 1_111_111_111);
    if normalize_code(text).is_none() {
        assert!(!matches!(v, Verdict::Accepted(_)));
    }
    let (password, code) = split_password_and_code(&Shape::of(&file), text);
    assert!(text.starts_with(password) || text.strip_suffix('\n').is_some());
    // Digits, with the spaces and dashes a person types inside a code.
    assert!(code.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'-'));
});
