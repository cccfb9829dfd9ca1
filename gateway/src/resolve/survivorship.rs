//! Survivorship: the unified record of an entity, rebuilt from all its mentions.
//!
//! Each attribute's value is chosen by the first rule that applies (DESIGN.md):
//! 1. the authoritative department for the attribute, when it states one (market
//!    supervision for an organisation's name, legal representative and status; civil
//!    affairs for marital status; configurable);
//! 2. a value derived from a valid resident identity number (birth date, sex);
//! 3. the value most sources agree on;
//! 4. the value of the most recently changed source.
//!
//! Ties within a rule go to the most recent source. Every value keeps its provenance.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};
use tongban_adapters::model::{Attribute, EntityKind, Identifier, RelationKind};
use tongban_adapters::{Department, RecordType};

use crate::unified::{EntityId, KeptMention, RelatedEntity, SourcedFlag, SurvivalRule, SurvivingValue, UnifiedRecord};

/// The attribute of an organisation naming its legal representative: a unified ID,
/// chosen from the relations the sources prove, under the same rules as attributes.
pub const LEGAL_REPRESENTATIVE: &str = "legal_representative";

/// Which department is the authority for which attribute, per kind of entity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorities {
    /// Attribute name (as in the unified record) → department. A table written in the
    /// configuration replaces its kind's defaults; a kind not written keeps them.
    #[serde(default = "default_person_authorities")]
    pub person: BTreeMap<String, Department>,
    #[serde(default = "default_organisation_authorities")]
    pub organisation: BTreeMap<String, Department>,
}

fn default_person_authorities() -> BTreeMap<String, Department> {
    BTreeMap::from([(Attribute::MaritalStatus.as_str().to_owned(), Department::Civil)])
}

fn default_organisation_authorities() -> BTreeMap<String, Department> {
    BTreeMap::from([
        (Attribute::Name.as_str().to_owned(), Department::Market),
        (LEGAL_REPRESENTATIVE.to_owned(), Department::Market),
        (Attribute::Status.as_str().to_owned(), Department::Market),
    ])
}

impl Default for Authorities {
    fn default() -> Self {
        Authorities {
            person: default_person_authorities(),
            organisation: default_organisation_authorities(),
        }
    }
}

impl Authorities {
    fn of(&self, kind: EntityKind, attribute: &str) -> Option<Department> {
        match kind {
            EntityKind::Person => self.person.get(attribute).copied(),
            EntityKind::Organisation => self.organisation.get(attribute).copied(),
        }
    }

    /// Names that are neither attributes nor `legal_representative`, for configuration errors.
    pub fn unknown_attributes(&self) -> Vec<String> {
        self.person
            .keys()
            .chain(self.organisation.keys())
            .filter(|name| Attribute::parse(name).is_none() && name.as_str() != LEGAL_REPRESENTATIVE)
            .cloned()
            .collect()
    }
}

/// One candidate value: from which mention, how it compares, whether derived.
struct Candidate<'a> {
    mention: &'a KeptMention,
    value: String,
    /// The form values agree in (a name's match form; otherwise the value).
    comparable: String,
    derived: bool,
    /// `YYYY-MM-DD` the value holds from, or "" when the record does not say.
    as_of: &'a str,
}

/// Builds the unified record of entity `id` at `version` from its mentions.
/// `redirects` maps merged-away IDs among the related entities to their survivors.
pub fn unify(
    id: &EntityId,
    kind: EntityKind,
    version: i64,
    mentions: &[KeptMention],
    redirects: &HashMap<EntityId, EntityId>,
    authorities: &Authorities,
) -> UnifiedRecord {
    let mut mentions: Vec<&KeptMention> = mentions.iter().collect();
    mentions.sort_by(|a, b| a.source.cmp(&b.source));

    let mut record = UnifiedRecord::merged(id.clone(), kind, version, String::new());
    record.merged_into = None;
    record.identifiers = identifiers(&mentions);
    record.sources = mentions.iter().map(|m| m.source.clone()).collect();

    for attribute in Attribute::ALL {
        let candidates: Vec<Candidate<'_>> = mentions
            .iter()
            .flat_map(|mention| {
                mention
                    .mention
                    .observations
                    .iter()
                    .filter(move |o| o.attribute == attribute)
                    .map(move |o| Candidate {
                        mention,
                        value: o.value.clone(),
                        comparable: if attribute == Attribute::Name && !mention.mention.match_name.is_empty() {
                            mention.mention.match_name.clone()
                        } else {
                            o.value.clone()
                        },
                        derived: o.derived,
                        as_of: o.as_of.as_deref().unwrap_or_default(),
                    })
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let variants: BTreeSet<String> = mentions
            .iter()
            .flat_map(|m| m.mention.observations.iter())
            .filter(|o| o.attribute == attribute)
            .flat_map(|o| [o.value.clone(), o.typed.clone()])
            .filter(|v| !v.is_empty())
            .collect();
        record
            .variants
            .insert(attribute.as_str().to_owned(), variants.into_iter().collect());
        if let Some(value) = survive(&candidates, authorities.of(kind, attribute.as_str())) {
            record.attributes.insert(attribute.as_str().to_owned(), value);
        }
    }

    for mention in &mentions {
        let department = department_of(&mention.source.record_type);
        for fact in &mention.mention.facts {
            let mut fact: Map<String, Value> = fact.clone();
            fact.insert("source".to_owned(), source_json(mention));
            record.facts.entry(department.clone()).or_default().push(fact);
        }
        for relation in &mention.relations {
            let other = relation
                .other
                .as_ref()
                .map(|other| redirects.get(other).unwrap_or(other).clone());
            record.relations.push(RelatedEntity {
                relation: relation.relation,
                outgoing: relation.outgoing,
                unified_id: other,
                detail: relation.detail.clone(),
                source: mention.source.clone(),
            });
        }
        for flag in &mention.mention.flags {
            record.quality_flags.push(SourcedFlag {
                flag: flag.clone(),
                source: mention.source.clone(),
            });
        }
    }
    if kind == EntityKind::Organisation {
        if let Some(value) = legal_representative(&record.relations, &mentions, authorities) {
            record.attributes.insert(LEGAL_REPRESENTATIVE.to_owned(), value);
        }
    }
    record
}

/// Keys first, then the unreliable identifiers, each group sorted; no duplicates.
fn identifiers(mentions: &[&KeptMention]) -> Vec<Identifier> {
    let all: BTreeSet<&Identifier> = mentions.iter().flat_map(|m| m.mention.identifiers.iter()).collect();
    let keys: BTreeSet<(_, _)> = all
        .iter()
        .filter(|i| i.key)
        .map(|i| (i.scheme, i.value.clone()))
        .collect();
    let mut out: Vec<Identifier> = all.iter().filter(|i| i.key).map(|i| (*i).clone()).collect();
    // An unreliable identifier equal to a key adds nothing.
    out.extend(
        all.iter()
            .filter(|i| !i.key && !keys.contains(&(i.scheme, i.value.clone())))
            .map(|i| (*i).clone()),
    );
    out
}

fn survive(candidates: &[Candidate<'_>], authority: Option<Department>) -> Option<SurvivingValue> {
    if let Some(department) = authority {
        let from_authority: Vec<&Candidate<'_>> = candidates
            .iter()
            .filter(|c| department_of(&c.mention.source.record_type) == department.as_str())
            .collect();
        if let Some(best) = most_recent(&from_authority) {
            return Some(surviving(best, SurvivalRule::Authority));
        }
    }
    let derived: Vec<&Candidate<'_>> = candidates.iter().filter(|c| c.derived).collect();
    if !derived.is_empty() {
        let (best, _) = agreement(&derived)?;
        return Some(surviving(best, SurvivalRule::IdentityNumber));
    }
    let all: Vec<&Candidate<'_>> = candidates.iter().collect();
    let (best, votes) = agreement(&all)?;
    let rule = if votes > 1 {
        SurvivalRule::Agreement
    } else {
        SurvivalRule::Recency
    };
    Some(surviving(best, rule))
}

/// The value with the most sources behind it (ties to the most recent), and its votes.
fn agreement<'a, 'b>(candidates: &[&'b Candidate<'a>]) -> Option<(&'b Candidate<'a>, usize)> {
    let mut groups: BTreeMap<&str, Vec<&'b Candidate<'a>>> = BTreeMap::new();
    for candidate in candidates {
        groups.entry(candidate.comparable.as_str()).or_default().push(candidate);
    }
    groups
        .values()
        .filter_map(|group| Some((most_recent(group)?, group.len())))
        .max_by(|(a, votes_a), (b, votes_b)| votes_a.cmp(votes_b).then_with(|| recency(a).cmp(&recency(b))))
}

fn most_recent<'a, 'b>(candidates: &[&'b Candidate<'a>]) -> Option<&'b Candidate<'a>> {
    candidates.iter().copied().max_by(|a, b| recency(a).cmp(&recency(b)))
}

/// Orders by the date the value holds from where a record says (a marital status by its
/// registration date, not by when the record was last edited; an undated value before
/// any dated one), then by source version, then by source address so that the choice
/// is the same whatever order the mentions came in.
fn recency<'a>(candidate: &Candidate<'a>) -> (&'a str, i64, std::cmp::Reverse<&'a crate::unified::MentionRef>) {
    (
        candidate.as_of,
        candidate.mention.source_version,
        std::cmp::Reverse(&candidate.mention.source),
    )
}

fn surviving(candidate: &Candidate<'_>, rule: SurvivalRule) -> SurvivingValue {
    SurvivingValue {
        value: candidate.value.clone(),
        source: Some(candidate.mention.source.clone()),
        rule,
    }
}

/// The legal representative: the person the authoritative department names, else the
/// one most sources name, else the most recent.
fn legal_representative(
    relations: &[RelatedEntity],
    mentions: &[&KeptMention],
    authorities: &Authorities,
) -> Option<SurvivingValue> {
    let versions: HashMap<&crate::unified::MentionRef, &KeptMention> =
        mentions.iter().map(|m| (&m.source, *m)).collect();
    let candidates: Vec<Candidate<'_>> = relations
        .iter()
        .filter(|r| r.relation == RelationKind::LegalRepresentativeOf && !r.outgoing)
        .filter_map(|r| {
            let person = r.unified_id.clone()?;
            Some(Candidate {
                mention: versions.get(&r.source)?,
                comparable: person.clone(),
                value: person,
                derived: false,
                as_of: "",
            })
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    survive(
        &candidates,
        authorities.of(EntityKind::Organisation, LEGAL_REPRESENTATIVE),
    )
}

fn department_of(record_type: &str) -> String {
    record_type
        .parse::<RecordType>()
        .map(|t| t.department().as_str().to_owned())
        .unwrap_or_else(|_| record_type.split('.').next().unwrap_or(record_type).to_owned())
}

fn source_json(mention: &KeptMention) -> Value {
    serde_json::to_value(&mention.source).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use tongban_adapters::model::{Mention, Observation, Role, Slot};

    use super::*;
    use crate::unified::{KeptRelation, MentionRef};

    fn kept(record_type: &str, source_id: &str, version: i64, observations: &[(Attribute, &str, bool)]) -> KeptMention {
        KeptMention {
            source: MentionRef {
                record_type: record_type.to_owned(),
                source_id: source_id.to_owned(),
                role: "x".to_owned(),
                index: 0,
            },
            source_version: version,
            mention: Mention {
                slot: Slot::new(Role::Insured, 0),
                kind: EntityKind::Person,
                identifiers: Vec::new(),
                observations: observations
                    .iter()
                    .map(|(attribute, value, derived)| Observation {
                        attribute: *attribute,
                        value: (*value).to_owned(),
                        typed: (*value).to_owned(),
                        derived: *derived,
                        as_of: None,
                    })
                    .collect(),
                facts: Vec::new(),
                flags: Vec::new(),
                match_name: String::new(),
            },
            relations: Vec::new(),
            placement: None,
            contradictions: Vec::new(),
        }
    }

    fn unify_people(mentions: &[KeptMention]) -> UnifiedRecord {
        unify(
            &"P00000000001".to_owned(),
            EntityKind::Person,
            1,
            mentions,
            &HashMap::new(),
            &Authorities::default(),
        )
    }

    #[test]
    fn derived_beats_agreement_and_agreement_beats_recency() {
        let record = unify_people(&[
            kept(
                "hrss.insured_person",
                "a",
                30,
                &[(Attribute::BirthDate, "1990-01-02", false)],
            ),
            kept(
                "civil.marriage",
                "b",
                20,
                &[(Attribute::BirthDate, "1990-01-02", false)],
            ),
            kept(
                "tax.taxpayer",
                "c",
                10,
                &[
                    (Attribute::BirthDate, "1990-01-20", true),
                    (Attribute::Phone, "13800000000", false),
                ],
            ),
            kept(
                "housingfund.account",
                "d",
                40,
                &[(Attribute::Phone, "13900000000", false)],
            ),
            kept(
                "hrss.insured_person",
                "e",
                5,
                &[(Attribute::Phone, "13800000000", false)],
            ),
        ]);
        let birth = &record.attributes["birth_date"];
        assert_eq!(
            (birth.value.as_str(), birth.rule),
            ("1990-01-20", SurvivalRule::IdentityNumber)
        );
        assert_eq!(birth.source.as_ref().map(|s| s.source_id.as_str()), Some("c"));
        let phone = &record.attributes["phone"];
        assert_eq!(
            (phone.value.as_str(), phone.rule),
            ("13800000000", SurvivalRule::Agreement)
        );
        assert_eq!(
            phone.source.as_ref().map(|s| s.source_id.as_str()),
            Some("c"),
            "the most recent of the agreeing sources"
        );
        assert_eq!(record.variants["birth_date"], ["1990-01-02", "1990-01-20"]);
        assert_eq!(record.sources.len(), 5);
    }

    #[test]
    fn the_authority_wins_and_recency_decides_among_equals() {
        let record = unify_people(&[
            kept(
                "civil.marriage",
                "m1",
                10,
                &[(Attribute::MaritalStatus, "married", false)],
            ),
            kept(
                "hrss.insured_person",
                "h",
                50,
                &[(Attribute::MaritalStatus, "divorced", false)],
            ),
            kept(
                "hrss.insured_person",
                "h2",
                60,
                &[(Attribute::MaritalStatus, "divorced", false)],
            ),
            kept(
                "civil.marriage",
                "m0",
                5,
                &[(Attribute::MaritalStatus, "divorced", false)],
            ),
        ]);
        let status = &record.attributes["marital_status"];
        assert_eq!(
            (status.value.as_str(), status.rule),
            ("married", SurvivalRule::Authority)
        );
        let lone = unify_people(&[
            kept(
                "tax.taxpayer",
                "t",
                1,
                &[(Attribute::Address, "凤城街道海河路1号", false)],
            ),
            kept(
                "hrss.insured_person",
                "h",
                2,
                &[(Attribute::Address, "凤城街道海河路2号", false)],
            ),
        ]);
        let address = &lone.attributes["address"];
        assert_eq!(
            (address.value.as_str(), address.rule),
            ("凤城街道海河路2号", SurvivalRule::Recency)
        );
    }

    #[test]
    fn relations_follow_redirects_and_the_market_names_the_representative() {
        let mut tax = kept("tax.taxpayer", "t", 99, &[]);
        tax.relations.push(KeptRelation {
            relation: RelationKind::LegalRepresentativeOf,
            outgoing: false,
            other: Some("P00000000007".to_owned()),
            detail: None,
        });
        let mut market = kept("market.entity", "m", 1, &[]);
        market.relations.push(KeptRelation {
            relation: RelationKind::LegalRepresentativeOf,
            outgoing: false,
            other: Some("P00000000003".to_owned()),
            detail: None,
        });
        let redirects = HashMap::from([("P00000000003".to_owned(), "P00000000002".to_owned())]);
        let record = unify(
            &"O00000000001".to_owned(),
            EntityKind::Organisation,
            4,
            &[tax, market],
            &redirects,
            &Authorities::default(),
        );
        let representative = &record.attributes[LEGAL_REPRESENTATIVE];
        assert_eq!(representative.value, "P00000000002");
        assert_eq!(representative.rule, SurvivalRule::Authority);
        assert_eq!(record.relations.len(), 2);
    }
}
