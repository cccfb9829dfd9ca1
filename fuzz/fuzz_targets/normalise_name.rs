//! Any text as a person's and as an organisation's name (traditional → simplified,
//! minority and Latin names).
#![no_main]

use tongban_adapters::normalise::name;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = tongban_fuzz::text(data);
    let _ = name::person(&text);
    let _ = name::organisation(&text);
    let _ = name::to_simplified(&text);
    let _ = name::is_latin(&text);
});
