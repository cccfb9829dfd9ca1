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
//! Text is kept as typed; a text field that is empty, white space or missing says
//! nothing, and a party or member with neither name nor number is no mention. A
//! [`ReadError`] comes only from what the schema rules out and a reading cannot
//! survive: a value of the wrong JSON type, a missing array, object or number.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, FlagCode, QualityFlag, RawDate, RawDocument, RawFact, RawFactSet,
    RawMention, RawValue, ReadError, Reading, Relation, RelationKind, Role, Slot,
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

fn unknown_code(pointer: &str, table: &str) -> QualityFlag {
    QualityFlag::new(
        FlagCode::UnknownCode,
        pointer,
        format!("the code is not in the civil affairs {table} table"),
    )
}

/// A required coded field mapped through its table: `None`, and a flag, when the code
/// is not in it (a blank or missing code is not in it either).
fn mapped<T>(
    payload: &Value,
    pointer: &str,
    table: &str,
    map: fn(&str) -> Option<T>,
    flags: &mut Vec<QualityFlag>,
) -> Result<Option<T>, ReadError> {
    let code = fields::filled_text(payload, pointer)?
        .map(fields::code)
        .unwrap_or_default();
    let mapped = map(&code);
    if mapped.is_none() {
        flags.push(unknown_code(pointer, table));
    }
    Ok(mapped)
}

fn index_of(position: usize, array: &str) -> Result<u32, ReadError> {
    u32::try_from(position).map_err(|_| ReadError {
        pointer: array.to_owned(),
        message: "more items than the schema allows".to_owned(),
    })
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
    let mut record_flags = Vec::new();
    let certificate = fields::filled_text(payload, "/zsbh")?;
    let event = mapped(payload, "/ywlx", "registration type", marital_event, &mut record_flags)?;
    let registered = fields::filled_text(payload, "/djrq")?;

    let mut facts = Vec::new();
    if let Some(certificate) = certificate {
        facts.push(("certificate", RawFact::Text(certificate.to_owned())));
    }
    if let Some(event) = event {
        facts.push(("event", RawFact::Code(event)));
    }
    if let Some(registered) = registered {
        facts.push(("registered", RawFact::Date(RawDate::Text(registered.to_owned()))));
    }
    if let Some(registry) = fields::filled_text(payload, "/djjg")? {
        facts.push(("registry", RawFact::Text(registry.to_owned())));
    }

    let mut reading = Reading::default();
    for (object, index) in PARTIES {
        let Some(mut party) = party(payload, object, index, event)? else {
            continue;
        };
        party.facts.push(RawFactSet {
            topic: "marriage_registration",
            fields: facts.clone(),
        });
        reading.mentions.push(party);
    }
    if let [man, woman] = reading.mentions.as_slice() {
        reading.relations.push(Relation {
            kind: RelationKind::SpouseOf,
            from: man.slot,
            to: Some(woman.slot),
            detail: event.map(str::to_owned),
        });
    }
    if let Some(first) = reading.mentions.first_mut() {
        first.flags.extend(record_flags);
    }
    Ok(reading)
}

/// One party (`nan` or `nv`), or `None` when the record leaves it without name and number.
fn party(
    payload: &Value,
    object: &str,
    index: u32,
    event: Option<&'static str>,
) -> Result<Option<RawMention>, ReadError> {
    fields::object(payload, object)?;
    let at = |field: &str| format!("{object}/{field}");
    let name = fields::filled_text(payload, &at("xm"))?;
    let number = fields::filled_text(payload, &at("zjhm"))?;
    let birth = fields::filled_text(payload, &at("csrq"))?;
    if name.is_none() && number.is_none() {
        return Ok(None);
    }

    let mut mention = RawMention::new(Slot::new(Role::Party, index), EntityKind::Person);
    if let Some(number) = number {
        let code = fields::filled_text(payload, &at("zjlx"))?
            .map(fields::code)
            .unwrap_or_default();
        let family = document_family(&code);
        if family.is_none() {
            mention.flags.push(unknown_code(&at("zjlx"), "document type"));
        }
        mention.documents.push(RawDocument {
            family,
            code,
            register: None,
            pointer: at("zjhm"),
            number: number.to_owned(),
        });
    }
    if let Some(name) = name {
        mention.values.push(RawValue::text(Attribute::Name, at("xm"), name));
    }
    if let Some(birth) = birth {
        mention.values.push(RawValue::date(
            Attribute::BirthDate,
            at("csrq"),
            RawDate::Text(birth.to_owned()),
        ));
    }
    if let Some(country) = mapped(payload, &at("gj"), "nationality", nationality, &mut mention.flags)? {
        mention
            .values
            .push(RawValue::text(Attribute::Nationality, at("gj"), country));
    }
    if let Some(address) = fields::filled_text(payload, &at("hjdz"))? {
        mention
            .values
            .push(RawValue::text(Attribute::HouseholdAddress, at("hjdz"), address));
    }
    if let Some(event) = event {
        mention
            .values
            .push(RawValue::text(Attribute::MaritalStatus, "/ywlx", event));
    }
    Ok(Some(mention))
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
    let mut record_flags = Vec::new();
    let household = fields::filled_text(payload, "/jtbh")?;
    let kind = mapped(payload, "/bzlx", "allowance type", allowance_type, &mut record_flags)?;
    let status = mapped(payload, "/zt", "allowance status", allowance_status, &mut record_flags)?;
    let approved = fields::filled_text(payload, "/sprq")?;

    let mut facts = Vec::new();
    if let Some(household) = household {
        facts.push(("household", RawFact::Text(household.to_owned())));
    }
    if let Some(kind) = kind {
        facts.push(("allowance_type", RawFact::Code(kind)));
    }
    facts.push(("monthly_allowance", RawFact::Number(fields::number(payload, "/bzje")?)));
    if let Some(status) = status {
        facts.push(("status", RawFact::Code(status)));
    }
    if let Some(approved) = approved {
        facts.push(("approved", RawFact::Date(RawDate::Text(approved.to_owned()))));
    }

    let members = fields::array(payload, "/jtcy")?;
    let mut kinship = Vec::with_capacity(members.len());
    let mut relation_flags = Vec::with_capacity(members.len());
    for position in 0..members.len() {
        fields::object(payload, &format!("/jtcy/{position}"))?;
        let mut flags = Vec::new();
        let pointer = format!("/jtcy/{position}/yhzgx");
        kinship.push(mapped(payload, &pointer, "relation", relation_to_head, &mut flags)?);
        relation_flags.push(flags);
    }
    let head = head_of_household(payload, &kinship)?;

    let mut reading = Reading::default();
    let mut household_members = Vec::new();
    for (position, flags) in relation_flags.into_iter().enumerate() {
        let index = index_of(position, "/jtcy")?;
        let is_head = head == Some(position);
        let relation = match kinship.get(position).copied().flatten() {
            _ if is_head => Some(SELF),
            Some(SELF) => None,
            other => other,
        };
        let mut member = member(payload, index, is_head, flags)?;
        let named = member.values.iter().any(|v| v.attribute == Attribute::Name);
        if member.documents.is_empty() && !named {
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
    let head_slot = head
        .map(|h| index_of(h, "/jtcy"))
        .transpose()?
        .map(|h| Slot::new(Role::Member, h));
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

/// The position in `jtcy` of the head of household, if the record lets us tell.
fn head_of_household(payload: &Value, kinship: &[Option<&'static str>]) -> Result<Option<usize>, ReadError> {
    if let Some(head) = kinship.iter().position(|r| *r == Some(SELF)) {
        return Ok(Some(head));
    }
    // Only a member whose relation code is unknown may be a mistyped 本人.
    let candidates: Vec<usize> = (0..kinship.len()).filter(|&i| kinship[i].is_none()).collect();
    let matching = |head_field: &str, member_field: &str| -> Result<Vec<usize>, ReadError> {
        let Some(wanted) = fields::filled_text(payload, head_field)?.map(comparable) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for &i in &candidates {
            let typed = fields::filled_text(payload, &format!("/jtcy/{i}/{member_field}"))?;
            if typed.map(comparable).as_ref() == Some(&wanted) {
                found.push(i);
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
/// also gets `hzxm`, `hzsfzh` and the household's phone.
fn member(payload: &Value, index: u32, is_head: bool, flags: Vec<QualityFlag>) -> Result<RawMention, ReadError> {
    let at = |field: &str| format!("/jtcy/{index}/{field}");
    let mut mention = RawMention::new(Slot::new(Role::Member, index), EntityKind::Person);
    mention.flags = flags;
    let mut numbers = vec![at("sfzh")];
    let mut names = vec![at("xm")];
    if is_head {
        numbers.push("/hzsfzh".to_owned());
        names.push("/hzxm".to_owned());
    }
    for pointer in numbers {
        if let Some(number) = fields::filled_text(payload, &pointer)? {
            mention.documents.push(RawDocument {
                family: Some(DocumentFamily::ResidentIdentityCard),
                code: String::new(),
                register: None,
                pointer,
                number: number.to_owned(),
            });
        }
    }
    for pointer in names {
        if let Some(name) = fields::filled_text(payload, &pointer)? {
            mention.values.push(RawValue::text(Attribute::Name, pointer, name));
        }
    }
    if let Some(sex) = mapped(payload, &at("xb"), "sex", sex, &mut mention.flags)? {
        mention.values.push(RawValue::text(Attribute::Sex, at("xb"), sex));
    }
    if let Some(birth) = fields::filled_text(payload, &at("csrq"))? {
        mention.values.push(RawValue::date(
            Attribute::BirthDate,
            at("csrq"),
            RawDate::Text(birth.to_owned()),
        ));
    }
    if let Some(address) = fields::filled_text(payload, "/jzdz")? {
        mention
            .values
            .push(RawValue::text(Attribute::Address, "/jzdz", address));
    }
    if is_head {
        if let Some(phone) = fields::filled_text(payload, "/lxdh")? {
            mention.values.push(RawValue::text(Attribute::Phone, "/lxdh", phone));
        }
    }
    Ok(mention)
}
