//! The secret-file parser on arbitrary bytes: never panics, and whatever
//! parses survives a write/read round trip unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pam_otp::secret_file::SecretFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SecretFile::parse_bytes(data) {
        let text = file.to_toml();
        let again = SecretFile::parse(&text).expect("our own output parses");
        assert_eq!(again, file, "round trip changed the data");
    }
});
