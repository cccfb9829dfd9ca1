//! The PostgreSQL store.
//!
//! Several gateway replicas may share one database and commit batches touching the same
//! records at once. A batch is one transaction that first locks the row of every record
//! it writes, in one global order (`records_in_lock_order`), and only then writes:
//! writers of a record are serialised by that row lock, and two batches never wait for
//! each other in opposite orders, so they cannot deadlock. The locking takes two
//! statements for the whole batch, each going through its records in that order: one
//! creates the rows of new records, the other locks the rows already there
//! (`lock_records` says why the two together keep the order).
//!
//! A batch costs a handful of statements whatever its size: each works on all of its
//! items at once (arrays bound once and `unnest`ed), and the version rules are decided in
//! Rust from what they return (`apply_batch`).

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
        store.warn_without_autovacuum().await;
        Ok(store)
    }

    /// The hub rewrites an entity's row, profile and blocking keys as each of its
    /// mentions arrives: without autovacuum its tables bloat and their statistics go
    /// stale, and resolution slows down as the store grows (measured: a tenth of the
    /// ingest rate at a million people). Said once at start-up; not a refusal to serve.
    async fn warn_without_autovacuum(&self) {
        let Ok(client) = self.client().await else { return };
        if let Ok(row) = client.query_one("SHOW autovacuum", &[]).await {
            if row.try_get::<_, String>(0).is_ok_and(|setting| setting != "on") {
                tracing::warn!(
                    "PostgreSQL's autovacuum is off: the hub's tables will bloat and slow down as they grow; \
                     turn it on (autovacuum = on) or VACUUM ANALYZE them on a schedule"
                );
            }
        }
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
    Migration {
        version: 8,
        sql: include_str!("../migrations/postgres/0008_entities_redirected.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/postgres/0009_changes_by_entity.sql"),
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
        // A migration may build an index over millions of rows: the statement timeout
        // that bounds a request does not bound it (nor the wait for another replica's).
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(classify)?;
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
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(classify)?
        .try_get(0)
        .map_err(classify)?;
    let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = newest.filter(|v| *v > known) {
        // Replicas of the previous version go on during a rolling upgrade, so this is not
        // refused; a rollback is a restore of the backup taken before (docs/operating.md).
        tracing::warn!(
            database = newest,
            binary = known,
            "the database was migrated by a newer tongban; this one may misread it"
        );
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

    async fn entity_history(&self, id: &str, limit: usize) -> Result<Vec<Change>, StoreError> {
        let client = self.client().await?;
        let result = self.answered(unified::select_entity_history(&client, id, limit)).await;
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

    async fn audit_all(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        in_transaction!(self, |tx| {
            for entry in entries {
                unified::insert_audit(&tx, entry).await?;
            }
        })
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

    async fn review_queue_uncertain(&self, after: i64, limit: usize) -> Result<Vec<ReviewPair>, StoreError> {
        let middles = super::review_middles(&self.resolution);
        let client = self.client().await?;
        let result = self
            .answered(unified::select_review_queue_uncertain(&client, after, limit, middles))
            .await;
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
            let current: HashMap<RecordKey, i64> = lock_records(&tx, &keys)
                .await?
                .into_iter()
                .filter_map(|(key, version)| Some((key, version?)))
                .collect();
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
///
/// A handful of statements whatever the size of the batch, each over the whole batch
/// (arrays bound once, `unnest` in SQL): the version rules are decided here, item after
/// item in batch order, from what those statements found.
async fn apply_batch(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    batch: &[Submission],
    settings: &Settings,
) -> Result<Vec<RecordResult>, StoreError> {
    let identity = receipt.identity.to_string();

    // Lock first, all of them, in the global order: nothing below waits for another batch.
    let mut current = lock_records(tx, &records_in_lock_order(batch)).await?;

    // Keep every version not held yet (its first copy in the batch), and learn which
    // items name a version held before the batch.
    let kept = insert_versions(tx, receipt, &identity, batch).await?;

    // Then decide in batch order, so that items naming the same record apply in that order.
    let mut writes = VersionWrites::new(kept.held_before);
    let mut new_current: HashMap<RecordKey, i64> = HashMap::new();
    let mut refused: Vec<Refused<'_>> = Vec::new();
    let mut results = Vec::with_capacity(batch.len());
    for (index, item) in batch.iter().enumerate() {
        let result = match item {
            Submission::Valid(record) => {
                let key = (record.record_type.clone(), record.source_id.clone());
                let Some(current) = current.get_mut(&key) else {
                    return Err(StoreError::Internal(format!(
                        "record {key:?} was not locked before being written"
                    )));
                };
                match Decision::new(writes.write(index, record), *current, record.source_version) {
                    Decision::BecomesCurrent => {
                        *current = Some(record.source_version);
                        new_current.insert(key, record.source_version);
                        pending_result(item, Outcome::Accepted, Vec::new(), None)
                    }
                    Decision::Stale => pending_result(item, Outcome::Stale, Vec::new(), None),
                    Decision::Unchanged => pending_result(item, Outcome::Unchanged, Vec::new(), None),
                    Decision::Conflict => {
                        let errors = vec![RecordError::version_conflict(record.source_version)];
                        refused.push(Refused {
                            item: index,
                            envelope: Cow::Owned(record.envelope()),
                            errors: errors.clone(),
                        });
                        pending_result(item, Outcome::Rejected, errors, None)
                    }
                }
            }
            Submission::Rejected(rejection) => {
                refused.push(Refused {
                    item: index,
                    envelope: Cow::Borrowed(&rejection.envelope),
                    errors: rejection.errors.clone(),
                });
                pending_result(item, Outcome::Rejected, rejection.errors.clone(), None)
            }
        };
        results.push(result);
    }
    if writes.inserted() != kept.inserted {
        return Err(StoreError::Internal(format!(
            "{} versions were inserted where the version rules expected {}: versions changed \
             while their records were locked",
            kept.inserted,
            writes.inserted()
        )));
    }

    set_current_versions(tx, &new_current).await?;
    let ids = insert_quarantine(tx, receipt, &identity, &refused).await?;
    for (entry, id) in refused.iter().zip(ids) {
        results[entry.item].quarantine_id = Some(id);
    }

    let mut current: HashMap<RecordKey, i64> = current
        .into_iter()
        .filter_map(|(key, version)| Some((key, version?)))
        .collect();
    let unknown = unknown_records(&results, &current);
    current.extend(current_versions(tx, &unknown).await?);
    fill_current_versions(&mut results, &current);

    // Resolve what became current and keep the unified records, in the same transaction.
    let resolutions = unify_batch(&unified::PgUnify { tx }, &became_current(batch, &results), settings).await?;
    fill_resolutions(batch, &mut results, resolutions);
    Ok(results)
}

/// Locks the rows of `keys`, which are in the global lock order, for the rest of the
/// transaction, creating those of new records. Returns each record's current version, or
/// `None` for a row just created: that row holds a placeholder version until the batch's
/// first version of the record replaces it (the deferred foreign key refuses to commit a
/// placeholder).
///
/// Two statements, each going through the records in the lock order. The first creates
/// the rows of new records: where another transaction has created the same row and not
/// committed yet (or is writing a row it locked), it waits for that one to finish, exactly
/// as for a row lock; it locks no row that was there already. The second locks those rows,
/// committed by then. Why no two batches can wait for each other in a cycle:
/// - a transaction in its first statement waits only for one that created the row (one
///   further along the order in its first statement, or one in its second) or for one
///   done locking;
/// - a transaction in its second statement never waits for a row created by another's
///   first (every row it names was committed before the statement began, or created by
///   itself), only for a row locked by another's second statement (one further along the
///   order in its second statement) or for one done locking;
/// - a transaction done locking writes only rows it holds, and one still locking holds
///   nothing else, so the first never waits for the second.
///
/// Along a chain of waits the position in the order only grows within each statement, and
/// a chain that reaches a second statement never leads back to a first: it cannot close.
async fn lock_records(tx: &Transaction<'_>, keys: &[RecordKey]) -> Result<HashMap<RecordKey, Option<i64>>, StoreError> {
    let mut current = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(current);
    }
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().map(|(t, s)| (t.as_str(), s.as_str())).unzip();
    let create = tx
        .prepare_cached(
            "INSERT INTO source_records (record_type, source_id, current_version)
             SELECT record_type, source_id, 0
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (record_type, source_id, n)
             ORDER BY n
             ON CONFLICT (record_type, source_id) DO NOTHING
             RETURNING record_type, source_id",
        )
        .await
        .map_err(classify)?;
    for row in tx.query(&create, &[&types, &ids]).await.map_err(classify)? {
        let key: RecordKey = (row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?);
        current.insert(key, None);
    }

    let (types, ids): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .filter(|key| !current.contains_key(*key))
        .map(|(t, s)| (t.as_str(), s.as_str()))
        .unzip();
    if !types.is_empty() {
        // `FOR UPDATE` locks the rows as they come out of the `ORDER BY`.
        let lock = tx
            .prepare_cached(
                "SELECT r.record_type, r.source_id, r.current_version
                 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (record_type, source_id, n)
                 JOIN source_records r ON r.record_type = k.record_type AND r.source_id = k.source_id
                 ORDER BY k.n
                 FOR UPDATE OF r",
            )
            .await
            .map_err(classify)?;
        for row in tx.query(&lock, &[&types, &ids]).await.map_err(classify)? {
            let key: RecordKey = (row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?);
            current.insert(key, Some(row.try_get(2).map_err(classify)?));
        }
    }
    if current.len() != keys.len() {
        return Err(StoreError::Internal(format!(
            "{} of {} records were neither created nor found to lock",
            keys.len() - current.len(),
            keys.len()
        )));
    }
    Ok(current)
}

/// What [`insert_versions`] found.
#[derive(Debug, Default)]
struct KeptVersions {
    /// How many versions it inserted.
    inserted: usize,
    /// The items (by index in the batch) naming a version held before the batch, each
    /// with whether its content is the held copy's.
    held_before: HashMap<usize, bool>,
}

/// Inserts, in one statement, the first copy in batch order of every version the valid
/// items of `batch` name that is not held yet, and compares every item naming a version
/// held before with the held copy: payload text and the `deleted` flag, equal text being
/// equal content since payloads are canonical (as the embedded store does).
async fn insert_versions(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    batch: &[Submission],
) -> Result<KeptVersions, StoreError> {
    let mut items = Vec::new();
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut deleted = Vec::new();
    let mut payloads = Vec::new();
    for (index, item) in batch.iter().enumerate() {
        if let Submission::Valid(record) = item {
            items.push(i64::try_from(index).map_err(|_| StoreError::Internal("batch too large".to_owned()))?);
            types.push(record.record_type.as_str());
            ids.push(record.source_id.as_str());
            versions.push(record.source_version);
            deleted.push(record.deleted);
            payloads.push(record.payload.as_str());
        }
    }
    if items.is_empty() {
        return Ok(KeptVersions::default());
    }
    // The sub-statements of a WITH all see the versions held before it: `held` does not
    // see what `kept` inserts.
    let statement = tx
        .prepare_cached(
            "WITH item AS (
                 SELECT *
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::boolean[], $6::text[])
                      AS item (n, record_type, source_id, source_version, deleted, payload)
             ),
             held AS (
                 SELECT item.n, v.deleted = item.deleted AND v.payload = item.payload AS same_content
                 FROM item
                 JOIN source_record_versions v
                   ON v.record_type = item.record_type
                  AND v.source_id = item.source_id
                  AND v.source_version = item.source_version
             ),
             kept AS (
                 INSERT INTO source_record_versions
                     (record_type, source_id, source_version, deleted, payload, received_at, received_by)
                 SELECT DISTINCT ON (record_type, source_id, source_version)
                        record_type, source_id, source_version, deleted, payload, $7::timestamptz, $8::text
                 FROM item
                 ORDER BY record_type, source_id, source_version, n
                 ON CONFLICT (record_type, source_id, source_version) DO NOTHING
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM kept),
                    coalesce(array_agg(n ORDER BY n), '{}'),
                    coalesce(array_agg(same_content ORDER BY n), '{}')
             FROM held",
        )
        .await
        .map_err(classify)?;
    let row = tx
        .query_one(
            &statement,
            &[
                &items,
                &types,
                &ids,
                &versions,
                &deleted,
                &payloads,
                &receipt.received_at,
                &identity,
            ],
        )
        .await
        .map_err(classify)?;
    let inserted: i64 = row.try_get(0).map_err(classify)?;
    let held_items: Vec<i64> = row.try_get(1).map_err(classify)?;
    let same_content: Vec<bool> = row.try_get(2).map_err(classify)?;
    let held_before = held_items
        .into_iter()
        .zip(same_content)
        .map(|(item, same)| Ok((usize::try_from(item).map_err(|_| bad_item(item))?, same)))
        .collect::<Result<_, StoreError>>()?;
    Ok(KeptVersions {
        inserted: usize::try_from(inserted).map_err(|_| bad_item(inserted))?,
        held_before,
    })
}

fn bad_item(value: i64) -> StoreError {
    StoreError::Internal(format!("PostgreSQL answered {value} for a count or an item"))
}

/// The [`VersionWrite`] of each valid item of a batch whose new versions were inserted at
/// once by [`insert_versions`], as if the items had been inserted one after the other:
/// an item finds its version held if it was held before the batch or an earlier item
/// of the batch named it first.
struct VersionWrites<'a> {
    held_before: HashMap<usize, bool>,
    /// The first copy in the batch of every version it inserted.
    first_copies: HashMap<(&'a str, &'a str, i64), &'a SourceRecord>,
}

impl<'a> VersionWrites<'a> {
    fn new(held_before: HashMap<usize, bool>) -> Self {
        VersionWrites {
            held_before,
            first_copies: HashMap::new(),
        }
    }

    /// The write of the item at `index` of the batch, `record`; call in batch order.
    fn write(&mut self, index: usize, record: &'a SourceRecord) -> VersionWrite {
        if let Some(&same_content) = self.held_before.get(&index) {
            return VersionWrite::AlreadyHeld { same_content };
        }
        let version = (
            record.record_type.as_str(),
            record.source_id.as_str(),
            record.source_version,
        );
        match self.first_copies.entry(version) {
            std::collections::hash_map::Entry::Occupied(first) => VersionWrite::AlreadyHeld {
                same_content: first.get().deleted == record.deleted && first.get().payload == record.payload,
            },
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(record);
                VersionWrite::Inserted
            }
        }
    }

    /// How many versions the items so far inserted.
    fn inserted(&self) -> usize {
        self.first_copies.len()
    }
}

/// Sets the current version of each record that got a new one; every row is locked.
async fn set_current_versions(tx: &Transaction<'_>, current: &HashMap<RecordKey, i64>) -> Result<(), StoreError> {
    if current.is_empty() {
        return Ok(());
    }
    let mut types = Vec::with_capacity(current.len());
    let mut ids = Vec::with_capacity(current.len());
    let mut versions = Vec::with_capacity(current.len());
    for ((record_type, source_id), version) in current {
        types.push(record_type.as_str());
        ids.push(source_id.as_str());
        versions.push(*version);
    }
    let update = tx
        .prepare_cached(
            "UPDATE source_records r SET current_version = k.current_version
             FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k (record_type, source_id, current_version)
             WHERE r.record_type = k.record_type AND r.source_id = k.source_id",
        )
        .await
        .map_err(classify)?;
    let updated = tx
        .execute(&update, &[&types, &ids, &versions])
        .await
        .map_err(classify)?;
    if updated != current.len() as u64 {
        return Err(StoreError::Internal(format!(
            "{} of {} records vanished while locked",
            current.len() as u64 - updated.min(current.len() as u64),
            current.len()
        )));
    }
    Ok(())
}

/// The current versions of records not locked by this batch (only named by rejections),
/// of those held. A key holding NUL is not: PostgreSQL text cannot hold one.
async fn current_versions(tx: &Transaction<'_>, keys: &[RecordKey]) -> Result<HashMap<RecordKey, i64>, StoreError> {
    let (types, ids): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .filter(|(record_type, source_id)| !record_type.contains('\0') && !source_id.contains('\0'))
        .map(|(t, s)| (t.as_str(), s.as_str()))
        .unzip();
    if types.is_empty() {
        return Ok(HashMap::new());
    }
    let select = tx
        .prepare_cached(
            "SELECT r.record_type, r.source_id, r.current_version
             FROM unnest($1::text[], $2::text[]) AS k (record_type, source_id)
             JOIN source_records r ON r.record_type = k.record_type AND r.source_id = k.source_id",
        )
        .await
        .map_err(classify)?;
    tx.query(&select, &[&types, &ids])
        .await
        .map_err(classify)?
        .iter()
        .map(|row| {
            Ok((
                (row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?),
                row.try_get(2).map_err(classify)?,
            ))
        })
        .collect()
}

/// An item of a batch to quarantine: a rejection, or a valid record refused by the
/// version rules.
struct Refused<'a> {
    /// Its index in the batch.
    item: usize,
    envelope: Cow<'a, Envelope>,
    errors: Vec<RecordError>,
}

/// Keeps the refused items of a batch in quarantine, in one statement; returns their
/// entries' ids, in the order of `refused`. The ids are drawn as `unnest` yields the
/// entries, so they ascend in that order too, and the quarantine lists a batch's entries
/// in batch order, as when they were kept one by one.
async fn insert_quarantine(
    tx: &Transaction<'_>,
    receipt: &Receipt,
    identity: &str,
    refused: &[Refused<'_>],
) -> Result<Vec<String>, StoreError> {
    if refused.is_empty() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::with_capacity(refused.len());
    let mut types = Vec::with_capacity(refused.len());
    let mut ids = Vec::with_capacity(refused.len());
    let mut versions = Vec::with_capacity(refused.len());
    let mut deleted = Vec::with_capacity(refused.len());
    let mut payloads = Vec::with_capacity(refused.len());
    let mut errors = Vec::with_capacity(refused.len());
    for (entry, item) in refused.iter().enumerate() {
        entries.push(i64::try_from(entry).map_err(|_| StoreError::Internal("batch too large".to_owned()))?);
        types.push(without_nul(&item.envelope.record_type));
        ids.push(without_nul(&item.envelope.source_id));
        versions.push(item.envelope.source_version);
        deleted.push(item.envelope.deleted);
        payloads.push(item.envelope.payload.as_slice());
        errors.push(errors_to_json(&item.errors)?);
    }
    let types: Vec<&str> = types.iter().map(AsRef::as_ref).collect();
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    // Each entry draws its id once (`entry` is materialised: it calls a volatile function
    // and is read twice), and the ids come back with the entries they went to.
    let statement = tx
        .prepare_cached(
            "WITH entry AS (
                 SELECT nextval('quarantine_id_seq') AS id, e.*
                 FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::boolean[], $8::bytea[],
                             $9::text[])
                      AS e (n, record_type, source_id, source_version, deleted, payload, errors)
             ),
             kept AS (
                 INSERT INTO quarantine
                     (id, received_at, identity, record_type, source_id, source_version, deleted,
                      payload, errors)
                 SELECT id, $1::timestamptz, $2::text, record_type, source_id, source_version, deleted,
                        payload, errors
                 FROM entry
             )
             SELECT n, id FROM entry",
        )
        .await
        .map_err(classify)?;
    let rows = tx
        .query(
            &statement,
            &[
                &receipt.received_at,
                &identity,
                &entries,
                &types,
                &ids,
                &versions,
                &deleted,
                &payloads,
                &errors,
            ],
        )
        .await
        .map_err(classify)?;
    let mut assigned: Vec<Option<String>> = vec![None; refused.len()];
    for row in rows {
        let entry: i64 = row.try_get(0).map_err(classify)?;
        let id: i64 = row.try_get(1).map_err(classify)?;
        let slot = usize::try_from(entry)
            .ok()
            .and_then(|entry| assigned.get_mut(entry))
            .ok_or_else(|| bad_item(entry))?;
        *slot = Some(id.to_string());
    }
    assigned
        .into_iter()
        .map(|id| id.ok_or_else(|| StoreError::Internal("a quarantine entry got no id".to_owned())))
        .collect()
}

/// PostgreSQL text cannot hold U+0000, and a rejected envelope may carry anything; an
/// unstorable rejection must not fail the whole batch, so NUL becomes U+FFFD.
pub(super) fn without_nul(text: &str) -> Cow<'_, str> {
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
