//! The synthetic city as its seven departments export it: one JSON-lines file of
//! envelopes per department, as `tongban demo` writes them, but only the city's
//! records (no replays, stale copies or broken records): every file line is then one
//! row with its own key for PostgreSQL's COPY, and Splink reads the same records.
//!
//! Written one department at a time (`synth::city_by_department`), so that a city of a
//! million people is never in memory whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tongban_adapters::synth::{self, CityConfig};
use tongban_adapters::Department;

use crate::report::MIB;

/// The department files of one city.
#[derive(Debug, Clone)]
pub struct CityFiles {
    pub dir: PathBuf,
    pub files: Vec<(Department, PathBuf)>,
    /// Envelopes (lines) in all files.
    pub records: u64,
    pub bytes: u64,
}

/// Generates the city of `people` from `seed` and writes `<dir>/<department>.jsonl`.
pub fn write(dir: &Path, people: usize, seed: u64) -> anyhow::Result<CityFiles> {
    let started = Instant::now();
    let mut city = CityFiles {
        dir: dir.to_owned(),
        files: Vec::new(),
        records: 0,
        bytes: 0,
    };
    for (department, records) in synth::city_by_department(&CityConfig { people, seed }) {
        let path = dir.join(format!("{department}.jsonl"));
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for record in &records {
            let line = record.to_json_line();
            city.bytes += line.len() as u64 + 1;
            writeln!(out, "{line}").with_context(|| format!("writing {}", path.display()))?;
        }
        out.flush().with_context(|| format!("writing {}", path.display()))?;
        city.records += records.len() as u64;
        city.files.push((department, path));
    }
    eprintln!(
        "bench: city of {people} people: {} records, {:.0} MiB in {} files, written in {:.1} s",
        city.records,
        city.bytes as f64 / MIB,
        city.files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(city)
}
