use tongban_adapters::model::{EntityKind, IdScheme, Identifier, Mention, Role, Slot};
use tongban_adapters::RecordType;

use super::*;
use crate::resolve::matching::MatchSettings;
use crate::unified::Contribution;

fn person(index: u32, keys: &[(IdScheme, &str)]) -> Mention {
    Mention {
        slot: Slot::new(Role::RightHolder, index),
        kind: EntityKind::Person,
        identifiers: keys
            .iter()
            .map(|(scheme, value)| Identifier {
                scheme: *scheme,
                value: (*value).to_owned(),
                key: true,
            })
            .collect(),
        observations: Vec::new(),
        facts: Vec::new(),
        flags: Vec::new(),
        match_name: String::new(),
    }
}

fn named(mut mention: Mention, name: &str) -> Mention {
    mention.match_name = name.to_owned();
    mention
}

fn title(mentions: Vec<Mention>) -> Contribution {
    Contribution {
        record_type: RecordType::RealEstateTitle,
        mentions,
        relations: Vec::new(),
    }
}

fn incoming<'a>(source_id: &'a str, contribution: &'a Contribution) -> Incoming<'a> {
    Incoming {
        source_id,
        source_version: 1,
        contribution,
    }
}

const ID_A: (IdScheme, &str) = (IdScheme::ResidentId, "370687199001011234");
const PASSPORT_A: (IdScheme, &str) = (IdScheme::Passport, "E12345678");

#[test]
fn a_known_key_joins_its_entity_and_an_unknown_one_founds_a_new_entity() {
    let context = Context {
        key_owners: HashMap::from([((ID_A.0, ID_A.1.to_owned()), "P00000000005".to_owned())]),
        previous: HashMap::new(),
        ..Context::default()
    };
    let record = title(vec![person(0, &[ID_A]), person(1, &[(IdScheme::ResidentId, "X")])]);
    let plan = plan(&context, &[incoming("t1", &record)], &MatchSettings::default());
    assert_eq!(plan.assignments[0].target, Target::Existing("P00000000005".to_owned()));
    assert!(plan.assignments[0].matched_existing);
    assert_eq!(plan.assignments[1].target, Target::New(0));
    assert!(!plan.assignments[1].matched_existing);
    assert_eq!(plan.new_entities, [EntityKind::Person]);
    assert_eq!(
        plan.keys,
        [
            (
                (IdScheme::ResidentId, ID_A.1.to_owned()),
                Target::Existing("P00000000005".to_owned())
            ),
            ((IdScheme::ResidentId, "X".to_owned()), Target::New(0))
        ]
    );
    assert!(plan.merges.is_empty());
    assert_eq!(plan.touched.iter().collect::<Vec<_>>(), ["P00000000005"]);
}

#[test]
fn a_mention_carrying_keys_of_two_entities_merges_them_into_the_older() {
    let context = Context {
        key_owners: HashMap::from([
            ((ID_A.0, ID_A.1.to_owned()), "P00000000009".to_owned()),
            ((PASSPORT_A.0, PASSPORT_A.1.to_owned()), "P00000000004".to_owned()),
        ]),
        previous: HashMap::new(),
        ..Context::default()
    };
    let record = title(vec![person(0, &[ID_A, PASSPORT_A])]);
    let plan = plan(&context, &[incoming("t1", &record)], &MatchSettings::default());
    assert_eq!(plan.assignments[0].target, Target::Existing("P00000000004".to_owned()));
    assert_eq!(
        plan.merges,
        [("P00000000009".to_owned(), Target::Existing("P00000000004".to_owned()))]
    );
    assert!(
        !plan.touched.contains("P00000000009"),
        "the absorbed entity is not rebuilt"
    );
    assert!(plan.touched.contains("P00000000004"));
}

#[test]
fn mentions_of_one_batch_link_through_keys_they_share() {
    let first = title(vec![person(0, &[ID_A])]);
    let second = title(vec![person(0, &[ID_A, PASSPORT_A])]);
    let third = title(vec![person(0, &[PASSPORT_A])]);
    let plan = plan(
        &Context::default(),
        &[incoming("t1", &first), incoming("t2", &second), incoming("t3", &third)],
        &MatchSettings::default(),
    );
    assert_eq!(plan.new_entities.len(), 1);
    assert!(plan.assignments.iter().all(|a| a.target == Target::New(0)));
    let matched: Vec<bool> = plan.assignments.iter().map(|a| a.matched_existing).collect();
    assert_eq!(matched, [false, true, true]);
}

#[test]
fn a_new_version_keeps_the_slot_entity_unless_a_key_says_otherwise() {
    let slot_ref = MentionRef::new(RecordType::RealEstateTitle, "t1", Slot::new(Role::RightHolder, 0));
    let context = Context {
        key_owners: HashMap::from([((ID_A.0, ID_A.1.to_owned()), "P00000000002".to_owned())]),
        previous: HashMap::from([(
            slot_ref,
            Previous {
                entity: "P00000000001".to_owned(),
                match_name: "王伟".to_owned(),
                placement: None,
            },
        )]),
        ..Context::default()
    };
    let keyless = title(vec![named(person(0, &[]), "王伟")]);
    let plan_keyless = plan(&context, &[incoming("t1", &keyless)], &MatchSettings::default());
    assert_eq!(
        plan_keyless.assignments[0].target,
        Target::Existing("P00000000001".to_owned())
    );
    assert!(
        !plan_keyless.assignments[0].matched_existing,
        "a new version is no repeated collection"
    );

    let someone_else = title(vec![named(person(0, &[]), "李强")]);
    let plan_else = plan(&context, &[incoming("t1", &someone_else)], &MatchSettings::default());
    assert_eq!(
        plan_else.assignments[0].target,
        Target::New(0),
        "another name: another person"
    );
    let nameless = title(vec![person(0, &[])]);
    assert_eq!(
        plan(&context, &[incoming("t1", &nameless)], &MatchSettings::default()).assignments[0].target,
        Target::New(0)
    );

    let keyed = title(vec![person(0, &[ID_A])]);
    let plan_keyed = plan(&context, &[incoming("t1", &keyed)], &MatchSettings::default());
    assert_eq!(
        plan_keyed.assignments[0].target,
        Target::Existing("P00000000002".to_owned())
    );
    assert!(plan_keyed.merges.is_empty(), "the old version's link proves nothing");
    assert!(
        plan_keyed.touched.contains("P00000000001"),
        "the entity that lost the mention is rebuilt"
    );
}

#[test]
fn a_key_never_links_entities_of_different_kinds() {
    let context = Context {
        key_owners: HashMap::from([(
            (IdScheme::DepartmentNumber, "r:1".to_owned()),
            "O00000000001".to_owned(),
        )]),
        previous: HashMap::new(),
        ..Context::default()
    };
    let record = title(vec![person(0, &[(IdScheme::DepartmentNumber, "r:1")])]);
    let plan = plan(&context, &[incoming("t1", &record)], &MatchSettings::default());
    assert_eq!(plan.assignments[0].target, Target::New(0));
}

#[test]
fn keys_are_listed_in_one_sorted_order() {
    let record = title(vec![person(0, &[PASSPORT_A, ID_A]), person(1, &[ID_A])]);
    let keys = keys_of(&[incoming("t1", &record)]);
    assert_eq!(
        keys,
        [
            (IdScheme::ResidentId, ID_A.1.to_owned()),
            (IdScheme::Passport, PASSPORT_A.1.to_owned())
        ]
    );
}

#[test]
fn placements_read_back_from_their_json() {
    // serde_json's arbitrary_precision (on in this workspace) turns numbers that serde
    // buffers (as for an internally tagged enum) into maps: the weights must read back.
    let evidence = matching::Evidence {
        total: 16.875,
        comparisons: vec![matching::Comparison {
            field: matching::Field::BirthDate,
            level: matching::Level::YearMonth,
            weight: 3.644,
        }],
    };
    for placement in [
        Placement::Queued {
            evidence: evidence.clone(),
        },
        Placement::Key {
            scheme: IdScheme::ResidentId,
            evidence: Some(evidence.clone()),
        },
        Placement::Previous {
            first: Some(Box::new(Placement::Matched {
                evidence: evidence.clone(),
            })),
        },
        Placement::Founded { best: None },
    ] {
        let text = serde_json::to_string(&placement).expect("placement JSON");
        let back: Placement = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, placement, "{text}");
    }
}
