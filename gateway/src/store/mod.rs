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
