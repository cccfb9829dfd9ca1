//! Any typed document (family, department code, register, number) read into
//! identifiers and flags.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use tongban_adapters::normalise::document;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(raw) = tongban_fuzz::raw_document(&mut u) {
        let _ = document::read(&raw);
        let cleaned = document::clean_number(&raw.number);
        let _ = document::is_plausible(&cleaned);
    }
});
