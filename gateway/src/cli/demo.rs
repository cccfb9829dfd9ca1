//! `tongban demo`: a hub on the embedded store in a temporary folder, seven simulated
//! departments pushing a generated city over mutual TLS, the platform pulling the feed
//! of unified records, and a report: records per department, mentions, unified persons
//! and organisations, repeated collections avoided, quality flags, and the resolution
//! measured against the generator's ground truth.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use tongban_adapters::synth::{self, CityConfig, PairwiseScore, SyntheticRecord};
use tongban_adapters::{Department, RecordType};

use crate::client::{push_file, ClientIdentity, OutcomeCounts, PushOptions, PushReport};
use crate::identity::Identity;
use crate::pki::PkiLayout;
use crate::platform::{pull, PullOptions, PullReport};
use crate::server::{self, ServerSettings};
use crate::store::embedded::EmbeddedStore;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// People in the synthetic city.
    #[arg(long, default_value_t = 3000)]
    people: usize,
    /// Seed of the generator: the same seed gives the same city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the demo's folder (store, PKI, department files, reports) here instead of a
    /// temporary folder that is removed at the end.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// A TOML file with a `[matching]` table (as `tongban estimate` writes) instead of
    /// the default weights and thresholds.
    #[arg(long)]
    matching: Option<PathBuf>,
    /// Deterministic keys only: probabilistic matching off (to measure what it adds).
    #[arg(long)]
    no_matching: bool,
    /// After the report, keep the hub running with the web console open on the demo's
    /// review queue (printing a sign-in link for the demo's steward) until Ctrl-C.
    #[arg(long)]
    console: bool,
    /// Where the console listens (HTTPS; `/metrics` in plain HTTP on the same port).
    #[arg(long, default_value = "127.0.0.1:9464", requires = "console")]
    console_listen: std::net::SocketAddr,
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
    let mut resolution = crate::resolve::Settings::default();
    if let Some(path) = &args.matching {
        resolution.matching = super::matching::load_matching(path)?;
    }
    resolution.matching.enabled &= !args.no_matching;
    let store = EmbeddedStore::open(&dir.join("tongban.db"))?.with_resolution(resolution);
    let settings = ServerSettings::development(&pki, Default::default())?;
    let sessions = std::sync::Arc::clone(&settings.console_sessions);
    let admin = match args.console {
        true => Some(
            server::bind(args.console_listen)
                .await
                .with_context(|| format!("the console's address {}", args.console_listen))?,
        ),
        false => None,
    };
    let hub = server::start_with_admin(server::bind(([127, 0, 0, 1], 0).into()).await?, admin, settings, store)?;
    let endpoint = format!("https://{}", hub.addr);
    println!("Tongban demo: hub on {endpoint} (embedded store in {})", dir.display());

    let city = synth::city(&CityConfig {
        people: args.people,
        seed: args.seed,
    });
    let truth_path = dir.join("truth.jsonl");
    write_lines(&truth_path, synth::truth_lines(&city))?;
    let files = write_department_files(dir, &args, &city)?;
    println!("Seven departments push their exports through PushStream with their own certificates...");
    let mut pushes = Vec::new();
    for (department, file) in files {
        let identity = ClientIdentity::load(&pki.identity_dir(&Identity::Department(department)), None)?;
        let mut options = PushOptions::new(endpoint.clone());
        options.show_progress = false;
        options.batch_size = 200;
        pushes.push(async move { (department, push_file(&file, &identity, &options).await) });
    }
    let pushing = Instant::now();
    let mut reports = Vec::new();
    for (department, report) in futures_util::future::join_all(pushes).await {
        let report = report?;
        if let Some(failure) = &report.failure {
            anyhow::bail!("{department}: push failed: {failure}");
        }
        reports.push((department, report));
    }
    let pushed = pushing.elapsed();
    println!("The platform pulls the feed of unified records...");
    let platform = ClientIdentity::load(&pki.identity_dir(&Identity::Platform), None)?;
    let pull_options = PullOptions::new(endpoint.clone(), dir.join("unified.jsonl"));
    let pulled = pull(&platform, &pull_options, std::future::pending()).await?;
    let again = pull(&platform, &pull_options, std::future::pending()).await?;
    // With the console the hub keeps running after the report.
    let hub = match args.console {
        true => Some(hub),
        false => {
            hub.shutdown().await?;
            None
        }
    };

    print_summary(&reports);
    let lines: u64 = reports.iter().map(|(_, r)| r.lines).sum();
    println!(
        "pushed {lines} records in {:.2} s: {:.0} records per second, validated, adapted, resolved and committed",
        pushed.as_secs_f64(),
        lines as f64 / pushed.as_secs_f64().max(1e-9)
    );
    let unified = read_feed(&pull_options.out)?;
    print_unified(&reports, &unified, &pulled, &again);
    print_score(&city, &unified);
    println!(
        "\nFiles: department exports, unified.jsonl (the feed), truth.jsonl (ground truth) in {}",
        dir.display()
    );
    if args.keep.is_some() {
        println!(
            "Serve this hub again with `tongban dev --data-dir {}`, then pull its feed with \
             `tongban pull --identity {} --out unified.jsonl`; see its statistics with \
             `tongban stats --identity {}` and a department's data-quality report with \
             `tongban quality --identity {}`.",
            dir.display(),
            pki.identity_dir(&Identity::Platform).display(),
            pki.identity_dir(&Identity::Ops).display(),
            pki.identity_dir(&Identity::Department(Department::Tax)).display()
        );
    }
    println!("Done in {:.2} s.", started.elapsed().as_secs_f64());
    if let Some(hub) = hub {
        serve_console(hub, &sessions, &pki).await?;
    }
    Ok(())
}

/// Keeps the demo's hub running for the web console until Ctrl-C or SIGTERM, and says
/// how to reach it: a sign-in link for the demo's steward, or its certificates.
async fn serve_console(
    hub: server::RunningServer,
    sessions: &crate::console::Sessions,
    pki: &PkiLayout,
) -> anyhow::Result<()> {
    let Some(admin) = hub.admin_addr else {
        anyhow::bail!("the console did not start");
    };
    println!();
    super::announce_console(admin, sessions, pki)?;
    open_in_browser(admin, sessions);
    println!("Hub and console are running; Ctrl-C stops them.");
    // Whoever reads these lines (a person, a test) sees them now, not at exit.
    std::io::stdout().flush()?;
    super::shutdown_signal().await;
    hub.shutdown().await?;
    Ok(())
}

/// The feed's final state: the last line of every unified ID.
struct FeedState {
    /// Unified ID → (kind, merged into, sources as (record_type, source_id, role, index)).
    last: BTreeMap<String, (String, Option<String>, Vec<MentionKey>)>,
}

type MentionKey = (String, String, String, u64);

fn read_feed(path: &Path) -> anyhow::Result<FeedState> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut last = BTreeMap::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let text_at = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let sources = value
            .get("sources")
            .and_then(|s| s.as_array())
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| {
                        let field = |name: &str| s.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                        let index = s.get("index").and_then(serde_json::Value::as_u64).unwrap_or_default();
                        (field("record_type"), field("source_id"), field("role"), index)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let merged = value.get("merged_into").and_then(|v| v.as_str()).map(str::to_owned);
        last.insert(text_at("/unified_id"), (text_at("/kind"), merged, sources));
    }
    Ok(FeedState { last })
}

fn print_unified(reports: &[(Department, PushReport)], feed: &FeedState, pulled: &PullReport, again: &PullReport) {
    let mentions: u64 = reports.iter().map(|(_, r)| r.mentions).sum();
    let matched: u64 = reports.iter().map(|(_, r)| r.matched_existing).sum();
    let probabilistic: u64 = reports.iter().map(|(_, r)| r.matched_probabilistically).sum();
    let queued: u64 = reports.iter().map(|(_, r)| r.queued_for_review).sum();
    let live = |kind: &str| {
        feed.last
            .values()
            .filter(|(k, merged, sources)| k == kind && merged.is_none() && !sources.is_empty())
            .count()
    };
    println!("\nUnified records");
    println!("  mentions of persons and organisations in accepted records: {mentions}");
    println!(
        "  unified persons: {}, unified organisations: {}",
        live("person"),
        live("organisation")
    );
    println!(
        "  repeated collection avoided: {matched} mentions ({:.1}%) matched a person or organisation the hub already held",
        percent(matched, mentions)
    );
    println!(
        "  probabilistic matching linked {probabilistic} mentions that no key placed, and queued {queued} for a \
         steward's review (`tongban review`)"
    );
    println!(
        "  feed: {} changes pulled ({} merges); a second pull from the saved cursor wrote {}",
        pulled.changes, pulled.merges, again.changes
    );
    println!("\nQuality flags reported back to each department (the records were accepted):");
    for (department, report) in reports {
        let flags: Vec<String> = report
            .quality_flags
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let flags = if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join(", ")
        };
        println!("  {:<13} {flags}", department.as_str());
    }
}

/// On a desktop, opens the review queue in the default browser, signed in as the
/// demo's steward with a link of its own (the printed one stays unused). Without a
/// display, or without `xdg-open`, the printed link is the way in.
fn open_in_browser(admin: std::net::SocketAddr, sessions: &crate::console::Sessions) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !desktop {
        return;
    }
    let Ok(token) = sessions.sign_in_link(Identity::Steward("steward".to_owned())) else {
        return;
    };
    let opened = std::process::Command::new("xdg-open")
        .arg(format!("https://{admin}/login?token={token}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if opened.is_ok() {
        println!("  Opened the review queue in your browser.");
    }
}

/// Pairwise precision and recall of the feed's clusters against the ground truth.
fn print_score(city: &[SyntheticRecord], feed: &FeedState) {
    let truth: HashMap<MentionKey, String> = city
        .iter()
        .filter(|r| !r.deleted)
        .flat_map(|r| {
            r.truth.iter().map(move |t| {
                (
                    (
                        r.record_type.as_str().to_owned(),
                        r.source_id.clone(),
                        t.slot.role.as_str().to_owned(),
                        u64::from(t.slot.index),
                    ),
                    t.entity.to_string(),
                )
            })
        })
        .collect();
    let clusters: HashMap<MentionKey, String> = feed
        .last
        .iter()
        .filter(|(_, (_, merged, _))| merged.is_none())
        .flat_map(|(id, (_, _, sources))| sources.iter().map(move |s| (s.clone(), id.clone())))
        .collect();
    let score = PairwiseScore::measure(&truth, &clusters);
    println!("\nAgainst the generator's ground truth ({} mentions):", score.mentions);
    println!(
        "  pairwise precision {:.4}: {} of {} pairs put together are one real person or enterprise",
        score.precision(),
        score.correct_pairs,
        score.predicted_pairs
    );
    println!(
        "  pairwise recall {:.4}: {} of {} true duplicate pairs found",
        score.recall(),
        score.correct_pairs,
        score.true_pairs
    );
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for line in lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    Ok(())
}

/// One JSON-lines file per department: its records, then replays and older versions of
/// some of them, then a few structurally broken records.
fn write_department_files(
    dir: &Path,
    args: &DemoArgs,
    city: &[SyntheticRecord],
) -> anyhow::Result<Vec<(Department, PathBuf)>> {
    let again = synth::replays_and_stale(city, args.seed, (city.len() / 20).max(8));
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
