//! Writes `civil.marriage` and `civil.assistance` records about a synthetic city.

use std::collections::HashMap;

use fastrand::Rng;
use serde_json::{json, Value};

use crate::catalog::RecordType;
use crate::model::Role;
use crate::synth::typing::{self, IdTyping};
use crate::synth::{
    between, chance, now_and_then, optional, serial, text_at, version_after, with, without, City, Couple, Date,
    DocKind, Family, Person, Sex, SyntheticRecord, TrueEntity, TrueMention, TODAY,
};

/// The civil affairs document type table.
fn document_code(kind: DocKind) -> &'static str {
    match kind {
        DocKind::ResidentCard => "1",
        DocKind::Passport => "2",
        DocKind::HkMacaoPermit => "3",
        DocKind::TaiwanPermit => "4",
        DocKind::PermanentResidentCard => "9",
    }
}

/// `YYYY.MM.DD`, the bureau's date format.
fn dotted(date: Date) -> String {
    format!("{:04}.{:02}.{:02}", date.year, date.month, date.day)
}

/// Haiyang became a city in 1996; before that the county registered marriages.
const CITY_SINCE: Date = Date::new(1996, 1, 1);

pub(crate) fn write(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let mut records = marriages(city, rng);
    records.extend(assistance(city, rng));
    records
}

// -- civil.marriage ---------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Business {
    Marriage,
    Divorce,
}

/// Certificate numbers: J (marriage) or L (divorce), registry region, year, a
/// sequence within the year.
#[derive(Default)]
struct CertificateNumbers {
    last: HashMap<(Business, String, i32), u64>,
}

impl CertificateNumbers {
    fn next(&mut self, rng: &mut Rng, business: Business, region: &str, year: i32) -> String {
        let last = self.last.entry((business, region.to_owned(), year)).or_insert(0);
        *last += 1 + rng.u64(..5);
        let letter = if business == Business::Marriage { 'J' } else { 'L' };
        format!("{letter}{region}-{year}-{:06}", *last)
    }
}

/// A marriage registration per couple, and a divorce registration for those who divorced.
fn marriages(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let mut numbers = CertificateNumbers::default();
    let mut records = Vec::new();
    for couple in &city.couples {
        let (Some(man), Some(woman)) = (city.person(couple.husband), city.person(couple.wife)) else {
            continue;
        };
        let parties = [(couple.husband, man), (couple.wife, woman)];
        records.push(registration(
            rng,
            &mut numbers,
            Business::Marriage,
            couple.married,
            parties,
        ));
        if let Some(divorced) = couple.divorced {
            records.push(registration(rng, &mut numbers, Business::Divorce, divorced, parties));
        }
    }
    records
}

fn registration(
    rng: &mut Rng,
    numbers: &mut CertificateNumbers,
    business: Business,
    date: Date,
    [(man_index, man), (woman_index, woman)]: [(usize, &Person); 2],
) -> SyntheticRecord {
    // Marriages with foreigners and residents of Hong Kong, Macao and Taiwan are
    // registered by the province.
    let foreign = man.document.as_ref().is_some_and(|d| d.kind != DocKind::ResidentCard)
        || woman.document.as_ref().is_some_and(|d| d.kind != DocKind::ResidentCard);
    let (region, office) = if foreign {
        ("370000", "山东省民政厅婚姻登记处")
    } else if date < CITY_SINCE {
        ("370629", "海阳县民政局婚姻登记处")
    } else {
        ("370687", "海阳市民政局婚姻登记处")
    };
    let zsbh = numbers.next(rng, business, region, date.year);
    let payload = json!({
        "zsbh": zsbh,
        "ywlx": if business == Business::Marriage { "结婚" } else { "离婚" },
        "djrq": typing::date(rng, dotted(date)),
        "djjg": office,
        "nan": party(rng, man, date),
        "nv": party(rng, woman, date),
    });
    // Party 0 is the man (nan), party 1 the woman (nv).
    let truth = [(man_index, "/nan"), (woman_index, "/nv")]
        .into_iter()
        .enumerate()
        .filter_map(|(position, (person, side))| {
            TrueMention::new(Role::Party, position, TrueEntity::person(person))
                .if_written(&payload, &[&format!("{side}/xm"), &format!("{side}/zjhm")])
        })
        .collect();
    SyntheticRecord::new(
        RecordType::CivilMarriage,
        zsbh,
        version_after(rng, date),
        payload,
        truth,
    )
}

fn party(rng: &mut Rng, person: &Person, on: Date) -> Value {
    let kind = person.document.as_ref().map_or(DocKind::ResidentCard, |d| d.kind);
    // Before 1999 the 15-digit numbers were all there was.
    let legacy = match on.year {
        ..=1998 => 0.8,
        1999..=2004 => 0.2,
        _ => 0.02,
    };
    json!({
        "xm": typing::person_name(rng, person, 0.06),
        "zjlx": now_and_then(rng, 0.005, document_code(kind), "5"),
        "zjhm": typing::document_number(rng, person, IdTyping::new(legacy, 0.02)),
        "csrq": typing::date(rng, dotted(person.birth)),
        "gj": if person.is_foreign() { person.nationality } else { "中国" },
        "hjdz": optional(rng, 0.5, |rng| typing::address(rng, &person.address)),
    })
}

/// The registration before its last correction: the man's household address not
/// yet recorded, or the registry office written short.
pub(crate) fn older_marriage(payload: &Value, _rng: &mut Rng) -> Value {
    if text_at(payload, "/nan/hjdz").is_empty() {
        with(payload, "/djjg", json!("海阳市民政局"))
    } else {
        with(payload, "/nan/hjdz", json!(""))
    }
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn marriage_defects(payload: &Value) -> Vec<(Value, &'static str)> {
    let man = payload.pointer("/nv").cloned().unwrap_or_else(|| json!({}));
    vec![
        (without(payload, "/nan/xm"), "/nan"),
        (with(payload, "/djrq", json!("2013-11-28")), "/djrq"),
        (with(payload, "/nv", json!([man])), "/nv"),
        (without(payload, "/zsbh"), ""),
        (with(payload, "/nan/csrq", json!("19510505")), "/nan/csrq"),
    ]
}

// -- civil.assistance -------------------------------------------------------

/// Monthly allowance per person in yuan, by type.
fn allowance(kind: &str) -> i64 {
    match kind {
        "城市低保" => 870,
        "农村低保" => 690,
        _ => 1150,
    }
}

/// A few households (about one in fifteen whose head holds a resident card)
/// receive the subsistence allowance; every city has at least one.
fn assistance(city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    let eligible: Vec<&Family> = city
        .families
        .iter()
        .filter(|f| {
            city.person(f.head)
                .is_some_and(|p| p.resident_id().is_some() && p.age_on(TODAY) >= 18)
        })
        .collect();
    // A newborn not yet registered often comes with a household in need.
    let unregistered_child = |f: &Family| {
        f.children
            .iter()
            .any(|&c| city.person(c).is_some_and(|p| p.document.is_none()))
    };
    let mut chosen: Vec<&Family> = eligible
        .iter()
        .copied()
        .filter(|f| chance(rng, if unregistered_child(f) { 0.5 } else { 0.07 }))
        .collect();
    if chosen.is_empty() {
        chosen.extend(eligible.first().copied());
    }
    let mut records = Vec::new();
    for (index, family) in chosen.into_iter().enumerate() {
        let jtbh = format!("370687{:010}", serial(rng, index + 1, 50));
        let approved = Date::between(rng, Date::new(2016, 1, 1), TODAY);
        let Some((payload, truth)) = household(rng, city, family, &jtbh, approved) else {
            continue;
        };
        records.push(SyntheticRecord::new(
            RecordType::CivilAssistance,
            jtbh,
            version_after(rng, approved),
            payload,
            truth,
        ));
    }
    records
}

/// The household's payload, and who each member of `jtcy` is (by position). The
/// head's own fields (`hzxm`, `hzsfzh`) repeat the member 本人 and are no mention of
/// their own.
fn household(
    rng: &mut Rng,
    city: &City,
    family: &Family,
    jtbh: &str,
    approved: Date,
) -> Option<(Value, Vec<TrueMention>)> {
    let head = city.person(family.head)?;
    let divorced = |c: &Couple| c.divorced.is_some() && (c.husband == family.head || c.wife == family.head);
    let spouse = family.spouse.filter(|_| !city.couples.iter().any(divorced));
    let mut members = vec![member(rng, head, "本人")];
    let mut who = vec![family.head];
    for (relation, people) in [
        ("配偶", spouse.into_iter().collect::<Vec<_>>()),
        ("子女", family.children.clone()),
        ("父母", family.parents.clone()),
    ] {
        for (index, person) in people
            .into_iter()
            .filter_map(|p| city.person(p).map(|person| (p, person)))
        {
            members.push(member(rng, person, relation));
            who.push(index);
        }
    }
    let truth = members
        .iter()
        .zip(&who)
        .enumerate()
        .filter_map(|(position, (member, &person))| {
            TrueMention::new(Role::Member, position, TrueEntity::person(person)).if_written(member, &["/xm", "/sfzh"])
        })
        .collect();
    let kind = if members.len() == 1 && head.age_on(TODAY) >= 60 {
        "特困供养"
    } else if head.address.is_rural() {
        "农村低保"
    } else {
        "城市低保"
    };
    let monthly = if kind == "特困供养" {
        allowance(kind)
    } else {
        allowance(kind) * members.len() as i64
    };
    let payload = json!({
        "jtbh": jtbh,
        // The head appears twice: here and as the member 本人, typed separately.
        "hzxm": typing::person_name(rng, head, 0.05),
        "hzsfzh": typing::document_number(rng, head, IdTyping::new(0.08, 0.02)),
        "jtcy": members,
        "bzlx": kind,
        "bzje": monthly,
        "jzdz": typing::address(rng, &head.address),
        "lxdh": optional(rng, 0.7, |rng| typing::mobile(rng, &head.mobile)),
        "zt": if chance(rng, 0.8) { "在保" } else { "停保" },
        "sprq": typing::date(rng, dotted(approved)),
    });
    Some((payload, truth))
}

/// A household member; the identity number is empty for an infant not yet registered.
fn member(rng: &mut Rng, person: &Person, relation: &str) -> Value {
    json!({
        "xm": typing::person_name(rng, person, 0.05),
        "sfzh": typing::document_number(rng, person, IdTyping::new(0.05, 0.02)),
        "xb": if person.sex == Sex::Male { "男" } else { "女" },
        "csrq": typing::date(rng, dotted(person.birth)),
        "yhzgx": now_and_then(rng, 0.01, relation, "其它"),
    })
}

/// The household before its last review: active, with last year's allowance.
pub(crate) fn older_assistance(payload: &Value, rng: &mut Rng) -> Value {
    let amount = payload.pointer("/bzje").and_then(Value::as_i64).unwrap_or(700);
    let earlier = (amount - between(rng, 20, 60)).max(0);
    with(&with(payload, "/bzje", json!(earlier)), "/zt", json!("在保"))
}

/// One schema violation each, with the pointer where it is reported.
pub(crate) fn assistance_defects(payload: &Value) -> Vec<(Value, &'static str)> {
    let head_name = payload.pointer("/hzxm").cloned().unwrap_or_else(|| json!("户主"));
    vec![
        (with(payload, "/jtcy/0", head_name), "/jtcy/0"),
        (with(payload, "/bzje", json!("760")), "/bzje"),
        (without(payload, "/jtcy"), ""),
        (with(payload, "/sprq", json!("2022/06/26")), "/sprq"),
        (without(payload, "/jtcy/0/yhzgx"), "/jtcy/0"),
    ]
}
