//! Golden readings of hand-written tax registrations.

use serde_json::{json, Value};

use super::*;
use crate::fields::testing::{date, document, read_ok, text, unknown, value};
use crate::model::{FlagCode, RawDocument, Relation};

fn registration(fields: Vec<(&'static str, RawFact)>) -> Vec<RawFactSet> {
    vec![RawFactSet {
        topic: "taxpayer_registration",
        fields,
    }]
}

fn represents() -> Relation {
    Relation {
        kind: RelationKind::LegalRepresentativeOf,
        from: LEGAL_REPRESENTATIVE,
        to: Some(TAXPAYER),
        detail: None,
    }
}

/// The legal representative a unit's registration names (`fddbrxm`), with their document.
fn representative(name: &str, document: RawDocument) -> RawMention {
    RawMention {
        documents: vec![document],
        values: vec![value(Attribute::Name, "/fddbrxm", name)],
        ..RawMention::new(LEGAL_REPRESENTATIVE, EntityKind::Person)
    }
}

/// The reading of a unit's registration: the unit, and its legal representative who
/// represents it.
fn represented(unit: RawMention, representative: RawMention) -> Reading {
    Reading {
        mentions: vec![unit, representative],
        relations: vec![represents()],
    }
}

#[test]
fn unit_with_legacy_tax_id_and_a_foreign_representative() {
    let payload = json!({
        "djxh": "10113706870000004321",
        "nsrsbh": " 370687723456781",
        "nsrmc": "海阳市华海食品有限公司 ",
        "nsrlx": "1",
        "zjlx_dm": "",
        "fddbrxm": "SMITH JOHN",
        "fddbr_zjlx_dm": "208",
        "fddbr_zjhm": "e12345678",
        "zcdz": "海阳市凤城街道海河路12号",
        "scjydz": "",
        "lxdh": "0535-3210987",
        "hy_dm": "1391",
        "djrq": "20080312",
        "nsrzt_dm": "03",
        "swjg_dm": "13706870100"
    });
    let reading = read_ok(read, &payload);
    let taxpayer = RawMention {
        documents: vec![document(
            Some(DocumentFamily::LegacyTaxId),
            "",
            "/nsrsbh",
            " 370687723456781",
        )],
        values: vec![
            value(Attribute::Name, "/nsrmc", "海阳市华海食品有限公司 "),
            value(Attribute::Phone, "/lxdh", "0535-3210987"),
            value(Attribute::Address, "/zcdz", "海阳市凤城街道海河路12号"),
            value(Attribute::Status, "/nsrzt_dm", "active"),
            value(Attribute::OrganisationType, "/nsrlx", "unit"),
            value(Attribute::Industry, "/hy_dm", "1391"),
        ],
        facts: registration(vec![
            ("taxpayer_type", RawFact::Code("unit")),
            ("status", RawFact::Code("active")),
            ("registered", date("20080312")),
            ("tax_office", text("13706870100")),
            ("industry", text("1391")),
        ]),
        ..RawMention::new(TAXPAYER, EntityKind::Organisation)
    };
    let foreigner = representative(
        "SMITH JOHN",
        document(Some(DocumentFamily::Passport), "208", "/fddbr_zjhm", "e12345678"),
    );
    assert_eq!(reading, represented(taxpayer, foreigner));
}

#[test]
fn natural_person() {
    let payload = json!({
        "djxh": "10113706870000000017",
        "nsrsbh": "37068719900101123x",
        "nsrmc": "王 伟",
        "nsrlx": "3",
        "zjlx_dm": "201",
        "fddbrxm": "",
        "fddbr_zjlx_dm": "",
        "fddbr_zjhm": "",
        "zcdz": "山东省烟台市海阳市方圆街道海政路8号",
        "scjydz": "",
        "lxdh": "+86 138 1234 5678",
        "hy_dm": "",
        "djrq": "20200105",
        "nsrzt_dm": "03",
        "swjg_dm": "13706870000"
    });
    let reading = read_ok(read, &payload);
    let person = RawMention {
        documents: vec![document(
            Some(DocumentFamily::ResidentIdentityCard),
            "201",
            "/nsrsbh",
            "37068719900101123x",
        )],
        values: vec![
            value(Attribute::Name, "/nsrmc", "王 伟"),
            value(Attribute::Phone, "/lxdh", "+86 138 1234 5678"),
            value(Attribute::Address, "/zcdz", "山东省烟台市海阳市方圆街道海政路8号"),
        ],
        facts: registration(vec![
            ("taxpayer_type", RawFact::Code("natural_person")),
            ("status", RawFact::Code("active")),
            ("registered", date("20200105")),
            ("tax_office", text("13706870000")),
        ]),
        ..RawMention::new(TAXPAYER, EntityKind::Person)
    };
    assert_eq!(
        reading,
        Reading {
            mentions: vec![person],
            relations: vec![],
        }
    );
}

#[test]
fn individual_business_with_a_credit_code_typed_with_spaces() {
    // Optional columns left out altogether; codes typed with full-width digits and
    // the ideographic space.
    let payload = json!({
        "djxh": "10113706870000000555",
        "nsrsbh": "92370687 MA3C5B7K2Q",
        "nsrmc": "海阳市留格庄镇李强便利店",
        "nsrlx": "\u{3000}２",
        "fddbrxm": "李强",
        "fddbr_zjlx_dm": "２０１ ",
        "fddbr_zjhm": "370687650312101",
        "djrq": "２0120704",
        "nsrzt_dm": "07"
    });
    let reading = read_ok(read, &payload);
    let business = RawMention {
        documents: vec![document(
            Some(DocumentFamily::UnifiedSocialCreditCode),
            "",
            "/nsrsbh",
            "92370687 MA3C5B7K2Q",
        )],
        values: vec![
            value(Attribute::Name, "/nsrmc", "海阳市留格庄镇李强便利店"),
            value(Attribute::Status, "/nsrzt_dm", "deregistered"),
            value(Attribute::OrganisationType, "/nsrlx", "individual_business"),
        ],
        facts: registration(vec![
            ("taxpayer_type", RawFact::Code("individual_business")),
            ("status", RawFact::Code("deregistered")),
            ("registered", date("２0120704")),
        ]),
        ..RawMention::new(TAXPAYER, EntityKind::Organisation)
    };
    let operator = representative(
        "李强",
        document(
            Some(DocumentFamily::ResidentIdentityCard),
            "２０１ ",
            "/fddbr_zjhm",
            "370687650312101",
        ),
    );
    assert_eq!(reading, represented(business, operator));
}

#[test]
fn unknown_document_type_and_status_are_flagged_not_mapped() {
    let payload = json!({
        "djxh": "10113706870000000099",
        "nsrsbh": "370687198805054321",
        "nsrmc": "刘芳",
        "nsrlx": "3",
        "zjlx_dm": "299",
        "fddbrxm": "",
        "fddbr_zjlx_dm": "",
        "fddbr_zjhm": "",
        "zcdz": "",
        "djrq": "20210301",
        "nsrzt_dm": "99",
        "swjg_dm": ""
    });
    let reading = read_ok(read, &payload);
    let person = RawMention {
        documents: vec![document(None, "299", "/nsrsbh", "370687198805054321")],
        values: vec![value(Attribute::Name, "/nsrmc", "刘芳")],
        facts: registration(vec![
            ("taxpayer_type", RawFact::Code("natural_person")),
            ("registered", date("20210301")),
        ]),
        flags: vec![unknown("/zjlx_dm", DOCUMENT_TYPES), unknown("/nsrzt_dm", STATUSES)],
        ..RawMention::new(TAXPAYER, EntityKind::Person)
    };
    assert_eq!(reading.mentions, vec![person]);
    assert!(reading.relations.is_empty());
    for flag in &reading.mentions[0].flags {
        assert_eq!(flag.code, FlagCode::UnknownCode);
        assert!(flag.message.contains("tax"), "{}", flag.message);
        assert!(
            !flag.message.contains("299") && !flag.message.contains("99"),
            "{}",
            flag.message
        );
    }
}

#[test]
fn unit_with_unknown_status_keeps_no_status_and_one_flag() {
    let payload = json!({
        "djxh": "1", "nsrsbh": "913706877234567810", "nsrmc": "海阳市东村建筑有限公司", "nsrlx": "1",
        "fddbrxm": "", "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "djrq": "20160101", "nsrzt_dm": "99"
    });
    let reading = read_ok(read, &payload);
    let [unit] = reading.mentions.as_slice() else {
        panic!("one mention expected: {:?}", reading.mentions)
    };
    assert!(unit.values.iter().all(|v| v.attribute != Attribute::Status));
    assert_eq!(unit.flags, vec![unknown("/nsrzt_dm", STATUSES)]);
    assert_eq!(unit.documents[0].family, Some(DocumentFamily::UnifiedSocialCreditCode));
    // A unit without its legal representative: no mention, no relation.
    assert!(reading.relations.is_empty());
}

#[test]
fn unknown_taxpayer_type_decided_by_the_document_type() {
    let base = json!({"djxh": "1", "nsrsbh": "370687198805054321", "nsrmc": "刘芳", "nsrlx": "4",
        "zjlx_dm": "201", "djrq": "20210301", "nsrzt_dm": "03", "hy_dm": "5211"});
    let reading = read_ok(read, &base);
    let person = &reading.mentions[0];
    assert_eq!(person.kind, EntityKind::Person);
    assert_eq!(person.flags, vec![unknown("/nsrlx", TAXPAYER_TYPES)]);
    assert_eq!(
        person.facts[0].fields.first(),
        Some(&("status", RawFact::Code("active")))
    );
    // No industry or status attribute on a person.
    assert_eq!(person.values, vec![value(Attribute::Name, "/nsrmc", "刘芳")]);

    let mut unit = base;
    unit["zjlx_dm"] = json!("");
    unit["nsrsbh"] = json!("370687723456781");
    unit["fddbrxm"] = json!("赵敏");
    let reading = read_ok(read, &unit);
    let organisation = &reading.mentions[0];
    assert_eq!(organisation.kind, EntityKind::Organisation);
    assert!(organisation
        .values
        .iter()
        .all(|v| v.attribute != Attribute::OrganisationType));
    assert!(organisation
        .values
        .contains(&value(Attribute::Industry, "/hy_dm", "5211")));
    assert_eq!(reading.relations, vec![represents()]);
}

#[test]
fn representative_without_a_usable_document_type() {
    let payload = json!({"djxh": "1", "nsrsbh": "913706877234567810", "nsrmc": "某某公司", "nsrlx": "1",
        "fddbrxm": "\u{3000}", "fddbr_zjlx_dm": "", "fddbr_zjhm": "370687198805054321",
        "djrq": "20160101", "nsrzt_dm": "03"});
    let reading = read_ok(read, &payload);
    let representative = &reading.mentions[1];
    assert_eq!(representative.slot, LEGAL_REPRESENTATIVE);
    // A blank name is no name; the number alone makes the mention.
    assert!(representative.values.is_empty());
    assert_eq!(representative.documents[0].family, None);
    assert_eq!(representative.flags.len(), 1);
    assert_eq!(representative.flags[0].pointer, "/fddbr_zjlx_dm");
    assert_eq!(reading.relations, vec![represents()]);
}

#[test]
fn representative_on_a_natural_persons_registration_proves_no_relation() {
    let payload = json!({"djxh": "1", "nsrsbh": "370687198805054321", "nsrmc": "刘芳",
        "nsrlx": "3", "zjlx_dm": "201", "fddbrxm": "刘大海", "djrq": "20210301", "nsrzt_dm": "03"});
    let reading = read_ok(read, &payload);
    assert_eq!(reading.mentions.len(), 2);
    assert!(reading.relations.is_empty());
}

#[test]
fn structure_the_schema_guarantees_is_checked() {
    let good = json!({"djxh": "1", "nsrsbh": "913706877234567810", "nsrmc": "某某公司", "nsrlx": "1",
        "djrq": "20160101", "nsrzt_dm": "03"});
    assert!(read(&good).is_ok());
    let cases = [
        ("/nsrmc", Value::Null),
        ("/nsrlx", json!(3)),
        ("/lxdh", Value::Null),
        ("/fddbr_zjlx_dm", json!(208)),
        ("/zjlx_dm", json!(["201"])),
    ];
    for (pointer, bad) in cases {
        let mut payload = good.clone();
        payload[&pointer[1..]] = bad;
        let error = read(&payload).expect_err(pointer);
        assert_eq!(error.pointer, pointer);
    }
    let mut missing = good.clone();
    if let Some(map) = missing.as_object_mut() {
        map.remove("djrq");
    }
    assert_eq!(read(&missing).map_err(|e| e.pointer), Err("/djrq".to_owned()));
    for odd in [json!(null), json!([]), json!("x"), json!(1)] {
        assert!(read(&odd).is_err());
    }
}

#[test]
fn every_generated_registration_reads() {
    let readings = fields::testing::read_generated(
        crate::RecordType::TaxTaxpayer,
        &[Role::Taxpayer, Role::LegalRepresentative],
    );
    let (mut persons, mut unknown_document_types, mut legacy_ids) = (0, 0, 0);
    for (record, reading) in &readings {
        let id = &record.source_id;
        let Some(taxpayer) = reading.mentions.iter().find(|m| m.slot == TAXPAYER) else {
            panic!("{id}: no taxpayer")
        };
        let natural_person = record.payload["nsrlx"] == "3";
        assert_eq!(taxpayer.kind == EntityKind::Person, natural_person, "{id}");
        assert_eq!(taxpayer.facts.len(), 1, "{id}");
        if natural_person {
            persons += 1;
            assert!(reading.relations.is_empty(), "{id}");
        } else {
            // Every generated unit names its legal representative.
            assert_eq!(reading.relations, vec![represents()], "{id}");
        }
        unknown_document_types += taxpayer.documents.iter().filter(|d| d.family.is_none()).count();
        legacy_ids += taxpayer
            .documents
            .iter()
            .filter(|d| d.family == Some(DocumentFamily::LegacyTaxId))
            .count();
    }
    // The generator's dirt reached the adapter: the test is not vacuous.
    assert!(persons > 0 && persons < readings.len());
    assert!(unknown_document_types > 0);
    assert!(legacy_ids > 0);
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(crate::RecordType::TaxTaxpayer);
}
