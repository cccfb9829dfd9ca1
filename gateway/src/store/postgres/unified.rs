//! PostgreSQL side of unified records: the resolution operations inside a batch's
//! transaction, and the reads of the feed and of entities.
//!
//! Locks, in the order every transaction takes them (so none waits in a cycle):
//! source record rows (by record) → key advisory locks (by lock number) → entity rows
//! (by ID) → the feed clock row, last, just before commit.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tongban_adapters::model::{EntityKind, IdScheme};

use super::{classify, Transaction};
use crate::resolve::{Key, Previous};
use crate::store::unify::{EntityRow, UnifyTx};
use crate::store::{AuditEntry, StoreError};
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
                "SELECT m.record_type, m.source_id, m.role, m.idx, m.entity_id, m.match_name
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
            .prepare_cached("SELECT id, version, redirect_to FROM entities WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[&ids]).await.map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(EntityRow {
                    id: row.try_get(0).map_err(classify)?,
                    version: row.try_get(1).map_err(classify)?,
                    redirect_to: row.try_get(2).map_err(classify)?,
                })
            })
            .collect()
    }

    async fn create_entity(&self, kind: EntityKind) -> Result<EntityId, StoreError> {
        let statement = self
            .tx
            .prepare_cached("SELECT nextval('entity_numbers')")
            .await
            .map_err(classify)?;
        let number: i64 = self
            .tx
            .query_one(&statement, &[])
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        let id = entity_id(kind, number);
        let insert = self
            .tx
            .prepare_cached("INSERT INTO entities (id, kind, version, record) VALUES ($1, $2, 0, '{}')")
            .await
            .map_err(classify)?;
        self.tx
            .execute(&insert, &[&id, &kind.as_str()])
            .await
            .map_err(classify)?;
        Ok(id)
    }

    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError> {
        for sql in [
            "UPDATE mentions SET entity_id = $2 WHERE entity_id = $1",
            "UPDATE entity_keys SET entity_id = $2 WHERE entity_id = $1",
            "UPDATE entities SET redirect_to = $2 WHERE id = $1 OR redirect_to = $1",
        ] {
            let statement = self.tx.prepare_cached(sql).await.map_err(classify)?;
            self.tx
                .execute(&statement, &[absorbed, survivor])
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn delete_mentions(&self, record_type: &str, source_id: &str) -> Result<(), StoreError> {
        let statement = self
            .tx
            .prepare_cached("DELETE FROM mentions WHERE record_type = $1 AND source_id = $2")
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&record_type, &source_id])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn insert_mention(&self, entity: &EntityId, mention: &KeptMention) -> Result<(), StoreError> {
        let text = serde_json::to_string(mention).map_err(|e| json_error("a mention", e))?;
        let index = i32::try_from(mention.source.index)
            .map_err(|_| StoreError::Internal(format!("mention index {} too large", mention.source.index)))?;
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO mentions (record_type, source_id, role, idx, entity_id, source_version, mention, match_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await
            .map_err(classify)?;
        let params: [&(dyn ToSql + Sync); 8] = [
            &mention.source.record_type,
            &mention.source.source_id,
            &mention.source.role,
            &index,
            entity,
            &mention.source_version,
            &text,
            &mention.mention.match_name,
        ];
        self.tx.execute(&statement, &params).await.map_err(classify)?;
        Ok(())
    }

    async fn point_key(&self, (scheme, value): &Key, entity: &EntityId) -> Result<(), StoreError> {
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO entity_keys (scheme, value, entity_id) VALUES ($1, $2, $3)
                 ON CONFLICT (scheme, value) DO UPDATE SET entity_id = EXCLUDED.entity_id",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[&scheme.as_str(), value, entity])
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn entity_mentions(&self, id: &EntityId) -> Result<Vec<KeptMention>, StoreError> {
        let statement = self
            .tx
            .prepare_cached("SELECT mention FROM mentions WHERE entity_id = $1")
            .await
            .map_err(classify)?;
        let rows = self.tx.query(&statement, &[id]).await.map_err(classify)?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(0).map_err(classify)?;
                serde_json::from_str(&text).map_err(|e| json_error("a kept mention", e))
            })
            .collect()
    }

    async fn prune_keys(&self, entity: &EntityId, keep: &[Key]) -> Result<(), StoreError> {
        let (schemes, values) = key_columns(keep);
        let statement = self
            .tx
            .prepare_cached(
                "DELETE FROM entity_keys k WHERE k.entity_id = $1
                 AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS kept(s, v)
                                 WHERE kept.s = k.scheme AND kept.v = k.value)",
            )
            .await
            .map_err(classify)?;
        self.tx
            .execute(&statement, &[entity, &schemes, &values])
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

    async fn write_entities(&self, records: &[UnifiedRecord]) -> Result<(), StoreError> {
        let statement = self
            .tx
            .prepare_cached("UPDATE entities SET version = $2, record = $3, redirect_to = $4 WHERE id = $1")
            .await
            .map_err(classify)?;
        for record in records {
            let text = serde_json::to_string(record).map_err(|e| json_error("a unified record", e))?;
            self.tx
                .execute(
                    &statement,
                    &[&record.unified_id, &record.version, &text, &record.merged_into],
                )
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn append_changes(&self, records: &[UnifiedRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(records.len()).map_err(|_| StoreError::Internal("too many changes".to_owned()))?;
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
                "INSERT INTO changes (position, entity_id, kind, version, record) VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(classify)?;
        let mut position = last - count;
        for record in records {
            position += 1;
            let text = serde_json::to_string(record).map_err(|e| json_error("a unified record", e))?;
            self.tx
                .execute(
                    &insert,
                    &[
                        &position,
                        &record.unified_id,
                        &record.kind.as_str(),
                        &record.version,
                        &text,
                    ],
                )
                .await
                .map_err(classify)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Reads

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
    rows.iter()
        .map(|row| {
            let text: String = row.try_get(1).map_err(classify)?;
            Ok(Change {
                position: row.try_get(0).map_err(classify)?,
                record: serde_json::from_str(&text).map_err(|e| json_error("a change", e))?,
            })
        })
        .collect()
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

pub(super) async fn insert_audit(client: &deadpool_postgres::Client, entry: &AuditEntry) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO audit_log (at, identity, action, subject, purpose, outcome)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(classify)?;
    client
        .execute(
            &statement,
            &[
                &entry.at,
                &entry.identity,
                &entry.action,
                &entry.subject,
                &entry.purpose,
                &entry.outcome,
            ],
        )
        .await
        .map_err(classify)?;
    Ok(())
}

pub(super) async fn select_audit(
    client: &deadpool_postgres::Client,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let statement = client
        .prepare_cached("SELECT at, identity, action, subject, purpose, outcome FROM audit_log ORDER BY id LIMIT $1")
        .await
        .map_err(classify)?;
    let rows = client
        .query(&statement, &[&crate::store::sql_limit(limit)])
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                at: row.try_get(0).map_err(classify)?,
                identity: row.try_get(1).map_err(classify)?,
                action: row.try_get(2).map_err(classify)?,
                subject: row.try_get(3).map_err(classify)?,
                purpose: row.try_get(4).map_err(classify)?,
                outcome: row.try_get(5).map_err(classify)?,
            })
        })
        .collect()
}
