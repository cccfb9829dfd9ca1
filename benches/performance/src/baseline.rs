//! What PostgreSQL alone does with the same data, measured in the same run:
//! - ingest: `COPY … FROM STDIN` of the department files' rows (record_type,
//!   source_id, source_version, payload) into a table keyed like the hub's records,
//!   one connection, timed from the first line read to the commit;
//! - feed: `COPY (SELECT …) TO STDOUT` of the feed's rows, in feed order;
//! - latency: a durable single-row INSERT (autocommit) per record, at the rate the hub
//!   was measured at, from a pool as large as the hub's on PostgreSQL;
//! - lookup: primary-key SELECTs from many connections at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{pin_mut, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tongban_proto::v1 as pb;

use crate::city::CityFiles;
use crate::database::{connect, Database};
use crate::load::{self, Step, Summary};

/// The single-record baseline's statement.
const INSERT: &str = "INSERT INTO single_records (record_type, source_id, source_version, payload) \
                      VALUES ($1, $2, $3, $4)";

/// The baseline's table of source records: the hub's key of a current record.
const SOURCE_TABLE: &str = "CREATE TABLE source_records (
    record_type    text   NOT NULL,
    source_id      text   NOT NULL,
    source_version bigint NOT NULL,
    payload        text   NOT NULL,
    PRIMARY KEY (record_type, source_id))";

#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rate: f64,
}

impl Copied {
    /// `rows` and `bytes` copied in the time since `started`.
    fn since(started: Instant, rows: u64, bytes: u64) -> Copied {
        let seconds = started.elapsed().as_secs_f64();
        Copied {
            rows,
            bytes,
            seconds,
            rate: rows as f64 / seconds.max(1e-9),
        }
    }
}

/// One line of a department file; the payload kept as its text.
#[derive(Deserialize)]
struct Line<'a> {
    record_type: String,
    source_id: String,
    source_version: i64,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// COPY of every line of the city's files into a fresh `source_records`, timed from
/// the first line read to the commit.
pub async fn copy_in(database: &Database, city: &CityFiles) -> anyhow::Result<Copied> {
    let mut client = database.connect().await?;
    client
        .batch_execute(SOURCE_TABLE)
        .await
        .context("creating source_records")?;
    let started = Instant::now();
    let transaction = client.transaction().await?;
    let sink = transaction
        .copy_in("COPY source_records (record_type, source_id, source_version, payload) FROM STDIN BINARY")
        .await
        .context("starting COPY")?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT]);
    pin_mut!(writer);
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut raw = Vec::new();
    for (_, path) in &city.files {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            bytes += raw.len() as u64;
            let line: Line = serde_json::from_slice(&raw)
                .with_context(|| format!("{}: line {} is not an envelope", path.display(), rows + 1))?;
            writer
                .as_mut()
                .write(&[
                    &line.record_type,
                    &line.source_id,
                    &line.source_version,
                    &line.payload.get(),
                ])
                .await
                .context("COPY")?;
            rows += 1;
        }
    }
    writer.finish().await.context("finishing COPY")?;
    transaction.commit().await.context("committing COPY")?;
    Ok(Copied::since(started, rows, bytes))
}

/// COPY of the rows of `select` to the client, counted (text format: one line a row).
pub async fn copy_out(client: &tokio_postgres::Client, select: &str) -> anyhow::Result<Copied> {
    let started = Instant::now();
    let stream = client
        .copy_out(&format!("COPY ({select}) TO STDOUT"))
        .await
        .context("starting COPY TO")?;
    pin_mut!(stream);
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("COPY TO")?;
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(Copied::since(started, rows, bytes))
}

/// The first `changes` rows of the feed, in feed order: as many as the feed delivered
/// (its cursors are opaque, so not compared with positions); the same select on the
/// hub's `changes` table and on the copy of the embedded store's.
pub fn feed_select(table: &str, changes: u64) -> String {
    format!("SELECT position, entity_id, kind, version, record FROM {table} ORDER BY position LIMIT {changes}")
}

/// Rows of `table`, counted untimed: what the feed should have delivered.
pub async fn count_rows(client: &tokio_postgres::Client, table: &str) -> anyhow::Result<u64> {
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .with_context(|| format!("counting {table}"))?
        .get(0);
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Loads the embedded store's feed rows into `changes` of `database` and returns how
/// many (not timed: this only puts the same rows where COPY can read them).
pub async fn load_embedded_feed(sqlite: &Path, database: &Database) -> anyhow::Result<u64> {
    let client = database.connect().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS changes;
             CREATE TABLE changes (position bigint PRIMARY KEY, entity_id text NOT NULL,
                                   kind text NOT NULL, version bigint NOT NULL, record text NOT NULL)",
        )
        .await
        .context("creating the feed baseline's table")?;
    type Row = (i64, String, String, i64, String);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(4);
    let path = sqlite.to_owned();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let db = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut statement =
            db.prepare("SELECT position, entity_id, kind, version, record FROM changes ORDER BY position")?;
        let mut rows = statement.query([])?;
        let mut batch = Vec::with_capacity(1000);
        while let Some(row) = rows.next()? {
            batch.push((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?));
            if batch.len() == 1000 && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Ok(()); // the loader stopped; its error is reported
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok(())
    });
    let sink = client
        .copy_in("COPY changes (position, entity_id, kind, version, record) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT]);
    pin_mut!(writer);
    let mut loaded = 0u64;
    while let Some(batch) = rx.recv().await {
        for (position, entity, kind, version, record) in &batch {
            writer
                .as_mut()
                .write(&[position, entity, kind, version, record])
                .await?;
            loaded += 1;
        }
    }
    writer
        .finish()
        .await
        .context("loading the embedded store's feed rows")?;
    reader.await.context("the SQLite reader")??;
    Ok(loaded)
}

/// Drops a baseline table once it is measured (a million people's feed takes gigabytes).
pub async fn drop_table(database: &Database, table: &str) -> anyhow::Result<()> {
    database
        .connect()
        .await?
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .with_context(|| format!("dropping {table}"))
}

/// Primary-key SELECTs of random source records from `callers` connections for
/// `duration`, one connection each.
pub async fn lookup(database: &Database, callers: usize, duration: Duration) -> anyhow::Result<Summary> {
    let admin = database.connect().await?;
    // The keys asked for, drawn before timing.
    let keys: Vec<(String, String)> = admin
        .query(
            "SELECT record_type, source_id FROM source_records ORDER BY random() LIMIT 20000",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    anyhow::ensure!(!keys.is_empty(), "source_records is empty");
    let mut clients = Vec::with_capacity(callers);
    for _ in 0..callers {
        let client = connect(&database.url)
            .await
            .context("opening the lookup baseline's connections (max_connections too low?)")?;
        let statement = client
            .prepare("SELECT payload FROM source_records WHERE record_type = $1 AND source_id = $2")
            .await?;
        clients.push((client, statement));
    }
    let clients = Arc::new(clients);
    let keys = Arc::new(keys);
    Ok(load::closed_loop(callers, duration, move |caller| {
        let (clients, keys) = (clients.clone(), keys.clone());
        async move {
            let Some((client, statement)) = clients.get(caller) else {
                return Step::Failed("no connection".into());
            };
            let Some((record_type, source_id)) = keys.get(fastrand::usize(..keys.len())) else {
                return Step::Failed("no key".into());
            };
            match client.query_opt(statement, &[record_type, source_id]).await {
                Ok(Some(_)) => Step::Done,
                Ok(None) => Step::Failed("a key was not found".into()),
                Err(e) => Step::Failed(e.to_string()),
            }
        }
    })
    .await)
}

/// A durable single-row INSERT per record (autocommit, `synchronous_commit` as the
/// server has it) at `rate` a second for `duration`, from `pool_size` connections: the
/// hub's pool on PostgreSQL. The same pool serves as the embedded store's baseline,
/// which does all its work on one SQLite connection: there the baseline is what a
/// durable write on this machine costs at that rate, not a model of the store.
pub async fn insert_latency(
    database: &Database,
    records: Arc<Vec<(tongban_adapters::Department, pb::Envelope)>>,
    pool_size: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Summary> {
    let client = database.connect().await?;
    client
        .batch_execute(&SOURCE_TABLE.replace("source_records", "single_records"))
        .await
        .context("creating single_records")?;
    let config: tokio_postgres::Config = database.url.parse().context("the database URL")?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(pool_size)
        .build()
        .context("the baseline's connection pool")?;
    // Every connection opened and the statement prepared on each before the clock
    // starts (all held at once, so that they are distinct): the latencies are of
    // INSERTs, not of connecting, as the hub's are (its max-rate phase, just before its
    // open loop, kept every pooled connection busy).
    let warm = futures_util::future::try_join_all((0..pool_size).map(|_| async {
        let client = pool.get().await.context("opening the baseline's pooled connections")?;
        client.prepare_cached(INSERT).await.context("preparing the INSERT")?;
        anyhow::Ok(client)
    }))
    .await?;
    drop(warm);
    let summary = load::open_loop(rate, duration, records.len() as u64, |n| {
        let (pool, records) = (pool.clone(), records.clone());
        async move {
            let Some((_, envelope)) = usize::try_from(n).ok().and_then(|n| records.get(n)) else {
                return Step::Exhausted;
            };
            let client = match pool.get().await {
                Ok(client) => client,
                Err(e) => return Step::Failed(e.to_string()),
            };
            // Prepared while warming: found in the connection's cache, no round trip.
            let statement = match client.prepare_cached(INSERT).await {
                Ok(statement) => statement,
                Err(e) => return Step::Failed(e.to_string()),
            };
            let payload = String::from_utf8_lossy(&envelope.payload);
            let inserted = client
                .execute(
                    &statement,
                    &[
                        &envelope.record_type,
                        &envelope.source_id,
                        &envelope.source_version,
                        &payload.as_ref(),
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Step::Done,
                Err(e) => Step::Failed(e.to_string()),
            }
        }
    })
    .await;
    drop(pool);
    client.batch_execute("DROP TABLE single_records").await?;
    Ok(summary)
}
