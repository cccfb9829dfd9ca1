//! Writes `housingfund.account` records about a synthetic city.

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, now_and_then, optional, pick, serial, text_at, version_after, with, without, City, Date, DocKind,
    Job, Org, Person, SyntheticRecord, TrueEntity, TrueMention, TODAY,
};

/// The fund's document type table. It has no code for the foreign permanent
/// resident card: clerks typed 99, a code missing from the table.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "01",
        DocKind::Passport => "03",
        DocKind::HkMacaoPermit => "04",
        DocKind::TaiwanPermit => "05",
        DocKind::PermanentResidentCard => "99",
    }
}

/// Contribution bases in yuan.
const BASES: [u32; 13] = [
    1900, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 6000, 8000, 10000, 12000, 15000,
];
const RATES: [&str; 8] = ["0.05", "0.06", "0.07", "0.08", "0.09", "0.10", "0.11", "0.12"];

/// `YYYY/M/D`, without zero padding.
fn slashed(date: Date) -> String {
    format!("{}/{}/{}", date.year, date.month, date.day)
}

/// About half of all jobs came with a provident fund account; accounts of past
/// jobs are sealed or closed, so a person who changed employer may have two.
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let dwzh: Vec<String> = (0..city.orgs.len())
        .map(|i| format!("{:010}", 1_000_000_000 + serial(rng, i, 10)))
        .collect();
    let mut records = Vec::new();
    for (index, job) in city.jobs.iter().enumerate() {
        if !chance(rng, 0.55) {
            continue;
        }
        let (Some(person), Some(org), Some(employer)) = (city.person(job.person), city.org(job.org), dwzh.get(job.org))
        else {
            continue;
        };
        let grzh = format!("{:012}", 300_000_000_000 + serial(rng, index, 1000));
        let opened = job.start.plus_days(between(rng, 0, 60)).min(TODAY);
        let payload = account(rng, person, org, job, &grzh, employer, opened);
        let truth = [
            TrueMention::new(Role::AccountHolder, 0, TrueEntity::person(job.person))
                .if_written(&payload, &["/xingming", "/zjhm"]),
            TrueMention::new(Role::Employer, 0, TrueEntity::org(job.org))
                .if_written(&payload, &["/dwmc", "/dwzzjgdm", "/dwzh"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        records.push(SyntheticRecord::new(
            RecordType::HousingFundAccount,
            grzh,
            version_after(rng, opened),
            payload,
            truth,
        ));
    }
    records
}

fn account(rng: &mut Rng, person: &Person, org: &Org, job: &Job, grzh: &str, dwzh: &str, opened: Date) -> Value {
    let kind = person.document.as_ref().map_or(DocKind::ResidentCard, |d| d.kind);
    let legacy = if opened.year < 2005 { 0.3 } else { 0.02 };
    let status = if job.current {
        "0"
    } else {
        pick(rng, &["1", "1", "2"], "1")
    };
    let base = pick(rng, &BASES, 3000);
    let cents = if chance(rng, 0.1) { 50 } else { 0 };
    let mut payload = json!({
        "grzh": grzh,
        "xingming": typing::person_name(rng, person, 0.08),
        "zjlx": now_and_then(rng, 0.005, document_code(kind), "06"),
        "zjhm": typing::document_number(rng, person, IdTyping::new(legacy, 0.02)),
        "csny": optional(rng, 0.75, |rng| {
            typing::date(rng, format!("{:04}{:02}", person.birth.year, person.birth.month))
        }),
        "sjhm": optional(rng, 0.8, |rng| typing::mobile(rng, &person.mobile)),
        "dwzh": dwzh,
        "dwmc": typing::org_name(rng, &org.name, 0.6),
        "dwzzjgdm": organisation_code(rng, org),
        "jcjs": format!("{base}.{cents:02}"),
        "grjcbl": pick(rng, &RATES, "0.12"),
        "zhzt": status,
        "khrq": typing::date(rng, slashed(opened)),
    });
    // An optional column the export sometimes leaves out altogether.
    if chance(rng, 0.05) {
        if let Some(map) = payload.as_object_mut() {
            map.remove("csny");
        }
    }
    payload
}

/// 组织机构代码 `XXXXXXXX-X`: now and then without the hyphen, sometimes missing.
fn organisation_code(rng: &mut Rng, org: &Org) -> String {
    match rng.u8(..100) {
        0..=7 => String::new(),
        8..=12 => typing::code(rng, &org.org_code),
        _ => typing::code(rng, &org.org_code_hyphenated()),
    }
}

/// The account before its last change: open, with a lower contribution base.
pub(crate) fn older(payload: &Value, _rng: &mut Rng) -> Value {
    let base: f64 = text_at(payload, "/jcjs").trim().parse().unwrap_or(3000.0);
    let lower = (base - 500.0).max(1500.0);
    with(
        &with(payload, "/jcjs", json!(format!("{lower:.2}"))),
        "/zhzt",
        json!("0"),
    )
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    vec![
        (with(payload, "/jcjs", json!(5000)), "/jcjs"),
        (with(payload, "/khrq", json!("2020-03-07")), "/khrq"),
        (without(payload, "/grzh"), ""),
        (with(payload, "/grjcbl", json!("12%")), "/grjcbl"),
        (with(payload, "/csny", json!("1986-04")), "/csny"),
    ]
}
