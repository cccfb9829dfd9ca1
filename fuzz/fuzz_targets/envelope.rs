//! An envelope of any record type (or an unknown one) with any payload bytes, through
//! the pipeline's validate and adapt stages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_fuzz::envelope(data));
