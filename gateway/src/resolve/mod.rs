//! Resolution: which unified entity is each mention?
//!
//! **The resolver decides, the store persists.** Everything here is pure: the store
//! loads a [`Context`] (who owns the keys the batch carries, where the batch's records'
//! mentions went before), [`plan`] decides, the store applies the [`Plan`] and then asks
//! [`survivorship::unify`] for the new unified record of every entity it touched.
//!
//! Deterministic keys only (DESIGN.md, Resolution): a mention whose keys are owned by
//! an entity joins it; keys owned by several entities prove they are one, and the
//! oldest survives while the others redirect to it; a mention without keys keeps the
//! entity its slot had in the record's previous version if it still names the same
//! person or organisation, or founds a new one. The
//! probabilistic matcher of a later issue plugs in at `plan_mention`, where a mention
//! without keys founds an entity today.

pub mod survivorship;

use std::collections::{BTreeSet, HashMap};

use tongban_adapters::model::{EntityKind, IdScheme, Mention};

use crate::unified::{kind_of_id, Contribution, EntityId, MentionRef};

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
}

/// A mention of a record's previous version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub entity: EntityId,
    /// Its comparable name (`Mention::match_name`).
    pub match_name: String,
}

/// Every key the batch's mentions carry, sorted: the order in which stores lock them.
pub fn keys_of(incoming: &[Incoming<'_>]) -> Vec<Key> {
    let keys: BTreeSet<Key> = incoming
        .iter()
        .flat_map(|record| record.contribution.mentions.iter())
        .flat_map(|mention| mention.keys())
        .map(|identifier| (identifier.scheme, identifier.value.clone()))
        .collect();
    keys.into_iter().collect()
}

/// An entity as the plan refers to it: one the store holds, or the `n`-th one the plan
/// creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Existing(EntityId),
    New(usize),
}

/// Where one mention goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub mention: MentionRef,
    pub target: Target,
    /// The mention joined an entity that existed before it (held by the store, or
    /// founded by an earlier mention of the batch) and that its slot did not already
    /// belong to: a department was not asked again for what the hub held.
    pub matched_existing: bool,
}

/// What the store must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Kinds of the entities to create; `Target::New(n)` is the `n`-th.
    pub new_entities: Vec<EntityKind>,
    /// One per mention of the incoming records, in batch order.
    pub assignments: Vec<Assignment>,
    /// Existing entities proved to be another one: (absorbed, survivor). The absorbed
    /// entity's mentions and keys move to the survivor and its ID redirects there.
    pub merges: Vec<(EntityId, Target)>,
    /// Keys to point at their entity: every key the batch carries (keys of absorbed
    /// entities are moved by the merge itself).
    pub keys: Vec<(Key, Target)>,
    /// Existing entities whose unified record must be rebuilt: they gain or lose
    /// mentions. Absorbed entities are not in it; survivors are.
    pub touched: BTreeSet<EntityId>,
}

/// Decides where every mention of `incoming` goes.
pub fn plan(context: &Context, incoming: &[Incoming<'_>]) -> Plan {
    let mut state = Planning {
        context,
        parent: HashMap::new(),
        keys: HashMap::new(),
        kinds: Vec::new(),
    };
    let mut placed = Vec::new();
    for record in incoming {
        for mention in &record.contribution.mentions {
            let mention_ref = record.mention_ref(mention);
            let (node, joined) = plan_mention(&mut state, mention, &mention_ref);
            placed.push((mention_ref, node, joined));
        }
    }

    let mut plan = Plan {
        new_entities: state.kinds.clone(),
        ..Plan::default()
    };
    for (mention, node, joined) in placed {
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
    plan
}

/// The planner's working state: a union-find over entities.
struct Planning<'a> {
    context: &'a Context,
    /// Union-find parent of every entity seen; roots map to themselves.
    parent: HashMap<Target, Target>,
    /// Keys seen so far in the batch and their entity.
    keys: HashMap<Key, Target>,
    kinds: Vec<EntityKind>,
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

    /// Unites two entities; the older survives (an existing one over a new one, the
    /// smaller ID, which was allocated first).
    fn union(&mut self, a: &Target, b: &Target) -> Target {
        let (a, b) = (self.root(a), self.root(b));
        if a == b {
            return a;
        }
        let (survivor, absorbed) = if a < b { (a, b) } else { (b, a) };
        self.parent.insert(absorbed, survivor.clone());
        survivor
    }

    fn kind_of(&self, node: &Target) -> Option<EntityKind> {
        match node {
            Target::Existing(id) => kind_of_id(id),
            Target::New(n) => self.kinds.get(*n).copied(),
        }
    }
}

/// Places one mention; returns its entity and whether it joined one that existed
/// before it.
fn plan_mention(state: &mut Planning<'_>, mention: &Mention, mention_ref: &MentionRef) -> (Target, bool) {
    let mut found: Vec<Target> = Vec::new();
    for identifier in mention.keys() {
        let key = (identifier.scheme, identifier.value.clone());
        let owner = match state.keys.get(&key) {
            Some(node) => Some(node.clone()),
            None => state.context.key_owners.get(&key).cloned().map(Target::Existing),
        };
        // A key never links entities of different kinds (schemes are kind-specific;
        // this guards against a department register used for both).
        if let Some(owner) = owner.filter(|owner| state.kind_of(owner) == Some(mention.kind)) {
            found.push(owner);
        }
    }
    let (node, joined) = if let Some(first) = found.first().cloned() {
        state.add(&first);
        let mut node = first;
        for other in &found[1..] {
            state.add(other);
            node = state.union(&node, other);
        }
        (state.root(&node), true)
    } else if let Some(previous) = state.context.previous.get(mention_ref).filter(|previous| {
        // Without a key, only the name says the slot still holds the same person: a
        // record that now names someone else must not put them in the old entity.
        kind_of_id(&previous.entity) == Some(mention.kind)
            && !mention.match_name.is_empty()
            && previous.match_name == mention.match_name
    }) {
        // Nothing links it elsewhere: the slot stays with the entity it had.
        let node = Target::Existing(previous.entity.clone());
        state.add(&node);
        (state.root(&node), true)
    } else {
        // The seam for probabilistic matching (next issue): today a mention without a
        // reliable key founds its own entity.
        let node = Target::New(state.kinds.len());
        state.kinds.push(mention.kind);
        state.add(&node);
        (node, false)
    };
    for identifier in mention.keys() {
        state
            .keys
            .insert((identifier.scheme, identifier.value.clone()), node.clone());
    }
    (node, joined)
}

#[cfg(test)]
mod tests;
