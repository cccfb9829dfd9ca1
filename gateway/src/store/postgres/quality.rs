//! PostgreSQL side of data-quality reports: the flagged current records of a
//! department's record types, their counts, and the backfill of schema version 6.
//!
//! Each mention row keeps its flags (`flags`) and its contradictions with authorities
//! (`contradictions`) as JSON arrays in text, `'[]'` when none; the partial index
//! `mentions_flagged` holds only the flagged rows.
//!
//! Pages are in byte order of `(record_type, source_id)`, whatever the database's
//! collation: the cursor is the last record of a page as `quality::flagged_records`
//! sorts them (bytes), and SQLite compares bytes. Under a linguistic collation (en_US
//! ignores hyphens, puts `a` before `B`) the comparison and the order would disagree
//! with the cursor, and records would be repeated or skipped; hence `COLLATE "C"` on
//! every comparison and order of a page. (Distinct pairs by `GROUP BY`: with
//! `DISTINCT`, the order could only name the selected columns, not their collation.)

use super::{classify, Client, Transaction};
use crate::quality::{self, FlagCounts, FlagFilter, FlaggedRecord, MentionFlags};
use crate::store::{flag_count, flags_from_json, flags_to_json, sql_limit, StoreError};
use crate::unified::{KeptMention, UnifiedRecord};

/// One row per flag of the flagged mentions of the record types `$1`:
/// `(record_type, source_id, code)`.
const FLAGS: &str = "
    SELECT m.record_type, m.source_id, f ->> 'code' AS code
    FROM mentions m CROSS JOIN LATERAL jsonb_array_elements(m.flags::jsonb || m.contradictions::jsonb) AS f
    WHERE m.record_type = ANY($1) AND (m.flags <> '[]' OR m.contradictions <> '[]')";

pub(super) async fn flag_counts(client: &Client, filter: &FlagFilter) -> Result<FlagCounts, StoreError> {
    let code = filter.code.map(|code| code.as_str());
    let statement = client
        .prepare_cached(&format!(
            "SELECT record_type, code, count(DISTINCT source_id) FROM ({FLAGS}) AS flags
             WHERE $2::text IS NULL OR code = $2
             GROUP BY record_type, code ORDER BY record_type COLLATE \"C\", code COLLATE \"C\""
        ))
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&filter.record_types, &code])
        .await
        .map_err(classify)?;
    let counts = rows
        .iter()
        .map(|row| {
            let code: String = row.try_get(1).map_err(classify)?;
            flag_count(
                row.try_get(0).map_err(classify)?,
                &code,
                row.try_get(2).map_err(classify)?,
            )
        })
        .collect::<Result<_, _>>()?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM (
                 SELECT DISTINCT record_type, source_id FROM ({FLAGS}) AS flags WHERE $2::text IS NULL OR code = $2
             ) AS records"
        ))
        .await
        .map_err(classify)?;
    let records: i64 = client
        .query_one(&statement, &[&filter.record_types, &code])
        .await
        .map_err(classify)?
        .try_get(0)
        .map_err(classify)?;
    Ok(FlagCounts {
        counts,
        records: u64::try_from(records).unwrap_or_default(),
    })
}

pub(super) async fn flagged_records(
    client: &Client,
    filter: &FlagFilter,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<FlaggedRecord>, StoreError> {
    let code = filter.code.map(|code| code.as_str());
    let (after_type, after_id) = after.unwrap_or_default();
    let statement = client
        .prepare_cached(
            "WITH page AS (
                 SELECT m.record_type, m.source_id FROM mentions m
                 WHERE m.record_type = ANY($1)
                   AND (m.flags <> '[]' OR m.contradictions <> '[]')
                   AND (m.record_type COLLATE \"C\", m.source_id COLLATE \"C\") > ($3, $4)
                   AND ($2::text IS NULL
                        OR EXISTS (SELECT 1 FROM jsonb_array_elements(m.flags::jsonb || m.contradictions::jsonb) AS f
                                   WHERE f ->> 'code' = $2))
                 GROUP BY m.record_type, m.source_id
                 ORDER BY m.record_type COLLATE \"C\", m.source_id COLLATE \"C\"
                 LIMIT $5
             )
             SELECT m.record_type, m.source_id, m.source_version, m.flags, m.contradictions
             FROM page JOIN mentions m ON m.record_type = page.record_type AND m.source_id = page.source_id
             WHERE m.flags <> '[]' OR m.contradictions <> '[]'
             ORDER BY m.record_type COLLATE \"C\", m.source_id COLLATE \"C\"",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(
            &statement,
            &[&filter.record_types, &code, &after_type, &after_id, &sql_limit(limit)],
        )
        .await
        .map_err(classify)?;
    let rows = rows
        .iter()
        .map(|row| {
            let mut flags = flags_from_json(&row.try_get::<_, String>(3).map_err(classify)?)?;
            flags.extend(flags_from_json(&row.try_get::<_, String>(4).map_err(classify)?)?);
            Ok(MentionFlags {
                record_type: row.try_get(0).map_err(classify)?,
                source_id: row.try_get(1).map_err(classify)?,
                source_version: row.try_get(2).map_err(classify)?,
                flags,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(quality::flagged_records(rows, filter.code))
}

/// Fills in the new columns for the mentions kept before schema version 6: their flags
/// (copied out of the kept mention, parsed here: `mention` may hold text `jsonb`
/// refuses) and, for entities with a value kept by authority, their contradictions.
/// Runs inside the migration's transaction, [`BACKFILL_BATCH`] mentions (or entities)
/// at a time: a hub with millions of flagged mentions never holds them all.
pub(super) async fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    // Keyset paging on the primary key; the updates change no key. Every key sorts after
    // ('', '', '', i32::MIN): no record type is empty, no index negative.
    let mut after: (String, String, String, i32) = (String::new(), String::new(), String::new(), i32::MIN);
    loop {
        let rows = tx
            .query(
                "SELECT record_type, source_id, role, idx, mention FROM mentions
                 WHERE mention LIKE '%\"flags\":[{%' AND (record_type, source_id, role, idx) > ($1, $2, $3, $4)
                 ORDER BY record_type, source_id, role, idx
                 LIMIT $5",
                &[&after.0, &after.1, &after.2, &after.3, &sql_limit(BACKFILL_BATCH)],
            )
            .await
            .map_err(classify)?;
        for row in &rows {
            let text: String = row.try_get(4).map_err(classify)?;
            let kept: KeptMention =
                serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("corrupt kept mention: {e}")))?;
            let flags = flags_to_json(&kept.mention.flags)?;
            after = (
                row.try_get(0).map_err(classify)?,
                row.try_get(1).map_err(classify)?,
                row.try_get(2).map_err(classify)?,
                row.try_get(3).map_err(classify)?,
            );
            tx.execute(
                "UPDATE mentions SET flags = $5 WHERE record_type = $1 AND source_id = $2 AND role = $3 AND idx = $4",
                &[&after.0, &after.1, &after.2, &after.3, &flags],
            )
            .await
            .map_err(classify)?;
        }
        if rows.len() < BACKFILL_BATCH {
            break;
        }
    }

    let mut after_id = String::new();
    loop {
        let entities = tx
            .query(
                "SELECT id FROM entities
                 WHERE redirect_to IS NULL AND record LIKE '%\"rule\":\"authority\"%' AND id > $1
                 ORDER BY id
                 LIMIT $2",
                &[&after_id, &sql_limit(BACKFILL_BATCH)],
            )
            .await
            .map_err(classify)?;
        for entity in &entities {
            after_id = entity.try_get(0).map_err(classify)?;
            backfill_contradictions(tx, &after_id).await?;
        }
        if entities.len() < BACKFILL_BATCH {
            return Ok(());
        }
    }
}

/// How many mentions (or entities) the backfill reads at a time.
const BACKFILL_BATCH: usize = 1_000;

/// The contradictions of the mentions of entity `id`, which keeps a value by authority:
/// one entity's record and mentions in memory at a time.
async fn backfill_contradictions(tx: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
    let text: String = tx
        .query_one("SELECT record FROM entities WHERE id = $1", &[&id])
        .await
        .map_err(classify)?
        .try_get(0)
        .map_err(classify)?;
    let record: UnifiedRecord =
        serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("corrupt unified record: {e}")))?;
    let mentions: Vec<KeptMention> = tx
        .query("SELECT mention FROM mentions WHERE entity_id = $1", &[&id])
        .await
        .map_err(classify)?
        .iter()
        .map(|row| {
            let text: String = row.try_get(0).map_err(classify)?;
            serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("corrupt kept mention: {e}")))
        })
        .collect::<Result<_, _>>()?;
    for (source, flags) in quality::contradictions(&record, &mentions) {
        let idx = i32::try_from(source.index)
            .map_err(|_| StoreError::Internal(format!("mention index {} too large", source.index)))?;
        tx.execute(
            "UPDATE mentions SET contradictions = $5
             WHERE record_type = $1 AND source_id = $2 AND role = $3 AND idx = $4",
            &[
                &source.record_type,
                &source.source_id,
                &source.role,
                &idx,
                &flags_to_json(&flags)?,
            ],
        )
        .await
        .map_err(classify)?;
    }
    Ok(())
}
