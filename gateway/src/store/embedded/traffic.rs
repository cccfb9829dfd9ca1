//! The SQL of the operational statistics on SQLite (`crate::statistics`).

use rusqlite::{params, Connection, TransactionBehavior};

use super::classify;
use crate::store::{StoreError, TrafficRow};

/// Adds every row to its counter, in one transaction.
pub(super) fn add(connection: &mut Connection, rows: &[TrafficRow]) -> Result<(), StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(classify)?;
    {
        let mut statement = tx
            .prepare_cached(
                "INSERT INTO traffic (minute, department, record_type, counter, n) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (minute, department, record_type, counter) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(classify)?;
        for row in rows {
            statement
                .execute(params![row.minute, row.department, row.record_type, row.counter, row.n])
                .map_err(classify)?;
        }
    }
    tx.commit().map_err(classify)
}

/// The counters of `[since, until)` added up per window of `window` seconds (see the
/// PostgreSQL side for the window's start).
pub(super) fn select(
    connection: &Connection,
    since: i64,
    until: i64,
    window: i64,
    department: Option<&str>,
) -> Result<Vec<TrafficRow>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT minute - ((minute % ?3) + ?3) % ?3 AS start, department, record_type, counter, sum(n)
             FROM traffic
             WHERE minute >= ?1 AND minute < ?2 AND (?4 IS NULL OR department = ?4)
             GROUP BY start, department, record_type, counter",
        )
        .map_err(classify)?;
    let rows = statement
        .query_map(params![since, until, window, department], |row| {
            Ok(TrafficRow {
                minute: row.get(0)?,
                department: row.get(1)?,
                record_type: row.get(2)?,
                counter: row.get(3)?,
                n: row.get(4)?,
            })
        })
        .map_err(classify)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(classify)
}
