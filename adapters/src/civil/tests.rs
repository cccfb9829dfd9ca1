use serde_json::json;

use super::*;
use crate::catalog::RecordType;
use crate::fields::testing::{date, date_value, document, text, unknown, value};

fn birth(pointer: &str, date: &str) -> RawValue {
    date_value(Attribute::BirthDate, pointer, date)
}

fn names(mention: &RawMention) -> Vec<&str> {
    mention
        .values
        .iter()
        .filter(|v| v.attribute == Attribute::Name)
        .map(|v| v.pointer.as_str())
        .collect()
}

// -- civil.marriage ---------------------------------------------------------

/// What a registration of `event` reads into: the two parties as given (party 0 the
/// man, party 1 the woman), each also stating the event as marital status from the
/// registration date and carrying the registration's `facts`, and the relation
/// between them.
fn registration(event: &'static str, facts: Vec<(&'static str, RawFact)>, parties: [RawMention; 2]) -> Reading {
    let registered = facts.iter().find_map(|(name, fact)| match (name, fact) {
        (&"registered", RawFact::Date(date)) => Some(date.clone()),
        _ => None,
    });
    let registration = RawFactSet {
        topic: "marriage_registration",
        fields: facts,
    };
    let mentions = parties
        .into_iter()
        .map(|mut party| {
            let mut status = value(Attribute::MaritalStatus, "/ywlx", event);
            status.as_of.clone_from(&registered);
            party.values.push(status);
            party.facts.push(registration.clone());
            party
        })
        .collect();
    Reading {
        mentions,
        relations: vec![Relation {
            kind: RelationKind::SpouseOf,
            from: Slot::new(Role::Party, 0),
            to: Some(Slot::new(Role::Party, 1)),
            detail: Some(event.to_owned()),
        }],
    }
}

fn party_mention(index: u32) -> RawMention {
    RawMention::new(Slot::new(Role::Party, index), EntityKind::Person)
}

#[test]
fn a_marriage_with_a_foreign_woman() {
    let payload = json!({
        "zsbh": "J370000-2019-000321",
        "ywlx": "结婚",
        "djrq": "2019.05.16",
        "djjg": "山东省民政厅婚姻登记处",
        "nan": {
            "xm": "陳 明", "zjlx": "1", "zjhm": "370687198805120018", "csrq": "1988.05.12",
            "gj": "中国", "hjdz": "海阳市凤城街道海河路12号"
        },
        "nv": {
            "xm": "KIM MINJI", "zjlx": "2", "zjhm": "m12345678 ", "csrq": "1990.11.03",
            "gj": "KOR", "hjdz": ""
        }
    });
    let expected = registration(
        "married",
        vec![
            ("certificate", text("J370000-2019-000321")),
            ("event", RawFact::Code("married")),
            ("registered", date("2019.05.16")),
            ("registry", text("山东省民政厅婚姻登记处")),
        ],
        [
            RawMention {
                documents: vec![document(
                    Some(DocumentFamily::ResidentIdentityCard),
                    "1",
                    "/nan/zjhm",
                    "370687198805120018",
                )],
                values: vec![
                    value(Attribute::Name, "/nan/xm", "陳 明"),
                    birth("/nan/csrq", "1988.05.12"),
                    value(Attribute::Nationality, "/nan/gj", "CHN"),
                    value(Attribute::HouseholdAddress, "/nan/hjdz", "海阳市凤城街道海河路12号"),
                ],
                ..party_mention(0)
            },
            RawMention {
                documents: vec![document(Some(DocumentFamily::Passport), "2", "/nv/zjhm", "m12345678 ")],
                values: vec![
                    value(Attribute::Name, "/nv/xm", "KIM MINJI"),
                    birth("/nv/csrq", "1990.11.03"),
                    value(Attribute::Nationality, "/nv/gj", "KOR"),
                ],
                ..party_mention(1)
            },
        ],
    );
    assert_eq!(read_marriage(&payload), Ok(expected));
}

#[test]
fn a_divorce_with_an_old_number_and_an_unknown_document_type() {
    let payload = json!({
        "zsbh": "L370687-2003-000045",
        "ywlx": " 离婚",
        "djrq": "\u{3000}2003.09.08",
        "djjg": "",
        "nan": {"xm": "孙建国", "zjlx": "1", "zjhm": "370629620405301", "csrq": "1962.04.05", "gj": "中国"},
        "nv": {"xm": "赵丽", "zjlx": "5", "zjhm": "370687196011082022", "csrq": "1960.11.08", "gj": "中国"}
    });
    let expected = registration(
        "divorced",
        vec![
            ("certificate", text("L370687-2003-000045")),
            ("event", RawFact::Code("divorced")),
            ("registered", date("\u{3000}2003.09.08")),
        ],
        [
            RawMention {
                documents: vec![document(
                    Some(DocumentFamily::ResidentIdentityCard),
                    "1",
                    "/nan/zjhm",
                    "370629620405301",
                )],
                values: vec![
                    value(Attribute::Name, "/nan/xm", "孙建国"),
                    birth("/nan/csrq", "1962.04.05"),
                    value(Attribute::Nationality, "/nan/gj", "CHN"),
                ],
                ..party_mention(0)
            },
            RawMention {
                documents: vec![document(None, "5", "/nv/zjhm", "370687196011082022")],
                values: vec![
                    value(Attribute::Name, "/nv/xm", "赵丽"),
                    birth("/nv/csrq", "1960.11.08"),
                    value(Attribute::Nationality, "/nv/gj", "CHN"),
                ],
                flags: vec![unknown("/nv/zjlx", DOCUMENT_TYPES)],
                ..party_mention(1)
            },
        ],
    );
    assert_eq!(read_marriage(&payload), Ok(expected));
}

#[test]
fn unknown_registration_type_and_nationality_are_flagged() {
    let payload = json!({
        "zsbh": "J370687-2024-001234",
        "ywlx": "复婚",
        "djrq": "2024.02.14",
        "nan": {"xm": "Tanaka Hiroshi", "zjlx": "２", "zjhm": "TZ1234567", "csrq": "1985.01.30", "gj": "日本"},
        "nv": {"xm": "李娜", "zjlx": "1", "zjhm": "370687198706230027", "csrq": "1987.06.23", "gj": "chn"}
    });
    let Ok(reading) = read_marriage(&payload) else {
        panic!("a registration with unknown codes is still read");
    };
    let [man, woman] = reading.mentions.as_slice() else {
        panic!("two parties");
    };
    assert_eq!(man.documents[0].family, Some(DocumentFamily::Passport));
    assert_eq!(
        man.flags,
        [unknown("/nan/gj", NATIONALITIES), unknown("/ywlx", REGISTRATION_TYPES)]
    );
    assert!(woman.flags.is_empty());
    assert!(woman.values.contains(&value(Attribute::Nationality, "/nv/gj", "CHN")));
    for party in [man, woman] {
        assert!(!party.values.iter().any(|v| v.attribute == Attribute::MaritalStatus));
        assert!(!party.facts[0].fields.iter().any(|(name, _)| *name == "event"));
    }
    // They were spouses at some time, whatever the registration did.
    assert_eq!(reading.relations.len(), 1);
    assert_eq!(reading.relations[0].detail, None);
}

#[test]
fn marriage_structure_violations_are_read_errors() {
    let pointer = |payload: Value| read_marriage(&payload).err().map(|e| e.pointer);
    assert_eq!(
        pointer(json!({"zsbh": "J1", "ywlx": "结婚", "djrq": "2024.01.01", "nan": [], "nv": {}})),
        Some("/nan".to_owned())
    );
    assert_eq!(
        pointer(json!({"zsbh": "J1", "ywlx": "结婚", "djrq": "2024.01.01", "nan": {"xm": 5}, "nv": {}})),
        Some("/nan/xm".to_owned())
    );
    assert_eq!(
        pointer(json!({"zsbh": "J1", "djrq": "2024.01.01"})),
        Some("/ywlx".to_owned())
    );
    assert_eq!(
        pointer(json!({"zsbh": "J1", "ywlx": "结婚", "djrq": "2024.01.01", "nan": {"xm": "王伟"}, "nv": {}})),
        Some("/nan/zjlx".to_owned())
    );
    for odd in [json!(null), json!("结婚"), json!([{}])] {
        assert!(read_marriage(&odd).is_err(), "{odd}");
    }
}

// -- civil.assistance -------------------------------------------------------

fn household() -> Value {
    json!({
        "jtbh": "3706870000001234",
        "hzxm": "张 伟",
        "hzsfzh": "370687900101123",
        "jtcy": [
            {"xm": "王芳", "sfzh": "370687199103150022", "xb": "女", "csrq": "1991.03.15", "yhzgx": "配偶"},
            {"xm": "张伟", "sfzh": "370687199001011232", "xb": "男", "csrq": "1990.01.01", "yhzgx": "本人"},
            {"xm": "张小宝", "sfzh": "", "xb": "男", "csrq": "2024.03.15", "yhzgx": "子女"},
            {"xm": "张大山", "sfzh": "370687195807201010", "xb": "男", "csrq": "1958.07.20", "yhzgx": "其它"}
        ],
        "bzlx": "城市低保",
        "bzje": 3480,
        "jzdz": "海阳市东村街道万米海滩小区3号楼2单元101",
        "lxdh": "13805351234",
        "zt": "在保",
        "sprq": "2024.06.01"
    })
}

#[test]
fn a_household_whose_head_appears_twice() {
    let allowance = |relation: Option<&'static str>| RawFactSet {
        topic: "subsistence_allowance",
        fields: [
            ("household", text("3706870000001234")),
            ("allowance_type", RawFact::Code("urban")),
            ("monthly_allowance", RawFact::Number(3480.0)),
            ("status", RawFact::Code("active")),
            ("approved", date("2024.06.01")),
        ]
        .into_iter()
        .chain(relation.map(|r| ("relation_to_head", RawFact::Code(r))))
        .collect(),
    };
    let card = |pointer: &str, number: &str| document(Some(DocumentFamily::ResidentIdentityCard), "", pointer, number);
    let address = value(Attribute::Address, "/jzdz", "海阳市东村街道万米海滩小区3号楼2单元101");
    let member = |index: u32| RawMention::new(Slot::new(Role::Member, index), EntityKind::Person);
    let expected = Reading {
        mentions: vec![
            RawMention {
                documents: vec![card("/jtcy/0/sfzh", "370687199103150022")],
                values: vec![
                    value(Attribute::Name, "/jtcy/0/xm", "王芳"),
                    value(Attribute::Sex, "/jtcy/0/xb", "female"),
                    birth("/jtcy/0/csrq", "1991.03.15"),
                    address.clone(),
                ],
                facts: vec![allowance(Some("spouse"))],
                ..member(0)
            },
            // The head: the member 本人, with hzsfzh and hzxm as a second document and name.
            RawMention {
                documents: vec![
                    card("/jtcy/1/sfzh", "370687199001011232"),
                    card("/hzsfzh", "370687900101123"),
                ],
                values: vec![
                    value(Attribute::Name, "/jtcy/1/xm", "张伟"),
                    value(Attribute::Name, "/hzxm", "张 伟"),
                    value(Attribute::Sex, "/jtcy/1/xb", "male"),
                    birth("/jtcy/1/csrq", "1990.01.01"),
                    address.clone(),
                    value(Attribute::Phone, "/lxdh", "13805351234"),
                ],
                facts: vec![allowance(Some("self"))],
                ..member(1)
            },
            // An infant not yet registered is still a person to keep.
            RawMention {
                values: vec![
                    value(Attribute::Name, "/jtcy/2/xm", "张小宝"),
                    value(Attribute::Sex, "/jtcy/2/xb", "male"),
                    birth("/jtcy/2/csrq", "2024.03.15"),
                    address.clone(),
                ],
                facts: vec![allowance(Some("child"))],
                ..member(2)
            },
            RawMention {
                documents: vec![card("/jtcy/3/sfzh", "370687195807201010")],
                values: vec![
                    value(Attribute::Name, "/jtcy/3/xm", "张大山"),
                    value(Attribute::Sex, "/jtcy/3/xb", "male"),
                    birth("/jtcy/3/csrq", "1958.07.20"),
                    address,
                ],
                facts: vec![allowance(None)],
                flags: vec![unknown("/jtcy/3/yhzgx", RELATIONS)],
                ..member(3)
            },
        ],
        relations: [(0, Some("spouse")), (2, Some("child")), (3, None)]
            .into_iter()
            .map(|(index, detail)| Relation {
                kind: RelationKind::MemberOfHousehold,
                from: Slot::new(Role::Member, index),
                to: Some(Slot::new(Role::Member, 1)),
                detail: detail.map(str::to_owned),
            })
            .collect(),
    };
    assert_eq!(read_assistance(&household()), Ok(expected));
}

/// Without a member 本人, the head is the member with an unknown relation whose
/// number is the head's (else whose name, if only one); otherwise nobody is.
#[test]
fn a_head_whose_relation_was_mistyped() {
    let mut payload = household();
    payload["jtcy"][1]["yhzgx"] = json!("户主");
    payload["jtcy"][1]["sfzh"] = json!("３７０６８７９００１０１１２３ ");
    let head_of = |payload: &Value| {
        let reading = read_assistance(payload).unwrap_or_default();
        let heads: Vec<u32> = reading
            .mentions
            .iter()
            .filter(|m| m.documents.iter().any(|d| d.pointer == "/hzsfzh"))
            .map(|m| m.slot.index)
            .collect();
        let targets: Vec<Option<Slot>> = reading.relations.iter().map(|r| r.to).collect();
        (heads, targets)
    };
    let to_head = Some(Slot::new(Role::Member, 1));
    // By number, ignoring white space and full-width digits.
    assert_eq!(head_of(&payload), (vec![1], vec![to_head; 3]));
    // By name when the numbers differ, ignoring white space.
    payload["jtcy"][1]["sfzh"] = json!("370687199001011232");
    assert_eq!(head_of(&payload), (vec![1], vec![to_head; 3]));
    // Two members of unknown relation with the head's name: nobody can tell.
    payload["jtcy"][3]["xm"] = json!("张伟");
    assert_eq!(head_of(&payload), (vec![], vec![]));
    // A member with a known relation is never taken for the head.
    payload["jtcy"][3]["yhzgx"] = json!("父母");
    payload["jtcy"][0]["sfzh"] = json!("370687900101123");
    payload["jtcy"][0]["xm"] = json!("张伟");
    assert_eq!(head_of(&payload), (vec![1], vec![to_head; 3]));
    payload["jtcy"][1]["xm"] = json!("张三");
    let Ok(headless) = read_assistance(&payload) else {
        panic!("a household without a recognisable head is still read");
    };
    assert_eq!(headless.mentions.len(), 4);
    assert!(headless.relations.is_empty());
    assert!(headless.mentions.iter().all(|m| names(m).len() == 1));
}

#[test]
fn a_second_self_and_unknown_household_codes() {
    let mut payload = household();
    payload["jtcy"][0]["yhzgx"] = json!("本人");
    payload["jtcy"][0]["xb"] = json!("未知");
    payload["bzlx"] = json!("临时救助");
    payload["zt"] = json!(" 停保 ");
    let Ok(reading) = read_assistance(&payload) else {
        panic!("unknown codes are still read");
    };
    // The first 本人 is the head.
    assert_eq!(names(&reading.mentions[0]), ["/jtcy/0/xm", "/hzxm"]);
    assert_eq!(names(&reading.mentions[1]), ["/jtcy/1/xm"]);
    assert_eq!(
        reading.mentions[0].flags,
        [unknown("/jtcy/0/xb", SEXES), unknown("/bzlx", ALLOWANCE_TYPES),]
    );
    assert!(!reading.mentions[0].values.iter().any(|v| v.attribute == Attribute::Sex));
    let fields: Vec<&str> = reading.mentions[1].facts[0].fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(fields, ["household", "monthly_allowance", "status", "approved"]);
    assert!(reading.mentions[1].facts[0]
        .fields
        .contains(&("status", RawFact::Code("stopped"))));
    let from_second_self: Vec<&Relation> = reading.relations.iter().filter(|r| r.from.index == 1).collect();
    assert_eq!(from_second_self.len(), 1);
    assert_eq!(from_second_self[0].detail, None);
    assert_eq!(from_second_self[0].to, Some(Slot::new(Role::Member, 0)));
}

#[test]
fn assistance_structure_violations_are_read_errors() {
    let pointer = |change: &dyn Fn(&mut Value)| {
        let mut payload = household();
        change(&mut payload);
        read_assistance(&payload).err().map(|e| e.pointer)
    };
    assert_eq!(pointer(&|_| {}), None);
    assert_eq!(pointer(&|p| p["bzje"] = json!("760")), Some("/bzje".to_owned()));
    assert_eq!(pointer(&|p| p["jtcy"][0] = json!("王芳")), Some("/jtcy/0".to_owned()));
    assert_eq!(
        pointer(&|p| p["jtcy"][2]["sfzh"] = json!(null)),
        Some("/jtcy/2/sfzh".to_owned())
    );
    assert_eq!(pointer(&|p| p["jtcy"] = json!({})), Some("/jtcy".to_owned()));
    // An infant's identity number may be empty, but the key is required.
    assert_eq!(
        pointer(&|p| {
            p["jtcy"][2].as_object_mut().map(|m| m.remove("sfzh"));
        }),
        Some("/jtcy/2/sfzh".to_owned())
    );
    assert_eq!(
        pointer(&|p| {
            p.as_object_mut().map(|h| h.remove("hzsfzh"));
        }),
        Some("/hzsfzh".to_owned())
    );
    for odd in [json!(null), json!(1), json!([household()])] {
        assert!(read_assistance(&odd).is_err(), "{odd}");
    }
}

// -- both, over the generator -----------------------------------------------

#[test]
fn every_generated_marriage_is_read() {
    let readings = fields::testing::read_generated(RecordType::CivilMarriage, &[Role::Party]);
    let mut unknown_documents = 0;
    for (record, reading) in &readings {
        let id = &record.source_id;
        let slots: Vec<Slot> = reading.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, [Slot::new(Role::Party, 0), Slot::new(Role::Party, 1)], "{id}");
        assert_eq!(reading.relations.len(), 1, "{id}");
        for party in &reading.mentions {
            assert!(
                party.values.iter().any(|v| v.attribute == Attribute::MaritalStatus),
                "{id}"
            );
            unknown_documents += party.documents.iter().filter(|d| d.family.is_none()).count();
        }
    }
    assert!(readings.len() > 100, "{} registrations", readings.len());
    assert!(
        unknown_documents > 0,
        "the generator types an unknown document type now and then"
    );
}

#[test]
fn every_generated_household_is_read_with_its_head_once() {
    let readings = fields::testing::read_generated(RecordType::CivilAssistance, &[Role::Member]);
    let mut infants = 0;
    for (record, reading) in &readings {
        let id = &record.source_id;
        let members = record.payload["jtcy"].as_array().map_or(0, Vec::len);
        assert_eq!(reading.mentions.len(), members, "{id}");
        // The head is one mention: hzxm and hzsfzh sit on one member, the first 本人.
        let carrying = |pointer: &str| -> Vec<u32> {
            let on = |m: &&RawMention| {
                m.documents.iter().any(|d| d.pointer == pointer) || m.values.iter().any(|v| v.pointer == pointer)
            };
            reading.mentions.iter().filter(on).map(|m| m.slot.index).collect()
        };
        let head = carrying("/hzsfzh");
        assert!(head.len() <= 1, "{id}");
        assert_eq!(carrying("/hzxm"), head, "{id}");
        let first_self = (0..members).find(|&i| record.payload["jtcy"][i]["yhzgx"] == "本人");
        if let Some(first_self) = first_self {
            assert_eq!(head, [first_self as u32], "{id}");
            assert_eq!(reading.relations.len(), members - 1, "{id}");
        }
        infants += reading.mentions.iter().filter(|m| m.documents.is_empty()).count();
    }
    assert!(readings.len() > 5, "{} households", readings.len());
    assert!(infants > 0, "the generator writes infants without an identity number");
}

#[test]
fn no_json_value_makes_either_reader_panic() {
    fields::testing::survives_any_field_value(RecordType::CivilMarriage);
    fields::testing::survives_any_field_value(RecordType::CivilAssistance);
}
