//! Field comparisons with graded levels: how closely two values of one field agree.
//! The best level over every pair of values (the mention's and the entity's) counts.

use serde::{Deserialize, Serialize};
use strsim::{jaro_winkler, osa_distance};
use tongban_adapters::model::EntityKind;
use tongban_adapters::normalise::name::is_latin;

use super::profile::Profile;

/// A compared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Name,
    BirthDate,
    Sex,
    /// Resident identity number (persons) or organisation code (organisations).
    IdentityNumber,
    /// Passports and permits.
    Document,
    Phone,
    Address,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Name,
        Field::BirthDate,
        Field::Sex,
        Field::IdentityNumber,
        Field::Document,
        Field::Phone,
        Field::Address,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::IdentityNumber => "identity_number",
            Field::Document => "document",
            Field::Phone => "phone",
            Field::Address => "address",
        }
    }

    /// The levels of this field, best first; `Missing` is not among them (it weighs
    /// nothing).
    pub fn levels(self) -> &'static [Level] {
        use Level::*;
        match self {
            Field::Name => &[Exact, OneEdit, PartMissing, JaroWinkler92, JaroWinkler80, Different],
            Field::BirthDate => &[Exact, OneEdit, YearMonth, Year, Different],
            Field::Sex => &[Exact, Different],
            Field::IdentityNumber => &[Exact, SameBody, OneEdit, Different, DifferentValid],
            Field::Document => &[Exact, OneEdit, Different],
            Field::Phone => &[Exact, Different],
            Field::Address => &[Exact, JaroWinkler92, MostlyContained, Different],
        }
    }
}

/// How closely two values agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Equal once normalised (names: simplified, without spaces or separators, Latin
    /// parts in order and upper case).
    Exact,
    /// Identity numbers equal but for the check character.
    SameBody,
    /// One character inserted, deleted or replaced, or two neighbours swapped (dates:
    /// also day and month swapped).
    OneEdit,
    /// Latin names: one is the other with a part left out, or both are the same
    /// single word (a given name or a surname alone).
    PartMissing,
    /// Jaro–Winkler similarity of at least 0.92.
    JaroWinkler92,
    /// Jaro–Winkler similarity of at least 0.80.
    JaroWinkler80,
    /// Addresses in Latin script: most of the shorter found in the other (a part left
    /// out, words mistyped or split).
    MostlyContained,
    /// Same year and month (or one side known only to the month and agreeing).
    YearMonth,
    /// Same year.
    Year,
    /// Disagree.
    Different,
    /// Two different identity numbers whose check characters both hold: two people.
    DifferentValid,
    /// One side has no value: no evidence either way.
    Missing,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::SameBody => "same_body",
            Level::OneEdit => "one_edit",
            Level::PartMissing => "part_missing",
            Level::JaroWinkler92 => "jaro_winkler92",
            Level::JaroWinkler80 => "jaro_winkler80",
            Level::MostlyContained => "mostly_contained",
            Level::YearMonth => "year_month",
            Level::Year => "year",
            Level::Different => "different",
            Level::DifferentValid => "different_valid",
            Level::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        [
            Level::Exact,
            Level::SameBody,
            Level::OneEdit,
            Level::PartMissing,
            Level::JaroWinkler92,
            Level::JaroWinkler80,
            Level::MostlyContained,
            Level::YearMonth,
            Level::Year,
            Level::Different,
            Level::DifferentValid,
            Level::Missing,
        ]
        .into_iter()
        .find(|level| level.as_str() == s)
    }
}

/// The level at which `field` of `a` and `b` (two entities of `kind`) agree, and for an
/// exact name the name.
pub fn compare(kind: EntityKind, field: Field, a: &Profile, b: &Profile) -> (Level, Option<String>) {
    match field {
        Field::Name => best(&a.names, &b.names, |x, y| {
            if x == y && kind == EntityKind::Person && !x.contains(' ') && is_latin(x) {
                // A person's Latin name of one word is a given name or a surname
                // alone: the two agree on a part of a name. (An organisation's name
                // is compared without its spaces: one word is all of it.)
                Level::PartMissing
            } else if x == y {
                Level::Exact
            } else if x.contains(' ') || y.contains(' ') {
                // Latin names (Chinese comparable names have no spaces).
                graded_latin(x, y)
            } else {
                graded_text(x, y, true)
            }
        }),
        Field::BirthDate => (best(&a.birth_dates, &b.birth_dates, compare_dates).0, None),
        Field::Sex => (
            best(
                &a.sexes,
                &b.sexes,
                |x, y| {
                    if x == y {
                        Level::Exact
                    } else {
                        Level::Different
                    }
                },
            )
            .0,
            None,
        ),
        Field::IdentityNumber => (compare_identity_numbers(a, b), None),
        Field::Document => (
            best(&a.documents, &b.documents, |x, y| {
                if x == y {
                    Level::Exact
                } else if long_enough(x, y) && osa_distance(x, y) <= 1 {
                    Level::OneEdit
                } else {
                    Level::Different
                }
            })
            .0,
            None,
        ),
        Field::Phone => (
            best(&a.phones, &b.phones, |x, y| {
                if x == y {
                    Level::Exact
                } else {
                    Level::Different
                }
            })
            .0,
            None,
        ),
        Field::Address => (
            best(&a.addresses, &b.addresses, |x, y| {
                if x == y {
                    Level::Exact
                } else if jaro_winkler(x, y) >= 0.92 {
                    Level::JaroWinkler92
                } else if mostly_contained(x, y) {
                    Level::MostlyContained
                } else {
                    Level::Different
                }
            })
            .0,
            None,
        ),
    }
}

/// The best level over all pairs; `Missing` when either side has no value. For an
/// exact match, the value that matched (names are weighed by their frequency).
fn best(a: &[String], b: &[String], level: impl Fn(&str, &str) -> Level) -> (Level, Option<String>) {
    let mut found = (Level::Missing, None);
    for x in a {
        for y in b {
            let l = level(x, y);
            if found.0 == Level::Missing || l < found.0 {
                found = (l, (l == Level::Exact).then(|| x.clone()));
            }
        }
    }
    found
}

fn graded_text(x: &str, y: &str, edits: bool) -> Level {
    if edits && osa_distance(x, y) <= 1 {
        return Level::OneEdit;
    }
    let similarity = jaro_winkler(x, y);
    if similarity >= 0.92 {
        Level::JaroWinkler92
    } else if similarity >= 0.80 {
        Level::JaroWinkler80
    } else {
        Level::Different
    }
}

/// Latin names are compared part by part whatever the order the parts were typed in
/// (the comparable name sorts them): a part split or joined (`SOPH IE` for `SOPHIE`) is
/// one edit, and otherwise the closest arrangement of the parts counts.
fn graded_latin(x: &str, y: &str) -> Level {
    let (xs, ys) = (arrangements(x), arrangements(y));
    if xs
        .iter()
        .any(|a| ys.iter().any(|b| a.replace(' ', "") == b.replace(' ', "")))
    {
        return Level::OneEdit;
    }
    let closest = xs
        .iter()
        .flat_map(|a| ys.iter().map(move |b| graded_text(a, b, true)))
        .min()
        .unwrap_or(Level::Different);
    if closest > Level::PartMissing && part_missing(x, y) {
        Level::PartMissing
    } else {
        closest
    }
}

/// One name is the other with parts left out (`GIBB` for `GIBB LAUREN`: the given
/// name not typed).
fn part_missing(x: &str, y: &str) -> bool {
    let parts = |name: &str| {
        name.split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (xs, ys) = (parts(x), parts(y));
    let (fewer, more) = if xs.len() < ys.len() { (xs, ys) } else { (ys, xs) };
    !fewer.is_empty() && fewer.len() < more.len() && fewer.iter().all(|p| more.contains(p))
}

/// The parts of a name in every order (names have few parts; more than four are taken
/// as written).
fn arrangements(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split(' ').filter(|p| !p.is_empty()).collect();
    if parts.len() > 4 {
        return vec![name.to_owned()];
    }
    let mut out = Vec::new();
    permute(&parts, &mut Vec::new(), &mut vec![false; parts.len()], &mut out);
    out
}

fn permute<'a>(parts: &[&'a str], current: &mut Vec<&'a str>, used: &mut [bool], out: &mut Vec<String>) {
    if current.len() == parts.len() {
        out.push(current.join(" "));
        return;
    }
    for i in 0..parts.len() {
        if !used[i] {
            used[i] = true;
            current.push(parts[i]);
            permute(parts, current, used, out);
            current.pop();
            used[i] = false;
        }
    }
}

fn compare_dates(x: &str, y: &str) -> Level {
    if x == y {
        // Two dates known only to the month agree only to the month.
        return if x.len() == 7 { Level::YearMonth } else { Level::Exact };
    }
    let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
    if short.len() == 7 {
        // Known only to the month.
        return if long.starts_with(short) {
            Level::YearMonth
        } else if long.get(..4) == short.get(..4) {
            Level::Year
        } else {
            Level::Different
        };
    }
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (dx, dy) = (digits(x), digits(y));
    let swapped = x.len() == 10 && y.len() == 10 && x.get(..4) == y.get(..4) && {
        // 1990-03-04 typed as 1990-04-03.
        x.get(5..7) == y.get(8..10) && x.get(8..10) == y.get(5..7)
    };
    if osa_distance(&dx, &dy) <= 1 || swapped {
        Level::OneEdit
    } else if x.get(..7) == y.get(..7) {
        Level::YearMonth
    } else if x.get(..4) == y.get(..4) {
        Level::Year
    } else {
        Level::Different
    }
}

/// Addresses in Latin script (a foreigner's, written in words): at least 80% of the
/// letter pairs of the shorter occur in the other, and the shorter is at least half as
/// long. A part left out, a word mistyped or
/// split in two each cost only a few pairs. A Chinese address is compared whole
/// (Jaro–Winkler): near-identical Chinese addresses are often neighbours.
fn mostly_contained(x: &str, y: &str) -> bool {
    const SHORTEST: usize = 8;
    if !super::profile::written_in_words(x) || !super::profile::written_in_words(y) {
        return false;
    }
    let pairs = |text: &str| {
        let compact: Vec<char> = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let mut pairs: Vec<(char, char)> = compact.windows(2).map(|w| (w[0], w[1])).collect();
        pairs.sort_unstable();
        pairs
    };
    let (xs, ys) = (pairs(x), pairs(y));
    let (fewer, more) = if xs.len() <= ys.len() { (xs, ys) } else { (ys, xs) };
    // A suburb and postcode alone are in every address of the suburb: the shorter
    // must be most of the longer too.
    if fewer.len() + 1 < SHORTEST || 2 * fewer.len() < more.len() {
        return false;
    }
    // Common pairs of two sorted multisets.
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < fewer.len() && j < more.len() {
        match fewer[i].cmp(&more[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    5 * common >= 4 * fewer.len()
}

/// The shortest number in which one wrong character is taken for a typo.
pub const SHORTEST_TYPO: usize = 6;

/// Numbers one character apart say something only when they are long: among short
/// numbers (a register's serials) neighbours are simply other people.
fn long_enough(x: &str, y: &str) -> bool {
    x.chars().count() >= SHORTEST_TYPO && y.chars().count() >= SHORTEST_TYPO
}

fn compare_identity_numbers(a: &Profile, b: &Profile) -> Level {
    let mut found = Level::Missing;
    let mut consider = |level: Level| {
        if found == Level::Missing || level < found {
            found = level;
        }
    };
    for x in a.identity_numbers() {
        for y in b.identity_numbers() {
            let both_valid = a.valid_ids.contains(x) && b.valid_ids.contains(y);
            let level = if x == y {
                Level::Exact
            } else if both_valid {
                Level::DifferentValid
            } else if !long_enough(x, y) {
                Level::Different
            } else if x.chars().count() == y.chars().count() && x.chars().rev().skip(1).eq(y.chars().rev().skip(1)) {
                Level::SameBody
            } else if osa_distance(x, y) <= 1 {
                Level::OneEdit
            } else {
                Level::Different
            };
            consider(level);
        }
    }
    // Two valid numbers that differ say two entities even when a typo of one of them
    // agrees: only a valid number is known to be right.
    let valid_disagree =
        !a.valid_ids.is_empty() && !b.valid_ids.is_empty() && !a.valid_ids.iter().any(|x| b.valid_ids.contains(x));
    if valid_disagree {
        return Level::DifferentValid;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_adapters::model::EntityKind;

    fn profile(f: impl FnOnce(&mut Profile)) -> Profile {
        let mut p = Profile::default();
        f(&mut p);
        p
    }

    fn names(a: &str, b: &str) -> Level {
        compare(
            EntityKind::Person,
            Field::Name,
            &profile(|p| p.names = vec![a.into()]),
            &profile(|p| p.names = vec![b.into()]),
        )
        .0
    }

    fn dates(a: &str, b: &str) -> Level {
        compare(
            EntityKind::Person,
            Field::BirthDate,
            &profile(|p| p.birth_dates = vec![a.into()]),
            &profile(|p| p.birth_dates = vec![b.into()]),
        )
        .0
    }

    fn ids(a: (&[&str], &[&str]), b: (&[&str], &[&str])) -> Level {
        let make = |(valid, unchecked): (&[&str], &[&str])| {
            profile(|p| {
                p.valid_ids = valid.iter().map(|s| s.to_string()).collect();
                p.unchecked_ids = unchecked.iter().map(|s| s.to_string()).collect();
            })
        };
        compare(EntityKind::Person, Field::IdentityNumber, &make(a), &make(b)).0
    }

    #[test]
    fn names_are_graded_from_exact_to_different() {
        assert_eq!(names("王伟", "王伟"), Level::Exact);
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Name,
                &profile(|p| p.names = vec!["王伟".into()]),
                &profile(|p| p.names = vec!["王伟".into()])
            )
            .1
            .as_deref(),
            Some("王伟"),
            "an exact name is reported for its frequency"
        );
        assert_eq!(names("CHRISTENSEN JOSHUA", "CHRISTENSON JOSHUA"), Level::OneEdit);
        assert_eq!(
            names("JOSHUA MCKENZIE", "JOHSUA MCKENZIE"),
            Level::OneEdit,
            "a transposition"
        );
        assert_eq!(names("ALEXANDRA BELLAMY", "ALEXANDRA BELAMI"), Level::JaroWinkler92);
        assert_eq!(names("JOSEPH SMITHSON", "JOSEPHINE SMYTHE"), Level::JaroWinkler80);
        assert_eq!(names("王伟", "李娜"), Level::Different);
        assert_eq!(
            names("IE NICOLLE SOPH", "NICOLLE SOPHIE"),
            Level::OneEdit,
            "a part split in two"
        );
        assert_eq!(names("BLACK AMBER WELL", "AMBER BLACKWELL"), Level::OneEdit);
    }

    #[test]
    fn birth_dates_are_graded_by_edit_month_and_year() {
        assert_eq!(dates("1990-03-04", "1990-03-04"), Level::Exact);
        assert_eq!(dates("1990-03-04", "1990-03-07"), Level::OneEdit);
        assert_eq!(dates("1990-03-14", "1990-03-41"), Level::OneEdit, "digits swapped");
        assert_eq!(
            dates("1990-03-04", "1990-04-03"),
            Level::OneEdit,
            "day and month swapped"
        );
        assert_eq!(
            dates("1990-03", "1990-03-04"),
            Level::YearMonth,
            "known only to the month"
        );
        assert_eq!(dates("1990-03-04", "1990-03-28"), Level::YearMonth);
        assert_eq!(dates("1990-03-04", "1990-11-28"), Level::Year);
        assert_eq!(dates("1990-03", "1990-11-28"), Level::Year);
        assert_eq!(dates("1990-03-04", "1985-11-28"), Level::Different);
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::BirthDate,
                &Profile::default(),
                &profile(|p| p.birth_dates = vec!["1990-03-04".into()])
            )
            .0,
            Level::Missing
        );
    }

    #[test]
    fn latin_names_with_a_part_left_out() {
        assert_eq!(names("GIBB", "GIBB LAUREN"), Level::PartMissing, "given name not typed");
        assert_eq!(names("GIBB LAUREN", "GIBB"), Level::PartMissing);
        assert_eq!(
            names("EMILY", "EMILY"),
            Level::PartMissing,
            "a given name alone on both sides is not a whole name"
        );
        assert_eq!(names("GIBB", "LAUREN SMITH"), Level::Different);
        assert_eq!(names("GIBB LAUREN", "GIB LAUREN"), Level::OneEdit, "a typo is closer");
        assert_eq!(names("伟", "伟"), Level::Exact, "not a Latin name");
        let organisation = |name: &str| profile(|p| p.names = vec![name.into()]);
        assert_eq!(
            compare(
                EntityKind::Organisation,
                Field::Name,
                &organisation("ACMETRADINGLTD"),
                &organisation("ACMETRADINGLTD")
            )
            .0,
            Level::Exact,
            "an organisation's name is compared whole"
        );
    }

    fn addresses(a: &str, b: &str) -> Level {
        compare(
            EntityKind::Person,
            Field::Address,
            &profile(|p| p.addresses = vec![a.into()]),
            &profile(|p| p.addresses = vec![b.into()]),
        )
        .0
    }

    #[test]
    fn latin_addresses_mostly_contained_in_one_another() {
        let full = "23 bath place,eventide home,casino sa 5118";
        assert_eq!(
            addresses(full, "23 bat h pace,casnio sa 5118"),
            Level::MostlyContained,
            "a part left out, words split and mistyped"
        );
        assert_eq!(
            addresses(full, "7 wallaby place,delmar,cleveland nsw 2119"),
            Level::Different
        );
        assert_eq!(
            addresses(full, "casino sa 5118"),
            Level::Different,
            "the suburb alone is in every address of the suburb"
        );
        assert_eq!(
            addresses("凤城街道海河路12号3号楼2单元501室", "东村街道凤城路88号海河小区"),
            Level::Different,
            "Chinese addresses are compared whole"
        );
    }

    #[test]
    fn identity_numbers_tell_a_typo_from_another_person() {
        let right = "370687199001011234";
        let wrong_check = "370687199001011235";
        let one_digit = "370687199001021234";
        let other = "370687198512125678";
        assert_eq!(ids((&[right], &[]), (&[right], &[])), Level::Exact);
        assert_eq!(ids((&[], &[wrong_check]), (&[right], &[])), Level::SameBody);
        assert_eq!(ids((&[], &[one_digit]), (&[right], &[])), Level::OneEdit);
        assert_eq!(ids((&[], &[other]), (&[right], &[])), Level::Different);
        assert_eq!(ids((&[other], &[]), (&[right], &[])), Level::DifferentValid);
        assert_eq!(
            ids((&[other], &[wrong_check]), (&[right], &[])),
            Level::DifferentValid,
            "a valid number that differs outweighs a typo that agrees"
        );
        assert_eq!(ids((&[], &[]), (&[right], &[])), Level::Missing);
    }

    #[test]
    fn documents_sexes_phones_and_addresses_have_their_levels() {
        let doc = |d: &str| profile(|p| p.documents = vec![d.into()]);
        assert_eq!(
            compare(EntityKind::Person, Field::Document, &doc("E1234567"), &doc("E1234567")).0,
            Level::Exact
        );
        assert_eq!(
            compare(EntityKind::Person, Field::Document, &doc("E1234567"), &doc("E1243567")).0,
            Level::OneEdit
        );
        assert_eq!(
            compare(EntityKind::Person, Field::Document, &doc("E1234567"), &doc("G9876543")).0,
            Level::Different
        );
        let sex = |s: &str| profile(|p| p.sexes = vec![s.into()]);
        assert_eq!(
            compare(EntityKind::Person, Field::Sex, &sex("male"), &sex("male")).0,
            Level::Exact
        );
        assert_eq!(
            compare(EntityKind::Person, Field::Sex, &sex("male"), &sex("female")).0,
            Level::Different
        );
        let phone = |s: &str| profile(|p| p.phones = vec![s.into()]);
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Phone,
                &phone("13800000000"),
                &phone("13800000000")
            )
            .0,
            Level::Exact
        );
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Phone,
                &phone("13800000000"),
                &phone("13900000000")
            )
            .0,
            Level::Different
        );
        let address = |s: &str| profile(|p| p.addresses = vec![s.into()]);
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Address,
                &address("海阳路1号"),
                &address("海阳路1号")
            )
            .0,
            Level::Exact
        );
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Address,
                &address("方圆街道海阳路12号3单元"),
                &address("方圆街道海阳路12号4单元")
            )
            .0,
            Level::JaroWinkler92
        );
        assert_eq!(
            compare(
                EntityKind::Person,
                Field::Address,
                &address("海阳路1号"),
                &address("东村街道凤城路88号")
            )
            .0,
            Level::Different
        );
    }

    #[test]
    fn every_level_has_a_name_that_parses_back() {
        for field in Field::ALL {
            for level in field.levels() {
                assert_eq!(Level::parse(level.as_str()), Some(*level));
            }
        }
        assert_eq!(Level::parse("missing"), Some(Level::Missing));
    }
}
