//! The config parser and module-argument handling on arbitrary input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::config::{expand_template, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut cfg) = Config::parse(text) {
        let _ = expand_template(&cfg.secret, "user", "/home/user");
        // The same text split into words, as module arguments.
        let args: Vec<&str> = text.split_whitespace().collect();
        let _ = cfg.apply_args(args);
    }
});
