use std::collections::{HashMap, HashSet};

use super::*;

fn default_city() -> Vec<SyntheticRecord> {
    city(&CityConfig::default())
}

#[test]
fn the_same_seed_gives_the_same_city() {
    let config = CityConfig { people: 80, seed: 42 };
    assert_eq!(city(&config), city(&config));
    let other = city(&CityConfig { people: 80, seed: 43 });
    assert_ne!(city(&config), other);
    let records = city(&config);
    assert_eq!(replays_and_stale(&records, 7, 30), replays_and_stale(&records, 7, 30));
    assert_eq!(defective(3), defective(3));
}

#[test]
fn the_city_by_department_is_the_city() {
    let config = CityConfig { people: 120, seed: 5 };
    let mut departments = Vec::new();
    let mut records = Vec::new();
    for (department, written) in city_by_department(&config) {
        assert!(written.iter().all(|r| r.record_type.department() == department));
        departments.push(department);
        records.extend(written);
    }
    assert_eq!(departments, Department::ALL);
    assert_eq!(records, city(&config));
}

#[test]
fn every_record_type_is_present() {
    let records = default_city();
    for record_type in RecordType::ALL {
        assert!(
            records.iter().any(|r| r.record_type == record_type),
            "no {record_type} record"
        );
    }
    // A small city too.
    let small = city(&CityConfig { people: 25, seed: 9 });
    for record_type in RecordType::ALL {
        assert!(
            small.iter().any(|r| r.record_type == record_type),
            "no {record_type} in a small city"
        );
    }
    assert!(city(&CityConfig { people: 0, seed: 1 }).is_empty());
}

#[test]
fn source_ids_are_unique_per_record_type() {
    for seed in [1, 2, 3] {
        let records = city(&CityConfig { people: 300, seed });
        let mut seen: HashMap<RecordType, HashSet<&str>> = HashMap::new();
        for r in &records {
            assert!(
                seen.entry(r.record_type).or_default().insert(&r.source_id),
                "{} twice",
                r.source_id
            );
            assert!(!r.source_id.trim().is_empty());
        }
    }
}

#[test]
fn versions_are_plausible_millisecond_timestamps() {
    let from = Date::new(2015, 1, 1).beijing_midnight_ms();
    let to = TODAY.plus_days(1).beijing_midnight_ms();
    for r in default_city() {
        assert!(
            (from..to).contains(&r.source_version),
            "{} has version {}",
            r.source_id,
            r.source_version
        );
        assert!(r.payload.is_object());
    }
}

#[test]
fn identity_numbers_of_the_population_have_valid_check_digits() {
    let town = City::generate(&CityConfig::default());
    let mut residents = 0;
    for person in &town.persons {
        if let Some(id) = person.resident_id() {
            residents += 1;
            assert_eq!(id.len(), 18, "{id}");
            assert_eq!(checks::gb11643(&id[..17]), id.chars().last(), "{id}");
            assert_eq!(&id[6..14], person.birth.compact(), "{id}: birth date");
            let sequence: u32 = id[14..17].parse().expect("digits");
            assert_eq!(sequence % 2 == 1, person.sex == Sex::Male, "{id}: sex");
            if let Some(legacy) = person.legacy_id() {
                assert_eq!(legacy.len(), 15);
                assert_eq!(&legacy[6..12], &id[8..14]);
            }
        }
    }
    assert!(residents > 150, "most people hold a resident card: {residents}");
    for org in &town.orgs {
        assert_eq!(
            checks::gb11714(&org.org_code[..8]),
            org.org_code.chars().last(),
            "{}",
            org.org_code
        );
        if let Some(uscc) = &org.uscc {
            assert_eq!(uscc.len(), 18);
            assert_eq!(checks::gb32100(&uscc[..17]), uscc.chars().last(), "{uscc}");
            assert_eq!(&uscc[8..17], org.org_code, "positions 9-17 are the organisation code");
        }
        if let Some(reg_no) = &org.reg_no {
            assert_eq!(checks::mod11_10(&reg_no[..14]), reg_no.chars().last(), "{reg_no}");
        }
    }
}

#[test]
fn check_characters_match_published_examples() {
    // GB 11643-1999's own example.
    assert_eq!(checks::gb11643("11010519491231002"), Some('X'));
    assert_eq!(checks::gb11643("44052418800101001"), Some('4'));
    // A widely published credit code and its organisation code.
    assert_eq!(checks::gb32100("91350100M000100Y4"), Some('3'));
    assert_eq!(checks::gb11714("M000100Y"), Some('4'), "positions 9-17 of that code");
    assert_eq!(checks::gb11714("D2143569"), Some('X'));
    assert_eq!(checks::gb11643("1101051949123100"), None);
    assert_eq!(checks::gb32100("91350100M000100YI"), None, "I is not in the alphabet");
}

#[test]
fn exports_show_the_documented_dirt() {
    let records = city(&CityConfig { people: 600, seed: 5 });
    let lines: Vec<String> = records.iter().map(|r| r.to_json_line()).collect();
    // Identity numbers as typed: mostly right, some 15-digit, some with a wrong check digit.
    let (mut right, mut wrong, mut short) = (0, 0, 0);
    for r in records
        .iter()
        .filter(|r| r.record_type == RecordType::HrssInsuredPerson)
    {
        let id = r.payload["sfzhm"].as_str().unwrap_or("").trim().to_uppercase();
        match id.len() {
            18 if checks::gb11643(&id[..17]) == id.chars().last() => right += 1,
            18 => wrong += 1,
            15 => short += 1,
            _ => {}
        }
    }
    assert!(
        wrong > 0 && short > 0 && right > 5 * (wrong + short),
        "{right} right, {wrong} wrong, {short} short"
    );
    let all = lines.join("\n");
    assert!(all.contains('\u{3000}'), "full-width spaces");
    assert!(
        all.contains('０') || all.contains('１') || all.contains('２'),
        "full-width digits"
    );
    assert!(
        all.contains("0086") && all.contains("+86"),
        "international phone prefixes"
    );
    assert!(all.contains('#'), "# for 号");
    assert!(all.contains("(0535)") || all.contains("0535-"), "landlines");
    assert!(all.contains('·') && all.contains("（集团）") && all.contains("(集团)"));
    assert!(
        lines.iter().any(|l| l.contains("\"deleted\":true")),
        "some withdrawn records"
    );
}

#[test]
fn json_lines_are_single_line_envelopes() {
    for r in default_city().iter().take(50) {
        let line = r.to_json_line();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("{\"record_type\":"), "{line}");
        let back: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back["record_type"], r.record_type.as_str());
        assert_eq!(back["source_id"], r.source_id.as_str());
        assert_eq!(back["source_version"], r.source_version);
        assert_eq!(back["deleted"], r.deleted);
        assert_eq!(back["payload"], r.payload);
    }
}

#[test]
fn replays_are_identical_and_stale_copies_are_older() {
    let records = default_city();
    let redelivered = replays_and_stale(&records, 11, 200);
    assert_eq!(redelivered.len(), 200);
    let by_key: HashMap<(RecordType, &str), &SyntheticRecord> = records
        .iter()
        .map(|r| ((r.record_type, r.source_id.as_str()), r))
        .collect();
    let (mut replays, mut stale) = (0, 0);
    for copy in &redelivered {
        let original = by_key
            .get(&(copy.record_type, copy.source_id.as_str()))
            .expect("known record");
        if copy == *original {
            replays += 1;
        } else {
            stale += 1;
            assert!(copy.source_version < original.source_version);
            assert!(copy.source_version > 0);
            assert!(!copy.deleted);
        }
    }
    assert!(replays > 50 && stale > 50, "{replays} replays, {stale} stale");
    assert!(replays_and_stale(&[], 1, 5).is_empty());
}

#[test]
fn defective_records_name_a_pointer_into_their_payload() {
    for seed in 1..=4 {
        let valid = city(&CityConfig { people: 120, seed });
        let defects = defective(seed);
        for record_type in RecordType::ALL {
            let count = defects.iter().filter(|(r, _)| r.record_type == record_type).count();
            assert!(count >= 3, "seed {seed}: only {count} defective {record_type}");
        }
        for (record, pointer) in &defects {
            assert!(pointer.is_empty() || pointer.starts_with('/'), "{pointer}");
            // The pointer names an existing value: the bad value itself, or the object
            // that lacks a required member.
            assert!(
                record.payload.pointer(pointer).is_some(),
                "{}: {pointer} not in payload",
                record.record_type
            );
            let original = valid
                .iter()
                .find(|r| r.record_type == record.record_type && r.source_id == record.source_id)
                .expect("a defect is a modified city record");
            assert_ne!(
                record.payload, original.payload,
                "{} {pointer}: nothing changed",
                record.record_type
            );
        }
    }
}

#[test]
fn dates_round_trip() {
    for days in [-25_000, -1, 0, 1, 10_957, 20_000, 20_634] {
        assert_eq!(Date::from_days(days).days(), days);
    }
    assert_eq!(Date::new(1970, 1, 1).days(), 0);
    assert_eq!(Date::new(2000, 3, 1).days(), 11_017);
    assert_eq!(Date::new(2025, 7, 28).beijing_midnight_ms(), 1_753_632_000_000);
    assert_eq!(Date::new(1990, 6, 30).age_on(Date::new(2026, 6, 29)), 35);
    assert_eq!(Date::new(2024, 2, 29).plus_years(1), Date::new(2025, 2, 28));
}

/// Writes `city.jsonl` (and its ground truth `truth.jsonl`), `replays.jsonl` and
/// `defective.jsonl` (lines `{"pointer": .., "record": envelope}`) into the directory named by
/// `TONGBAN_SYNTH_DIR`, for checking against the schemas with another validator:
/// `TONGBAN_SYNTH_DIR=/tmp/x cargo test -p tongban-adapters -- --ignored write_examples`.
#[test]
#[ignore = "writes files; run by hand"]
fn write_examples() {
    let Ok(dir) = std::env::var("TONGBAN_SYNTH_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the output directory");
    let records = default_city();
    let lines = |records: &[SyntheticRecord]| -> String { records.iter().map(|r| r.to_json_line() + "\n").collect() };
    std::fs::write(dir.join("city.jsonl"), lines(&records)).expect("write city.jsonl");
    let big = city(&CityConfig { people: 2000, seed: 77 });
    std::fs::write(dir.join("city-2000.jsonl"), lines(&big)).expect("write city-2000.jsonl");
    let truth = |records: &[SyntheticRecord]| -> String { truth_lines(records).map(|l| l + "\n").collect() };
    std::fs::write(dir.join("truth.jsonl"), truth(&records)).expect("write truth.jsonl");
    std::fs::write(dir.join("truth-2000.jsonl"), truth(&big)).expect("write truth-2000.jsonl");
    std::fs::write(dir.join("replays.jsonl"), lines(&replays_and_stale(&records, 5, 400))).expect("write");
    let defects: String = defective(1)
        .iter()
        .map(|(r, pointer)| {
            format!(
                "{{\"pointer\":{},\"record\":{}}}\n",
                Value::from(*pointer),
                r.to_json_line()
            )
        })
        .collect();
    std::fs::write(dir.join("defective.jsonl"), defects).expect("write defective.jsonl");
}

// ---------------------------------------------------------------------------
// Ground truth.

/// The roles a record type may hold, each with the kinds of entity it can be about.
fn allowed(record_type: RecordType, role: Role) -> &'static [EntityKind] {
    const PERSON: &[EntityKind] = &[EntityKind::Person];
    const ORG: &[EntityKind] = &[EntityKind::Organisation];
    const EITHER: &[EntityKind] = &[EntityKind::Person, EntityKind::Organisation];
    match (record_type, role) {
        (RecordType::TaxTaxpayer, Role::Taxpayer) => EITHER,
        (RecordType::TaxTaxpayer, Role::LegalRepresentative) => PERSON,
        (RecordType::HrssInsuredPerson, Role::Insured) => PERSON,
        (RecordType::HrssInsuredPerson, Role::Employer) => ORG,
        (RecordType::MarketEntity, Role::Entity) => ORG,
        (RecordType::MarketEntity, Role::LegalRepresentative) => PERSON,
        (RecordType::RealEstateTitle, Role::RightHolder) => EITHER,
        (RecordType::HousingFundAccount, Role::AccountHolder) => PERSON,
        (RecordType::HousingFundAccount, Role::Employer) => ORG,
        (RecordType::ConstructionPermit, Role::Developer | Role::Builder | Role::Supervisor) => ORG,
        (RecordType::ConstructionPermit, Role::ProjectManager) => PERSON,
        (RecordType::CivilMarriage, Role::Party) => PERSON,
        (RecordType::CivilAssistance, Role::Member) => PERSON,
        _ => &[],
    }
}

/// How many entries the array at `pointer` of a record's payload has (none if it has
/// no array there).
fn entries(record: &SyntheticRecord, pointer: &str) -> usize {
    record
        .payload
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// How many mentions a record writes: one per role of its type, one per `qlr` or
/// `jtcy` entry, none for the legal representative of a natural person.
fn expected_mentions(record: &SyntheticRecord) -> usize {
    match record.record_type {
        RecordType::TaxTaxpayer if text_at(&record.payload, "/nsrlx") == "3" => 1,
        RecordType::RealEstateTitle => entries(record, "/qlr"),
        RecordType::CivilAssistance => entries(record, "/jtcy"),
        RecordType::ConstructionPermit => 4,
        _ => 2,
    }
}

#[test]
fn every_mention_has_exactly_one_true_entity_in_an_allowed_slot() {
    for (people, seed) in [(200, 1), (600, 2), (25, 9)] {
        let config = CityConfig { people, seed };
        let town = City::generate(&config);
        for record in city(&config) {
            let what = format!("{} {}", record.record_type, record.source_id);
            if !record.deleted {
                assert!(!record.truth.is_empty(), "{what}: no true mention");
            }
            assert_eq!(
                record.truth.len(),
                expected_mentions(&record),
                "{what}: {:?}",
                record.truth
            );
            let slots: HashSet<Slot> = record.truth.iter().map(|t| t.slot).collect();
            assert_eq!(slots.len(), record.truth.len(), "{what}: a slot twice");
            for truth in &record.truth {
                let Slot { role, index } = truth.slot;
                assert!(
                    allowed(record.record_type, role).contains(&truth.entity.kind),
                    "{what}: {role} is {}",
                    truth.entity
                );
                let positions = match role {
                    Role::RightHolder => entries(&record, "/qlr"),
                    Role::Member => entries(&record, "/jtcy"),
                    Role::Party => 2,
                    _ => 1,
                };
                assert!((index as usize) < positions, "{what}: {role} {index}");
                let population = match truth.entity.kind {
                    EntityKind::Person => town.persons.len(),
                    EntityKind::Organisation => town.orgs.len(),
                };
                assert!((truth.entity.id as usize) < population, "{what}: {}", truth.entity);
            }
        }
    }
}

/// A typed number reduced to what a clerk meant: no white space, no hyphens,
/// half-width, upper case.
fn cleaned(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect::<String>()
        .to_uppercase()
}

/// Where a slot's identity number or code is written.
fn number_pointers(record_type: RecordType, slot: Slot) -> Vec<String> {
    let i = slot.index;
    let fixed: &[&str] = match (record_type, slot.role) {
        (RecordType::TaxTaxpayer, Role::Taxpayer) => &["/nsrsbh"],
        (RecordType::TaxTaxpayer | RecordType::MarketEntity, Role::LegalRepresentative) => &["/fddbr_zjhm"],
        (RecordType::HrssInsuredPerson, Role::Insured) => &["/sfzhm"],
        (RecordType::HrssInsuredPerson, Role::Employer) => &["/dwtyshxydm"],
        (RecordType::MarketEntity, Role::Entity) => &["/tyshxydm", "/zch"],
        (RecordType::HousingFundAccount, Role::AccountHolder) => &["/zjhm"],
        (RecordType::HousingFundAccount, Role::Employer) => &["/dwzzjgdm"],
        (RecordType::ConstructionPermit, Role::Developer) => &["/jsdw/tyshxydm"],
        (RecordType::ConstructionPermit, Role::Builder) => &["/sgdw/tyshxydm"],
        (RecordType::ConstructionPermit, Role::Supervisor) => &["/jldw/tyshxydm"],
        (RecordType::ConstructionPermit, Role::ProjectManager) => &["/xmjl/zjhm"],
        (RecordType::CivilMarriage, Role::Party) if i == 0 => &["/nan/zjhm"],
        (RecordType::CivilMarriage, Role::Party) => &["/nv/zjhm"],
        (RecordType::RealEstateTitle, Role::RightHolder) => return vec![format!("/qlr/{i}/zjh")],
        (RecordType::CivilAssistance, Role::Member) => return vec![format!("/jtcy/{i}/sfzh")],
        _ => &[],
    };
    fixed.iter().map(|p| (*p).to_owned()).collect()
}

/// Is `number` (cleaned) one of the ways the entity's number can be typed: its
/// document number, the 15-digit form, the 18 digits with a wrong check character;
/// for an organisation its credit code, registration number, organisation code or
/// old tax ID.
fn identifies(town: &City, entity: TrueEntity, number: &str) -> bool {
    match entity.kind {
        EntityKind::Person => {
            let Some(person) = town.person(entity.id as usize) else {
                return false;
            };
            let Some(document) = &person.document else {
                return false;
            };
            let exact = document.number.to_uppercase() == number;
            let legacy = person.legacy_id().is_some_and(|l| l == number);
            let typo = person
                .resident_id()
                .is_some_and(|id| number.len() == 18 && id[..17] == number[..17]);
            exact || legacy || typo
        }
        EntityKind::Organisation => town.org(entity.id as usize).is_some_and(|org| {
            [
                org.uscc.clone(),
                org.reg_no.clone(),
                Some(org.org_code.clone()),
                Some(org.tax_id15()),
            ]
            .into_iter()
            .flatten()
            .any(|code| code == number)
        }),
    }
}

#[test]
fn the_numbers_in_each_slot_belong_to_its_true_entity() {
    let config = CityConfig { people: 600, seed: 5 };
    let town = City::generate(&config);
    let mut checked: HashMap<(RecordType, Role), usize> = HashMap::new();
    for record in city(&config) {
        for truth in &record.truth {
            let pointers = number_pointers(record.record_type, truth.slot);
            assert!(
                !pointers.is_empty(),
                "{} {}: no number field",
                record.record_type,
                truth.slot.role
            );
            for pointer in pointers {
                let number = cleaned(text_at(&record.payload, &pointer));
                if number.is_empty() {
                    continue;
                }
                assert!(
                    identifies(&town, truth.entity, &number),
                    "{} {} {pointer}: {number} is not {}",
                    record.record_type,
                    record.source_id,
                    truth.entity
                );
                *checked.entry((record.record_type, truth.slot.role)).or_default() += 1;
            }
        }
    }
    // Every role of every record type was checked against some number.
    for record_type in RecordType::ALL {
        for role in Role::ALL {
            if !allowed(record_type, role).is_empty() {
                assert!(
                    checked.get(&(record_type, role)).is_some_and(|&n| n > 0),
                    "{record_type} {role} never checked"
                );
            }
        }
    }
}

#[test]
fn a_person_is_the_same_entity_in_every_department() {
    let records = city(&CityConfig { people: 2000, seed: 77 });
    let mut types_of: HashMap<TrueEntity, HashSet<RecordType>> = HashMap::new();
    for record in records.iter().filter(|r| !r.deleted) {
        for truth in &record.truth {
            types_of.entry(truth.entity).or_default().insert(record.record_type);
        }
    }
    let widest = types_of
        .iter()
        .filter(|(entity, _)| entity.kind == EntityKind::Person)
        .map(|(_, types)| types.len())
        .max()
        .unwrap_or(0);
    assert!(widest >= 4, "no person under four record types: at most {widest}");
    // Organisations too: an employer is the same entity in the pension and fund records.
    assert!(types_of
        .iter()
        .any(|(entity, types)| entity.kind == EntityKind::Organisation && types.len() >= 4));
}

#[test]
fn the_member_who_is_the_head_is_the_household_head() {
    let config = CityConfig { people: 2000, seed: 77 };
    let town = City::generate(&config);
    let mut by_number: HashMap<String, usize> = HashMap::new();
    for (index, person) in town.persons.iter().enumerate() {
        if let Some(id) = person.resident_id() {
            by_number.insert(id[..17].to_owned(), index);
        }
        if let Some(legacy) = person.legacy_id() {
            by_number.insert(legacy, index);
        }
    }
    let mut households = 0;
    for record in city(&config)
        .iter()
        .filter(|r| r.record_type == RecordType::CivilAssistance)
    {
        let head_number = cleaned(text_at(&record.payload, "/hzsfzh"));
        let key = if head_number.len() == 18 {
            head_number[..17].to_owned()
        } else {
            head_number
        };
        let head = by_number.get(&key).copied();
        assert!(head.is_some(), "{}: hzsfzh is nobody's", record.source_id);
        let members = record
            .payload
            .pointer("/jtcy")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (position, member) in members.iter().enumerate() {
            if text_at(member, "/yhzgx") != "本人" {
                continue;
            }
            let truth = record
                .truth
                .iter()
                .find(|t| t.slot == Slot::new(Role::Member, position as u32))
                .expect("the member 本人 is a mention");
            assert_eq!(head.map(TrueEntity::person), Some(truth.entity), "{}", record.source_id);
            households += 1;
        }
    }
    assert!(households > 20, "only {households} households checked");
}

#[test]
fn the_first_party_of_a_marriage_is_the_man() {
    let config = CityConfig { people: 600, seed: 3 };
    let town = City::generate(&config);
    let mut marriages = 0;
    for record in city(&config)
        .iter()
        .filter(|r| r.record_type == RecordType::CivilMarriage)
    {
        for truth in &record.truth {
            let person = town.person(truth.entity.id as usize).expect("a person of the city");
            let sex = if truth.slot.index == 0 { Sex::Male } else { Sex::Female };
            assert_eq!(person.sex, sex, "{} party {}", record.source_id, truth.slot.index);
        }
        assert_eq!(record.truth.len(), 2);
        marriages += 1;
    }
    assert!(marriages > 50, "{marriages}");
}

#[test]
fn truth_lines_cover_the_live_records_and_nothing_else() {
    let records = city(&CityConfig { people: 300, seed: 4 });
    let lines: Vec<String> = truth_lines(&records).collect();
    let live: usize = records.iter().filter(|r| !r.deleted).map(|r| r.truth.len()).sum();
    assert_eq!(lines.len(), live);
    assert!(
        records.iter().any(|r| r.deleted && !r.truth.is_empty()),
        "withdrawn records keep their truth"
    );
    let mut keys = HashSet::new();
    for line in &lines {
        assert!(line.starts_with("{\"record_type\":"), "{line}");
        let value: Value = serde_json::from_str(line).expect("valid JSON");
        let record_type = value["record_type"].as_str().expect("record_type");
        let source_id = value["source_id"].as_str().expect("source_id");
        let role = Role::parse(value["role"].as_str().expect("role")).expect("a known role");
        let index = value["index"].as_u64().expect("index");
        let entity = TrueEntity::parse(value["entity"].as_str().expect("entity")).expect("P.. or O..");
        let record = records
            .iter()
            .find(|r| !r.deleted && r.record_type.as_str() == record_type && r.source_id == source_id)
            .expect("a live record");
        let slot = Slot::new(role, index as u32);
        assert!(record.truth.contains(&TrueMention { slot, entity }), "{line}");
        assert!(
            keys.insert((record_type.to_owned(), source_id.to_owned(), slot)),
            "{line} twice"
        );
    }
    // The envelope does not give the truth away.
    assert!(records.iter().all(|r| !r.to_json_line().contains("\"truth\"")));
    assert_eq!(
        truth_lines(&records).collect::<Vec<_>>(),
        lines,
        "the same truth every time"
    );
}

#[test]
fn entities_are_written_p_and_o() {
    let person = TrueEntity::person(17);
    assert_eq!(person.to_string(), "P17");
    assert_eq!(TrueEntity::org(0).to_string(), "O0");
    assert_eq!(TrueEntity::parse("P17"), Some(person));
    assert_eq!(TrueEntity::parse("O3"), Some(TrueEntity::org(3)));
    for bad in ["", "P", "X1", "P+1", "p1", "P1 ", "O-2", "P99999999999"] {
        assert_eq!(TrueEntity::parse(bad), None, "{bad}");
    }
}

#[test]
fn redeliveries_and_defects_keep_the_truth() {
    let records = default_city();
    let by_key: HashMap<(RecordType, &str), &SyntheticRecord> = records
        .iter()
        .map(|r| ((r.record_type, r.source_id.as_str()), r))
        .collect();
    for copy in replays_and_stale(&records, 3, 200) {
        let original = by_key[&(copy.record_type, copy.source_id.as_str())];
        assert_eq!(copy.truth, original.truth, "{}", copy.source_id);
    }
    for (defect, _) in defective(1) {
        assert!(!defect.truth.is_empty(), "{}", defect.source_id);
    }
}
