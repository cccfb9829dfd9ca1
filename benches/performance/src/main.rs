//! `tongban-bench`: the performance benchmark. Runs `tongban serve` (the release
//! binary) on PostgreSQL and on the embedded store against synthetic cities, and
//! measures each figure against a baseline measured in the same run: ingest against
//! PostgreSQL's COPY and against Splink, single-record push latency against a durable
//! INSERT, the feed against COPY TO, lookups against primary-key SELECTs, the ingest
//! rate of a large city against a small one's, and the hub's peak RSS. Run it with
//! `benches/performance/run` (see benches/performance/README.md).
//!
//! Map of the crate, in the order a run goes:
//! - [`database`]: the PostgreSQL server, throw-away databases dropped on any exit.
//! - [`city`]: the synthetic city's department files, one department at a time.
//! - [`baseline`]: what PostgreSQL alone does with the same data (COPY FROM, COPY TO,
//!   single-row INSERTs, primary-key SELECTs).
//! - [`splink`]: Splink's deduplication of the same person mentions (Python).
//! - [`hub`]: `tongban serve` as a child process on either store, its peak RSS.
//! - [`process`]: child processes that never outlive the driver.
//! - [`ingest`]: seven departments pushing at once while the platform follows the feed.
//! - [`maintenance`]: autovacuum's work on the hub's database, where the server has it off.
//! - [`floor`]: the store's floor, the rows the hub wrote copied into a fresh database.
//! - [`feed`]: the feed read from the start.
//! - [`lookup`]: lookups by identifier from many callers.
//! - [`latency`]: single-record pushes at the most the hub takes, then at half of it.
//! - [`load`]: closed and open loops of calls, and their percentiles.
//! - [`report`]: the table and the JSON file.

mod baseline;
mod city;
mod database;
mod feed;
mod floor;
mod hub;
mod ingest;
mod latency;
mod load;
mod lookup;
mod maintenance;
mod process;
mod report;
mod splink;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use tongban_adapters::Department;
use tongban_proto::v1 as pb;

use crate::city::CityFiles;
use crate::database::{Database, Server};
use crate::hub::{Hub, StoreKind};
use crate::report::{Results, SizeRun, StoreRun, MIB};

/// The performance benchmark of the hub; see benches/performance/README.md.
#[derive(Debug, Parser)]
#[command(name = "tongban-bench")]
struct Args {
    /// City sizes (people), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000, 1_000_000])]
    people: Vec<usize>,
    /// Stores to run the hub on, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![StoreKind::Postgres, StoreKind::Embedded])]
    store: Vec<StoreKind>,
    /// Leave Splink out (no Python needed).
    #[arg(long)]
    skip_splink: bool,
    /// PostgreSQL, as a role that may create databases: the baselines' database and
    /// the hub's are made there and dropped at the end.
    #[arg(
        long,
        env = "TONGBAN_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The hub's release binary (`target/release/tongban`).
    #[arg(long)]
    tongban: PathBuf,
    /// Python of the benchmark's venv, with Splink (`target/bench-venv/bin/python`).
    #[arg(long, required_unless_present = "skip_splink")]
    python: Option<PathBuf>,
    /// Where `perf-<date>.json` is written.
    #[arg(long, default_value = "target/bench-results")]
    results_dir: PathBuf,
    /// Where the department files and the embedded store go (a temporary folder made
    /// here and removed at the end; a million people take tens of gigabytes).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seed of the synthetic city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Envelopes per PushStream batch (the connector's default).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Concurrent lookup callers (and the baseline's connections).
    #[arg(long, default_value_t = 64)]
    lookup_callers: usize,
    /// Seconds of lookups.
    #[arg(long, default_value = "10", value_parser = phase_seconds)]
    lookup_seconds: Duration,
    /// Seconds of single-record pushes at the most the hub takes.
    #[arg(long, default_value = "10", value_parser = phase_seconds)]
    max_rate_seconds: Duration,
    /// Seconds of single-record pushes at half that rate (the latency measured).
    #[arg(long, default_value = "20", value_parser = phase_seconds)]
    latency_seconds: Duration,
    /// The commit measured, recorded in the JSON.
    #[arg(long)]
    commit: Option<String>,
}

/// People of the city whose records the single-record pushes send (never part of the
/// ingested city): ~89,000 records, enough for both phases while the hub takes up to
/// ~4,400 pushes a second (10 s at the most, 20 s at half of it).
const LATENCY_PEOPLE: usize = 40_000;
/// How long the end of the run waits for blocking work still running.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Identifiers drawn from the feed for the lookups.
const LOOKUP_IDENTIFIERS: usize = 10_000;

fn main() -> ExitCode {
    let args = Args::parse();
    tongban_gateway::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tongban-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        // `run` is polled here, on the main thread: the children it starts die with
        // this thread (see process::die_with_driver).
        tokio::select! {
            result = run(args) => result,
            // Dropping the run kills the hub and Splink, drops the databases, removes
            // the folders.
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
            _ = terminate.recv() => Err(anyhow::anyhow!("terminated (SIGTERM)")),
        }
    });
    // Blocking work cannot be cancelled (a city being generated, a million people's
    // taking minutes): after an interruption it is abandoned, not waited for. Its
    // folder is already gone.
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tongban-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if !args.tongban.is_file() {
        bail!(
            "no hub binary at {}: build it with `cargo build --release -p tongban-gateway` \
             (benches/performance/run does)",
            args.tongban.display()
        );
    }
    if let (false, Some(python)) = (args.skip_splink, &args.python) {
        if !python.is_file() {
            bail!(
                "no Python at {}: benches/performance/run makes the venv, or pass --skip-splink",
                python.display()
            );
        }
    }
    let server = Server::check(&args.database_url).await?;
    let work = match &args.work_dir {
        Some(dir) => tempfile::Builder::new().prefix("tongban-bench-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("tongban-bench-").tempdir(),
    }
    .context("creating the benchmark's folder")?;
    let mut people = args.people.clone();
    people.sort_unstable();
    people.dedup();
    let mut stores = args.store.clone();
    stores.sort_unstable();
    stores.dedup();

    let baselines = server.create("tongban_bench_baseline").await?;
    let seed = args.seed;
    let fresh = tokio::task::spawn_blocking(move || latency::fresh_records(LATENCY_PEOPLE, seed.wrapping_add(1)))
        .await
        .context("generating the single-record pushes")?;
    let fresh = Arc::new(fresh);

    let mut sizes = Vec::new();
    let mut failure = None;
    for &n in &people {
        match run_size(&args, &server, &baselines, work.path(), n, &stores, &fresh).await {
            Ok(size) => sizes.push(size),
            Err(e) => {
                failure = Some(e.context(format!("city of {n} people")));
                break;
            }
        }
    }
    baselines.drop_now().await?;

    let rows = report::rows(&sizes);
    if !rows.is_empty() {
        println!("{}", report::table(&rows));
    }
    let driver_peak_rss = hub::peak_rss_of("/proc/self/status")?;
    eprintln!(
        "bench: the driver's own peak RSS: {:.0} MiB",
        driver_peak_rss as f64 / MIB
    );
    let results = Results {
        started,
        commit: args.commit.clone(),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        seed: args.seed,
        sizes,
        driver_peak_rss,
        rows,
    };
    if !results.sizes.is_empty() {
        let path = report::write_json(&args.results_dir, &results)?;
        eprintln!("bench: results in {}", path.display());
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn run_size(
    args: &Args,
    server: &Server,
    baselines: &Database,
    work: &Path,
    people: usize,
    stores: &[StoreKind],
    fresh: &Arc<Vec<(Department, pb::Envelope)>>,
) -> anyhow::Result<SizeRun> {
    eprintln!("bench: === a city of {people} people ===");
    let dir = tempfile::Builder::new()
        .prefix(&format!("city-{people}-"))
        .tempdir_in(work)
        .context("creating the city's folder")?;
    let city = {
        let (path, seed) = (dir.path().to_owned(), args.seed);
        tokio::task::spawn_blocking(move || city::write(&path, people, seed))
            .await
            .context("writing the city")??
    };

    eprintln!("bench: baseline: COPY FROM of {} rows", city.records);
    let copy_in = baseline::copy_in(baselines, &city).await?;
    eprintln!("bench:   {:.0} rows/s ({:.1} s)", copy_in.rate, copy_in.seconds);
    eprintln!(
        "bench: baseline: primary-key SELECTs from {} connections for {:?}",
        args.lookup_callers, args.lookup_seconds
    );
    let lookup_baseline = baseline::lookup(baselines, args.lookup_callers, args.lookup_seconds).await?;
    eprintln!(
        "bench:   {:.0} /s, p99 {:.2} ms",
        lookup_baseline.rate, lookup_baseline.p99_ms
    );
    baseline::drop_table(baselines, "source_records").await?;

    let splink = match (&args.python, args.skip_splink) {
        (Some(python), false) => {
            eprintln!("bench: Splink: dedupe of the city's person mentions, training included");
            let time = splink::time(python, dir.path()).await?;
            eprintln!("bench:   {:.1} s for {} mentions", time.seconds, time.mentions);
            Some(time)
        }
        _ => None,
    };

    let mut runs = Vec::new();
    for &store in stores {
        let run = run_store(args, server, baselines, work, &city, store, fresh)
            .await
            .with_context(|| format!("the hub on the {store} store"))?;
        runs.push(run);
    }
    Ok(SizeRun {
        people,
        records: city.records,
        file_bytes: city.bytes,
        copy_in,
        lookup_callers: args.lookup_callers,
        lookup_baseline,
        splink,
        stores: runs,
    })
}

async fn run_store(
    args: &Args,
    server: &Server,
    baselines: &Database,
    work: &Path,
    city: &CityFiles,
    store: StoreKind,
    fresh: &Arc<Vec<(Department, pb::Envelope)>>,
) -> anyhow::Result<StoreRun> {
    eprintln!("bench: [{store}] starting tongban serve");
    let hub = Hub::start(&args.tongban, store, server, work).await?;
    let maintenance = match hub.database() {
        Some(database) => maintenance::start_if_needed(database).await?,
        None => None,
    };

    eprintln!(
        "bench: [{store}] ingest: seven departments push {} records while the platform follows the feed",
        city.records
    );
    let feed_file = city.dir.join(format!("unified-{store}.jsonl"));
    let ingest = ingest::run(&hub, city, args.batch_size, &feed_file).await?;
    if !ingest.all_accepted {
        eprintln!(
            "bench: warning: of {} records, {} were accepted, {} rejected, {} stale, {} unchanged: \
             the city's records should all be accepted; its ingest rows are marked FAIL",
            ingest.records, ingest.accepted, ingest.rejected, ingest.stale, ingest.unchanged
        );
    }
    let peak_rss_after_ingest = hub.peak_rss()?;
    let store_bytes_after_ingest = hub.store_bytes().await?;
    let feed_file_bytes = std::fs::metadata(&feed_file)
        .with_context(|| format!("reading {}", feed_file.display()))?
        .len();
    eprintln!(
        "bench:   {:.0} records/s ({:.1} s; {} accepted, {} rejected); published in {:.1} s; hub peak RSS {:.0} MiB",
        ingest.rate,
        ingest.ingest_seconds,
        ingest.accepted,
        ingest.rejected,
        ingest.published_seconds,
        peak_rss_after_ingest as f64 / MIB
    );
    eprintln!(
        "bench:   store {:.0} MiB on disk, the platform's feed file {:.0} MiB",
        store_bytes_after_ingest as f64 / MIB,
        feed_file_bytes as f64 / MIB
    );
    // The hub's rows for the floor, copied out now and in once the hub has stopped.
    let dumped = match hub.database() {
        Some(database) => {
            eprintln!("bench: [{store}] the store's floor: the hub's rows copied out");
            match floor::dump(database, work).await {
                Ok(dumped) => Some(dumped),
                Err(e) => {
                    eprintln!("bench: warning: the store's floor is left out: {e:#}");
                    None
                }
            }
        }
        None => None,
    };
    let identifiers = {
        let (path, seed) = (feed_file.clone(), args.seed);
        tokio::task::spawn_blocking(move || ingest::sample_identifiers(&path, LOOKUP_IDENTIFIERS, seed))
            .await
            .context("sampling identifiers")??
    };
    // A feed with no changes leaves no cursor file (pull writes none before the first).
    for path in [feed_file.clone(), feed_file.with_extension("jsonl.cursor")] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }

    eprintln!("bench: [{store}] feed: Changes from the start");
    let feed = feed::read_from_start(&hub).await?;
    eprintln!("bench:   {:.0} changes/s ({} changes)", feed.rate, feed.changes);
    // Nothing writes to the feed between its reading and the COPY: the store holds
    // exactly the rows the feed should have delivered.
    let (feed_baseline, stored) = match hub.database() {
        Some(database) => {
            let client = database.connect().await?;
            let stored = baseline::count_rows(&client, "changes").await?;
            let copied = baseline::copy_out(&client, &baseline::feed_select("changes", feed.changes)).await?;
            (copied, stored)
        }
        None => {
            let loaded = baseline::load_embedded_feed(&hub.sqlite_path(), baselines).await?;
            eprintln!("bench:   (the embedded store's {loaded} feed rows loaded into PostgreSQL for COPY TO)");
            let client = baselines.connect().await?;
            let copied = baseline::copy_out(&client, &baseline::feed_select("changes", feed.changes)).await?;
            baseline::drop_table(baselines, "changes").await?;
            (copied, loaded)
        }
    };
    if stored != feed.changes {
        eprintln!(
            "bench: warning: the store holds {stored} changes, the feed delivered {}",
            feed.changes
        );
    }
    eprintln!(
        "bench:   baseline COPY TO: {:.0} rows/s ({} rows)",
        feed_baseline.rate, feed_baseline.rows
    );
    if feed_baseline.rows != feed.changes {
        eprintln!(
            "bench: warning: COPY TO read {} rows, the feed {} changes",
            feed_baseline.rows, feed.changes
        );
    }

    eprintln!(
        "bench: [{store}] lookup: {} callers by identifier for {:?}",
        args.lookup_callers, args.lookup_seconds
    );
    let lookup = lookup::run(&hub, identifiers, args.lookup_callers, args.lookup_seconds).await?;
    eprintln!(
        "bench:   {:.0} /s, p99 {:.2} ms, {} errors",
        lookup.rate, lookup.p99_ms, lookup.errors
    );
    warn_errors("lookup", &lookup);

    eprintln!(
        "bench: [{store}] single-record pushes: the most for {:?}, then half of it for {:?}",
        args.max_rate_seconds, args.latency_seconds
    );
    let pool_size = hub::postgres_pool_size()?;
    let latency = latency::run(
        &hub,
        fresh.clone(),
        pool_size,
        args.max_rate_seconds,
        args.latency_seconds,
    )
    .await?;
    eprintln!(
        "bench:   at {:.0} /s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} errors; send lag p99 {:.2} ms",
        latency.half_rate,
        latency.half.p50_ms,
        latency.half.p99_ms,
        latency.half.p999_ms,
        latency.half.errors,
        latency.half.send_lag_p99_ms.unwrap_or_default()
    );
    warn_errors("push", &latency.max);
    warn_errors("push", &latency.half);
    eprintln!(
        "bench: baseline: single-row INSERT+commit at {:.0} /s",
        latency.half_rate
    );
    let insert_baseline = baseline::insert_latency(
        baselines,
        fresh.clone(),
        pool_size,
        latency.half_rate,
        args.latency_seconds,
    )
    .await?;
    eprintln!(
        "bench:   p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; send lag p99 {:.2} ms",
        insert_baseline.p50_ms,
        insert_baseline.p99_ms,
        insert_baseline.p999_ms,
        insert_baseline.send_lag_p99_ms.unwrap_or_default()
    );
    warn_errors("INSERT", &insert_baseline);

    let maintenance = match maintenance {
        Some(running) => {
            let done = running.stop().await?;
            eprintln!(
                "bench: [{store}] in autovacuum's place: {} vacuums, {} analyses, {:.0} s",
                done.vacuums, done.analyses, done.seconds
            );
            Some(done)
        }
        None => None,
    };
    let peak_rss = hub.stop().await?;
    eprintln!(
        "bench: [{store}] hub stopped; peak RSS {:.0} MiB",
        peak_rss as f64 / MIB
    );
    let floor = match dumped {
        Some(dumped) => {
            eprintln!("bench: [{store}] the store's floor: the hub's rows copied into a fresh database");
            match floor::load(server, &dumped, city.records).await {
                Ok(floor) => {
                    report_floor(&floor);
                    Some(floor)
                }
                Err(e) => {
                    eprintln!("bench: warning: the store's floor is left out: {e:#}");
                    None
                }
            }
        }
        None => None,
    };
    Ok(StoreRun {
        store,
        ingest,
        maintenance,
        floor,
        feed,
        feed_baseline,
        lookup,
        latency,
        insert_baseline,
        store_bytes_after_ingest,
        feed_file_bytes,
        peak_rss_after_ingest,
        peak_rss,
    })
}

fn report_floor(floor: &floor::Floor) {
    eprintln!(
        "bench:   {:.0} records/s ({:.1} s for {} rows, {:.0} MiB, {} connections)",
        floor.records_rate,
        floor.seconds,
        floor.rows,
        floor.bytes as f64 / MIB,
        floor.connections
    );
    let mut largest = floor.tables.clone();
    largest.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    for table in largest.iter().take(8) {
        eprintln!(
            "bench:     {}: {} rows, {:.0} MiB, done at {:.1} s",
            table.table,
            table.rows,
            table.bytes as f64 / MIB,
            table.seconds
        );
    }
}

/// The length of a timed phase: a finite number of seconds, at least 0.1.
fn phase_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    if seconds.is_nan() || seconds < 0.1 {
        return Err(format!("{text} s: a phase takes at least 0.1 s"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text} s: {e}"))
}

fn warn_errors(what: &str, summary: &load::Summary) {
    if let Some(error) = &summary.first_error {
        eprintln!(
            "bench: warning: {} {what} calls failed, the first: {error}",
            summary.errors
        );
    }
    if summary.exhausted {
        eprintln!("bench: warning: the {what} phase ran out of records before its time was up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lengths_are_finite_seconds() {
        assert_eq!(phase_seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(phase_seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["inf", "NaN", "-1", "0", "0.01", "1e300", "ten"] {
            assert!(phase_seconds(bad).is_err(), "{bad}");
        }
        let parsed = Args::try_parse_from([
            "tongban-bench",
            "--tongban",
            "t",
            "--skip-splink",
            "--lookup-seconds",
            "inf",
        ]);
        assert!(parsed.is_err(), "inf is refused with a message, not a panic");
    }
}
