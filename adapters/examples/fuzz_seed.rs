//! Writes the seed corpus of the fuzz targets (`fuzz/`) from the synthetic city, so
//! that no corpus is committed: `scripts/fuzz --seed` runs it as
//! `cargo run -p tongban-adapters --example fuzz_seed -- fuzz/corpus`.
//!
//! - `envelope/`: every synthetic record, valid, withdrawn, stale or structurally broken,
//!   as the envelope target reads its input (record-type byte, deleted byte, payload);
//!   and a few payloads no department would send (not JSON, deeply nested, empty).
//! - `adapt_<type>/`: the payloads of that record type.
//! - `normalise_<kind>/`: every distinct text value of every payload (names, numbers,
//!   phones, dates, addresses, amounts, codes), and the check-character vectors.
//! - `json.dict`: JSON's tokens and every field name of the payloads, a libFuzzer
//!   dictionary for the targets that read JSON.
//!
//! The byte that selects a record type is its position in `RecordType::ALL`, as in
//! `fuzz/src/lib.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tongban_adapters::synth::{self, CityConfig, SyntheticRecord};
use tongban_adapters::RecordType;

const NORMALISERS: [&str; 9] = [
    "resident_id",
    "org_code",
    "document",
    "name",
    "phone",
    "date",
    "address",
    "amount",
    "mention",
];
/// Enough distinct values to cover every format the generator writes, few enough that
/// a target loads its corpus in a moment.
const MAX_TEXT_SEEDS: usize = 3_000;
const VECTORS: &str = include_str!("../src/normalise/vectors/check_characters.txt");

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".to_owned()));
    let city = synth::city(&CityConfig { people: 80, seed: 6 });
    let mut records: Vec<SyntheticRecord> = city.clone();
    records.extend(synth::replays_and_stale(&city, 6, 40));
    records.extend(synth::defective(6).into_iter().map(|(record, _)| record));

    let mut texts = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for record in &records {
        let selector = RecordType::ALL
            .iter()
            .position(|&t| t == record.record_type)
            .unwrap_or(0) as u8;
        let payload = record.payload.to_string();
        let mut input = vec![selector, u8::from(record.deleted)];
        input.extend_from_slice(payload.as_bytes());
        write_seed(&out.join("envelope"), &input)?;
        let target = format!("adapt_{}", record.record_type.as_str().replace('.', "_"));
        write_seed(&out.join(target), payload.as_bytes())?;
        collect(&record.payload, &mut texts, &mut keys);
    }

    // Payloads no department would send: each must be refused cleanly.
    let deep = "[".repeat(5_000);
    let unusual: [&[u8]; 6] = [b"", b"{", b"null", b"[]", b"{\"a\":1e999999}", deep.as_bytes()];
    for (i, payload) in unusual.iter().enumerate() {
        let mut input = vec![i as u8, 0];
        input.extend_from_slice(payload);
        write_seed(&out.join("envelope"), &input)?;
    }

    for line in VECTORS.lines().filter(|l| !l.starts_with('#')) {
        if let Some(number) = line.split('\t').nth(1) {
            texts.insert(number.to_owned());
        }
    }
    for kind in NORMALISERS {
        let dir = out.join(format!("normalise_{kind}"));
        for text in texts.iter().take(MAX_TEXT_SEEDS) {
            write_seed(&dir, text.as_bytes())?;
        }
    }

    let mut dict = String::new();
    for token in [
        "{", "}", "[", "]", ":", ",", "\"", "null", "true", "false", "-0", "1e308", "0.5", "\\u0000",
    ] {
        dict.push_str(&dict_entry(token));
    }
    for key in &keys {
        dict.push_str(&dict_entry(&format!("\"{key}\":")));
    }
    fs::write(out.join("json.dict"), dict)?;
    println!("seed corpus written to {}", out.display());
    Ok(())
}

/// Every string (values and keys) in a payload.
fn collect(value: &Value, texts: &mut BTreeSet<String>, keys: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            texts.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, texts, keys)),
        Value::Object(map) => {
            for (key, v) in map {
                keys.insert(key.clone());
                collect(v, texts, keys);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Writes one seed under a name made of its content's hash, as libFuzzer names its
/// own finds: the same seed twice is one file.
fn write_seed(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    // FNV-1a, 64 bits: a stable name, no dependency.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    fs::write(dir.join(format!("seed-{hash:016x}")), bytes)
}

/// One libFuzzer dictionary line: the token in double quotes, bytes outside printable
/// ASCII (and `"`, `\`) as `\xNN`.
fn dict_entry(token: &str) -> String {
    let mut quoted = String::from("\"");
    for &b in token.as_bytes() {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ' {
            quoted.push(b as char);
        } else {
            quoted.push_str(&format!("\\x{b:02X}"));
        }
    }
    quoted.push_str("\"\n");
    quoted
}
