//! Civil affairs (民政): marriage and divorce registrations (`civil.marriage`, the
//! authority for marital status) and subsistence allowance households
//! (`civil.assistance`).
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;
//! [`read_marriage`] and [`read_assistance`] read them back.
//!
//! Defects of a record as a whole (an unknown registration, allowance or status code)
//! are flagged on the first mention of the reading, so that each is reported once.
//!
//! Text is kept as typed; a text field that is empty or white space says nothing, and
//! a party or member with neither name nor number is no mention. A [`ReadError`]
//! comes only from what the schema rules out: a required field missing, a value of
//! the wrong JSON type.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, QualityFlag, RawDate, RawFact, RawFactSet, RawMention, RawValue, ReadError,
    Reading, Relation, RelationKind, Role, Slot,
};

/// The civil affairs document table (`zjlx`). Hong Kong/Macao and Taiwan permits are
/// one family in the canonical model.
fn document_family(code: &str) -> Option<DocumentFamily> {
    Some(match code {
        "1" => DocumentFamily::ResidentIdentityCard,
        "2" => DocumentFamily::Passport,
        "3" | "4" => DocumentFamily::HkMacaoTaiwanPermit,
        "9" => DocumentFamily::Other,
        _ => return None,
    })
}

/// 业务类型 (`ywlx`): what the registration made of the couple.
fn marital_event(code: &str) -> Option<&'static str> {
    match code {
        "结婚" => Some("married"),
        "离婚" => Some("divorced"),
        _ => None,
    }
}

/// 国籍 (`gj`): 中国, or an ISO 3166 alpha-3 code for foreigners.
fn nationality(code: &str) -> Option<String> {
    if code == "中国" {
        Some("CHN".to_owned())
    } else if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
        Some(code.to_ascii_uppercase())
    } else {
        None
    }
}

/// 性别 (`xb`) of a household member.
fn sex(code: &str) -> Option<&'static str> {
    match code {
        "男" => Some("male"),
        "女" => Some("female"),
        _ => None,
    }
}

/// 与户主关系 (`yhzgx`).
fn relation_to_head(code: &str) -> Option<&'static str> {
    Some(match code {
        "本人" => SELF,
        "配偶" => "spouse",
        "子女" => "child",
        "父母" => "parent",
        "祖父母" => "grandparent",
        "孙子女" => "grandchild",
        "兄弟姐妹" => "sibling",
        "其他" => "other",
        _ => return None,
    })
}

/// The relation of the head of household to themself.
const SELF: &str = "self";

/// 保障类型 (`bzlx`).
fn allowance_type(code: &str) -> Option<&'static str> {
    Some(match code {
        "城市低保" => "urban",
        "农村低保" => "rural",
        "特困供养" => "extreme_poverty",
        _ => return None,
    })
}

/// 状态 (`zt`) of the allowance.
fn allowance_status(code: &str) -> Option<&'static str> {
    match code {
        "在保" => Some("active"),
        "停保" => Some("stopped"),
        _ => None,
    }
}

const DOCUMENT_TYPES: &str = "civil affairs document type (zjlx)";
const REGISTRATION_TYPES: &str = "civil affairs registration type (ywlx)";
const NATIONALITIES: &str = "civil affairs nationality (gj)";
const SEXES: &str = "civil affairs sex (xb)";
const RELATIONS: &str = "civil affairs relation to the head (yhzgx)";
const ALLOWANCE_TYPES: &str = "civil affairs allowance type (bzlx)";
const ALLOWANCE_STATUSES: &str = "civil affairs allowance status (zt)";

/// A required coded field read through its table (see [`fields::lookup`]).
fn coded<T>(
    payload: &Value,
    pointer: &str,
    table: fn(&str) -> Option<T>,
    table_name: &str,
    flags: &mut Vec<QualityFlag>,
) -> Result<Option<T>, ReadError> {
    Ok(fields::lookup(
        fields::text(payload, pointer)?,
        pointer,
        table,
        table_name,
        flags,
    ))
}

// -- civil.marriage ---------------------------------------------------------

/// The man is party 0, the woman party 1.
const PARTIES: [(&str, u32); 2] = [("/nan", 0), ("/nv", 1)];

/// Reads one `civil.marriage` record into the two parties and their relation.
///
/// A registration of an unknown kind (`ywlx`) still proves the two were spouses at
/// some time: the relation is kept without detail, and neither marital status nor
/// event is stated.
pub(crate) fn read_marriage(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(payload, &["/zsbh", "/ywlx", "/djrq"])?;
    let mut record_flags = Vec::new();
    let event = coded(payload, "/ywlx", marital_event, REGISTRATION_TYPES, &mut record_flags)?;

    let mut facts = Vec::new();
    facts.extend(fields::typed_fact(payload, "certificate", "/zsbh", RawFact::Text)?);
    if let Some(event) = event {
        facts.push(("event", RawFact::Code(event)));
    }
    facts.extend(fields::typed_fact(payload, "registered", "/djrq", fields::date_fact)?);
    facts.extend(fields::typed_fact(payload, "registry", "/djjg", RawFact::Text)?);

    let mut parties = Vec::new();
    for (object, index) in PARTIES {
        parties.push(party(payload, object, index, event)?);
    }
    let spouses = Relation {
        kind: RelationKind::SpouseOf,
        from: Slot::new(Role::Party, PARTIES[0].1),
        to: Some(Slot::new(Role::Party, PARTIES[1].1)),
        detail: event.map(str::to_owned),
    };
    let mut reading = fields::reading(parties, [spouses]);
    for party in &mut reading.mentions {
        party.facts.push(RawFactSet {
            topic: "marriage_registration",
            fields: facts.clone(),
        });
    }
    if let Some(first) = reading.mentions.first_mut() {
        first.flags.extend(record_flags);
    }
    Ok(reading)
}

/// One party (`nan` or `nv`).
fn party(payload: &Value, object: &str, index: u32, event: Option<&'static str>) -> Result<RawMention, ReadError> {
    fields::object(payload, object)?;
    let at = |field: &str| format!("{object}/{field}");
    fields::require_texts(payload, &[&at("xm"), &at("zjlx"), &at("zjhm"), &at("csrq"), &at("gj")])?;

    let mut mention = RawMention::new(Slot::new(Role::Party, index), EntityKind::Person);
    let (document, flag) = fields::coded_document(payload, &at("zjhm"), &at("zjlx"), document_family, DOCUMENT_TYPES)?;
    mention.documents.extend(document);
    mention.flags.extend(flag);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, &at("xm"))?);
    mention
        .values
        .extend(fields::typed_date(payload, Attribute::BirthDate, &at("csrq"))?);
    if let Some(country) = coded(payload, &at("gj"), nationality, NATIONALITIES, &mut mention.flags)? {
        mention
            .values
            .push(RawValue::text(Attribute::Nationality, at("gj"), country));
    }
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::HouseholdAddress, &at("hjdz"))?);
    if let Some(event) = event {
        // The status holds from the registration, whenever the record was last edited.
        let mut status = RawValue::text(Attribute::MaritalStatus, "/ywlx", event);
        if let Some(registered) = fields::filled_text(payload, "/djrq")? {
            status = status.as_of(RawDate::Text(registered.to_owned()));
        }
        mention.values.push(status);
    }
    Ok(mention)
}

// -- civil.assistance -------------------------------------------------------

/// Reads one `civil.assistance` record into the household members and their relations.
///
/// The head of household is written twice, as `hzxm`/`hzsfzh` and as the member whose
/// relation is 本人: it is one mention, that member's, with `hzsfzh` as a second
/// document and `hzxm` as a second name. When no member is 本人 (the code was
/// mistyped), the head is the member with an unknown relation code whose number
/// (else, if only one, whose name) is the head's, compared ignoring white space,
/// full-width forms and case; when there is none, the record names no head
/// mention and no member relation. A second 本人 stays a member without a relation
/// word.
pub(crate) fn read_assistance(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(payload, &["/jtbh", "/hzxm", "/hzsfzh", "/bzlx", "/zt", "/sprq"])?;
    let mut record_flags = Vec::new();
    let kind = coded(payload, "/bzlx", allowance_type, ALLOWANCE_TYPES, &mut record_flags)?;
    let status = coded(payload, "/zt", allowance_status, ALLOWANCE_STATUSES, &mut record_flags)?;

    let mut facts = Vec::new();
    facts.extend(fields::typed_fact(payload, "household", "/jtbh", RawFact::Text)?);
    if let Some(kind) = kind {
        facts.push(("allowance_type", RawFact::Code(kind)));
    }
    facts.push(("monthly_allowance", RawFact::Number(fields::number(payload, "/bzje")?)));
    if let Some(status) = status {
        facts.push(("status", RawFact::Code(status)));
    }
    facts.extend(fields::typed_fact(payload, "approved", "/sprq", fields::date_fact)?);

    let count = fields::array(payload, "/jtcy")?.len();
    let count = u32::try_from(count).map_err(|_| ReadError {
        pointer: "/jtcy".to_owned(),
        message: "more members than the schema allows".to_owned(),
    })?;
    let mut kinship = Vec::new();
    let mut kinship_flags = Vec::new();
    for index in 0..count {
        let at = |field: &str| format!("/jtcy/{index}/{field}");
        fields::object(payload, &format!("/jtcy/{index}"))?;
        fields::require_texts(payload, &[&at("xm"), &at("sfzh"), &at("xb"), &at("csrq"), &at("yhzgx")])?;
        let mut flags = Vec::new();
        kinship.push(coded(payload, &at("yhzgx"), relation_to_head, RELATIONS, &mut flags)?);
        kinship_flags.push(flags);
    }
    let head = head_of_household(payload, &kinship)?;

    let mut reading = Reading::default();
    let mut household_members = Vec::new();
    for ((index, relation), flags) in (0..count).zip(kinship).zip(kinship_flags) {
        let is_head = head == Some(index);
        let relation = match relation {
            _ if is_head => Some(SELF),
            Some(SELF) => None,
            other => other,
        };
        let mut member = member(payload, index, is_head, flags)?;
        if !fields::identifies(&member) {
            record_flags.append(&mut member.flags);
            continue;
        }
        let mut allowance = facts.clone();
        if let Some(relation) = relation {
            allowance.push(("relation_to_head", RawFact::Code(relation)));
        }
        member.facts.push(RawFactSet {
            topic: "subsistence_allowance",
            fields: allowance,
        });
        if !is_head {
            household_members.push((member.slot, relation));
        }
        reading.mentions.push(member);
    }
    let head_slot = head.map(|h| Slot::new(Role::Member, h));
    if let Some(head_slot) = head_slot.filter(|&slot| reading.mentions.iter().any(|m| m.slot == slot)) {
        reading.relations = household_members
            .into_iter()
            .map(|(slot, relation)| Relation {
                kind: RelationKind::MemberOfHousehold,
                from: slot,
                to: Some(head_slot),
                detail: relation.map(str::to_owned),
            })
            .collect();
    }
    if let Some(first) = reading.mentions.first_mut() {
        first.flags.extend(record_flags);
    }
    Ok(reading)
}

/// The index in `jtcy` of the head of household, if the record lets us tell.
fn head_of_household(payload: &Value, kinship: &[Option<&'static str>]) -> Result<Option<u32>, ReadError> {
    if let Some(head) = kinship.iter().position(|r| *r == Some(SELF)) {
        return Ok(u32::try_from(head).ok());
    }
    // Only a member whose relation code is unknown may be a mistyped 本人.
    let candidates: Vec<u32> = (0..)
        .zip(kinship)
        .filter(|(_, relation)| relation.is_none())
        .map(|(index, _)| index)
        .collect();
    let matching = |head_field: &str, member_field: &str| -> Result<Vec<u32>, ReadError> {
        let Some(wanted) = fields::filled_text(payload, head_field)?.map(comparable) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for &index in &candidates {
            let typed = fields::filled_text(payload, &format!("/jtcy/{index}/{member_field}"))?;
            if typed.map(comparable).as_ref() == Some(&wanted) {
                found.push(index);
            }
        }
        Ok(found)
    };
    if let Some(&head) = matching("/hzsfzh", "sfzh")?.first() {
        return Ok(Some(head));
    }
    Ok(match matching("/hzxm", "xm")?.as_slice() {
        [only] => Some(*only),
        _ => None,
    })
}

/// A typed name or number reduced just enough to recognise the same typing: no white
/// space, ASCII for full-width forms, upper case.
fn comparable(text: &str) -> String {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    fields::code(&compact).to_uppercase()
}

/// `jtcy[index]` as the record gives it (possibly without name and number). The head
/// also gets `hzsfzh`, `hzxm` and the household's phone.
fn member(payload: &Value, index: u32, is_head: bool, flags: Vec<QualityFlag>) -> Result<RawMention, ReadError> {
    let at = |field: &str| format!("/jtcy/{index}/{field}");
    let mut mention = RawMention::new(Slot::new(Role::Member, index), EntityKind::Person);
    mention.flags = flags;
    let (mut numbers, mut names) = (vec![at("sfzh")], vec![at("xm")]);
    if is_head {
        numbers.push("/hzsfzh".to_owned());
        names.push("/hzxm".to_owned());
    }
    for pointer in numbers {
        mention.documents.extend(fields::implied_document(
            payload,
            &pointer,
            DocumentFamily::ResidentIdentityCard,
            None,
        )?);
    }
    for pointer in names {
        mention
            .values
            .extend(fields::typed_value(payload, Attribute::Name, &pointer)?);
    }
    if let Some(sex) = coded(payload, &at("xb"), sex, SEXES, &mut mention.flags)? {
        mention.values.push(RawValue::text(Attribute::Sex, at("xb"), sex));
    }
    mention
        .values
        .extend(fields::typed_date(payload, Attribute::BirthDate, &at("csrq"))?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Address, "/jzdz")?);
    if is_head {
        mention
            .values
            .extend(fields::typed_value(payload, Attribute::Phone, "/lxdh")?);
    }
    Ok(mention)
}
