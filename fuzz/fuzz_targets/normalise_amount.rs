//! Any text as an amount, a sum of money with its currency and unit, and a share.
#![no_main]

use tongban_adapters::normalise::amount;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = tongban_fuzz::text(data);
    if let Ok(a) = amount::parse(&text) {
        let _ = a.to_string();
    }
    if let Ok(m) = amount::parse_money(&text) {
        let _ = m.to_string();
    }
    let _ = amount::parse_share(&text);
});
