//! The secret-file parser on arbitrary bytes: never panics, and whatever
//! parses is written back (to_text never refuses a file parsing accepted)
//! as text that parses to the same file and is written the same again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::secret_file::SecretFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SecretFile::parse_bytes(data) {
        let text = file.to_text().expect("a parsed file can be written");
        let again = SecretFile::parse(&text).expect("our own output parses");
        assert_eq!(again, file, "round trip changed the data");
        assert_eq!(again.to_text().as_deref(), Ok(text.as_str()), "writing is stable");
    }
});
