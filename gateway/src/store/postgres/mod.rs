//! The PostgreSQL store.
//!
//! Several gateway replicas may share one database and commit batches touching the same
//! records at once. A batch is one transaction that first locks the row of every record
//! it writes, in one global order (`records_in_lock_order`), and only then writes:
//! writers of a record are serialised by that row lock, and two batches never wait for
//! each other in opposite orders, so they cannot deadlock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as _;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

mod quality;
mod traffic;
mod unified;

use std::sync::Arc;

use tongban_adapters::model::EntityKind;

use super::steward;
use super::unify::unify_batch;
use super::{
    became_current, errors_from_json, errors_to_json, fill_current_versions, fill_resolutions, pending_result,
    records_in_lock_order, sql_limit, still_current, unknown_records, AuditEntry, CurrentRecord, Decision,
    QuarantineEntry, Receipt, RecordKey, Reresolution, Store, StoreError, StoredVersion, TrafficRow, VersionWrite,
    CONTENTION_ATTEMPTS,
};
use crate::quality::{FlagCounts, FlagFilter, FlaggedRecord};
use crate::record::{Envelope, Outcome, RecordError, RecordResult, SourceRecord, Submission};
use crate::resolve::{Key, Settings};
use crate::stewardship::{Explanation, ReviewPair, StewardAction, StewardOutcome};
use crate::unified::{Change, EntityId, UnifiedRecord};

/// How to reach PostgreSQL and how long to wait for it.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// A libpq-style URL or key/value string, e.g. `postgres://tongban@127.0.0.1/tongban`.
    pub url: String,
    /// Connections kept at most; at least 1.
    pub pool_size: usize,
    /// Time allowed to open a new connection.
    pub connect_timeout: Duration,
    /// Time a request waits for a free connection when all are busy.
    pub wait_timeout: Duration,
    /// Server-side limit on any one statement (zero disables it).
    pub statement_timeout: Duration,
}

/// The PostgreSQL [`Store`], over a connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// How long the hub waits for PostgreSQL to answer one operation. The server's own
    /// statement timeout does not help when the server, or the network to it, goes
    /// silent: without this a call would wait for TCP to give up, hours later.
    answer_timeout: Duration,
    /// How the unified records this store builds are resolved and survive.
    resolution: Arc<Settings>,
}

/// Added to the statement timeout: the server gets to report its own timeout first.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// The wait for an answer when the statement timeout is disabled.
const ANSWER_TIMEOUT_WITHOUT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// The `application_name` connections report unless the URL sets one, so that operators
/// can tell the hub's sessions apart in `pg_stat_activity`.
const APPLICATION_NAME: &str = "tongban-gateway";

impl PostgresStore {
    /// Builds the pool and brings the schema up to date.
    pub async fn connect(settings: &PostgresSettings) -> Result<Self, StoreError> {
        let answer_timeout = if settings.statement_timeout.is_zero() {
            ANSWER_TIMEOUT_WITHOUT_STATEMENT_TIMEOUT
        } else {
            settings.statement_timeout + ANSWER_MARGIN
        };
        let store = PostgresStore {
            pool: build_pool(settings)?,
            answer_timeout,
            resolution: Arc::new(Settings::default()),
        };
        let mut client = store.client().await?;
        let migrated = migrate(&mut client).await;
        release(client, migrated)?;
        Ok(store)
    }

    /// Resolves and builds unified records with these settings instead of the defaults.
    pub fn with_resolution(mut self, settings: Settings) -> Self {
        self.resolution = Arc::new(settings);
        self
    }

    /// Closes the pool: idle connections are dropped at once, busy ones when returned, and
    /// every later call fails with [`StoreError::Unavailable`].
    pub fn close(&self) {
        self.pool.close();
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.pool.get().await.map_err(classify_pool_error)
    }

    /// `operation`, or [`StoreError::Unavailable`] once PostgreSQL has been silent for
    /// `answer_timeout`. (Dropping a half-done transaction rolls it back on the server.)
    async fn answered<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.answer_timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {:?}",
                    self.answer_timeout
                )))
            })
    }
}

fn build_pool(settings: &PostgresSettings) -> Result<Pool, StoreError> {
    if settings.pool_size == 0 {
        return Err(StoreError::Internal(
            "the PostgreSQL pool size must be at least 1".to_owned(),
        ));
    }
    let mut config: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
    config.connect_timeout(settings.connect_timeout);
    // Notice a dead peer in about a minute rather than the kernel's two hours.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    // A startup option rather than a SET after connecting: it holds for every connection
    // the pool ever opens, with no extra round trip. Rounded up to whole milliseconds, so
    // that a tiny timeout does not become 0, which means none.
    let statement_timeout = format!(
        "-c statement_timeout={}",
        settings.statement_timeout.as_micros().div_ceil(1000)
    );
    let options = match config.get_options() {
        Some(options) if !options.trim().is_empty() => format!("{options} {statement_timeout}"),
        _ => statement_timeout,
    };
    config.options(options);

    // `Fast` recycling only checks that the connection has not been seen to close, with no
    // round trip. A connection found broken by a request fails that request as
    // `Unavailable` and is replaced the next time it is taken from the pool.
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // Without timeouts deadpool would wait forever for a connection or for the server.
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the PostgreSQL pool: {e}")))
}

// ---------------------------------------------------------------------------------------
// Migrations

struct Migration {
    version: i32,
    sql: &'static str,
}

/// Applied in order, each once; never edit one that has shipped, add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_unified.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/postgres/0003_matching.sql"),
    },
    Migration {
        version: AUDIT_CHAIN_VERSION,
        sql: include_str!("../migrations/postgres/0004_audit_chain.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/postgres/0005_traffic.sql"),
    },
    Migration {
        version: QUALITY_VERSION,
        sql: include_str!("../migrations/postgres/0006_quality.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/postgres/0007_audit_trace.sql"),
    },
];

/// The migration that keeps mentions' quality flags in columns of their own; the
/// mentions already kept get theirs when it is applied.
const QUALITY_VERSION: i32 = 6;

/// The migration that adds the audit chain; the entries already written are chained
/// when it is applied.
const AUDIT_CHAIN_VERSION: i32 = 4;

/// The advisory lock that serialises migrations of replicas starting at once.
const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"tongbanM");

/// Applies the migrations not yet recorded in `schema_migrations`, each in its own
/// transaction. The advisory lock is taken before anything else, so a replica starting at
/// the same time waits and then finds the work done.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    for migration in MIGRATIONS {
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(classify)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL
             )",
        )
        .await
        .map_err(classify)?;
        let applied = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&migration.version],
            )
            .await
            .map_err(classify)?
            .is_some();
        if !applied {
            tx.batch_execute(migration.sql).await.map_err(classify)?;
            if migration.version == AUDIT_CHAIN_VERSION {
                unified::chain_unchained_audit(&tx).await?;
            }
            if migration.version == QUALITY_VERSION {
                quality::backfill(&tx).await?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
                &[&migration.version],
            )
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The store

/// Runs `$work` (an expression that may use `$tx` and `?`) in a transaction of a pooled
/// connection and commits; on [`StoreError::Contention`] the transaction was rolled
/// back, and the same work runs again on the new state, up to `CONTENTION_ATTEMPTS`
/// times. A macro, not a function: the work borrows the transaction inside an async
/// block, which a closure cannot return.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $work:expr) => {{
        let mut client = $store.client().await?;
        let mut attempt = 1;
        loop {
            let result = $store
                .answered(async {
                    let $tx = client.transaction().await.map_err(classify)?;
                    let done = $work;
                    $tx.commit().await.map_err(classify)?;
                    Ok::<_, StoreError>(done)
                })
                .await;
            match result {
                Err(StoreError::Contention(_)) if attempt < CONTENTION_ATTEMPTS => attempt += 1,
                result => break release(client, result),
            }
        }
    }};
}

impl Store for PostgresStore {
    async fn commit(&self, receipt: &Receipt, batch: Vec<Submission>) -> Result<Vec<RecordResult>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Dropping the transaction on an error rolls the whole batch back.
        in_transaction!(self, |tx| apply_batch(&tx, receipt, &batch, &self.resolution).await?)
    }

    async fn versions(&self, record_type: &str, source_id: &str) -> Result<Vec<StoredVersion>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(select_versions(&client, record_type, source_id)).await;
        release(client, result)
    }

    async fn current(&self, record_type: &str, source_id: &str) -> Result<Option<StoredVersion>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(select_current(&client, record_type, source_id)).await;
        release(client, result)
    }

    async fn quarantine(&self, identity: Option<&str>, limit: usize) -> Result<Vec<QuarantineEntry>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(select_quarantine(&client, identity, limit)).await;
        release(client, result)
    }

    async fn feed_head(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let result = self
            .answered(async {
                let row = client
                    .query_one("SELECT position FROM feed_clock WHERE id = 1", &[])
                    .await
                    .map_err(classify)?;
                row.try_get::<_, i64>(0).map_err(classify)
            })
            .await;
        release(client, result)
    }

    fn pool_status(&self) -> Option<super::PoolStatus> {
        let status = self.pool.status();
        Some(super::PoolStatus {
            open: status.size,
            idle: status.available,
            max: status.max_size,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let result = self
            .answered(async { client.simple_query("SELECT 1").await.map(drop).map_err(classify) })
            .await;
        release(client, result)
    }

    async fn changes(&self, after: i64, kinds: &[EntityKind], limit: usize) -> Result<Vec<Change>, StoreError> {
        let client = self.client().await?;
        let result = self
            .answered(unified::select_changes(&client, after, kinds, limit))
            .await;
        release(client, result)
    }

    async fn entity(&self, id: &str) -> Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_entity(&client, id)).await;
        release(client, result)
    }

    async fn key_owner(&self, keys: &[Key]) -> Result<Option<EntityId>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_key_owner(&client, keys)).await;
        release(client, result)
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        in_transaction!(self, |tx| unified::insert_audit(&tx, entry).await?)
    }

    async fn audit_chain(&self, after: i64, limit: usize) -> Result<Vec<crate::audit::ChainedEntry>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_audit_chain(&client, after, limit)).await;
        release(client, result)
    }

    async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_audit_head(&client)).await;
        release(client, result)
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_audit(&client, limit)).await;
        release(client, result)
    }

    async fn review_queue(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_review_queue(&client, after, limit)).await;
        release(client, result)
    }

    async fn steward(&self, action: &StewardAction, steward: &str) -> Result<StewardOutcome, StoreError> {
        in_transaction!(self, |tx| steward::act(
            &unified::PgUnify { tx: &tx },
            action,
            steward,
            &self.resolution
        )
        .await?)
    }

    async fn explain(&self, id: &str) -> Result<Option<Explanation>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_explanation(&client, id)).await;
        release(client, result)
    }

    async fn flagged_records(
        &self,
        filter: &FlagFilter,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<FlaggedRecord>, StoreError> {
        let client = self.client().await?;
        let result = self
            .answered(quality::flagged_records(&client, filter, after, limit))
            .await;
        release(client, result)
    }

    async fn flag_counts(&self, filter: &FlagFilter) -> Result<FlagCounts, StoreError> {
        let client = self.client().await?;
        let result = self.answered(quality::flag_counts(&client, filter)).await;
        release(client, result)
    }

    async fn current_records(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<CurrentRecord>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(select_current_records(&client, after, limit)).await;
        release(client, result)
    }

    async fn reresolve(&self, records: Vec<Reresolution>) -> Result<usize, StoreError> {
        in_transaction!(self, |tx| {
            let mut keys: Vec<RecordKey> = records
                .iter()
                .map(|r| (r.contribution.record_type.as_str().to_owned(), r.source_id.clone()))
                .collect();
            keys.sort();
            keys.dedup();
            let mut current = HashMap::new();
            for key in keys {
                if let Some(version) = lock_record(&tx, &key).await? {
                    current.insert(key, version);
                }
            }
            let still = still_current(&records, &current);
            let count = still.len();
            unify_batch(&unified::PgUnify { tx: &tx }, &still, &self.resolution).await?;
            count
        })
    }

    async fn add_traffic(&self, rows: &[TrafficRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        in_transaction!(self, |tx| traffic::add(&tx, rows).await?)
    }

    async fn traffic(
        &self,
        since: i64,
        until: i64,
        window: i64,
        department: Option<&str>,
    ) -> Result<Vec<TrafficRow>, StoreError> {
        let client = self.client().await?;
        let result = self
            .answered(traffic::select(&client, since, until, window, department))
            .await;
        release(client, result)
    }
}

async fn select_current_records(
    client: &Client,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<CurrentRecord>, StoreError> {
    let (after_type, after_id) = after.unwrap_or_default();
    let statement = client
        .prepare_cached(
            "SELECT r.record_type, r.source_id, v.source_version, v.deleted, v.payload
             FROM source_records r
             JOIN source_record_versions v
               ON v.record_type = r.record_type AND v.source_id = r.source_id AND v.source_version = r.current_version
             WHERE (r.record_type, r.source_id) > ($1, $2)
             ORDER BY r.record_type, r.source_id
             LIMIT $3",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&after_type, &after_id, &sql_limit(limit)])
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            Ok(CurrentRecord {
                record_type: row.try_get(0).map_err(classify)?,
                source_id: row.try_get(1).map_err(classify)?,
                version: stored_version(row)?,
            })
        })
        .collect()
}

type Client = deadpool_postgres::Client;

/// Hands a connection back to the pool after use, unless a request on it failed as
/// unavailable: then it may be dead without the pool knowing yet (its task notices the
/// closed socket a moment after the request gets its error), and handing it out again
/// would fail the next request too. It is dropped instead, and the pool opens a new one
/// when needed. (After a statement timeout that costs a reconnection; rare enough.)
fn release<T>(client: Client, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if matches!(result, Err(StoreError::Unavailable(_))) {
        drop(deadpool_postgres::Object::take(client));
    }
    result
}

async fn select_versions(
    client: &Client,
    record_type: &str,
    source_id: &str,
) -> Result<Vec<StoredVersion>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT source_version, deleted, payload FROM source_record_versions
             WHERE record_type = $1 AND source_id = $2
             ORDER BY source_version",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&record_type, &source_id])
        .await
        .map_err(classify)?;
    rows.iter().map(stored_version).collect()
}

async fn select_current(
    client: &Client,
    record_type: &str,
    source_id: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT v.source_version, v.deleted, v.payload
             FROM source_records r
             JOIN source_record_versions v
               ON v.record_type = r.record_type
              AND v.source_id = r.source_id
              AND v.source_version = r.current_version
             WHERE r.record_type = $1 AND r.source_id = $2",
        )
        .await
        .map_err(classify)?;
    let row = client
        .query_opt(&statement, &[&record_type, &source_id])
        .await
        .map_err(classify)?;
    row.as_ref().map(stored_version).transpose()
}

const QUARANTINE_SELECT: &str = "SELECT id, identity, received_at, record_type, source_id,
                                        source_version, deleted, payload, errors
                                 FROM quarantine";

async fn select_quarantine(
    client: &Client,
    identity: Option<&str>,
    limit: usize,
) -> Result<Vec<QuarantineEntry>, StoreError> {
    let limit = sql_limit(limit);
    // Two statements rather than `$1 IS NULL OR identity = $1`, which would keep a cached
    // generic plan from using the (identity, id) index.
    let rows = match identity {
        Some(identity) => {
            let statement = client
                .prepare_cached(&format!("{QUARANTINE_SELECT} WHERE identity = $1 ORDER BY id LIMIT $2"))
                .await
                .map_err(classify)?;
            client.query(&statement, &[&identity, &limit]).await
        }
        None => {
            let statement = client
                .prepare_cached(&format!("{QUARANTINE_SELECT} ORDER BY id LIMIT $1"))
                .await
                .map_err(classify)?;
            client.query(&statement, &[&limit]).await
        }
    };
    rows.map_err(classify)?.iter().map(quarantine_entry).collect()
}

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// Applies every item of `batch` inside `tx`; the results are final only once `tx` commits.
async fn apply_batch(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    batch: &[Submission],
    settings: &Settings,
) -> Result<Vec<RecordResult>, StoreError> {
    let identity = receipt.identity.to_string();

    // Lock first, all of them, in the global order: nothing below waits for another batch.
    let mut current: HashMap<RecordKey, Option<i64>> = HashMap::new();
    for key in records_in_lock_order(batch) {
        let version = lock_record(tx, &key).await?;
        current.insert(key, version);
    }

    // Then apply in batch order, so that items naming the same record apply in that order.
    let mut results = Vec::with_capacity(batch.len());
    for item in batch {
        let result = match item {
            Submission::Valid(record) => apply_record(tx, receipt, &identity, item, record, &mut current).await?,
            Submission::Rejected(rejection) => {
                let id = insert_quarantine(tx, receipt, &identity, &rejection.envelope, &rejection.errors).await?;
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
        if let Some(version) = current_version(tx, &key).await? {
            current.insert(key, version);
        }
    }
    fill_current_versions(&mut results, &current);

    // Resolve what became current and keep the unified records, in the same transaction.
    let resolutions = unify_batch(&unified::PgUnify { tx }, &became_current(batch, &results), settings).await?;
    fill_resolutions(batch, &mut results, resolutions);
    Ok(results)
}

/// Locks the row of a record for the rest of the transaction, creating it if the record is
/// new. Returns its current version, or `None` for a row just created: that row holds a
/// placeholder version until the batch's first version of the record replaces it (the
/// deferred foreign key refuses to commit a placeholder).
async fn lock_record(tx: &Transaction<'_>, (record_type, source_id): &RecordKey) -> Result<Option<i64>, StoreError> {
    // If another transaction has created the same row and not committed yet, this waits
    // for it, exactly as for a row lock.
    let create = tx
        .prepare_cached(
            "INSERT INTO source_records (record_type, source_id, current_version) VALUES ($1, $2, 0)
             ON CONFLICT (record_type, source_id) DO NOTHING",
        )
        .await
        .map_err(classify)?;
    if tx.execute(&create, &[record_type, source_id]).await.map_err(classify)? == 1 {
        return Ok(None);
    }
    let lock = tx
        .prepare_cached(
            "SELECT current_version FROM source_records
             WHERE record_type = $1 AND source_id = $2
             FOR UPDATE",
        )
        .await
        .map_err(classify)?;
    let row = tx.query_one(&lock, &[record_type, source_id]).await.map_err(classify)?;
    Ok(Some(row.try_get(0).map_err(classify)?))
}

/// Applies one valid record under the version rules; its record is locked already.
async fn apply_record(
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
            "record {key:?} was not locked before being written"
        )));
    };
    let write = insert_version(tx, receipt, identity, record).await?;
    let result = match Decision::new(write, *current, record.source_version) {
        Decision::BecomesCurrent => {
            set_current_version(tx, record).await?;
            *current = Some(record.source_version);
            pending_result(item, Outcome::Accepted, Vec::new(), None)
        }
        Decision::Stale => pending_result(item, Outcome::Stale, Vec::new(), None),
        Decision::Unchanged => pending_result(item, Outcome::Unchanged, Vec::new(), None),
        Decision::Conflict => {
            let errors = vec![RecordError::version_conflict(record.source_version)];
            let id = insert_quarantine(tx, receipt, identity, &record.envelope(), &errors).await?;
            pending_result(item, Outcome::Rejected, errors, Some(id))
        }
    };
    Ok(result)
}

/// Keeps `record` as a new version unless that version is already held, in which case it
/// compares the content: payload as JSON (not as text) and the `deleted` flag.
async fn insert_version(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    record: &SourceRecord,
) -> Result<VersionWrite, StoreError> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO source_record_versions
                 (record_type, source_id, source_version, deleted, payload,
                  received_at, received_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (record_type, source_id, source_version) DO NOTHING",
        )
        .await
        .map_err(classify)?;
    let inserted = tx
        .execute(
            &insert,
            &[
                &record.record_type,
                &record.source_id,
                &record.source_version,
                &record.deleted,
                &record.payload,
                &receipt.received_at,
                &identity,
            ],
        )
        .await
        .map_err(classify)?;
    if inserted == 1 {
        return Ok(VersionWrite::Inserted);
    }
    let compare = tx
        .prepare_cached(
            "SELECT deleted = $4 AND payload = $5
             FROM source_record_versions
             WHERE record_type = $1 AND source_id = $2 AND source_version = $3",
        )
        .await
        .map_err(classify)?;
    let row = tx
        .query_one(
            &compare,
            &[
                &record.record_type,
                &record.source_id,
                &record.source_version,
                &record.deleted,
                &record.payload,
            ],
        )
        .await
        .map_err(classify)?;
    Ok(VersionWrite::AlreadyHeld {
        same_content: row.try_get(0).map_err(classify)?,
    })
}

async fn set_current_version(tx: &Transaction<'_>, record: &SourceRecord) -> Result<(), StoreError> {
    let update = tx
        .prepare_cached(
            "UPDATE source_records SET current_version = $3
             WHERE record_type = $1 AND source_id = $2",
        )
        .await
        .map_err(classify)?;
    let updated = tx
        .execute(
            &update,
            &[&record.record_type, &record.source_id, &record.source_version],
        )
        .await
        .map_err(classify)?;
    if updated != 1 {
        return Err(StoreError::Internal(format!(
            "record ({}, {}) vanished while locked",
            record.record_type, record.source_id
        )));
    }
    Ok(())
}

/// The current version of a record not locked by this batch (only named by rejections).
async fn current_version(
    tx: &Transaction<'_>,
    (record_type, source_id): &RecordKey,
) -> Result<Option<i64>, StoreError> {
    let select = tx
        .prepare_cached("SELECT current_version FROM source_records WHERE record_type = $1 AND source_id = $2")
        .await
        .map_err(classify)?;
    let row = tx
        .query_opt(&select, &[record_type, source_id])
        .await
        .map_err(classify)?;
    row.map(|row| row.try_get(0).map_err(classify)).transpose()
}

/// Keeps a rejected envelope; returns the entry's id.
async fn insert_quarantine(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    envelope: &Envelope,
    errors: &[RecordError],
) -> Result<String, StoreError> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO quarantine
                 (received_at, identity, record_type, source_id, source_version, deleted,
                  payload, errors)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
        )
        .await
        .map_err(classify)?;
    let row = tx
        .query_one(
            &insert,
            &[
                &receipt.received_at,
                &identity,
                &without_nul(&envelope.record_type),
                &without_nul(&envelope.source_id),
                &envelope.source_version,
                &envelope.deleted,
                &envelope.payload,
                &errors_to_json(errors)?,
            ],
        )
        .await
        .map_err(classify)?;
    let id: i64 = row.try_get(0).map_err(classify)?;
    Ok(id.to_string())
}

/// PostgreSQL text cannot hold U+0000, and a rejected envelope may carry anything; an
/// unstorable rejection must not fail the whole batch, so NUL becomes U+FFFD.
fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn stored_version(row: &tokio_postgres::Row) -> Result<StoredVersion, StoreError> {
    Ok(StoredVersion {
        source_version: row.try_get("source_version").map_err(classify)?,
        deleted: row.try_get("deleted").map_err(classify)?,
        payload: row.try_get("payload").map_err(classify)?,
    })
}

fn quarantine_entry(row: &tokio_postgres::Row) -> Result<QuarantineEntry, StoreError> {
    let id: i64 = row.try_get("id").map_err(classify)?;
    let errors: String = row.try_get("errors").map_err(classify)?;
    let errors = errors_from_json(&errors)?;
    Ok(QuarantineEntry {
        id: id.to_string(),
        identity: row.try_get("identity").map_err(classify)?,
        received_at: row.try_get::<_, SystemTime>("received_at").map_err(classify)?,
        envelope: Envelope {
            record_type: row.try_get("record_type").map_err(classify)?,
            source_id: row.try_get("source_id").map_err(classify)?,
            source_version: row.try_get("source_version").map_err(classify)?,
            deleted: row.try_get("deleted").map_err(classify)?,
            payload: row.try_get("payload").map_err(classify)?,
        },
        errors,
    })
}

// ---------------------------------------------------------------------------------------
// Errors

/// Failing to get a connection means the database cannot be reached now, whatever the
/// reason (refused, timed out, not accepting connections, too many clients, wrong
/// password): the hub cannot serve until an operator or the database fixes it.
fn classify_pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(e) => StoreError::Unavailable(format!("cannot connect to PostgreSQL: {}", describe(&e))),
        PoolError::Timeout(kind) => StoreError::Unavailable(format!("PostgreSQL connection pool timed out ({kind:?})")),
        PoolError::Closed => StoreError::Unavailable("the PostgreSQL store is closed".to_owned()),
        other => StoreError::Internal(format!("PostgreSQL connection pool: {other}")),
    }
}

/// Sorts an error on a working connection: a lost connection, a server shutting down or
/// refusing work, or a statement timeout may pass, so they are `Unavailable`; anything
/// else (constraint violations, SQL errors) is a bug and `Internal`.
fn classify(error: tokio_postgres::Error) -> StoreError {
    let message = describe(&error);
    if error
        .code()
        .is_some_and(|code| *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE)
    {
        StoreError::Contention(message)
    } else if is_transient(&error) {
        StoreError::Unavailable(message)
    } else {
        StoreError::Internal(message)
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => is_transient_sqlstate(code),
        // No SQLSTATE, so not the server's answer: an I/O error underneath means the
        // connection broke or never came up; anything else (say, a value that does not
        // convert) is a bug.
        None => error.source().is_some_and(|source| source.is::<std::io::Error>()),
    }
}

fn is_transient_sqlstate(code: &SqlState) -> bool {
    // Class 08: connection exceptions.
    code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,            // 57P01, e.g. pg_terminate_backend
            SqlState::CRASH_SHUTDOWN,            // 57P02
            SqlState::CANNOT_CONNECT_NOW,        // 57P03, starting up or shutting down
            SqlState::QUERY_CANCELED,            // 57014, statement_timeout
            SqlState::TOO_MANY_CONNECTIONS,      // 53300
            SqlState::LOCK_NOT_AVAILABLE,        // 55P03, lock_timeout if an operator sets one
            SqlState::READ_ONLY_SQL_TRANSACTION, // 25006, connected to a standby during a failover
        ]
        .contains(code)
}

/// tokio-postgres says only "db error" for server errors; the server's message is in the
/// source, and that is what an operator needs.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code()),
        None => match error.source() {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_only_when_present() {
        assert!(matches!(without_nul("tax.taxpayer"), Cow::Borrowed("tax.taxpayer")));
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn connection_and_timeout_states_are_transient() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
        ] {
            assert!(is_transient_sqlstate(&code), "{}", code.code());
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
            SqlState::FOREIGN_KEY_VIOLATION,
        ] {
            assert!(!is_transient_sqlstate(&code), "{}", code.code());
        }
    }
}
