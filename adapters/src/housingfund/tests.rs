//! Golden readings of hand-written provident fund accounts.

use serde_json::{json, Value};

use super::*;
use crate::fields::testing::{date, date_value, department_number, document, read_ok, text, unknown, value};
use crate::model::Relation;

/// A foreign permanent resident, typed with the code 99 the fund's table lacks, at
/// an employer whose organisation code was never entered.
fn resident_card_holder() -> Value {
    json!({
        "grzh": "300000004217",
        "xingming": "Müller Anna",
        "zjlx": "99",
        "zjhm": "DEU370687850612",
        "csny": "198506",
        "sjhm": "0086 139-5350-1234",
        "dwzh": "1000000351",
        "dwmc": "海阳市蓝海科技有限公司 ",
        "dwzzjgdm": "",
        "jcjs": "8000.50",
        "grjcbl": "0.12",
        "zhzt": "0",
        "khrq": "2019/3/7"
    })
}

#[test]
fn unknown_document_code_and_no_organisation_code() {
    let reading = read_ok(read, &resident_card_holder());
    let holder = RawMention {
        slot: ACCOUNT_HOLDER,
        kind: EntityKind::Person,
        documents: vec![
            document(None, "99", "/zjhm", "DEU370687850612"),
            department_number("housingfund.account", "/grzh", "300000004217"),
        ],
        values: vec![
            value(Attribute::Name, "/xingming", "Müller Anna"),
            date_value(Attribute::BirthDate, "/csny", "198506"),
            value(Attribute::Phone, "/sjhm", "0086 139-5350-1234"),
        ],
        facts: vec![RawFactSet {
            topic: "provident_fund_account",
            fields: vec![
                ("account", text("300000004217")),
                ("status", RawFact::Code("normal")),
                ("contribution_base", RawFact::Amount("8000.50".to_owned())),
                ("personal_rate", text("0.12")),
                ("opened", date("2019/3/7")),
                ("employer_account", text("1000000351")),
            ],
        }],
        flags: vec![unknown("/zjlx", DOCUMENT_TYPES)],
    };
    let employer = RawMention {
        slot: EMPLOYER,
        kind: EntityKind::Organisation,
        documents: vec![department_number("housingfund.employer", "/dwzh", "1000000351")],
        values: vec![value(Attribute::Name, "/dwmc", "海阳市蓝海科技有限公司 ")],
        facts: vec![],
        flags: vec![],
    };
    assert_eq!(
        reading,
        Reading {
            mentions: vec![holder, employer],
            relations: vec![Relation {
                kind: RelationKind::EmployedBy,
                from: ACCOUNT_HOLDER,
                to: Some(EMPLOYER),
                detail: None,
            }],
        }
    );
    assert!(!reading.mentions[0].flags[0].message.contains("99"));
}

#[test]
fn sealed_account_with_an_organisation_code_and_no_birth_month() {
    let mut payload = resident_card_holder();
    payload["zjlx"] = json!("０1");
    payload["zjhm"] = json!("370687198506120021");
    payload["dwzzjgdm"] = json!("72345678-1");
    payload["zhzt"] = json!("1");
    if let Some(map) = payload.as_object_mut() {
        map.remove("csny");
    }
    let reading = read_ok(read, &payload);
    let holder = &reading.mentions[0];
    assert!(holder.flags.is_empty());
    assert_eq!(holder.documents[0].family, Some(DocumentFamily::ResidentIdentityCard));
    assert!(holder.values.iter().all(|v| v.attribute != Attribute::BirthDate));
    assert!(holder.facts[0].fields.contains(&("status", RawFact::Code("sealed"))));
    assert_eq!(
        reading.mentions[1].documents[1],
        document(Some(DocumentFamily::OrganisationCode), "", "/dwzzjgdm", "72345678-1",)
    );
}

#[test]
fn document_types_and_statuses() {
    let mut payload = resident_card_holder();
    for (zjlx, family) in [
        ("02", Some(DocumentFamily::MilitaryOfficerCard)),
        ("03", Some(DocumentFamily::Passport)),
        ("04", Some(DocumentFamily::HkMacaoTaiwanPermit)),
        ("05", Some(DocumentFamily::HkMacaoTaiwanPermit)),
        ("06", None),
    ] {
        payload["zjlx"] = json!(zjlx);
        let holder = &read_ok(read, &payload).mentions[0];
        assert_eq!(holder.documents[0].family, family, "{zjlx}");
        assert_eq!(holder.flags.is_empty(), family.is_some(), "{zjlx}");
    }
    payload["zjlx"] = json!("01");
    for (zhzt, status) in [("2", Some("closed")), ("3", None)] {
        payload["zhzt"] = json!(zhzt);
        let holder = &read_ok(read, &payload).mentions[0];
        let found = holder.facts[0].fields.iter().find(|(name, _)| *name == "status");
        assert_eq!(found.map(|(_, f)| f.clone()), status.map(RawFact::Code), "{zhzt}");
        assert_eq!(
            holder.flags,
            if status.is_some() {
                vec![]
            } else {
                vec![unknown("/zhzt", STATUSES)]
            }
        );
    }
}

#[test]
fn employer_with_neither_name_nor_code_is_no_mention() {
    // The schema forbids it; were it to happen, the holder still reads alone.
    let mut payload = resident_card_holder();
    payload["dwmc"] = json!("\u{3000}");
    payload["dwzh"] = json!(" ");
    let reading = read_ok(read, &payload);
    assert_eq!(reading.mentions.len(), 1);
    assert_eq!(reading.mentions[0].slot, ACCOUNT_HOLDER);
    assert!(reading.relations.is_empty());
}

#[test]
fn structure_the_schema_guarantees_is_checked() {
    for (pointer, bad) in [
        ("/jcjs", json!(5000)),
        ("/zhzt", json!(0)),
        ("/csny", json!(198604)),
        ("/dwzzjgdm", Value::Null),
    ] {
        let mut payload = resident_card_holder();
        payload[&pointer[1..]] = bad;
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(pointer.to_owned()));
    }
    for field in ["grzh", "khrq", "grjcbl"] {
        let mut payload = resident_card_holder();
        if let Some(map) = payload.as_object_mut() {
            map.remove(field);
        }
        assert_eq!(read(&payload).map_err(|e| e.pointer), Err(format!("/{field}")));
    }
}

#[test]
fn every_generated_account_reads() {
    let readings = fields::testing::read_generated(
        crate::RecordType::HousingFundAccount,
        &[Role::AccountHolder, Role::Employer],
    );
    let (mut unknown_document_types, mut without_organisation_code) = (0, 0);
    for (record, reading) in &readings {
        let id = &record.source_id;
        let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, [ACCOUNT_HOLDER, EMPLOYER], "{id}");
        assert_eq!(reading.relations.len(), 1, "{id}");
        let holder = &reading.mentions[0];
        unknown_document_types += holder.documents.iter().filter(|d| d.family.is_none()).count();
        let employer = &reading.mentions[1];
        if employer
            .documents
            .iter()
            .all(|d| d.family != Some(DocumentFamily::OrganisationCode))
        {
            without_organisation_code += 1;
        }
    }
    assert!(unknown_document_types > 0);
    assert!(without_organisation_code > 0);
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(crate::RecordType::HousingFundAccount);
}
