//! `tongban demo`: a hub on the embedded store in a temporary folder, seven simulated
//! departments pushing a generated city over mutual TLS, and a summary per record type.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use tongban_adapters::synth::{self, CityConfig, SyntheticRecord};
use tongban_adapters::{Department, RecordType};

use crate::client::{push_file, ClientIdentity, OutcomeCounts, PushOptions, PushReport};
use crate::identity::Identity;
use crate::pki::PkiLayout;
use crate::server::{self, ServerSettings};
use crate::store::embedded::EmbeddedStore;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// People in the synthetic city.
    #[arg(long, default_value_t = 300)]
    people: usize,
    /// Seed of the generator: the same seed gives the same city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the demo's folder (store, PKI, department files, reports) here instead of a
    /// temporary folder that is removed at the end.
    #[arg(long)]
    keep: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let dir: &Path = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path()
        }
    };
    let started = Instant::now();
    let pki = PkiLayout::new(dir.join("pki"));
    pki.ensure_dev()?;
    let store = EmbeddedStore::open(&dir.join("tongban.db"))?;
    let settings = ServerSettings::development(&pki, Default::default())?;
    let hub = server::start(server::bind(([127, 0, 0, 1], 0).into()).await?, settings, store)?;
    let endpoint = format!("https://{}", hub.addr);
    println!("Tongban demo: hub on {endpoint} (embedded store in {})", dir.display());

    let files = write_department_files(dir, &args)?;
    println!("Seven departments push their exports through PushStream with their own certificates...");
    let mut pushes = Vec::new();
    for (department, file) in files {
        let identity = ClientIdentity::load(&pki.identity_dir(&Identity::Department(department)), None)?;
        let mut options = PushOptions::new(endpoint.clone());
        options.show_progress = false;
        options.batch_size = 200;
        pushes.push(async move { (department, push_file(&file, &identity, &options).await) });
    }
    let mut reports = Vec::new();
    for (department, report) in futures_util::future::join_all(pushes).await {
        let report = report?;
        if let Some(failure) = &report.failure {
            anyhow::bail!("{department}: push failed: {failure}");
        }
        reports.push((department, report));
    }
    hub.shutdown().await?;
    print_summary(&reports);
    println!("\nDone in {:.2} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// One JSON-lines file per department: its records, then replays and older versions of
/// some of them, then a few structurally broken records.
fn write_department_files(dir: &Path, args: &DemoArgs) -> anyhow::Result<Vec<(Department, PathBuf)>> {
    let city = synth::city(&CityConfig {
        people: args.people,
        seed: args.seed,
    });
    let again = synth::replays_and_stale(&city, args.seed, (city.len() / 20).max(8));
    let broken: Vec<SyntheticRecord> = synth::defective(args.seed)
        .into_iter()
        .map(|(record, _)| record)
        .collect();
    let mut by_department: BTreeMap<Department, Vec<&SyntheticRecord>> = BTreeMap::new();
    for record in city.iter().chain(&again).chain(&broken) {
        by_department
            .entry(record.record_type.department())
            .or_default()
            .push(record);
    }
    let mut files = Vec::new();
    for (department, records) in by_department {
        let path = dir.join(format!("{department}.jsonl"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for record in records {
            writeln!(file, "{}", record.to_json_line())?;
        }
        file.flush()?;
        files.push((department, path));
    }
    Ok(files)
}

fn print_summary(reports: &[(Department, PushReport)]) {
    println!();
    println!(
        "{:<22} {:<13} {:>9} {:>10} {:>6} {:>9}",
        "record type", "department", "accepted", "unchanged", "stale", "rejected"
    );
    let mut total = OutcomeCounts::default();
    for record_type in RecordType::ALL {
        let counts = reports
            .iter()
            .filter_map(|(_, r)| r.by_record_type.get(record_type.as_str()))
            .fold(OutcomeCounts::default(), add);
        total = add(total, &counts);
        println!(
            "{:<22} {:<13} {:>9} {:>10} {:>6} {:>9}",
            record_type.as_str(),
            record_type.department().as_str(),
            counts.accepted,
            counts.unchanged,
            counts.stale,
            counts.rejected
        );
    }
    println!(
        "{:<22} {:<13} {:>9} {:>10} {:>6} {:>9}",
        "total", "", total.accepted, total.unchanged, total.stale, total.rejected
    );
    println!("\nSome rejections, as the departments see them (each kept in quarantine):");
    for (department, report) in reports {
        if let Some(rejected) = report.rejections.first() {
            if let Some(error) = rejected.errors.first() {
                let pointer = if error.pointer.is_empty() {
                    "(payload)"
                } else {
                    error.pointer.as_str()
                };
                println!(
                    "  {department:<13} {} {} at {pointer}: {}",
                    rejected.record_type, rejected.source_id, error.message
                );
            }
        }
    }
}

fn add(a: OutcomeCounts, b: &OutcomeCounts) -> OutcomeCounts {
    OutcomeCounts {
        accepted: a.accepted + b.accepted,
        unchanged: a.unchanged + b.unchanged,
        stale: a.stale + b.stale,
        rejected: a.rejected + b.rejected,
    }
}
