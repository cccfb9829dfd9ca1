use serde_json::json;

use super::*;
use crate::catalog::RecordType;
use crate::fields::testing::{date, document, text, unknown, value};
use crate::model::RawDocument;

fn person_card(pointer: &str, number: &str) -> RawDocument {
    document(Some(DocumentFamily::ResidentIdentityCard), "1", pointer, number)
}

fn holds_title(index: u32, share: Option<&str>) -> Relation {
    Relation {
        kind: RelationKind::HoldsTitle,
        from: Slot::new(Role::RightHolder, index),
        to: None,
        detail: share.map(str::to_owned),
    }
}

#[test]
fn a_home_held_in_shares_by_two_persons() {
    let payload = json!({
        "bdcqzh": "鲁(2023)海阳市不动产权第0012345号",
        "bdcdyh": "370687001002GB00123F00120034",
        "zl": "海阳市凤城街道海河路12号3单元401",
        "qllx": " 4",
        "yt": "住宅",
        "mj": 126.05,
        "gyfs": "按份共有",
        "djsj": "2023-05-12 10:21:33",
        "dyzt": "1",
        "cfzt": "０",
        "qlr": [
            {
                "qlrmc": "王 伟", "qlrlx": "1", "zjzl": "1", "zjh": "370687198503121234",
                "fe": "50%", "dh": "138 1234 5678", "dz": "海阳市凤城街道海河路12号"
            },
            {
                "qlrmc": "李娜", "qlrlx": "1", "zjzl": "1", "zjh": "37068719870623002x",
                "fe": "1/2", "dh": "", "dz": "\u{3000}"
            }
        ]
    });
    let title = |share: &str| RawFactSet {
        topic: "real_estate_title",
        fields: vec![
            ("title", text("鲁(2023)海阳市不动产权第0012345号")),
            ("unit_number", text("370687001002GB00123F00120034")),
            ("location", text("海阳市凤城街道海河路12号3单元401")),
            ("right_type", RawFact::Code("state_owned_construction_land_and_house")),
            ("use", RawFact::Code("residential")),
            ("co_ownership", RawFact::Code("in_shares")),
            ("area", RawFact::Number(126.05)),
            ("registered", date("2023-05-12 10:21:33")),
            ("mortgaged", RawFact::Bool(true)),
            ("seized", RawFact::Bool(false)),
            ("share", RawFact::Amount(share.to_owned())),
        ],
    };
    let expected = Reading {
        mentions: vec![
            RawMention {
                documents: vec![person_card("/qlr/0/zjh", "370687198503121234")],
                values: vec![
                    value(Attribute::Name, "/qlr/0/qlrmc", "王 伟"),
                    value(Attribute::Phone, "/qlr/0/dh", "138 1234 5678"),
                    value(Attribute::Address, "/qlr/0/dz", "海阳市凤城街道海河路12号"),
                ],
                facts: vec![title("50%")],
                ..RawMention::new(Slot::new(Role::RightHolder, 0), EntityKind::Person)
            },
            RawMention {
                documents: vec![person_card("/qlr/1/zjh", "37068719870623002x")],
                values: vec![value(Attribute::Name, "/qlr/1/qlrmc", "李娜")],
                facts: vec![title("1/2")],
                ..RawMention::new(Slot::new(Role::RightHolder, 1), EntityKind::Person)
            },
        ],
        relations: vec![holds_title(0, Some("50%")), holds_title(1, Some("1/2"))],
    };
    assert_eq!(read(&payload), Ok(expected));
}

#[test]
fn a_shop_held_by_an_enterprise_under_its_old_business_licence() {
    let payload = json!({
        "bdcqzh": "鲁（2012）海阳市不动产权第0000871号",
        "bdcdyh": "370687003001GB00077F00010002",
        "zl": "山东省烟台市海阳市方圆街道黄海路８号",
        "qllx": "4",
        "yt": "商业",
        "mj": 312.4,
        "gyfs": "单独所有",
        "djsj": "2012-11-02 09:05:00",
        "qlr": [{
            "qlrmc": "海阳市鑫源商贸有限公司 ",
            "qlrlx": "2",
            "zjzl": "7",
            "zjh": "370687228001234",
            "fe": "",
            "dh": "0535-3212345"
        }]
    });
    let expected = Reading {
        mentions: vec![RawMention {
            documents: vec![document(
                Some(DocumentFamily::BusinessLicence),
                "7",
                "/qlr/0/zjh",
                "370687228001234",
            )],
            values: vec![
                value(Attribute::Name, "/qlr/0/qlrmc", "海阳市鑫源商贸有限公司 "),
                value(Attribute::OrganisationType, "/qlr/0/qlrlx", "enterprise"),
                value(Attribute::Phone, "/qlr/0/dh", "0535-3212345"),
            ],
            facts: vec![RawFactSet {
                topic: "real_estate_title",
                fields: vec![
                    ("title", text("鲁（2012）海阳市不动产权第0000871号")),
                    ("unit_number", text("370687003001GB00077F00010002")),
                    ("location", text("山东省烟台市海阳市方圆街道黄海路８号")),
                    ("right_type", RawFact::Code("state_owned_construction_land_and_house")),
                    ("use", RawFact::Code("commercial")),
                    ("co_ownership", RawFact::Code("sole")),
                    ("area", RawFact::Number(312.4)),
                    ("registered", date("2012-11-02 09:05:00")),
                ],
            }],
            ..RawMention::new(Slot::new(Role::RightHolder, 0), EntityKind::Organisation)
        }],
        relations: vec![holds_title(0, None)],
    };
    assert_eq!(read(&payload), Ok(expected));
}

/// Unknown document and holder types: the number is kept without a family, the kind
/// comes from the document family where there is one, and a holder whose kind cannot
/// be told is left out with its flags on the first mention, beside the title's own.
#[test]
fn unknown_codes_are_flagged_and_never_guessed() {
    let payload = json!({
        "bdcqzh": "鲁(2020)海阳市不动产权第0004567号",
        "bdcdyh": "370687001002JC00456F00010001",
        "zl": "海阳市留格庄镇东村15号",
        "qllx": "9",
        "yt": "仓储",
        "mj": 88,
        "gyfs": "共同共有",
        "djsj": "2020-03-03 14:00:00",
        "dyzt": "2",
        "cfzt": "",
        "qlr": [
            {"qlrmc": "孙建国", "qlrlx": "1", "zjzl": "10", "zjh": "370629196204053013"},
            {"qlrmc": "海阳市留格庄镇东村村民委员会", "qlrlx": "5", "zjzl": "８", "zjh": "54370687MEA123456X"},
            {"qlrmc": "孙 某", "qlrlx": "0", "zjzl": "99", "zjh": "X1234567"},
            {"qlrmc": " ", "qlrlx": "1", "zjzl": "", "zjh": "\u{3000}"}
        ]
    });
    let Ok(reading) = read(&payload) else {
        panic!("a title with unknown codes is still read");
    };
    let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
    assert_eq!(
        slots,
        [Slot::new(Role::RightHolder, 0), Slot::new(Role::RightHolder, 1)]
    );
    let [person, village] = reading.mentions.as_slice() else {
        panic!("two mentions");
    };
    assert_eq!(person.kind, EntityKind::Person);
    assert_eq!(
        person.documents,
        [document(None, "10", "/qlr/0/zjh", "370629196204053013")]
    );
    assert_eq!(
        person.flags,
        [
            unknown("/qlr/0/zjzl", DOCUMENT_TYPES),
            unknown("/qllx", RIGHT_TYPES),
            unknown("/yt", USES),
            unknown("/dyzt", MORTGAGE_STATES),
            unknown("/qlr/2/qlrlx", HOLDER_TYPES),
        ]
    );
    let fields: Vec<&str> = person.facts[0].fields.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        fields,
        ["title", "unit_number", "location", "co_ownership", "area", "registered"]
    );

    assert_eq!(village.kind, EntityKind::Organisation);
    assert_eq!(
        village.documents[0].family,
        Some(DocumentFamily::UnifiedSocialCreditCode)
    );
    assert_eq!(village.documents[0].code, "８", "the code as sent");
    assert_eq!(village.flags, [unknown("/qlr/1/qlrlx", HOLDER_TYPES)]);
    assert!(
        !village
            .values
            .iter()
            .any(|v| v.attribute == Attribute::OrganisationType),
        "no organisation type is invented for an unknown holder type"
    );
    assert_eq!(reading.relations, [holds_title(0, None), holds_title(1, None)]);
    // Flags never carry the values they are about.
    for flag in &person.flags {
        assert!(
            !flag.message.contains('9') && !flag.message.contains("仓储"),
            "{flag:?}"
        );
    }
}

#[test]
fn structural_violations_are_read_errors_with_their_pointer() {
    let valid = json!({
        "bdcqzh": "鲁(2023)海阳市不动产权第0012345号", "bdcdyh": "370687001002GB00123F00120034",
        "zl": "海阳市凤城街道海河路12号", "qllx": "4", "yt": "住宅", "mj": 100.0, "gyfs": "单独所有",
        "djsj": "2023-05-12 10:21:33",
        "qlr": [{"qlrmc": "王伟", "qlrlx": "1", "zjzl": "1", "zjh": "370687198503121234"}]
    });
    assert!(read(&valid).is_ok());
    let pointer = |payload: Value| read(&payload).err().map(|e| e.pointer);
    let mut broken = valid.clone();
    broken["mj"] = json!("100.0");
    assert_eq!(pointer(broken), Some("/mj".to_owned()));
    let mut broken = valid.clone();
    broken["qlr"] = json!({"qlrmc": "王伟"});
    assert_eq!(pointer(broken), Some("/qlr".to_owned()));
    let mut broken = valid.clone();
    broken["qlr"][0]["zjh"] = json!(370687198503121234_u64);
    assert_eq!(pointer(broken), Some("/qlr/0/zjh".to_owned()));
    for odd in [json!(null), json!([]), json!("title"), json!({"qlr": [1, "a", null]})] {
        assert!(read(&odd).is_err(), "{odd}");
    }
    let mut broken = valid.clone();
    broken.as_object_mut().map(|p| p.remove("zl"));
    assert_eq!(pointer(broken), Some("/zl".to_owned()));
    let mut broken = valid.clone();
    broken["qlr"][0].as_object_mut().map(|h| h.remove("zjzl"));
    assert_eq!(pointer(broken), Some("/qlr/0/zjzl".to_owned()));
    let mut broken = valid.clone();
    broken["qlr"] = json!([valid["qlr"][0].clone(), "王伟"]);
    assert_eq!(pointer(broken), Some("/qlr/1".to_owned()));
}

#[test]
fn every_generated_title_is_read() {
    let readings = fields::testing::read_generated(RecordType::RealEstateTitle, &[Role::RightHolder]);
    let (mut organisations, mut shares, mut flags) = (0, 0, 0);
    for (record, reading) in &readings {
        let id = &record.source_id;
        // The generator leaves no holder empty and types no unknown holder type.
        let holders = record.payload["qlr"].as_array().map_or(0, Vec::len);
        let indexes: Vec<u32> = reading.mentions.iter().map(|m| m.slot.index).collect();
        assert_eq!(indexes, (0..holders as u32).collect::<Vec<_>>(), "{id}");
        for mention in &reading.mentions {
            assert_eq!(mention.facts.len(), 1, "{id}");
            organisations += usize::from(mention.kind == EntityKind::Organisation);
            flags += mention.flags.len();
        }
        assert_eq!(reading.relations.len(), reading.mentions.len(), "{id}");
        shares += reading.relations.iter().filter(|r| r.detail.is_some()).count();
    }
    assert!(readings.len() > 100, "{} titles", readings.len());
    assert!(
        organisations > 0 && shares > 0 && flags > 0,
        "{organisations} {shares} {flags}"
    );
}

#[test]
fn no_json_value_makes_it_panic() {
    fields::testing::survives_any_field_value(RecordType::RealEstateTitle);
}
