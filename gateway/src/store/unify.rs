//! The steps by which both stores resolve a batch and keep its unified records, written
//! once over [`UnifyTx`], the few operations each store implements in its own SQL.
//!
//! Inside the batch's transaction, after the version rules:
//! 1. lock the batch's keys (in one global order) and read who owns them, and where the
//!    batch's records' mentions went before; lock the blocking keys of the mentions no
//!    owned key places and read their candidates, profiles and name frequencies, and
//!    the steward's standing decisions;
//! 2. [`resolve::plan`] decides;
//! 3. lock every existing entity the plan touches (in one global order) and check none
//!    was merged away meanwhile (else [`StoreError::Contention`]: the caller retries the
//!    transaction);
//! 4. create, merge, re-point mentions and keys as planned;
//! 5. rebuild the unified record and the match profile of every entity touched
//!    ([`survivorship::unify`]) and its mentions' contradictions with authorities
//!    ([`quality::contradictions`]), queue the pairs for review, and append the changes
//!    to the feed, in commit order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tongban_adapters::model::{EntityKind, QualityFlag, Slot};

use super::{AuditEntry, StoreError};
use crate::quality;
use crate::resolve::matching::profile::name_frequency_key;
use crate::resolve::matching::{Evidence, Profile};
use crate::resolve::survivorship;
use crate::resolve::{self, Context, Incoming, Key, Placement, Previous, Settings, Target};
use crate::unified::{kind_of_id, EntityId, KeptMention, KeptRelation, MentionRef, Resolution, UnifiedRecord};

/// Sends store operations together (`tokio::join!`: PostgreSQL runs them without a round
/// trip between them, in no guaranteed order) and binds each `name` to its operation's
/// value, or returns the error [`cause`] picks among theirs.
macro_rules! together {
    ($($name:ident = $operation:expr),+ $(,)?) => {
        let ($($name,)+) = tokio::join!($($operation),+);
        cause([$($name.as_ref().err()),+])?;
        $(let $name = $name?;)+
    };
}

/// An entity row as locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntityRow {
    pub id: EntityId,
    pub version: i64,
    pub redirect_to: Option<EntityId>,
    /// The unified record at `version`, as stored (JSON): a rebuild that gives the same
    /// record is not published again.
    pub record: String,
}

/// A new version of a unified record and its JSON, encoded once for the entity's row
/// and the feed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Published {
    pub record: UnifiedRecord,
    pub text: String,
}

impl Published {
    fn of(record: UnifiedRecord) -> Result<Self, StoreError> {
        let text = serde_json::to_string(&record)
            .map_err(|e| StoreError::Internal(format!("cannot encode a unified record: {e}")))?;
        Ok(Published { record, text })
    }
}

/// An entity's match profile and the blocking keys it is found under, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProfileRow {
    pub profile: Profile,
    pub blocks: Vec<String>,
}

/// A pair the resolver queued for a steward, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuedReview {
    pub mention: MentionRef,
    /// The entity the mention founded.
    pub entity: EntityId,
    pub candidate: EntityId,
    pub evidence: Evidence,
}

/// A review pair as a steward's decision finds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReviewRow {
    pub mention: MentionRef,
    pub entity: EntityId,
    pub candidate: EntityId,
    /// `open`, `same`, `different` or `superseded`.
    pub status: String,
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
    /// Creates one entity per kind, each with a new ID (in order), version 0 and an empty
    /// record.
    async fn create_entities(&self, kinds: &[EntityKind]) -> Result<Vec<EntityId>, StoreError>;
    /// Moves the mentions and keys of `absorbed` to `survivor` and redirects `absorbed`
    /// (and whatever redirected to it) to `survivor`.
    async fn merge(&self, absorbed: &EntityId, survivor: &EntityId) -> Result<(), StoreError>;
    /// Removes the current mentions of these records `(record_type, source_id)`.
    async fn delete_mentions(&self, records: &[(String, String)]) -> Result<(), StoreError>;
    /// Keeps each mention in its entity (no mention of these is held).
    async fn insert_mentions(&self, mentions: &[(EntityId, KeptMention)]) -> Result<(), StoreError>;
    /// Points each key at its entity, whoever owned it (each key named once).
    async fn point_keys(&self, keys: &[(Key, EntityId)]) -> Result<(), StoreError>;
    /// The current mentions of each of these entities (an entity without any is absent),
    /// each with its placement and contradictions.
    async fn entity_mentions(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Vec<KeptMention>>, StoreError>;
    /// Replaces current mentions' contradictions with authorities.
    async fn set_contradictions(&self, mentions: &[(MentionRef, Vec<QualityFlag>)]) -> Result<(), StoreError>;
    /// Removes, for each entity, its keys that are not in the list beside it.
    async fn prune_keys(&self, keep: &[(EntityId, Vec<Key>)]) -> Result<(), StoreError>;
    /// The survivors of those of `ids` that were merged away.
    async fn redirects(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, EntityId>, StoreError>;
    /// Stores each record as its entity's current state (version, record, redirect).
    async fn write_entities(&self, records: &[Published]) -> Result<(), StoreError>;
    /// Appends the records to the change feed, positions in commit order.
    async fn append_changes(&self, records: &[Published]) -> Result<(), StoreError>;

    // Probabilistic matching.

    /// Serialises every transaction matching on one of these blocking keys until commit.
    async fn lock_blocks(&self, blocks: &[String]) -> Result<(), StoreError>;
    /// Up to `per_block` live entities sharing each blocking key.
    async fn candidates(
        &self,
        blocks: &[String],
        per_block: usize,
    ) -> Result<HashMap<String, Vec<EntityId>>, StoreError>;
    async fn profiles(&self, ids: &[EntityId]) -> Result<HashMap<EntityId, Profile>, StoreError>;
    /// Entities counted under each name-frequency key.
    async fn name_counts(&self, keys: &[String]) -> Result<HashMap<String, u64>, StoreError>;
    /// Entity IDs handed out so far: the population name frequencies are relative to.
    async fn population(&self) -> Result<u64, StoreError>;
    /// Replaces each entity's profile and blocking keys (each entity named once); `None`
    /// removes them (an entity without mentions, or merged away, is nobody's candidate).
    async fn write_profiles(&self, profiles: &[(EntityId, Option<ProfileRow>)]) -> Result<(), StoreError>;
    async fn queue_review(&self, review: &QueuedReview) -> Result<(), StoreError>;

    // Stewardship.

    /// Mentions of these records a steward placed, and where.
    async fn pinned(&self, records: &[(String, String)]) -> Result<HashMap<MentionRef, EntityId>, StoreError>;
    /// Pairs (entity, other) a steward set apart, for entities among `ids`.
    async fn apart(&self, ids: &[EntityId]) -> Result<Vec<(EntityId, EntityId)>, StoreError>;
    /// A review pair, locked until commit.
    async fn review_pair(&self, id: i64) -> Result<Option<ReviewRow>, StoreError>;
    async fn close_review(&self, id: i64, status: &str, by: &str) -> Result<(), StoreError>;
    /// The entity a current mention is in.
    async fn mention_entity(&self, mention: &MentionRef) -> Result<Option<EntityId>, StoreError>;
    /// Moves a mention to another entity, placed by a steward.
    async fn move_mention(&self, mention: &MentionRef, to: &EntityId, placement: &Placement) -> Result<(), StoreError>;
    async fn pin(&self, mention: &MentionRef, entity: &EntityId) -> Result<(), StoreError>;
    /// Sets (or, with `apart` false, clears) a steward's "different entities".
    async fn set_apart(&self, a: &EntityId, b: &EntityId, apart: bool) -> Result<(), StoreError>;
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
}

/// One record of the batch whose new version became current.
pub(crate) struct Current<'a> {
    /// Index of the batch item, to put the resolutions in its result.
    pub item: usize,
    pub incoming: Incoming<'a>,
}

/// Resolves the records that became current and keeps their unified records; returns
/// the resolutions per batch item. Runs in the `resolve` span and is timed.
pub(crate) async fn unify_batch<T: UnifyTx>(
    tx: &T,
    current: &[Current<'_>],
    settings: &Settings,
) -> Result<HashMap<usize, Vec<Resolution>>, StoreError> {
    use tracing::Instrument as _;
    let span = tracing::info_span!("stage", otel.name = "resolve", records = current.len());
    let started = std::time::Instant::now();
    let resolved = resolve_and_keep(tx, current, settings).instrument(span).await;
    crate::telemetry::metrics::metrics().stage(crate::telemetry::metrics::Stage::Resolve, started.elapsed());
    resolved
}

async fn resolve_and_keep<T: UnifyTx>(
    tx: &T,
    current: &[Current<'_>],
    settings: &Settings,
) -> Result<HashMap<usize, Vec<Resolution>>, StoreError> {
    if current.is_empty() {
        return Ok(HashMap::new());
    }
    let incoming: Vec<Incoming<'_>> = current.iter().map(|c| c.incoming).collect();

    // 1. Keys locked, then read: a concurrent transaction resolving the same key has
    // committed (or not started) by now. The same for blocking keys.
    //
    // Statements that do not depend on each other are sent together (`together!`).
    let keys = resolve::keys_of(&incoming);
    let records: Vec<(String, String)> = incoming
        .iter()
        .map(|r| (r.contribution.record_type.as_str().to_owned(), r.source_id.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tx.lock_keys(&keys).await?;
    together!(
        key_owners = tx.key_owners(&keys),
        previous = tx.mentions_of_records(&records),
        pinned = tx.pinned(&records),
    );
    let mut context = Context {
        key_owners,
        previous,
        pinned,
        ..Context::default()
    };
    if settings.matching.enabled {
        let (blocks, names) = resolve::lookups_of(&incoming);
        tx.lock_blocks(&blocks).await?;
        together!(
            candidates = tx.candidates(&blocks, settings.matching.candidates_per_block),
            name_counts = tx.name_counts(&names),
            population = tx.population(),
        );
        context.candidates = candidates;
        context.name_counts = name_counts;
        context.population = population;
        let compared: Vec<EntityId> = context
            .candidates
            .values()
            .flatten()
            .chain(context.key_owners.values())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        context.profiles = tx.profiles(&compared).await?;
    }
    let involved: Vec<EntityId> = context
        .key_owners
        .values()
        .chain(context.candidates.values().flatten())
        .chain(context.pinned.values())
        .chain(context.previous.values().map(|previous| &previous.entity))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    context.apart = tx.apart(&involved).await?.into_iter().collect();

    // 2. Decide.
    let plan = resolve::plan(&context, &incoming, &settings.matching);

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
    let standing = lock_standing(tx, existing).await?;

    // 4. Apply, a statement per kind of row rather than per row.
    let created = tx.create_entities(&plan.new_entities).await?;
    if created.len() != plan.new_entities.len() {
        return Err(StoreError::Internal(format!(
            "{} entities created of the {} planned",
            created.len(),
            plan.new_entities.len()
        )));
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
    let mut merges = Vec::with_capacity(plan.merges.len());
    for (absorbed, survivor) in &plan.merges {
        let survivor = id_of(survivor)?;
        tx.merge(absorbed, &survivor).await?;
        merges.push((absorbed.clone(), survivor));
    }
    // Deleted before the batch's mentions are inserted: the same rows, for a record
    // pushed again.
    tx.delete_mentions(&records).await?;
    let mut assigned: HashMap<&MentionRef, (EntityId, bool, &Placement)> = HashMap::new();
    for assignment in &plan.assignments {
        assigned.insert(
            &assignment.mention,
            (
                id_of(&assignment.target)?,
                assignment.matched_existing,
                &assignment.placement,
            ),
        );
    }
    let mut resolutions: HashMap<usize, Vec<Resolution>> = HashMap::new();
    let mut kept = Vec::new();
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
            let Some((entity, matched_existing, placement)) = assigned.get(&source).cloned() else {
                return Err(StoreError::Internal(format!("mention {source:?} was not planned")));
            };
            out.push(Resolution {
                slot: mention.slot,
                unified_id: entity.clone(),
                matched_existing,
                resolved_by: placement.kind(),
            });
            kept.push((
                entity,
                KeptMention {
                    relations: kept_relations(incoming, mention.slot, &slots),
                    source,
                    source_version: incoming.source_version,
                    mention: mention.clone(),
                    placement: Some(placement.clone()),
                    // Worked out when its entity is rebuilt, below.
                    contradictions: Vec::new(),
                },
            ));
        }
        resolutions.insert(record.item, out);
    }
    let keys = plan
        .keys
        .iter()
        .map(|(key, target)| Ok((key.clone(), id_of(target)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    together!(_inserted = tx.insert_mentions(&kept), _pointed = tx.point_keys(&keys),);
    // An entity this batch created has no mention but these: publish need not read them back.
    let created_ids: BTreeSet<&EntityId> = created.iter().collect();
    let mut fresh: HashMap<EntityId, Vec<KeptMention>> = HashMap::new();
    for (entity, mention) in kept {
        if created_ids.contains(&entity) {
            fresh.entry(entity).or_default().push(mention);
        }
    }
    for review in &plan.reviews {
        tx.queue_review(&QueuedReview {
            mention: review.mention.clone(),
            entity: id_of(&review.target)?,
            candidate: id_of(&review.candidate)?,
            evidence: review.evidence.clone(),
        })
        .await?;
    }

    // 5. Rebuild and publish.
    rebuild.extend(created.iter().cloned());
    publish(tx, &rebuild, fresh, &merges, &standing, settings).await?;
    Ok(resolutions)
}

/// Locks the rows of these existing entities (in ID order) and checks that none was
/// merged away meanwhile; returns their versions.
pub(crate) async fn lock_standing<T: UnifyTx>(
    tx: &T,
    ids: BTreeSet<EntityId>,
) -> Result<HashMap<EntityId, EntityRow>, StoreError> {
    let ids: Vec<EntityId> = ids.into_iter().collect();
    let rows = tx.lock_entities(&ids).await?;
    if rows.len() != ids.len() || rows.iter().any(|row| row.redirect_to.is_some()) {
        return Err(StoreError::Contention(
            "an entity this batch resolves to was merged by a concurrent batch".to_owned(),
        ));
    }
    Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
}

/// Rebuilds the unified record and the match profile of each entity of `rebuild`,
/// records the merges, and appends every new record to the feed. `fresh` holds every
/// mention of the entities the transaction created, which are not read back.
pub(crate) async fn publish<T: UnifyTx>(
    tx: &T,
    rebuild: &BTreeSet<EntityId>,
    fresh: HashMap<EntityId, Vec<KeptMention>>,
    merges: &[(EntityId, EntityId)],
    standing: &HashMap<EntityId, EntityRow>,
    settings: &Settings,
) -> Result<(), StoreError> {
    let ids: Vec<EntityId> = rebuild.iter().cloned().collect();
    let held: Vec<EntityId> = ids.iter().filter(|id| !fresh.contains_key(*id)).cloned().collect();
    together!(pairs = tx.apart(&ids), mentions_of = tx.entity_mentions(&held));
    let mut mentions_of = mentions_of;
    let mut apart: HashMap<EntityId, Vec<EntityId>> = HashMap::new();
    for (id, other) in pairs {
        apart.entry(id).or_default().push(other);
    }
    mentions_of.extend(fresh);
    let related: Vec<EntityId> = mentions_of
        .values()
        .flatten()
        .flat_map(|m| m.relations.iter().filter_map(|r| r.other.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let redirects = tx.redirects(&related).await?;

    let mut rebuilt = Vec::new();
    let mut keys_kept = Vec::new();
    let mut profiles = Vec::with_capacity(rebuild.len() + merges.len());
    let mut contradicting = Vec::new();
    for id in rebuild {
        let kind = kind_of_id(id).ok_or_else(|| StoreError::Internal(format!("malformed entity id {id:?}")))?;
        let mentions = mentions_of.remove(id).unwrap_or_default();
        if mentions.is_empty() {
            // An entity left without mentions keeps its keys, so the person it was finds
            // it again; it is nobody's candidate.
            profiles.push((id.clone(), None));
        } else {
            // A key stays with an entity while one of its mentions carries it: a corrected
            // identity number must not keep pointing at the entity the typo led to.
            let keep: Vec<Key> = resolve::keys_of_mentions(mentions.iter().map(|m| &m.mention))
                .into_iter()
                .collect();
            keys_kept.push((id.clone(), keep));
            let profile = Profile::of_mentions(mentions.iter().map(|m| &m.mention));
            let mut blocks = profile.blocks(kind);
            blocks.extend(profile.names.iter().map(|name| name_frequency_key(kind, name)));
            let blocks: Vec<String> = blocks.into_iter().collect();
            profiles.push((id.clone(), Some(ProfileRow { profile, blocks })));
        }
        let before = standing.get(id);
        let mut record = survivorship::unify(
            id,
            kind,
            before.map_or(0, |row| row.version),
            &mentions,
            &redirects,
            &settings.authorities,
        );
        record.distinct_from = apart.remove(id).unwrap_or_default();
        record.distinct_from.sort();
        // The quality report's contradictions with authorities follow the record, even
        // when the record itself is unchanged (a mention re-inserted starts without).
        let mut contradictions = quality::contradictions(&record, &mentions);
        for mention in &mentions {
            let now = contradictions.remove(&mention.source).unwrap_or_default();
            if now != mention.contradictions {
                contradicting.push((mention.source.clone(), now));
            }
        }
        // A record resolved again to the same unified record changes nothing: no new
        // version, nothing in the feed.
        if let Some(before) = before.filter(|before| before.version > 0) {
            let text = serde_json::to_string(&record)
                .map_err(|e| StoreError::Internal(format!("cannot encode a unified record: {e}")))?;
            if text == before.record {
                continue;
            }
        }
        record.version += 1;
        rebuilt.push(Published::of(record)?);
    }
    for (absorbed, survivor) in merges {
        let kind =
            kind_of_id(absorbed).ok_or_else(|| StoreError::Internal(format!("malformed entity id {absorbed:?}")))?;
        let version = standing.get(absorbed).map_or(0, |row| row.version) + 1;
        profiles.push((absorbed.clone(), None));
        rebuilt.push(Published::of(UnifiedRecord::merged(
            absorbed.clone(),
            kind,
            version,
            survivor.clone(),
        ))?);
    }
    // Rows of different tables, sent together; the feed clock (`append_changes`) last,
    // once they are written.
    together!(
        _pruned = tx.prune_keys(&keys_kept),
        _profiled = tx.write_profiles(&profiles),
        _contradicted = tx.set_contradictions(&contradicting),
        _written = tx.write_entities(&rebuilt),
    );
    tx.append_changes(&rebuilt).await?;
    Ok(())
}

/// The error to report for statements sent together, if any failed. After a failed
/// statement PostgreSQL answers the transaction's later ones with "transaction aborted"
/// (an `Internal` error here), and which answer a join sees first is not the order they
/// ran in: contention (retried) or an outage (UNAVAILABLE) among them is the cause.
fn cause<const N: usize>(errors: [Option<&StoreError>; N]) -> Result<(), StoreError> {
    let errors: Vec<&StoreError> = errors.into_iter().flatten().collect();
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let chosen = errors
        .iter()
        .find(|e| matches!(e, StoreError::Contention(_)))
        .or_else(|| errors.iter().find(|e| matches!(e, StoreError::Unavailable(_))))
        .unwrap_or(first);
    Err((*chosen).clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_of_statements_sent_together_is_the_contention_or_outage_among_them() {
        let aborted = StoreError::Internal("current transaction is aborted".to_owned());
        let timeout = StoreError::Unavailable("canceling statement due to statement timeout".to_owned());
        let deadlock = StoreError::Contention("deadlock detected".to_owned());
        assert!(cause::<2>([None, None]).is_ok());
        assert!(matches!(
            cause([Some(&aborted), Some(&timeout)]),
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            cause([Some(&aborted), Some(&timeout), Some(&deadlock)]),
            Err(StoreError::Contention(_))
        ));
        assert!(matches!(cause([None, Some(&aborted)]), Err(StoreError::Internal(_))));
    }
}
