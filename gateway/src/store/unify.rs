//! The steps by which both stores resolve a batch and keep its unified records, written
//! once over [`UnifyTx`], the few operations each store implements in its own SQL.
//!
//! Inside the batch's transaction, after the version rules:
//! 1. lock the batch's keys (in one global order) and read who owns them, and where the
//!    batch's records' mentions went before;
//! 2. [`resolve::plan`] decides;
//! 3. lock every existing entity the plan touches (in one global order) and check none
//!    was merged away meanwhile (else [`StoreError::Contention`]: the caller retries the
//!    transaction);
//! 4. create, merge, re-point mentions and keys as planned;
//! 5. rebuild the unified record of every entity touched ([`survivorship::unify`]) and
//!    append the changes to the feed, in commit order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tongban_adapters::model::{EntityKind, Slot};

use super::StoreError;
use crate::resolve::survivorship::{self, Authorities};
use crate::resolve::{self, Context, Incoming, Key, Previous, Target};
use crate::unified::{kind_of_id, EntityId, KeptMention, KeptRelation, MentionRef, Resolution, UnifiedRecord};

/// An entity row as locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntityRow {
    pub id: EntityId,
    pub version: i64,
    pub redirect_to: Option<EntityId>,
}

/// What a store's transaction offers the resolution steps. Implementations run inside
/// the batch's transaction; nothing here commits.
#[allow(async_fn_in_trait)] // used only generically inside this crate, on concrete types
pub(crate) trait UnifyTx {
    /// Serialises every transaction resolving one of these keys until commit.
    async fn lock_keys(&self, keys: &[Key]) -> Result<(), StoreError>;
    async fn key_owners(&self, keys: &[Key]) -> Result<HashMap<Key, EntityId>, StoreError>;
    /// Where the current mentions of these records point: `(record_type, source_id)`.
    async fn mentions_of_records(
        &self,
        records: &[(String, String)],
    ) -> Result<HashMap<MentionRef, Previous>, StoreError>;
    /// The entities with a mention in a record that also mentions one of `ids`: the only
    /// ones whose relations can name them.
    async fn related_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityId>, StoreError>;
    /// Locks the rows of these entities (given sorted) until commit and returns them.
    async fn lock_entities(&self, ids: &[EntityId]) -> Result<Vec<EntityRow>, StoreError>;
    /// Creates an entity with a new ID, version 0 and an empty record.
    async fn create_entity(&self, kind: EntityKind) -> Result<EntityId, StoreError>;
    /// Moves the mentions and keys of `absorbed` to `survivor` and redirects `absorbed`
    /// (and whatever redirected to it) to `survivor`.
    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError>;
    async fn delete_mentions(&self, record_type: &str, source_id: &str) -> Result<(), StoreError>;
    async fn insert_mention(&self, entity: &EntityId, mention: &KeptMention) -> Result<(), StoreError>;
    /// Points `key` at `entity`, whoever owned it.
    async fn point_key(&self, key: &Key, entity: &EntityId) -> Result<(), StoreError>;
    async fn entity_mentions(&self, id: &EntityId) -> Result<Vec<KeptMention>, StoreError>;
    /// Removes the keys of `entity` that are not in `keep`.
    async fn prune_keys(&self, entity: &EntityId, keep: &[Key]) -> Result<(), StoreError>;
    /// The survivors of those of `ids` that were merged away.
    async fn redirects(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, EntityId>, StoreError>;
    /// Stores each record as its entity's current state (version, record, redirect).
    async fn write_entities(&self, records: &[UnifiedRecord]) -> Result<(), StoreError>;
    /// Appends the records to the change feed, positions in commit order.
    async fn append_changes(&self, records: &[UnifiedRecord]) -> Result<(), StoreError>;
}

/// One record of the batch whose new version became current.
pub(crate) struct Current<'a> {
    /// Index of the batch item, to put the resolutions in its result.
    pub item: usize,
    pub incoming: Incoming<'a>,
}

/// Resolves the records that became current and keeps their unified records; returns
/// the resolutions per batch item.
pub(crate) async fn unify_batch<T: UnifyTx>(
    tx: &T,
    current: &[Current<'_>],
    authorities: &Authorities,
) -> Result<HashMap<usize, Vec<Resolution>>, StoreError> {
    if current.is_empty() {
        return Ok(HashMap::new());
    }
    let incoming: Vec<Incoming<'_>> = current.iter().map(|c| c.incoming).collect();

    // 1. Keys locked, then read: a concurrent transaction resolving the same key has
    // committed (or not started) by now.
    let keys = resolve::keys_of(&incoming);
    tx.lock_keys(&keys).await?;
    let key_owners = tx.key_owners(&keys).await?;
    let records: Vec<(String, String)> = incoming
        .iter()
        .map(|r| (r.contribution.record_type.as_str().to_owned(), r.source_id.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let previous = tx.mentions_of_records(&records).await?;

    // 2. Decide.
    let plan = resolve::plan(&Context { key_owners, previous }, &incoming);

    // 3. Lock what the plan builds on, and make sure it still stands. Entities related to
    // an absorbed one are rebuilt too, so that their relations name the survivor.
    let absorbed: Vec<EntityId> = plan.merges.iter().map(|(absorbed, _)| absorbed.clone()).collect();
    let mut rebuild: BTreeSet<EntityId> = plan.touched.clone();
    if !absorbed.is_empty() {
        rebuild.extend(
            tx.related_entities(&absorbed)
                .await?
                .into_iter()
                .filter(|id| !absorbed.contains(id)),
        );
    }
    let mut existing: BTreeSet<EntityId> = rebuild.clone();
    for (absorbed, survivor) in &plan.merges {
        existing.insert(absorbed.clone());
        if let Target::Existing(id) = survivor {
            existing.insert(id.clone());
        }
    }
    let existing: Vec<EntityId> = existing.into_iter().collect();
    let rows = tx.lock_entities(&existing).await?;
    if rows.len() != existing.len() || rows.iter().any(|row| row.redirect_to.is_some()) {
        return Err(StoreError::Contention(
            "an entity this batch resolves to was merged by a concurrent batch".to_owned(),
        ));
    }
    let versions: HashMap<EntityId, i64> = rows.into_iter().map(|row| (row.id, row.version)).collect();

    // 4. Apply.
    let mut created = Vec::with_capacity(plan.new_entities.len());
    for kind in &plan.new_entities {
        created.push(tx.create_entity(*kind).await?);
    }
    let id_of = |target: &Target| -> Result<EntityId, StoreError> {
        match target {
            Target::Existing(id) => Ok(id.clone()),
            Target::New(n) => created
                .get(*n)
                .cloned()
                .ok_or_else(|| StoreError::Internal(format!("the plan names new entity {n} it did not create"))),
        }
    };
    for (absorbed, survivor) in &plan.merges {
        tx.merge(absorbed, &id_of(survivor)?).await?;
    }
    for (record_type, source_id) in &records {
        tx.delete_mentions(record_type, source_id).await?;
    }
    let mut assigned: HashMap<&MentionRef, (EntityId, bool)> = HashMap::new();
    for assignment in &plan.assignments {
        assigned.insert(
            &assignment.mention,
            (id_of(&assignment.target)?, assignment.matched_existing),
        );
    }
    let mut resolutions: HashMap<usize, Vec<Resolution>> = HashMap::new();
    for record in current {
        let incoming = &record.incoming;
        let slots: HashMap<Slot, EntityId> = incoming
            .contribution
            .mentions
            .iter()
            .filter_map(|m| Some((m.slot, assigned.get(&incoming.mention_ref(m))?.0.clone())))
            .collect();
        let mut out = Vec::new();
        for mention in &incoming.contribution.mentions {
            let source = incoming.mention_ref(mention);
            let Some((entity, matched_existing)) = assigned.get(&source).cloned() else {
                return Err(StoreError::Internal(format!("mention {source:?} was not planned")));
            };
            let kept = KeptMention {
                relations: kept_relations(incoming, mention.slot, &slots),
                source,
                source_version: incoming.source_version,
                mention: mention.clone(),
            };
            tx.insert_mention(&entity, &kept).await?;
            out.push(Resolution {
                slot: mention.slot,
                unified_id: entity,
                matched_existing,
            });
        }
        resolutions.insert(record.item, out);
    }
    for (key, target) in &plan.keys {
        tx.point_key(key, &id_of(target)?).await?;
    }

    // 5. Rebuild and publish.
    let mut rebuilt = Vec::new();
    rebuild.extend(created.iter().cloned());
    for id in &rebuild {
        let kind = kind_of_id(id).ok_or_else(|| StoreError::Internal(format!("malformed entity id {id:?}")))?;
        let mentions = tx.entity_mentions(id).await?;
        // A key stays with an entity while one of its mentions carries it: a corrected
        // identity number must not keep pointing at the entity the typo led to. An entity
        // left without mentions keeps its keys, so the person it was finds it again.
        if !mentions.is_empty() {
            let keep: Vec<Key> = mentions
                .iter()
                .flat_map(|m| m.mention.keys())
                .map(|k| (k.scheme, k.value.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            tx.prune_keys(id, &keep).await?;
        }
        let related: Vec<EntityId> = mentions
            .iter()
            .flat_map(|m| m.relations.iter().filter_map(|r| r.other.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let redirects = tx.redirects(&related).await?;
        let version = versions.get(id).copied().unwrap_or(0) + 1;
        rebuilt.push(survivorship::unify(
            id,
            kind,
            version,
            &mentions,
            &redirects,
            authorities,
        ));
    }
    for (absorbed, survivor) in &plan.merges {
        let kind =
            kind_of_id(absorbed).ok_or_else(|| StoreError::Internal(format!("malformed entity id {absorbed:?}")))?;
        let version = versions.get(absorbed).copied().unwrap_or(0) + 1;
        rebuilt.push(UnifiedRecord::merged(absorbed.clone(), kind, version, id_of(survivor)?));
    }
    tx.write_entities(&rebuilt).await?;
    tx.append_changes(&rebuilt).await?;
    Ok(resolutions)
}

/// The relations of one mention, both those it states and those stated about it, with
/// the other side resolved.
fn kept_relations(incoming: &Incoming<'_>, slot: Slot, slots: &HashMap<Slot, EntityId>) -> Vec<KeptRelation> {
    let mut out = Vec::new();
    for relation in &incoming.contribution.relations {
        if relation.from == slot {
            out.push(KeptRelation {
                relation: relation.kind,
                outgoing: true,
                other: relation.to.and_then(|to| slots.get(&to).cloned()),
                detail: relation.detail.clone(),
            });
        } else if relation.to == Some(slot) {
            out.push(KeptRelation {
                relation: relation.kind,
                outgoing: false,
                other: slots.get(&relation.from).cloned(),
                detail: relation.detail.clone(),
            });
        }
    }
    out
}

/// The records of a batch that became current, last version of each record only (an
/// earlier one in the same batch was replaced before anyone could see it).
pub(crate) fn last_current<'a>(items: impl Iterator<Item = (usize, Incoming<'a>)>) -> Vec<Current<'a>> {
    let mut last: BTreeMap<(&'a str, &'a str), Current<'a>> = BTreeMap::new();
    for (item, incoming) in items {
        let key = (incoming.contribution.record_type.as_str(), incoming.source_id);
        last.insert(key, Current { item, incoming });
    }
    let mut out: Vec<Current<'a>> = last.into_values().collect();
    out.sort_by_key(|c| c.item);
    out
}
