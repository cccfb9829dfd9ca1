//! Writes `realestate.title` records about a synthetic city.

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, digits, now_and_then, optional, pick, serial, text_at, two_decimals, version_after, with, without,
    City, Date, DocKind, Holding, Org, Party, Person, SyntheticRecord, TrueEntity, TrueMention,
};

/// The document type table of the national real estate registration database.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "1",
        DocKind::HkMacaoPermit | DocKind::TaiwanPermit => "2",
        DocKind::Passport => "3",
        DocKind::PermanentResidentCard => "99",
    }
}

/// What a title is used for, and its typical floor area in m².
#[derive(Clone, Copy)]
enum Use {
    Home,
    Shop,
    Factory,
    Office,
    Other,
}

impl Use {
    fn text(self) -> &'static str {
        match self {
            Use::Home => "住宅",
            Use::Shop => "商业",
            Use::Factory => "工业",
            Use::Office => "办公",
            Use::Other => "其他",
        }
    }

    fn area(self, rng: &mut Rng) -> f64 {
        let (lo, hi) = match self {
            Use::Home => (45.0, 180.0),
            Use::Shop => (25.0, 400.0),
            Use::Factory => (500.0, 8000.0),
            Use::Office => (80.0, 2000.0),
            Use::Other => (10.0, 60.0),
        };
        two_decimals(lo + rng.f64() * (hi - lo))
    }
}

/// One title per holding of the city.
pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let mut records = Vec::new();
    for (index, holding) in city.holdings.iter().enumerate() {
        let certificate = certificate_number(rng, index, holding.registered.year);
        let Some((holders, truth)) = holders(rng, city, holding) else {
            continue;
        };
        let payload = title(rng, city, holding, &certificate, holders);
        let version = version_after(rng, holding.registered);
        records.push(SyntheticRecord::new(
            RecordType::RealEstateTitle,
            certificate,
            version,
            payload,
            truth,
        ));
    }
    records
}

/// 鲁(2023)海阳市不动产权第0012345号, with ASCII or full-width parentheses
/// depending on which version of the registration software printed it.
fn certificate_number(rng: &mut Rng, index: usize, year: i32) -> String {
    let number = serial(rng, index, 40) + 1;
    if chance(rng, 0.25) {
        format!("鲁（{year}）海阳市不动产权第{number:07}号")
    } else {
        format!("鲁({year})海阳市不动产权第{number:07}号")
    }
}

/// 28 characters: region, cadastral district and sub-district, parcel (two letters
/// and five digits), F and the building and unit numbers.
fn unit_number(rng: &mut Rng, rural: bool) -> String {
    let parcel = if rural {
        pick(rng, &["JC", "JA"], "JC")
    } else {
        pick(rng, &["GB", "GA"], "GB")
    };
    format!(
        "370687{}{}{parcel}{}F{:04}{:04}",
        digits(rng, 3),
        digits(rng, 3),
        digits(rng, 5),
        rng.u16(1..=60),
        rng.u16(1..=300)
    )
}

fn title(rng: &mut Rng, city: &City, holding: &Holding, certificate: &str, holders: Vec<Value>) -> Value {
    let by_org = matches!(holding.holders.first(), Some(Party::Org(_)));
    let usage = if by_org {
        pick(rng, &[Use::Shop, Use::Factory, Use::Office], Use::Shop)
    } else if holding.holders.len() == 1 && !is_home(city, holding) {
        pick(rng, &[Use::Shop, Use::Home, Use::Other], Use::Shop)
    } else {
        Use::Home
    };
    let rural = holding.address.is_rural();
    let right = if rural && !by_org && chance(rng, 0.7) {
        "6"
    } else if chance(rng, 0.03) {
        "8"
    } else {
        "4"
    };
    let registered = timestamp(rng, holding.registered);
    json!({
        "bdcqzh": certificate,
        "bdcdyh": unit_number(rng, rural),
        "zl": typing::address(rng, &holding.address),
        "qllx": now_and_then(rng, 0.01, right, "9"),
        "yt": usage.text(),
        "mj": usage.area(rng),
        "gyfs": co_ownership(holding),
        "djsj": typing::date(rng, registered),
        "dyzt": if chance(rng, 0.35) { "1" } else { "0" },
        "cfzt": if chance(rng, 0.02) { "1" } else { "0" },
        "qlr": holders,
    })
}

/// The family home is at the address where the first holder lives.
fn is_home(city: &City, holding: &Holding) -> bool {
    match holding.holders.first() {
        Some(Party::Person(p)) => city.person(*p).is_some_and(|p| p.address == holding.address),
        _ => false,
    }
}

/// 共有方式: one holder owns alone; a married couple usually jointly; otherwise in shares.
fn co_ownership(holding: &Holding) -> &'static str {
    match holding.holders.len() {
        0 | 1 => "单独所有",
        _ if holding.marital => "共同共有",
        _ => "按份共有",
    }
}

/// `YYYY-MM-DD HH:MM:SS` during office hours.
fn timestamp(rng: &mut Rng, date: Date) -> String {
    let minute_of_day = between(rng, 8 * 60 + 30, 17 * 60 + 30);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.year,
        date.month,
        date.day,
        minute_of_day / 60,
        minute_of_day % 60,
        rng.u8(..60)
    )
}

/// The `qlr` entries, and who each of them is (the index is the position in `qlr`).
fn holders(rng: &mut Rng, city: &City, holding: &Holding) -> Option<(Vec<Value>, Vec<TrueMention>)> {
    let shares = shares(rng, holding);
    let mut out = Vec::new();
    let mut truth = Vec::new();
    for (party, share) in holding.holders.iter().zip(shares) {
        let (holder, entity) = match *party {
            Party::Person(p) => (person_holder(rng, city.person(p)?, share), TrueEntity::person(p)),
            Party::Org(o) => (org_holder(rng, city.org(o)?, share), TrueEntity::org(o)),
        };
        truth.extend(TrueMention::new(Role::RightHolder, out.len(), entity).if_written(&holder, &["/qlrmc", "/zjh"]));
        out.push(holder);
    }
    (!out.is_empty()).then_some((out, truth))
}

/// 份额 of each holder: empty for sole and joint ownership (now and then 100% for
/// a sole owner); percentages or fractions for ownership in shares. A married
/// couple owns in shares some of the time.
fn shares(rng: &mut Rng, holding: &Holding) -> Vec<String> {
    let n = holding.holders.len();
    if n <= 1 {
        return vec![if chance(rng, 0.2) {
            "100%".to_owned()
        } else {
            String::new()
        }];
    }
    if holding.marital && chance(rng, 0.7) {
        return vec![String::new(); n];
    }
    if rng.bool() {
        vec![format!("1/{n}"); n]
    } else {
        let each = 100 / n as u32;
        let first = 100 - each * (n as u32 - 1);
        std::iter::once(first)
            .chain(std::iter::repeat_n(each, n - 1))
            .map(|p| format!("{p}%"))
            .collect()
    }
}

fn person_holder(rng: &mut Rng, person: &Person, share: String) -> Value {
    let kind = person.document.as_ref().map_or("", |d| document_code(d.kind));
    json!({
        "qlrmc": typing::person_name(rng, person, 0.05),
        "qlrlx": "1",
        "zjzl": kind,
        "zjh": typing::document_number(rng, person, IdTyping::new(0.02, 0.02)),
        "fe": share,
        "dh": optional(rng, 0.6, |rng| typing::mobile(rng, &person.mobile)),
        "dz": optional(rng, 0.7, |rng| typing::address(rng, &person.address)),
    })
}

/// A unit holder appears under any of its codes: 8 credit code, 7 business
/// licence (registration number or credit code), 6 organisation code.
fn org_holder(rng: &mut Rng, org: &Org, share: String) -> Value {
    let (kind, number) = match (rng.u8(..20), &org.uscc, &org.reg_no) {
        (0..=10, Some(uscc), _) => ("8", uscc.clone()),
        (11..=14, _, Some(reg_no)) => ("7", reg_no.clone()),
        (11..=14, Some(uscc), None) => ("7", uscc.clone()),
        (15..=17, _, _) => ("6", org.org_code_hyphenated()),
        _ => ("6", org.org_code.clone()),
    };
    json!({
        "qlrmc": typing::org_name(rng, &org.name, 0.3),
        "qlrlx": "2",
        "zjzl": kind,
        "zjh": typing::code(rng, &number),
        "fe": share,
        "dh": optional(rng, 0.6, |rng| typing::landline(rng, &org.phone)),
        "dz": optional(rng, 0.7, |rng| typing::address(rng, &org.address)),
    })
}

/// The title before its last change: before the mortgage was registered or released.
pub(crate) fn older(payload: &Value, _rng: &mut Rng) -> Value {
    let flipped = if text_at(payload, "/dyzt").trim() == "1" {
        "0"
    } else {
        "1"
    };
    with(payload, "/dyzt", json!(flipped))
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn defects(payload: &Value) -> Vec<(Value, &'static str)> {
    let first_holder = payload.pointer("/qlr/0").cloned().unwrap_or_else(|| json!({}));
    vec![
        (with(payload, "/mj", json!("12.5")), "/mj"),
        (with(payload, "/qlr", first_holder), "/qlr"),
        (with(payload, "/qlr", json!([])), "/qlr"),
        (without(payload, "/qlr/0/qlrmc"), "/qlr/0"),
        (with(payload, "/djsj", json!("2024-10-15")), "/djsj"),
        (without(payload, "/bdcqzh"), ""),
    ]
}
