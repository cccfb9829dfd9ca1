//! Persistence: the only place in the hub that writes SQL.
//!
//! [`Store`] is the interface the pipeline commits through; [`postgres`] and
//! [`embedded`] implement it and pass one conformance suite
//! (`tests/tests/store_conformance.rs`).
//!
//! **Invariant: acknowledged means committed.** `commit` returns results only after the
//! transaction holding every item of the batch (versions and quarantine entries alike)
//! has committed; on any error nothing of the batch is acknowledged.

pub mod embedded;
pub mod postgres;
mod steward;
mod unify;

use std::collections::HashMap;
use std::time::SystemTime;

use tongban_adapters::model::EntityKind;

use crate::identity::Identity;
use crate::quality::{FlagCount, FlagCounts, FlagFilter, FlaggedRecord};
use crate::record::{Envelope, Outcome, RecordError, RecordResult, Submission};
use crate::resolve::{Incoming, Key, Settings};
use crate::stewardship::{Explanation, ReviewPair, StewardAction, StewardOutcome};
use crate::unified::{Change, EntityId, UnifiedRecord};

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupted database, not worth retrying.
    #[error("store failure: {0}")]
    Internal(String),
    /// Concurrent batches collided (a deadlock broken by the database, an entity merged
    /// under our feet). Stores retry the transaction a few times before giving up with this.
    #[error("store contention: {0}")]
    Contention(String),
    /// What a steward's action names does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A steward's action that cannot be carried out as the store stands (a pair
    /// already decided, a mention alone in its entity).
    #[error("refused: {0}")]
    Refused(String),
}

/// One line of the audit log: who read or was refused what, when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: SystemTime,
    /// The caller's identity, e.g. `department:tax`.
    pub identity: String,
    /// `lookup`, `changes`, ...
    pub action: String,
    /// What was read: a unified ID, an identifier's scheme, a cursor.
    pub subject: String,
    /// The purpose the caller declared.
    pub purpose: String,
    /// `granted` or `refused: <reason>`.
    pub outcome: String,
    /// The W3C trace ID (32 hex digits) of the call, empty when there was none; it finds
    /// the trace of the read in the tracing backend.
    pub trace_id: String,
}

/// The connections of a store's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open now.
    pub open: usize,
    /// Of those, idle ones.
    pub idle: usize,
    /// The most the pool opens.
    pub max: usize,
}

/// One counter of the operational statistics in one minute (`crate::statistics`):
/// counts and timings only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRow {
    /// The start of the minute, in unix seconds.
    pub minute: i64,
    /// The caller's short name: a department, or `platform` / `steward` for lookups.
    pub department: String,
    /// Empty for counters of the department as a whole.
    pub record_type: String,
    /// What is counted, e.g. `accepted`, `resolved.key`, `latency.07`.
    pub counter: String,
    pub n: i64,
}

/// Transactions retried on [`StoreError::Contention`] before the error is returned.
const CONTENTION_ATTEMPTS: usize = 5;

/// Who handed a batch in, and when; recorded with quarantine entries.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub identity: Identity,
    pub received_at: SystemTime,
}

/// One stored version of a source record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub source_version: i64,
    pub deleted: bool,
    /// Canonical JSON text, as in [`crate::record::SourceRecord::payload`].
    pub payload: String,
}

/// The current version of one source record, for a pass over the whole store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRecord {
    pub record_type: String,
    pub source_id: String,
    pub version: StoredVersion,
}

/// A current record read again through its adapter, to be resolved again.
#[derive(Debug, Clone, PartialEq)]
pub struct Reresolution {
    pub source_id: String,
    /// The version it was read from: a record that has moved on since is left alone.
    pub source_version: i64,
    pub contribution: crate::unified::Contribution,
}

/// A rejected record kept in quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    pub id: String,
    /// The identity that pushed it, e.g. `department:tax`.
    pub identity: String,
    pub received_at: SystemTime,
    /// The envelope exactly as received (payload text verbatim).
    pub envelope: Envelope,
    pub errors: Vec<RecordError>,
}

/// The contract both stores fulfil.
///
/// Version rules for a valid record `(record_type, source_id, v)`:
/// - no version held yet, or `v` above the current one: keep it, it becomes current → `Accepted`;
/// - `v` already held with the same content (payload and `deleted`) → `Unchanged`;
/// - `v` already held with other content → `Rejected` with
///   [`RecordError::version_conflict`], quarantined; the held copy stands;
/// - `v` below the current one and not held → kept in history, current unchanged → `Stale`.
///
/// A rejected submission is quarantined with its errors and the receipt → `Rejected`.
/// Results come back in the order of `batch`; items of one batch that name the same
/// record are applied in batch order.
pub trait Store: Send + Sync + 'static {
    /// Commits a whole batch in one transaction.
    fn commit(
        &self,
        receipt: &Receipt,
        batch: Vec<Submission>,
    ) -> impl std::future::Future<Output = Result<Vec<RecordResult>, StoreError>> + Send;

    /// Every version held of one source record, oldest first.
    fn versions(
        &self,
        record_type: &str,
        source_id: &str,
    ) -> impl std::future::Future<Output = Result<Vec<StoredVersion>, StoreError>> + Send;

    /// The current version of one source record, if any.
    fn current(
        &self,
        record_type: &str,
        source_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<StoredVersion>, StoreError>> + Send;

    /// Quarantine entries, oldest first, optionally only those pushed by `identity`.
    fn quarantine(
        &self,
        identity: Option<&str>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<QuarantineEntry>, StoreError>> + Send;

    /// A cheap round trip proving the store can serve now (for gRPC health).
    fn ping(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// The position of the newest change in the feed (0 when empty): how far behind a
    /// follower is.
    fn feed_head(&self) -> impl std::future::Future<Output = Result<i64, StoreError>> + Send;

    /// This process's database connections, for the pool gauge; `None` without a pool.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// Changes of the feed after position `after`, in position (= commit) order, only
    /// of `kinds` (all when empty), at most `limit`.
    fn changes(
        &self,
        after: i64,
        kinds: &[EntityKind],
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// The feed's changes of entity `id` and of the entities merged into it, newest
    /// first, at most `limit`: its history (versions, sources joining and leaving,
    /// merges), as the console's entity view shows it.
    fn entity_history(
        &self,
        id: &str,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// An entity's current record and, if it was merged away, its survivor's ID.
    fn entity(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError>> + Send;

    /// The entity owning the first of `keys` that has an owner.
    fn key_owner(&self, keys: &[Key])
        -> impl std::future::Future<Output = Result<Option<EntityId>, StoreError>> + Send;

    /// Appends to the audit log.
    fn audit(&self, entry: &AuditEntry) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.audit_all(std::slice::from_ref(entry))
    }

    /// Appends entries to the audit log in one transaction, in order: one commit (and one
    /// wait for the disk) for all of them.
    fn audit_all(&self, entries: &[AuditEntry]) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// The audit log, oldest first.
    fn audit_log(&self, limit: usize) -> impl std::future::Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Up to `limit` entries of the audit chain numbered above `after`, in order.
    fn audit_chain(
        &self,
        after: i64,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<crate::audit::ChainedEntry>, StoreError>> + Send;

    /// The chain's head: the number and hash of its last entry ((0, genesis) when empty).
    fn audit_head(&self) -> impl std::future::Future<Output = Result<(i64, String), StoreError>> + Send;

    /// Open review pairs after queue position `after`, oldest first, at most `limit`.
    fn review_queue(
        &self,
        after: i64,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<ReviewPair>, StoreError>> + Send;

    /// Open review pairs, most uncertain first: by how far the pair's total lies from
    /// the middle of its kind's review band (between `review` and `link`), then oldest
    /// first; those after pair `after` in that order (0: from the start; a pair decided
    /// since keeps its place as a cursor), at most `limit`.
    fn review_queue_uncertain(
        &self,
        after: i64,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<ReviewPair>, StoreError>> + Send;

    /// Carries out a steward's action in one transaction (audited, republished).
    fn steward(
        &self,
        action: &StewardAction,
        steward: &str,
    ) -> impl std::future::Future<Output = Result<StewardOutcome, StoreError>> + Send;

    /// Current versions of source records after `after` (in `(record_type, source_id)`
    /// order), at most `limit`.
    fn current_records(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<CurrentRecord>, StoreError>> + Send;

    /// Resolves current records again (after an adapter or the weights changed), in one
    /// transaction, as if each were pushed again: keys, matching and steward decisions
    /// apply; what changed is republished. Records whose current version is no longer
    /// the one read are skipped. Returns how many were resolved.
    fn reresolve(
        &self,
        records: Vec<Reresolution>,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send;

    /// Why each current source of an entity (or of the survivor it was merged into) is
    /// in it.
    fn explain(&self, id: &str) -> impl std::future::Future<Output = Result<Option<Explanation>, StoreError>> + Send;

    /// Adds each row's `n` to the counter it names (created at 0 if new), in one
    /// transaction: replicas adding the same counters at once add up. No two rows may
    /// name the same counter.
    fn add_traffic(&self, rows: &[TrafficRow]) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// The counters of the minutes in `[since, until)` (unix seconds), added up in the
    /// database per window of `window` seconds (> 0): one row per window, department,
    /// record type and counter, its `minute` the start of the window (a multiple of
    /// `window`). Only `department`'s counters when given. In no particular order.
    ///
    /// A report reads these sums, never the minutes: a day holds a row per counter per
    /// minute (around a million), its report a few per window.
    fn traffic(
        &self,
        since: i64,
        until: i64,
        window: i64,
        department: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Vec<TrafficRow>, StoreError>> + Send;
    /// The current records `filter` selects that carry quality flags (those found when
    /// their current version was accepted, and their contradictions with authorities),
    /// after `after` in byte order of `(record_type, source_id)` (whatever the database's
    /// collation: the order of the cursor), at most `limit`; with a code in the filter,
    /// only records with a flag of that code, and only those flags.
    fn flagged_records(
        &self,
        filter: &FlagFilter,
        after: Option<(String, String)>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<FlaggedRecord>, StoreError>> + Send;

    /// Over every current record `filter` selects: how many carry each code, per record
    /// type, and how many carry any.
    fn flag_counts(
        &self,
        filter: &FlagFilter,
    ) -> impl std::future::Future<Output = Result<FlagCounts, StoreError>> + Send;
}

/// A store chosen at run time from configuration.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Postgres(postgres::PostgresStore),
    Embedded(embedded::EmbeddedStore),
}

impl Store for AnyStore {
    async fn commit(&self, receipt: &Receipt, batch: Vec<Submission>) -> Result<Vec<RecordResult>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.commit(receipt, batch).await,
            AnyStore::Embedded(store) => store.commit(receipt, batch).await,
        }
    }

    async fn versions(&self, record_type: &str, source_id: &str) -> Result<Vec<StoredVersion>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.versions(record_type, source_id).await,
            AnyStore::Embedded(store) => store.versions(record_type, source_id).await,
        }
    }

    async fn current(&self, record_type: &str, source_id: &str) -> Result<Option<StoredVersion>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.current(record_type, source_id).await,
            AnyStore::Embedded(store) => store.current(record_type, source_id).await,
        }
    }

    async fn quarantine(&self, identity: Option<&str>, limit: usize) -> Result<Vec<QuarantineEntry>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.quarantine(identity, limit).await,
            AnyStore::Embedded(store) => store.quarantine(identity, limit).await,
        }
    }

    async fn feed_head(&self) -> Result<i64, StoreError> {
        match self {
            AnyStore::Postgres(s) => s.feed_head().await,
            AnyStore::Embedded(s) => s.feed_head().await,
        }
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        match self {
            AnyStore::Postgres(s) => s.pool_status(),
            AnyStore::Embedded(s) => s.pool_status(),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Postgres(store) => store.ping().await,
            AnyStore::Embedded(store) => store.ping().await,
        }
    }

    async fn changes(&self, after: i64, kinds: &[EntityKind], limit: usize) -> Result<Vec<Change>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.changes(after, kinds, limit).await,
            AnyStore::Embedded(store) => store.changes(after, kinds, limit).await,
        }
    }

    async fn entity_history(&self, id: &str, limit: usize) -> Result<Vec<Change>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.entity_history(id, limit).await,
            AnyStore::Embedded(store) => store.entity_history(id, limit).await,
        }
    }

    async fn entity(&self, id: &str) -> Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.entity(id).await,
            AnyStore::Embedded(store) => store.entity(id).await,
        }
    }

    async fn key_owner(&self, keys: &[Key]) -> Result<Option<EntityId>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.key_owner(keys).await,
            AnyStore::Embedded(store) => store.key_owner(keys).await,
        }
    }

    async fn audit_all(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        match self {
            AnyStore::Postgres(store) => store.audit_all(entries).await,
            AnyStore::Embedded(store) => store.audit_all(entries).await,
        }
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.audit_log(limit).await,
            AnyStore::Embedded(store) => store.audit_log(limit).await,
        }
    }

    async fn audit_chain(&self, after: i64, limit: usize) -> Result<Vec<crate::audit::ChainedEntry>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.audit_chain(after, limit).await,
            AnyStore::Embedded(store) => store.audit_chain(after, limit).await,
        }
    }

    async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        match self {
            AnyStore::Postgres(store) => store.audit_head().await,
            AnyStore::Embedded(store) => store.audit_head().await,
        }
    }

    async fn review_queue(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.review_queue(after, limit).await,
            AnyStore::Embedded(store) => store.review_queue(after, limit).await,
        }
    }

    async fn review_queue_uncertain(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.review_queue_uncertain(after, limit).await,
            AnyStore::Embedded(store) => store.review_queue_uncertain(after, limit).await,
        }
    }

    async fn steward(&self, action: &StewardAction, steward: &str) -> Result<StewardOutcome, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.steward(action, steward).await,
            AnyStore::Embedded(store) => store.steward(action, steward).await,
        }
    }

    async fn explain(&self, id: &str) -> Result<Option<Explanation>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.explain(id).await,
            AnyStore::Embedded(store) => store.explain(id).await,
        }
    }

    async fn current_records(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<CurrentRecord>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.current_records(after, limit).await,
            AnyStore::Embedded(store) => store.current_records(after, limit).await,
        }
    }

    async fn reresolve(&self, records: Vec<Reresolution>) -> Result<usize, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.reresolve(records).await,
            AnyStore::Embedded(store) => store.reresolve(records).await,
        }
    }

    async fn add_traffic(&self, rows: &[TrafficRow]) -> Result<(), StoreError> {
        match self {
            AnyStore::Postgres(store) => store.add_traffic(rows).await,
            AnyStore::Embedded(store) => store.add_traffic(rows).await,
        }
    }

    async fn traffic(
        &self,
        since: i64,
        until: i64,
        window: i64,
        department: Option<&str>,
    ) -> Result<Vec<TrafficRow>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.traffic(since, until, window, department).await,
            AnyStore::Embedded(store) => store.traffic(since, until, window, department).await,
        }
    }

    async fn flagged_records(
        &self,
        filter: &FlagFilter,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<FlaggedRecord>, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.flagged_records(filter, after, limit).await,
            AnyStore::Embedded(store) => store.flagged_records(filter, after, limit).await,
        }
    }

    async fn flag_counts(&self, filter: &FlagFilter) -> Result<FlagCounts, StoreError> {
        match self {
            AnyStore::Postgres(store) => store.flag_counts(filter).await,
            AnyStore::Embedded(store) => store.flag_counts(filter).await,
        }
    }
}

impl AnyStore {
    /// Sets how resolution works: survivorship's authorities and matching's weights.
    pub fn with_resolution(self, settings: Settings) -> Self {
        match self {
            AnyStore::Postgres(store) => AnyStore::Postgres(store.with_resolution(settings)),
            AnyStore::Embedded(store) => AnyStore::Embedded(store.with_resolution(settings)),
        }
    }
}

impl From<postgres::PostgresStore> for AnyStore {
    fn from(store: postgres::PostgresStore) -> Self {
        AnyStore::Postgres(store)
    }
}

impl From<embedded::EmbeddedStore> for AnyStore {
    fn from(store: embedded::EmbeddedStore) -> Self {
        AnyStore::Embedded(store)
    }
}

// ---------------------------------------------------------------------------------------
// Helpers shared by both stores: the version rules and the bookkeeping of a batch, so that
// the two implementations differ only in how they talk to their database.

/// One source record: `(record_type, source_id)`.
type RecordKey = (String, String);

/// What a store found when it tried to add a valid record as a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionWrite {
    /// The version was not held; it is now.
    Inserted,
    /// The version was already held, with the same content or not.
    AlreadyHeld { same_content: bool },
}

/// The outcome of one valid record under the version rules of [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Newly held and above the current version (or the first one): make it current.
    BecomesCurrent,
    /// Newly held below the current version: history only.
    Stale,
    Unchanged,
    Conflict,
}

impl Decision {
    /// `current` is `None` while the record has no version yet (its row was only just
    /// created by this batch).
    fn new(write: VersionWrite, current: Option<i64>, version: i64) -> Decision {
        match write {
            VersionWrite::Inserted if current.is_none_or(|current| version > current) => Decision::BecomesCurrent,
            VersionWrite::Inserted => Decision::Stale,
            VersionWrite::AlreadyHeld { same_content: true } => Decision::Unchanged,
            VersionWrite::AlreadyHeld { same_content: false } => Decision::Conflict,
        }
    }
}

/// The distinct records of a batch's valid items, in the one order every store instance
/// locks them: two transactions never wait for each other in opposite orders.
fn records_in_lock_order(batch: &[Submission]) -> Vec<RecordKey> {
    let keys: std::collections::BTreeSet<(&str, &str)> = batch
        .iter()
        .filter_map(|item| match item {
            Submission::Valid(record) => Some((record.record_type.as_str(), record.source_id.as_str())),
            Submission::Rejected(_) => None,
        })
        .collect();
    keys.into_iter()
        .map(|(record_type, source_id)| (record_type.to_owned(), source_id.to_owned()))
        .collect()
}

/// The key and envelope fields of a batch item, whichever kind it is.
fn item_envelope(item: &Submission) -> (&str, &str, i64) {
    match item {
        Submission::Valid(record) => (&record.record_type, &record.source_id, record.source_version),
        Submission::Rejected(rejection) => {
            let envelope = &rejection.envelope;
            (&envelope.record_type, &envelope.source_id, envelope.source_version)
        }
    }
}

/// A result before its `current_version` is known: that is filled in once the whole batch
/// is applied, so that every result reports the version current after the batch.
fn pending_result(
    item: &Submission,
    outcome: crate::record::Outcome,
    errors: Vec<RecordError>,
    quarantine_id: Option<String>,
) -> RecordResult {
    let (record_type, source_id, source_version) = item_envelope(item);
    RecordResult {
        record_type: record_type.to_owned(),
        source_id: source_id.to_owned(),
        source_version,
        outcome,
        current_version: None,
        errors,
        quarantine_id,
        resolutions: Vec::new(),
        quality_flags: Vec::new(),
    }
}

/// Records named by results whose current version is not in `known` (rejected items of
/// records the batch did not otherwise touch); the store looks these up.
fn unknown_records(results: &[RecordResult], known: &std::collections::HashMap<RecordKey, i64>) -> Vec<RecordKey> {
    let keys: std::collections::BTreeSet<RecordKey> = results
        .iter()
        .map(|result| (result.record_type.clone(), result.source_id.clone()))
        .filter(|key| !known.contains_key(key))
        .collect();
    keys.into_iter().collect()
}

/// Sets every result's `current_version` from `current` (`None` for records not held).
fn fill_current_versions(results: &mut [RecordResult], current: &std::collections::HashMap<RecordKey, i64>) {
    for result in results {
        let key = (result.record_type.clone(), result.source_id.clone());
        result.current_version = current.get(&key).copied();
    }
}

/// Serialises quarantine errors for storage.
fn errors_to_json(errors: &[RecordError]) -> Result<String, StoreError> {
    serde_json::to_string(errors).map_err(|e| StoreError::Internal(format!("cannot encode record errors: {e}")))
}

/// Reads quarantine errors back from storage.
fn errors_from_json(text: &str) -> Result<Vec<RecordError>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupt quarantine errors: {e}")))
}

/// A mention's placement as stored (JSON text).
fn placement_to(placement: Option<&crate::resolve::Placement>) -> Result<Option<String>, StoreError> {
    placement
        .map(|p| serde_json::to_string(p).map_err(|e| StoreError::Internal(format!("cannot encode a placement: {e}"))))
        .transpose()
}

/// A stored placement read back.
fn placement_from(text: Option<String>) -> Result<Option<crate::resolve::Placement>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Internal(format!("corrupt placement: {e}"))))
        .transpose()
}

/// Quality flags as stored in a mention's `flags` and `contradictions` columns.
fn flags_to_json(flags: &[tongban_adapters::model::QualityFlag]) -> Result<String, StoreError> {
    serde_json::to_string(flags).map_err(|e| StoreError::Internal(format!("cannot encode quality flags: {e}")))
}

/// Stored quality flags read back.
fn flags_from_json(text: &str) -> Result<Vec<tongban_adapters::model::QualityFlag>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupt quality flags: {e}")))
}

/// A row of a flag count read back: `(record_type, code, records)`.
fn flag_count(record_type: String, code: &str, records: i64) -> Result<FlagCount, StoreError> {
    let code = tongban_adapters::model::FlagCode::parse(code)
        .ok_or_else(|| StoreError::Internal(format!("unknown stored flag code {code:?}")))?;
    Ok(FlagCount {
        record_type,
        code,
        records: u64::try_from(records).unwrap_or_default(),
    })
}

/// A `LIMIT` value for SQL.
/// The middle of each kind's review band (person, organisation): the most uncertain
/// total a queued pair can have.
fn review_middles(settings: &Settings) -> (f64, f64) {
    let middle = |kind: &crate::resolve::matching::KindSettings| (kind.review + kind.link) / 2.0;
    (
        middle(&settings.matching.person),
        middle(&settings.matching.organisation),
    )
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The batch items that became current and carry a contribution, for resolution.
fn became_current<'a>(batch: &'a [Submission], results: &[RecordResult]) -> Vec<unify::Current<'a>> {
    let items = batch
        .iter()
        .zip(results)
        .enumerate()
        .filter_map(|(item, (submission, result))| {
            let Submission::Valid(record) = submission else {
                return None;
            };
            if result.outcome != Outcome::Accepted {
                return None;
            }
            let contribution = record.contribution.as_ref()?;
            Some((
                item,
                Incoming {
                    source_id: &record.source_id,
                    source_version: record.source_version,
                    contribution,
                },
            ))
        });
    unify::last_current(items)
}

/// The records of a re-resolution still current at the version read, as resolution's
/// input; `current` gives each record's current version now.
fn still_current<'a>(records: &'a [Reresolution], current: &HashMap<RecordKey, i64>) -> Vec<unify::Current<'a>> {
    let items = records.iter().enumerate().filter_map(|(item, record)| {
        let key = (
            record.contribution.record_type.as_str().to_owned(),
            record.source_id.clone(),
        );
        (current.get(&key) == Some(&record.source_version)).then_some((
            item,
            Incoming {
                source_id: &record.source_id,
                source_version: record.source_version,
                contribution: &record.contribution,
            },
        ))
    });
    unify::last_current(items)
}

/// Puts each accepted record's resolutions and quality flags into its result.
fn fill_resolutions(
    batch: &[Submission],
    results: &mut [RecordResult],
    mut resolutions: std::collections::HashMap<usize, Vec<crate::unified::Resolution>>,
) {
    for (item, (submission, result)) in batch.iter().zip(results.iter_mut()).enumerate() {
        if let Submission::Valid(record) = submission {
            if let (Some(contribution), Some(resolved)) = (&record.contribution, resolutions.remove(&item)) {
                result.quality_flags = contribution.flags();
                result.resolutions = resolved;
            }
        }
    }
}
