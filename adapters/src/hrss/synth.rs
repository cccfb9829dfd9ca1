//! Writes `hrss.insured_person` records about a synthetic city.

use std::collections::HashSet;

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, now_and_then, optional, serial, text_at, version_after, with, without, City, Date, DocKind, Job,
    Org, Person, Sex, SyntheticRecord, TrueEntity, TrueMention, TODAY,
};

/// 证件类型: the department's document type table.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "01",
        DocKind::Passport => "03",
        DocKind::HkMacaoPermit | DocKind::TaiwanPermit => "04",
        DocKind::PermanentResidentCard => "05",
    }
}

/// GB/T 2261.1 sex code.
fn sex_code(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "1",
        Sex::Female => "2",
    }
}

/// `YYYY-MM-DD`, the department's date format.
fn iso(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// This system's own numbers for the people and employers of the city.
struct Numbers {
    grbh: Vec<String>,
    sbkh: Vec<String>,
    dwbh: Vec<String>,
}

impl Numbers {
    fn new(city: &City, rng: &mut Rng) -> Numbers {
        let grbh = (0..city.persons.len())
            .map(|i| format!("{:010}", 3_700_000_000 + serial(rng, i, 1000)))
            .collect();
        // Card numbers are unique like every register's: a sequence with gaps.
        let sbkh = (0..city.persons.len())
            .map(|i| format!("A{:08}", serial(rng, i, 40) % 100_000_000))
            .collect();
        let dwbh = (0..city.orgs.len())
            .map(|i| format!("{:08}", 10_000_000 + serial(rng, i, 10)))
            .collect();
        Numbers { grbh, sbkh, dwbh }
    }
}

/// One record per job (a person who changed employer has one per employer). Now
/// and then a record was entered under a wrong employer and withdrawn (`deleted`).
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let numbers = Numbers::new(city, rng);
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    for job in &city.jobs {
        let (Some(person), Some(org)) = (city.person(job.person), city.org(job.org)) else {
            continue;
        };
        let (Some(grbh), Some(dwbh)) = (numbers.grbh.get(job.person), numbers.dwbh.get(job.org)) else {
            continue;
        };
        let sbkh = numbers.sbkh.get(job.person).map_or("", String::as_str);
        let payload = insured(rng, person, org, job, grbh, dwbh, sbkh);
        let truth: Vec<TrueMention> = [
            TrueMention::new(Role::Insured, 0, TrueEntity::person(job.person))
                .if_written(&payload, &["/xm", "/sfzhm", "/grbh"]),
            TrueMention::new(Role::Employer, 0, TrueEntity::org(job.org))
                .if_written(&payload, &["/dwmc", "/dwtyshxydm", "/dwbh"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        let Some(insured_person) = record(rng, &mut seen, job.start, payload, truth.clone()) else {
            continue;
        };
        records.push(insured_person);
        if chance(rng, 0.015) {
            // A typo in the employer number, noticed and withdrawn later: still the
            // same employer by name and code.
            let wrong = format!("{:08}", 90_000_000 + rng.u32(..9_999_999));
            let payload = with(
                &records.last().map_or(Value::Null, |r| r.payload.clone()),
                "/dwbh",
                json!(wrong),
            );
            if let Some(mut mistake) = record(rng, &mut seen, job.start, payload, truth) {
                mistake.deleted = true;
                records.push(mistake);
            }
        }
    }
    records
}

/// The envelope, unless its key `grbh-dwbh` was already used.
fn record(
    rng: &mut Rng,
    seen: &mut HashSet<String>,
    start: Date,
    payload: Value,
    truth: Vec<TrueMention>,
) -> Option<SyntheticRecord> {
    let source_id = format!("{}-{}", text_at(&payload, "/grbh"), text_at(&payload, "/dwbh"));
    if !seen.insert(source_id.clone()) {
        return None;
    }
    Some(SyntheticRecord::new(
        RecordType::HrssInsuredPerson,
        source_id,
        version_after(rng, start),
        payload,
        truth,
    ))
}

fn insured(rng: &mut Rng, person: &Person, org: &Org, job: &Job, grbh: &str, dwbh: &str, sbkh: &str) -> Value {
    let kind = person.document.as_ref().map_or(DocKind::ResidentCard, |d| d.kind);
    // The oldest records were keyed in with the 15-digit numbers of the time.
    let legacy = if job.start.year < 2005 { 0.5 } else { 0.03 };
    let enrolled = Date::new(job.start.year, job.start.month, 1);
    let birth = birth_as_typed(rng, person.birth);
    json!({
        "grbh": grbh,
        "zjlx": now_and_then(rng, 0.01, document_code(kind), "06"),
        "sfzhm": typing::document_number(rng, person, IdTyping::new(legacy, 0.02)),
        "xm": typing::person_name(rng, person, 0.2),
        "xb": now_and_then(rng, 0.01, sex_code(person.sex), "9"),
        "csrq": typing::date(rng, iso(birth)),
        "mz": optional(rng, 0.9, |_| person.ethnicity.to_owned()),
        "lxdh": optional(rng, 0.75, |rng| typing::mobile(rng, &person.mobile)),
        "hjdz": optional(rng, 0.8, |rng| typing::address(rng, &person.address)),
        "jzdz": optional(rng, 0.35, |rng| typing::address(rng, &person.address)),
        "dwbh": dwbh,
        "dwmc": typing::org_name(rng, &org.name, 0.4),
        "dwtyshxydm": employer_code(rng, org),
        "cbzt": contribution_status(rng, person, job),
        "xzlx": insurance_types(rng, person),
        "cbrq": typing::date(rng, iso(enrolled)),
        "sbkh": optional(rng, 0.8, |_| sbkh.to_owned()),
    })
}

/// The birth date, with a typo now and then: `csrq` sometimes disagrees with the
/// date inside the identity number.
fn birth_as_typed(rng: &mut Rng, birth: Date) -> Date {
    if !chance(rng, 0.04) {
        return birth;
    }
    match rng.u8(..3) {
        0 => birth.plus_days(between(rng, 1, 3)),
        1 => birth.plus_years(if rng.bool() { 1 } else { -1 }),
        // Day and month swapped, where that still makes a date.
        _ if birth.day <= 12 => Date::new(birth.year, birth.day, birth.month),
        _ => birth.plus_days(-between(rng, 1, 3)),
    }
}

/// The employer's credit code: often empty for employers registered before 2015.
fn employer_code(rng: &mut Rng, org: &Org) -> String {
    match &org.uscc {
        Some(uscc) if !org.founded_before_2015() || chance(rng, 0.4) => typing::code(rng, uscc),
        _ => String::new(),
    }
}

/// 参保状态: paying while employed, terminated for retirees, suspended or
/// terminated for a past job.
fn contribution_status(rng: &mut Rng, person: &Person, job: &Job) -> &'static str {
    let status = if job.current {
        "1"
    } else if person.age_on(TODAY) > 60 || rng.bool() {
        "3"
    } else {
        "2"
    };
    now_and_then(rng, 0.01, status, "4")
}

/// 险种类型: pension and medical always, the others by chance (maternity for women).
fn insurance_types(rng: &mut Rng, person: &Person) -> Value {
    let mut types = vec!["110", "310"];
    if chance(rng, 0.7) {
        types.push("210");
    }
    if chance(rng, 0.6) {
        types.push("410");
    }
    if person.sex == Sex::Female && chance(rng, 0.6) {
        types.push("510");
    }
    if chance(rng, 0.01) {
        types.push("999");
    }
    if chance(rng, 0.3) {
        rng.shuffle(&mut types);
    }
    json!(types)
}

/// The record before its last change: still paying, with fewer insurance types.
pub(crate) fn older(payload: &Value, _rng: &mut Rng) -> Value {
    let older = with(payload, "/cbzt", json!("1"));
    match payload.pointer("/xzlx").and_then(Value::as_array) {
        Some(types) if types.len() > 1 => {
            let fewer: Vec<Value> = types.iter().take(types.len() - 1).cloned().collect();
            with(&older, "/xzlx", Value::Array(fewer))
        }
        _ => older,
    }
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    vec![
        (without(payload, "/grbh"), ""),
        (with(payload, "/xzlx", json!("110,310")), "/xzlx"),
        (with(payload, "/xzlx/0", json!(110)), "/xzlx/0"),
        (with(payload, "/csrq", json!("19920129")), "/csrq"),
        (with(payload, "/cbzt", json!(1)), "/cbzt"),
    ]
}
