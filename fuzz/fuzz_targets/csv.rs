//! The CSV reader (otp-enroll inventory import) on arbitrary bytes: never
//! panics; every token passes the secret file's rules; every skipped line
//! names a line of the input; every message is safe to print (what it
//! quotes from the file is escaped).
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_enroll::vendor::{self, csv};

fn printable(msg: &str) {
    assert!(
        !msg.chars()
            .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "an unescaped character in {msg:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let _ = vendor::detect(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match csv::parse(text) {
        Err(e) => printable(&e),
        Ok(p) => {
            let lines = text.split('\n').count();
            for s in &p.skipped {
                printable(&s.what);
                printable(&s.why);
                let n: usize = s
                    .what
                    .strip_prefix("line ")
                    .and_then(|r| r.split([' ', ':']).next())
                    .and_then(|n| n.parse().ok())
                    .expect("a skipped record names its line");
                assert!((1..=lines).contains(&n), "line {n} of {lines}: {s:?}");
            }
            for t in &p.tokens {
                assert_eq!(t.check(), Ok(()), "a token the rules refuse: {t:?}");
            }
        }
    }
});
