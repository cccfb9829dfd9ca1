//! A data steward's work: the queue of pairs matching could not settle, decisions on
//! them, merges and splits, and explanations of why each source is in its entity.
//!
//! **Decisions are sticky.** A split pins the mention to its new entity and sets the
//! two entities apart; a "different" pins the mention where it is and sets the pair
//! apart; automatic resolution never moves a pinned mention and never merges entities
//! set apart, whatever later records carry. Every decision is audited and republishes
//! the entities it changed through the feed.

use std::time::SystemTime;

use crate::resolve::matching::Evidence;
use crate::resolve::Placement;
use crate::unified::{EntityId, MentionRef};

/// A pair in the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPair {
    /// Position in the queue: pages go by it, oldest first.
    pub id: i64,
    /// The mention matching was unsure of.
    pub mention: MentionRef,
    /// The live entity the mention is in now (it founded one when queued).
    pub entity: EntityId,
    /// The live entity it may belong to.
    pub candidate: EntityId,
    /// The comparison that put the pair between the thresholds.
    pub evidence: Evidence,
    pub queued_at: SystemTime,
}

/// A steward's answer on a review pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// One entity: merge them.
    Same,
    /// Two entities: keep them apart for ever.
    Different,
}

/// What a steward can do.
#[derive(Debug, Clone, PartialEq)]
pub enum StewardAction {
    Decide {
        pair: i64,
        verdict: Verdict,
    },
    /// Merge two entities (the older ID survives).
    Merge {
        entity: EntityId,
        other: EntityId,
    },
    /// Take a mention out of its entity into a new one of its own.
    Split {
        mention: MentionRef,
    },
}

impl StewardAction {
    /// The audit log's action and subject.
    pub fn audit(&self) -> (&'static str, String) {
        match self {
            StewardAction::Decide {
                pair,
                verdict: Verdict::Same,
            } => ("review.same", format!("pair {pair}")),
            StewardAction::Decide {
                pair,
                verdict: Verdict::Different,
            } => ("review.different", format!("pair {pair}")),
            StewardAction::Merge { entity, other } => ("merge", format!("{entity} {other}")),
            StewardAction::Split { mention } => (
                "split",
                format!(
                    "{} {} {} {}",
                    mention.record_type, mention.source_id, mention.role, mention.index
                ),
            ),
        }
    }
}

/// What a steward's action changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StewardOutcome {
    /// The entity that survived a merge.
    pub survivor: Option<EntityId>,
    /// The entity a split created.
    pub created: Option<EntityId>,
    /// Every entity republished in the feed.
    pub changed: Vec<EntityId>,
}

/// Why each source of an entity is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub unified_id: EntityId,
    /// The ID asked for, when it was merged into `unified_id`.
    pub redirected_from: Option<EntityId>,
    pub sources: Vec<(MentionRef, Option<Placement>)>,
}
