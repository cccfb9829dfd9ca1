//! Estimating m and u from the data (`tongban estimate`): m from pairs of mentions that
//! share a deterministic key (two records of one person, by the surest evidence there
//! is), u from random pairs of mentions of different key clusters (almost always two
//! different people). The field of the shared key itself is left out of m: it agrees
//! by construction.

use std::collections::{BTreeMap, HashMap};

use tongban_adapters::model::{EntityKind, IdScheme, Mention};

use super::compare::{compare, Field, Level};
use super::{KindSettings, Probabilities, Profile};

/// Pairs per key cluster at most, so that a big employer does not outweigh everyone.
const MAX_CLUSTER_MENTIONS: usize = 12;
/// A field seen in fewer pairs than this keeps its current probabilities: too little
/// data to say anything.
const MIN_OBSERVATIONS: u64 = 50;
/// No level is impossible between two records of one person (people mistype
/// anything): m is at least this.
const M_FLOOR: f64 = 0.001;

/// Level counts per field for one population of pairs.
#[derive(Debug, Default, Clone)]
pub struct LevelCounts(BTreeMap<Field, BTreeMap<Level, u64>>);

impl LevelCounts {
    fn add(&mut self, field: Field, level: Level) {
        *self.0.entry(field).or_default().entry(level).or_default() += 1;
    }

    fn seen(&self, field: Field, level: Level) -> bool {
        self.0
            .get(&field)
            .and_then(|levels| levels.get(&level))
            .is_some_and(|n| *n > 0)
    }

    fn observations(&self, field: Field) -> u64 {
        self.0.get(&field).map_or(0, |levels| levels.values().sum())
    }

    /// Smoothed probabilities of each level of `field` (a pseudo-count of one per
    /// level, so that a level never seen is rare rather than impossible).
    fn probabilities(&self, field: Field) -> BTreeMap<Level, f64> {
        let counts = self.0.get(&field);
        let levels = field.levels();
        let total: u64 = levels
            .iter()
            .map(|l| counts.and_then(|c| c.get(l)).copied().unwrap_or(0))
            .sum();
        levels
            .iter()
            .map(|&level| {
                let n = counts.and_then(|c| c.get(&level)).copied().unwrap_or(0);
                (level, (n as f64 + 1.0) / (total as f64 + levels.len() as f64))
            })
            .collect()
    }
}

/// What an estimation saw.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub kind: EntityKind,
    pub mentions: usize,
    /// Pairs sharing a key (for m) and random pairs (for u).
    pub matching_pairs: usize,
    pub random_pairs: usize,
    /// Key clusters: about how many entities the mentions are of.
    pub clusters: usize,
    pub settings: KindSettings,
}

impl Estimate {
    /// Thresholds from the population instead of the configured ones: with about `n`
    /// entities, a mention's prior odds of being a given candidate are 1 : n, so a
    /// total of log2(n) bits makes it even and log2(99 n) makes it 99 %. Link there, and
    /// review from even odds.
    pub fn thresholds_from_population(&mut self) {
        let n = (self.clusters.max(2)) as f64;
        self.settings.review = (n.log2() * 100.0).round() / 100.0;
        self.settings.link = ((99.0 * n).log2() * 100.0).round() / 100.0;
    }
}

/// Estimates m and u for `kind` from its mentions; thresholds are kept from `current`.
pub fn estimate(kind: EntityKind, mentions: &[Mention], current: &KindSettings, random_pairs: usize) -> Estimate {
    let profiles: Vec<Profile> = mentions.iter().map(Profile::of_mention).collect();
    let clusters = key_clusters(mentions);

    let mut m = LevelCounts::default();
    let mut matching_pairs = 0;
    for members in clusters.values().filter(|members| members.len() > 1) {
        let members = &members[..members.len().min(MAX_CLUSTER_MENTIONS)];
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                let (Some(ma), Some(mb)) = (mentions.get(a), mentions.get(b)) else {
                    continue;
                };
                let Some(shared) = shared_key(ma, mb) else {
                    continue;
                };
                matching_pairs += 1;
                for field in Field::ALL {
                    if Some(field) == super::super::key_field(shared) {
                        continue;
                    }
                    let level = compare(kind, field, &profiles[a], &profiles[b]).0;
                    if level != Level::Missing {
                        m.add(field, level);
                    }
                }
            }
        }
    }

    let cluster_of: HashMap<usize, usize> = clusters
        .iter()
        .flat_map(|(root, members)| members.iter().map(move |&i| (i, *root)))
        .collect();
    let mut u = LevelCounts::default();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut sampled = 0;
    if mentions.len() > 1 {
        for _ in 0..random_pairs.saturating_mul(2) {
            if sampled >= random_pairs {
                break;
            }
            let (a, b) = (rng.usize(..mentions.len()), rng.usize(..mentions.len()));
            if a == b || cluster_of.get(&a) == cluster_of.get(&b) {
                continue;
            }
            sampled += 1;
            for field in Field::ALL {
                let level = compare(kind, field, &profiles[a], &profiles[b]).0;
                if level != Level::Missing {
                    u.add(field, level);
                }
            }
        }
    }

    let mut settings = current.clone();
    settings.fields = Field::ALL
        .into_iter()
        .filter(|field| current.fields.contains_key(field))
        .map(|field| {
            let kept = current.fields.get(&field).cloned().unwrap_or_default();
            if m.observations(field) < MIN_OBSERVATIONS || u.observations(field) < MIN_OBSERVATIONS {
                return (field, kept);
            }
            let (pm, pu) = (m.probabilities(field), u.probabilities(field));
            let levels = field
                .levels()
                .iter()
                .map(|level| {
                    // A level the matching pairs never showed keeps what was configured:
                    // the data is silent on it (a city whose clerks never mistype a name
                    // says nothing of what a mistyped name is worth).
                    let p = match kept.get(level) {
                        Some(prior) if !m.seen(field, *level) => *prior,
                        _ => Probabilities {
                            m: round(pm.get(level).copied().unwrap_or(0.0).max(M_FLOOR)),
                            u: round(pu.get(level).copied().unwrap_or(0.0)),
                        },
                    };
                    (*level, p)
                })
                .collect();
            (field, levels)
        })
        .collect();
    Estimate {
        kind,
        mentions: mentions.len(),
        matching_pairs,
        random_pairs: sampled,
        clusters: clusters.len(),
        settings,
    }
}

/// The `[matching]` table of a configuration file, levels as inline tables.
pub fn to_toml(settings: &super::MatchSettings) -> String {
    let mut out = String::from("[matching]\n");
    out.push_str(&format!(
        "enabled = {}\nkey_veto = {:?}\ntf_minimum_population = {}\ncandidates_per_block = {}\n",
        settings.enabled, settings.key_veto, settings.tf_minimum_population, settings.candidates_per_block
    ));
    for (kind, weights) in [("person", &settings.person), ("organisation", &settings.organisation)] {
        out.push_str(&format!(
            "\n[matching.{kind}]\nlink = {:?}\nreview = {:?}\n",
            weights.link, weights.review
        ));
        for (field, levels) in &weights.fields {
            out.push_str(&format!("\n[matching.{kind}.fields.{}]\n", field.as_str()));
            for (level, p) in levels {
                out.push_str(&format!(
                    "{} = {{ m = {:?}, u = {:?} }}   # {:+.2} bits\n",
                    level.as_str(),
                    p.m,
                    p.u,
                    p.weight()
                ));
            }
        }
    }
    out
}

/// Six significant digits: enough for a weight, short in a configuration file.
fn round(p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(5 - p.log10().floor() as i32);
    (p * scale).round() / scale
}

/// Mentions grouped by the keys they share (union-find over key values): root →
/// members.
fn key_clusters(mentions: &[Mention]) -> HashMap<usize, Vec<usize>> {
    let mut parent: Vec<usize> = (0..mentions.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: HashMap<(IdScheme, &str), usize> = HashMap::new();
    for (i, mention) in mentions.iter().enumerate() {
        for key in mention.keys() {
            match owner.get(&(key.scheme, key.value.as_str())) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    owner.insert((key.scheme, key.value.as_str()), i);
                }
            }
        }
    }
    let mut clusters: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..mentions.len() {
        let root = find(&mut parent, i);
        clusters.entry(root).or_default().push(i);
    }
    clusters
}

fn shared_key(a: &Mention, b: &Mention) -> Option<IdScheme> {
    a.keys()
        .find(|ka| b.keys().any(|kb| kb.scheme == ka.scheme && kb.value == ka.value))
        .map(|k| k.scheme)
}

#[cfg(test)]
mod tests {
    use tongban_adapters::model::{Attribute, Identifier, Observation, Role, Slot};

    use super::*;
    use crate::resolve::matching::defaults;

    fn mention(name: &str, birth: &str, keys: &[&str]) -> Mention {
        Mention {
            slot: Slot::new(Role::Insured, 0),
            kind: EntityKind::Person,
            identifiers: keys
                .iter()
                .map(|k| Identifier {
                    scheme: IdScheme::DepartmentNumber,
                    value: (*k).to_owned(),
                    key: true,
                })
                .collect(),
            observations: vec![Observation {
                attribute: Attribute::BirthDate,
                value: birth.to_owned(),
                typed: birth.to_owned(),
                derived: false,
                as_of: None,
            }],
            facts: Vec::new(),
            flags: Vec::new(),
            match_name: name.to_owned(),
        }
    }

    #[test]
    fn m_comes_from_pairs_sharing_a_key_and_u_from_random_pairs() {
        let mut mentions = Vec::new();
        for i in 0..200 {
            let name = format!("KIM N{i}");
            let birth = format!("19{:02}-01-{:02}", 50 + i % 40, 1 + i % 28);
            mentions.push(mention(&name, &birth, &[&format!("r:{i}")]));
            // The same person in another register, once in ten with a typo in the name.
            let typed = if i % 10 == 0 { format!("KIM M{i}") } else { name.clone() };
            mentions.push(mention(&typed, &birth, &[&format!("r:{i}"), &format!("s:{i}")]));
        }
        let estimate = estimate(EntityKind::Person, &mentions, &defaults::person(), 5_000);
        assert_eq!(estimate.matching_pairs, 200);
        let name = &estimate.settings.fields[&Field::Name];
        let exact = name[&Level::Exact];
        assert!(exact.m > 0.8 && exact.m < 0.95, "{exact:?}");
        assert!(exact.u < 0.01, "random pairs rarely share a name: {exact:?}");
        let birth = &estimate.settings.fields[&Field::BirthDate];
        assert!(birth[&Level::Exact].m > 0.95, "{birth:?}");
        assert!(birth[&Level::Exact].u < 0.05, "{birth:?}");
        assert_eq!(estimate.settings.link, defaults::person().link, "thresholds are kept");
        assert_eq!(estimate.clusters, 200);
        let mut from_population = estimate.clone();
        from_population.thresholds_from_population();
        assert_eq!(from_population.settings.review, 7.64, "log2(200)");
        assert_eq!(from_population.settings.link, 14.27, "log2(99 × 200)");
        assert_eq!(
            estimate.settings.fields[&Field::Phone],
            defaults::person().fields[&Field::Phone],
            "a field without data keeps its probabilities"
        );
        let mut settings = crate::resolve::matching::MatchSettings::default();
        settings.person = estimate.settings;
        #[derive(serde::Deserialize)]
        struct File {
            matching: crate::resolve::matching::MatchSettings,
        }
        let back: File = toml::from_str(&to_toml(&settings)).expect("the written table reads back");
        assert_eq!(back.matching, settings);
    }
}
