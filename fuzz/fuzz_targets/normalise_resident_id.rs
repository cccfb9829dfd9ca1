//! Any text as a resident identity number: parse, the 15 ⇄ 18 conversions, the check
//! character, and the identifier lookup that reads what a user typed.
#![no_main]

use tongban_adapters::normalise::{self, resident_id};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = tongban_fuzz::text(data);
    if let Ok(id) = resident_id::parse(&text) {
        let _ = (id.birth_date.to_string(), id.sex.as_str());
    }
    let cleaned = resident_id::clean(&text);
    let _ = resident_id::check_character(&cleaned);
    let _ = resident_id::upgrade(&cleaned);
    let _ = resident_id::downgrade(&cleaned);
    let _ = normalise::lookup_keys(&text);
});
