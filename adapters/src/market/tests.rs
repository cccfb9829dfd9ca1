//! Golden readings of hand-written market entity registrations.

use serde_json::{json, Value};

use super::*;
use crate::fields::testing::{date, date_value, document, read_ok, text, unknown, value};
use crate::model::Relation;

fn represents() -> Relation {
    Relation {
        kind: RelationKind::LegalRepresentativeOf,
        from: LEGAL_REPRESENTATIVE,
        to: Some(ENTITY),
        detail: None,
    }
}

/// An individual business's first registration, before credit codes: only the
/// registration number, deregistered when it re-registered.
fn old_shop() -> Value {
    json!({
        "ztid": "3f2a9c0e7b5d4e1f8a6b2c9d0e1f2a3b",
        "tyshxydm": "",
        "zch": "370687600012345",
        "ztmc": "海阳市老街王记小吃店",
        "ztlx": "9100",
        "fddbr": "王 红",
        "fddbr_zjlx": "10",
        "fddbr_zjhm": "370687198203154527",
        "zczb": "",
        "clrq": "2006年4月9日",
        "zs": "海阳市方圆街道老街17号",
        "jyfw": "个体经营：小吃服务。",
        "djzt": "注销",
        "djjg": "海阳市工商行政管理局",
        "lxdh": ""
    })
}

#[test]
fn individual_business_with_only_a_registration_number() {
    let reading = read_ok(read, &old_shop());
    let entity = RawMention {
        documents: vec![document(
            Some(DocumentFamily::BusinessLicence),
            "",
            "/zch",
            "370687600012345",
        )],
        values: vec![
            value(Attribute::Name, "/ztmc", "海阳市老街王记小吃店"),
            value(Attribute::Status, "/djzt", "deregistered"),
            value(Attribute::OrganisationType, "/ztlx", "individual_business"),
            date_value(Attribute::Founded, "/clrq", "2006年4月9日"),
            value(Attribute::Address, "/zs", "海阳市方圆街道老街17号"),
        ],
        facts: vec![RawFactSet {
            topic: "market_registration",
            fields: vec![
                ("entity_type", RawFact::Code("individual_business")),
                ("status", RawFact::Code("deregistered")),
                ("founded", date("2006年4月9日")),
                ("registry", text("海阳市工商行政管理局")),
                ("business_scope", text("个体经营：小吃服务。")),
            ],
        }],
        ..RawMention::new(ENTITY, EntityKind::Organisation)
    };
    let operator = RawMention {
        documents: vec![document(
            Some(DocumentFamily::ResidentIdentityCard),
            "10",
            "/fddbr_zjhm",
            "370687198203154527",
        )],
        values: vec![value(Attribute::Name, "/fddbr", "王 红")],
        ..RawMention::new(LEGAL_REPRESENTATIVE, EntityKind::Person)
    };
    assert_eq!(
        reading,
        Reading {
            mentions: vec![entity, operator],
            relations: vec![represents()],
        }
    );
}

#[test]
fn limited_company_with_a_hong_kong_representative() {
    let reading = read_ok(
        read,
        &json!({
            "ztid": "0f8fad5bd9cb469fa16570867728950e",
            "tyshxydm": "91370687MA3C5B7K2Q ",
            "zch": "",
            "ztmc": "海阳市海港(集团)物流有限公司",
            "ztlx": "１１００",
            "fddbr": "CHAN Tai Man",
            "fddbr_zjlx": "30",
            "fddbr_zjhm": "H01234567",
            "zczb": "500万元人民币",
            "clrq": " 2017年11月3日",
            "zs": "海阳市凤城街道海港路1#",
            "jyfw": "一般项目：道路货物运输。",
            "djzt": "在业",
            "djjg": "海阳市市场监督管理局",
            "lxdh": "3218888"
        }),
    );
    let entity = RawMention {
        documents: vec![document(
            Some(DocumentFamily::UnifiedSocialCreditCode),
            "",
            "/tyshxydm",
            "91370687MA3C5B7K2Q ",
        )],
        values: vec![
            value(Attribute::Name, "/ztmc", "海阳市海港(集团)物流有限公司"),
            value(Attribute::Status, "/djzt", "active"),
            value(Attribute::OrganisationType, "/ztlx", "limited_company"),
            date_value(Attribute::Founded, "/clrq", " 2017年11月3日"),
            value(Attribute::RegisteredCapital, "/zczb", "500万元人民币"),
            value(Attribute::Address, "/zs", "海阳市凤城街道海港路1#"),
            value(Attribute::Phone, "/lxdh", "3218888"),
        ],
        facts: vec![RawFactSet {
            topic: "market_registration",
            fields: vec![
                ("entity_type", RawFact::Code("limited_company")),
                ("status", RawFact::Code("active")),
                ("registered_capital", RawFact::Amount("500万元人民币".to_owned())),
                ("founded", date(" 2017年11月3日")),
                ("registry", text("海阳市市场监督管理局")),
                ("business_scope", text("一般项目：道路货物运输。")),
            ],
        }],
        ..RawMention::new(ENTITY, EntityKind::Organisation)
    };
    let representative = RawMention {
        documents: vec![document(
            Some(DocumentFamily::HkMacaoTaiwanPermit),
            "30",
            "/fddbr_zjhm",
            "H01234567",
        )],
        values: vec![value(Attribute::Name, "/fddbr", "CHAN Tai Man")],
        ..RawMention::new(LEGAL_REPRESENTATIVE, EntityKind::Person)
    };
    assert_eq!(
        reading,
        Reading {
            mentions: vec![entity, representative],
            relations: vec![represents()],
        }
    );
}

#[test]
fn status_words_and_entity_types() {
    let mut payload = old_shop();
    for (djzt, expected) in [
        ("存续", Some("active")),
        ("在业\u{3000}", Some("active")),
        ("迁出", Some("moved_out")),
        ("吊销", Some("revoked")),
        ("歇业", None),
    ] {
        payload["djzt"] = json!(djzt);
        let entity = &read_ok(read, &payload).mentions[0];
        let status = entity.values.iter().find(|v| v.attribute == Attribute::Status);
        assert_eq!(status.map(|v| v.text.as_str()), expected, "{djzt}");
        assert_eq!(
            entity.flags.iter().any(|f| f.pointer == "/djzt"),
            expected.is_none(),
            "{djzt}"
        );
    }
    for (ztlx, expected) in [
        ("1200", Some("joint_stock_company")),
        ("4100", Some("cooperative")),
        ("2190", None),
    ] {
        payload["ztlx"] = json!(ztlx);
        let entity = &read_ok(read, &payload).mentions[0];
        let facts = &entity.facts[0].fields;
        let fact = facts.iter().find(|(name, _)| *name == "entity_type");
        assert_eq!(fact.map(|(_, f)| f.clone()), expected.map(RawFact::Code), "{ztlx}");
        assert_eq!(
            entity.flags.iter().any(|f| f.pointer == "/ztlx"),
            expected.is_none(),
            "{ztlx}"
        );
    }
}

#[test]
fn unknown_codes_are_flagged_on_the_mention_they_describe() {
    let mut payload = old_shop();
    payload["ztlx"] = json!("2190");
    payload["djzt"] = json!("歇业");
    payload["fddbr_zjlx"] = json!("50");
    let reading = read_ok(read, &payload);
    assert_eq!(
        reading.mentions[0].flags,
        vec![unknown("/ztlx", ENTITY_TYPES), unknown("/djzt", STATUSES)]
    );
    assert!(reading.mentions[0]
        .values
        .iter()
        .all(|v| v.attribute != Attribute::Status && v.attribute != Attribute::OrganisationType));
    assert_eq!(reading.mentions[1].flags, vec![unknown("/fddbr_zjlx", DOCUMENT_TYPES)]);
    assert_eq!(reading.mentions[1].documents[0].family, None);
    assert!(reading
        .mentions
        .iter()
        .flat_map(|m| &m.flags)
        .all(|f| !f.message.contains("2190") && !f.message.contains("歇业") && !f.message.contains("50")));
}

#[test]
fn representative_without_a_document() {
    let mut payload = old_shop();
    payload["fddbr_zjlx"] = json!("");
    if let Some(map) = payload.as_object_mut() {
        map.remove("fddbr_zjhm");
        map.remove("zch");
    }
    let reading = read_ok(read, &payload);
    // The entity still has its name; the operator has a name only.
    assert!(reading.mentions[0].documents.is_empty());
    assert!(reading.mentions[1].documents.is_empty());
    assert!(reading.mentions[1].flags.is_empty());
    assert_eq!(reading.relations, vec![represents()]);
}

#[test]
fn structure_the_schema_guarantees_is_checked() {
    for (pointer, bad) in [
        ("/ztlx", json!(1100)),
        ("/fddbr", Value::Null),
        ("/zczb", json!(500)),
        ("/tyshxydm", json!(false)),
    ] {
        let mut payload = old_shop();
        payload[&pointer[1..]] = bad;
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(pointer.to_owned()));
    }
    for field in ["ztmc", "clrq", "ztid"] {
        let mut payload = old_shop();
        if let Some(map) = payload.as_object_mut() {
            map.remove(field);
        }
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(format!("/{field}")));
    }
}

#[test]
fn every_generated_entity_reads() {
    let readings = fields::testing::read_generated(
        crate::RecordType::MarketEntity,
        &[Role::Entity, Role::LegalRepresentative],
    );
    let mut registration_number_only = 0;
    for (record, reading) in &readings {
        let id = &record.source_id;
        let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, [ENTITY, LEGAL_REPRESENTATIVE], "{id}");
        assert_eq!(reading.relations, vec![represents()], "{id}");
        let entity = &reading.mentions[0];
        let families: Vec<_> = entity.documents.iter().map(|d| d.family).collect();
        if families == [Some(DocumentFamily::BusinessLicence)] {
            registration_number_only += 1;
        }
    }
    assert!(registration_number_only > 0);
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(crate::RecordType::MarketEntity);
}
