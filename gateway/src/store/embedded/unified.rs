//! SQLite side of unified records: the resolution operations inside a batch's
//! transaction, and the reads of the feed and of entities.
//!
//! SQLite has one writer at a time (`BEGIN IMMEDIATE`), so the locks the PostgreSQL
//! store takes are no-ops here, and feed positions are in commit order by construction.
//! The operations are synchronous; [`UnifyTx`]'s futures complete at their first poll.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use tongban_adapters::model::{EntityKind, QualityFlag};

use super::{classify, from_unix_millis, unix_millis};
use crate::audit::{self, ChainedEntry};
use crate::resolve::matching::Profile;
use crate::resolve::{Key, Placement, Previous};
use crate::stewardship::{Explanation, ReviewPair};
use crate::store::unify::{EntityRow, ProfileRow, Published, QueuedReview, ReviewRow, UnifyTx};
use crate::store::{flags_from_json, flags_to_json, placement_from, placement_to, sql_limit, AuditEntry, StoreError};
use crate::unified::{entity_id, Change, EntityId, KeptMention, MentionRef, UnifiedRecord};

/// The batch's transaction, seen by the resolution steps.
pub(super) struct SqliteUnify<'a, 'b> {
    pub tx: &'a Transaction<'b>,
    /// The commit time recorded with changes.
    pub now_millis: i64,
}

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("cannot encode or decode {what}: {e}"))
}

impl UnifyTx for SqliteUnify<'_, '_> {
    async fn lock_keys(&self, _keys: &[Key]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn key_owners(&self, keys: &[Key]) -> Result<HashMap<Key, EntityId>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT entity_id FROM entity_keys WHERE scheme = ?1 AND value = ?2")
            .map_err(classify)?;
        let mut owners = HashMap::new();
        for (scheme, value) in keys {
            let owner: Option<String> = statement
                .query_row(params![scheme.as_str(), value], |row| row.get(0))
                .optional()
                .map_err(classify)?;
            if let Some(owner) = owner {
                owners.insert((*scheme, value.clone()), owner);
            }
        }
        Ok(owners)
    }

    async fn mentions_of_records(
        &self,
        records: &[(String, String)],
    ) -> Result<HashMap<MentionRef, Previous>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "SELECT role, idx, entity_id, match_name, placement FROM mentions
                 WHERE record_type = ?1 AND source_id = ?2",
            )
            .map_err(classify)?;
        let mut out = HashMap::new();
        for (record_type, source_id) in records {
            let rows = statement
                .query_map(params![record_type, source_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(classify)?;
            for row in rows {
                let (role, index, entity, match_name, placement) = row.map_err(classify)?;
                let previous = Previous {
                    entity,
                    match_name,
                    placement: placement_from(placement)?,
                };
                let mention = MentionRef {
                    record_type: record_type.clone(),
                    source_id: source_id.clone(),
                    role,
                    index,
                };
                out.insert(mention, previous);
            }
        }
        Ok(out)
    }

    async fn related_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityId>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "SELECT DISTINCT other.entity_id
                 FROM mentions m
                 JOIN mentions other ON other.record_type = m.record_type AND other.source_id = m.source_id
                 WHERE m.entity_id = ?1",
            )
            .map_err(classify)?;
        let mut out = std::collections::BTreeSet::new();
        for id in ids {
            let rows = statement
                .query_map([id], |row| row.get::<_, String>(0))
                .map_err(classify)?;
            for row in rows {
                out.insert(row.map_err(classify)?);
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn lock_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityRow>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT version, redirect_to, record FROM entities WHERE id = ?1")
            .map_err(classify)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row = statement
                .query_row([id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .optional()
                .map_err(classify)?;
            if let Some((version, redirect_to, record)) = row {
                rows.push(EntityRow {
                    id: id.clone(),
                    version,
                    redirect_to,
                    record,
                });
            }
        }
        Ok(rows)
    }

    async fn create_entities(&self, kinds: &[EntityKind]) -> Result<Vec<EntityId>, StoreError> {
        let mut next = self
            .tx
            .prepare_cached("UPDATE entity_numbers SET last = last + 1 WHERE id = 1 RETURNING last")
            .map_err(classify)?;
        let mut insert = self
            .tx
            .prepare_cached("INSERT INTO entities (id, kind, version, record) VALUES (?1, ?2, 0, '{}')")
            .map_err(classify)?;
        let mut ids = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let number: i64 = next.query_row([], |row| row.get(0)).map_err(classify)?;
            let id = entity_id(*kind, number);
            insert.execute(params![id, kind.as_str()]).map_err(classify)?;
            ids.push(id);
        }
        Ok(ids)
    }

    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError> {
        for sql in MERGE {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![absorbed, survivor]))
                .map_err(classify)?;
        }
        // The absorbed entity's pairs now belong to the survivor (copied above).
        self.tx
            .prepare_cached(MERGE_APART_DELETE)
            .and_then(|mut s| s.execute(params![absorbed]))
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_mentions(&self, records: &[(String, String)]) -> Result<(), StoreError> {
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM mentions WHERE record_type = ?1 AND source_id = ?2")
            .map_err(classify)?;
        for (record_type, source_id) in records {
            delete.execute(params![record_type, source_id]).map_err(classify)?;
        }
        Ok(())
    }

    async fn insert_mentions(&self, mentions: &[(EntityId, KeptMention)]) -> Result<(), StoreError> {
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO mentions (record_type, source_id, role, idx, entity_id, source_version, mention, match_name,
                                       placement, flags, contradictions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(classify)?;
        for (entity, mention) in mentions {
            let text = serde_json::to_string(mention).map_err(|e| json_error("a mention", e))?;
            let placement = placement_to(mention.placement.as_ref())?;
            let flags = flags_to_json(&mention.mention.flags)?;
            let contradictions = flags_to_json(&mention.contradictions)?;
            insert
                .execute(params![
                    mention.source.record_type,
                    mention.source.source_id,
                    mention.source.role,
                    mention.source.index,
                    entity,
                    mention.source_version,
                    text,
                    mention.mention.match_name,
                    placement,
                    flags,
                    contradictions
                ])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn point_keys(&self, keys: &[(Key, EntityId)]) -> Result<(), StoreError> {
        let mut upsert = self
            .tx
            .prepare_cached(
                "INSERT INTO entity_keys (scheme, value, entity_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scheme, value) DO UPDATE SET entity_id = excluded.entity_id
                 WHERE entity_keys.entity_id <> excluded.entity_id",
            )
            .map_err(classify)?;
        for ((scheme, value), entity) in keys {
            upsert
                .execute(params![scheme.as_str(), value, entity])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn entity_mentions(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Vec<KeptMention>>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT mention, placement, contradictions FROM mentions WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut out = HashMap::new();
        for id in ids {
            let rows = statement
                .query_map([id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .map_err(classify)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(classify)?;
            if rows.is_empty() {
                continue;
            }
            let mentions = rows
                .into_iter()
                .map(|(text, placement, contradictions)| {
                    let mut kept: KeptMention =
                        serde_json::from_str(&text).map_err(|e| json_error("a kept mention", e))?;
                    kept.placement = placement_from(placement)?;
                    kept.contradictions = flags_from_json(&contradictions)?;
                    Ok(kept)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.insert(id.clone(), mentions);
        }
        Ok(out)
    }

    async fn set_contradictions(&self, mentions: &[(MentionRef, Vec<QualityFlag>)]) -> Result<(), StoreError> {
        let mut update = self
            .tx
            .prepare_cached(
                "UPDATE mentions SET contradictions = ?5
                 WHERE record_type = ?1 AND source_id = ?2 AND role = ?3 AND idx = ?4",
            )
            .map_err(classify)?;
        for (mention, flags) in mentions {
            let flags = flags_to_json(flags)?;
            update
                .execute(params![
                    mention.record_type,
                    mention.source_id,
                    mention.role,
                    mention.index,
                    flags
                ])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn prune_keys(&self, keep: &[(EntityId, Vec<Key>)]) -> Result<(), StoreError> {
        let mut held_of = self
            .tx
            .prepare_cached("SELECT scheme, value FROM entity_keys WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM entity_keys WHERE scheme = ?1 AND value = ?2 AND entity_id = ?3")
            .map_err(classify)?;
        for (entity, keep) in keep {
            let held: Vec<(String, String)> = held_of
                .query_map([entity], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(classify)?;
            let keep: std::collections::HashSet<(&str, &str)> = keep
                .iter()
                .map(|(scheme, value)| (scheme.as_str(), value.as_str()))
                .collect();
            for (scheme, value) in &held {
                if !keep.contains(&(scheme.as_str(), value.as_str())) {
                    delete.execute(params![scheme, value, entity]).map_err(classify)?;
                }
            }
        }
        Ok(())
    }

    async fn redirects(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, EntityId>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT redirect_to FROM entities WHERE id = ?1 AND redirect_to IS NOT NULL")
            .map_err(classify)?;
        let mut out = HashMap::new();
        for id in ids {
            let survivor: Option<String> = statement
                .query_row([id], |row| row.get(0))
                .optional()
                .map_err(classify)?;
            if let Some(survivor) = survivor {
                out.insert(id.clone(), survivor);
            }
        }
        Ok(out)
    }

    async fn write_entities(&self, records: &[Published]) -> Result<(), StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("UPDATE entities SET version = ?2, record = ?3, redirect_to = ?4 WHERE id = ?1")
            .map_err(classify)?;
        for Published { record, text } in records {
            statement
                .execute(params![record.unified_id, record.version, text, record.merged_into])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn append_changes(&self, records: &[Published]) -> Result<(), StoreError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "INSERT INTO changes (position, entity_id, kind, version, record, committed_at)
                 VALUES ((SELECT coalesce(max(position), 0) + 1 FROM changes), ?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(classify)?;
        for Published { record, text } in records {
            statement
                .execute(params![
                    record.unified_id,
                    record.kind.as_str(),
                    record.version,
                    text,
                    self.now_millis
                ])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn lock_blocks(&self, _blocks: &[String]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn candidates(
        &self,
        blocks: &[String],
        per_block: usize,
    ) -> Result<HashMap<String, Vec<EntityId>>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT entity_id FROM match_blocks WHERE block = ?1 LIMIT ?2")
            .map_err(classify)?;
        let mut out = HashMap::new();
        for block in blocks {
            let ids = statement
                .query_map(params![block, sql_limit(per_block)], |row| row.get::<_, String>(0))
                .map_err(classify)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(classify)?;
            if !ids.is_empty() {
                out.insert(block.clone(), ids);
            }
        }
        Ok(out)
    }

    async fn profiles(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Profile>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT profile FROM match_profiles WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut out = HashMap::new();
        for id in ids {
            let text: Option<String> = statement
                .query_row([id], |row| row.get(0))
                .optional()
                .map_err(classify)?;
            if let Some(text) = text {
                let profile = serde_json::from_str(&text).map_err(|e| json_error("a match profile", e))?;
                out.insert(id.clone(), profile);
            }
        }
        Ok(out)
    }

    async fn name_counts(&self, keys: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT count(*) FROM match_blocks WHERE block = ?1")
            .map_err(classify)?;
        let mut out = HashMap::new();
        for key in keys {
            let count: i64 = statement.query_row([key], |row| row.get(0)).map_err(classify)?;
            if count > 0 {
                out.insert(key.clone(), u64::try_from(count).unwrap_or(0));
            }
        }
        Ok(out)
    }

    async fn population(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .tx
            .query_row("SELECT last FROM entity_numbers WHERE id = 1", [], |row| row.get(0))
            .map_err(classify)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn write_profiles(&self, profiles: &[(EntityId, Option<ProfileRow>)]) -> Result<(), StoreError> {
        let mut held_of = self
            .tx
            .prepare_cached("SELECT block FROM match_blocks WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut delete_block = self
            .tx
            .prepare_cached("DELETE FROM match_blocks WHERE block = ?1 AND entity_id = ?2")
            .map_err(classify)?;
        let mut insert_block = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO match_blocks (block, entity_id) VALUES (?1, ?2)")
            .map_err(classify)?;
        let mut delete_profile = self
            .tx
            .prepare_cached("DELETE FROM match_profiles WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut upsert_profile = self
            .tx
            .prepare_cached(
                "INSERT INTO match_profiles (entity_id, profile) VALUES (?1, ?2)
                 ON CONFLICT (entity_id) DO UPDATE SET profile = excluded.profile
                 WHERE match_profiles.profile <> excluded.profile",
            )
            .map_err(classify)?;
        for (id, row) in profiles {
            // Only what changed is written: most rebuilds keep most blocking keys.
            let held: std::collections::HashSet<String> = held_of
                .query_map([id], |row| row.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(classify)?;
            let wanted: std::collections::HashSet<&str> = row
                .iter()
                .flat_map(|row| row.blocks.iter().map(String::as_str))
                .collect();
            for block in &held {
                if !wanted.contains(block.as_str()) {
                    delete_block.execute(params![block, id]).map_err(classify)?;
                }
            }
            let Some(row) = row else {
                delete_profile.execute([id]).map_err(classify)?;
                continue;
            };
            let text = serde_json::to_string(&row.profile).map_err(|e| json_error("a match profile", e))?;
            upsert_profile.execute(params![id, text]).map_err(classify)?;
            for block in &row.blocks {
                if !held.contains(block) {
                    insert_block.execute(params![block, id]).map_err(classify)?;
                }
            }
        }
        Ok(())
    }

    async fn queue_review(&self, review: &QueuedReview) -> Result<(), StoreError> {
        let evidence = serde_json::to_string(&review.evidence).map_err(|e| json_error("evidence", e))?;
        self.tx
            .prepare_cached(
                // One open pair per two entities, as on PostgreSQL.
                "INSERT INTO review_pairs (record_type, source_id, role, idx, entity_id, candidate, total, evidence,
                                           queued_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE NOT EXISTS (SELECT 1 FROM review_pairs WHERE status = 'open'
                                   AND ((entity_id = ?5 AND candidate = ?6) OR (entity_id = ?6 AND candidate = ?5)))",
            )
            .and_then(|mut s| {
                s.execute(params![
                    review.mention.record_type,
                    review.mention.source_id,
                    review.mention.role,
                    review.mention.index,
                    review.entity,
                    review.candidate,
                    review.evidence.total,
                    evidence,
                    self.now_millis
                ])
            })
            .map_err(classify)?;
        Ok(())
    }

    async fn pinned(&self, records: &[(String, String)]) -> Result<HashMap<MentionRef, EntityId>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "SELECT record_type, source_id, role, idx, entity_id FROM pinned_mentions
                 WHERE record_type = ?1 AND source_id = ?2",
            )
            .map_err(classify)?;
        let mut out = HashMap::new();
        for (record_type, source_id) in records {
            let rows = statement
                .query_map(params![record_type, source_id], |row| {
                    Ok((mention_ref(row, 0)?, row.get(4)?))
                })
                .map_err(classify)?;
            for row in rows {
                let (mention, entity) = row.map_err(classify)?;
                out.insert(mention, entity);
            }
        }
        Ok(out)
    }

    async fn apart(&self, ids: &[EntityId]) -> Result<Vec<(EntityId, EntityId)>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT other_id FROM entities_apart WHERE entity_id = ?1")
            .map_err(classify)?;
        let mut out = Vec::new();
        for id in ids {
            let others = statement
                .query_map([id], |row| row.get::<_, String>(0))
                .map_err(classify)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(classify)?;
            out.extend(others.into_iter().map(|other| (id.clone(), other)));
        }
        Ok(out)
    }

    async fn review_pair(&self, id: i64) -> Result<Option<ReviewRow>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT record_type, source_id, role, idx, entity_id, candidate, status FROM review_pairs WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |row| {
                    Ok(ReviewRow {
                        mention: mention_ref(row, 0)?,
                        entity: row.get(4)?,
                        candidate: row.get(5)?,
                        status: row.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(classify)
    }

    async fn close_review(&self, id: i64, status: &str, by: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE review_pairs SET status = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, status, by, self.now_millis]))
            .map_err(classify)?;
        Ok(())
    }

    async fn mention_entity(&self, mention: &MentionRef) -> Result<Option<EntityId>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT entity_id FROM mentions WHERE record_type = ?1 AND source_id = ?2 AND role = ?3 AND idx = ?4",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![mention.record_type, mention.source_id, mention.role, mention.index],
                    |row| row.get(0),
                )
                .optional()
            })
            .map_err(classify)
    }

    async fn move_mention(&self, mention: &MentionRef, to: &EntityId, placement: &Placement) -> Result<(), StoreError> {
        let placement = placement_to(Some(placement))?;
        self.tx
            .prepare_cached(
                "UPDATE mentions SET entity_id = ?5, placement = ?6
                 WHERE record_type = ?1 AND source_id = ?2 AND role = ?3 AND idx = ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    mention.record_type,
                    mention.source_id,
                    mention.role,
                    mention.index,
                    to,
                    placement
                ])
            })
            .map_err(classify)?;
        Ok(())
    }

    async fn pin(&self, mention: &MentionRef, entity: &EntityId) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO pinned_mentions (record_type, source_id, role, idx, entity_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (record_type, source_id, role, idx) DO UPDATE SET entity_id = excluded.entity_id",
            )
            .and_then(|mut s| {
                s.execute(params![
                    mention.record_type,
                    mention.source_id,
                    mention.role,
                    mention.index,
                    entity
                ])
            })
            .map_err(classify)?;
        Ok(())
    }

    async fn set_apart(&self, a: &EntityId, b: &EntityId, apart: bool) -> Result<(), StoreError> {
        let sql = if apart {
            "INSERT OR IGNORE INTO entities_apart (entity_id, other_id) VALUES (?1, ?2), (?2, ?1)"
        } else {
            "DELETE FROM entities_apart WHERE (entity_id = ?1 AND other_id = ?2) OR (entity_id = ?2 AND other_id = ?1)"
        };
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params![a, b]))
            .map_err(classify)?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        insert_audit(self.tx, entry)
    }
}

/// A mention address from four columns starting at `first` (record_type, source_id,
/// role, idx).
fn mention_ref(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<MentionRef> {
    Ok(MentionRef {
        record_type: row.get(first)?,
        source_id: row.get(first + 1)?,
        role: row.get(first + 2)?,
        index: row.get(first + 3)?,
    })
}

// ---------------------------------------------------------------------------------------
// Reads

/// Each side of a review pair as it is now: the mention's current entity, the
/// candidate's survivor. The orders append their `WHERE` and `ORDER BY`.
const REVIEW_PAIRS: &str = "SELECT r.id, r.record_type, r.source_id, r.role, r.idx,
        COALESCE(m.entity_id, r.entity_id), COALESCE(c.redirect_to, c.id), r.evidence, r.queued_at
 FROM review_pairs r
 LEFT JOIN mentions m ON m.record_type = r.record_type AND m.source_id = r.source_id
                     AND m.role = r.role AND m.idx = r.idx
 JOIN entities c ON c.id = r.candidate
 WHERE r.status = 'open'";

pub(super) fn select_review_queue(
    connection: &rusqlite::Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<ReviewPair>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!("{REVIEW_PAIRS} AND r.id > ?1 ORDER BY r.id LIMIT ?2"))
        .map_err(classify)?;
    let rows = statement
        .query_map(params![after, sql_limit(limit)], review_pair_row)
        .map_err(classify)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(classify)?;
    review_pairs(rows)
}

pub(super) fn select_review_queue_uncertain(
    connection: &rusqlite::Connection,
    after: i64,
    limit: usize,
    (person, organisation): (f64, f64),
) -> Result<Vec<ReviewPair>, StoreError> {
    // The cursor is a pair: its distance is worked out again, by the same expression.
    let mut statement = connection
        .prepare_cached(&format!(
            "{REVIEW_PAIRS} AND (?1 = 0 OR
                 (abs(r.total - CASE WHEN r.entity_id LIKE 'P%' THEN ?3 ELSE ?4 END), r.id) >
                 (SELECT abs(p.total - CASE WHEN p.entity_id LIKE 'P%' THEN ?3 ELSE ?4 END), p.id
                  FROM review_pairs p WHERE p.id = ?1))
             ORDER BY abs(r.total - CASE WHEN r.entity_id LIKE 'P%' THEN ?3 ELSE ?4 END), r.id
             LIMIT ?2"
        ))
        .map_err(classify)?;
    let rows = statement
        .query_map(params![after, sql_limit(limit), person, organisation], review_pair_row)
        .map_err(classify)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(classify)?;
    review_pairs(rows)
}

type ReviewPairRow = (i64, MentionRef, String, String, String, i64);

fn review_pair_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewPairRow> {
    Ok((
        row.get::<_, i64>(0)?,
        mention_ref(row, 1)?,
        row.get::<_, String>(5)?,
        row.get::<_, String>(6)?,
        row.get::<_, String>(7)?,
        row.get::<_, i64>(8)?,
    ))
}

fn review_pairs(rows: Vec<ReviewPairRow>) -> Result<Vec<ReviewPair>, StoreError> {
    rows.into_iter()
        .map(|(id, mention, entity, candidate, evidence, queued_at)| {
            Ok(ReviewPair {
                id,
                mention,
                entity,
                candidate,
                evidence: serde_json::from_str(&evidence).map_err(|e| json_error("evidence", e))?,
                queued_at: from_unix_millis(queued_at),
            })
        })
        .collect()
}

pub(super) fn select_explanation(
    connection: &rusqlite::Connection,
    id: &str,
) -> Result<Option<Explanation>, StoreError> {
    let Some((redirect, _)) = select_entity(connection, id)? else {
        return Ok(None);
    };
    let live = redirect.clone().unwrap_or_else(|| id.to_owned());
    let mut statement = connection
        .prepare_cached(
            "SELECT record_type, source_id, role, idx, placement FROM mentions WHERE entity_id = ?1
             ORDER BY record_type, source_id, role, idx",
        )
        .map_err(classify)?;
    let rows = statement
        .query_map([&live], |row| {
            Ok((mention_ref(row, 0)?, row.get::<_, Option<String>>(4)?))
        })
        .map_err(classify)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(classify)?;
    let sources = rows
        .into_iter()
        .map(|(mention, placement)| Ok((mention, placement_from(placement)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Explanation {
        unified_id: live,
        redirected_from: redirect.map(|_| id.to_owned()),
        sources,
    }))
}

/// A merge's statements, each with the absorbed entity as ?1 and the survivor as ?2:
/// its mentions, keys, redirects, pins, "apart" pairs and open review pairs go to the
/// survivor. Each finds its rows through an index (a test reads their plans): a merge
/// must not cost more as the store grows.
pub(super) const MERGE: [&str; 7] = [
    "UPDATE mentions SET entity_id = ?2 WHERE entity_id = ?1",
    "UPDATE entity_keys SET entity_id = ?2 WHERE entity_id = ?1",
    "UPDATE entities SET redirect_to = ?2 WHERE id = ?1 OR redirect_to = ?1",
    "UPDATE pinned_mentions SET entity_id = ?2 WHERE entity_id = ?1",
    "INSERT OR IGNORE INTO entities_apart (entity_id, other_id)
     SELECT ?2, other_id FROM entities_apart WHERE entity_id = ?1 AND other_id <> ?2
     UNION ALL
     SELECT entity_id, ?2 FROM entities_apart WHERE other_id = ?1 AND entity_id <> ?2",
    // Two statements, not an OR of the two pairs, which SQLite plans as a scan of every
    // open pair.
    "UPDATE review_pairs SET status = 'superseded' WHERE status = 'open' AND entity_id = ?1 AND candidate = ?2",
    "UPDATE review_pairs SET status = 'superseded' WHERE status = 'open' AND entity_id = ?2 AND candidate = ?1",
];
/// After [`MERGE`]: the absorbed entity's "apart" pairs, copied to the survivor, go.
pub(super) const MERGE_APART_DELETE: &str = "DELETE FROM entities_apart WHERE entity_id = ?1 OR other_id = ?1";

/// The feed's page of every kind: a walk of the rowid from the cursor.
pub(super) const CHANGES_AFTER: &str = "SELECT position, record FROM changes
     WHERE position > ?1 ORDER BY position LIMIT ?2";
/// The feed's page of one kind: a walk of `changes_kind_position` from the cursor.
pub(super) const CHANGES_OF_KIND_AFTER: &str = "SELECT position, record FROM changes
     WHERE kind = ?1 AND position > ?2 ORDER BY position LIMIT ?3";

pub(super) fn select_changes(
    connection: &rusqlite::Connection,
    after: i64,
    kinds: &[EntityKind],
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let person = kinds.is_empty() || kinds.contains(&EntityKind::Person);
    let organisation = kinds.is_empty() || kinds.contains(&EntityKind::Organisation);
    // A statement per case, not one with `(kind = 'person' AND ?) OR (kind = …)`: SQLite
    // plans that OR as two index scans whose union it sorts on every page, reading every
    // change after the cursor, which made the feed from the start quadratic (8,500
    // changes/s at 100,000 people against 36,000 at 10,000).
    let read = |row: &rusqlite::Row<'_>| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?));
    let limit = sql_limit(limit);
    let rows = match (person, organisation) {
        (true, true) => connection
            .prepare_cached(CHANGES_AFTER)
            .and_then(|mut statement| statement.query_map(params![after, limit], read)?.collect()),
        (true, false) | (false, true) => {
            let kind = if person {
                EntityKind::Person
            } else {
                EntityKind::Organisation
            };
            connection
                .prepare_cached(CHANGES_OF_KIND_AFTER)
                .and_then(|mut statement| {
                    statement
                        .query_map(params![kind.as_str(), after, limit], read)?
                        .collect()
                })
        }
        (false, false) => Ok(Vec::new()),
    };
    let rows: Vec<(i64, String)> = rows.map_err(classify)?;
    rows.into_iter()
        .map(|(position, text)| Change::from_text(position, text).map_err(|e| json_error("a change", e)))
        .collect()
}

pub(super) fn select_entity_history(
    connection: &rusqlite::Connection,
    id: &str,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let rows: Vec<(i64, String)> = connection
        .prepare_cached(
            "SELECT position, record FROM changes
             WHERE entity_id = ?1 OR entity_id IN (SELECT id FROM entities WHERE redirect_to = ?1)
             ORDER BY position DESC LIMIT ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![id, sql_limit(limit)], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(classify)?;
    rows.into_iter()
        .map(|(position, text)| Change::from_text(position, text).map_err(|e| json_error("a change", e)))
        .collect()
}

pub(super) fn select_entity(
    connection: &rusqlite::Connection,
    id: &str,
) -> Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError> {
    let row = connection
        .prepare_cached("SELECT redirect_to, record FROM entities WHERE id = ?1 AND version > 0")
        .and_then(|mut s| {
            s.query_row([id], |row| {
                Ok((row.get::<_, Option<String>>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
        })
        .map_err(classify)?;
    row.map(|(redirect, text)| {
        let record = serde_json::from_str(&text).map_err(|e| json_error("a unified record", e))?;
        Ok((redirect, record))
    })
    .transpose()
}

pub(super) fn select_key_owner(
    connection: &rusqlite::Connection,
    keys: &[Key],
) -> Result<Option<EntityId>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT entity_id FROM entity_keys WHERE scheme = ?1 AND value = ?2")
        .map_err(classify)?;
    for (scheme, value) in keys {
        let owner: Option<String> = statement
            .query_row(params![scheme.as_str(), value], |row| row.get(0))
            .optional()
            .map_err(classify)?;
        if owner.is_some() {
            return Ok(owner);
        }
    }
    Ok(None)
}

/// Appends an entry to the audit chain; inside a write transaction (SQLite has one
/// writer at a time, so the head read is the head written after).
pub(super) fn insert_audit(connection: &rusqlite::Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    let (seq, previous) = select_audit_head(connection)?;
    let seq = seq + 1;
    let hash = audit::entry_hash(&previous, seq, entry);
    connection
        .prepare_cached(
            "INSERT INTO audit_log (at, identity, action, subject, purpose, outcome, seq, hash, trace_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                unix_millis(entry.at),
                entry.identity,
                entry.action,
                entry.subject,
                entry.purpose,
                entry.outcome,
                seq,
                hash,
                entry.trace_id
            ])
        })
        .map_err(classify)?;
    set_audit_head(connection, seq, &hash)
}

fn set_audit_head(connection: &rusqlite::Connection, seq: i64, hash: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .and_then(|mut s| s.execute(params![seq, hash]))
        .map_err(classify)?;
    Ok(())
}

pub(super) fn select_audit_head(connection: &rusqlite::Connection) -> Result<(i64, String), StoreError> {
    connection
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .and_then(|mut s| s.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(classify)
}

/// Chains the entries written before the chain existed, in the order they were written
/// (while migrating to schema version 4).
pub(super) fn chain_unchained_audit(connection: &rusqlite::Connection) -> Result<(), StoreError> {
    let (mut seq, mut previous) = select_audit_head(connection)?;
    let unchained: Vec<(i64, AuditEntry)> = {
        let mut statement = connection
            .prepare(
                "SELECT id, at, identity, action, subject, purpose, outcome FROM audit_log
                 WHERE seq IS NULL ORDER BY id",
            )
            .map_err(classify)?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, audit_entry(row, 1)?)))
            .map_err(classify)?;
        rows.collect::<Result<_, _>>().map_err(classify)?
    };
    for (id, entry) in unchained {
        seq += 1;
        previous = audit::entry_hash(&previous, seq, &entry);
        connection
            .execute(
                "UPDATE audit_log SET seq = ?1, hash = ?2 WHERE id = ?3",
                params![seq, previous, id],
            )
            .map_err(classify)?;
    }
    set_audit_head(connection, seq, &previous)
}

/// An audit entry from six columns starting at `first` (at, identity, action, subject,
/// purpose, outcome); the trace ID, a later column, is read by the callers that have it.
fn audit_entry(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        at: from_unix_millis(row.get(first)?),
        identity: row.get(first + 1)?,
        action: row.get(first + 2)?,
        subject: row.get(first + 3)?,
        purpose: row.get(first + 4)?,
        outcome: row.get(first + 5)?,
        trace_id: String::new(),
    })
}

pub(super) fn select_audit_chain(
    connection: &rusqlite::Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<ChainedEntry>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, at, identity, action, subject, purpose, outcome, hash, trace_id FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(classify)?;
    let rows = statement
        .query_map(params![after, sql_limit(limit)], |row| {
            Ok(ChainedEntry {
                seq: row.get(0)?,
                entry: AuditEntry {
                    trace_id: row.get(8)?,
                    ..audit_entry(row, 1)?
                },
                hash: row.get(7)?,
            })
        })
        .map_err(classify)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(classify)
}

pub(super) fn select_audit(connection: &rusqlite::Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT at, identity, action, subject, purpose, outcome, trace_id FROM audit_log ORDER BY id LIMIT ?1",
        )
        .map_err(classify)?;
    let rows = statement
        .query_map([sql_limit(limit)], |row| {
            Ok(AuditEntry {
                trace_id: row.get(6)?,
                ..audit_entry(row, 0)?
            })
        })
        .map_err(classify)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(classify)
}
