//! The compiled-config cache decoder on arbitrary bodies, framed with a
//! valid header and checksum so that the fuzzer gets past them: never
//! panics, and whatever it accepts (a config that passed validation,
//! which the decoder checks) is exactly what the encoder writes for it
//! (one encoding per config: a damaged cache never decodes to something
//! else that also looks right).
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::config_cache::fuzzing;

fuzz_target!(|body: &[u8]| {
    let framed = fuzzing::frame(body);
    if let Some(cfg) = fuzzing::decode_framed(&framed) {
        assert_eq!(fuzzing::encode_framed(&cfg), framed, "not the canonical encoding");
    }
});
