//! The embedded store: SQLite in one local file.
//!
//! For a single gateway without a database server. One connection does all the work,
//! on a thread of its own (`worker.rs`); SQLite allows one writer at a time anyway. A batch is one `BEGIN IMMEDIATE` transaction, which takes the write lock up
//! front, so nothing else can change the records it reads before it commits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod quality;
mod traffic;
mod unified;
mod worker;

use futures_util::FutureExt;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};
use tongban_adapters::model::EntityKind;

use super::steward;
use super::unify::unify_batch;
use super::{
    became_current, errors_from_json, errors_to_json, fill_current_versions, fill_resolutions, pending_result,
    records_in_lock_order, sql_limit, still_current, unknown_records, AuditEntry, CurrentRecord, Decision,
    QuarantineEntry, Receipt, RecordKey, Reresolution, Store, StoreError, StoredVersion, TrafficRow, VersionWrite,
};
use crate::quality::{FlagCounts, FlagFilter, FlaggedRecord};
use crate::record::{Envelope, Outcome, RecordError, RecordResult, SourceRecord, Submission};
use crate::resolve::Key;
use crate::resolve::Settings;
use crate::stewardship::{Explanation, ReviewPair, StewardAction, StewardOutcome};
use crate::unified::{Change, EntityId, UnifiedRecord};

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    /// How long to wait for another process's lock on the file before giving up with
    /// [`StoreError::Unavailable`].
    pub busy_timeout: Duration,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        EmbeddedSettings {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite [`Store`]. Clones share one connection and its thread.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    worker: Arc<worker::Worker>,
    /// A read-only connection of the health probe's own: a ping answers whether the file
    /// can be read, and must not wait behind the batches queued for the worker (WAL
    /// readers do not wait for the writer).
    probe: Arc<Mutex<Connection>>,
    /// Survivorship rules of the unified records this store builds.
    resolution: Arc<Settings>,
}

impl EmbeddedStore {
    /// Opens (creating if need be) the database file at `path` with default settings and
    /// brings its schema up to date. Blocking: call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        EmbeddedStore::open_with(path, &EmbeddedSettings::default())
    }

    /// [`EmbeddedStore::open`] with explicit settings.
    pub fn open_with(path: &Path, settings: &EmbeddedSettings) -> Result<Self, StoreError> {
        // A fresh deployment's data folder may not exist yet.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut connection = Connection::open(path).map_err(classify)?;
        configure(&connection, settings)?;
        migrate(&mut connection)?;
        let probe = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(classify)?;
        probe.busy_timeout(settings.busy_timeout).map_err(classify)?;
        Ok(EmbeddedStore {
            worker: Arc::new(worker::Worker::start(connection)?),
            probe: Arc::new(Mutex::new(probe)),
            resolution: Arc::new(Settings::default()),
        })
    }

    /// Writes a consistent copy of the database at `path` to `out`, while hubs keep
    /// working on it: `VACUUM INTO` reads one snapshot on a read-only connection of its
    /// own (a writer is not held up; the copy is compacted). The copy is written beside
    /// `out` under a name of this process's own and checked, then linked to `out`, which
    /// fails if `out` exists: a backup never overwrites, and a failed one leaves nothing.
    /// Returns the copy's size in bytes. Blocking.
    pub fn backup(path: &Path, out: &Path) -> Result<u64, StoreError> {
        if out.exists() {
            return Err(StoreError::Refused(format!(
                "{} exists; a backup does not overwrite",
                out.display()
            )));
        }
        if !path.exists() {
            return Err(StoreError::NotFound(format!("no embedded store at {}", path.display())));
        }
        let mut partial = out.as_os_str().to_owned();
        partial.push(format!(".partial-{}", std::process::id()));
        let partial = PathBuf::from(partial);
        let copied = copy_and_check(path, &partial).and_then(|()| {
            std::fs::hard_link(&partial, out)
                .map_err(|e| StoreError::Refused(format!("cannot name the copy {}: {e}", out.display())))
        });
        let _ = std::fs::remove_file(&partial);
        copied?;
        std::fs::metadata(out)
            .map(|m| m.len())
            .map_err(|e| StoreError::Internal(format!("{}: {e}", out.display())))
    }

    /// Builds unified records with these survivorship rules instead of the defaults.
    pub fn with_resolution(mut self, settings: Settings) -> Self {
        self.resolution = Arc::new(settings);
        self
    }

    /// Runs `work` on the connection's thread.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.worker.run(work).await
    }
}

/// [`EmbeddedStore::backup`]'s copy of `path` into `partial`, and its check.
fn copy_and_check(path: &Path, partial: &Path) -> Result<(), StoreError> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(classify)?;
    connection.busy_timeout(Duration::from_secs(30)).map_err(classify)?;
    let target = partial
        .to_str()
        .ok_or_else(|| StoreError::Refused(format!("{} is not UTF-8", partial.display())))?;
    connection
        .execute("VACUUM INTO ?1", params![target])
        .map_err(classify)?;
    let copy = Connection::open_with_flags(partial, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(classify)?;
    let verdict: String = copy
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(classify)?;
    if verdict != "ok" {
        return Err(StoreError::Internal(format!("the copy fails its check: {verdict}")));
    }
    Ok(())
}

/// Per-connection settings; none of them persists in the file except the journal mode.
fn configure(connection: &Connection, settings: &EmbeddedSettings) -> Result<(), StoreError> {
    // First, so that switching the journal mode below also waits for other processes.
    connection.busy_timeout(settings.busy_timeout).map_err(classify)?;
    // WAL: readers do not block the writer, and a commit is one append to the log.
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "the embedded database cannot use write-ahead logging (journal mode is {mode:?})"
        )));
    }
    // FULL: the log is synced at every commit, so an acknowledged batch survives a power
    // failure (NORMAL, the usual WAL choice, may lose the last commits).
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(classify)?;
    connection.pragma_update(None, "foreign_keys", true).map_err(classify)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Migrations

struct Migration {
    version: i64,
    sql: &'static str,
}

/// Applied in order, each once; never edit one that has shipped, add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/embedded/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/embedded/0002_unified.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/embedded/0003_matching.sql"),
    },
    Migration {
        version: AUDIT_CHAIN_VERSION,
        sql: include_str!("../migrations/embedded/0004_audit_chain.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/embedded/0005_traffic.sql"),
    },
    Migration {
        version: QUALITY_VERSION,
        sql: include_str!("../migrations/embedded/0006_quality.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/embedded/0007_audit_trace.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/embedded/0008_quarantine_bytes.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/embedded/0009_entities_redirected.sql"),
    },
    Migration {
        version: 10,
        sql: include_str!("../migrations/embedded/0010_changes_by_entity.sql"),
    },
];

/// The migration that keeps mentions' quality flags in columns of their own; the
/// mentions already kept get theirs when it is applied.
const QUALITY_VERSION: i64 = 6;

/// The migration that adds the audit chain; the entries already written are chained
/// when it is applied.
const AUDIT_CHAIN_VERSION: i64 = 4;

/// Applies the migrations not yet recorded in `schema_migrations`, each in its own
/// transaction; `BEGIN IMMEDIATE` keeps two processes opening the file at once apart.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    for migration in MIGRATIONS {
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at INTEGER NOT NULL
             ) STRICT",
        )
        .map_err(classify)?;
        let applied = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |_| Ok(()),
            )
            .optional()
            .map_err(classify)?
            .is_some();
        if !applied {
            tx.execute_batch(migration.sql).map_err(classify)?;
            if migration.version == AUDIT_CHAIN_VERSION {
                unified::chain_unchained_audit(&tx)?;
            }
            if migration.version == QUALITY_VERSION {
                quality::backfill(&tx)?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![migration.version, unix_millis(SystemTime::now())],
            )
            .map_err(classify)?;
        }
        tx.commit().map_err(classify)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The store

impl Store for EmbeddedStore {
    async fn commit(&self, receipt: &Receipt, batch: Vec<Submission>) -> Result<Vec<RecordResult>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let receipt = receipt.clone();
        let settings = Arc::clone(&self.resolution);
        self.run(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let results = apply_batch(&tx, &receipt, &batch, &settings)?;
            // Dropping `tx` on an error above rolls the whole batch back.
            tx.commit().map_err(classify)?;
            Ok(results)
        })
        .await
    }

    async fn versions(&self, record_type: &str, source_id: &str) -> Result<Vec<StoredVersion>, StoreError> {
        let key = (record_type.to_owned(), source_id.to_owned());
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT source_version, deleted, payload FROM source_record_versions
                     WHERE record_type = ?1 AND source_id = ?2
                     ORDER BY source_version",
                )
                .map_err(classify)?;
            let rows = statement
                .query_map(params![key.0, key.1], stored_version)
                .map_err(classify)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(classify)
        })
        .await
    }

    async fn current(&self, record_type: &str, source_id: &str) -> Result<Option<StoredVersion>, StoreError> {
        let key = (record_type.to_owned(), source_id.to_owned());
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT v.source_version, v.deleted, v.payload
                     FROM source_records r
                     JOIN source_record_versions v
                       ON v.record_type = r.record_type
                      AND v.source_id = r.source_id
                      AND v.source_version = r.current_version
                     WHERE r.record_type = ?1 AND r.source_id = ?2",
                )
                .map_err(classify)?;
            statement
                .query_row(params![key.0, key.1], stored_version)
                .optional()
                .map_err(classify)
        })
        .await
    }

    async fn quarantine(&self, identity: Option<&str>, limit: usize) -> Result<Vec<QuarantineEntry>, StoreError> {
        let identity = identity.map(str::to_owned);
        let limit = sql_limit(limit);
        self.run(move |connection| {
            // Two statements rather than `?1 IS NULL OR identity = ?1`, which SQLite
            // cannot answer from the (identity, id) index.
            let rows = match identity {
                Some(identity) => connection
                    .prepare_cached(&format!("{QUARANTINE_SELECT} WHERE identity = ?1 ORDER BY id LIMIT ?2"))
                    .and_then(|mut statement| {
                        statement
                            .query_map(params![identity, limit], QuarantineRow::read)?
                            .collect::<Result<Vec<_>, _>>()
                    }),
                None => connection
                    .prepare_cached(&format!("{QUARANTINE_SELECT} ORDER BY id LIMIT ?1"))
                    .and_then(|mut statement| {
                        statement
                            .query_map(params![limit], QuarantineRow::read)?
                            .collect::<Result<Vec<_>, _>>()
                    }),
            };
            rows.map_err(classify)?
                .into_iter()
                .map(QuarantineRow::into_entry)
                .collect()
        })
        .await
    }

    async fn feed_head(&self) -> Result<i64, StoreError> {
        self.run(|connection| {
            connection
                .query_row("SELECT coalesce(max(position), 0) FROM changes", [], |row| row.get(0))
                .map_err(classify)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let probe = Arc::clone(&self.probe);
        tokio::task::spawn_blocking(move || {
            // Reads the file, not just the connection object. A panic cannot leave the
            // read-only connection unsound: the poison is ignored.
            let connection = probe.lock().unwrap_or_else(PoisonError::into_inner);
            connection
                .query_row("SELECT count(*) FROM schema_migrations", [], |_| Ok(()))
                .map_err(classify)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("embedded store probe failed: {e}")))?
    }

    async fn changes(&self, after: i64, kinds: &[EntityKind], limit: usize) -> Result<Vec<Change>, StoreError> {
        let kinds = kinds.to_vec();
        self.run(move |connection| unified::select_changes(connection, after, &kinds, limit))
            .await
    }

    async fn entity_history(&self, id: &str, limit: usize) -> Result<Vec<Change>, StoreError> {
        let id = id.to_owned();
        self.run(move |connection| unified::select_entity_history(connection, &id, limit))
            .await
    }

    async fn entity(&self, id: &str) -> Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError> {
        let id = id.to_owned();
        self.run(move |connection| unified::select_entity(connection, &id))
            .await
    }

    async fn key_owner(&self, keys: &[Key]) -> Result<Option<EntityId>, StoreError> {
        let keys = keys.to_vec();
        self.run(move |connection| unified::select_key_owner(connection, &keys))
            .await
    }

    async fn audit_all(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        self.run(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            for entry in &entries {
                unified::insert_audit(&tx, entry)?;
            }
            tx.commit().map_err(classify)
        })
        .await
    }

    async fn audit_chain(&self, after: i64, limit: usize) -> Result<Vec<crate::audit::ChainedEntry>, StoreError> {
        self.run(move |connection| unified::select_audit_chain(connection, after, limit))
            .await
    }

    async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        self.run(|connection| unified::select_audit_head(connection)).await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |connection| unified::select_audit(connection, limit))
            .await
    }

    async fn review_queue(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        self.run(move |connection| unified::select_review_queue(connection, after, limit))
            .await
    }

    async fn review_queue_uncertain(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        let middles = super::review_middles(&self.resolution);
        self.run(move |connection| unified::select_review_queue_uncertain(connection, after, limit, middles))
            .await
    }

    async fn steward(&self, action: &StewardAction, steward: &str) -> Result<StewardOutcome, StoreError> {
        let action = action.clone();
        let steward = steward.to_owned();
        let settings = Arc::clone(&self.resolution);
        self.run(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let unify = unified::SqliteUnify {
                tx: &tx,
                now_millis: unix_millis(SystemTime::now()),
            };
            let outcome = steward::act(&unify, &action, &steward, &settings)
                .now_or_never()
                .ok_or_else(|| {
                    StoreError::Internal("embedded stewardship did not complete synchronously".to_owned())
                })??;
            tx.commit().map_err(classify)?;
            Ok(outcome)
        })
        .await
    }

    async fn explain(&self, id: &str) -> Result<Option<Explanation>, StoreError> {
        let id = id.to_owned();
        self.run(move |connection| unified::select_explanation(connection, &id))
            .await
    }

    async fn flagged_records(
        &self,
        filter: &FlagFilter,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<FlaggedRecord>, StoreError> {
        let filter = filter.clone();
        self.run(move |connection| quality::flagged_records(connection, &filter, after, limit))
            .await
    }

    async fn flag_counts(&self, filter: &FlagFilter) -> Result<FlagCounts, StoreError> {
        let filter = filter.clone();
        self.run(move |connection| quality::flag_counts(connection, &filter))
            .await
    }

    async fn current_records(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<CurrentRecord>, StoreError> {
        let (after_type, after_id) = after.unwrap_or_default();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT r.record_type, r.source_id, v.source_version, v.deleted, v.payload
                     FROM source_records r
                     JOIN source_record_versions v
                       ON v.record_type = r.record_type
                      AND v.source_id = r.source_id
                      AND v.source_version = r.current_version
                     WHERE (r.record_type, r.source_id) > (?1, ?2)
                     ORDER BY r.record_type, r.source_id
                     LIMIT ?3",
                )
                .map_err(classify)?;
            let rows = statement
                .query_map(params![after_type, after_id, sql_limit(limit)], |row| {
                    Ok(CurrentRecord {
                        record_type: row.get(0)?,
                        source_id: row.get(1)?,
                        version: StoredVersion {
                            source_version: row.get(2)?,
                            deleted: row.get(3)?,
                            payload: row.get(4)?,
                        },
                    })
                })
                .map_err(classify)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(classify)
        })
        .await
    }

    async fn reresolve(&self, records: Vec<Reresolution>) -> Result<usize, StoreError> {
        let settings = Arc::clone(&self.resolution);
        self.run(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let mut current = HashMap::new();
            for record in &records {
                let key = (
                    record.contribution.record_type.as_str().to_owned(),
                    record.source_id.clone(),
                );
                if let Some(version) = current_version(&tx, &key)? {
                    current.insert(key, version);
                }
            }
            let still = still_current(&records, &current);
            let count = still.len();
            let unify = unified::SqliteUnify {
                tx: &tx,
                now_millis: unix_millis(SystemTime::now()),
            };
            unify_batch(&unify, &still, &settings).now_or_never().ok_or_else(|| {
                StoreError::Internal("embedded resolution did not complete synchronously".to_owned())
            })??;
            tx.commit().map_err(classify)?;
            Ok(count)
        })
        .await
    }

    async fn add_traffic(&self, rows: &[TrafficRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.run(move |connection| traffic::add(connection, &rows)).await
    }

    async fn traffic(
        &self,
        since: i64,
        until: i64,
        window: i64,
        department: Option<&str>,
    ) -> Result<Vec<TrafficRow>, StoreError> {
        let department = department.map(str::to_owned);
        self.run(move |connection| traffic::select(connection, since, until, window, department.as_deref()))
            .await
    }
}

/// Applies every item of `batch` inside `tx`; the results are final only once `tx` commits.
/// The same steps as the PostgreSQL store, where the order of the first one matters; here
/// the write lock is held already and the first step only creates the rows of new records
/// before their versions, which reference them.
fn apply_batch(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    batch: &[Submission],
    settings: &Settings,
) -> Result<Vec<RecordResult>, StoreError> {
    let identity = receipt.identity.to_string();

    let mut current: HashMap<RecordKey, Option<i64>> = HashMap::new();
    for key in records_in_lock_order(batch) {
        let version = open_record(tx, &key)?;
        current.insert(key, version);
    }

    let mut results = Vec::with_capacity(batch.len());
    for item in batch {
        let result = match item {
            Submission::Valid(record) => apply_record(tx, receipt, &identity, item, record, &mut current)?,
            Submission::Rejected(rejection) => {
                let id = insert_quarantine(tx, receipt, &identity, &rejection.envelope, &rejection.errors)?;
                pending_result(item, Outcome::Rejected, rejection.errors.clone(), Some(id))
            }
        };
        results.push(result);
    }

    let mut current: HashMap<RecordKey, i64> = current
        .into_iter()
        .filter_map(|(key, version)| Some((key, version?)))
        .collect();
    for key in unknown_records(&results, &current) {
        if let Some(version) = current_version(tx, &key)? {
            current.insert(key, version);
        }
    }
    fill_current_versions(&mut results, &current);

    // Resolve what became current and keep the unified records, in the same transaction.
    // The operations are synchronous: the future is complete at its first poll.
    let unify = unified::SqliteUnify {
        tx,
        now_millis: unix_millis(receipt.received_at),
    };
    let resolutions = unify_batch(&unify, &became_current(batch, &results), settings)
        .now_or_never()
        .ok_or_else(|| StoreError::Internal("embedded resolution did not complete synchronously".to_owned()))??;
    fill_resolutions(batch, &mut results, resolutions);
    Ok(results)
}

/// Returns a record's current version, or creates its row and returns `None` if it is new.
/// A new row holds a placeholder version until the batch's first version of the record
/// replaces it (the deferred foreign key refuses to commit a placeholder).
fn open_record(tx: &Transaction<'_>, (record_type, source_id): &RecordKey) -> Result<Option<i64>, StoreError> {
    let created = tx
        .prepare_cached(
            "INSERT INTO source_records (record_type, source_id, current_version) VALUES (?1, ?2, 0)
             ON CONFLICT (record_type, source_id) DO NOTHING",
        )
        .and_then(|mut statement| statement.execute(params![record_type, source_id]))
        .map_err(classify)?;
    if created == 1 {
        return Ok(None);
    }
    current_version(tx, &(record_type.clone(), source_id.clone()))?
        .map(Some)
        .ok_or_else(|| StoreError::Internal(format!("record ({record_type}, {source_id}) vanished in a transaction")))
}

/// Applies one valid record under the version rules.
fn apply_record(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    item: &Submission,
    record: &SourceRecord,
    current: &mut HashMap<RecordKey, Option<i64>>,
) -> Result<RecordResult, StoreError> {
    let key = (record.record_type.clone(), record.source_id.clone());
    let Some(current) = current.get_mut(&key) else {
        return Err(StoreError::Internal(format!(
            "record {key:?} was not opened before being written"
        )));
    };
    let write = insert_version(tx, receipt, identity, record)?;
    let result = match Decision::new(write, *current, record.source_version) {
        Decision::BecomesCurrent => {
            set_current_version(tx, record)?;
            *current = Some(record.source_version);
            pending_result(item, Outcome::Accepted, Vec::new(), None)
        }
        Decision::Stale => pending_result(item, Outcome::Stale, Vec::new(), None),
        Decision::Unchanged => pending_result(item, Outcome::Unchanged, Vec::new(), None),
        Decision::Conflict => {
            let errors = vec![RecordError::version_conflict(record.source_version)];
            let id = insert_quarantine(tx, receipt, identity, &record.envelope(), &errors)?;
            pending_result(item, Outcome::Rejected, errors, Some(id))
        }
    };
    Ok(result)
}

/// Keeps `record` as a new version unless that version is already held, in which case it
/// compares the content. Payloads are canonical JSON text, so equal text is equal content;
/// parsing them to compare would be no better (serde_json rounds large numbers).
fn insert_version(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    record: &SourceRecord,
) -> Result<VersionWrite, StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO source_record_versions
                 (record_type, source_id, source_version, deleted, payload,
                  received_at, received_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (record_type, source_id, source_version) DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                record.record_type,
                record.source_id,
                record.source_version,
                record.deleted,
                record.payload,
                unix_millis(receipt.received_at),
                identity,
            ])
        })
        .map_err(classify)?;
    if inserted == 1 {
        return Ok(VersionWrite::Inserted);
    }
    let same_content = tx
        .prepare_cached(
            "SELECT deleted = ?4 AND payload = ?5
             FROM source_record_versions
             WHERE record_type = ?1 AND source_id = ?2 AND source_version = ?3",
        )
        .and_then(|mut statement| {
            statement.query_row(
                params![
                    record.record_type,
                    record.source_id,
                    record.source_version,
                    record.deleted,
                    record.payload
                ],
                |row| row.get(0),
            )
        })
        .map_err(classify)?;
    Ok(VersionWrite::AlreadyHeld { same_content })
}

fn set_current_version(tx: &Transaction<'_>, record: &SourceRecord) -> Result<(), StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE source_records SET current_version = ?3
             WHERE record_type = ?1 AND source_id = ?2",
        )
        .and_then(|mut statement| {
            statement.execute(params![record.record_type, record.source_id, record.source_version])
        })
        .map_err(classify)?;
    if updated != 1 {
        return Err(StoreError::Internal(format!(
            "record ({}, {}) vanished in a transaction",
            record.record_type, record.source_id
        )));
    }
    Ok(())
}

fn current_version(tx: &Transaction<'_>, (record_type, source_id): &RecordKey) -> Result<Option<i64>, StoreError> {
    tx.prepare_cached("SELECT current_version FROM source_records WHERE record_type = ?1 AND source_id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![record_type, source_id], |row| row.get(0))
                .optional()
        })
        .map_err(classify)
}

/// Keeps a rejected envelope; returns the entry's id.
fn insert_quarantine(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    envelope: &Envelope,
    errors: &[RecordError],
) -> Result<String, StoreError> {
    let errors = errors_to_json(errors)?;
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO quarantine
                 (received_at, identity, record_type, source_id, source_version, deleted,
                  payload, errors)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             RETURNING id",
        )
        .and_then(|mut statement| {
            statement.query_row(
                params![
                    unix_millis(receipt.received_at),
                    identity,
                    envelope.record_type,
                    envelope.source_id,
                    envelope.source_version,
                    envelope.deleted,
                    envelope.payload,
                    errors,
                ],
                |row| row.get(0),
            )
        })
        .map_err(classify)?;
    Ok(id.to_string())
}

const QUARANTINE_SELECT: &str = "SELECT id, identity, received_at, record_type, source_id,
                                        source_version, deleted, payload, errors
                                 FROM quarantine";

fn stored_version(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredVersion> {
    Ok(StoredVersion {
        source_version: row.get(0)?,
        deleted: row.get(1)?,
        payload: row.get(2)?,
    })
}

/// A quarantine row as read, before its errors are decoded (which can fail with a
/// [`StoreError`], not a `rusqlite::Error`).
struct QuarantineRow {
    entry: QuarantineEntry,
    errors: String,
}

impl QuarantineRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineRow> {
        let id: i64 = row.get(0)?;
        Ok(QuarantineRow {
            entry: QuarantineEntry {
                id: id.to_string(),
                identity: row.get(1)?,
                received_at: from_unix_millis(row.get(2)?),
                envelope: Envelope {
                    record_type: row.get(3)?,
                    source_id: row.get(4)?,
                    source_version: row.get(5)?,
                    deleted: row.get(6)?,
                    payload: row.get(7)?,
                },
                errors: Vec::new(),
            },
            errors: row.get(8)?,
        })
    }

    fn into_entry(self) -> Result<QuarantineEntry, StoreError> {
        Ok(QuarantineEntry {
            errors: errors_from_json(&self.errors)?,
            ..self.entry
        })
    }
}

// ---------------------------------------------------------------------------------------
// Time and errors

/// Milliseconds since the Unix epoch (negative before it).
fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |millis| -millis),
    }
}

fn from_unix_millis(millis: i64) -> SystemTime {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    // Only a corrupted row can be out of range; the epoch is as good an answer as any.
    time.unwrap_or(UNIX_EPOCH)
}

/// Lock contention (another process holds the file), I/O trouble, a file that cannot be
/// opened or written, or a full disk may pass, so they are `Unavailable`; anything else
/// (constraint violations, SQL errors, a corrupted file) is `Internal`.
fn classify(error: rusqlite::Error) -> StoreError {
    let transient = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::FileLockingProtocolFailed
        )
    );
    let message = format!("SQLite: {error}");
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Internal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_millis_round_trip() {
        for millis in [0, 1, 1_700_000_000_123, -86_400_000] {
            assert_eq!(unix_millis(from_unix_millis(millis)), millis);
        }
    }

    /// Statements whose cost must not grow with the store: the feed reads a page from
    /// its cursor on (a plan that sorts, `USE TEMP B-TREE`, reads every change after the
    /// cursor, so reading the feed from the start costs the square of its length), and a
    /// merge, inside resolution's transaction, finds its rows through indexes (a `SCAN`
    /// reads the whole table: every entity, for the redirects before migration 9).
    #[test]
    fn the_feed_and_merges_search_indexes_without_scanning_or_sorting() {
        let mut connection = Connection::open_in_memory().expect("in-memory SQLite");
        migrate(&mut connection).expect("the schema");
        let mut statements = vec![
            (unified::CHANGES_AFTER, vec!["0", "10"]),
            (unified::CHANGES_OF_KIND_AFTER, vec!["person", "0", "10"]),
            (unified::MERGE_APART_DELETE, vec!["P1"]),
        ];
        statements.extend(unified::MERGE.iter().map(|sql| (*sql, vec!["P1", "P2"])));
        for (sql, arguments) in statements {
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("a plan");
            let plan: Vec<String> = statement
                .query_map(rusqlite::params_from_iter(arguments), |row| row.get::<_, String>(3))
                .expect("the plan's rows")
                .collect::<Result<_, _>>()
                .expect("the plan's rows");
            assert!(
                plan.iter()
                    .all(|step| !step.contains("TEMP B-TREE") && !step.starts_with("SCAN")),
                "{sql}: {plan:?}"
            );
            assert!(plan.iter().any(|step| step.starts_with("SEARCH")), "{sql}: {plan:?}");
        }
        // The feed of every kind walks the table itself, not an OR of two index scans.
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {}", unified::CHANGES_AFTER))
            .expect("a plan");
        let plan: Vec<String> = statement
            .query_map(params![0, 10], |row| row.get::<_, String>(3))
            .expect("the plan's rows")
            .collect::<Result<_, _>>()
            .expect("the plan's rows");
        assert!(plan.iter().all(|step| !step.contains("MULTI-INDEX")), "{plan:?}");
    }

    /// The health probe reads on a connection of its own: a long batch on the worker does
    /// not make the hub look down.
    #[tokio::test]
    async fn a_ping_does_not_wait_behind_the_work_queued() {
        let dir = tempfile::tempdir().expect("a folder");
        let store = EmbeddedStore::open(&dir.path().join("tongban.db")).expect("the store");
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = store.run(move |_| {
            let _ = started.send(());
            std::thread::sleep(std::time::Duration::from_secs(3));
            Ok(())
        });
        let ping = async {
            running.await.expect("the long job started");
            let began = std::time::Instant::now();
            store.ping().await.expect("the file reads");
            began.elapsed()
        };
        let (done, waited) = tokio::join!(busy, ping);
        done.expect("the long job");
        assert!(waited < std::time::Duration::from_secs(1), "the ping waited {waited:?}");
    }

    #[test]
    fn busy_is_unavailable_and_constraint_is_internal() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(matches!(classify(busy), StoreError::Unavailable(_)));
        let constraint =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT), None);
        assert!(matches!(classify(constraint), StoreError::Internal(_)));
    }
}
