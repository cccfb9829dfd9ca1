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

/// Writes `city.jsonl`, `replays.jsonl` and `defective.jsonl` (lines
/// `{"pointer": .., "record": envelope}`) into the directory named by
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
