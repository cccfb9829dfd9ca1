//! A data steward's work: the queue of pairs matching could not settle, decisions on
//! them, merges and splits, and explanations of why each source is in its entity.
//!
//! **Decisions are sticky.** A split pins the mention to its new entity and sets the
//! two entities apart; a "different" pins the mention where it is and sets the pair
//! apart; automatic resolution never moves a pinned mention and never merges entities
//! set apart, whatever later records carry. Every decision is audited and republishes
//! the entities it changed through the feed.
//!
//! [`StewardDesk`] is the door to that work: only a steward acts, a steward or the
//! platform reads explanations, and every refusal and every read is written to the
//! audit log before the answer leaves (the store audits the actions themselves).

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::identity::Identity;
use crate::resolve::matching::Evidence;
use crate::resolve::Placement;
use crate::store::{AuditEntry, Store, StoreError};
use crate::unified::{kind_of_id, Change, EntityId, MentionRef, UnifiedRecord};

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
    /// Every entity the action rebuilt (those whose record changed are in the feed).
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

// ---------------------------------------------------------------------------------------
// The desk: who may do what, audited.

/// Review pairs per page when the caller names no size.
pub const DEFAULT_REVIEW_PAGE: usize = 20;
/// Review pairs per page at most.
pub const MAX_REVIEW_PAGE: usize = 200;

/// The purpose written to the audit log with stewardship's reads and refusals.
const PURPOSE: &str = "stewardship";

/// Why a steward's request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum StewardError {
    /// The caller may not do this; the refusal is in the audit log.
    #[error("{identity} may not {what}: {reason}")]
    Refused {
        identity: Identity,
        /// What was asked, e.g. `decide on review pairs`.
        what: &'static str,
        reason: &'static str,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no unified record is known by {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which open review pairs come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOrder {
    /// In queue order, after queue position `after`.
    Oldest { after: i64 },
    /// Nearest the middle of the review band first, after pair `after` of that order
    /// (0: from the start).
    MostUncertain { after: i64 },
}

/// A review pair with both sides' current unified records.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewView {
    pub pair: ReviewPair,
    /// The record of `pair.entity` (`None` only if the store lost it).
    pub entity: Option<UnifiedRecord>,
    /// The record of `pair.candidate`.
    pub candidate: Option<UnifiedRecord>,
}

/// Stewardship behind its authorisation: what the `Stewardship` service calls.
pub struct StewardDesk<S> {
    store: S,
}

impl<S: Store> StewardDesk<S> {
    pub fn new(store: S) -> Self {
        StewardDesk { store }
    }

    async fn audit(&self, identity: &Identity, action: &str, subject: &str, outcome: &str) -> Result<(), StoreError> {
        crate::audit::append(
            &self.store,
            &AuditEntry {
                at: SystemTime::now(),
                identity: identity.to_string(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                purpose: PURPOSE.to_owned(),
                outcome: outcome.to_owned(),
                trace_id: crate::telemetry::current_trace_id(),
            },
        )
        .await
    }

    /// Refuses (audited) anyone who is not a steward, or for `explain` not the platform.
    async fn authorise(
        &self,
        identity: &Identity,
        action: &str,
        subject: &str,
        what: &'static str,
        platform_too: bool,
    ) -> Result<(), StewardError> {
        let allowed = match identity {
            Identity::Steward(_) => true,
            Identity::Platform => platform_too,
            Identity::Department(_) | Identity::Ops => false,
        };
        if allowed {
            return Ok(());
        }
        let reason = if platform_too {
            "explanations are for stewards and the platform"
        } else {
            "stewardship is for stewards"
        };
        self.audit(identity, action, subject, &format!("refused: {reason}"))
            .await?;
        Err(StewardError::Refused {
            identity: identity.clone(),
            what,
            reason,
        })
    }

    /// Open review pairs after queue position `after`, oldest first, with both sides'
    /// current records; `page_size` 0 means [`DEFAULT_REVIEW_PAGE`].
    pub async fn reviews(
        &self,
        identity: &Identity,
        after: i64,
        page_size: usize,
    ) -> Result<Vec<ReviewView>, StewardError> {
        self.review_page(identity, ReviewOrder::Oldest { after }, page_size)
            .await
    }

    /// A page of open review pairs in `order`, with both sides' current records;
    /// `page_size` 0 means [`DEFAULT_REVIEW_PAGE`].
    pub async fn review_page(
        &self,
        identity: &Identity,
        order: ReviewOrder,
        page_size: usize,
    ) -> Result<Vec<ReviewView>, StewardError> {
        let subject = match order {
            ReviewOrder::Oldest { after } => format!("review pairs after {after}"),
            ReviewOrder::MostUncertain { after } => format!("review pairs, most uncertain first, after {after}"),
        };
        self.authorise(identity, "steward.reviews", &subject, "read the review queue", false)
            .await?;
        let limit = match page_size {
            0 => DEFAULT_REVIEW_PAGE,
            n => n.min(MAX_REVIEW_PAGE),
        };
        let pairs = match order {
            ReviewOrder::Oldest { after } | ReviewOrder::MostUncertain { after } if after < 0 => {
                return Err(StewardError::InvalidArgument(format!(
                    "after must be 0 or a queue position, not {after}"
                )))
            }
            ReviewOrder::Oldest { after } => self.store.review_queue(after, limit).await?,
            ReviewOrder::MostUncertain { after } => self.store.review_queue_uncertain(after, limit).await?,
        };
        let mut views = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let entity = self.current_record(&pair.entity).await?;
            let candidate = self.current_record(&pair.candidate).await?;
            views.push(ReviewView {
                pair,
                entity,
                candidate,
            });
        }
        self.audit(identity, "steward.reviews", &subject, "granted").await?;
        Ok(views)
    }

    /// The current record of an entity, following a merge.
    async fn current_record(&self, id: &str) -> Result<Option<UnifiedRecord>, StoreError> {
        match self.store.entity(id).await? {
            Some((Some(survivor), _)) => Ok(self.store.entity(&survivor).await?.map(|(_, record)| record)),
            Some((None, record)) => Ok(Some(record)),
            None => Ok(None),
        }
    }

    /// Carries out a steward's action (the store audits it). `action` is what the
    /// request said, or why it is malformed: a caller who may not act is refused
    /// (and audited) before its request is checked.
    pub async fn act(
        &self,
        identity: &Identity,
        action: Result<StewardAction, StewardError>,
    ) -> Result<StewardOutcome, StewardError> {
        let (audit_action, subject, described) = match &action {
            Ok(action) => {
                let (what, subject) = action.audit();
                let described = match action {
                    StewardAction::Decide { .. } => "decide on review pairs",
                    StewardAction::Merge { .. } => "merge unified records",
                    StewardAction::Split { .. } => "split unified records",
                };
                (format!("steward.{what}"), subject, described)
            }
            Err(_) => ("steward.request".to_owned(), "malformed".to_owned(), "act as a steward"),
        };
        self.authorise(identity, &audit_action, &subject, described, false)
            .await?;
        let action = action?;
        if let StewardAction::Merge { entity, other } = &action {
            for id in [entity, other] {
                if kind_of_id(id).is_none() {
                    return Err(not_an_id(id));
                }
            }
        }
        Ok(self.store.steward(&action, &identity.to_string()).await?)
    }

    /// Why each source of an entity (or of the survivor it was merged into) is in it.
    pub async fn explain(&self, identity: &Identity, id: &str) -> Result<Explanation, StewardError> {
        self.authorise(identity, "steward.explain", id, "read explanations", true)
            .await?;
        if kind_of_id(id).is_none() {
            return Err(not_an_id(id));
        }
        let Some(explanation) = self.store.explain(id).await? else {
            self.audit(identity, "steward.explain", id, "not found").await?;
            return Err(StewardError::NotFound(id.to_owned()));
        };
        self.audit(identity, "steward.explain", &explanation.unified_id, "granted")
            .await?;
        Ok(explanation)
    }
}

/// Everything the console shows of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityView {
    /// The current record (of the survivor, when the ID asked for was merged).
    pub record: UnifiedRecord,
    /// Why each source is in it, and the ID asked for if it redirected.
    pub explanation: Explanation,
    /// Its changes and those of the entities merged into it, newest first.
    pub history: Vec<Change>,
}

/// Changes of an entity's history the console shows at most.
pub const HISTORY_LIMIT: usize = 50;

impl<S: Store> StewardDesk<S> {
    /// An entity as a steward examines it: record, placements and history (one read,
    /// audited once, like an explanation).
    pub async fn entity(&self, identity: &Identity, id: &str) -> Result<EntityView, StewardError> {
        self.authorise(identity, "steward.entity", id, "examine unified records", false)
            .await?;
        if kind_of_id(id).is_none() {
            return Err(not_an_id(id));
        }
        let Some(explanation) = self.store.explain(id).await? else {
            self.audit(identity, "steward.entity", id, "not found").await?;
            return Err(StewardError::NotFound(id.to_owned()));
        };
        let Some(record) = self.current_record(&explanation.unified_id).await? else {
            self.audit(identity, "steward.entity", id, "not found").await?;
            return Err(StewardError::NotFound(id.to_owned()));
        };
        let history = self
            .store
            .entity_history(&explanation.unified_id, HISTORY_LIMIT)
            .await?;
        self.audit(identity, "steward.entity", &explanation.unified_id, "granted")
            .await?;
        Ok(EntityView {
            record,
            explanation,
            history,
        })
    }
}

fn not_an_id(id: &str) -> StewardError {
    StewardError::InvalidArgument(format!("{id:?} is not a unified ID (P or O followed by 11 digits)"))
}

// ---------------------------------------------------------------------------------------
// Placements for people.

/// A sentence saying why a mention is in its entity, e.g. "linked by probabilistic
/// matching: 31.2 bits (name exact +17.0, birth_date exact +14.2)".
pub fn placement_summary(placement: &Placement) -> String {
    match placement {
        Placement::Key { scheme, evidence } => {
            let mut text = format!("joined by its {} key", scheme.as_str());
            if let Some(evidence) = evidence {
                let _ = write!(text, "; compared with the entity: {}", evidence_summary(evidence));
            }
            text
        }
        Placement::Previous { first: None } => "kept the entity of its record's previous version".to_owned(),
        Placement::Previous { first: Some(first) } => format!(
            "kept the entity of its record's previous version; first {}",
            placement_summary(first)
        ),
        Placement::Matched { evidence } => {
            format!("linked by probabilistic matching: {}", evidence_summary(evidence))
        }
        Placement::Founded { best: None } => "founded this entity (no candidate to compare with)".to_owned(),
        Placement::Founded { best: Some(best) } => format!(
            "founded this entity (best candidate {:.1} bits, below the review threshold)",
            best.total
        ),
        Placement::Queued { evidence } => format!(
            "founded this entity while a steward reviews a candidate: {}",
            evidence_summary(evidence)
        ),
        Placement::Steward { decision } => format!("put here by a steward ({decision})"),
    }
}

/// "16.9 bits (name exact +13.2, birth_date year_month +3.6)".
pub fn evidence_summary(evidence: &Evidence) -> String {
    let mut text = format!("{:.1} bits", evidence.total);
    if !evidence.comparisons.is_empty() {
        let parts: Vec<String> = evidence
            .comparisons
            .iter()
            .map(|c| format!("{} {} {:+.1}", c.field.as_str(), c.level.as_str(), c.weight))
            .collect();
        let _ = write!(text, " ({})", parts.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use tongban_adapters::model::IdScheme;

    use super::*;
    use crate::resolve::matching::{Comparison, Field, Level};

    fn evidence() -> Evidence {
        Evidence {
            total: 31.234,
            comparisons: vec![
                Comparison {
                    field: Field::Name,
                    level: Level::Exact,
                    weight: 17.04,
                },
                Comparison {
                    field: Field::BirthDate,
                    level: Level::Exact,
                    weight: 14.194,
                },
            ],
        }
    }

    #[test]
    fn placements_read_as_sentences() {
        let key = Placement::Key {
            scheme: IdScheme::ResidentId,
            evidence: None,
        };
        assert_eq!(placement_summary(&key), "joined by its resident_id key");
        assert_eq!(
            placement_summary(&Placement::Matched { evidence: evidence() }),
            "linked by probabilistic matching: 31.2 bits (name exact +17.0, birth_date exact +14.2)"
        );
        let mut best = evidence();
        best.total = 8.0;
        assert_eq!(
            placement_summary(&Placement::Founded { best: Some(best) }),
            "founded this entity (best candidate 8.0 bits, below the review threshold)"
        );
        assert_eq!(
            placement_summary(&Placement::Steward {
                decision: "split".to_owned()
            }),
            "put here by a steward (split)"
        );
        assert_eq!(
            placement_summary(&Placement::Previous {
                first: Some(Box::new(key))
            }),
            "kept the entity of its record's previous version; first joined by its resident_id key"
        );
    }

    #[test]
    fn the_kind_is_the_json_tag() {
        for placement in [
            Placement::Key {
                scheme: IdScheme::Passport,
                evidence: Some(evidence()),
            },
            Placement::Previous { first: None },
            Placement::Matched { evidence: evidence() },
            Placement::Founded { best: None },
            Placement::Queued { evidence: evidence() },
            Placement::Steward {
                decision: "same".to_owned(),
            },
        ] {
            let json = serde_json::to_value(&placement).expect("placement JSON");
            assert_eq!(json["by"], placement.kind(), "{json}");
        }
    }
}
