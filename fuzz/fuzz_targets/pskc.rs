//! The PSKC reader (otp-enroll inventory import) on arbitrary bytes, as
//! the import runs it: the format by content, then the reader without a
//! key and with a pre-shared one (not a passphrase: PBKDF2's iterations
//! would only make runs slow), then the per-key decisions. Never panics;
//! every token it hands over passes the secret file's rules; and every
//! message it makes is safe to print (what it quotes from the file is
//! escaped: no control character, no bidi override reaches the terminal).
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_enroll::vendor::{self, pskc, Choice, Options};

fn printable(msg: &str) {
    assert!(
        !msg.chars()
            .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "an unescaped character in {msg:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = vendor::detect(data) {
        printable(&e);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for secret in [pskc::Secret::None, pskc::Secret::Key(vec![0x42; 16])] {
        match pskc::parse(text, &secret) {
            Err(e) => printable(&e),
            Ok(p) => {
                for s in &p.skipped {
                    printable(&s.what);
                    printable(&s.why);
                }
                for t in &p.tokens {
                    assert_eq!(t.check(), Ok(()), "a token the rules refuse: {t:?}");
                }
                for ignore_pin_policy in [false, true] {
                    let opts = Options { ignore_pin_policy };
                    for c in vendor::select(p.tokens.clone(), 1_750_000_000, opts) {
                        match c {
                            Choice::Take(a) => a.notes.iter().for_each(|n| printable(n)),
                            Choice::Skip(s) => {
                                printable(&s.what);
                                printable(&s.why);
                            }
                        }
                    }
                }
            }
        }
    }
});
