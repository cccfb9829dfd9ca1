//! SQLite side of unified records: the resolution operations inside a batch's
//! transaction, and the reads of the feed and of entities.
//!
//! SQLite has one writer at a time (`BEGIN IMMEDIATE`), so the locks the PostgreSQL
//! store takes are no-ops here, and feed positions are in commit order by construction.
//! The operations are synchronous; [`UnifyTx`]'s futures complete at their first poll.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use tongban_adapters::model::EntityKind;

use super::{classify, from_unix_millis, unix_millis};
use crate::resolve::{Key, Previous};
use crate::store::unify::{EntityRow, UnifyTx};
use crate::store::{sql_limit, AuditEntry, StoreError};
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
                "SELECT role, idx, entity_id, match_name FROM mentions WHERE record_type = ?1 AND source_id = ?2",
            )
            .map_err(classify)?;
        let mut out = HashMap::new();
        for (record_type, source_id) in records {
            let rows = statement
                .query_map(params![record_type, source_id], |row| {
                    let previous = Previous {
                        entity: row.get(2)?,
                        match_name: row.get(3)?,
                    };
                    Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?, previous))
                })
                .map_err(classify)?;
            for row in rows {
                let (role, index, previous) = row.map_err(classify)?;
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
            .prepare_cached("SELECT version, redirect_to FROM entities WHERE id = ?1")
            .map_err(classify)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row = statement
                .query_row([id], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
                })
                .optional()
                .map_err(classify)?;
            if let Some((version, redirect_to)) = row {
                rows.push(EntityRow {
                    id: id.clone(),
                    version,
                    redirect_to,
                });
            }
        }
        Ok(rows)
    }

    async fn create_entity(&self, kind: EntityKind) -> Result<EntityId, StoreError> {
        let number: i64 = self
            .tx
            .query_row(
                "UPDATE entity_numbers SET last = last + 1 WHERE id = 1 RETURNING last",
                [],
                |row| row.get(0),
            )
            .map_err(classify)?;
        let id = entity_id(kind, number);
        self.tx
            .prepare_cached("INSERT INTO entities (id, kind, version, record) VALUES (?1, ?2, 0, '{}')")
            .and_then(|mut s| s.execute(params![id, kind.as_str()]))
            .map_err(classify)?;
        Ok(id)
    }

    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError> {
        for sql in [
            "UPDATE mentions SET entity_id = ?2 WHERE entity_id = ?1",
            "UPDATE entity_keys SET entity_id = ?2 WHERE entity_id = ?1",
            "UPDATE entities SET redirect_to = ?2 WHERE id = ?1 OR redirect_to = ?1",
        ] {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![absorbed, survivor]))
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn delete_mentions(&self, record_type: &str, source_id: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM mentions WHERE record_type = ?1 AND source_id = ?2")
            .and_then(|mut s| s.execute(params![record_type, source_id]))
            .map_err(classify)?;
        Ok(())
    }

    async fn insert_mention(&self, entity: &EntityId, mention: &KeptMention) -> Result<(), StoreError> {
        let text = serde_json::to_string(mention).map_err(|e| json_error("a mention", e))?;
        self.tx
            .prepare_cached(
                "INSERT INTO mentions (record_type, source_id, role, idx, entity_id, source_version, mention, match_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    mention.source.record_type,
                    mention.source.source_id,
                    mention.source.role,
                    mention.source.index,
                    entity,
                    mention.source_version,
                    text,
                    mention.mention.match_name
                ])
            })
            .map_err(classify)?;
        Ok(())
    }

    async fn point_key(&self, (scheme, value): &Key, entity: &EntityId) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO entity_keys (scheme, value, entity_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scheme, value) DO UPDATE SET entity_id = excluded.entity_id",
            )
            .and_then(|mut s| s.execute(params![scheme.as_str(), value, entity]))
            .map_err(classify)?;
        Ok(())
    }

    async fn entity_mentions(&self, id: &EntityId) -> Result<Vec<KeptMention>, StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT mention FROM mentions WHERE entity_id = ?1")
            .map_err(classify)?;
        let texts = statement
            .query_map([id], |row| row.get::<_, String>(0))
            .map_err(classify)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(classify)?;
        texts
            .iter()
            .map(|text| serde_json::from_str(text).map_err(|e| json_error("a kept mention", e)))
            .collect()
    }

    async fn prune_keys(&self, entity: &EntityId, keep: &[Key]) -> Result<(), StoreError> {
        let held: Vec<(String, String)> = self
            .tx
            .prepare_cached("SELECT scheme, value FROM entity_keys WHERE entity_id = ?1")
            .and_then(|mut s| {
                s.query_map([entity], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(classify)?;
        let keep: std::collections::HashSet<(&str, &str)> = keep
            .iter()
            .map(|(scheme, value)| (scheme.as_str(), value.as_str()))
            .collect();
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM entity_keys WHERE scheme = ?1 AND value = ?2 AND entity_id = ?3")
            .map_err(classify)?;
        for (scheme, value) in &held {
            if !keep.contains(&(scheme.as_str(), value.as_str())) {
                delete.execute(params![scheme, value, entity]).map_err(classify)?;
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

    async fn write_entities(&self, records: &[UnifiedRecord]) -> Result<(), StoreError> {
        let mut statement = self
            .tx
            .prepare_cached("UPDATE entities SET version = ?2, record = ?3, redirect_to = ?4 WHERE id = ?1")
            .map_err(classify)?;
        for record in records {
            let text = serde_json::to_string(record).map_err(|e| json_error("a unified record", e))?;
            statement
                .execute(params![record.unified_id, record.version, text, record.merged_into])
                .map_err(classify)?;
        }
        Ok(())
    }

    async fn append_changes(&self, records: &[UnifiedRecord]) -> Result<(), StoreError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "INSERT INTO changes (position, entity_id, kind, version, record, committed_at)
                 VALUES ((SELECT coalesce(max(position), 0) + 1 FROM changes), ?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(classify)?;
        for record in records {
            let text = serde_json::to_string(record).map_err(|e| json_error("a unified record", e))?;
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
}

// ---------------------------------------------------------------------------------------
// Reads

pub(super) fn select_changes(
    connection: &rusqlite::Connection,
    after: i64,
    kinds: &[EntityKind],
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let person = kinds.is_empty() || kinds.contains(&EntityKind::Person);
    let organisation = kinds.is_empty() || kinds.contains(&EntityKind::Organisation);
    let mut statement = connection
        .prepare_cached(
            "SELECT position, record FROM changes
             WHERE position > ?1 AND ((kind = 'person' AND ?2) OR (kind = 'organisation' AND ?3))
             ORDER BY position LIMIT ?4",
        )
        .map_err(classify)?;
    let rows = statement
        .query_map(params![after, person, organisation, sql_limit(limit)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(classify)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(classify)?;
    rows.into_iter()
        .map(|(position, text)| {
            Ok(Change {
                position,
                record: serde_json::from_str(&text).map_err(|e| json_error("a change", e))?,
            })
        })
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

pub(super) fn insert_audit(connection: &rusqlite::Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO audit_log (at, identity, action, subject, purpose, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                unix_millis(entry.at),
                entry.identity,
                entry.action,
                entry.subject,
                entry.purpose,
                entry.outcome
            ])
        })
        .map_err(classify)?;
    Ok(())
}

pub(super) fn select_audit(connection: &rusqlite::Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT at, identity, action, subject, purpose, outcome FROM audit_log ORDER BY id LIMIT ?1")
        .map_err(classify)?;
    let rows = statement
        .query_map([sql_limit(limit)], |row| {
            Ok(AuditEntry {
                at: from_unix_millis(row.get(0)?),
                identity: row.get(1)?,
                action: row.get(2)?,
                subject: row.get(3)?,
                purpose: row.get(4)?,
                outcome: row.get(5)?,
            })
        })
        .map_err(classify)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(classify)
}
