//! Sharing rules: which parts of a unified record each caller may read.
//!
//! The platform and stewards read everything; operations read no personal data at all;
//! a department reads what the rules grant it — by default the identifiers, the names
//! and the facts it stated itself. Unless granted `sources`, a department sees nothing
//! that tells which other departments know the person (their sources, register numbers,
//! provenance, typed variants, flags, relations): that a person is known to civil
//! affairs is itself personal data.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use tongban_adapters::model::{Attribute, IdScheme};
use tongban_adapters::Department;

use crate::identity::Identity;
use crate::unified::UnifiedRecord;

/// A part of a unified record that can be granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Identifiers,
    /// The name attribute.
    Names,
    /// Every attribute.
    Attributes,
    Relations,
    QualityFlags,
    /// Every source, not only the reader's own, with the provenance of every value,
    /// other departments' register numbers and the variants as typed.
    Sources,
    /// The facts a department stated.
    Facts(Department),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Identifiers => f.write_str("identifiers"),
            Part::Names => f.write_str("names"),
            Part::Attributes => f.write_str("attributes"),
            Part::Relations => f.write_str("relations"),
            Part::QualityFlags => f.write_str("quality_flags"),
            Part::Sources => f.write_str("sources"),
            Part::Facts(department) => write!(f, "facts:{department}"),
        }
    }
}

impl FromStr for Part {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identifiers" => Ok(Part::Identifiers),
            "names" => Ok(Part::Names),
            "attributes" => Ok(Part::Attributes),
            "relations" => Ok(Part::Relations),
            "quality_flags" => Ok(Part::QualityFlags),
            "sources" => Ok(Part::Sources),
            other => match other.strip_prefix("facts:") {
                Some(department) => department
                    .parse::<Department>()
                    .map(Part::Facts)
                    .map_err(|_| format!("unknown department in {other:?}")),
                None => Err(format!(
                    "unknown part {other:?}; parts are identifiers, names, attributes, relations, \
                     quality_flags, sources and facts:<department>"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What each department may read, from the `[sharing]` table of the configuration:
/// `tax = ["identifiers", "names", "attributes", "facts:tax", "facts:market"]`.
/// A department not listed gets [`SharingRules::default_grants`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SharingRules {
    pub departments: BTreeMap<Department, Vec<Part>>,
}

/// The parts one caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    Everything,
    Nothing,
    Department { department: Department, parts: Vec<Part> },
}

impl SharingRules {
    /// Identifiers, names and the department's own facts.
    pub fn default_grants(department: Department) -> Vec<Part> {
        vec![Part::Identifiers, Part::Names, Part::Facts(department)]
    }

    pub fn grants(&self, identity: &Identity) -> Grants {
        match identity {
            Identity::Platform | Identity::Steward(_) => Grants::Everything,
            Identity::Ops => Grants::Nothing,
            Identity::Department(department) => Grants::Department {
                department: *department,
                parts: self
                    .departments
                    .get(department)
                    .cloned()
                    .unwrap_or_else(|| Self::default_grants(*department)),
            },
        }
    }
}

impl Grants {
    /// The first of `asked` not granted, if any.
    pub fn refuses<'a>(&self, asked: &'a [Part]) -> Option<&'a Part> {
        match self {
            Grants::Everything => None,
            Grants::Nothing => asked.first(),
            Grants::Department { parts, .. } => asked.iter().find(|part| !parts.contains(part)),
        }
    }

    pub fn may_read_anything(&self) -> bool {
        !matches!(self, Grants::Nothing)
    }

    /// The record reduced to what these grants, narrowed to `asked` when not empty,
    /// allow.
    pub fn view(&self, record: &UnifiedRecord, asked: &[Part]) -> UnifiedRecord {
        // `department` is None for readers who see everything.
        let (department, granted): (Option<Department>, Vec<Part>) = match self {
            Grants::Everything => (None, everything(record)),
            Grants::Nothing => (None, Vec::new()),
            Grants::Department { department, parts } => (Some(*department), parts.clone()),
        };
        let parts: Vec<Part> = if asked.is_empty() {
            granted
        } else {
            granted.into_iter().filter(|p| asked.contains(p)).collect()
        };
        let has = |part: &Part| parts.contains(part);
        let own = |record_type: &str| {
            department.is_none() || department.is_some_and(|d| d.record_types().any(|t| t.as_str() == record_type))
        };
        // What another department holds is shown only with `sources`: even a register
        // number or a typed variant tells that the department knows the person.
        let all_sources = has(&Part::Sources);
        let visible = |record_type: &str| all_sources || own(record_type);
        let mut view = UnifiedRecord::merged(record.unified_id.clone(), record.kind, record.version, String::new());
        view.merged_into.clone_from(&record.merged_into);
        if has(&Part::Identifiers) {
            view.identifiers = record
                .identifiers
                .iter()
                .filter(|identifier| {
                    identifier.scheme != IdScheme::DepartmentNumber
                        || all_sources
                        || department.is_some_and(|d| identifier.value.starts_with(&format!("{d}.")))
                })
                .cloned()
                .collect();
        }
        for (attribute, value) in &record.attributes {
            let is_name = attribute == Attribute::Name.as_str();
            if has(&Part::Attributes) || (is_name && has(&Part::Names)) {
                let mut value = value.clone();
                if !value.source.as_ref().is_some_and(|s| visible(&s.record_type)) {
                    value.source = None;
                }
                view.attributes.insert(attribute.clone(), value);
                if all_sources {
                    if let Some(variants) = record.variants.get(attribute) {
                        view.variants.insert(attribute.clone(), variants.clone());
                    }
                }
            }
        }
        for (department, facts) in &record.facts {
            if let Ok(parsed) = department.parse::<Department>() {
                if has(&Part::Facts(parsed)) {
                    view.facts.insert(department.clone(), facts.clone());
                }
            }
        }
        if has(&Part::Relations) {
            view.relations = record
                .relations
                .iter()
                .filter(|r| visible(&r.source.record_type))
                .cloned()
                .collect();
        }
        view.quality_flags = record
            .quality_flags
            .iter()
            .filter(|f| (has(&Part::QualityFlags) && all_sources) || own(&f.source.record_type))
            .cloned()
            .collect();
        view.sources = record
            .sources
            .iter()
            .filter(|s| visible(&s.record_type))
            .cloned()
            .collect();
        view
    }
}

fn everything(record: &UnifiedRecord) -> Vec<Part> {
    let mut parts = vec![
        Part::Identifiers,
        Part::Names,
        Part::Attributes,
        Part::Relations,
        Part::QualityFlags,
        Part::Sources,
    ];
    parts.extend(
        record
            .facts
            .keys()
            .filter_map(|d| d.parse::<Department>().ok())
            .map(Part::Facts),
    );
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_and_print_alike() {
        for text in [
            "identifiers",
            "names",
            "attributes",
            "relations",
            "quality_flags",
            "sources",
            "facts:civil",
        ] {
            let part: Part = text.parse().unwrap();
            assert_eq!(part.to_string(), text);
        }
        assert!("facts:police".parse::<Part>().is_err());
        assert!("everything".parse::<Part>().is_err());
    }

    #[test]
    fn a_department_gets_identifiers_names_and_its_own_facts_by_default() {
        let rules: SharingRules = toml::from_str(r#"hrss = ["identifiers", "attributes", "facts:tax"]"#).unwrap();
        let tax = rules.grants(&Identity::Department(Department::Tax));
        assert_eq!(tax.refuses(&[Part::Names, Part::Facts(Department::Tax)]), None);
        assert_eq!(
            tax.refuses(&[Part::Names, Part::Facts(Department::Civil)]),
            Some(&Part::Facts(Department::Civil))
        );
        let hrss = rules.grants(&Identity::Department(Department::Hrss));
        assert_eq!(hrss.refuses(&[Part::Attributes, Part::Facts(Department::Tax)]), None);
        assert_eq!(
            hrss.refuses(&[Part::Facts(Department::Hrss)]),
            Some(&Part::Facts(Department::Hrss))
        );
        assert!(!rules.grants(&Identity::Ops).may_read_anything());
        assert_eq!(rules.grants(&Identity::Platform).refuses(&[Part::Sources]), None);
    }
}
