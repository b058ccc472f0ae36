//! The config parser, address lists and module-argument handling on
//! arbitrary input. The input is a config's text, then optionally a NUL
//! byte and the text every list file it names (`from_file`) holds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::config::{expand_template, parse_list, Config};
use otp_core::safe_fs::FsError;

fuzz_target!(|data: &[u8]| {
    let (config, list) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(config) else {
        return;
    };
    let list = list.map(|l| std::str::from_utf8(l).map_err(|_| FsError::NotUtf8));
    if let Some(Ok(list)) = list {
        let _ = parse_list(list);
    }
    let mut read_list = |_: &str| match list {
        Some(Ok(text)) => Ok(text.to_string()),
        Some(Err(_)) => Err(FsError::NotUtf8),
        None => Err(FsError::NotFound),
    };
    if let Ok(mut cfg) = Config::parse_with(text, &mut read_list) {
        let _ = expand_template(&cfg.secret, "user", "/home/user");
        // The same text split into words, as module arguments.
        let args: Vec<&str> = text.split_whitespace().collect();
        let _ = cfg.apply_args(args);
    }
});
