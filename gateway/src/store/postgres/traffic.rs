//! The SQL of the operational statistics on PostgreSQL (`crate::statistics`).

use super::{classify, Client, Transaction};
use crate::store::{StoreError, TrafficRow};

/// Adds every row to its counter in one statement. The rows are sorted by key first:
/// two replicas adding overlapping counters lock the rows in the same order and never
/// deadlock.
pub(super) async fn add(tx: &Transaction<'_>, rows: &[TrafficRow]) -> Result<(), StoreError> {
    let mut rows: Vec<&TrafficRow> = rows.iter().collect();
    rows.sort_by(|a, b| {
        (a.minute, &a.department, &a.record_type, &a.counter).cmp(&(
            b.minute,
            &b.department,
            &b.record_type,
            &b.counter,
        ))
    });
    let minutes: Vec<i64> = rows.iter().map(|r| r.minute).collect();
    let departments: Vec<&str> = rows.iter().map(|r| r.department.as_str()).collect();
    let record_types: Vec<&str> = rows.iter().map(|r| r.record_type.as_str()).collect();
    let counters: Vec<&str> = rows.iter().map(|r| r.counter.as_str()).collect();
    let counts: Vec<i64> = rows.iter().map(|r| r.n).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO traffic (minute, department, record_type, counter, n)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])
             ON CONFLICT (minute, department, record_type, counter) DO UPDATE SET n = traffic.n + excluded.n",
        )
        .await
        .map_err(classify)?;
    tx.execute(&statement, &[&minutes, &departments, &record_types, &counters, &counts])
        .await
        .map_err(classify)?;
    Ok(())
}

/// The counters of `[since, until)` added up per window of `window` seconds. A window
/// starts at a multiple of `window`, before a minute as well as after it (`%` truncates
/// towards zero; the outer `%` makes it the Euclidean remainder Rust's `rem_euclid` is).
pub(super) async fn select(
    client: &Client,
    since: i64,
    until: i64,
    window: i64,
    department: Option<&str>,
) -> Result<Vec<TrafficRow>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT minute - ((minute % $3) + $3) % $3 AS start, department, record_type, counter,
                    sum(n)::bigint
             FROM traffic
             WHERE minute >= $1 AND minute < $2 AND ($4::text IS NULL OR department = $4)
             GROUP BY start, department, record_type, counter",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&since, &until, &window, &department])
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            Ok(TrafficRow {
                minute: row.try_get(0).map_err(classify)?,
                department: row.try_get(1).map_err(classify)?,
                record_type: row.try_get(2).map_err(classify)?,
                counter: row.try_get(3).map_err(classify)?,
                n: row.try_get(4).map_err(classify)?,
            })
        })
        .collect()
}
