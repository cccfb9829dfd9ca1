//! Any raw mention an adapter could hand over (documents, values of every attribute,
//! facts), through the pipeline's normalisation stage.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_fuzz::mention(data));
