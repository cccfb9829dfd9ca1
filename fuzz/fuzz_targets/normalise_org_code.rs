//! Any text as an organisation code of every family, with its check characters.
#![no_main]

use tongban_adapters::normalise::org_code;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = tongban_fuzz::text(data);
    for family in tongban_fuzz::FAMILIES {
        if let Ok(code) = org_code::read(&text, family) {
            let _ = (code.form(), code.organisation_code(), code.identifiers());
        }
    }
    let _ = org_code::parse_uscc(&text);
    let _ = org_code::parse_organisation_code(&text);
    let _ = org_code::parse_legacy_tax_id(&text);
    let _ = org_code::parse_registration_number(&text);
    let _ = org_code::lookup(&text);
    let cleaned = org_code::clean(&text);
    let _ = org_code::uscc_check_character(&cleaned);
    let _ = org_code::organisation_code_check_character(&cleaned);
    let _ = org_code::registration_number_check_digit(&cleaned);
});
