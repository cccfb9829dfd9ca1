//! Golden readings of hand-written social insurance records.

use serde_json::{json, Value};

use super::*;
use crate::fields::testing::{date, date_value, department_number, document, read_ok, text, unknown, value};
use crate::model::{FlagCode, Relation};

fn employed() -> Relation {
    Relation {
        kind: RelationKind::EmployedBy,
        from: INSURED,
        to: Some(EMPLOYER),
        detail: None,
    }
}

/// A man enrolled in 1998 under his 15-digit identity number, employer registered
/// before 2015 without a credit code.
fn veteran() -> Value {
    json!({
        "grbh": "3700012345",
        "zjlx": "01",
        "sfzhm": "370687650312101",
        "xm": "张 建国",
        "xb": "1",
        "csrq": "1965-03-12",
        "mz": "01",
        "lxdh": "138 0535 6789",
        "hjdz": "海阳市东村街道文化路33号",
        "jzdz": "",
        "dwbh": "10000042",
        "dwmc": "海阳市东方机械有限公司（集团）",
        "dwtyshxydm": "",
        "cbzt": "1",
        "xzlx": ["310", "110"],
        "cbrq": "1998-07-01",
        "sbkh": "A12345678"
    })
}

#[test]
fn insured_with_a_15_digit_number_and_two_insurance_types() {
    let reading = read_ok(read, &veteran());
    let insured = RawMention {
        slot: INSURED,
        kind: EntityKind::Person,
        documents: vec![
            document(
                Some(DocumentFamily::ResidentIdentityCard),
                "01",
                "/sfzhm",
                "370687650312101",
            ),
            department_number("hrss.person", "/grbh", "3700012345"),
            department_number("hrss.card", "/sbkh", "A12345678"),
        ],
        values: vec![
            value(Attribute::Name, "/xm", "张 建国"),
            value(Attribute::Sex, "/xb", "male"),
            date_value(Attribute::BirthDate, "/csrq", "1965-03-12"),
            value(Attribute::Ethnicity, "/mz", "01"),
            value(Attribute::Phone, "/lxdh", "138 0535 6789"),
            value(Attribute::HouseholdAddress, "/hjdz", "海阳市东村街道文化路33号"),
        ],
        facts: vec![RawFactSet {
            topic: "social_insurance",
            fields: vec![
                ("status", RawFact::Code("paying")),
                (
                    "insurance",
                    RawFact::List(vec![RawFact::Code("medical"), RawFact::Code("pension")]),
                ),
                ("enrolled", date("1998-07-01")),
                ("employer_number", text("10000042")),
            ],
        }],
        flags: vec![],
    };
    let employer = RawMention {
        slot: EMPLOYER,
        kind: EntityKind::Organisation,
        documents: vec![department_number("hrss.employer", "/dwbh", "10000042")],
        values: vec![value(Attribute::Name, "/dwmc", "海阳市东方机械有限公司（集团）")],
        facts: vec![],
        flags: vec![],
    };
    assert_eq!(
        reading,
        Reading {
            mentions: vec![insured, employer],
            relations: vec![employed()],
        }
    );
}

#[test]
fn unknown_codes_are_flagged_and_left_out() {
    let mut payload = veteran();
    payload["zjlx"] = json!("06");
    payload["xb"] = json!("3");
    payload["cbzt"] = json!("4");
    payload["xzlx"] = json!(["110", " 2１0", "999"]);
    payload["dwtyshxydm"] = json!(" 913706877234567810");
    let reading = read_ok(read, &payload);
    let insured = &reading.mentions[0];
    assert_eq!(insured.documents[0].family, None);
    assert_eq!(insured.documents[0].code, "06");
    assert!(insured.values.iter().all(|v| v.attribute != Attribute::Sex));
    assert_eq!(
        insured.flags,
        vec![
            unknown("/zjlx", DOCUMENT_TYPES),
            unknown("/xb", SEXES),
            unknown("/cbzt", STATUSES),
            unknown("/xzlx/2", INSURANCE_TYPES),
        ]
    );
    assert!(insured
        .flags
        .iter()
        .all(|f| f.code == FlagCode::UnknownCode && !f.message.contains("999") && !f.message.contains("06")));
    let facts = &insured.facts[0].fields;
    assert_eq!(
        facts[0],
        (
            "insurance",
            RawFact::List(vec![RawFact::Code("pension"), RawFact::Code("unemployment")])
        )
    );
    assert!(facts.iter().all(|(name, _)| *name != "status"));
    let employer = &reading.mentions[1];
    assert_eq!(
        employer.documents[1],
        document(
            Some(DocumentFamily::UnifiedSocialCreditCode),
            "",
            "/dwtyshxydm",
            " 913706877234567810",
        )
    );
}

#[test]
fn sex_codes() {
    let mut payload = veteran();
    for (xb, expected, flagged) in [
        ("2", Some("female"), false),
        ("\u{3000}２ ", Some("female"), false),
        ("0", None, false),
        ("9", None, false),
        ("3", None, true),
        ("", None, true),
    ] {
        payload["xb"] = json!(xb);
        let insured = &read_ok(read, &payload).mentions[0];
        let sex = insured.values.iter().find(|v| v.attribute == Attribute::Sex);
        assert_eq!(sex.map(|v| v.text.as_str()), expected, "xb {xb:?}");
        assert_eq!(insured.flags.iter().any(|f| f.pointer == "/xb"), flagged, "xb {xb:?}");
    }
}

#[test]
fn no_insurance_types_is_an_empty_list() {
    let mut payload = veteran();
    payload["xzlx"] = json!([]);
    if let Some(map) = payload.as_object_mut() {
        map.remove("sbkh");
        map.remove("mz");
    }
    let insured = &read_ok(read, &payload).mentions[0];
    assert!(insured.facts[0].fields.contains(&("insurance", RawFact::List(vec![]))));
    assert_eq!(insured.documents.len(), 2);
    assert!(insured.values.iter().all(|v| v.attribute != Attribute::Ethnicity));
}

#[test]
fn structure_the_schema_guarantees_is_checked() {
    let cases = [
        ("/xzlx", json!("110,310")),
        ("/xzlx", Value::Null),
        ("/cbzt", json!(1)),
        ("/dwtyshxydm", json!(913706877234567810_u64)),
        ("/sbkh", json!({})),
    ];
    for (pointer, bad) in cases {
        let mut payload = veteran();
        payload[&pointer[1..]] = bad;
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(pointer.to_owned()));
    }
    let mut payload = veteran();
    payload["xzlx"] = json!(["110", 310]);
    assert_eq!(read(&payload).map_err(|e| e.pointer), Err("/xzlx/1".to_owned()));
    for field in ["grbh", "xzlx", "dwmc"] {
        let mut payload = veteran();
        if let Some(map) = payload.as_object_mut() {
            map.remove(field);
        }
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(format!("/{field}")));
    }
}

#[test]
fn every_generated_record_reads() {
    let readings =
        fields::testing::read_generated(crate::RecordType::HrssInsuredPerson, &[Role::Insured, Role::Employer]);
    let mut unknown_insurance_types = 0;
    for (record, reading) in &readings {
        let id = &record.source_id;
        let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, [INSURED, EMPLOYER], "{id}");
        assert_eq!(reading.relations, vec![employed()], "{id}");
        let insured = &reading.mentions[0];
        let person_numbers = insured.documents.iter().filter(|d| d.register == Some("hrss.person"));
        assert_eq!(person_numbers.count(), 1, "{id}");
        unknown_insurance_types += insured.flags.iter().filter(|f| f.pointer.starts_with("/xzlx/")).count();
    }
    assert!(unknown_insurance_types > 0);
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(crate::RecordType::HrssInsuredPerson);
}
