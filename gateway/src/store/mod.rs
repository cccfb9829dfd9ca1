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

use std::time::SystemTime;

use crate::identity::Identity;
use crate::record::{Envelope, RecordError, RecordResult, Submission};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupted database, not worth retrying.
    #[error("store failure: {0}")]
    Internal(String),
}

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

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Postgres(store) => store.ping().await,
            AnyStore::Embedded(store) => store.ping().await,
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

/// The envelope a valid record arrived in, for quarantining it after a version conflict.
fn envelope_of(record: &crate::record::SourceRecord) -> Envelope {
    Envelope {
        record_type: record.record_type.clone(),
        source_id: record.source_id.clone(),
        source_version: record.source_version,
        deleted: record.deleted,
        payload: record.payload.clone(),
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

/// A `LIMIT` value for SQL.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
