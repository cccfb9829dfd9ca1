//! The store's floor: how fast PostgreSQL alone takes the rows the hub wrote for the
//! city. The hub keeps far more than the source payloads (versions, mentions, keys,
//! blocking keys, match profiles, unified records, the feed), so COPY of the payloads
//! says little about how fast any hub keeping that state could go; this does.
//!
//! After the ingest, with the hub idle, every table of its database is copied out in
//! COPY's binary format into files, from one snapshot ([`dump`], untimed). Once the hub
//! has stopped (so that writing the copy disturbs none of its figures), a fresh database
//! gets the hub's schema from the gateway's own migrations, emptied, and the rows are
//! copied in ([`load`]), timed from
//! the first byte sent to the last commit: tables joined by foreign keys in their order
//! in one transaction, groups of tables joined by none side by side, on as many
//! connections as the machine has cores, so the floor is what the server can do, not
//! what one connection does.
//!
//! The hub does more than this (an entity is rewritten as each of its mentions arrives,
//! each version of it is a change, resolution reads before it writes), so the floor is
//! a bound no hub keeping this state can pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures_util::{pin_mut, SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{IsolationLevel, Transaction};
use tongban_gateway::store::postgres::{PostgresSettings, PostgresStore};

use crate::database::{Database, Server};

/// The floor of one store run.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// Every table, in the order it was loaded on its connection.
    pub tables: Vec<TableCopy>,
    /// Connections loading side by side.
    pub connections: usize,
    pub rows: u64,
    /// COPY's binary format, as sent.
    pub bytes: u64,
    pub seconds: f64,
    /// The city's source records over `seconds`: comparable with the ingest's rate.
    pub records_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// From the start of the load to this table's last row (its connection's clock; the
    /// deferred foreign keys are checked later, at the lane's commit).
    pub seconds: f64,
}

/// A table of the hub's schema and the columns COPY writes (generated ones cannot be).
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
}

impl Table {
    fn copy_target(&self) -> String {
        let columns: Vec<String> = self.columns.iter().map(|c| quoted(c)).collect();
        format!("{} ({})", quoted(&self.name), columns.join(", "))
    }
}

/// The hub's rows after the ingest, in files: what [`load`] copies in.
pub struct Dumped {
    tables: Vec<Table>,
    references: Vec<Reference>,
    /// Bytes of each table's file.
    sizes: HashMap<String, u64>,
    dir: std::path::PathBuf,
}

impl Drop for Dumped {
    fn drop(&mut self) {
        // Gigabytes at a million people; a file left by an error goes with the folder.
        for table in &self.tables {
            let _ = std::fs::remove_file(file_of(&self.dir, table));
        }
    }
}

/// Copies every table of `hub` (a hub's database, idle) out into files under `dir`, from
/// one snapshot.
pub async fn dump(hub: &Database, dir: &Path) -> anyhow::Result<Dumped> {
    let mut source = hub.connect().await?;
    let snapshot = source
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .context("a snapshot of the hub's database")?;
    let tables = tables(&snapshot).await?;
    let references = references(&snapshot).await?;
    let mut dumped = Dumped {
        tables: Vec::new(),
        references,
        sizes: HashMap::new(),
        dir: dir.to_owned(),
    };
    for table in tables {
        let bytes = copy_out(&snapshot, &table, &file_of(dir, &table)).await?;
        dumped.sizes.insert(table.name.clone(), bytes);
        dumped.tables.push(table);
    }
    snapshot.commit().await?;
    Ok(dumped)
}

/// Copies the dumped rows into a fresh database with the hub's schema, timed; `records`
/// is the city's source records.
pub async fn load(server: &Server, dumped: &Dumped, records: u64) -> anyhow::Result<Floor> {
    let floor = server.create("tongban_bench_floor").await?;
    migrate(&floor).await?;
    let names: Vec<String> = dumped.tables.iter().map(|t| quoted(&t.name)).collect();
    floor
        .connect()
        .await?
        .batch_execute(&format!("TRUNCATE {}", names.join(", ")))
        .await
        .context("emptying the floor's tables")?;

    let connections = std::thread::available_parallelism().map_or(1, usize::from);
    let sized: Vec<(String, u64)> = dumped
        .tables
        .iter()
        .map(|t| (t.name.clone(), dumped.sizes.get(&t.name).copied().unwrap_or_default()))
        .collect();
    let lanes = load_order(&sized, &dumped.references, connections)?;
    let by_name: HashMap<&str, &Table> = dumped.tables.iter().map(|t| (t.name.as_str(), t)).collect();
    let started = Instant::now();
    let loads = lanes.iter().map(|lane| {
        let lane: Vec<&Table> = lane
            .iter()
            .filter_map(|name| by_name.get(name.as_str()).copied())
            .collect();
        load_lane(&floor, lane, &dumped.dir, started)
    });
    let loaded = futures_util::future::try_join_all(loads).await?;
    let seconds = started.elapsed().as_secs_f64();
    floor.drop_now().await?;

    let tables: Vec<TableCopy> = loaded
        .into_iter()
        .flatten()
        .map(|(name, rows, at)| TableCopy {
            bytes: dumped.sizes.get(&name).copied().unwrap_or_default(),
            table: name,
            rows,
            seconds: at.as_secs_f64(),
        })
        .collect();
    Ok(Floor {
        connections: lanes.len(),
        rows: tables.iter().map(|t| t.rows).sum(),
        bytes: tables.iter().map(|t| t.bytes).sum(),
        seconds,
        records_rate: records as f64 / seconds.max(1e-9),
        tables,
    })
}

fn file_of(dir: &Path, table: &Table) -> std::path::PathBuf {
    dir.join(format!("floor-{}.copy", table.name))
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The ordinary tables of the public schema and their writable columns.
async fn tables(client: &Transaction<'_>) -> anyhow::Result<Vec<Table>> {
    let rows = client
        .query(
            "SELECT c.relname::text,
                    array_agg(a.attname::text ORDER BY a.attnum)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE n.nspname = 'public' AND c.relkind = 'r'
                AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              GROUP BY c.relname
              ORDER BY c.relname",
            &[],
        )
        .await
        .context("listing the hub's tables")?;
    let tables: Vec<Table> = rows
        .iter()
        .map(|row| Table {
            name: row.get(0),
            columns: row.get(1),
        })
        .collect();
    if tables.is_empty() {
        bail!("the hub's database has no tables");
    }
    Ok(tables)
}

/// Every foreign key of the public schema.
async fn references(client: &Transaction<'_>) -> anyhow::Result<Vec<Reference>> {
    let rows = client
        .query(
            "SELECT child.relname::text, parent.relname::text, k.condeferred
               FROM pg_constraint k
               JOIN pg_class child ON child.oid = k.conrelid
               JOIN pg_class parent ON parent.oid = k.confrelid
              WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .context("listing the hub's foreign keys")?;
    Ok(rows
        .iter()
        .map(|row| Reference {
            table: row.get(0),
            referenced: row.get(1),
            deferred: row.get(2),
        })
        .collect())
}

/// COPY TO of a table into a file; returns its bytes.
async fn copy_out(client: &Transaction<'_>, table: &Table, path: &Path) -> anyhow::Result<u64> {
    let stream = client
        .copy_out(&format!("COPY {} TO STDOUT (FORMAT binary)", table.copy_target()))
        .await
        .with_context(|| format!("copying {} out", table.name))?;
    pin_mut!(stream);
    let file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("copying {} out", table.name))?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(bytes)
}

/// The hub's schema, from the gateway's own migrations.
async fn migrate(database: &Database) -> anyhow::Result<()> {
    let settings = PostgresSettings {
        url: database.url.clone(),
        pool_size: 1,
        connect_timeout: Duration::from_secs(10),
        wait_timeout: Duration::from_secs(10),
        statement_timeout: Duration::ZERO,
    };
    let store = PostgresStore::connect(&settings)
        .await
        .with_context(|| format!("migrating {}", database.name))?;
    store.close();
    Ok(())
}

/// Loads a lane's tables in order in one transaction on a connection of its own;
/// returns each table's rows and when it was done.
async fn load_lane(
    database: &Database,
    lane: Vec<&Table>,
    dir: &Path,
    started: Instant,
) -> anyhow::Result<Vec<(String, u64, Duration)>> {
    let mut client = database.connect().await?;
    let transaction = client.transaction().await?;
    let mut done = Vec::with_capacity(lane.len());
    for table in lane {
        let sink = transaction
            .copy_in::<_, Bytes>(&format!("COPY {} FROM STDIN (FORMAT binary)", table.copy_target()))
            .await
            .with_context(|| format!("copying {} in", table.name))?;
        pin_mut!(sink);
        let path = file_of(dir, table);
        let mut file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            sink.send(Bytes::copy_from_slice(&buffer[..n]))
                .await
                .with_context(|| format!("copying {} in", table.name))?;
        }
        let rows = sink
            .as_mut()
            .finish()
            .await
            .with_context(|| format!("copying {} in", table.name))?;
        done.push((table.name.clone(), rows, started.elapsed()));
    }
    transaction.commit().await.context("committing the floor's rows")?;
    Ok(done)
}

/// A foreign key: `table` references `referenced`.
#[derive(Debug, Clone)]
struct Reference {
    table: String,
    referenced: String,
    /// Checked at commit: the two tables must share a transaction, in either order.
    deferred: bool,
}

/// Tables (name, bytes) into at most `lanes` lanes: the tables joined by foreign keys
/// share a lane, referenced before referencing (unless the key is deferred); the groups
/// go to the lightest lane, heaviest first.
fn load_order(tables: &[(String, u64)], references: &[Reference], lanes: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let names: BTreeSet<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
    let bytes: HashMap<&str, u64> = tables.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    // What each table references, among the tables copied (itself aside: COPY checks a
    // table's references to its own rows at the end of the statement).
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = names.iter().map(|&n| (n, BTreeSet::new())).collect();
    let mut joined: Vec<(&str, &str)> = Vec::new();
    for reference in references {
        let (Some(&child), Some(&parent)) = (
            names.get(reference.table.as_str()),
            names.get(reference.referenced.as_str()),
        ) else {
            continue;
        };
        joined.push((child, parent));
        if child != parent && !reference.deferred {
            parents.entry(child).or_default().insert(parent);
        }
    }
    // Groups: tables joined by references either way (union–find over names).
    let mut group: BTreeMap<&str, &str> = names.iter().map(|&n| (n, n)).collect();
    fn root<'a>(group: &BTreeMap<&'a str, &'a str>, mut n: &'a str) -> &'a str {
        while group[n] != n {
            n = group[n];
        }
        n
    }
    for (child, parent) in joined {
        let (a, b) = (root(&group, child), root(&group, parent));
        if a != b {
            group.insert(a.max(b), a.min(b));
        }
    }
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &n in &names {
        groups.entry(root(&group, n)).or_default().push(n);
    }
    // Each group in an order where a table comes after those it references.
    let mut ordered: Vec<(u64, Vec<String>)> = Vec::new();
    for members in groups.values() {
        let mut placed: Vec<&str> = Vec::new();
        let mut left: Vec<&str> = members.clone();
        while !left.is_empty() {
            let ready: Vec<&str> = left
                .iter()
                .copied()
                .filter(|n| parents[n].iter().all(|p| placed.contains(p)))
                .collect();
            if ready.is_empty() {
                bail!("the foreign keys between {left:?} form a cycle: no order loads them");
            }
            left.retain(|n| !ready.contains(n));
            placed.extend(ready);
        }
        let weight = placed.iter().map(|n| bytes[n]).sum();
        ordered.push((weight, placed.into_iter().map(str::to_owned).collect()));
    }
    ordered.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); lanes.clamp(1, ordered.len().max(1))];
    for (weight, members) in ordered {
        if let Some(lightest) = out.iter_mut().min_by_key(|(w, _)| *w) {
            lightest.0 += weight;
            lightest.1.extend(members);
        }
    }
    Ok(out
        .into_iter()
        .map(|(_, lane)| lane)
        .filter(|l| !l.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{load_order, Reference};

    fn sized(tables: &[(&str, u64)]) -> Vec<(String, u64)> {
        tables.iter().map(|(n, b)| (n.to_string(), *b)).collect()
    }

    fn refs(pairs: &[(&str, &str)]) -> Vec<Reference> {
        pairs
            .iter()
            .map(|(c, p)| Reference {
                table: c.to_string(),
                referenced: p.to_string(),
                deferred: false,
            })
            .collect()
    }

    #[test]
    fn referenced_tables_load_first_on_the_same_lane() {
        let tables = sized(&[
            ("mentions", 50),
            ("entities", 40),
            ("blocks", 30),
            ("versions", 60),
            ("records", 10),
            ("audit", 5),
        ]);
        let references = refs(&[
            ("mentions", "entities"),
            ("blocks", "entities"),
            ("entities", "entities"),
            ("versions", "records"),
            ("mentions", "gone"),
        ]);
        let lanes = load_order(&tables, &references, 2).expect("an order");
        assert_eq!(lanes.len(), 2);
        let entities = lanes
            .iter()
            .find(|l| l.contains(&"entities".to_owned()))
            .expect("entities");
        let at = |n: &str| entities.iter().position(|t| t == n).expect(n);
        assert!(at("entities") < at("mentions") && at("entities") < at("blocks"));
        let records = lanes
            .iter()
            .find(|l| l.contains(&"records".to_owned()))
            .expect("records");
        assert!(!records.contains(&"entities".to_owned()));
        let at = |n: &str| records.iter().position(|t| t == n).expect(n);
        assert!(at("records") < at("versions"));
        // 120 bytes of entities against 70 of records: audit joins the lighter lane.
        assert!(records.contains(&"audit".to_owned()));
        assert_eq!(lanes.iter().map(Vec::len).sum::<usize>(), 6, "every table once");
    }

    #[test]
    fn one_lane_takes_everything_and_a_cycle_is_refused() {
        let tables = sized(&[("a", 1), ("b", 1), ("c", 1)]);
        let lanes = load_order(&tables, &refs(&[("b", "a")]), 1).expect("an order");
        assert_eq!(lanes.len(), 1);
        assert_eq!(lanes[0].len(), 3);
        assert!(load_order(&tables, &refs(&[("b", "a"), ("a", "b")]), 2).is_err());
        // A deferred key is checked at commit: it joins the tables, in any order.
        let mut deferred = refs(&[("b", "a"), ("a", "b"), ("c", "b")]);
        deferred[1].deferred = true;
        let lanes = load_order(&tables, &deferred, 2).expect("an order");
        assert_eq!(lanes, vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
        let more_lanes_than_groups = load_order(&tables, &[], 8).expect("an order");
        assert_eq!(more_lanes_than_groups.len(), 3);
    }
}
