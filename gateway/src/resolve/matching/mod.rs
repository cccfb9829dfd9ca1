//! Probabilistic matching (Fellegi–Sunter) for the mentions that no key places.
//!
//! A mention's [`Profile`] gives blocking keys; every entity sharing one is a
//! candidate. Each field of the mention and the candidate is compared at a graded
//! [`Level`]; each level weighs `log2(m / u)` bits, `m` being how often two records of
//! one entity agree at that level and `u` how often two records of different entities
//! do. An exact name weighs by its frequency in the store (term-frequency adjustment:
//! 王伟 says less than a rare name). The sum is compared with two thresholds: at or
//! above `link` the mention joins the candidate, at or above `review` a steward is
//! asked (and the mention stays its own entity meanwhile), below it is a new entity.
//!
//! The same score is the second opinion on a key: a key whose entity disagrees with
//! everything else the mention says (sum below `key_veto`) is not followed blindly.
//!
//! The defaults of [`MatchSettings`] were estimated with `tongban estimate` on the
//! synthetic city; `deploy/tongban.example.toml` documents them.

pub mod compare;
pub mod estimate;
pub mod profile;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tongban_adapters::model::EntityKind;

pub use compare::{Field, Level};
pub use profile::Profile;

/// Probabilities of one comparison level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probabilities {
    /// P(level | the two are one entity).
    pub m: f64,
    /// P(level | the two are different entities).
    pub u: f64,
}

impl Probabilities {
    /// The level's weight in bits.
    pub fn weight(self) -> f64 {
        log2_ratio(self.m, self.u)
    }
}

fn log2_ratio(m: f64, u: f64) -> f64 {
    const FLOOR: f64 = 1e-9;
    (m.max(FLOOR) / u.max(FLOOR)).log2()
}

/// Weights and thresholds for one kind of entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// Total weight (bits) at or above which a mention joins its best candidate.
    pub link: f64,
    /// Total weight at or above which (and below `link`) the pair goes to review.
    pub review: f64,
    /// Field → level → m and u. A level not listed weighs nothing.
    pub fields: BTreeMap<Field, BTreeMap<Level, Probabilities>>,
}

impl KindSettings {
    pub fn probabilities(&self, field: Field, level: Level) -> Option<Probabilities> {
        self.fields.get(&field)?.get(&level).copied()
    }
}

/// Matching configuration (`[matching]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSettings {
    /// Off: only keys link (for measuring what matching costs, or for a department
    /// whose every record carries a checked number).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A key joins its entity unless the rest of the evidence sums below this: then
    /// the mention becomes its own entity and the pair goes to review.
    #[serde(default = "default_key_veto")]
    pub key_veto: f64,
    /// Term frequencies are counted against at least this many entities, so that a
    /// young store does not think every name common.
    #[serde(default = "default_tf_population")]
    pub tf_minimum_population: u64,
    /// Candidates read per blocking key: bounds the work a very common key can cause.
    #[serde(default = "default_candidates_per_block")]
    pub candidates_per_block: usize,
    #[serde(default = "defaults::person")]
    pub person: KindSettings,
    #[serde(default = "defaults::organisation")]
    pub organisation: KindSettings,
}

fn yes() -> bool {
    true
}

fn default_key_veto() -> f64 {
    -12.0
}

fn default_tf_population() -> u64 {
    10_000
}

fn default_candidates_per_block() -> usize {
    40
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings {
            enabled: true,
            key_veto: default_key_veto(),
            tf_minimum_population: default_tf_population(),
            candidates_per_block: default_candidates_per_block(),
            person: defaults::person(),
            organisation: defaults::organisation(),
        }
    }
}

impl MatchSettings {
    pub fn of(&self, kind: EntityKind) -> &KindSettings {
        match kind {
            EntityKind::Person => &self.person,
            EntityKind::Organisation => &self.organisation,
        }
    }

    /// Problems a configuration must not have.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (kind, settings) in [("person", &self.person), ("organisation", &self.organisation)] {
            if settings.review > settings.link {
                problems.push(format!(
                    "matching.{kind}: review threshold {} is above the link threshold {}",
                    settings.review, settings.link
                ));
            }
            for (field, levels) in &settings.fields {
                for (level, p) in levels {
                    if !field.levels().contains(level) {
                        problems.push(format!(
                            "matching.{kind}.fields.{}: {} is not one of its levels",
                            field.as_str(),
                            level.as_str()
                        ));
                    }
                    if !(p.m > 0.0 && p.m <= 1.0 && p.u > 0.0 && p.u <= 1.0) {
                        problems.push(format!(
                            "matching.{kind}.fields.{}.{}: m and u must be in (0, 1]",
                            field.as_str(),
                            level.as_str()
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// How many entities of a kind carry a name, and how many entities there are: the
/// frequency that adjusts an exact name's weight.
pub trait NameFrequency {
    /// Entities carrying this name (0 when unknown).
    fn count(&self, kind: EntityKind, name: &str) -> u64;
    /// Entities of the store.
    fn population(&self) -> u64;
}

/// One field's comparison in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub field: Field,
    pub level: Level,
    /// Bits for (positive) or against (negative).
    #[serde(deserialize_with = "bits")]
    pub weight: f64,
}

/// Why a mention was compared as it was with a candidate: kept with every automatic
/// link and every queued pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sum of the weights, in bits.
    #[serde(deserialize_with = "bits")]
    pub total: f64,
    pub comparisons: Vec<Comparison>,
}

/// Reads a weight through `serde_json::Number`: with serde_json's `arbitrary_precision`
/// (on in this workspace) a number inside an internally tagged enum (a
/// [`crate::resolve::Placement`]) reaches a plain `f64` as a map and is refused.
fn bits<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_f64()
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a weight in bits")))
}

impl Evidence {
    /// The total without one field (a key's own agreement, for the second opinion).
    pub fn total_without(&self, field: Field) -> f64 {
        self.comparisons
            .iter()
            .filter(|c| c.field != field)
            .map(|c| c.weight)
            .sum()
    }
}

/// What the thresholds say of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Link,
    Review,
    Distinct,
}

/// Compares a mention's profile with a candidate's.
pub fn score(
    settings: &MatchSettings,
    kind: EntityKind,
    mention: &Profile,
    candidate: &Profile,
    frequencies: &dyn NameFrequency,
) -> Evidence {
    let weights = settings.of(kind);
    let mut comparisons = Vec::new();
    for field in Field::ALL {
        let (level, exact_value) = compare::compare(kind, field, mention, candidate);
        if level == Level::Missing {
            continue;
        }
        let Some(probabilities) = weights.probabilities(field, level) else {
            continue;
        };
        let weight = match (field, exact_value) {
            (Field::Name, Some(name)) => {
                let population = frequencies.population().max(settings.tf_minimum_population).max(1);
                // The chance that another entity than the candidate carries this very
                // name: how many others do (common names weigh less). Where none does,
                // the frequency is below 1/n, and a small store cannot tell how far
                // below: the configured u (what two different entities share on
                // average) stands where it is lower.
                let others = frequencies.count(kind, &name).saturating_sub(1);
                let floor = probabilities.u.min(1.0 / population as f64);
                let u = (others as f64 / population as f64).max(floor);
                log2_ratio(probabilities.m, u)
            }
            _ => probabilities.weight(),
        };
        comparisons.push(Comparison {
            field,
            level,
            weight: round(weight),
        });
    }
    let total = round(comparisons.iter().map(|c| c.weight).sum());
    Evidence { total, comparisons }
}

/// Rounded to 1/1000 bit: explanations read better and replicas agree to the bit.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The thresholds' verdict on a total.
pub fn verdict(settings: &MatchSettings, kind: EntityKind, total: f64) -> Verdict {
    let weights = settings.of(kind);
    if total >= weights.link {
        Verdict::Link
    } else if total >= weights.review {
        Verdict::Review
    } else {
        Verdict::Distinct
    }
}

/// The documented defaults: `tongban estimate` on the synthetic city of 10,000 people
/// (seed 1), rounded. Levels its true pairs never show (its clerks never mistype a name)
/// keep conservative values set by hand. The FEBRL runs of the quality benchmark
/// estimate their own.
pub mod defaults {
    use super::*;
    use Field::*;
    use Level::*;

    fn levels(pairs: &[(Level, f64, f64)]) -> BTreeMap<Level, Probabilities> {
        pairs
            .iter()
            .map(|&(level, m, u)| (level, Probabilities { m, u }))
            .collect()
    }

    pub fn person() -> KindSettings {
        KindSettings {
            link: 20.0,
            review: 10.0,
            fields: BTreeMap::from([
                (
                    Name,
                    levels(&[
                        (Exact, 0.9999, 0.000035),
                        (OneEdit, 0.01, 0.003),
                        // A foreigner's given name left out: few in the synthetic city.
                        (PartMissing, 0.005, 0.0002),
                        (JaroWinkler92, 0.006, 0.002),
                        (JaroWinkler80, 0.006, 0.02),
                        (Different, 0.008, 0.975),
                    ]),
                ),
                (
                    BirthDate,
                    levels(&[
                        (Exact, 0.998, 0.00012),
                        (OneEdit, 0.001, 0.0013),
                        (YearMonth, 0.002, 0.00084),
                        (Year, 0.004, 0.01),
                        (Different, 0.006, 0.99),
                    ]),
                ),
                (Sex, levels(&[(Exact, 0.99997, 0.503), (Different, 0.002, 0.5)])),
                (
                    IdentityNumber,
                    levels(&[
                        (Exact, 0.9, 0.000001),
                        (SameBody, 0.05, 0.0000001),
                        // Neighbours in the register: two people born the same day in the same
                        // county have numbers a digit or two apart.
                        (OneEdit, 0.04, 0.0001),
                        (Different, 0.01, 0.3),
                        (DifferentValid, 0.000001, 0.7),
                    ]),
                ),
                (
                    Document,
                    levels(&[
                        (Exact, 0.9, 0.000001),
                        (OneEdit, 0.05, 0.000005),
                        (Different, 0.05, 0.99),
                    ]),
                ),
                (Phone, levels(&[(Exact, 0.9999, 0.000021), (Different, 0.2, 0.9995)])),
                (
                    Address,
                    levels(&[
                        (Exact, 0.9994, 0.00041),
                        (JaroWinkler92, 0.1, 0.01),
                        // Foreigners' addresses only: none in the synthetic city.
                        (MostlyContained, 0.05, 0.005),
                        (Different, 0.3, 0.989),
                    ]),
                ),
            ]),
        }
    }

    pub fn organisation() -> KindSettings {
        KindSettings {
            link: 12.0,
            review: 6.0,
            fields: BTreeMap::from([
                (
                    Name,
                    levels(&[
                        (Exact, 0.9999, 0.000025),
                        (OneEdit, 0.01, 0.001),
                        // Latin names only; says nothing until estimated.
                        (PartMissing, 0.01, 0.01),
                        (JaroWinkler92, 0.01, 0.01),
                        (JaroWinkler80, 0.005, 0.05),
                        (Different, 0.005, 0.94),
                    ]),
                ),
                (
                    IdentityNumber,
                    levels(&[
                        (Exact, 0.9996, 0.0000079),
                        (SameBody, 0.05, 0.0000001),
                        (OneEdit, 0.04, 0.0000005),
                        (Different, 0.01, 0.3),
                        (DifferentValid, 0.000001, 0.7),
                    ]),
                ),
                (Phone, levels(&[(Exact, 0.9984, 0.00021), (Different, 0.3, 0.999)])),
                (
                    Address,
                    levels(&[
                        (Exact, 0.9983, 0.00023),
                        (JaroWinkler92, 0.1, 0.01),
                        (Different, 0.2, 0.989),
                    ]),
                ),
            ]),
        }
    }
}

#[cfg(test)]
mod tests;
