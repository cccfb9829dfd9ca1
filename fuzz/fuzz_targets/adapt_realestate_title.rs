//! Any JSON value, read by the RealEstateTitle adapter and normalised.
#![no_main]

use tongban_adapters::RecordType;

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_fuzz::adapter(RecordType::RealEstateTitle, data));
