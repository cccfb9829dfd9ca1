//! Splink's batch deduplication of the same person mentions, training included:
//! `splink_time.py` (beside this crate) reads the department files, extracts the
//! person mentions as benches/quality does, runs benches/quality's city model, and
//! prints its seconds as JSON on its last line of output.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/splink_time.py");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplinkTime {
    /// From building the linker to the clusters, training included.
    pub seconds: f64,
    /// Person mentions linked.
    pub mentions: u64,
    /// Reading the files into mention rows (not part of `seconds`).
    pub extract_seconds: f64,
    pub clusters: u64,
    pub splink_version: String,
}

/// Runs Splink on the department files in `dir` with `python` (the benchmark's venv).
pub fn time(python: &Path, dir: &Path) -> anyhow::Result<SplinkTime> {
    let output = Command::new(python)
        .arg(SCRIPT)
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {SCRIPT}", python.display()))?;
    if !output.status.success() {
        bail!("{SCRIPT} exited with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{SCRIPT} printed no result: {last:?}"))
}
