//! PostgreSQL side of unified records: the resolution operations inside a batch's
//! transaction, and the reads of the feed and of entities.
//!
//! Locks, in the order every transaction takes them (so none waits in a cycle):
//! source record rows (by record) → key advisory locks (by lock number) → blocking-key
//! bucket rows (by bucket) → review pair rows → entity rows (by ID) → the feed clock
//! row, last, just before commit.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use tokio_postgres::types::ToSql;
use tongban_adapters::model::{EntityKind, IdScheme, QualityFlag};

use super::{classify, Transaction};
use crate::audit::{self, ChainedEntry};
use crate::resolve::matching::Profile;
use crate::resolve::{Key, Placement, Previous};
use crate::stewardship::{Explanation, ReviewPair};
use crate::store::unify::{EntityRow, ProfileRow, Published, QueuedReview, ReviewRow, UnifyTx};
use crate::store::{flags_from_json, flags_to_json, placement_from, placement_to, AuditEntry, StoreError};
use crate::unified::{entity_id, Change, EntityId, KeptMention, MentionRef, UnifiedRecord};

/// The batch's transaction, seen by the resolution steps.
pub(super) struct PgUnify<'a, 'b> {
    pub tx: &'a Transaction<'b>,
}

/// The advisory lock number of a key: a 64-bit hash computed by the server, the same in
/// every replica. Two keys sharing a number only serialise more than needed.
const KEY_LOCK: &str = "SELECT pg_advisory_xact_lock(n) FROM (
                            SELECT DISTINCT hashtextextended(s || ':' || v, 7) AS n
                            FROM unnest($1::text[], $2::text[]) AS k(s, v)
                        ) AS locks ORDER BY n";

fn key_columns(keys: &[Key]) -> (Vec<&'static str>, Vec<&str>) {
    keys.iter()
        .map(|(scheme, value)| (scheme.as_str(), value.as_str()))
        .unzip()
}

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("cannot encode or decode {what}: {e}"))
}

impl UnifyTx for PgUnify<'_, '_> {
    async fn lock_keys(&self, keys: &[Key]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let (schemes, values) = key_columns(keys);
        let statement = self.tx.prepare_cached(KEY_LOCK).await.map_err(classify)?;
        self.tx
            .query(&statement, &[&schemes, &values])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn key_owners(&self, keys: &[Key]) -> Result<HashMap<Key, EntityId>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let (schemes, values) = key_columns(keys);
        let statement = self
            .tx
            .prepare_cached(
                "SELECT k.scheme, k.value, k.entity_id
                 FROM entity_keys k
                 JOIN unnest($1::text[], $2::text[]) AS wanted(s, v) ON k.scheme = wanted.s AND k.value = wanted.v",
            )
            .await
            .map_err(classify)?;
        let rows = self
            .tx
            .query(&statement, &[&schemes, &values])
            .await
            .map_err(classify)?;
        let mut owners = HashMap::with_capacity(rows.len());
        for row in rows {
            let scheme: String = row.try_get(0).map_err(classify)?;
            let Some(scheme) = IdScheme::parse(&scheme) else {
                return Err(StoreError::Internal(format!(
                    "unknown key scheme {scheme:?} in entity_keys"
                )));
            };
            owners.insert(
                (scheme, row.try_get(1).map_err(classify)?),
                row.try_get(2).map_err(classify)?,
            );
        }
        Ok(owners)
    }

    async fn mentions_of_records(
        &self,
        records: &[(String, String)],
    ) -> Result<HashMap<MentionRef, Previous>, StoreError> {
        let (types, ids): (Vec<&str>, Vec<&str>) = records.iter().map(|(t, s)| (t.as_str(), s.as_str())).unzip();
        let statement = self
            .tx
            .prepare_cached(
                "SELECT m.record_type, m.source_id, m.role, m.idx, m.entity_id, m.match_name, m.placement
                 FROM mentions m
                 JOIN unnest($1::text[], $2::text[]) AS r(t, s) ON m.record_type = r.t AND m.source_id = r.s",
            )
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&types, &ids]).await.map_err(classify)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let index: i32 = row.try_get(3).map_err(classify)?;
            let mention = MentionRef {
                record_type: row.try_get(0).map_err(classify)?,
                source_id: row.try_get(1).map_err(classify)?,
                role: row.try_get(2).map_err(classify)?,
                index: u32::try_from(index)
                    .map_err(|_| StoreError::Internal(format!("negative mention index {index}")))?,
            };
            let previous = Previous {
                entity: row.try_get(4).map_err(classify)?,
                match_name: row.try_get(5).map_err(classify)?,
                placement: placement_from(row.try_get(6).map_err(classify)?)?,
            };
            out.insert(mention, previous);
        }
        Ok(out)
    }

    async fn related_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityId>, StoreError> {
        let statement = self
            .tx
            .prepare_cached(
                "SELECT DISTINCT other.entity_id
                 FROM mentions m
                 JOIN mentions other ON other.record_type = m.record_type AND other.source_id = m.source_id
                 WHERE m.entity_id = ANY($1)",
            )
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter().map(|row| row.try_get(0).map_err(classify)).collect()
    }

    async fn lock_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Row locks are taken in the order rows are returned: sort by ID.
        let statement = self
            .tx
            .prepare_cached(
                "SELECT id, version, redirect_to, record FROM entities WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(EntityRow {
                    id: row.try_get(0).map_err(classify)?,
                    version: row.try_get(1).map_err(classify)?,
                    redirect_to: row.try_get(2).map_err(classify)?,
                    record: row.try_get(3).map_err(classify)?,
                })
            })
            .collect()
    }

    async fn create_entities(&self, kinds: &[EntityKind]) -> Result<Vec<EntityId>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(kinds.len()).map_err(|_| StoreError::Internal("too many entities".to_owned()))?;
        let statement = self
            .tx
            .prepare_cached("SELECT nextval('entity_numbers') FROM generate_series(1, $1::bigint)")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&count]).await.map_err(classify)?;
        // Handed out in plan order, so that an earlier-planned entity has the older ID.
        let mut numbers = rows
            .iter()
            .map(|row| row.try_get::<_, i64>(0).map_err(classify))
            .collect::<Result<Vec<_>, _>>()?;
        numbers.sort_unstable();
        let ids: Vec<EntityId> = numbers
            .into_iter()
            .zip(kinds)
            .map(|(n, kind)| entity_id(*kind, n))
            .collect();
        let kind_names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
        let insert = self
            .tx
            .prepare_cached(
                "INSERT INTO entities (id, kind, version, record)
                 SELECT id, kind, 0, '{}' FROM unnest($1::text[], $2::text[]) AS n(id, kind)",
            )
            .await
            .map_err(classify)?;
        self.tx.execute(&insert, &[&ids, &kind_names]).await.map_err(classify)?;
        Ok(ids)
    }

    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError> {
        for sql in [
            "UPDATE mentions SET entity_id = $2 WHERE entity_id = $1",
            "UPDATE entity_keys SET entity_id = $2 WHERE entity_id = $1",
            "UPDATE entities SET redirect_to = $2 WHERE id = $1 OR redirect_to = $1",
            "UPDATE pinned_mentions SET entity_id = $2 WHERE entity_id = $1",
            "INSERT INTO entities_apart (entity_id, other_id)
             SELECT $2, other_id FROM entities_apart WHERE entity_id = $1 AND other_id <> $2
             UNION ALL
             SELECT entity_id, $2 FROM entities_apart WHERE other_id = $1 AND entity_id <> $2
             ON CONFLICT DO NOTHING",
            "UPDATE review_pairs SET status = 'superseded'
             WHERE status = 'open' AND ((entity_id = $1 AND candidate = $2) OR (entity_id = $2 AND candidate = $1))",
        ] {
            let statement = self.tx.prepare_cached(sql).await.map_err(classify)?;
            self.tx
                .execute(&statement, &[absorbed, survivor])
                .await
                .map_err(classify)?;
        }
        // The absorbed entity's pairs now belong to the survivor (copied above).
        let statement = self
            .tx
            .prepare_cached("DELETE FROM entities_apart WHERE entity_id = $1 OR other_id = $1")
            .await
            .map_err(classify)?;
        self.tx.execute(&statement, &[absorbed]).await.map_err(classify)?;
        Ok(())
    }

    async fn delete_mentions(&self, records: &[(String, String)]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (types, ids): (Vec<&str>, Vec<&str>) = records.iter().map(|(t, s)| (t.as_str(), s.as_str())).unzip();
        let statement = self
            .tx
            .prepare_cached(
                "DELETE FROM mentions m USING unnest($1::text[], $2::text[]) AS r(t, s)
                 WHERE m.record_type = r.t AND m.source_id = r.s",
            )
            .await
            .map_err(classify)?;
        self.tx.execute(&statement, &[&types, &ids]).await.map_err(classify)?;
        Ok(())
    }

    async fn insert_mentions(&self, mentions: &[(EntityId, KeptMention)]) -> Result<(), StoreError> {
        if mentions.is_empty() {
            return Ok(());
        }
        let mut columns = MentionColumns::with_capacity(mentions.len());
        for (entity, mention) in mentions {
            columns.push(entity, mention)?;
        }
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO mentions (record_type, source_id, role, idx, entity_id, source_version, mention, match_name,
                                       placement, flags, contradictions)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::bigint[],
                                      $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])",
            )
            .await
            .map_err(classify)?;
        let params: [&(dyn ToSql + Sync); 11] = [
            &columns.record_types,
            &columns.source_ids,
            &columns.roles,
            &columns.indexes,
            &columns.entities,
            &columns.source_versions,
            &columns.texts,
            &columns.match_names,
            &columns.placements,
            &columns.flags,
            &columns.contradictions,
        ];
        self.tx.execute(&statement, &params).await.map_err(classify)?;
        Ok(())
    }

    async fn point_keys(&self, keys: &[(Key, EntityId)]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut schemes = Vec::with_capacity(keys.len());
        let mut values = Vec::with_capacity(keys.len());
        let mut entities = Vec::with_capacity(keys.len());
        for ((scheme, value), entity) in keys {
            schemes.push(scheme.as_str());
            values.push(value.as_str());
            entities.push(entity.as_str());
        }
        // A key already pointing at its entity is left as it is: no dead row.
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO entity_keys (scheme, value, entity_id)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                 ON CONFLICT (scheme, value) DO UPDATE SET entity_id = EXCLUDED.entity_id
                 WHERE entity_keys.entity_id <> EXCLUDED.entity_id",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&schemes, &values, &entities])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn entity_mentions(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Vec<KeptMention>>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let statement = self
            .tx
            .prepare_cached(
                // In no order: survivorship sorts an entity's mentions itself.
                "SELECT entity_id, mention, placement, contradictions FROM mentions WHERE entity_id = ANY($1)",
            )
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        let mut out: HashMap<EntityId, Vec<KeptMention>> = HashMap::new();
        for row in rows {
            let text: String = row.try_get(1).map_err(classify)?;
            let mut kept: KeptMention = serde_json::from_str(&text).map_err(|e| json_error("a kept mention", e))?;
            kept.placement = placement_from(row.try_get(2).map_err(classify)?)?;
            kept.contradictions = flags_from_json(&row.try_get::<_, String>(3).map_err(classify)?)?;
            out.entry(row.try_get(0).map_err(classify)?).or_default().push(kept);
        }
        Ok(out)
    }

    async fn set_contradictions(&self, mentions: &[(MentionRef, Vec<QualityFlag>)]) -> Result<(), StoreError> {
        if mentions.is_empty() {
            return Ok(());
        }
        let mut types = Vec::with_capacity(mentions.len());
        let mut ids = Vec::with_capacity(mentions.len());
        let mut roles = Vec::with_capacity(mentions.len());
        let mut indexes = Vec::with_capacity(mentions.len());
        let mut flags = Vec::with_capacity(mentions.len());
        for (mention, now) in mentions {
            types.push(mention.record_type.as_str());
            ids.push(mention.source_id.as_str());
            roles.push(mention.role.as_str());
            indexes.push(mention_index(mention)?);
            flags.push(flags_to_json(now)?);
        }
        let statement = self
            .tx
            .prepare_cached(
                "UPDATE mentions m SET contradictions = c.flags
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[]) AS c(t, s, r, i, flags)
                 WHERE m.record_type = c.t AND m.source_id = c.s AND m.role = c.r AND m.idx = c.i",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&types, &ids, &roles, &indexes, &flags])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn prune_keys(&self, keep: &[(EntityId, Vec<Key>)]) -> Result<(), StoreError> {
        if keep.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = keep.iter().map(|(id, _)| id.as_str()).collect();
        let mut kept_entities = Vec::new();
        let mut schemes = Vec::new();
        let mut values = Vec::new();
        for (id, keys) in keep {
            for (scheme, value) in keys {
                kept_entities.push(id.as_str());
                schemes.push(scheme.as_str());
                values.push(value.as_str());
            }
        }
        let statement = self
            .tx
            .prepare_cached(
                "DELETE FROM entity_keys k WHERE k.entity_id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[], $4::text[]) AS kept(e, s, v)
                                 WHERE kept.e = k.entity_id AND kept.s = k.scheme AND kept.v = k.value)",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&ids, &kept_entities, &schemes, &values])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn redirects(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, EntityId>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let statement = self
            .tx
            .prepare_cached("SELECT id, redirect_to FROM entities WHERE id = ANY($1) AND redirect_to IS NOT NULL")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?)))
            .collect()
    }

    async fn write_entities(&self, records: &[Published]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let columns = RecordColumns::of(records);
        let statement = self
            .tx
            .prepare_cached(
                "UPDATE entities e SET version = r.version, record = r.record, redirect_to = r.redirect_to
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS r(id, version, record, redirect_to)
                 WHERE e.id = r.id",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(
                &statement,
                &[&columns.ids, &columns.versions, &columns.texts, &columns.redirects],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn append_changes(&self, records: &[Published]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(records.len()).map_err(|_| StoreError::Internal("too many changes".to_owned()))?;
        let columns = RecordColumns::of(records);
        // The clock row stays locked until commit: positions follow commit order.
        let clock = self
            .tx
            .prepare_cached("UPDATE feed_clock SET position = position + $1 WHERE id = 1 RETURNING position")
            .await
            .map_err(classify)?;
        let last: i64 = self
            .tx
            .query_one(&clock, &[&count])
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        let insert = self
            .tx
            .prepare_cached(
                "INSERT INTO changes (position, entity_id, kind, version, record)
                 SELECT $1::bigint + n, id, kind, version, record
                 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY
                      AS r(id, kind, version, record, n)",
            )
            .await
            .map_err(classify)?;
        let first = last - count;
        self.tx
            .execute(
                &insert,
                &[&first, &columns.ids, &columns.kinds, &columns.versions, &columns.texts],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn lock_blocks(&self, blocks: &[String]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let statement = self.tx.prepare_cached(BLOCK_LOCK).await.map_err(classify)?;
        self.tx.query(&statement, &[&blocks]).await.map_err(classify)?;
        Ok(())
    }

    async fn candidates(
        &self,
        blocks: &[String],
        per_block: usize,
    ) -> Result<HashMap<String, Vec<EntityId>>, StoreError> {
        if blocks.is_empty() {
            return Ok(HashMap::new());
        }
        let statement = self
            .tx
            .prepare_cached(
                "SELECT w.block, b.entity_id
                 FROM unnest($1::text[]) AS w(block)
                 CROSS JOIN LATERAL (SELECT entity_id FROM match_blocks WHERE block = w.block LIMIT $2) AS b",
            )
            .await
            .map_err(classify)?;
        let limit = crate::store::sql_limit(per_block);
        let rows = self.tx.query(&statement, &[&blocks, &limit]).await.map_err(classify)?;
        let mut out: HashMap<String, Vec<EntityId>> = HashMap::new();
        for row in rows {
            out.entry(row.try_get(0).map_err(classify)?)
                .or_default()
                .push(row.try_get(1).map_err(classify)?);
        }
        Ok(out)
    }

    async fn profiles(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Profile>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let statement = self
            .tx
            .prepare_cached("SELECT entity_id, profile FROM match_profiles WHERE entity_id = ANY($1)")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(1).map_err(classify)?;
                let profile = serde_json::from_str(&text).map_err(|e| json_error("a match profile", e))?;
                Ok((row.try_get(0).map_err(classify)?, profile))
            })
            .collect()
    }

    async fn name_counts(&self, keys: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let statement = self
            .tx
            .prepare_cached("SELECT block, count(*) FROM match_blocks WHERE block = ANY($1) GROUP BY block")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&keys]).await.map_err(classify)?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get(1).map_err(classify)?;
                Ok((row.try_get(0).map_err(classify)?, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }

    async fn population(&self) -> Result<u64, StoreError> {
        let statement = self
            .tx
            .prepare_cached("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM entity_numbers")
            .await
            .map_err(classify)?;
        let n: i64 = self
            .tx
            .query_one(&statement, &[])
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn write_profiles(&self, profiles: &[(EntityId, Option<ProfileRow>)]) -> Result<(), StoreError> {
        if profiles.is_empty() {
            return Ok(());
        }
        let all: Vec<&str> = profiles.iter().map(|(id, _)| id.as_str()).collect();
        let mut gone = Vec::new();
        let mut kept_ids = Vec::new();
        let mut texts = Vec::new();
        let mut block_entities = Vec::new();
        let mut blocks = Vec::new();
        for (id, row) in profiles {
            match row {
                None => gone.push(id.as_str()),
                Some(row) => {
                    kept_ids.push(id.as_str());
                    texts.push(serde_json::to_string(&row.profile).map_err(|e| json_error("a match profile", e))?);
                    for block in &row.blocks {
                        block_entities.push(id.as_str());
                        blocks.push(block.as_str());
                    }
                }
            }
        }
        // Only what changed is written: most rebuilds keep most blocking keys, and a row
        // rewritten unchanged is a dead tuple and an index entry for nothing.
        let prune = self
            .tx
            .prepare_cached(
                "DELETE FROM match_blocks b WHERE b.entity_id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS kept(e, block)
                                 WHERE kept.e = b.entity_id AND kept.block = b.block)",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&prune, &[&all, &block_entities, &blocks])
            .await
            .map_err(classify)?;
        if !gone.is_empty() {
            let delete = self
                .tx
                .prepare_cached("DELETE FROM match_profiles WHERE entity_id = ANY($1)")
                .await
                .map_err(classify)?;
            self.tx.execute(&delete, &[&gone]).await.map_err(classify)?;
        }
        if !kept_ids.is_empty() {
            let upsert = self
                .tx
                .prepare_cached(
                    "INSERT INTO match_profiles (entity_id, profile)
                     SELECT * FROM unnest($1::text[], $2::text[])
                     ON CONFLICT (entity_id) DO UPDATE SET profile = EXCLUDED.profile
                     WHERE match_profiles.profile <> EXCLUDED.profile",
                )
                .await
                .map_err(classify)?;
            self.tx.execute(&upsert, &[&kept_ids, &texts]).await.map_err(classify)?;
            let insert = self
                .tx
                .prepare_cached(
                    "INSERT INTO match_blocks (block, entity_id) SELECT b, e FROM unnest($1::text[], $2::text[]) AS k(b, e)
                     ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(classify)?;
            self.tx
                .execute(&insert, &[&blocks, &block_entities])
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn queue_review(&self, review: &QueuedReview) -> Result<(), StoreError> {
        let evidence = serde_json::to_string(&review.evidence).map_err(|e| json_error("evidence", e))?;
        let index = mention_index(&review.mention)?;
        let statement = self
            .tx
            .prepare_cached(
                // One open pair per two entities: a record pushed again does not queue
                // the same question twice.
                "INSERT INTO review_pairs (record_type, source_id, role, idx, entity_id, candidate, total, evidence)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8
                 WHERE NOT EXISTS (SELECT 1 FROM review_pairs WHERE status = 'open'
                                   AND ((entity_id = $5 AND candidate = $6) OR (entity_id = $6 AND candidate = $5)))",
            )
            .await
            .map_err(classify)?;
        let params: [&(dyn ToSql + Sync); 8] = [
            &review.mention.record_type,
            &review.mention.source_id,
            &review.mention.role,
            &index,
            &review.entity,
            &review.candidate,
            &review.evidence.total,
            &evidence,
        ];
        self.tx.execute(&statement, &params).await.map_err(classify)?;
        Ok(())
    }

    async fn pinned(&self, records: &[(String, String)]) -> Result<HashMap<MentionRef, EntityId>, StoreError> {
        let (types, ids): (Vec<&str>, Vec<&str>) = records.iter().map(|(t, s)| (t.as_str(), s.as_str())).unzip();
        let statement = self
            .tx
            .prepare_cached(
                "SELECT p.record_type, p.source_id, p.role, p.idx, p.entity_id
                 FROM pinned_mentions p
                 JOIN unnest($1::text[], $2::text[]) AS r(t, s) ON p.record_type = r.t AND p.source_id = r.s",
            )
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&types, &ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| Ok((mention_ref(row, 0)?, row.try_get(4).map_err(classify)?)))
            .collect()
    }

    async fn apart(&self, ids: &[EntityId]) -> Result<Vec<(EntityId, EntityId)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = self
            .tx
            .prepare_cached("SELECT entity_id, other_id FROM entities_apart WHERE entity_id = ANY($1)")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?)))
            .collect()
    }

    async fn review_pair(&self, id: i64) -> Result<Option<ReviewRow>, StoreError> {
        let statement = self
            .tx
            .prepare_cached(
                "SELECT record_type, source_id, role, idx, entity_id, candidate, status
                 FROM review_pairs WHERE id = $1 FOR UPDATE",
            )
            .await
            .map_err(classify)?;
        let Some(row) = self.tx.query_opt(&statement, &[&id]).await.map_err(classify)? else {
            return Ok(None);
        };
        Ok(Some(ReviewRow {
            mention: mention_ref(&row, 0)?,
            entity: row.try_get(4).map_err(classify)?,
            candidate: row.try_get(5).map_err(classify)?,
            status: row.try_get(6).map_err(classify)?,
        }))
    }

    async fn close_review(&self, id: i64, status: &str, by: &str) -> Result<(), StoreError> {
        let statement = self
            .tx
            .prepare_cached("UPDATE review_pairs SET status = $2, decided_by = $3, decided_at = now() WHERE id = $1")
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&id, &status, &by])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn mention_entity(&self, mention: &MentionRef) -> Result<Option<EntityId>, StoreError> {
        let index = mention_index(mention)?;
        let statement = self
            .tx
            .prepare_cached(
                "SELECT entity_id FROM mentions WHERE record_type = $1 AND source_id = $2 AND role = $3 AND idx = $4",
            )
            .await
            .map_err(classify)?;
        let row = self
            .tx
            .query_opt(
                &statement,
                &[&mention.record_type, &mention.source_id, &mention.role, &index],
            )
            .await
            .map_err(classify)?;
        row.map(|row| row.try_get(0).map_err(classify)).transpose()
    }

    async fn move_mention(&self, mention: &MentionRef, to: &EntityId, placement: &Placement) -> Result<(), StoreError> {
        let index = mention_index(mention)?;
        let placement = placement_to(Some(placement))?;
        let statement = self
            .tx
            .prepare_cached(
                "UPDATE mentions SET entity_id = $5, placement = $6
                 WHERE record_type = $1 AND source_id = $2 AND role = $3 AND idx = $4",
            )
            .await
            .map_err(classify)?;
        let params: [&(dyn ToSql + Sync); 6] = [
            &mention.record_type,
            &mention.source_id,
            &mention.role,
            &index,
            to,
            &placement,
        ];
        self.tx.execute(&statement, &params).await.map_err(classify)?;
        Ok(())
    }

    async fn pin(&self, mention: &MentionRef, entity: &EntityId) -> Result<(), StoreError> {
        let index = mention_index(mention)?;
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO pinned_mentions (record_type, source_id, role, idx, entity_id) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (record_type, source_id, role, idx) DO UPDATE SET entity_id = EXCLUDED.entity_id",
            )
            .await
            .map_err(classify)?;
        let params: [&(dyn ToSql + Sync); 5] =
            [&mention.record_type, &mention.source_id, &mention.role, &index, entity];
        self.tx.execute(&statement, &params).await.map_err(classify)?;
        Ok(())
    }

    async fn set_apart(&self, a: &EntityId, b: &EntityId, apart: bool) -> Result<(), StoreError> {
        let sql = if apart {
            "INSERT INTO entities_apart (entity_id, other_id) VALUES ($1, $2), ($2, $1) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM entities_apart WHERE (entity_id = $1 AND other_id = $2) OR (entity_id = $2 AND other_id = $1)"
        };
        let statement = self.tx.prepare_cached(sql).await.map_err(classify)?;
        self.tx.execute(&statement, &[a, b]).await.map_err(classify)?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        insert_audit(self.tx, entry).await
    }
}

/// Mentions as the columns of one multi-row INSERT, borrowing what needs no encoding.
struct MentionColumns<'a> {
    record_types: Vec<&'a str>,
    source_ids: Vec<&'a str>,
    roles: Vec<&'a str>,
    indexes: Vec<i32>,
    entities: Vec<&'a str>,
    source_versions: Vec<i64>,
    texts: Vec<String>,
    match_names: Vec<&'a str>,
    placements: Vec<Option<String>>,
    flags: Vec<String>,
    contradictions: Vec<String>,
}

impl<'a> MentionColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        MentionColumns {
            record_types: Vec::with_capacity(n),
            source_ids: Vec::with_capacity(n),
            roles: Vec::with_capacity(n),
            indexes: Vec::with_capacity(n),
            entities: Vec::with_capacity(n),
            source_versions: Vec::with_capacity(n),
            texts: Vec::with_capacity(n),
            match_names: Vec::with_capacity(n),
            placements: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            contradictions: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, entity: &'a str, mention: &'a KeptMention) -> Result<(), StoreError> {
        self.texts
            .push(serde_json::to_string(mention).map_err(|e| json_error("a mention", e))?);
        self.indexes.push(mention_index(&mention.source)?);
        self.placements.push(placement_to(mention.placement.as_ref())?);
        self.flags.push(flags_to_json(&mention.mention.flags)?);
        self.contradictions.push(flags_to_json(&mention.contradictions)?);
        self.record_types.push(&mention.source.record_type);
        self.source_ids.push(&mention.source.source_id);
        self.roles.push(&mention.source.role);
        self.entities.push(entity);
        self.source_versions.push(mention.source_version);
        self.match_names.push(&mention.mention.match_name);
        Ok(())
    }
}

/// Unified records as the columns of one multi-row statement.
struct RecordColumns<'a> {
    ids: Vec<&'a str>,
    kinds: Vec<&'static str>,
    versions: Vec<i64>,
    texts: Vec<&'a str>,
    redirects: Vec<Option<&'a str>>,
}

impl<'a> RecordColumns<'a> {
    fn of(records: &'a [Published]) -> Self {
        RecordColumns {
            ids: records.iter().map(|p| p.record.unified_id.as_str()).collect(),
            kinds: records.iter().map(|p| p.record.kind.as_str()).collect(),
            versions: records.iter().map(|p| p.record.version).collect(),
            texts: records.iter().map(|p| p.text.as_str()).collect(),
            redirects: records.iter().map(|p| p.record.merged_into.as_deref()).collect(),
        }
    }
}

/// The row of `match_block_locks` each blocking key serialises on, locked in bucket
/// order: the hash is the server's, the same in every replica.
const BLOCK_LOCK: &str = "SELECT bucket FROM match_block_locks
                          WHERE bucket IN (SELECT DISTINCT (hashtextextended(b, 7) & 4095)::integer
                                           FROM unnest($1::text[]) AS b)
                          ORDER BY bucket FOR UPDATE";

fn mention_index(mention: &MentionRef) -> Result<i32, StoreError> {
    i32::try_from(mention.index).map_err(|_| StoreError::Internal(format!("mention index {} too large", mention.index)))
}

/// A mention address from four columns starting at `first` (record_type, source_id,
/// role, idx).
fn mention_ref(row: &tokio_postgres::Row, first: usize) -> Result<MentionRef, StoreError> {
    let index: i32 = row.try_get(first + 3).map_err(classify)?;
    Ok(MentionRef {
        record_type: row.try_get(first).map_err(classify)?,
        source_id: row.try_get(first + 1).map_err(classify)?,
        role: row.try_get(first + 2).map_err(classify)?,
        index: u32::try_from(index).map_err(|_| StoreError::Internal(format!("negative mention index {index}")))?,
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

pub(super) async fn select_review_queue(
    client: &deadpool_postgres::Client,
    after: i64,
    limit: usize,
) -> Result<Vec<ReviewPair>, StoreError> {
    let statement = client
        .prepare_cached(&format!("{REVIEW_PAIRS} AND r.id > $1 ORDER BY r.id LIMIT $2"))
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&after, &crate::store::sql_limit(limit)])
        .await
        .map_err(classify)?;
    review_pairs(rows)
}

pub(super) async fn select_review_queue_uncertain(
    client: &deadpool_postgres::Client,
    after: i64,
    limit: usize,
    (person, organisation): (f64, f64),
) -> Result<Vec<ReviewPair>, StoreError> {
    // The cursor is a pair: its distance is worked out again, by the same expression.
    let statement = client
        .prepare_cached(&format!(
            "{REVIEW_PAIRS} AND ($1::int8 = 0 OR
                 (abs(r.total - CASE WHEN r.entity_id LIKE 'P%' THEN $3::float8 ELSE $4::float8 END), r.id) >
                 (SELECT abs(p.total - CASE WHEN p.entity_id LIKE 'P%' THEN $3::float8 ELSE $4::float8 END), p.id
                  FROM review_pairs p WHERE p.id = $1))
             ORDER BY abs(r.total - CASE WHEN r.entity_id LIKE 'P%' THEN $3::float8 ELSE $4::float8 END), r.id
             LIMIT $2"
        ))
        .await
        .map_err(classify)?;
    let limit = crate::store::sql_limit(limit);
    let rows = client
        .query(&statement, &[&after, &limit, &person, &organisation])
        .await
        .map_err(classify)?;
    review_pairs(rows)
}

fn review_pairs(rows: Vec<tokio_postgres::Row>) -> Result<Vec<ReviewPair>, StoreError> {
    let mut pairs = Vec::with_capacity(rows.len());
    for row in rows {
        let evidence: String = row.try_get(7).map_err(classify)?;
        let pair = ReviewPair {
            id: row.try_get(0).map_err(classify)?,
            mention: mention_ref(&row, 1)?,
            entity: row.try_get(5).map_err(classify)?,
            candidate: row.try_get(6).map_err(classify)?,
            evidence: serde_json::from_str(&evidence).map_err(|e| json_error("evidence", e))?,
            queued_at: row.try_get(8).map_err(classify)?,
        };
        pairs.push(pair);
    }
    Ok(pairs)
}

pub(super) async fn select_explanation(
    client: &deadpool_postgres::Client,
    id: &str,
) -> Result<Option<Explanation>, StoreError> {
    let Some((redirect, _)) = select_entity(client, id).await? else {
        return Ok(None);
    };
    let live = redirect.clone().unwrap_or_else(|| id.to_owned());
    let statement = client
        .prepare_cached(
            "SELECT record_type, source_id, role, idx, placement FROM mentions WHERE entity_id = $1
             ORDER BY record_type, source_id, role, idx",
        )
        .await
        .map_err(classify)?;
    let rows = client.query(&statement, &[&live]).await.map_err(classify)?;
    let mut sources = Vec::with_capacity(rows.len());
    for row in rows {
        sources.push((
            mention_ref(&row, 0)?,
            placement_from(row.try_get(4).map_err(classify)?)?,
        ));
    }
    Ok(Some(Explanation {
        unified_id: live,
        redirected_from: redirect.map(|_| id.to_owned()),
        sources,
    }))
}

pub(super) async fn select_changes(
    client: &deadpool_postgres::Client,
    after: i64,
    kinds: &[EntityKind],
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let kinds: Vec<&str> = if kinds.is_empty() {
        vec![EntityKind::Person.as_str(), EntityKind::Organisation.as_str()]
    } else {
        kinds.iter().map(|k| k.as_str()).collect()
    };
    let statement = client
        .prepare_cached(
            "SELECT position, record FROM changes
             WHERE position > $1 AND kind = ANY($2)
             ORDER BY position LIMIT $3",
        )
        .await
        .map_err(classify)?;
    let limit = crate::store::sql_limit(limit);
    let rows = client
        .query(&statement, &[&after, &kinds, &limit])
        .await
        .map_err(classify)?;
    changes_of(&rows)
}

/// Rows of `position, record` as changes.
fn changes_of(rows: &[tokio_postgres::Row]) -> Result<Vec<Change>, StoreError> {
    rows.iter()
        .map(|row| {
            let position = row.try_get(0).map_err(classify)?;
            let text: String = row.try_get(1).map_err(classify)?;
            Change::from_text(position, text).map_err(|e| json_error("a change", e))
        })
        .collect()
}

pub(super) async fn select_entity_history(
    client: &deadpool_postgres::Client,
    id: &str,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT position, record FROM changes
             WHERE entity_id = $1 OR entity_id IN (SELECT id FROM entities WHERE redirect_to = $1)
             ORDER BY position DESC LIMIT $2",
        )
        .await
        .map_err(classify)?;
    let limit = crate::store::sql_limit(limit);
    let rows = client.query(&statement, &[&id, &limit]).await.map_err(classify)?;
    changes_of(&rows)
}

pub(super) async fn select_entity(
    client: &deadpool_postgres::Client,
    id: &str,
) -> Result<Option<(Option<EntityId>, UnifiedRecord)>, StoreError> {
    let statement = client
        .prepare_cached("SELECT redirect_to, record, version FROM entities WHERE id = $1")
        .await
        .map_err(classify)?;
    let Some(row) = client.query_opt(&statement, &[&id]).await.map_err(classify)? else {
        return Ok(None);
    };
    let redirect: Option<String> = row.try_get(0).map_err(classify)?;
    let version: i64 = row.try_get(2).map_err(classify)?;
    if version == 0 {
        // Created by a transaction that has not built it yet: not visible.
        return Ok(None);
    }
    let text: String = row.try_get(1).map_err(classify)?;
    let record = serde_json::from_str(&text).map_err(|e| json_error("a unified record", e))?;
    Ok(Some((redirect, record)))
}

pub(super) async fn select_key_owner(
    client: &deadpool_postgres::Client,
    keys: &[Key],
) -> Result<Option<EntityId>, StoreError> {
    let statement = client
        .prepare_cached("SELECT entity_id FROM entity_keys WHERE scheme = $1 AND value = $2")
        .await
        .map_err(classify)?;
    for (scheme, value) in keys {
        if let Some(row) = client
            .query_opt(&statement, &[&scheme.as_str(), value])
            .await
            .map_err(classify)?
        {
            return Ok(Some(row.try_get(0).map_err(classify)?));
        }
    }
    Ok(None)
}

/// Appends an entry to the audit chain, inside `tx`: the head's row lock, held until
/// the transaction ends, keeps the appenders of every replica in one line.
pub(super) async fn insert_audit(tx: &Transaction<'_>, entry: &AuditEntry) -> Result<(), StoreError> {
    let (seq, previous) = lock_audit_head(tx).await?;
    // Kept to the millisecond the hash counts (PostgreSQL would round microseconds), and
    // without NUL, which `text` refuses: a caller's purpose or asked-for ID may hold one,
    // and the entry must still be written (the hash covers the entry as stored).
    let nul_free = |text: &str| super::without_nul(text).into_owned();
    let entry = AuditEntry {
        at: UNIX_EPOCH + Duration::from_millis(u64::try_from(audit::unix_millis(entry.at)).unwrap_or(0)),
        identity: nul_free(&entry.identity),
        action: nul_free(&entry.action),
        subject: nul_free(&entry.subject),
        purpose: nul_free(&entry.purpose),
        outcome: nul_free(&entry.outcome),
        trace_id: nul_free(&entry.trace_id),
    };
    let seq = seq + 1;
    let hash = audit::entry_hash(&previous, seq, &entry);
    let statement = tx
        .prepare_cached(
            "INSERT INTO audit_log (at, identity, action, subject, purpose, outcome, seq, hash, trace_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(classify)?;
    let params: [&(dyn ToSql + Sync); 9] = [
        &entry.at,
        &entry.identity,
        &entry.action,
        &entry.subject,
        &entry.purpose,
        &entry.outcome,
        &seq,
        &hash,
        &entry.trace_id,
    ];
    tx.execute(&statement, &params).await.map_err(classify)?;
    set_audit_head(tx, seq, &hash).await
}

async fn lock_audit_head(tx: &Transaction<'_>) -> Result<(i64, String), StoreError> {
    let statement = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .await
        .map_err(classify)?;
    let row = tx.query_one(&statement, &[]).await.map_err(classify)?;
    Ok((row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?))
}

async fn set_audit_head(tx: &Transaction<'_>, seq: i64, hash: &str) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .await
        .map_err(classify)?;
    tx.execute(&statement, &[&seq, &hash]).await.map_err(classify)?;
    Ok(())
}

/// Chains the entries written before the chain existed, in the order they were written
/// (while migrating to schema version 4).
pub(super) async fn chain_unchained_audit(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let (mut seq, mut previous) = lock_audit_head(tx).await?;
    let rows = tx
        .query(
            "SELECT id, at, identity, action, subject, purpose, outcome FROM audit_log WHERE seq IS NULL ORDER BY id",
            &[],
        )
        .await
        .map_err(classify)?;
    for row in rows {
        let id: i64 = row.try_get(0).map_err(classify)?;
        let entry = audit_entry(&row, 1)?;
        seq += 1;
        previous = audit::entry_hash(&previous, seq, &entry);
        tx.execute(
            "UPDATE audit_log SET seq = $1, hash = $2 WHERE id = $3",
            &[&seq, &previous, &id],
        )
        .await
        .map_err(classify)?;
    }
    set_audit_head(tx, seq, &previous).await?;
    // Nothing is appended outside the chain (a binary older than this version, say).
    tx.batch_execute("ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN hash SET NOT NULL")
        .await
        .map_err(classify)
}

/// An audit entry from six columns starting at `first` (at, identity, action, subject,
/// purpose, outcome); the trace ID, a later column, is read by the callers that have it.
fn audit_entry(row: &tokio_postgres::Row, first: usize) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: row.try_get(first).map_err(classify)?,
        identity: row.try_get(first + 1).map_err(classify)?,
        action: row.try_get(first + 2).map_err(classify)?,
        subject: row.try_get(first + 3).map_err(classify)?,
        purpose: row.try_get(first + 4).map_err(classify)?,
        outcome: row.try_get(first + 5).map_err(classify)?,
        trace_id: String::new(),
    })
}

pub(super) async fn select_audit_chain(
    client: &deadpool_postgres::Client,
    after: i64,
    limit: usize,
) -> Result<Vec<ChainedEntry>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT seq, at, identity, action, subject, purpose, outcome, hash, trace_id FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&after, &crate::store::sql_limit(limit)])
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            Ok(ChainedEntry {
                seq: row.try_get(0).map_err(classify)?,
                entry: AuditEntry {
                    trace_id: row.try_get(8).map_err(classify)?,
                    ..audit_entry(row, 1)?
                },
                hash: row.try_get(7).map_err(classify)?,
            })
        })
        .collect()
}

pub(super) async fn select_audit_head(client: &deadpool_postgres::Client) -> Result<(i64, String), StoreError> {
    let row = client
        .query_one("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await
        .map_err(classify)?;
    Ok((row.try_get(0).map_err(classify)?, row.try_get(1).map_err(classify)?))
}

pub(super) async fn select_audit(
    client: &deadpool_postgres::Client,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT at, identity, action, subject, purpose, outcome, trace_id FROM audit_log ORDER BY id LIMIT $1",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&crate::store::sql_limit(limit)])
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                trace_id: row.try_get(6).map_err(classify)?,
                ..audit_entry(row, 0)?
            })
        })
        .collect()
}
