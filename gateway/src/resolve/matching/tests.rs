use std::collections::HashMap;

use tongban_adapters::model::EntityKind;

use super::*;

/// Name frequencies from a table.
struct Frequencies(HashMap<String, u64>, u64);

impl NameFrequency for Frequencies {
    fn count(&self, _kind: EntityKind, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    fn population(&self) -> u64 {
        self.1
    }
}

fn person(name: &str, birth: &str, sex: &str) -> Profile {
    Profile {
        names: vec![name.to_owned()],
        birth_dates: vec![birth.to_owned()],
        sexes: vec![sex.to_owned()],
        ..Profile::default()
    }
}

#[test]
fn a_common_name_weighs_less_than_a_rare_one() {
    let settings = MatchSettings::default();
    let frequencies = Frequencies(HashMap::from([("王伟".to_owned(), 3_000)]), 1_000_000);
    let common = score(
        &settings,
        EntityKind::Person,
        &person("王伟", "1990-01-01", "male"),
        &person("王伟", "1990-01-01", "male"),
        &frequencies,
    );
    let rare = score(
        &settings,
        EntityKind::Person,
        &person("欧阳子轩", "1990-01-01", "male"),
        &person("欧阳子轩", "1990-01-01", "male"),
        &frequencies,
    );
    let name_weight = |e: &Evidence| e.comparisons.iter().find(|c| c.field == Field::Name).map(|c| c.weight);
    assert!(name_weight(&common) < name_weight(&rare), "{common:?} vs {rare:?}");
    assert!(common.total < rare.total);
}

#[test]
fn different_sexes_and_different_valid_numbers_count_strongly_against() {
    let settings = MatchSettings::default();
    let frequencies = Frequencies(HashMap::new(), 0);
    let same = score(
        &settings,
        EntityKind::Person,
        &person("李娜", "1990-01-01", "female"),
        &person("李娜", "1990-01-01", "female"),
        &frequencies,
    );
    let other_sex = score(
        &settings,
        EntityKind::Person,
        &person("李娜", "1990-01-01", "female"),
        &person("李娜", "1990-01-01", "male"),
        &frequencies,
    );
    assert!(same.total - other_sex.total >= 8.0, "{same:?} {other_sex:?}");
    let mut a = person("李娜", "1990-01-01", "female");
    let mut b = a.clone();
    a.valid_ids = vec!["370687199001011223".into()];
    b.valid_ids = vec!["370687199001015528".into()];
    let numbers = score(&settings, EntityKind::Person, &a, &b, &frequencies);
    assert!(numbers.total < settings.person.review, "{numbers:?}");
}

#[test]
fn the_thresholds_give_three_verdicts() {
    let settings = MatchSettings::default();
    let kind = EntityKind::Person;
    assert_eq!(verdict(&settings, kind, settings.person.link), Verdict::Link);
    assert_eq!(verdict(&settings, kind, settings.person.link - 0.001), Verdict::Review);
    assert_eq!(verdict(&settings, kind, settings.person.review), Verdict::Review);
    assert_eq!(
        verdict(&settings, kind, settings.person.review - 0.001),
        Verdict::Distinct
    );
}

#[test]
fn a_missing_value_weighs_nothing() {
    let settings = MatchSettings::default();
    let frequencies = Frequencies(HashMap::new(), 0);
    let a = person("李娜", "1990-01-01", "female");
    let mut b = a.clone();
    b.sexes.clear();
    let evidence = score(&settings, EntityKind::Person, &a, &b, &frequencies);
    assert!(evidence.comparisons.iter().all(|c| c.field != Field::Sex));
}

#[test]
fn the_default_settings_are_consistent() {
    assert_eq!(MatchSettings::default().problems(), Vec::<String>::new());
    let mut settings = MatchSettings::default();
    settings.person.review = settings.person.link + 1.0;
    assert_eq!(settings.problems().len(), 1);
}

#[test]
fn a_name_no_other_entity_carries_weighs_what_names_do_on_average_in_a_small_store() {
    let settings = MatchSettings::default();
    let name_weight = |count: u64, population: u64| {
        let frequencies = Frequencies(HashMap::from([("KIM MIN".to_owned(), count)]), population);
        let evidence = score(
            &settings,
            EntityKind::Person,
            &person("KIM MIN", "1990-01-01", "male"),
            &person("KIM MIN", "1990-01-01", "male"),
            &frequencies,
        );
        evidence
            .comparisons
            .iter()
            .find(|c| c.field == Field::Name)
            .map(|c| c.weight)
    };
    let exact = settings
        .person
        .probabilities(Field::Name, Level::Exact)
        .map(|p| p.weight());
    // Only the candidate carries it: 1/n is no frequency in a store of 5,000.
    assert_eq!(name_weight(1, 5_000), exact.map(round));
    // In a store of a million, it is.
    assert!(name_weight(1, 1_000_000) > exact.map(round));
    // Carried by others, it weighs less.
    assert!(name_weight(40, 1_000_000) < name_weight(2, 1_000_000));
}
