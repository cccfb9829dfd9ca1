//! Unified records: the hub's one record per real person and organisation, and the
//! mentions it is built from. Domain types shared by the pipeline, the resolver, the
//! stores and the services.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tongban_adapters::model::{EntityKind, Identifier, Mention, QualityFlag, Relation, RelationKind, Slot};
use tongban_adapters::RecordType;

/// A unified entity's ID: `P` for persons, `O` for organisations, then 11 digits.
/// Stable for ever: an ID merged into another redirects to it.
pub type EntityId = String;

/// Formats the ID of the `n`-th entity the store allocated.
pub fn entity_id(kind: EntityKind, n: i64) -> EntityId {
    let prefix = match kind {
        EntityKind::Person => 'P',
        EntityKind::Organisation => 'O',
    };
    format!("{prefix}{n:011}")
}

/// The kind an entity ID denotes, if it is one.
pub fn kind_of_id(id: &str) -> Option<EntityKind> {
    let (prefix, digits) = id.split_at_checked(1)?;
    if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match prefix {
        "P" => Some(EntityKind::Person),
        "O" => Some(EntityKind::Organisation),
        _ => None,
    }
}

/// The address of a mention as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MentionRef {
    pub record_type: String,
    pub source_id: String,
    pub role: String,
    pub index: u32,
}

impl MentionRef {
    pub fn new(record_type: RecordType, source_id: &str, slot: Slot) -> MentionRef {
        MentionRef {
            record_type: record_type.as_str().to_owned(),
            source_id: source_id.to_owned(),
            role: slot.role.as_str().to_owned(),
            index: slot.index,
        }
    }
}

/// What one current source record contributes: its normalised mentions and the
/// relations between them. Built by the pipeline, resolved and kept by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub record_type: RecordType,
    pub mentions: Vec<Mention>,
    pub relations: Vec<Relation>,
}

impl Contribution {
    /// A deleted record contributes nothing.
    pub fn withdrawn(record_type: RecordType) -> Contribution {
        Contribution {
            record_type,
            mentions: Vec::new(),
            relations: Vec::new(),
        }
    }

    /// Every quality flag of the record, for the department's answer.
    pub fn flags(&self) -> Vec<QualityFlag> {
        let mut flags: Vec<QualityFlag> = self.mentions.iter().flat_map(|m| m.flags.iter().cloned()).collect();
        flags.sort();
        flags.dedup();
        flags
    }
}

/// A relation as kept with a mention: the other side already resolved to an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptRelation {
    pub relation: RelationKind,
    /// `true` when this mention is the relation's subject (`from`), `false` when it is
    /// the object: each side keeps its view.
    pub outgoing: bool,
    /// The other entity; `None` when the relation is to the record itself.
    pub other: Option<EntityId>,
    pub detail: Option<String>,
}

/// A mention as the store keeps it: enough to rebuild the unified record without
/// re-reading the source record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptMention {
    pub source: MentionRef,
    pub source_version: i64,
    pub mention: Mention,
    pub relations: Vec<KeptRelation>,
    /// Why the mention is in its entity. Kept in its own column by the stores (a
    /// steward's decision changes it without rewriting the mention), not in this JSON.
    #[serde(skip)]
    pub placement: Option<crate::resolve::Placement>,
    /// Where it contradicts a value an authority gave (`quality::contradictions`), as of
    /// its entity's last rebuild. Kept in its own column by the stores (rewritten when
    /// a rebuild finds them changed), not in this JSON.
    #[serde(skip)]
    pub contradictions: Vec<QualityFlag>,
}

/// How survivorship chose an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurvivalRule {
    /// The department that is the authority for this attribute said so.
    Authority,
    /// Derived from a valid resident identity number.
    IdentityNumber,
    /// Most sources agree on it.
    Agreement,
    /// The most recently changed source says so.
    Recency,
}

/// One attribute's surviving value with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurvivingValue {
    pub value: String,
    /// Where the value came from; left out of a department's view when the source is
    /// another department's (that a department knows someone is itself personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MentionRef>,
    pub rule: SurvivalRule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedEntity {
    pub relation: RelationKind,
    pub outgoing: bool,
    /// `None` for a relation to a record (a title held, a project managed): see `source`.
    pub unified_id: Option<EntityId>,
    pub detail: Option<String>,
    pub source: MentionRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcedFlag {
    #[serde(flatten)]
    pub flag: QualityFlag,
    pub source: MentionRef,
}

/// A unified record, as the feed and lookups deliver it (as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnifiedRecord {
    pub unified_id: EntityId,
    pub kind: EntityKind,
    pub version: i64,
    /// Set on an entity merged into another; everything else is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<EntityId>,
    /// Every identifier any source gave, reliable ones (keys) first.
    pub identifiers: Vec<Identifier>,
    pub attributes: BTreeMap<String, SurvivingValue>,
    /// Every distinct value seen per attribute, normalised and as typed.
    pub variants: BTreeMap<String, Vec<String>>,
    /// Facts per department: each fact set carries its `source`.
    pub facts: BTreeMap<String, Vec<Map<String, Value>>>,
    pub relations: Vec<RelatedEntity>,
    pub quality_flags: Vec<SourcedFlag>,
    pub sources: Vec<MentionRef>,
    /// Entities a steward decided are not this one: automatic resolution never merges
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_from: Vec<EntityId>,
}

impl UnifiedRecord {
    /// The record of an entity merged into `survivor`.
    pub fn merged(unified_id: EntityId, kind: EntityKind, version: i64, survivor: EntityId) -> UnifiedRecord {
        UnifiedRecord {
            unified_id,
            kind,
            version,
            merged_into: Some(survivor),
            identifiers: Vec::new(),
            attributes: BTreeMap::new(),
            variants: BTreeMap::new(),
            facts: BTreeMap::new(),
            relations: Vec::new(),
            quality_flags: Vec::new(),
            sources: Vec::new(),
            distinct_from: Vec::new(),
        }
    }
}

/// One entry of the change feed: the record's JSON text as published, passed on as it
/// is, and the few fields the feed's messages carry beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Position in commit order; the consumer's cursor.
    pub position: i64,
    pub head: RecordHead,
    /// The unified record as published: `serde_json::to_string(&record)`.
    pub text: String,
}

impl Change {
    /// A change from its stored text, reading only its head.
    pub fn from_text(position: i64, text: String) -> Result<Change, serde_json::Error> {
        let head = serde_json::from_str(&text)?;
        Ok(Change { position, head, text })
    }

    /// The whole unified record (the feed itself never needs it).
    pub fn record(&self) -> Result<UnifiedRecord, serde_json::Error> {
        serde_json::from_str(&self.text)
    }
}

/// The fields of a unified record that a feed message carries beside its JSON, read
/// from that JSON without building the rest of the record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordHead {
    pub unified_id: EntityId,
    pub kind: EntityKind,
    pub version: i64,
    /// Set on an entity merged into another.
    #[serde(default)]
    pub merged_into: Option<EntityId>,
    pub sources: Vec<MentionRef>,
}

/// What resolution did with one mention of an accepted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub slot: Slot,
    pub unified_id: EntityId,
    /// The entity existed before this record: a repeated collection avoided.
    pub matched_existing: bool,
    /// What placed it (`Placement::kind`).
    pub resolved_by: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_carry_their_kind() {
        let id = entity_id(EntityKind::Person, 42);
        assert_eq!(id, "P00000000042");
        assert_eq!(kind_of_id(&id), Some(EntityKind::Person));
        assert_eq!(kind_of_id("O00000000007"), Some(EntityKind::Organisation));
        for not_an_id in [
            "",
            "P",
            "X00000000001",
            "P0000000001",
            "P0000000000a",
            "370687199001011234",
        ] {
            assert_eq!(kind_of_id(not_an_id), None, "{not_an_id}");
        }
    }
}
