//! Tests of the pipeline stage: whole mentions, facts and lookups.

use serde_json::json;

use super::*;
use crate::fields::testing::{date_value, department_number, document, value};
use crate::model::{DocumentFamily, RawDocument, Role, Slot};

fn person(documents: Vec<RawDocument>, values: Vec<RawValue>) -> RawMention {
    let mut raw = RawMention::new(Slot::new(Role::Insured, 0), EntityKind::Person);
    raw.documents = documents;
    raw.values = values;
    raw
}

fn organisation(documents: Vec<RawDocument>, values: Vec<RawValue>) -> RawMention {
    let mut raw = RawMention::new(Slot::new(Role::Entity, 0), EntityKind::Organisation);
    raw.documents = documents;
    raw.values = values;
    raw
}

fn observed(mention: &Mention) -> Vec<(Attribute, &str, bool)> {
    mention
        .observations
        .iter()
        .map(|o| (o.attribute, o.value.as_str(), o.derived))
        .collect()
}

fn flags(mention: &Mention) -> Vec<(FlagCode, &str)> {
    mention.flags.iter().map(|f| (f.code, f.pointer.as_str())).collect()
}

fn key(scheme: IdScheme, value: &str) -> Identifier {
    Identifier {
        scheme,
        value: value.into(),
        key: true,
    }
}

/// A valid number: born 1949-12-31, sequence 002 (a woman), check X.
const ID: &str = "11010519491231002X";

#[test]
fn an_insured_person_as_hrss_types_it() {
    let raw = person(
        vec![
            document(
                Some(DocumentFamily::ResidentIdentityCard),
                "",
                "/sfzhm",
                " 110105 19491231002x\u{3000}",
            ),
            department_number("hrss.person", "/grbh", "3706000123"),
        ],
        vec![
            value(Attribute::Name, "/xm", "王 伟"),
            value(Attribute::Sex, "/xb", "female"),
            date_value(Attribute::BirthDate, "/csrq", "1949-12-31"),
            value(Attribute::Ethnicity, "/mz", " 01 "),
            value(Attribute::Phone, "/lxdh", "+86 138-1234-5678"),
            value(
                Attribute::HouseholdAddress,
                "/hjdz",
                "山东省烟台市海阳市凤城街道海河路12#",
            ),
            value(Attribute::Address, "/jzdz", ""),
        ],
    );
    let mention = mention(&raw);
    assert_eq!(mention.slot, raw.slot);
    assert_eq!(mention.kind, EntityKind::Person);
    assert_eq!(
        mention.identifiers,
        vec![
            key(IdScheme::ResidentId, ID),
            key(IdScheme::DepartmentNumber, "hrss.person:3706000123")
        ]
    );
    assert_eq!(
        observed(&mention),
        vec![
            (Attribute::Name, "王伟", false),
            (Attribute::Sex, "female", false),
            (Attribute::BirthDate, "1949-12-31", false),
            (Attribute::Ethnicity, "01", false),
            (Attribute::Phone, "13812345678", false),
            (Attribute::HouseholdAddress, "凤城街道海河路12号", false),
            (Attribute::BirthDate, "1949-12-31", true),
            (Attribute::Sex, "female", true),
        ]
    );
    assert_eq!(mention.match_name, "王伟");
    assert!(mention.flags.is_empty(), "{:?}", mention.flags);
    let typed_name = mention.observation(Attribute::Name).map(|o| o.typed.as_str());
    assert_eq!(typed_name, Some("王 伟"), "typed is the value as typed, trimmed");
    let typed_phone = mention.observation(Attribute::Phone).map(|o| o.typed.as_str());
    assert_eq!(typed_phone, Some("+86 138-1234-5678"));
}

#[test]
fn typed_birth_date_and_sex_that_disagree_with_the_number() {
    let raw = person(
        vec![document(Some(DocumentFamily::ResidentIdentityCard), "", "/sfzhm", ID)],
        vec![
            value(Attribute::Sex, "/xb", "male"),
            date_value(Attribute::BirthDate, "/csrq", "1949-12-13"),
        ],
    );
    let mention = mention(&raw);
    assert_eq!(
        flags(&mention),
        vec![(FlagCode::BirthDateDisagrees, "/csrq"), (FlagCode::SexDisagrees, "/xb")]
    );
    // Both kept: survivorship prefers the derived ones.
    assert!(observed(&mention).contains(&(Attribute::BirthDate, "1949-12-13", false)));
    assert!(observed(&mention).contains(&(Attribute::BirthDate, "1949-12-31", true)));
    assert!(observed(&mention).contains(&(Attribute::Sex, "female", true)));
    for flag in &mention.flags {
        assert!(
            !flag.message.contains("1949") && !flag.message.contains("male,"),
            "{}",
            flag.message
        );
    }
}

#[test]
fn year_month_birth_dates_compare_on_year_and_month() {
    let with = |csny: &str| {
        mention(&person(
            vec![document(Some(DocumentFamily::ResidentIdentityCard), "", "/zjhm", ID)],
            vec![RawValue::date(
                Attribute::BirthDate,
                "/csny",
                RawDate::Text(csny.into()),
            )],
        ))
    };
    let agrees = with("194912");
    assert!(agrees.flags.is_empty());
    assert!(observed(&agrees).contains(&(Attribute::BirthDate, "1949-12", false)));
    assert_eq!(flags(&with("194911")), vec![(FlagCode::BirthDateDisagrees, "/csny")]);
    // A sex the department does not state is no disagreement.
    let unknown = mention(&person(
        vec![document(Some(DocumentFamily::ResidentIdentityCard), "", "/zjhm", ID)],
        vec![value(Attribute::Sex, "/xb", "unknown")],
    ));
    assert!(unknown.flags.is_empty());
}

#[test]
fn legacy_numbers_are_keys_and_flagged() {
    let raw = person(
        vec![document(
            Some(DocumentFamily::ResidentIdentityCard),
            "",
            "/sfzhm",
            "370629650821042",
        )],
        vec![value(Attribute::Sex, "/xb", "female")],
    );
    let mention = mention(&raw);
    assert_eq!(flags(&mention), vec![(FlagCode::LegacyIdentityNumber, "/sfzhm")]);
    let upgraded = resident_id::upgrade("370629650821042").expect("15 digits");
    assert_eq!(mention.identifiers, vec![key(IdScheme::ResidentId, &upgraded)]);
    assert!(observed(&mention).contains(&(Attribute::BirthDate, "1965-08-21", true)));
}

#[test]
fn a_wrong_check_character_is_shown_but_no_key() {
    let raw = person(
        vec![document(
            Some(DocumentFamily::ResidentIdentityCard),
            "",
            "/nsrsbh",
            "110105194912310021",
        )],
        vec![value(Attribute::Name, "/nsrmc", "陳偉")],
    );
    let mention = mention(&raw);
    assert_eq!(flags(&mention), vec![(FlagCode::WrongCheckCharacter, "/nsrsbh")]);
    assert_eq!(mention.keys().count(), 0);
    assert_eq!(mention.identifiers.len(), 1);
    assert!(!mention.flags[0].message.contains("110105"));
    assert!(
        mention.observations.iter().all(|o| !o.derived),
        "nothing derived from an unreliable number"
    );
    assert_eq!(mention.match_name, "陈伟");
}

#[test]
fn adapter_flags_are_kept_and_unknown_families_give_nothing() {
    let mut raw = person(
        vec![
            document(None, "", "/zjhm", ID),
            document(Some(DocumentFamily::Other), "", "/zjhm", "X-1"),
        ],
        vec![value(Attribute::Name, "/xm", "Smith, John")],
    );
    raw.flags.push(QualityFlag::new(
        FlagCode::UnknownCode,
        "/zjlx",
        "document type code not in the table",
    ));
    let mention = mention(&raw);
    assert!(mention.identifiers.is_empty());
    assert_eq!(flags(&mention), vec![(FlagCode::UnknownCode, "/zjlx")]);
    assert_eq!(observed(&mention), vec![(Attribute::Name, "SMITH JOHN", false)]);
    assert_eq!(mention.match_name, "JOHN SMITH");
}

#[test]
fn latin_and_minority_names_match_across_departments() {
    let name_of = |typed: &str| mention(&person(vec![], vec![value(Attribute::Name, "/xm", typed)])).match_name;
    assert_eq!(name_of("KIM MIN JUN"), name_of("min jun kim"));
    assert_eq!(name_of("Kim, Min Jun"), name_of("MIN JUN KIM"));
    assert_eq!(name_of("买买提•吐尔逊"), "买买提吐尔逊");
    assert_eq!(name_of("买买提．吐尔逊"), name_of("买买提·吐尔逊"));
    assert_eq!(name_of(""), "", "no name, no match name");
}

#[test]
fn an_enterprise_with_every_form_of_its_code() {
    let registration = {
        let body = "37068760012345";
        format!(
            "{body}{}",
            org_code::registration_number_check_digit(body).expect("digits")
        )
    };
    let raw = organisation(
        vec![
            document(
                Some(DocumentFamily::UnifiedSocialCreditCode),
                "",
                "/tyshxydm",
                "91110000600037341l ",
            ),
            document(Some(DocumentFamily::BusinessLicence), "", "/zch", &registration),
            document(Some(DocumentFamily::OrganisationCode), "", "/qlr/0/zjh", "60003734-1"),
            document(
                Some(DocumentFamily::LegacyTaxId),
                "",
                "/nsrsbh",
                "１１００００６０００３７３４１",
            ),
        ],
        vec![
            value(Attribute::Name, "/ztmc", "海陽市某某(集團)有限公司 "),
            value(Attribute::Status, "/djzt", "active"),
            value(Attribute::OrganisationType, "/ztlx", "limited_company"),
            date_value(Attribute::Founded, "/clrq", "2015年3月5日"),
            value(Attribute::RegisteredCapital, "/zczb", "500万元人民币"),
            value(Attribute::Address, "/zs", "海阳市方圆街道海河路８#"),
            value(Attribute::Phone, "/lxdh", "4561234"),
        ],
    );
    let mention = mention(&raw);
    assert_eq!(
        mention.identifiers,
        vec![
            key(IdScheme::OrganisationCode, "600037341"),
            key(IdScheme::UnifiedSocialCreditCode, "91110000600037341L"),
            key(IdScheme::RegistrationNumber, &registration),
        ],
        "deduplicated"
    );
    assert_eq!(
        observed(&mention),
        vec![
            (Attribute::Name, "海阳市某某（集团）有限公司", false),
            (Attribute::Status, "active", false),
            (Attribute::OrganisationType, "limited_company", false),
            (Attribute::Founded, "2015-03-05", false),
            (Attribute::RegisteredCapital, "5000000 CNY", false),
            (Attribute::Address, "方圆街道海河路8号", false),
            (Attribute::Phone, "0535-4561234", false),
        ]
    );
    assert_eq!(mention.match_name, "海阳市某某（集团）有限公司");
    assert!(mention.flags.is_empty(), "{:?}", mention.flags);
}

#[test]
fn organisations_get_nothing_derived_from_a_resident_number() {
    // An individual business registered under its owner's number.
    let raw = organisation(
        vec![document(Some(DocumentFamily::ResidentIdentityCard), "", "/nsrsbh", ID)],
        vec![],
    );
    let mention = mention(&raw);
    assert_eq!(mention.identifiers, vec![key(IdScheme::ResidentId, ID)]);
    assert!(mention.observations.is_empty());
}

#[test]
fn unreadable_values_are_flagged_not_observed() {
    let raw = organisation(
        vec![document(
            Some(DocumentFamily::UnifiedSocialCreditCode),
            "",
            "/tyshxydm",
            "91110000600037341M",
        )],
        vec![
            value(Attribute::Phone, "/lxdh", "0535-4561234转801"),
            date_value(Attribute::Founded, "/clrq", "2015年2月30日"),
            RawValue::date(Attribute::Founded, "/fzrq", RawDate::BeijingMillis(i64::MAX)),
            value(Attribute::RegisteredCapital, "/zczb", "五百万元"),
            value(Attribute::RegisteredCapital, "/zczb2", ""),
            date_value(Attribute::Founded, "/empty", " "),
        ],
    );
    let mention = mention(&raw);
    assert_eq!(
        flags(&mention),
        vec![
            (FlagCode::WrongCheckCharacter, "/tyshxydm"),
            (FlagCode::UnreadablePhone, "/lxdh"),
            (FlagCode::UnreadableDate, "/clrq"),
            (FlagCode::UnreadableDate, "/fzrq"),
            (FlagCode::UnreadableAmount, "/zczb"),
        ]
    );
    assert!(mention.observations.is_empty());
    assert_eq!(mention.keys().count(), 0, "a USCC with a wrong check is no key at all");
    for flag in &mention.flags {
        for value in ["9111", "4561234", "2015", "五百万"] {
            assert!(!flag.message.contains(value), "{}", flag.message);
        }
    }
}

#[test]
fn dates_typed_without_a_raw_date_are_read_from_the_text() {
    let raw = person(vec![], vec![value(Attribute::BirthDate, "/csrq", "１９８５.０７.０１")]);
    assert_eq!(
        observed(&mention(&raw)),
        vec![(Attribute::BirthDate, "1985-07-01", false)]
    );
}

#[test]
fn facts_become_json_objects() {
    let mut raw = person(vec![], vec![]);
    raw.facts.push(RawFactSet {
        topic: "real_estate_title",
        fields: vec![
            ("ownership", RawFact::Code("joint")),
            ("use", RawFact::Text("\u{3000}住宅 ".into())),
            (
                "registered_on",
                RawFact::Date(RawDate::Text("2024-03-05 14:07:09".into())),
            ),
            ("issued_on", RawFact::Date(RawDate::BeijingMillis(1_709_568_000_000))),
            ("share", RawFact::Amount("1/2".into())),
            ("base", RawFact::Amount("5000.00".into())),
            ("capital", RawFact::Amount("50万美元".into())),
            ("no_share", RawFact::Amount(String::new())),
            ("area", RawFact::Number(89.5)),
            ("mortgaged", RawFact::Bool(false)),
            (
                "insurances",
                RawFact::List(vec![RawFact::Code("pension"), RawFact::Code("medical")]),
            ),
            ("no_date", RawFact::Date(RawDate::Text(String::new()))),
        ],
    });
    raw.facts.push(RawFactSet {
        topic: "subsistence_allowance",
        fields: vec![
            ("approved_on", RawFact::Date(RawDate::Text("2024.02.30".into()))),
            ("amount", RawFact::Amount("很多".into())),
            ("odd", RawFact::Number(f64::NAN)),
        ],
    });
    let mention = mention(&raw);
    assert_eq!(
        Value::Object(mention.facts[0].clone()),
        json!({
            "topic": "real_estate_title",
            "ownership": "joint",
            "use": "住宅",
            "registered_on": "2024-03-05",
            "issued_on": "2024-03-05",
            "share": "0.5",
            "base": "5000 CNY",
            "capital": "500000 USD",
            "no_share": null,
            "area": 89.5,
            "mortgaged": false,
            "insurances": ["pension", "medical"],
            "no_date": null,
        })
    );
    assert_eq!(
        Value::Object(mention.facts[1].clone()),
        json!({"topic": "subsistence_allowance", "approved_on": null, "amount": null, "odd": null})
    );
    assert_eq!(
        flags(&mention),
        vec![(FlagCode::UnreadableDate, ""), (FlagCode::UnreadableAmount, "")]
    );
    assert!(mention.flags[0].message.contains("subsistence_allowance.approved_on"));
    assert!(!mention.flags[1].message.contains("很多"));
}

#[test]
fn lookup_keys_of_every_form() {
    let upgraded = resident_id::upgrade("370629650821042").expect("15 digits");
    assert_eq!(
        lookup_keys("370629650821042"),
        vec![key(IdScheme::ResidentId, &upgraded)]
    );
    assert_eq!(lookup_keys(&upgraded), vec![key(IdScheme::ResidentId, &upgraded)]);
    assert_eq!(lookup_keys(" 11010519491231002x"), vec![key(IdScheme::ResidentId, ID)]);
    assert_eq!(
        lookup_keys("１１０１０５１９４９１２３１００２Ｘ"),
        vec![key(IdScheme::ResidentId, ID)]
    );

    let organisation_code = key(IdScheme::OrganisationCode, "600037341");
    let uscc = key(IdScheme::UnifiedSocialCreditCode, "91110000600037341L");
    assert_eq!(lookup_keys("91110000600037341L"), vec![organisation_code.clone(), uscc]);
    assert_eq!(lookup_keys("60003734-1"), vec![organisation_code.clone()]);
    assert_eq!(lookup_keys("600037341"), vec![organisation_code.clone()]);
    assert_eq!(lookup_keys("110000600037341"), vec![organisation_code.clone()]);

    let body = "37068760012345";
    let registration = format!(
        "{body}{}",
        org_code::registration_number_check_digit(body).expect("digits")
    );
    assert!(lookup_keys(&registration).contains(&key(IdScheme::RegistrationNumber, &registration)));

    let passport = lookup_keys(" e-1234567 ");
    assert_eq!(passport.len(), document::DOCUMENT_SCHEMES.len());
    assert!(passport.iter().all(|k| k.value == "E1234567" && k.key));
    assert!(passport.contains(&key(IdScheme::Passport, "E1234567")));
    assert!(passport.contains(&key(IdScheme::HkMacaoTaiwanPermit, "E1234567")));

    assert!(lookup_keys("").is_empty());
    assert!(lookup_keys("??").is_empty());
    assert!(lookup_keys("E1").is_empty());
}

#[test]
fn lookup_of_a_wrong_check_character_finds_no_key_of_its_family() {
    for wrong in ["110105194912310021", "91110000600037341M", "60003734-2"] {
        let keys = lookup_keys(wrong);
        assert!(
            keys.iter().all(|k| document::DOCUMENT_SCHEMES.contains(&k.scheme)),
            "{wrong}: only taken for a document number: {keys:?}"
        );
    }
}

/// The synthetic city's typing dirt (crate::synth::typing) read back: whatever the
/// generator does to a value, normalisation gives the clean value again.
#[test]
fn the_generators_dirt_reads_back_clean() {
    use crate::synth::typing;

    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let mobile = format!("1{}{:09}", rng.u8(3..=9), rng.u32(..1_000_000_000));
        let typed = typing::mobile(&mut rng, &mobile);
        assert_eq!(
            phone::parse(&typed).map(|p| p.to_string()),
            Ok(mobile.clone()),
            "{typed:?}"
        );

        let local = format!("{}{:06}", rng.u8(2..=9), rng.u32(..1_000_000));
        let typed = typing::landline(&mut rng, &local);
        assert_eq!(
            phone::parse(&typed).map(|p| p.to_string()),
            Ok(format!("0535-{local}")),
            "{typed:?}"
        );

        let place = crate::synth::Address {
            town: "凤城街道",
            place: "海河路".into(),
            number: rng.u32(1..300),
            flat: rng
                .bool()
                .then(|| format!("{}号楼{}单元{}室", rng.u8(1..20), rng.u8(1..5), rng.u16(101..1802))),
        };
        let typed = typing::address(&mut rng, &place);
        assert_eq!(address::normalise(&typed), place.canonical(), "{typed:?}");

        let typed = typing::code(&mut rng, "91110000600037341L");
        assert!(
            lookup_keys(&typed).contains(&key(IdScheme::OrganisationCode, "600037341")),
            "{typed:?}"
        );

        let typed = typing::date(&mut rng, "2024年3月5日".into());
        assert_eq!(
            date::parse_text(&typed).map(|d| d.to_string()),
            Ok("2024-03-05".into()),
            "{typed:?}"
        );

        let wrong = typing::with_wrong_check(&mut rng, ID);
        assert_eq!(
            resident_id::parse(&wrong),
            Err(resident_id::ResidentIdError::CheckCharacter),
            "{wrong}"
        );
        let typed = typing::pad(&mut rng, &typing::fullwidth(&ID.to_lowercase()), 0.5);
        assert_eq!(
            resident_id::parse(&typed).map(|id| id.number),
            Ok(ID.to_owned()),
            "{typed:?}"
        );
    }
}
