//! Any text as a phone number.
#![no_main]

use tongban_adapters::normalise::phone;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(phone) = phone::parse(&tongban_fuzz::text(data)) {
        let _ = phone.to_string();
    }
});
