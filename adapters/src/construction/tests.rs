use serde_json::json;

use super::*;
use crate::catalog::RecordType;
use crate::fields::testing::{department_number, document, text, value};
use crate::model::{RawDocument, Relation};

fn permit() -> Value {
    json!({
        "sgxkzbh": "370687202408310101",
        "xmmc": "海阳滨海花园住宅小区项目",
        "xmdz": "海阳市凤城街道海滨路88号",
        "jsdw": {"mc": "海阳滨海置业有限公司", "tyshxydm": "91370687MA3C12345X"},
        "sgdw": {"mc": "烟台建工集团有限公司 ", "tyshxydm": " 913706001654321098"},
        "jldw": {"mc": "山东正信工程监理有限公司", "tyshxydm": ""},
        "xmjl": {
            "xm": "刘 军",
            "zjhm": "370687195807201010",
            "zczsh": "鲁237123456789",
            "lxdh": "+86 13905351234"
        },
        "htje": 20521.68,
        "jzmj": 86342.5,
        "fzrq": 1_725_033_600_000_i64,
        "jhkgrq": 1_726_761_600_000_i64,
        "jhjgrq": 1_779_033_600_000_i64
    })
}

fn usc(pointer: &str, number: &str) -> RawDocument {
    document(Some(DocumentFamily::UnifiedSocialCreditCode), "", pointer, number)
}

#[test]
fn a_permit_names_three_units_and_the_project_manager() {
    let facts = |role: &'static str| RawFactSet {
        topic: "construction_permit",
        fields: vec![
            ("permit", text("370687202408310101")),
            ("project", text("海阳滨海花园住宅小区项目")),
            ("project_address", text("海阳市凤城街道海滨路88号")),
            ("contract_value_wan_yuan", RawFact::Number(20521.68)),
            ("floor_area", RawFact::Number(86342.5)),
            // 2024-08-31, 2024-09-20 and 2026-05-18 at midnight in Beijing.
            ("issued", RawFact::Date(RawDate::BeijingMillis(1_725_033_600_000))),
            (
                "planned_start",
                RawFact::Date(RawDate::BeijingMillis(1_726_761_600_000)),
            ),
            (
                "planned_completion",
                RawFact::Date(RawDate::BeijingMillis(1_779_033_600_000)),
            ),
            ("role", RawFact::Code(role)),
        ],
    };
    let organisation = |role: Role| RawMention::new(Slot::new(role, 0), EntityKind::Organisation);
    let expected = Reading {
        mentions: vec![
            RawMention {
                documents: vec![usc("/jsdw/tyshxydm", "91370687MA3C12345X")],
                values: vec![value(Attribute::Name, "/jsdw/mc", "海阳滨海置业有限公司")],
                facts: vec![facts("developer")],
                ..organisation(Role::Developer)
            },
            RawMention {
                documents: vec![usc("/sgdw/tyshxydm", " 913706001654321098")],
                values: vec![value(Attribute::Name, "/sgdw/mc", "烟台建工集团有限公司 ")],
                facts: vec![facts("builder")],
                ..organisation(Role::Builder)
            },
            RawMention {
                values: vec![value(Attribute::Name, "/jldw/mc", "山东正信工程监理有限公司")],
                facts: vec![facts("supervisor")],
                ..organisation(Role::Supervisor)
            },
            RawMention {
                documents: vec![
                    document(
                        Some(DocumentFamily::ResidentIdentityCard),
                        "",
                        "/xmjl/zjhm",
                        "370687195807201010",
                    ),
                    department_number("construction.constructor_certificate", "/xmjl/zczsh", "鲁237123456789"),
                ],
                values: vec![
                    value(Attribute::Name, "/xmjl/xm", "刘 军"),
                    value(Attribute::Phone, "/xmjl/lxdh", "+86 13905351234"),
                ],
                facts: vec![facts("project_manager")],
                ..RawMention::new(Slot::new(Role::ProjectManager, 0), EntityKind::Person)
            },
        ],
        relations: vec![Relation {
            kind: RelationKind::ManagesProject,
            from: Slot::new(Role::ProjectManager, 0),
            to: Some(Slot::new(Role::Builder, 0)),
            detail: None,
        }],
    };
    assert_eq!(read(&permit()), Ok(expected));
}

#[test]
fn optional_fields_left_out_and_a_builder_left_empty() {
    let mut payload = permit();
    for field in ["xmdz", "jhkgrq", "jhjgrq"] {
        payload.as_object_mut().map(|p| p.remove(field));
    }
    payload["sgdw"] = json!({"mc": "\u{3000}", "tyshxydm": ""});
    payload["xmjl"] = json!({"xm": "刘军", "zjhm": " ", "zczsh": ""});
    let Ok(reading) = read(&payload) else {
        panic!("a permit with blanks is still read");
    };
    let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
    assert_eq!(
        slots,
        [
            Slot::new(Role::Developer, 0),
            Slot::new(Role::Supervisor, 0),
            Slot::new(Role::ProjectManager, 0)
        ]
    );
    let manager = &reading.mentions[2];
    assert!(manager.documents.is_empty());
    assert_eq!(manager.values, [value(Attribute::Name, "/xmjl/xm", "刘军")]);
    let fields: Vec<&str> = manager.facts[0].fields.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        fields,
        [
            "permit",
            "project",
            "contract_value_wan_yuan",
            "floor_area",
            "issued",
            "role"
        ]
    );
    assert!(reading.relations.is_empty(), "no builder to manage for");
}

#[test]
fn structural_violations_are_read_errors_with_their_pointer() {
    let pointer = |change: &dyn Fn(&mut Value)| {
        let mut payload = permit();
        change(&mut payload);
        read(&payload).err().map(|e| e.pointer)
    };
    assert_eq!(pointer(&|_| {}), None);
    assert_eq!(pointer(&|p| p["fzrq"] = json!("2025-07-28")), Some("/fzrq".to_owned()));
    assert_eq!(pointer(&|p| p["fzrq"] = json!(1.5e12 + 0.5)), Some("/fzrq".to_owned()));
    assert_eq!(pointer(&|p| p["htje"] = json!("20521.68")), Some("/htje".to_owned()));
    assert_eq!(pointer(&|p| p["jsdw"] = json!("海阳")), Some("/jsdw".to_owned()));
    assert_eq!(
        pointer(&|p| p["xmjl"]["zjhm"] = json!(null)),
        Some("/xmjl/zjhm".to_owned())
    );
    assert_eq!(
        pointer(&|p| {
            p.as_object_mut().map(|p| p.remove("sgdw"));
        }),
        Some("/sgdw".to_owned())
    );
    for odd in [json!(null), json!(3), json!([permit()])] {
        assert!(read(&odd).is_err(), "{odd}");
    }
}

#[test]
fn every_generated_permit_is_read() {
    let roles = [Role::Developer, Role::Builder, Role::Supervisor, Role::ProjectManager];
    let readings = fields::testing::read_generated(RecordType::ConstructionPermit, &roles);
    for (record, reading) in &readings {
        let id = &record.source_id;
        let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, roles.map(|role| Slot::new(role, 0)), "{id}");
        for mention in &reading.mentions {
            let expected_kind = if mention.slot == PROJECT_MANAGER {
                EntityKind::Person
            } else {
                EntityKind::Organisation
            };
            assert_eq!(mention.kind, expected_kind, "{id}");
            assert!(mention.flags.is_empty(), "{id}");
            assert!(
                !mention.documents.is_empty(),
                "{id}: every generated unit has a credit code"
            );
        }
        assert_eq!(reading.relations.len(), 1, "{id}");
    }
    assert!(readings.len() > 50, "{} permits", readings.len());
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(RecordType::ConstructionPermit);
}
