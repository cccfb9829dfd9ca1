//! `tongban estimate` and `tongban rematch`: tuning probabilistic matching on the
//! records the hub holds.
//!
//! Both work on a store directly (stop the hub, or run them beside it: every change is
//! a transaction like a push): a development folder (`--data-dir`) or the store of a
//! configuration file (`--config`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use tongban_adapters::model::{EntityKind, Mention};
use tongban_adapters::RecordType;

use crate::pipeline::adapt::contribution;
use crate::resolve::matching::estimate::{estimate, to_toml};
use crate::resolve::matching::MatchSettings;
use crate::resolve::Settings;
use crate::store::{AnyStore, Reresolution, Store};

/// Records read from the store at a time.
const PAGE: usize = 500;

/// Which store, and which matching settings.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    location: super::StoreLocation,
    /// A TOML file with a `[matching]` table (as `tongban estimate` writes) to use
    /// instead of the configured or default settings.
    #[arg(long)]
    matching: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where to write the estimated `[matching]` table; default: standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Random pairs sampled for u.
    #[arg(long, default_value_t = 200_000)]
    random_pairs: usize,
    /// Also set the thresholds from the population: review where a pair's odds are
    /// even (log2 n bits for n entities), link where they are 99 to 1 (log2 99n).
    /// Without it the configured thresholds are kept.
    #[arg(long)]
    thresholds: bool,
}

#[derive(Debug, Args)]
pub struct RematchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// A file holding only a `[matching]` table.
#[derive(Debug, Deserialize)]
struct MatchingFile {
    matching: MatchSettings,
}

/// Reads the `[matching]` table of a TOML file.
pub fn load_matching(path: &Path) -> anyhow::Result<MatchSettings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: MatchingFile =
        toml::from_str(&text).with_context(|| format!("{} has no valid [matching] table", path.display()))?;
    let problems = file.matching.problems();
    anyhow::ensure!(problems.is_empty(), "{}: {}", path.display(), problems.join("; "));
    Ok(file.matching)
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<(AnyStore, Settings)> {
        let (store, mut settings) = self.location.open().await?;
        if let Some(path) = &self.matching {
            settings.matching = load_matching(path)?;
        }
        Ok((store.with_resolution(settings.clone()), settings))
    }
}

/// The next page of current records after `after`, read again through their adapter;
/// `None` at the end.
async fn next_page(
    store: &AnyStore,
    after: &mut Option<(String, String)>,
) -> anyhow::Result<Option<Vec<Reresolution>>> {
    let records = store.current_records(after.clone(), PAGE).await?;
    let Some(last) = records.last() else {
        return Ok(None);
    };
    *after = Some((last.record_type.clone(), last.source_id.clone()));
    let mut batch = Vec::with_capacity(records.len());
    for record in records {
        let Ok(record_type) = record.record_type.parse::<RecordType>() else {
            continue;
        };
        let payload: Value = serde_json::from_str(&record.version.payload)
            .with_context(|| format!("stored payload of {} {}", record.record_type, record.source_id))?;
        // A record the adapter cannot read now keeps what it had.
        match contribution(record_type, &payload, record.version.deleted) {
            Ok(contribution) => batch.push(Reresolution {
                source_id: record.source_id,
                source_version: record.version.source_version,
                contribution,
            }),
            Err(error) => eprintln!(
                "skipped {} {}: the adapter cannot read it ({})",
                record.record_type, record.source_id, error.message
            ),
        }
    }
    Ok(Some(batch))
}

pub async fn estimate_run(args: EstimateArgs) -> anyhow::Result<()> {
    let (store, settings) = args.store.open().await?;
    // Every mention is held in memory (the profiles and key clusters need them all):
    // about a kilobyte each.
    let mut persons: Vec<Mention> = Vec::new();
    let mut organisations: Vec<Mention> = Vec::new();
    let mut after = None;
    while let Some(batch) = next_page(&store, &mut after).await? {
        for record in batch {
            for mention in record.contribution.mentions {
                match mention.kind {
                    EntityKind::Person => persons.push(mention),
                    EntityKind::Organisation => organisations.push(mention),
                }
            }
        }
    }
    let mut person = estimate(
        EntityKind::Person,
        &persons,
        &settings.matching.person,
        args.random_pairs,
    );
    let mut organisation = estimate(
        EntityKind::Organisation,
        &organisations,
        &settings.matching.organisation,
        args.random_pairs,
    );
    if args.thresholds {
        person.thresholds_from_population();
        organisation.thresholds_from_population();
    }
    for e in [&person, &organisation] {
        eprintln!(
            "{}: {} mentions, {} pairs sharing a key (m), {} random pairs (u)",
            e.kind.as_str(),
            e.mentions,
            e.matching_pairs,
            e.random_pairs
        );
    }
    let mut matching = settings.matching.clone();
    matching.person = person.settings;
    matching.organisation = organisation.settings;
    let text = format!(
        "# Estimated by `tongban estimate` from {} person and {} organisation mentions:\n\
         # m from pairs sharing a key, u from random pairs.\n{}",
        person.mentions,
        organisation.mentions,
        to_toml(&matching)
    );
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub async fn rematch_run(args: RematchArgs) -> anyhow::Result<()> {
    let (store, _) = args.store.open().await?;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} records resolved again") {
        bar.set_style(style);
    }
    let (mut read, mut resolved) = (0, 0);
    let mut after = None;
    while let Some(batch) = next_page(&store, &mut after).await? {
        read += batch.len();
        resolved += store.reresolve(batch).await?;
        bar.set_position(read as u64);
    }
    bar.finish_and_clear();
    println!(
        "resolved {resolved} of {read} current records again; the changes are in the feed \
         (records changed since they were read were left to their push)"
    );
    Ok(())
}
