//! Writes `construction.permit` records about a synthetic city.

use std::collections::{HashMap, HashSet};

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, digits, optional, pick, random_address, two_decimals, version_after, with, without, City, Date, Org,
    Person, SyntheticRecord, Trade, TrueEntity, TrueMention, TODAY,
};

const PROJECT_KINDS: [&str; 6] = ["住宅小区", "综合楼", "商业广场", "标准厂房", "办公楼", "安置房"];

/// The system went online in 2016: no older permits are exported.
const FIRST_PERMIT: Date = Date::new(2016, 1, 1);

/// About one permit for every twenty inhabitants: a local developer, a builder
/// (from anywhere), a supervising engineer, and a project manager who works for
/// the builder when the city has one.
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let developers = by_trade(city, Trade::Developer, true);
    let builders = by_trade(city, Trade::Builder, false);
    let supervisors = by_trade(city, Trade::Supervisor, false);
    let managers: Vec<usize> = city
        .adult_residents()
        .into_iter()
        .filter(|&i| city.person(i).is_some_and(|p| (28..=60).contains(&p.age_on(TODAY))))
        .collect();
    let mut records = Vec::new();
    if developers.is_empty() || builders.is_empty() || supervisors.is_empty() || managers.is_empty() {
        return records;
    }
    let staff = staff_by_employer(city, &managers);
    let count = (city.persons.len() / 20).max(1);
    for index in 0..count {
        let builder_index = pick(rng, &builders, 0);
        let developer_index = pick(rng, &developers, 0);
        let supervisor_index = pick(rng, &supervisors, 0);
        let (Some(developer), Some(builder), Some(supervisor)) = (
            city.org(developer_index),
            city.org(builder_index),
            city.org(supervisor_index),
        ) else {
            continue;
        };
        let manager_index = project_manager(rng, &staff, builder_index, &managers);
        let Some(manager) = city.person(manager_index) else {
            continue;
        };
        let issued = Date::between(rng, FIRST_PERMIT.max(developer.founded), TODAY);
        let number = format!(
            "370687{:04}{:02}{:02}{:04}",
            issued.year,
            issued.month,
            issued.day,
            index + 1
        );
        let payload = permit(rng, &number, issued, [developer, builder, supervisor], manager);
        let truth = [
            TrueMention::new(Role::Developer, 0, TrueEntity::org(developer_index))
                .if_written(&payload, &["/jsdw/mc", "/jsdw/tyshxydm"]),
            TrueMention::new(Role::Builder, 0, TrueEntity::org(builder_index))
                .if_written(&payload, &["/sgdw/mc", "/sgdw/tyshxydm"]),
            TrueMention::new(Role::Supervisor, 0, TrueEntity::org(supervisor_index))
                .if_written(&payload, &["/jldw/mc", "/jldw/tyshxydm"]),
            TrueMention::new(Role::ProjectManager, 0, TrueEntity::person(manager_index))
                .if_written(&payload, &["/xmjl/xm", "/xmjl/zjhm", "/xmjl/zczsh"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        records.push(SyntheticRecord::new(
            RecordType::ConstructionPermit,
            number,
            version_after(rng, issued),
            payload,
            truth,
        ));
    }
    records
}

fn by_trade(city: &City, trade: Trade, local_only: bool) -> Vec<usize> {
    (0..city.orgs.len())
        .filter(|&i| {
            city.org(i)
                .is_some_and(|o| o.trade == trade && (o.local || !local_only))
        })
        .collect()
}

/// The people of `managers` currently working for each organisation, in the order of
/// the city's jobs; built once, not once per permit (a million people's city has
/// 50,000 permits and 600,000 jobs). Only organisations with such staff are keys, so
/// every vector holds someone.
fn staff_by_employer(city: &City, managers: &[usize]) -> HashMap<usize, Vec<usize>> {
    let managers: HashSet<usize> = managers.iter().copied().collect();
    let mut staff: HashMap<usize, Vec<usize>> = HashMap::new();
    for job in city.jobs.iter().filter(|j| j.current && managers.contains(&j.person)) {
        staff.entry(job.org).or_default().push(job.person);
    }
    staff
}

/// Someone employed by the builder, or any adult of working age.
fn project_manager(rng: &mut Rng, staff: &HashMap<usize, Vec<usize>>, builder: usize, managers: &[usize]) -> usize {
    match staff.get(&builder) {
        Some(employees) => pick(rng, employees, 0),
        None => pick(rng, managers, 0),
    }
}

fn permit(
    rng: &mut Rng,
    number: &str,
    issued: Date,
    [developer, builder, supervisor]: [&Org; 3],
    manager: &Person,
) -> Value {
    let site = random_address(rng);
    let start = issued.plus_days(between(rng, 7, 60));
    let completion = start.plus_days(between(rng, 300, 900));
    let floor_area = two_decimals(2_000.0 + rng.f64() * 98_000.0);
    // Contract value in units of 10,000 yuan: 1,500 to 3,500 yuan per m².
    let contract = two_decimals(floor_area * (0.15 + rng.f64() * 0.2));
    json!({
        "sgxkzbh": number,
        "xmmc": format!("{}{}项目", developer.brand, pick(rng, &PROJECT_KINDS, "住宅小区")),
        "xmdz": typing::address(rng, &site),
        "jsdw": unit(rng, developer),
        "sgdw": unit(rng, builder),
        "jldw": unit(rng, supervisor),
        "xmjl": {
            "xm": typing::person_name(rng, manager, 0.05),
            // Always a resident identity number, typed as anywhere else.
            "zjhm": typing::document_number(rng, manager, IdTyping::new(0.03, 0.02)),
            "zczsh": format!("鲁237{}", digits(rng, 9)),
            "lxdh": optional(rng, 0.7, |rng| typing::mobile(rng, &manager.mobile)),
        },
        "htje": contract,
        "jzmj": floor_area,
        "fzrq": issued.beijing_midnight_ms(),
        "jhkgrq": start.beijing_midnight_ms(),
        "jhjgrq": completion.beijing_midnight_ms(),
    })
}

/// `{mc, tyshxydm}`; a unit without a credit code gets an empty one.
fn unit(rng: &mut Rng, org: &Org) -> Value {
    json!({
        "mc": typing::org_name(rng, &org.name, 0.2),
        "tyshxydm": org.uscc.as_deref().map_or_else(String::new, |c| typing::code(rng, c)),
    })
}

/// The permit before its last change: the contract value first registered.
pub(crate) fn older(payload: &Value, rng: &mut Rng) -> Value {
    let value = payload.pointer("/htje").and_then(Value::as_f64).unwrap_or(1000.0);
    with(payload, "/htje", json!(two_decimals(value * (0.85 + rng.f64() * 0.1))))
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    let developer_name = payload.pointer("/jsdw/mc").cloned().unwrap_or_else(|| json!("海阳"));
    vec![
        (with(payload, "/fzrq", json!("2025-07-28")), "/fzrq"),
        (with(payload, "/fzrq", json!(1_753_632_000)), "/fzrq"),
        (with(payload, "/jsdw", developer_name), "/jsdw"),
        (without(payload, "/xmjl/xm"), "/xmjl"),
        (with(payload, "/htje", json!("20521.68")), "/htje"),
        (without(payload, "/sgdw"), ""),
    ]
}
