//! Autovacuum's work, for a server that has it turned off.
//!
//! The hub rewrites an entity's row each time one of its mentions arrives, and its match
//! profile and blocking keys with it, so its tables pile up dead rows; without VACUUM
//! they bloat, and without ANALYZE the planner keeps the statistics of an empty table.
//! Found at a million people on a server with `autovacuum = off` (as on the machines this
//! runs on): `entities` held 900,000 dead rows beside 500,000 live ones, nothing had ever
//! been analysed, and the ingest had fallen from 870 to 83 records a second. A figure
//! taken so measures the server's configuration, not the hub.
//!
//! So where `autovacuum` is off, the benchmark does its work on the hub's database while
//! the hub runs, by autovacuum's default rules: every [`NAPTIME`], a table is vacuumed
//! when its dead rows pass 50 + 20 % of its rows and analysed when the rows changed since
//! its last analysis pass 50 + 10 %, one table at a time, at autovacuum's default cost
//! limits (`vacuum_cost_delay` 2 ms, `vacuum_cost_limit` 200). The server's own setting
//! is left alone: `ALTER SYSTEM` would outlive an interrupted run on a shared server.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::database::Database;

/// How often the tables are looked at (autovacuum's default naptime is a minute, shared
/// by every database of the server; this database is the only busy one).
const NAPTIME: Duration = Duration::from_secs(10);

/// What the benchmark did in autovacuum's place.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Maintenance {
    pub vacuums: u64,
    pub analyses: u64,
    /// Time spent vacuuming and analysing, seconds.
    pub seconds: f64,
}

/// The task doing it, until [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Maintenance>>,
}

impl Running {
    pub async fn stop(self) -> anyhow::Result<Maintenance> {
        let _ = self.stop.send(());
        self.task.await.context("the maintenance task")?
    }
}

/// Starts autovacuum's work on `database` if the server does not do it itself.
pub async fn start_if_needed(database: &Database) -> anyhow::Result<Option<Running>> {
    let client = database.connect().await?;
    let autovacuum: String = client
        .query_one("SHOW autovacuum", &[])
        .await
        .context("reading the server's autovacuum setting")?
        .get(0);
    if autovacuum == "on" {
        return Ok(None);
    }
    eprintln!(
        "bench: the server's autovacuum is {autovacuum}: the benchmark vacuums and analyses the hub's tables \
         by autovacuum's default rules while the hub runs"
    );
    client
        .batch_execute("SET vacuum_cost_delay = '2ms'; SET vacuum_cost_limit = 200")
        .await
        .context("setting autovacuum's cost limits")?;
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut done = Maintenance::default();
        loop {
            // Stopping cuts a VACUUM short: its result is not waited for (the database
            // is dropped with the hub, which ends the session).
            tokio::select! {
                _ = &mut stopped => break,
                looked = async {
                    tokio::time::sleep(NAPTIME).await;
                    pass(&client, &mut done).await
                } => looked?,
            }
        }
        Ok(done)
    });
    Ok(Some(Running { stop, task }))
}

/// One look at every table of the hub's schema.
async fn pass(client: &Client, done: &mut Maintenance) -> anyhow::Result<()> {
    let rows = client
        .query(
            "SELECT relname::text, n_live_tup, n_dead_tup, n_mod_since_analyze
               FROM pg_stat_user_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .context("reading the tables' statistics")?;
    for row in rows {
        let (table, live, dead, modified): (String, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let sql = match due(live, dead, modified) {
            Some(Work::Vacuum) => {
                done.vacuums += 1;
                format!("VACUUM (ANALYZE) \"{}\"", table.replace('"', "\"\""))
            }
            Some(Work::Analyze) => {
                done.analyses += 1;
                format!("ANALYZE \"{}\"", table.replace('"', "\"\""))
            }
            None => continue,
        };
        let started = Instant::now();
        client.batch_execute(&sql).await.with_context(|| sql.clone())?;
        done.seconds += started.elapsed().as_secs_f64();
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Work {
    /// Vacuum, and analyse on the way (as autovacuum does when both are due).
    Vacuum,
    Analyze,
}

/// Autovacuum's default thresholds: 50 rows + 20 % dead to vacuum, 50 + 10 % changed to
/// analyse.
fn due(live: i64, dead: i64, modified: i64) -> Option<Work> {
    let rows = live.max(0) as f64;
    if dead as f64 > 50.0 + 0.2 * rows {
        Some(Work::Vacuum)
    } else if modified as f64 > 50.0 + 0.1 * rows {
        Some(Work::Analyze)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{due, Work};

    #[test]
    fn autovacuums_default_thresholds() {
        assert_eq!(due(0, 0, 0), None);
        assert_eq!(due(0, 51, 0), Some(Work::Vacuum));
        assert_eq!(due(1000, 250, 0), None);
        assert_eq!(due(1000, 251, 0), Some(Work::Vacuum));
        assert_eq!(due(1000, 0, 150), None);
        assert_eq!(due(1000, 0, 151), Some(Work::Analyze));
        assert_eq!(due(500_000, 900_000, 0), Some(Work::Vacuum));
    }
}
