//! The secret-file parser on arbitrary bytes: never panics; whatever the
//! fast path for the module's own layout accepts, toml reads the same (or
//! refuses the same way); and whatever parses survives a write/read round
//! trip unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::secret_file::SecretFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(fast) = SecretFile::parse_own_layout(text) {
            assert_eq!(
                fast,
                SecretFile::parse_with_toml(text),
                "the fast path and toml disagree"
            );
        }
    }
    if let Ok(file) = SecretFile::parse_bytes(data) {
        let text = file.to_toml();
        let again = SecretFile::parse(&text).expect("our own output parses");
        assert_eq!(again, file, "round trip changed the data");
        assert_eq!(SecretFile::parse_with_toml(&text), Ok(file), "toml reads our output");
    }
});
