//! Operational statistics for the `ops` identity: per department, record type and
//! minute, how many records came in and what became of them, how their mentions were
//! resolved, how long whole pushes took, and how many lookups were granted and spared
//! a department from collecting again what another department holds.
//!
//! **Statistics hold no personal data at all**: counts and timings under a department's
//! short name and a record type, never an identifier, a unified ID or a name. That is
//! what lets `ops`, which reads no personal data, read them.
//!
//! Counting is on the hot path of every push and lookup, so [`Traffic`] only adds to a
//! map under a mutex: no I/O, no await. [`Statistics`] adds the map to the store
//! (`Store::add_traffic`, an upsert that adds) every [`FLUSH_INTERVAL`], when the
//! server stops, and before it answers `Operations.Statistics`; a failed flush keeps the
//! counts for the next one, and never fails a push or a lookup. Because the store adds,
//! statistics survive restarts and replicas over one database add up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tongban_adapters::{Department, RecordType};

use crate::identity::Identity;
use crate::record::{Outcome, RecordResult};
use crate::store::{Store, StoreError, TrafficRow};
use crate::unified::UnifiedRecord;

/// How often each process adds its counts to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// The default range of a report, back from its end.
pub const DEFAULT_RANGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The default window of a report, in minutes.
pub const DEFAULT_WINDOW_MINUTES: u32 = 60;
/// A report has at most this many windows: a finer window needs a shorter range.
pub const MAX_WINDOWS: i64 = 10_000;

/// The resolution kinds counted, as `Resolution::resolved_by` names them
/// (`Placement::kind`).
pub const RESOLVED_BY: [&str; 6] = ["key", "previous", "matched", "founded", "queued", "steward"];

// ---------------------------------------------------------------------------------------
// The latency histogram

/// Buckets of push latency: bucket `i < LAST` holds times up to `0.5 ms × 2^(i/2)` (and
/// above the bound of `i - 1`), from 0.5 ms to 65.5 s; bucket `LAST` holds anything
/// longer. Fixed bounds, so that histograms of any windows and replicas merge by adding.
pub const BUCKETS: usize = 36;
const LAST: usize = BUCKETS - 1;

/// The upper bound of bucket `i < LAST`, in milliseconds.
fn upper_bound_ms(i: usize) -> f64 {
    0.5 * 2f64.powf(i as f64 / 2.0)
}

/// The bucket a duration falls into.
pub fn bucket_of(elapsed: Duration) -> usize {
    let ms = elapsed.as_secs_f64() * 1000.0;
    (0..LAST).find(|&i| ms <= upper_bound_ms(i)).unwrap_or(LAST)
}

/// Counts of pushes per latency bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: [0; BUCKETS] }
    }
}

impl Histogram {
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds, interpolated linearly within its
    /// bucket; 0 when empty. Beyond the last bound it answers that bound (65.5 s): at
    /// least that long.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        // The rank of the sample asked for, 1-based: the smallest with at least q of
        // the samples at or below it.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut below = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            if count > 0 && below + count >= rank {
                let lower = if i == 0 { 0.0 } else { upper_bound_ms(i - 1) };
                if i == LAST {
                    return lower;
                }
                let upper = upper_bound_ms(i);
                return lower + (upper - lower) * (rank - below) as f64 / count as f64;
            }
            below += count;
        }
        upper_bound_ms(LAST - 1)
    }
}

// ---------------------------------------------------------------------------------------
// Counting

/// What one counter counts. Stored by [`Counter::name`]; a name this version does not
/// know (written by a newer one) is skipped when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// A record of an answered batch, by outcome.
    Record(Outcome),
    /// A mention of an accepted record, by what placed it (an index into [`RESOLVED_BY`]).
    Resolved(usize),
    /// A mention of an accepted record that joined an entity existing before it.
    Existing,
    Batches,
    BatchesRefused,
    /// An answered batch whose push took a time of this bucket.
    Latency(usize),
    Lookups,
    CollectionsAvoided,
    /// A rejected record, by the code of each distinct error it got (`schema.required`).
    Rejected(&'static str),
}

/// The error codes rejections are counted by, each kept once for the process (the
/// codes are the hub's own, a few dozen; what a store holds beyond [`MAX_CODES`] is
/// not read, so a database written by another version cannot grow this without end).
fn rejection_code(code: &str) -> Option<&'static str> {
    const MAX_CODES: usize = 256;
    static CODES: std::sync::OnceLock<Mutex<std::collections::HashSet<&'static str>>> = std::sync::OnceLock::new();
    let plausible = !code.is_empty()
        && code.len() <= 64
        // JSON Schema keywords are camelCase: `schema.maxLength`.
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if !plausible {
        return None;
    }
    let mut codes = CODES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = codes.get(code) {
        return Some(known);
    }
    if codes.len() >= MAX_CODES {
        return None;
    }
    let kept: &'static str = Box::leak(code.to_owned().into_boxed_str());
    codes.insert(kept);
    Some(kept)
}

impl Counter {
    pub fn name(self) -> String {
        match self {
            Counter::Record(outcome) => outcome.as_str().to_owned(),
            Counter::Resolved(i) => format!("resolved.{}", RESOLVED_BY[i]),
            Counter::Existing => "resolved.existing".to_owned(),
            Counter::Batches => "batches".to_owned(),
            Counter::BatchesRefused => "batches_refused".to_owned(),
            Counter::Latency(i) => format!("latency.{i:02}"),
            Counter::Lookups => "lookups".to_owned(),
            Counter::CollectionsAvoided => "collections_avoided".to_owned(),
            Counter::Rejected(code) => format!("rejected.{code}"),
        }
    }

    pub fn from_name(name: &str) -> Option<Counter> {
        if let Some(outcome) = Outcome::ALL.into_iter().find(|o| o.as_str() == name) {
            return Some(Counter::Record(outcome));
        }
        if let Some(by) = name.strip_prefix("resolved.") {
            if by == "existing" {
                return Some(Counter::Existing);
            }
            return RESOLVED_BY.iter().position(|b| *b == by).map(Counter::Resolved);
        }
        if let Some(code) = name.strip_prefix("rejected.") {
            return rejection_code(code).map(Counter::Rejected);
        }
        if let Some(bucket) = name.strip_prefix("latency.") {
            return bucket.parse().ok().filter(|&i| i < BUCKETS).map(Counter::Latency);
        }
        match name {
            "batches" => Some(Counter::Batches),
            "batches_refused" => Some(Counter::BatchesRefused),
            "lookups" => Some(Counter::Lookups),
            "collections_avoided" => Some(Counter::CollectionsAvoided),
            _ => None,
        }
    }
}

/// (minute, department, record type or "", counter)
type Key = (i64, String, String, Counter);

/// The counts of this process not yet added to the store.
#[derive(Debug, Default)]
pub struct Traffic {
    counts: Mutex<HashMap<Key, u64>>,
}

/// The start of the minute of `at`, in unix seconds.
fn minute_of(at: SystemTime) -> i64 {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    seconds - seconds.rem_euclid(60)
}

impl Traffic {
    pub fn new() -> Self {
        Traffic::default()
    }

    /// Starts timing a push by `identity`. Call [`PushWatch::answered`] with its results;
    /// a watch dropped without (the batch refused or failed as a whole) counts a refused
    /// batch.
    pub fn watch_push(&self, identity: &Identity) -> PushWatch<'_> {
        PushWatch {
            traffic: self,
            department: identity.folder_name().to_owned(),
            started: Instant::now(),
            answered: false,
        }
    }

    /// Counts a granted lookup of `record` by `identity`, answered with `view` (what the
    /// sharing rules let it see of the record).
    pub fn lookup(&self, identity: &Identity, record: &UnifiedRecord, view: &UnifiedRecord) {
        let mut adds = vec![(String::new(), Counter::Lookups, 1)];
        if avoids_collection(identity, record, view) {
            adds.push((String::new(), Counter::CollectionsAvoided, 1));
        }
        self.add(identity.folder_name(), adds);
    }

    fn add(&self, department: &str, adds: Vec<(String, Counter, u64)>) {
        let minute = minute_of(SystemTime::now());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for (record_type, counter, n) in adds {
            if n > 0 {
                *counts
                    .entry((minute, department.to_owned(), record_type, counter))
                    .or_default() += n;
            }
        }
    }

    /// Takes every count out, as rows for the store.
    pub fn take(&self) -> Vec<TrafficRow> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        counts
            .into_iter()
            .map(|((minute, department, record_type, counter), n)| TrafficRow {
                minute,
                department,
                record_type,
                counter: counter.name(),
                n: i64::try_from(n).unwrap_or(i64::MAX),
            })
            .collect()
    }

    /// Puts back rows [`Traffic::take`] gave that could not be stored, added to whatever
    /// was counted since.
    pub fn restore(&self, rows: Vec<TrafficRow>) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            if let Some(counter) = Counter::from_name(&row.counter) {
                *counts
                    .entry((row.minute, row.department, row.record_type, counter))
                    .or_default() += u64::try_from(row.n).unwrap_or(0);
            }
        }
    }
}

/// A push being timed; see [`Traffic::watch_push`].
pub struct PushWatch<'a> {
    traffic: &'a Traffic,
    department: String,
    started: Instant,
    answered: bool,
}

impl PushWatch<'_> {
    /// Counts an answered batch: its time, and every record's outcome and resolutions.
    pub fn answered(&mut self, results: &[RecordResult]) {
        self.answered = true;
        let mut adds = vec![
            (String::new(), Counter::Batches, 1),
            (String::new(), Counter::Latency(bucket_of(self.started.elapsed())), 1),
        ];
        let mut per_type: HashMap<(&str, Counter), u64> = HashMap::new();
        for result in results {
            let record_type = result.record_type.as_str();
            *per_type
                .entry((record_type, Counter::Record(result.outcome)))
                .or_default() += 1;
            if result.outcome == Outcome::Rejected {
                let mut codes: Vec<&str> = result.errors.iter().map(|e| e.code.as_str()).collect();
                codes.sort_unstable();
                codes.dedup();
                for code in codes.into_iter().filter_map(rejection_code) {
                    *per_type.entry((record_type, Counter::Rejected(code))).or_default() += 1;
                }
            }
            for resolution in &result.resolutions {
                if let Some(i) = RESOLVED_BY.iter().position(|b| *b == resolution.resolved_by) {
                    *per_type.entry((record_type, Counter::Resolved(i))).or_default() += 1;
                }
                if resolution.matched_existing {
                    *per_type.entry((record_type, Counter::Existing)).or_default() += 1;
                }
            }
        }
        adds.extend(
            per_type
                .into_iter()
                .map(|((record_type, counter), n)| (record_type.to_owned(), counter, n)),
        );
        self.traffic.add(&self.department, adds);
    }
}

impl Drop for PushWatch<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.traffic
                .add(&self.department, vec![(String::new(), Counter::BatchesRefused, 1)]);
        }
    }
}

/// Did a department's lookup spare it from collecting again what another department
/// holds? Yes when the answer it got (`view`) holds data another department collected:
/// an attribute whose surviving value's source (in the full `record`: a department's
/// view hides other departments' provenance) is a record of another department, or
/// another department's facts. Identifiers are not counted: a department usually looks
/// up by one it already holds. Never for callers other than departments.
pub fn avoids_collection(identity: &Identity, record: &UnifiedRecord, view: &UnifiedRecord) -> bool {
    let Identity::Department(reader) = identity else {
        return false;
    };
    let foreign = |record_type: &str| {
        record_type
            .parse::<RecordType>()
            .is_ok_and(|t| t.department() != *reader)
    };
    let foreign_attribute = view.attributes.keys().any(|attribute| {
        record
            .attributes
            .get(attribute)
            .and_then(|value| value.source.as_ref())
            .is_some_and(|source| foreign(&source.record_type))
    });
    let foreign_facts = view
        .facts
        .iter()
        .any(|(department, facts)| !facts.is_empty() && department.parse::<Department>().is_ok_and(|d| d != *reader));
    foreign_attribute || foreign_facts
}

// ---------------------------------------------------------------------------------------
// Reports

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsQuery {
    /// Unix seconds; `None`: [`DEFAULT_RANGE`] before `until`.
    pub since: Option<i64>,
    /// Unix seconds, exclusive; `None`: now.
    pub until: Option<i64>,
    /// `None`: [`DEFAULT_WINDOW_MINUTES`].
    pub window_minutes: Option<u32>,
    /// Only this department (or `platform`, `steward`).
    pub department: Option<String>,
}

/// Records and what became of them and of their mentions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub accepted: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub rejected: u64,
    /// Mentions by what placed them, in the order of [`RESOLVED_BY`].
    pub resolved: [u64; RESOLVED_BY.len()],
    /// Mentions that joined an entity existing before.
    pub existing: u64,
}

impl RecordCounts {
    pub fn received(&self) -> u64 {
        self.accepted + self.unchanged + self.stale + self.rejected
    }

    fn count(&mut self, counter: Counter, n: u64) {
        match counter {
            Counter::Record(Outcome::Accepted) => self.accepted += n,
            Counter::Record(Outcome::Unchanged) => self.unchanged += n,
            Counter::Record(Outcome::Stale) => self.stale += n,
            Counter::Record(Outcome::Rejected) => self.rejected += n,
            Counter::Resolved(i) => self.resolved[i] += n,
            Counter::Existing => self.existing += n,
            _ => {}
        }
    }

    fn add(&mut self, other: &RecordCounts) {
        self.accepted += other.accepted;
        self.unchanged += other.unchanged;
        self.stale += other.stale;
        self.rejected += other.rejected;
        for (mine, theirs) in self.resolved.iter_mut().zip(other.resolved) {
            *mine += theirs;
        }
        self.existing += other.existing;
    }
}

/// What one department did in one window (or over a whole report, for totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Unix seconds.
    pub window_start: i64,
    pub department: String,
    /// All record types together.
    pub records: RecordCounts,
    pub record_types: BTreeMap<String, RecordCounts>,
    pub batches: u64,
    pub batches_refused: u64,
    pub latency: Histogram,
    pub lookups: u64,
    pub collections_avoided: u64,
    /// Rejected records per error code (a record with several codes counts in each).
    pub rejections: BTreeMap<&'static str, u64>,
}

impl WindowStats {
    fn count(&mut self, record_type: &str, counter: Counter, n: u64) {
        match counter {
            Counter::Record(_) | Counter::Resolved(_) | Counter::Existing => {
                self.records.count(counter, n);
                self.record_types
                    .entry(record_type.to_owned())
                    .or_default()
                    .count(counter, n);
            }
            Counter::Batches => self.batches += n,
            Counter::BatchesRefused => self.batches_refused += n,
            Counter::Latency(i) => self.latency.counts[i] += n,
            Counter::Lookups => self.lookups += n,
            Counter::CollectionsAvoided => self.collections_avoided += n,
            Counter::Rejected(code) => *self.rejections.entry(code).or_default() += n,
        }
    }

    fn add(&mut self, other: &WindowStats) {
        self.records.add(&other.records);
        for (record_type, counts) in &other.record_types {
            self.record_types.entry(record_type.clone()).or_default().add(counts);
        }
        self.batches += other.batches;
        self.batches_refused += other.batches_refused;
        self.latency.add(&other.latency);
        self.lookups += other.lookups;
        self.collections_avoided += other.collections_avoided;
        for (code, n) in &other.rejections {
            *self.rejections.entry(code).or_default() += n;
        }
    }
}

/// The answer to a [`StatisticsQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The range answered, widened to whole windows, unix seconds.
    pub since: i64,
    pub until: i64,
    pub window_minutes: u32,
    /// Per window and department with any traffic, by window then department.
    pub windows: Vec<WindowStats>,
    /// Per department over the whole range (`window_start` = `since`).
    pub totals: Vec<WindowStats>,
}

/// The latest time a query may name, in unix seconds: the start of the year 10000. A
/// time after it, or before 1970, is a mistake (no traffic was ever counted then), and
/// arithmetic on it could overflow.
const LATEST: i64 = 253_402_300_800;

/// The range of a query, widened to whole windows: (since, until, window in seconds).
/// `since` and `until` come from the caller: anything outside `[0, LATEST]` is refused,
/// and the arithmetic is checked all the same.
fn range(query: &StatisticsQuery, now: SystemTime) -> Result<(i64, i64, i64), StatisticsError> {
    let window_minutes = i64::from(query.window_minutes.unwrap_or(DEFAULT_WINDOW_MINUTES));
    if window_minutes == 0 {
        return Err(StatisticsError::InvalidArgument(
            "a window is at least one minute".to_owned(),
        ));
    }
    // At most u32::MAX × 60: no overflow.
    let window = window_minutes * 60;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    // The range ends after the current second: counts of the minute that began this
    // very second are in it even when `now` falls on a window's edge.
    let until = query.until.unwrap_or(now.saturating_add(1));
    let since = query
        .since
        .unwrap_or_else(|| until.saturating_sub(DEFAULT_RANGE.as_secs() as i64).max(0));
    for (name, value) in [("since", since), ("until", until)] {
        if !(0..=LATEST).contains(&value) {
            return Err(StatisticsError::InvalidArgument(format!(
                "{name} ({value}) must be unix seconds from 0 to {LATEST}"
            )));
        }
    }
    if since >= until {
        return Err(StatisticsError::InvalidArgument(format!(
            "since ({since}) must be before until ({until})"
        )));
    }
    let out_of_range = || StatisticsError::InvalidArgument(format!("the range {since}..{until} is out of range"));
    let since = since.checked_sub(since.rem_euclid(window)).ok_or_else(out_of_range)?;
    let until = match until.rem_euclid(window) {
        0 => until,
        part => until.checked_add(window - part).ok_or_else(out_of_range)?,
    };
    let windows = until.checked_sub(since).ok_or_else(out_of_range)? / window;
    if windows > MAX_WINDOWS {
        return Err(StatisticsError::InvalidArgument(format!(
            "{windows} windows of {window_minutes} minutes asked for; at most {MAX_WINDOWS}: choose a longer \
             window or a shorter range"
        )));
    }
    Ok((since, until, window))
}

/// Gathers the store's sums per window (`Store::traffic`: `minute` is the window's
/// start) into the windows of `window` seconds, and totals.
fn report(rows: Vec<TrafficRow>, since: i64, until: i64, window: i64) -> Report {
    let mut windows: BTreeMap<(i64, String), WindowStats> = BTreeMap::new();
    for row in rows {
        let (Some(counter), Ok(n)) = (Counter::from_name(&row.counter), u64::try_from(row.n)) else {
            continue;
        };
        let start = row.minute;
        let stats = windows
            .entry((start, row.department.clone()))
            .or_insert_with(|| WindowStats {
                window_start: start,
                department: row.department.clone(),
                ..WindowStats::default()
            });
        stats.count(&row.record_type, counter, n);
    }
    let mut totals: BTreeMap<String, WindowStats> = BTreeMap::new();
    for stats in windows.values() {
        totals
            .entry(stats.department.clone())
            .or_insert_with(|| WindowStats {
                window_start: since,
                department: stats.department.clone(),
                ..WindowStats::default()
            })
            .add(stats);
    }
    Report {
        since,
        until,
        window_minutes: u32::try_from(window / 60).unwrap_or(u32::MAX),
        windows: windows.into_values().collect(),
        totals: totals.into_values().collect(),
    }
}

/// Why a report was not given.
#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    #[error("{identity} may not read the operational statistics; they are for ops")]
    Refused { identity: Identity },
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The statistics of one hub process: its counts, and reports over the store.
pub struct Statistics<S> {
    store: S,
    traffic: Arc<Traffic>,
    /// One flush at a time: a report flushing while the background flush is writing
    /// waits for it, and so sees its counts.
    flushing: tokio::sync::Mutex<()>,
}

impl<S: Store> Statistics<S> {
    pub fn new(store: S, traffic: Arc<Traffic>) -> Self {
        Statistics {
            store,
            traffic,
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds this process's counts to the store. On failure they are kept for the next
    /// flush. (Should the store commit and the answer be lost, they are counted twice:
    /// statistics, not the records, take that risk.)
    pub async fn flush(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let rows = self.traffic.take();
        if rows.is_empty() {
            return Ok(());
        }
        match self.store.add_traffic(&rows).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.traffic.restore(rows);
                Err(e)
            }
        }
    }

    /// Flushes every [`FLUSH_INTERVAL`] until `stop` resolves. A flush under way is
    /// finished, not cut short (its counts would be lost).
    pub async fn flush_until(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(FLUSH_INTERVAL) => {}
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "statistics not stored; kept for the next try");
            }
        }
    }

    /// The feed's newest position, for `ops` (a count: no personal data).
    pub async fn feed_head(&self, identity: &Identity) -> Result<i64, StatisticsError> {
        ops_only(identity)?;
        Ok(self.store.feed_head().await?)
    }

    /// A report, for `ops` only. This process's latest counts are flushed first.
    pub async fn report(&self, identity: &Identity, query: &StatisticsQuery) -> Result<Report, StatisticsError> {
        ops_only(identity)?;
        let (since, until, window) = range(query, SystemTime::now())?;
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "statistics not stored before a report; kept for the next try");
        }
        let department = query.department.as_deref().map(str::trim).filter(|d| !d.is_empty());
        let rows = self.store.traffic(since, until, window, department).await?;
        Ok(report(rows, since, until, window))
    }
}

/// Operational statistics are for `ops`.
fn ops_only(identity: &Identity) -> Result<(), StatisticsError> {
    match identity {
        Identity::Ops => Ok(()),
        other => Err(StatisticsError::Refused {
            identity: other.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced_from_half_a_millisecond_to_a_minute() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_micros(500)), 0);
        assert_eq!(bucket_of(Duration::from_micros(501)), 1);
        assert_eq!(bucket_of(Duration::from_millis(1)), 2);
        assert_eq!(bucket_of(Duration::from_millis(60_000)), LAST - 1);
        assert_eq!(bucket_of(Duration::from_secs(3600)), LAST);
        for i in 1..LAST {
            let ratio = upper_bound_ms(i) / upper_bound_ms(i - 1);
            assert!((ratio - std::f64::consts::SQRT_2).abs() < 1e-9);
        }
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut histogram = Histogram::default();
        assert_eq!(histogram.percentile_ms(0.5), 0.0);
        // 90 pushes of about 1 ms (bucket 2: 0.707 .. 1 ms), 9 of about 10 ms (bucket 9:
        // 8 .. 11.3 ms), 1 of about 2 minutes.
        histogram.counts[bucket_of(Duration::from_millis(1))] += 90;
        histogram.counts[bucket_of(Duration::from_millis(10))] += 9;
        histogram.counts[bucket_of(Duration::from_secs(120))] += 1;
        let (p50, p90, p99) = (
            histogram.percentile_ms(0.5),
            histogram.percentile_ms(0.9),
            histogram.percentile_ms(0.99),
        );
        // Rank 50 of 90 in bucket 2 is 50/90 of the way from 0.707 to 1 ms.
        let expected = upper_bound_ms(1) + (upper_bound_ms(2) - upper_bound_ms(1)) * 50.0 / 90.0;
        assert!((p50 - expected).abs() < 1e-9, "{p50}");
        assert!((p90 - 1.0).abs() < 1e-9, "the 90th is the last of bucket 2: {p90}");
        assert!((8.0..=11.32).contains(&p99), "{p99}");
        assert_eq!(
            histogram.percentile_ms(1.0),
            upper_bound_ms(LAST - 1),
            "at least 65.5 s"
        );
        // Merged histograms give the percentiles of all their pushes together.
        let mut merged = Histogram::default();
        merged.add(&histogram);
        merged.add(&histogram);
        assert_eq!(merged.total(), 200);
        assert!((merged.percentile_ms(0.5) - expected).abs() < 1e-9);
        // A single push is above zero, however fast.
        let mut one = Histogram::default();
        one.counts[bucket_of(Duration::from_nanos(1))] += 1;
        assert!(one.percentile_ms(0.5) > 0.0);
    }

    #[test]
    fn counter_names_read_back() {
        let mut counters: Vec<Counter> = Outcome::ALL.into_iter().map(Counter::Record).collect();
        counters.extend((0..RESOLVED_BY.len()).map(Counter::Resolved));
        counters.extend((0..BUCKETS).map(Counter::Latency));
        counters.extend([
            Counter::Existing,
            Counter::Batches,
            Counter::BatchesRefused,
            Counter::Lookups,
            Counter::CollectionsAvoided,
            Counter::Rejected("schema.required"),
            Counter::Rejected("schema.maxLength"),
        ]);
        for counter in counters {
            assert_eq!(Counter::from_name(&counter.name()), Some(counter), "{}", counter.name());
        }
        assert_eq!(Counter::from_name("latency.99"), None);
        assert_eq!(Counter::from_name("something.newer"), None);
    }

    #[test]
    fn the_current_minute_is_in_the_default_range_even_on_its_first_second() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 3600 + 7 * 60);
        let query = StatisticsQuery {
            since: None,
            until: None,
            window_minutes: Some(1),
            department: None,
        };
        let (_, until, window) = range(&query, now).unwrap();
        assert_eq!((until, window), (100 * 3600 + 8 * 60, 60));
    }

    #[test]
    fn ranges_widen_to_whole_windows() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 3600 + 125);
        let query = |since, until, window_minutes| StatisticsQuery {
            since,
            until,
            window_minutes,
            department: None,
        };
        assert_eq!(
            range(&query(None, None, None), now).unwrap(),
            (76 * 3600, 101 * 3600, 3600),
            "the last 24 hours, in whole hours"
        );
        assert_eq!(
            range(&query(Some(3601), Some(7199), Some(10)), now).unwrap(),
            (3600, 7200, 600)
        );
        assert!(range(&query(Some(7200), Some(7200), None), now).is_err());
        assert!(range(&query(None, None, Some(0)), now).is_err());
        assert!(range(&query(Some(0), Some(365 * 86400), Some(1)), now).is_err());
        // Just after 1970 the default range starts at 0, not before it.
        assert_eq!(range(&query(None, Some(7200), None), now).unwrap(), (0, 7200, 3600));
        // The longest window over the widest range.
        assert!(range(&query(Some(0), Some(LATEST), Some(u32::MAX)), now).is_ok());
    }

    #[test]
    fn absurd_ranges_are_refused_not_overflowed() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 3600);
        let query = |since, until, window_minutes| StatisticsQuery {
            since,
            until,
            window_minutes,
            department: None,
        };
        for (since, until) in [
            (Some(i64::MIN), None),
            (Some(i64::MIN), Some(i64::MAX)),
            (Some(i64::MIN), Some(0)),
            (Some(-1), Some(60)),
            (Some(0), Some(i64::MAX)),
            (None, Some(i64::MAX)),
            (None, Some(i64::MIN)),
            (Some(i64::MAX - 1), Some(i64::MAX)),
            (Some(LATEST), Some(LATEST + 1)),
        ] {
            for window in [None, Some(1), Some(u32::MAX)] {
                match range(&query(since, until, window), now) {
                    Err(StatisticsError::InvalidArgument(_)) => {}
                    other => panic!("{since:?}..{until:?} by {window:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn rows_add_up_into_windows_and_totals() {
        let row = |minute: i64, department: &str, record_type: &str, counter: Counter, n: i64| TrafficRow {
            minute,
            department: department.to_owned(),
            record_type: record_type.to_owned(),
            counter: counter.name(),
            n,
        };
        // As the store answers: summed per window (here of an hour), `minute` its start.
        let rows = vec![
            row(0, "tax", "tax.taxpayer", Counter::Record(Outcome::Accepted), 5),
            row(0, "tax", "tax.taxpayer", Counter::Resolved(0), 3),
            row(3600, "tax", "tax.taxpayer", Counter::Record(Outcome::Stale), 1),
            row(3600, "tax", "", Counter::Lookups, 4),
            row(3600, "civil", "", Counter::Batches, 1),
            row(3600, "civil", "", Counter::Latency(3), 1),
        ];
        let all = report(rows, 0, 7200, 3600);
        assert_eq!(all.windows.len(), 3);
        assert_eq!(
            (all.windows[0].window_start, all.windows[0].department.as_str()),
            (0, "tax")
        );
        assert_eq!(all.windows[0].records.accepted, 5);
        assert_eq!(all.windows[0].records.resolved[0], 3);
        assert_eq!(all.windows[1].department, "civil");
        assert_eq!(all.windows[1].latency.total(), 1);
        let tax = &all.totals[1];
        assert_eq!(tax.department, "tax");
        assert_eq!((tax.records.received(), tax.lookups), (6, 4));
        assert_eq!(tax.record_types["tax.taxpayer"].stale, 1);
    }
}
