//! Any text as an address.
#![no_main]

use tongban_adapters::normalise::address;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = address::normalise(&tongban_fuzz::text(data));
});
