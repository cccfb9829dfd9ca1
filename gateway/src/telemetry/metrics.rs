//! The hub's metrics, through the OpenTelemetry API: the installed meter provider sends
//! them to the OTLP collector and to the Prometheus registry of the admin port. Before
//! [`super::Telemetry::install`] (the demo, in-process tests) they go nowhere.
//!
//! Labels are closed sets: departments, known record types (anything else is
//! `unknown`: a record type is caller input), outcomes, stages. Never a value of a record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Gauge, Histogram, ObservableGauge};
use opentelemetry::KeyValue;
use tongban_adapters::RecordType;

use crate::identity::Identity;
use crate::record::{Outcome, RecordResult};

/// Every instrument, made once from the global meter.
pub struct Metrics {
    /// Records received, per department and record type.
    received: Counter<u64>,
    /// Records per department, record type and outcome (accepted, unchanged, stale, rejected).
    records: Counter<u64>,
    /// Mentions per department and how resolution placed them.
    resolutions: Counter<u64>,
    /// Whole batches refused before any record was looked at.
    refused_batches: Counter<u64>,
    /// Seconds spent per pipeline stage and batch.
    stage_seconds: Histogram<f64>,
    /// Changes the furthest-behind feed of this process is behind the newest one.
    feed_lag: Gauge<i64>,
    /// The lag of each open feed, for `feed_lag`.
    feed_lags: Mutex<HashMap<u64, i64>>,
    next_feed: AtomicU64,
    /// Audit log entries written, per action and whether the read was granted.
    audit_entries: Counter<u64>,
    /// TLS clients turned away, per reason.
    refused_certificates: Counter<u64>,
    /// Calls and stream batches refused by the per-identity limits, per identity kind
    /// and reason.
    limited: Counter<u64>,
}

/// Upper bounds of the stage-latency buckets, in seconds: 0.5 ms to 30 s.
const STAGE_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// The instruments of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// One open feed's place in the lag gauge.
pub struct FeedLag {
    id: u64,
    metrics: &'static Metrics,
}

impl FeedLag {
    /// How many changes this feed is behind the newest one.
    pub fn set(&self, changes_behind: i64) {
        self.metrics.set_feed_lag(self.id, Some(changes_behind));
    }
}

impl Drop for FeedLag {
    fn drop(&mut self) {
        self.metrics.set_feed_lag(self.id, None);
    }
}

/// A pipeline stage, as the latency histogram and the spans name it.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Validate,
    Adapt,
    /// The store's transaction, resolution included.
    Commit,
    /// Resolution alone (inside the commit).
    Resolve,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Adapt => "adapt",
            Stage::Commit => "commit",
            Stage::Resolve => "resolve",
        }
    }
}

impl Metrics {
    fn new() -> Metrics {
        let meter = opentelemetry::global::meter("tongban");
        Metrics {
            received: meter
                .u64_counter("tongban.records.received")
                .with_description("Records received, per department and record type")
                .build(),
            records: meter
                .u64_counter("tongban.records")
                .with_description("Records per department, record type and outcome")
                .build(),
            resolutions: meter
                .u64_counter("tongban.resolutions")
                .with_description(
                    "Mentions resolved, per department and outcome \
                     (deterministic, probabilistic, queued, new, previous, steward)",
                )
                .build(),
            refused_batches: meter
                .u64_counter("tongban.batches.refused")
                .with_description("Batches refused as a whole, per department and reason")
                .build(),
            stage_seconds: meter
                .f64_histogram("tongban.stage.duration")
                .with_unit("s")
                .with_description("Time per pipeline stage and batch")
                .with_boundaries(STAGE_BUCKETS.to_vec())
                .build(),
            feed_lag: meter
                .i64_gauge("tongban.feed.lag")
                .with_description("Changes the furthest-behind open feed is behind the newest one")
                .build(),
            feed_lags: Mutex::new(HashMap::new()),
            next_feed: AtomicU64::new(0),
            audit_entries: meter
                .u64_counter("tongban.audit.entries")
                .with_description("Audit log entries, per action and verdict")
                .build(),
            refused_certificates: meter
                .u64_counter("tongban.certificates.refused")
                .with_description("TLS clients refused, per reason")
                .build(),
            limited: meter
                .u64_counter("tongban.requests.limited")
                .with_description(
                    "Requests refused by the per-identity limits (RESOURCE_EXHAUSTED), \
                     per identity kind and reason (rate_limited, too_many_streams)",
                )
                .build(),
        }
    }

    /// Counts one batch's records and resolutions by outcome.
    pub fn batch(&self, identity: &Identity, results: &[RecordResult]) {
        let department = identity.folder_name().to_owned();
        for result in results {
            let record_type = record_type_label(&result.record_type);
            let labels = [
                KeyValue::new("department", department.clone()),
                KeyValue::new("record_type", record_type),
            ];
            self.received.add(1, &labels);
            let outcome = match result.outcome {
                Outcome::Accepted => "accepted",
                Outcome::Unchanged => "unchanged",
                Outcome::Stale => "stale",
                Outcome::Rejected => "rejected",
            };
            self.records.add(
                1,
                &[labels[0].clone(), labels[1].clone(), KeyValue::new("outcome", outcome)],
            );
            for resolution in &result.resolutions {
                self.resolutions.add(
                    1,
                    &[
                        KeyValue::new("department", department.clone()),
                        KeyValue::new("outcome", resolution_outcome(resolution.resolved_by)),
                    ],
                );
            }
        }
    }

    /// A batch refused before any record was looked at (not a department, not its
    /// record type, empty, too large).
    pub fn refused_batch(&self, identity: &Identity, reason: &'static str) {
        self.refused_batches.add(
            1,
            &[
                KeyValue::new("department", identity.folder_name().to_owned()),
                KeyValue::new("reason", reason),
            ],
        );
    }

    pub fn stage(&self, stage: Stage, elapsed: Duration) {
        self.stage_seconds
            .record(elapsed.as_secs_f64(), &[KeyValue::new("stage", stage.as_str())]);
    }

    /// A feed opening: its lag counts in the gauge until the returned slot is dropped.
    pub fn open_feed(&'static self) -> FeedLag {
        FeedLag {
            id: self.next_feed.fetch_add(1, Ordering::Relaxed),
            metrics: self,
        }
    }

    /// The lag of this process's furthest-behind open feed, and how many feeds are open.
    pub fn feed_lag_now(&self) -> (i64, usize) {
        let lags = self.feed_lags.lock().unwrap_or_else(PoisonError::into_inner);
        (lags.values().copied().max().unwrap_or(0), lags.len())
    }

    fn set_feed_lag(&self, id: u64, lag: Option<i64>) {
        let mut lags = self.feed_lags.lock().unwrap_or_else(PoisonError::into_inner);
        match lag {
            Some(lag) => lags.insert(id, lag.max(0)),
            None => lags.remove(&id),
        };
        let furthest = lags.values().copied().max().unwrap_or(0);
        drop(lags);
        self.feed_lag.record(furthest, &[]);
    }

    pub fn audit_entry(&self, action: &str, outcome: &str) {
        let action: &'static str = match action {
            "lookup" => "lookup",
            "changes" => "changes",
            "explain" => "explain",
            "connect" => "connect",
            "push" => "push",
            steward if steward.starts_with("steward") => "steward",
            _ => "other",
        };
        let verdict = if outcome.starts_with("refused") {
            "refused"
        } else {
            "granted"
        };
        self.audit_entries
            .add(1, &[KeyValue::new("action", action), KeyValue::new("verdict", verdict)]);
    }

    pub fn refused_certificate(&self, reason: &'static str) {
        self.refused_certificates.add(1, &[KeyValue::new("reason", reason)]);
    }

    /// A request refused by the per-identity limits. The identity label is its folder
    /// name (a department or a role: never a steward's name).
    pub fn limited(&self, identity: &Identity, reason: &'static str) {
        self.limited.add(
            1,
            &[
                KeyValue::new("identity", identity.folder_name().to_owned()),
                KeyValue::new("reason", reason),
            ],
        );
    }
}

/// The connections of `store`'s pool, read at each collection as
/// `tongban.store.pool.connections{state=open|idle|max}`; nothing for a store without a
/// pool. Keep the gauge for as long as it should be observed.
pub fn observe_pool<S: crate::store::Store + Clone>(store: S) -> ObservableGauge<u64> {
    opentelemetry::global::meter("tongban")
        .u64_observable_gauge("tongban.store.pool.connections")
        .with_description("Database connections of this process: open, idle, and the most the pool opens")
        .with_callback(move |observer| {
            if let Some(status) = store.pool_status() {
                for (state, n) in [("open", status.open), ("idle", status.idle), ("max", status.max)] {
                    observer.observe(n as u64, &[KeyValue::new("state", state)]);
                }
            }
        })
        .build()
}

/// A record type as a label: one of the known ones, or `unknown` (the envelope's field
/// is the caller's text and must not open an unbounded set of series).
fn record_type_label(text: &str) -> String {
    match text.parse::<RecordType>() {
        Ok(record_type) => record_type.as_str().to_owned(),
        Err(_) => "unknown".to_owned(),
    }
}

/// Resolution's placement kinds in the words operators use.
fn resolution_outcome(resolved_by: &str) -> &'static str {
    match resolved_by {
        "key" => "deterministic",
        "matched" => "probabilistic",
        "queued" => "queued",
        "founded" => "new",
        "previous" => "previous",
        "steward" => "steward",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn furthest(metrics: &Metrics) -> i64 {
        let lags = metrics.feed_lags.lock().unwrap_or_else(PoisonError::into_inner);
        lags.values().copied().max().unwrap_or(0)
    }

    #[test]
    fn the_lag_gauge_follows_the_furthest_behind_open_feed() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let slow = metrics.open_feed();
        let quick = metrics.open_feed();
        slow.set(500);
        quick.set(3);
        assert_eq!(furthest(metrics), 500);
        quick.set(0);
        assert_eq!(furthest(metrics), 500, "a feed catching up does not hide the slow one");
        drop(slow);
        assert_eq!(furthest(metrics), 0, "a closed feed counts no more");
        drop(quick);
        assert!(metrics
            .feed_lags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }

    #[test]
    fn labels_are_closed_sets() {
        assert_eq!(record_type_label("tax.taxpayer"), "tax.taxpayer");
        assert_eq!(record_type_label("王伟"), "unknown");
        assert_eq!(resolution_outcome("key"), "deterministic");
        assert_eq!(resolution_outcome("anything"), "other");
    }
}
