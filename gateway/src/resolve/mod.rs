//! Resolution: which unified entity is each mention?
//!
//! **The resolver decides, the store persists.** Everything here is pure: the store
//! loads a [`Context`] (who owns the keys the batch carries, where the batch's records'
//! mentions went before, the candidates its blocking keys find, the steward's standing
//! decisions), [`plan`] decides, the store applies the [`Plan`] and then asks
//! [`survivorship::unify`] for the new unified record of every entity it touched.
//!
//! In order, for each mention (DESIGN.md, Resolution):
//! 1. a mention a steward placed stays where the steward put it;
//! 2. keys: a mention whose keys are owned by an entity joins it, unless everything
//!    else it says contradicts that entity (then the pair goes to review); keys owned
//!    by several entities prove they are one, and the oldest survives while the others
//!    redirect to it, except where a steward said they differ;
//! 3. a mention without an owned key keeps the entity its slot had in the record's
//!    previous version while it names the same person or organisation;
//! 4. otherwise [`matching`] scores the candidates its blocking keys find: link, queue
//!    for review (the mention founds its own entity meanwhile), or found a new entity.

pub mod matching;
pub mod survivorship;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tongban_adapters::model::{EntityKind, IdScheme, Mention};

use crate::unified::{kind_of_id, Contribution, EntityId, MentionRef};
use matching::{Evidence, Field, MatchSettings, NameFrequency, Profile, Verdict};
use survivorship::Authorities;

/// How resolution is configured: survivorship's authorities and matching's weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub authorities: Authorities,
    pub matching: MatchSettings,
}

/// A deterministic key: an identifier scheme and value.
pub type Key = (IdScheme, String);

/// One source record whose new current version the batch brings.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub source_id: &'a str,
    pub source_version: i64,
    pub contribution: &'a Contribution,
}

impl Incoming<'_> {
    pub fn mention_ref(&self, mention: &Mention) -> MentionRef {
        MentionRef::new(self.contribution.record_type, self.source_id, mention.slot)
    }
}

/// What the store knows that resolution needs, read after the batch's keys are locked.
#[derive(Debug, Default, Clone)]
pub struct Context {
    /// The live entity owning each key of the batch that the store holds.
    pub key_owners: HashMap<Key, EntityId>,
    /// Where each mention of the batch's records resolved in their previous versions.
    pub previous: HashMap<MentionRef, Previous>,
    /// The live entities sharing each blocking key of the batch's mentions.
    pub candidates: HashMap<String, Vec<EntityId>>,
    /// The match profiles of the candidates and of the key owners.
    pub profiles: HashMap<EntityId, Profile>,
    /// Entities carrying each name (by [`matching::profile::name_frequency_key`]).
    pub name_counts: HashMap<String, u64>,
    /// Entities in the store, for name frequencies.
    pub population: u64,
    /// Mentions a steward placed, and where: they stay there.
    pub pinned: HashMap<MentionRef, EntityId>,
    /// Entities a steward said are different, both orders.
    pub apart: HashSet<(EntityId, EntityId)>,
}

impl NameFrequency for Context {
    fn count(&self, kind: EntityKind, name: &str) -> u64 {
        self.name_counts
            .get(&matching::profile::name_frequency_key(kind, name))
            .copied()
            .unwrap_or(0)
    }

    fn population(&self) -> u64 {
        self.population
    }
}

/// A mention of a record's previous version.
#[derive(Debug, Clone, PartialEq)]
pub struct Previous {
    pub entity: EntityId,
    /// Its comparable name (`Mention::match_name`).
    pub match_name: String,
    /// What placed it there.
    pub placement: Option<Placement>,
}

/// Why a mention is in its entity: kept with the mention, shown by `Explain`.
/// Stored as JSON tagged by `by` (`{"by": "matched", "evidence": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Placement {
    /// A key the entity holds; with the rest of the evidence where the entity had a
    /// profile to compare.
    Key {
        scheme: IdScheme,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<Evidence>,
    },
    /// The slot's entity in the record's previous version, still naming the same; what
    /// placed it there first.
    Previous {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first: Option<Box<Placement>>,
    },
    /// Probabilistic matching linked it, with this evidence.
    Matched { evidence: Evidence },
    /// Nothing linked it: it founded the entity. `best` is the strongest candidate it
    /// was compared with, if any.
    Founded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best: Option<Evidence>,
    },
    /// It founded the entity while a steward decides whether it belongs to a candidate.
    Queued { evidence: Evidence },
    /// A steward put it here.
    Steward { decision: String },
}

impl Placement {
    /// Its name in push answers and explanations (the JSON tag): `key`, `previous`,
    /// `matched`, `founded`, `queued` or `steward`.
    pub fn kind(&self) -> &'static str {
        match self {
            Placement::Key { .. } => "key",
            Placement::Previous { .. } => "previous",
            Placement::Matched { .. } => "matched",
            Placement::Founded { .. } => "founded",
            Placement::Queued { .. } => "queued",
            Placement::Steward { .. } => "steward",
        }
    }

    /// The placement a record's next version inherits when its slot stays.
    fn carried(&self) -> Placement {
        match self {
            Placement::Previous { first } => Placement::Previous { first: first.clone() },
            other => Placement::Previous {
                first: Some(Box::new(other.clone())),
            },
        }
    }
}

/// Every key the batch's mentions carry, sorted: the order in which stores lock them.
pub fn keys_of(incoming: &[Incoming<'_>]) -> Vec<Key> {
    keys_of_mentions(incoming.iter().flat_map(|record| record.contribution.mentions.iter()))
        .into_iter()
        .collect()
}

/// The keys these mentions carry.
pub fn keys_of_mentions<'a>(mentions: impl IntoIterator<Item = &'a Mention>) -> BTreeSet<Key> {
    mentions
        .into_iter()
        .flat_map(|mention| mention.keys())
        .map(|identifier| (identifier.scheme, identifier.value.clone()))
        .collect()
}

/// What probabilistic matching will look up for the batch's mentions: their blocking
/// keys (a mention no key places looks for its entity; one a key places looks for
/// entities its own entity now matches) and the frequency keys of their names, sorted.
pub fn lookups_of(incoming: &[Incoming<'_>]) -> (Vec<String>, Vec<String>) {
    let mut blocks = BTreeSet::new();
    let mut names = BTreeSet::new();
    for mention in incoming.iter().flat_map(|record| record.contribution.mentions.iter()) {
        let profile = Profile::of_mention(mention);
        for name in &profile.names {
            names.insert(matching::profile::name_frequency_key(mention.kind, name));
        }
        blocks.extend(profile.blocks(mention.kind));
    }
    (blocks.into_iter().collect(), names.into_iter().collect())
}

/// An entity as the plan refers to it: one the store holds, or the `n`-th one the plan
/// creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Existing(EntityId),
    New(usize),
}

/// Where one mention goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub mention: MentionRef,
    pub target: Target,
    /// The mention joined an entity that existed before it (held by the store, or
    /// founded by an earlier mention of the batch) and that its slot did not already
    /// belong to: a department was not asked again for what the hub held.
    pub matched_existing: bool,
    pub placement: Placement,
}

/// A pair for a steward: the mention founded `target` and may be `candidate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub mention: MentionRef,
    pub target: Target,
    pub candidate: Target,
    pub evidence: Evidence,
}

/// What the store must do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Kinds of the entities to create; `Target::New(n)` is the `n`-th.
    pub new_entities: Vec<EntityKind>,
    /// One per mention of the incoming records, in batch order.
    pub assignments: Vec<Assignment>,
    /// Existing entities proved to be another one: (absorbed, survivor). The absorbed
    /// entity's mentions and keys move to the survivor and its ID redirects there.
    pub merges: Vec<(EntityId, Target)>,
    /// Keys to point at their entity: every key the batch carries (keys of absorbed
    /// entities are moved by the merge itself), except those of mentions that did not
    /// follow them.
    pub keys: Vec<(Key, Target)>,
    /// Existing entities whose unified record must be rebuilt: they gain or lose
    /// mentions. Absorbed entities are not in it; survivors are.
    pub touched: BTreeSet<EntityId>,
    /// Pairs queued for a steward.
    pub reviews: Vec<Review>,
}

/// Decides where every mention of `incoming` goes.
pub fn plan(context: &Context, incoming: &[Incoming<'_>], settings: &MatchSettings) -> Plan {
    let mut state = Planning {
        context,
        settings,
        parent: HashMap::new(),
        keys: HashMap::new(),
        kinds: Vec::new(),
        profiles: HashMap::new(),
        blocks: HashMap::new(),
        reviews: Vec::new(),
    };
    let mut placed = Vec::new();
    for record in incoming {
        for mention in &record.contribution.mentions {
            let mention_ref = record.mention_ref(mention);
            let (node, joined, placement) = plan_mention(&mut state, mention, &mention_ref);
            placed.push((mention_ref, node, joined, placement));
        }
    }

    let mut plan = Plan {
        new_entities: state.kinds.clone(),
        ..Plan::default()
    };
    for (mention, node, joined, placement) in placed {
        let target = state.root(&node);
        let previously = context.previous.get(&mention).map(|p| &p.entity);
        let matched_existing = joined && !matches!((&target, previously), (Target::Existing(t), Some(p)) if t == p);
        if let Target::Existing(id) = &target {
            plan.touched.insert(id.clone());
        }
        plan.assignments.push(Assignment {
            mention,
            target,
            matched_existing,
            placement,
        });
    }
    // Entities that lose a mention: the record's previous version put it there.
    for record in incoming {
        for (mention, previous) in &context.previous {
            if mention.record_type == record.contribution.record_type.as_str() && mention.source_id == record.source_id
            {
                plan.touched.insert(previous.entity.clone());
            }
        }
    }
    let nodes: Vec<Target> = state.parent.keys().cloned().collect();
    for node in nodes {
        let root = state.root(&node);
        if let Target::Existing(absorbed) = &node {
            if root != node {
                plan.touched.remove(absorbed);
                plan.merges.push((absorbed.clone(), root.clone()));
                if let Target::Existing(survivor) = &root {
                    plan.touched.insert(survivor.clone());
                }
            }
        }
    }
    plan.merges.sort();
    // Every key of the batch is written, even one its entity owns already: a concurrent
    // batch may have pruned it from that entity since it was read (a withdrawn mention).
    let mut keys: Vec<(Key, Target)> = state
        .keys
        .iter()
        .map(|(key, node)| (key.clone(), node.clone()))
        .collect();
    for (_, node) in &mut keys {
        *node = state.root(node);
    }
    keys.sort();
    plan.keys = keys;
    let reviews = std::mem::take(&mut state.reviews);
    for mut review in reviews {
        review.target = state.root(&review.target);
        review.candidate = state.root(&review.candidate);
        if review.target != review.candidate {
            plan.reviews.push(review);
        }
    }
    plan
}

/// The planner's working state: a union-find over entities, and what matching knows of
/// them so far in the batch.
struct Planning<'a> {
    context: &'a Context,
    settings: &'a MatchSettings,
    /// Union-find parent of every entity seen; roots map to themselves.
    parent: HashMap<Target, Target>,
    /// Keys seen so far in the batch and their entity.
    keys: HashMap<Key, Target>,
    kinds: Vec<EntityKind>,
    /// Profiles of the entities the batch has placed mentions in, with those mentions
    /// (by root).
    profiles: HashMap<Target, Profile>,
    /// Blocking keys of the mentions placed so far in the batch.
    blocks: HashMap<String, Vec<Target>>,
    reviews: Vec<Review>,
}

impl Planning<'_> {
    fn root(&mut self, node: &Target) -> Target {
        let mut current = node.clone();
        while let Some(parent) = self.parent.get(&current) {
            if *parent == current {
                break;
            }
            current = parent.clone();
        }
        current
    }

    fn add(&mut self, node: &Target) {
        self.parent.entry(node.clone()).or_insert_with(|| node.clone());
    }

    /// A steward said these two (roots) are different entities.
    fn apart(&self, a: &Target, b: &Target) -> bool {
        match (a, b) {
            (Target::Existing(a), Target::Existing(b)) => {
                self.context.apart.contains(&(a.clone(), b.clone()))
                    || self.context.apart.contains(&(b.clone(), a.clone()))
            }
            _ => false,
        }
    }

    /// Unites two entities; the older survives (an existing one over a new one, the
    /// smaller ID, which was allocated first). Entities a steward set apart stay apart:
    /// the first is returned.
    fn union(&mut self, a: &Target, b: &Target) -> Target {
        let (a, b) = (self.root(a), self.root(b));
        if a == b || self.apart(&a, &b) {
            return a;
        }
        let (survivor, absorbed) = if a < b { (a, b) } else { (b, a) };
        self.parent.insert(absorbed.clone(), survivor.clone());
        if let Some(profile) = self.profiles.remove(&absorbed) {
            let mut merged = self.profile_of(&survivor).into_owned();
            merged.extend(&profile);
            self.profiles.insert(survivor.clone(), merged);
        }
        survivor
    }

    fn kind_of(&self, node: &Target) -> Option<EntityKind> {
        match node {
            Target::Existing(id) => kind_of_id(id),
            Target::New(n) => self.kinds.get(*n).copied(),
        }
    }

    fn create(&mut self, kind: EntityKind) -> Target {
        let node = Target::New(self.kinds.len());
        self.kinds.push(kind);
        self.add(&node);
        node
    }

    /// What is known of a root's values: the store's profile plus the batch's mentions.
    /// Borrowed: matching compares a mention with many candidates, and a copy of each
    /// candidate's profile per comparison was most of the planner's time.
    fn profile_of(&self, root: &Target) -> Cow<'_, Profile> {
        if let Some(profile) = self.profiles.get(root) {
            return Cow::Borrowed(profile);
        }
        match root {
            Target::Existing(id) => self
                .context
                .profiles
                .get(id)
                .map_or_else(|| Cow::Owned(Profile::default()), Cow::Borrowed),
            Target::New(_) => Cow::Owned(Profile::default()),
        }
    }

    /// Records that `mention` went to `node`: later mentions of the batch compare with
    /// it and find it through its blocking keys.
    fn note(&mut self, node: &Target, profile: &Profile, blocks: &BTreeSet<String>) {
        if !self.settings.enabled {
            return;
        }
        let root = self.root(node);
        if let Some(held) = self.profiles.get_mut(&root) {
            held.extend(profile);
        } else {
            let mut merged = self.profile_of(&root).into_owned();
            merged.extend(profile);
            self.profiles.insert(root.clone(), merged);
        }
        for block in blocks {
            let nodes = self.blocks.entry(block.clone()).or_default();
            if !nodes.contains(&root) {
                nodes.push(root.clone());
            }
        }
    }

    /// The best candidate by total weight among the entities sharing one of a
    /// mention's blocking keys `blocks`, compared with `profile` (the mention's own, or
    /// that of the entity it joined), other than `except` and entities a steward set
    /// apart from it.
    fn best_candidate(
        &mut self,
        mention: &Mention,
        blocks: &BTreeSet<String>,
        profile: &Profile,
        except: Option<&Target>,
    ) -> Option<(Target, Evidence)> {
        let mut nodes: BTreeSet<Target> = BTreeSet::new();
        for block in blocks {
            if let Some(ids) = self.context.candidates.get(block) {
                nodes.extend(ids.iter().map(|id| Target::Existing(id.clone())));
            }
            if let Some(batch) = self.blocks.get(block) {
                nodes.extend(batch.iter().cloned());
            }
        }
        let roots: BTreeSet<Target> = nodes.iter().map(|n| self.root(n)).collect();
        let mut best: Option<(Target, Evidence)> = None;
        for root in roots {
            if Some(&root) == except
                || self.kind_of(&root) != Some(mention.kind)
                || except.is_some_and(|except| self.apart(except, &root))
            {
                continue;
            }
            let candidate = self.profile_of(&root);
            let evidence = matching::score(self.settings, mention.kind, profile, &candidate, self.context);
            if best.as_ref().is_none_or(|(_, b)| evidence.total > b.total) {
                best = Some((root, evidence));
            }
        }
        best
    }
}

/// Places one mention; returns its entity, whether it joined one that existed before
/// it, and why.
fn plan_mention(state: &mut Planning<'_>, mention: &Mention, mention_ref: &MentionRef) -> (Target, bool, Placement) {
    let profile = Profile::of_mention(mention);
    // Computed once: the batch's index, the candidates, and the second look use them.
    let blocks = if state.settings.enabled {
        profile.blocks(mention.kind)
    } else {
        BTreeSet::new()
    };
    if let Some(entity) = state.context.pinned.get(mention_ref) {
        // A steward's decision: no key and no score moves it.
        let node = Target::Existing(entity.clone());
        state.add(&node);
        let root = state.root(&node);
        state.note(&root, &profile, &blocks);
        // The decision that pinned it stays its explanation.
        let placement = state
            .context
            .previous
            .get(mention_ref)
            .and_then(|previous| previous.placement.clone())
            .filter(|placement| matches!(placement, Placement::Steward { .. }))
            .unwrap_or(Placement::Steward {
                decision: "pinned".to_owned(),
            });
        return (root, true, placement);
    }

    let mut found: Vec<(Target, IdScheme)> = Vec::new();
    for identifier in mention.keys() {
        let key = (identifier.scheme, identifier.value.clone());
        let owner = match state.keys.get(&key) {
            Some(node) => Some(node.clone()),
            None => state.context.key_owners.get(&key).cloned().map(Target::Existing),
        };
        // A key never links entities of different kinds (schemes are kind-specific;
        // this guards against a department register used for both).
        if let Some(owner) = owner.filter(|owner| state.kind_of(owner) == Some(mention.kind)) {
            found.push((owner, identifier.scheme));
        }
    }

    let mut follow_keys = true;
    let (node, joined, placement) = if let Some((first, scheme)) = found.first().cloned() {
        state.add(&first);
        let first_root = state.root(&first);
        // The second opinion: does the rest of what the mention says contradict the
        // entity its key names?
        let evidence = second_opinion(state, mention, &profile, &first_root);
        match evidence {
            Some(evidence)
                if key_field(scheme).map_or(evidence.total, |field| evidence.total_without(field))
                    < state.settings.key_veto =>
            {
                follow_keys = false;
                // The entity it founded the last time, if any: a record pushed again must
                // not found one more.
                let founded = state
                    .context
                    .previous
                    .get(mention_ref)
                    .map(|previous| Target::Existing(previous.entity.clone()))
                    .filter(|previous| *previous != first_root && state.kind_of(previous) == Some(mention.kind));
                let node = match founded {
                    Some(node) => {
                        state.add(&node);
                        node
                    }
                    None => state.create(mention.kind),
                };
                state.reviews.push(Review {
                    mention: mention_ref.clone(),
                    target: node.clone(),
                    candidate: first_root,
                    evidence: evidence.clone(),
                });
                (node, false, Placement::Queued { evidence })
            }
            evidence => {
                let mut node = first;
                for (other, _) in &found[1..] {
                    state.add(other);
                    node = state.union(&node, other);
                }
                (state.root(&node), true, Placement::Key { scheme, evidence })
            }
        }
    } else if let Some(previous) = state.context.previous.get(mention_ref).filter(|previous| {
        // Without a key, only the name says the slot still holds the same person: a
        // record that now names someone else must not put them in the old entity.
        kind_of_id(&previous.entity) == Some(mention.kind)
            && !mention.match_name.is_empty()
            && previous.match_name == mention.match_name
    }) {
        // Nothing links it elsewhere: the slot stays with the entity it had.
        let node = Target::Existing(previous.entity.clone());
        let placement = previous
            .placement
            .as_ref()
            .map_or(Placement::Previous { first: None }, Placement::carried);
        state.add(&node);
        (state.root(&node), true, placement)
    } else if state.settings.enabled {
        match state.best_candidate(mention, &blocks, &profile, None) {
            Some((candidate, evidence)) => match matching::verdict(state.settings, mention.kind, evidence.total) {
                Verdict::Link => (candidate, true, Placement::Matched { evidence }),
                Verdict::Review => {
                    let node = state.create(mention.kind);
                    state.reviews.push(Review {
                        mention: mention_ref.clone(),
                        target: node.clone(),
                        candidate,
                        evidence: evidence.clone(),
                    });
                    (node, false, Placement::Queued { evidence })
                }
                Verdict::Distinct => (
                    state.create(mention.kind),
                    false,
                    Placement::Founded { best: Some(evidence) },
                ),
            },
            None => (state.create(mention.kind), false, Placement::Founded { best: None }),
        }
    } else {
        (state.create(mention.kind), false, Placement::Founded { best: None })
    };
    if follow_keys {
        // A key follows the mention unless another entity holds it and stays apart from
        // this one by a steward's decision (then it stays where it is).
        let root = state.root(&node);
        for identifier in mention.keys() {
            let key = (identifier.scheme, identifier.value.clone());
            let owner = match state.keys.get(&key) {
                Some(node) => Some(node.clone()),
                None => state.context.key_owners.get(&key).cloned().map(Target::Existing),
            };
            let held_elsewhere = owner.is_some_and(|owner| {
                let owner = state.root(&owner);
                owner != root && state.apart(&owner, &root)
            });
            if !held_elsewhere {
                state.keys.insert(key, node.clone());
            }
        }
    }
    state.note(&node, &profile, &blocks);
    if joined && state.settings.enabled && !matches!(placement, Placement::Steward { .. }) {
        reconsider(state, mention, mention_ref, &node, &blocks);
    }
    (node, joined, placement)
}

/// An entity that gained a mention knows more than before: a name with a phone number,
/// say, that an entity founded earlier by a record without a number also has. Mentions
/// arrive in any order, so the grown entity is compared once more with the candidates
/// the new mention's blocking keys find; a link merges the two, a doubt queues them.
fn reconsider(
    state: &mut Planning<'_>,
    mention: &Mention,
    mention_ref: &MentionRef,
    node: &Target,
    blocks: &BTreeSet<String>,
) {
    let root = state.root(node);
    let grown = state.profile_of(&root).into_owned();
    let Some((candidate, evidence)) = state.best_candidate(mention, blocks, &grown, Some(&root)) else {
        return;
    };
    match matching::verdict(state.settings, mention.kind, evidence.total) {
        Verdict::Link => {
            state.union(&root, &candidate);
        }
        Verdict::Review => state.reviews.push(Review {
            mention: mention_ref.clone(),
            target: root,
            candidate,
            evidence,
        }),
        Verdict::Distinct => {}
    }
}

/// The mention compared with the entity its key names, when there is something to
/// compare with.
fn second_opinion(state: &Planning<'_>, mention: &Mention, profile: &Profile, owner: &Target) -> Option<Evidence> {
    if !state.settings.enabled {
        return None;
    }
    let candidate = state.profile_of(owner);
    if *candidate == Profile::default() {
        return None;
    }
    Some(matching::score(
        state.settings,
        mention.kind,
        profile,
        &candidate,
        state.context,
    ))
}

/// The field that compares what a key of this scheme is: its agreement is the key
/// itself, not a second opinion.
pub(crate) fn key_field(scheme: IdScheme) -> Option<Field> {
    match scheme {
        IdScheme::ResidentId | IdScheme::OrganisationCode | IdScheme::UnifiedSocialCreditCode => {
            Some(Field::IdentityNumber)
        }
        IdScheme::Passport
        | IdScheme::HkMacaoTaiwanPermit
        | IdScheme::HkMacaoTaiwanIdentityCard
        | IdScheme::ForeignPermanentResidentCard
        | IdScheme::MilitaryOfficerCard => Some(Field::Document),
        IdScheme::RegistrationNumber | IdScheme::DepartmentNumber => None,
    }
}

#[cfg(test)]
mod tests;
