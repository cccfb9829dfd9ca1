//! Writes `market.entity` records about a synthetic city.

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, now_and_then, optional, pick, text_at, version_after, with, without, Capital, City, Currency,
    Date, DocKind, Org, OrgKind, OrgStatus, Person, SyntheticRecord, Trade, TrueEntity, TrueMention,
};

/// 主体类型.
fn entity_type(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Company => "1100",
        OrgKind::JointStock => "1200",
        OrgKind::Cooperative => "4100",
        OrgKind::IndividualBusiness => "9100",
    }
}

/// The department's document type table.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "10",
        DocKind::Passport => "20",
        DocKind::HkMacaoPermit | DocKind::TaiwanPermit => "30",
        DocKind::PermanentResidentCard => "40",
    }
}

/// 登记状态: an active entity is written 存续 or 在业, depending on the clerk.
fn status_text(rng: &mut Rng, status: OrgStatus) -> &'static str {
    match status {
        OrgStatus::Active => pick(rng, &["存续", "存续", "在业"], "存续"),
        OrgStatus::Deregistered => "注销",
        OrgStatus::Revoked => "吊销",
        OrgStatus::MovedOut => "迁出",
    }
}

/// `YYYY年M月D日`, without zero padding.
fn chinese_date(date: Date) -> String {
    format!("{}年{}月{}日", date.year, date.month, date.day)
}

/// One record per entity registered in Haiyang. Some old individual businesses
/// were deregistered and registered again: the old record (no credit code,
/// status 注销) is exported beside the new one.
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let mut records = Vec::new();
    for (index, org) in city.orgs.iter().enumerate().filter(|(_, o)| o.local) {
        let Some(representative) = city.person(org.legal_rep) else {
            continue;
        };
        let who = (TrueEntity::org(index), TrueEntity::person(org.legal_rep));
        let payload = entity(rng, org, representative);
        records.push(record(rng, org.founded, payload, who));
        let reregistered = org.kind == OrgKind::IndividualBusiness && org.founded_before_2015() && org.uscc.is_some();
        if reregistered && chance(rng, 0.35) {
            // The same business under its first registration, by the same operator.
            let founded = org.founded.plus_years(-(between(rng, 2, 8) as i32));
            let payload = earlier_registration(rng, org, representative, founded);
            records.push(record(rng, founded, payload, who));
        }
    }
    records
}

fn record(
    rng: &mut Rng,
    founded: Date,
    mut payload: Value,
    (entity, representative): (TrueEntity, TrueEntity),
) -> SyntheticRecord {
    let ztid: String = (0..32).map(|_| rng.digit(16)).collect();
    if let Some(map) = payload.as_object_mut() {
        map.insert("ztid".to_owned(), Value::from(ztid.as_str()));
    }
    let truth = [
        TrueMention::new(Role::Entity, 0, entity).if_written(&payload, &["/ztmc", "/tyshxydm", "/zch"]),
        TrueMention::new(Role::LegalRepresentative, 0, representative).if_written(&payload, &["/fddbr", "/fddbr_zjhm"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    SyntheticRecord::new(
        RecordType::MarketEntity,
        ztid,
        version_after(rng, founded),
        payload,
        truth,
    )
}

fn entity(rng: &mut Rng, org: &Org, representative: &Person) -> Value {
    let rep_kind = representative.document.as_ref().map_or("", |d| document_code(d.kind));
    let legacy = if org.founded.year < 2005 { 0.3 } else { 0.02 };
    json!({
        "tyshxydm": org.uscc.as_deref().map_or_else(String::new, |c| typing::code(rng, c)),
        "zch": optional(rng, 0.8, |_| org.reg_no.clone().unwrap_or_default()),
        "ztmc": typing::org_name(rng, &org.name, 0.25),
        "ztlx": now_and_then(rng, 0.01, entity_type(org.kind), "2190"),
        "fddbr": typing::person_name(rng, representative, 0.06),
        "fddbr_zjlx": rep_kind,
        "fddbr_zjhm": typing::document_number(rng, representative, IdTyping::new(legacy, 0.02)),
        "zczb": org.capital.map_or_else(String::new, |c| capital_text(rng, c)),
        "clrq": typing::date(rng, chinese_date(org.founded)),
        "zs": typing::address(rng, &org.address),
        "jyfw": scope(org),
        "djzt": status_text(rng, org.status),
        "djjg": registry_office(org.founded),
        "lxdh": optional(rng, 0.7, |rng| typing::landline(rng, &org.phone)),
    })
}

/// The individual business's first registration, before it re-registered.
fn earlier_registration(rng: &mut Rng, org: &Org, representative: &Person, founded: Date) -> Value {
    let mut payload = entity(rng, org, representative);
    if let Some(map) = payload.as_object_mut() {
        map.insert("tyshxydm".to_owned(), json!(""));
        map.insert("zch".to_owned(), json!(org.reg_no.clone().unwrap_or_default()));
        map.insert("clrq".to_owned(), json!(chinese_date(founded)));
        map.insert("djzt".to_owned(), json!("注销"));
        map.insert("djjg".to_owned(), json!(registry_office(founded)));
    }
    payload
}

/// Registered capital in any of the ways clerks wrote it: 万元 or 元, with or
/// without the currency.
fn capital_text(rng: &mut Rng, capital: Capital) -> String {
    match capital.currency {
        Currency::Dollar => format!("{}万美元", capital.wan),
        Currency::Yuan => match rng.u8(..10) {
            0..=5 => format!("{}万元人民币", capital.wan),
            6..=8 => format!("{}万元", capital.wan),
            _ => format!("{}元", u64::from(capital.wan) * 10_000),
        },
    }
}

fn scope(org: &Org) -> String {
    match (org.kind, org.trade) {
        (OrgKind::IndividualBusiness, _) => "个体经营：日用百货、食品零售。".to_owned(),
        (_, Trade::Developer) => "许可项目：房地产开发经营。一般项目：物业管理。".to_owned(),
        (_, Trade::Builder) => "许可项目：建设工程施工。一般项目：建筑材料销售。".to_owned(),
        (_, Trade::Supervisor) => "许可项目：建设工程监理。一般项目：工程管理服务。".to_owned(),
        (OrgKind::Cooperative, _) => "组织收购、销售成员种植养殖的产品；提供技术服务。".to_owned(),
        _ => format!("一般项目：{}产品的生产、销售；货物进出口。", org.industry),
    }
}

/// The market office was the administration for industry and commerce until 2019.
fn registry_office(founded: Date) -> &'static str {
    if founded < Date::new(2019, 1, 1) {
        "海阳市工商行政管理局"
    } else {
        "海阳市市场监督管理局"
    }
}

/// The record before its last change: the entity still existing, or without a
/// phone number.
pub(crate) fn older(payload: &Value, _rng: &mut Rng) -> Value {
    match text_at(payload, "/djzt") {
        "注销" | "吊销" | "迁出" => with(payload, "/djzt", json!("存续")),
        _ => with(payload, "/lxdh", json!("")),
    }
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    vec![
        (without(payload, "/ztmc"), ""),
        (with(payload, "/clrq", json!("2004-01-18")), "/clrq"),
        (with(payload, "/ztlx", json!(1100)), "/ztlx"),
        (with(payload, "/fddbr", Value::Null), "/fddbr"),
        (with(payload, "/zczb", json!(500)), "/zczb"),
    ]
}
