//! Any JSON value, read by the HrssInsuredPerson adapter and normalised.
#![no_main]

use tongban_adapters::RecordType;

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_fuzz::adapter(RecordType::HrssInsuredPerson, data));
