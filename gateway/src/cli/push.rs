//! `tongban push`: a department's connector for JSON-lines files.

use std::path::PathBuf;

use clap::Args;

use crate::client::{push_file, ClientIdentity, PushOptions, PushReport};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Identity folder with cert.pem and key.pem, e.g. tongban-data/pki/tax.
    #[arg(long)]
    identity: PathBuf,
    /// JSON-lines file, one envelope per line:
    /// {"record_type", "source_id", "source_version", "deleted" (optional), "payload": {...}}.
    #[arg(long)]
    file: PathBuf,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Where to write the report (summary and every rejection); default <file>.report.json.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Envelopes per batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let identity = ClientIdentity::load(&args.identity, args.ca.as_deref())?;
    let mut options = PushOptions::new(args.endpoint);
    options.batch_size = args.batch_size;
    options.show_progress = !args.quiet;
    let report = push_file(&args.file, &identity, &options).await?;
    let report_path = args.report.unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".report.json");
        PathBuf::from(name)
    });
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)?;
    print_summary(&report);
    println!("report: {}", report_path.display());
    if let Some(failure) = &report.failure {
        anyhow::bail!("{} envelopes were not delivered: {failure}", report.not_delivered);
    }
    Ok(())
}

pub fn print_summary(report: &PushReport) {
    println!(
        "{}: {} lines — {} accepted, {} unchanged, {} stale, {} rejected, {} unreadable{}",
        report.file,
        report.lines,
        report.accepted,
        report.unchanged,
        report.stale,
        report.rejected,
        report.unreadable,
        if report.retries > 0 {
            format!(" ({} reconnections)", report.retries)
        } else {
            String::new()
        }
    );
    for rejected in report.rejections.iter().take(5) {
        for error in &rejected.errors {
            println!(
                "  line {} {} {}: {} {}",
                rejected.line, rejected.record_type, rejected.source_id, error.pointer, error.message
            );
        }
    }
    if report.rejections.len() > 5 {
        println!(
            "  ... and {} more rejected records in the report",
            report.rejections.len() - 5
        );
    }
    for unreadable in report.unreadable_lines.iter().take(5) {
        println!("  line {}: {}", unreadable.line, unreadable.error);
    }
}
