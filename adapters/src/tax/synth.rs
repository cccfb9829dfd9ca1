//! Writes `tax.taxpayer` records about a synthetic city.

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, mobile_number, now_and_then, optional, pick, serial, text_at, version_after, with, without, City,
    Date, DocKind, Org, OrgKind, OrgStatus, Person, SyntheticRecord, TrueEntity, TrueMention, TODAY,
};

/// 证件类型代码: the tax bureau's document type table.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "201",
        DocKind::Passport => "208",
        DocKind::HkMacaoPermit => "210",
        DocKind::TaiwanPermit => "213",
        DocKind::PermanentResidentCard => "233",
    }
}

/// 纳税人状态 (`nsrzt_dm`) of an organisation.
fn status_code(status: OrgStatus) -> &'static str {
    match status {
        OrgStatus::Active => "03",
        OrgStatus::Revoked => "05",
        OrgStatus::Deregistered | OrgStatus::MovedOut => "07",
    }
}

/// 主管税务机关: the Haiyang bureau and two of its branches.
const TAX_OFFICES: [&str; 3] = ["13706870000", "13706870100", "13706870200"];

/// Natural persons have registered since the individual income tax system of 2019.
const NATURAL_PERSONS_FROM: Date = Date::new(2019, 1, 1);

/// `YYYYMMDD`, the bureau's date format.
fn djrq(date: Date) -> String {
    format!("{:04}{:02}{:02}", date.year, date.month, date.day)
}

/// One registration per natural person (about 0.3 of the population) and one per
/// local organisation. A few natural persons were registered twice by mistake;
/// the duplicate was withdrawn (`deleted`).
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let mut records = Vec::new();
    let mut next_serial = 0;
    let mut djxh = |rng: &mut Rng| {
        next_serial += 1;
        format!("1013706870{:010}", serial(rng, next_serial, 997))
    };
    for (index, person) in city.persons.iter().enumerate() {
        if person.age_on(TODAY) < 18 || person.document.is_none() || !chance(rng, 0.33) {
            continue;
        }
        let registered = Date::between(rng, NATURAL_PERSONS_FROM.max(person.birth.plus_years(18)), TODAY);
        let taxpayer = TrueEntity::person(index);
        let id = djxh(rng);
        let payload = natural_person(rng, person, registered);
        records.push(record(rng, id, registered, payload, taxpayer, None));
        if chance(rng, 0.03) {
            let id = djxh(rng);
            let payload = natural_person(rng, person, registered);
            let mut duplicate = record(rng, id, registered, payload, taxpayer, None);
            duplicate.deleted = true;
            records.push(duplicate);
        }
    }
    for (index, org) in city.orgs.iter().enumerate().filter(|(_, o)| o.local) {
        let Some(representative) = city.person(org.legal_rep) else {
            continue;
        };
        let registered = org.founded.plus_days(between(rng, 0, 60)).min(TODAY);
        let payload = unit(rng, org, representative, registered);
        let id = djxh(rng);
        let taxpayer = TrueEntity::org(index);
        let representative = TrueEntity::person(org.legal_rep);
        records.push(record(rng, id, registered, payload, taxpayer, Some(representative)));
    }
    records
}

fn record(
    rng: &mut Rng,
    djxh: String,
    registered: Date,
    mut payload: Value,
    taxpayer: TrueEntity,
    representative: Option<TrueEntity>,
) -> SyntheticRecord {
    if let Some(map) = payload.as_object_mut() {
        map.insert("djxh".to_owned(), Value::from(djxh.as_str()));
    }
    let truth = [
        TrueMention::new(Role::Taxpayer, 0, taxpayer).if_written(&payload, &["/nsrmc", "/nsrsbh"]),
        representative.and_then(|rep| {
            TrueMention::new(Role::LegalRepresentative, 0, rep).if_written(&payload, &["/fddbrxm", "/fddbr_zjhm"])
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    SyntheticRecord::new(
        RecordType::TaxTaxpayer,
        djxh,
        version_after(rng, registered),
        payload,
        truth,
    )
}

fn natural_person(rng: &mut Rng, person: &Person, registered: Date) -> Value {
    let kind = person.document.as_ref().map_or(DocKind::ResidentCard, |d| d.kind);
    json!({
        // The number as typed at the counter, with every defect of README.md.
        "nsrsbh": typing::document_number(rng, person, IdTyping::new(0.06, 0.025)),
        "nsrmc": typing::person_name(rng, person, 0.05),
        "nsrlx": "3",
        "zjlx_dm": now_and_then(rng, 0.01, document_code(kind), "299"),
        "fddbrxm": "",
        "fddbr_zjlx_dm": "",
        "fddbr_zjhm": "",
        "zcdz": typing::address(rng, &person.address),
        "scjydz": "",
        "lxdh": optional(rng, 0.8, |rng| typing::mobile(rng, &person.mobile)),
        "hy_dm": "",
        "djrq": typing::date(rng, djrq(registered)),
        "nsrzt_dm": now_and_then(rng, 0.01, "03", "99"),
        "swjg_dm": pick(rng, &TAX_OFFICES, "13706870000"),
    })
}

fn unit(rng: &mut Rng, org: &Org, representative: &Person, registered: Date) -> Value {
    // Units registered before 2015 that never re-registered keep the 15-character ID.
    let nsrsbh = match &org.uscc {
        Some(uscc) if !org.founded_before_2015() || chance(rng, 0.7) => typing::code(rng, uscc),
        _ => typing::code(rng, &org.tax_id15()),
    };
    let nsrlx = if org.kind == OrgKind::IndividualBusiness {
        "2"
    } else {
        "1"
    };
    let rep_kind = representative.document.as_ref().map_or("", |d| document_code(d.kind));
    let legacy = if org.founded.year < 2005 { 0.2 } else { 0.02 };
    json!({
        "nsrsbh": nsrsbh,
        "nsrmc": typing::org_name(rng, &org.name, 0.3),
        "nsrlx": nsrlx,
        "zjlx_dm": "",
        "fddbrxm": typing::person_name(rng, representative, 0.05),
        "fddbr_zjlx_dm": rep_kind,
        "fddbr_zjhm": typing::document_number(rng, representative, IdTyping::new(legacy, 0.02)),
        "zcdz": typing::address(rng, &org.address),
        "scjydz": optional(rng, 0.4, |rng| typing::address(rng, &org.address)),
        "lxdh": optional(rng, 0.75, |rng| typing::landline(rng, &org.phone)),
        "hy_dm": optional(rng, 0.9, |_| org.industry_code.to_owned()),
        "djrq": typing::date(rng, djrq(registered)),
        "nsrzt_dm": now_and_then(rng, 0.01, status_code(org.status), "99"),
        "swjg_dm": pick(rng, &TAX_OFFICES, "13706870000"),
    })
}

/// The registration as it was before its last change: still in normal status, or
/// with the phone number it had then.
pub(crate) fn older(payload: &Value, rng: &mut Rng) -> Value {
    if text_at(payload, "/nsrzt_dm").trim() != "03" {
        with(payload, "/nsrzt_dm", json!("03"))
    } else {
        with(payload, "/lxdh", json!(mobile_number(rng)))
    }
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    vec![
        (without(payload, "/djxh"), ""),
        (with(payload, "/djrq", json!("2019-05-16")), "/djrq"),
        (with(payload, "/nsrlx", json!(3)), "/nsrlx"),
        (with(payload, "/nsrmc", json!(" \u{3000}")), "/nsrmc"),
        (with(payload, "/swjg_dm", json!("1370687")), "/swjg_dm"),
    ]
}
