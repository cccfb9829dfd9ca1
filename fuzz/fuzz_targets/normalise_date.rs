//! Any text as a date in every department format, and the leading eight bytes as
//! milliseconds of Beijing time.
#![no_main]

use tongban_adapters::model::RawDate;
use tongban_adapters::normalise::date;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(d) = date::parse(&RawDate::Text(tongban_fuzz::text(data))) {
        let _ = d.to_string();
    }
    if let Some(millis) = data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        if let Ok(d) = date::from_beijing_millis(i64::from_le_bytes(millis)) {
            let _ = d.to_string();
        }
    }
});
