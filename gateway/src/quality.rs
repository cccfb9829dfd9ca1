//! Data-quality reports: a department lists its own current records that carry quality
//! flags, with counts and source IDs, so that it can correct them at the source.
//!
//! Two kinds of flag are reported:
//! - those normalisation found in each record's current version (kept with its
//!   mentions by the store, see `Store::commit`): a record corrected and pushed again
//!   without the defect drops out;
//! - [`FlagCode::ContradictsAuthority`], computed by the hub across departments
//!   ([`contradictions`]): a mention states a value of an attribute whose unified value
//!   survived by authority (survivorship's configured `Authorities`) from another
//!   department, and the two differ.
//!
//! Contradictions are computed when an entity's unified record is rebuilt, in the same
//! transaction (`store/unify.rs`, `publish`), and kept with each mention; not at report
//! time. A report counts over all of a department's records, and working contradictions
//! out then would read every one of its mentions and the unified record of each; at
//! rebuild the record and all its mentions are at hand, and only a change is written.
//! They stay current because whatever can change them (a push of either department, a
//! merge, a split, a rematch) rebuilds the entity.
//!
//! [`QualityDesk`] is the door: only a department calls it, about its own record types.
//! A report holds codes, pointers, messages and the caller's own source IDs, never a
//! value (flag messages never contain one), so neither reports nor refusals are
//! written to the audit log, which is for reads of personal data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tongban_adapters::model::{Attribute, FlagCode, QualityFlag, RelationKind};
use tongban_adapters::{Department, RecordType};

use crate::identity::Identity;
use crate::resolve::survivorship::LEGAL_REPRESENTATIVE;
use crate::store::{Store, StoreError};
use crate::unified::{KeptMention, MentionRef, SurvivalRule, UnifiedRecord};

/// Records per page when the caller names no size.
pub const DEFAULT_PAGE: usize = 100;
/// Records per page at most.
pub const MAX_PAGE: usize = 1000;

// ---------------------------------------------------------------------------------------
// Contradictions with an authority

/// The contradictions of each of `mentions` (the current mentions of the entity whose
/// rebuilt record is `record`) with the values authorities gave. Mentions without any
/// are absent. Each flag names the attribute and the authority, never a value.
pub fn contradictions(record: &UnifiedRecord, mentions: &[KeptMention]) -> HashMap<MentionRef, Vec<QualityFlag>> {
    let by_source: HashMap<&MentionRef, &KeptMention> = mentions.iter().map(|m| (&m.source, m)).collect();
    let mut found: HashMap<MentionRef, BTreeSet<QualityFlag>> = HashMap::new();
    for (attribute_name, surviving) in &record.attributes {
        if surviving.rule != SurvivalRule::Authority {
            continue;
        }
        let Some(authority_source) = &surviving.source else {
            continue;
        };
        let Some(authority) = department_of(&authority_source.record_type) else {
            continue;
        };
        let flag = || {
            QualityFlag::new(
                FlagCode::ContradictsAuthority,
                "",
                format!(
                    "{attribute_name} differs from the one given by {}, the authority for it",
                    authority.as_str()
                ),
            )
        };
        if attribute_name == LEGAL_REPRESENTATIVE {
            // The value is the representative's unified ID; each organisation mention
            // names its representative through a relation kept in the record.
            for relation in &record.relations {
                if relation.relation != RelationKind::LegalRepresentativeOf
                    || relation.outgoing
                    || department_of(&relation.source.record_type) == Some(authority)
                {
                    continue;
                }
                if relation
                    .unified_id
                    .as_ref()
                    .is_some_and(|named| *named != surviving.value)
                {
                    found.entry(relation.source.clone()).or_default().insert(flag());
                }
            }
            continue;
        }
        let Some(attribute) = Attribute::parse(attribute_name) else {
            continue;
        };
        let authority_mention = by_source.get(authority_source).copied();
        for mention in mentions {
            if department_of(&mention.source.record_type) == Some(authority) {
                continue;
            }
            let mut values = mention
                .mention
                .observations
                .iter()
                .filter(|o| o.attribute == attribute)
                .peekable();
            if values.peek().is_none() {
                continue;
            }
            let agrees = if attribute == Attribute::Name {
                // Names are compared as matching compares them: traditional and
                // simplified, spacing and full-width forms are one name.
                let theirs = authority_mention.map(|m| m.mention.match_name.as_str()).unwrap_or("");
                let ours = mention.mention.match_name.as_str();
                if theirs.is_empty() || ours.is_empty() {
                    values.any(|o| o.value == surviving.value)
                } else {
                    theirs == ours
                }
            } else {
                values.any(|o| same_meaning(attribute, &o.value, &surviving.value))
            };
            if !agrees {
                found.entry(mention.source.clone()).or_default().insert(flag());
            }
        }
    }
    found
        .into_iter()
        .map(|(source, flags)| (source, flags.into_iter().collect()))
        .collect()
}

/// Whether two normalised values of `attribute` say the same, as far as a department
/// can say it. Departments state an organisation's status in vocabularies of their
/// own (the tax bureau has no "revoked" or "moved out", market supervision no
/// "abnormal"), so statuses are compared on what both can tell: whether the
/// organisation is registered as operating. `abnormal` (the tax bureau's finding that a
/// taxpayer stopped filing) says nothing about that and contradicts nothing.
fn same_meaning(attribute: Attribute, ours: &str, theirs: &str) -> bool {
    fn operating(status: &str) -> Option<bool> {
        match status {
            "active" => Some(true),
            "moved_out" | "deregistered" | "revoked" => Some(false),
            _ => None,
        }
    }
    match attribute {
        Attribute::Status => match (operating(ours), operating(theirs)) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        },
        _ => ours == theirs,
    }
}

fn department_of(record_type: &str) -> Option<Department> {
    record_type.parse::<RecordType>().ok().map(|t| t.department())
}

// ---------------------------------------------------------------------------------------
// The report

/// Which flagged records a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagFilter {
    /// Record types, all of one department (the caller's).
    pub record_types: Vec<String>,
    /// Only records with a flag of this code, and only those flags.
    pub code: Option<FlagCode>,
}

/// One current source record and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedRecord {
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    /// Sorted, without duplicates.
    pub flags: Vec<QualityFlag>,
}

/// How many current records of a type carry a flag of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagCount {
    pub record_type: String,
    pub code: FlagCode,
    pub records: u64,
}

/// Counts over everything a filter selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagCounts {
    /// Ordered by record type, then code.
    pub counts: Vec<FlagCount>,
    /// Records with any selected flag (a record with two codes counts once).
    pub records: u64,
}

/// A stored mention's flags, as a store reads them: what [`flagged_records`] builds
/// records of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionFlags {
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    pub flags: Vec<QualityFlag>,
}

/// Gathers mention flags (in record order) into records, keeping only flags of `code`
/// when given and records left with a flag.
pub fn flagged_records(rows: Vec<MentionFlags>, code: Option<FlagCode>) -> Vec<FlaggedRecord> {
    let mut records: BTreeMap<(String, String), (i64, BTreeSet<QualityFlag>)> = BTreeMap::new();
    for row in rows {
        let entry = records
            .entry((row.record_type, row.source_id))
            .or_insert_with(|| (row.source_version, BTreeSet::new()));
        entry
            .1
            .extend(row.flags.into_iter().filter(|f| code.is_none_or(|code| f.code == code)));
    }
    records
        .into_iter()
        .filter(|(_, (_, flags))| !flags.is_empty())
        .map(|((record_type, source_id), (source_version, flags))| FlaggedRecord {
            record_type,
            source_id,
            source_version,
            flags: flags.into_iter().collect(),
        })
        .collect()
}

/// What a department asks for, as it asked (strings checked by the desk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRequest {
    /// One of the caller's record types; `None` for all of them.
    pub record_type: Option<String>,
    /// A flag code, e.g. `WRONG_CHECK_CHARACTER`; `None` for all.
    pub code: Option<String>,
    /// 0 means [`DEFAULT_PAGE`]; capped at [`MAX_PAGE`].
    pub page_size: usize,
    /// A previous report's `next_after`; `None` to start.
    pub after: Option<String>,
}

/// A department's report: counts over everything selected, and one page of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub counts: FlagCounts,
    pub records: Vec<FlaggedRecord>,
    /// The cursor of the next page; `None` when no record follows.
    pub next_after: Option<String>,
}

/// A page cursor: the last record of a page.
pub fn cursor(record_type: &str, source_id: &str) -> String {
    format!("{record_type}:{source_id}")
}

/// Reads a cursor back; record types hold no `:`, so the first one separates.
fn parse_cursor(text: &str) -> Option<(String, String)> {
    let (record_type, source_id) = text.split_once(':')?;
    (!record_type.is_empty() && !source_id.is_empty()).then(|| (record_type.to_owned(), source_id.to_owned()))
}

/// Why a report was not given.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("{identity} is not a department: quality reports are for the departments' own records")]
    NotADepartment { identity: Identity },
    #[error("{identity} may not see other departments' quality reports: they are for stewards and operators")]
    NotStewardOrOps { identity: Identity },
    #[error("{identity} may not see the quality of {record_type} records: they belong to {owner}")]
    NotOwner {
        identity: Identity,
        record_type: String,
        owner: Department,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Quality reports behind their authorisation: what the `Quality` service calls.
pub struct QualityDesk<S> {
    store: S,
}

impl<S: Store> QualityDesk<S> {
    pub fn new(store: S) -> Self {
        QualityDesk { store }
    }

    /// The report `request` asks for, about `identity`'s own records only.
    pub async fn report(&self, identity: &Identity, request: ReportRequest) -> Result<Report, QualityError> {
        let Identity::Department(department) = identity else {
            return Err(QualityError::NotADepartment {
                identity: identity.clone(),
            });
        };
        self.department_report(identity, *department, request).await
    }

    /// A department's report as the console shows it to stewards and operators: codes,
    /// pointers and source IDs, no personal value (as the department itself sees it).
    pub async fn report_on(
        &self,
        identity: &Identity,
        department: Department,
        request: ReportRequest,
    ) -> Result<Report, QualityError> {
        if !matches!(identity, Identity::Steward(_) | Identity::Ops) {
            return Err(QualityError::NotStewardOrOps {
                identity: identity.clone(),
            });
        }
        self.department_report(identity, department, request).await
    }

    async fn department_report(
        &self,
        identity: &Identity,
        department: Department,
        request: ReportRequest,
    ) -> Result<Report, QualityError> {
        let record_types: Vec<String> = match request.record_type.as_deref().map(str::trim) {
            None | Some("") => department.record_types().map(|t| t.as_str().to_owned()).collect(),
            Some(name) => {
                let record_type = name
                    .parse::<RecordType>()
                    .map_err(|_| QualityError::InvalidArgument(format!("unknown record type {name:?}")))?;
                if record_type.department() != department {
                    return Err(QualityError::NotOwner {
                        identity: identity.clone(),
                        record_type: record_type.as_str().to_owned(),
                        owner: record_type.department(),
                    });
                }
                vec![record_type.as_str().to_owned()]
            }
        };
        let code = match request.code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(FlagCode::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
                let known: Vec<&str> = FlagCode::ALL.iter().map(|c| c.as_str()).collect();
                QualityError::InvalidArgument(format!("unknown flag code {name:?} (one of {})", known.join(", ")))
            })?),
        };
        let after = match request.after.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_cursor(text).ok_or_else(|| {
                QualityError::InvalidArgument(format!(
                    "after must be a previous report's next_after (<record_type>:<source_id>), not {text:?}"
                ))
            })?),
        };
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let filter = FlagFilter { record_types, code };
        let counts = self.store.flag_counts(&filter).await?;
        // One more than the page, to tell whether another page follows.
        let mut records = self.store.flagged_records(&filter, after, limit + 1).await?;
        let next_after = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| cursor(&r.record_type, &r.source_id))
        } else {
            None
        };
        Ok(Report {
            counts,
            records,
            next_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tongban_adapters::model::{EntityKind, Mention, Observation, Role, Slot};

    use super::*;
    use crate::unified::{RelatedEntity, SurvivingValue};

    fn source(record_type: &str, source_id: &str) -> MentionRef {
        MentionRef {
            record_type: record_type.to_owned(),
            source_id: source_id.to_owned(),
            role: "taxpayer".to_owned(),
            index: 0,
        }
    }

    fn kept(record_type: &str, source_id: &str, name: &str, match_name: &str, status: &str) -> KeptMention {
        let observation = |attribute, value: &str| Observation {
            attribute,
            value: value.to_owned(),
            typed: value.to_owned(),
            derived: false,
            as_of: None,
        };
        KeptMention {
            source: source(record_type, source_id),
            source_version: 1,
            mention: Mention {
                slot: Slot::new(Role::Taxpayer, 0),
                kind: EntityKind::Organisation,
                identifiers: Vec::new(),
                observations: vec![
                    observation(Attribute::Name, name),
                    observation(Attribute::Status, status),
                ],
                facts: Vec::new(),
                flags: Vec::new(),
                match_name: match_name.to_owned(),
            },
            relations: Vec::new(),
            placement: None,
            contradictions: Vec::new(),
        }
    }

    fn record(attributes: &[(&str, &str, MentionRef, SurvivalRule)]) -> UnifiedRecord {
        let mut record = UnifiedRecord::merged("O00000000001".to_owned(), EntityKind::Organisation, 1, String::new());
        record.merged_into = None;
        record.attributes = attributes
            .iter()
            .map(|(name, value, source, rule)| {
                (
                    (*name).to_owned(),
                    SurvivingValue {
                        value: (*value).to_owned(),
                        source: Some(source.clone()),
                        rule: *rule,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        record
    }

    #[test]
    fn a_value_differing_from_the_authoritys_is_flagged_without_either_value() {
        let market = kept("market.entity", "M1", "海阳甲公司", "海阳甲公司", "active");
        let tax = kept("tax.taxpayer", "T1", "海阳乙公司", "海阳乙公司", "active");
        let same_name = kept("tax.taxpayer", "T2", "海陽甲公司", "海阳甲公司", "active");
        let record = record(&[
            ("name", "海阳甲公司", market.source.clone(), SurvivalRule::Authority),
            ("status", "active", market.source.clone(), SurvivalRule::Authority),
        ]);
        let found = contradictions(&record, &[market.clone(), tax.clone(), same_name.clone()]);
        assert_eq!(found.len(), 1, "{found:?}");
        let flags = &found[&tax.source];
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].code, FlagCode::ContradictsAuthority);
        assert_eq!(flags[0].pointer, "");
        assert!(flags[0].message.contains("name") && flags[0].message.contains("market"));
        assert!(!flags[0].message.contains("公司"), "{}", flags[0].message);
    }

    #[test]
    fn values_that_survived_otherwise_are_no_contradiction() {
        let market = kept("market.entity", "M1", "海阳甲公司", "海阳甲公司", "active");
        let tax = kept("tax.taxpayer", "T1", "海阳乙公司", "海阳乙公司", "abnormal");
        let record = record(&[
            ("name", "海阳乙公司", tax.source.clone(), SurvivalRule::Recency),
            ("status", "active", market.source.clone(), SurvivalRule::Agreement),
        ]);
        assert!(contradictions(&record, &[market, tax]).is_empty());
    }

    #[test]
    fn statuses_contradict_only_on_whether_the_organisation_operates() {
        let market = kept("market.entity", "M1", "甲", "甲", "revoked");
        let record = record(&[("status", "revoked", market.source.clone(), SurvivalRule::Authority)]);
        for (status, contradicts) in [
            ("active", true),
            ("deregistered", false),
            ("abnormal", false),
            ("revoked", false),
        ] {
            let tax = kept("tax.taxpayer", "T1", "甲", "甲", status);
            let found = contradictions(&record, &[market.clone(), tax]);
            assert_eq!(!found.is_empty(), contradicts, "{status}: {found:?}");
        }
    }

    #[test]
    fn another_legal_representative_is_flagged() {
        let market = kept("market.entity", "M1", "甲", "甲", "active");
        let tax = kept("tax.taxpayer", "T1", "甲", "甲", "active");
        let mut record = record(&[(
            LEGAL_REPRESENTATIVE,
            "P00000000002",
            market.source.clone(),
            SurvivalRule::Authority,
        )]);
        for (source, person) in [(&market.source, "P00000000002"), (&tax.source, "P00000000003")] {
            record.relations.push(RelatedEntity {
                relation: RelationKind::LegalRepresentativeOf,
                outgoing: false,
                unified_id: Some(person.to_owned()),
                detail: None,
                source: source.clone(),
            });
        }
        let found = contradictions(&record, &[market, tax.clone()]);
        assert_eq!(found.keys().collect::<Vec<_>>(), vec![&tax.source]);
        assert!(found[&tax.source][0].message.contains("legal_representative"));
    }

    #[test]
    fn mention_flags_gather_into_records_filtered_by_code() {
        let flag = |code, pointer: &str| QualityFlag::new(code, pointer, "x");
        let rows = vec![
            MentionFlags {
                record_type: "hrss.insured_person".to_owned(),
                source_id: "A".to_owned(),
                source_version: 2,
                flags: vec![flag(FlagCode::UnknownCode, "/mz"), flag(FlagCode::UnknownCode, "/mz")],
            },
            MentionFlags {
                record_type: "hrss.insured_person".to_owned(),
                source_id: "A".to_owned(),
                source_version: 2,
                flags: vec![flag(FlagCode::WrongCheckCharacter, "/sfzhm")],
            },
            MentionFlags {
                record_type: "hrss.insured_person".to_owned(),
                source_id: "B".to_owned(),
                source_version: 1,
                flags: vec![flag(FlagCode::WrongCheckCharacter, "/dwtyshxydm")],
            },
        ];
        let all = flagged_records(rows.clone(), None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].flags.len(), 2, "duplicates removed");
        let unknown = flagged_records(rows, Some(FlagCode::UnknownCode));
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].source_id, "A");
        assert_eq!(unknown[0].flags, vec![flag(FlagCode::UnknownCode, "/mz")]);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            parse_cursor(&cursor("tax.taxpayer", "a:b")),
            Some(("tax.taxpayer".to_owned(), "a:b".to_owned()))
        );
        assert_eq!(parse_cursor("tax.taxpayer"), None);
        assert_eq!(parse_cursor(":x"), None);
    }
}
