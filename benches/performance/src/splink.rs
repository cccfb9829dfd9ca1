//! Splink's batch deduplication of the same person mentions, training included:
//! `splink_time.py` (beside this crate) reads the department files, extracts the
//! person mentions as benches/quality does, runs benches/quality's city model, and
//! prints its seconds as JSON on its last line of output. Python runs as a child the
//! run waits for: an interrupted run kills it, and it dies with the driver.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::process::{die_with_driver, Running};

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
/// Its output goes to a file in `dir` (a pipe would need a reader beside the wait).
pub async fn time(python: &Path, dir: &Path) -> anyhow::Result<SplinkTime> {
    let out_path = dir.join("splink-output.txt");
    let out = std::fs::File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit());
    die_with_driver(&mut command);
    let child = command
        .spawn()
        .with_context(|| format!("running {} {SCRIPT}", python.display()))?;
    let status = Running::new(child)
        .wait()
        .await
        .with_context(|| format!("waiting for {SCRIPT}"))?;
    if !status.success() {
        bail!("{SCRIPT} exited with {status}");
    }
    let stdout = std::fs::read_to_string(&out_path).with_context(|| format!("reading {}", out_path.display()))?;
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{SCRIPT} printed no result: {last:?}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    /// A stand-in for Python: prints progress and then the result line.
    fn fake_python(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("python");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing the stand-in");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("making it executable");
        path
    }

    #[tokio::test]
    async fn the_result_is_the_last_line_printed() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let python = fake_python(
            dir.path(),
            r#"echo "linking..."; echo '{"seconds": 1.5, "mentions": 10, "extract_seconds": 0.1, "clusters": 4, "splink_version": "4.0.17"}'; echo"#,
        );
        let measured = time(&python, dir.path()).await.expect("a result");
        assert_eq!((measured.seconds, measured.mentions, measured.clusters), (1.5, 10, 4));
        let failing = fake_python(dir.path(), "exit 3");
        let error = time(&failing, dir.path()).await.expect_err("exit 3 is a failure");
        assert!(format!("{error:#}").contains("exit status: 3"), "{error:#}");
    }

    #[tokio::test]
    async fn an_abandoned_run_kills_python() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let pid_file = dir.path().join("pid");
        let python = fake_python(dir.path(), &format!("echo $$ > {}; exec sleep 30", pid_file.display()));
        let abandoned = tokio::time::timeout(Duration::from_millis(500), time(&python, dir.path())).await;
        assert!(abandoned.is_err(), "still running when dropped");
        let pid = std::fs::read_to_string(&pid_file).expect("the child wrote its pid");
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the child was killed and reaped"
        );
    }
}
