//! SQLite side of data-quality reports: the flagged current records of a department's
//! record types, their counts, and the backfill of schema version 6.
//!
//! Each mention row keeps its flags (`flags`) and its contradictions with authorities
//! (`contradictions`) as JSON arrays, `'[]'` when none; the partial index
//! `mentions_flagged` holds only the flagged rows. Record types are bound as one JSON
//! array (`json_each`), SQLite having no array parameters. Text compares and sorts with
//! SQLite's `BINARY` collation, byte order, as the page cursor does.

use rusqlite::{params, Connection, OptionalExtension};

use super::classify;
use crate::quality::{self, FlagCounts, FlagFilter, FlaggedRecord, MentionFlags};
use crate::store::{flag_count, flags_from_json, flags_to_json, sql_limit, StoreError};
use crate::unified::{KeptMention, UnifiedRecord};

/// One row per flag of the flagged mentions of the record types `?1`:
/// `(record_type, source_id, code)`.
const FLAGS: &str = "
    SELECT m.record_type, m.source_id, json_extract(f.value, '$.code') AS code
    FROM mentions m, json_each(m.flags) f
    WHERE m.record_type IN (SELECT value FROM json_each(?1)) AND (m.flags <> '[]' OR m.contradictions <> '[]')
    UNION ALL
    SELECT m.record_type, m.source_id, json_extract(f.value, '$.code')
    FROM mentions m, json_each(m.contradictions) f
    WHERE m.record_type IN (SELECT value FROM json_each(?1)) AND (m.flags <> '[]' OR m.contradictions <> '[]')";

fn record_types(filter: &FlagFilter) -> Result<String, StoreError> {
    serde_json::to_string(&filter.record_types)
        .map_err(|e| StoreError::Internal(format!("cannot encode record types: {e}")))
}

pub(super) fn flag_counts(connection: &Connection, filter: &FlagFilter) -> Result<FlagCounts, StoreError> {
    let types = record_types(filter)?;
    let code = filter.code.map(|code| code.as_str());
    let rows: Vec<(String, String, i64)> = connection
        .prepare_cached(&format!(
            "SELECT record_type, code, count(DISTINCT source_id) FROM ({FLAGS})
             WHERE ?2 IS NULL OR code = ?2
             GROUP BY record_type, code ORDER BY record_type, code"
        ))
        .and_then(|mut s| {
            s.query_map(params![types, code], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        })
        .map_err(classify)?;
    let records: i64 = connection
        .prepare_cached(&format!(
            "SELECT count(*) FROM (
                 SELECT DISTINCT record_type, source_id FROM ({FLAGS}) WHERE ?2 IS NULL OR code = ?2
             )"
        ))
        .and_then(|mut s| s.query_row(params![types, code], |row| row.get(0)))
        .map_err(classify)?;
    Ok(FlagCounts {
        counts: rows
            .into_iter()
            .map(|(record_type, code, records)| flag_count(record_type, &code, records))
            .collect::<Result<_, _>>()?,
        records: u64::try_from(records).unwrap_or_default(),
    })
}

pub(super) fn flagged_records(
    connection: &Connection,
    filter: &FlagFilter,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<FlaggedRecord>, StoreError> {
    let types = record_types(filter)?;
    let code = filter.code.map(|code| code.as_str());
    let (after_type, after_id) = after.unwrap_or_default();
    let rows: Vec<(String, String, i64, String, String)> = connection
        .prepare_cached(
            "WITH page AS (
                 SELECT DISTINCT m.record_type, m.source_id FROM mentions m
                 WHERE m.record_type IN (SELECT value FROM json_each(?1))
                   AND (m.flags <> '[]' OR m.contradictions <> '[]')
                   AND (m.record_type, m.source_id) > (?3, ?4)
                   AND (?2 IS NULL
                        OR EXISTS (SELECT 1 FROM json_each(m.flags) f WHERE json_extract(f.value, '$.code') = ?2)
                        OR EXISTS (SELECT 1 FROM json_each(m.contradictions) f
                                   WHERE json_extract(f.value, '$.code') = ?2))
                 ORDER BY m.record_type, m.source_id
                 LIMIT ?5
             )
             SELECT m.record_type, m.source_id, m.source_version, m.flags, m.contradictions
             FROM page JOIN mentions m ON m.record_type = page.record_type AND m.source_id = page.source_id
             WHERE m.flags <> '[]' OR m.contradictions <> '[]'
             ORDER BY m.record_type, m.source_id",
        )
        .and_then(|mut s| {
            s.query_map(params![types, code, after_type, after_id, sql_limit(limit)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })?
            .collect()
        })
        .map_err(classify)?;
    let rows = rows
        .into_iter()
        .map(|(record_type, source_id, source_version, flags, contradictions)| {
            let mut flags = flags_from_json(&flags)?;
            flags.extend(flags_from_json(&contradictions)?);
            Ok(MentionFlags {
                record_type,
                source_id,
                source_version,
                flags,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(quality::flagged_records(rows, filter.code))
}

/// Fills in the new columns for the mentions kept before schema version 6: their flags
/// (copied out of the kept mention) and, for entities with a value kept by authority,
/// their contradictions. Runs inside the migration's transaction, [`BACKFILL_BATCH`]
/// mentions (or entities) at a time: a hub with millions of flagged mentions never holds
/// them all.
pub(super) fn backfill(connection: &Connection) -> Result<(), StoreError> {
    // Keyset paging on the primary key; the updates change no key. Every key sorts after
    // ('', '', '', i64::MIN): no record type is empty, no index negative.
    let mut after: (String, String, String, i64) = (String::new(), String::new(), String::new(), i64::MIN);
    loop {
        let flagged: Vec<(String, String, String, i64, String)> = connection
            .prepare(
                "SELECT record_type, source_id, role, idx, mention FROM mentions
                 WHERE mention LIKE '%\"flags\":[{%' AND (record_type, source_id, role, idx) > (?1, ?2, ?3, ?4)
                 ORDER BY record_type, source_id, role, idx
                 LIMIT ?5",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![after.0, after.1, after.2, after.3, sql_limit(BACKFILL_BATCH)],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
                )?
                .collect()
            })
            .map_err(classify)?;
        let full = flagged.len() == BACKFILL_BATCH;
        for (record_type, source_id, role, idx, text) in flagged {
            let kept: KeptMention =
                serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("corrupt kept mention: {e}")))?;
            connection
                .execute(
                    "UPDATE mentions SET flags = ?5 WHERE record_type = ?1 AND source_id = ?2 AND role = ?3 AND idx = ?4",
                    params![record_type, source_id, role, idx, flags_to_json(&kept.mention.flags)?],
                )
                .map_err(classify)?;
            after = (record_type, source_id, role, idx);
        }
        if !full {
            break;
        }
    }

    let mut after_id = String::new();
    loop {
        let entities: Vec<String> = connection
            .prepare(
                "SELECT id FROM entities
                 WHERE redirect_to IS NULL AND record LIKE '%\"rule\":\"authority\"%' AND id > ?1
                 ORDER BY id
                 LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after_id, sql_limit(BACKFILL_BATCH)], |row| row.get(0))?
                    .collect()
            })
            .map_err(classify)?;
        let full = entities.len() == BACKFILL_BATCH;
        for id in entities {
            backfill_contradictions(connection, &id)?;
            after_id = id;
        }
        if !full {
            return Ok(());
        }
    }
}

/// How many mentions (or entities) the backfill reads at a time.
const BACKFILL_BATCH: usize = 1_000;

/// The contradictions of the mentions of entity `id`, which keeps a value by authority:
/// one entity's record and mentions in memory at a time.
fn backfill_contradictions(connection: &Connection, id: &str) -> Result<(), StoreError> {
    let Some(text) = connection
        .query_row("SELECT record FROM entities WHERE id = ?1", [id], |row| {
            row.get::<_, String>(0)
        })
        .optional()
        .map_err(classify)?
    else {
        return Ok(());
    };
    let record: UnifiedRecord =
        serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("corrupt unified record: {e}")))?;
    let mentions: Vec<KeptMention> = connection
        .prepare("SELECT mention FROM mentions WHERE entity_id = ?1")
        .and_then(|mut s| {
            s.query_map([id], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(classify)?
        .iter()
        .map(|text| serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupt kept mention: {e}"))))
        .collect::<Result<_, _>>()?;
    for (source, flags) in quality::contradictions(&record, &mentions) {
        connection
            .execute(
                "UPDATE mentions SET contradictions = ?5
                 WHERE record_type = ?1 AND source_id = ?2 AND role = ?3 AND idx = ?4",
                params![
                    source.record_type,
                    source.source_id,
                    source.role,
                    source.index,
                    flags_to_json(&flags)?
                ],
            )
            .map_err(classify)?;
    }
    Ok(())
}
