//! Real estate registration (不动产登记): the title register, record type
//! `realestate.title`. A title can have several right holders, persons or units.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;
//! [`read`] reads them back into one `right_holder` mention per holder in `qlr`.
//!
//! Defects of the title itself (an unknown right type, use or co-ownership code) are
//! flagged on the first mention of the reading, so that each is reported once.
//!
//! Text is kept as typed; a text field that is empty or white space says nothing, and
//! a holder with neither name nor number is no mention. A [`ReadError`] comes only
//! from what the schema rules out: a required field missing, a value of the wrong
//! JSON type.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, QualityFlag, RawFact, RawFactSet, RawMention, RawValue, ReadError, Reading,
    Relation, RelationKind, Role, Slot,
};

/// The real estate document table (`zjzl`), from the national registration database standard.
fn document_family(code: &str) -> Option<DocumentFamily> {
    Some(match code {
        "1" => DocumentFamily::ResidentIdentityCard,
        "2" => DocumentFamily::HkMacaoTaiwanIdentityCard,
        "3" => DocumentFamily::Passport,
        "4" => DocumentFamily::HouseholdRegister,
        "5" => DocumentFamily::MilitaryOfficerCard,
        "6" => DocumentFamily::OrganisationCode,
        "7" => DocumentFamily::BusinessLicence,
        "8" => DocumentFamily::UnifiedSocialCreditCode,
        "99" => DocumentFamily::Other,
        _ => return None,
    })
}

/// The kind of holder a document family implies, where it implies one: used only
/// when the holder type code is unknown.
fn kind_of_family(family: DocumentFamily) -> Option<EntityKind> {
    match family {
        DocumentFamily::ResidentIdentityCard
        | DocumentFamily::HkMacaoTaiwanIdentityCard
        | DocumentFamily::Passport
        | DocumentFamily::HouseholdRegister
        | DocumentFamily::MilitaryOfficerCard => Some(EntityKind::Person),
        DocumentFamily::OrganisationCode
        | DocumentFamily::BusinessLicence
        | DocumentFamily::UnifiedSocialCreditCode => Some(EntityKind::Organisation),
        _ => None,
    }
}

/// The holder type table (`qlrlx`): the kind, and for units the organisation type word.
fn holder_type(code: &str) -> Option<(EntityKind, Option<&'static str>)> {
    Some(match code {
        "1" => (EntityKind::Person, None),
        "2" => (EntityKind::Organisation, Some("enterprise")),
        "3" => (EntityKind::Organisation, Some("public_institution")),
        "4" => (EntityKind::Organisation, Some("state_organ")),
        _ => return None,
    })
}

/// A code table of the title: the department's code to our word.
type CodeTable = fn(&str) -> Option<&'static str>;

/// 权利类型 (`qllx`).
fn right_type(code: &str) -> Option<&'static str> {
    Some(match code {
        "4" => "state_owned_construction_land_and_house",
        "6" => "homestead_and_house",
        "8" => "collective_construction_land_and_house",
        _ => return None,
    })
}

/// 用途 (`yt`).
fn usage(code: &str) -> Option<&'static str> {
    Some(match code {
        "住宅" => "residential",
        "商业" => "commercial",
        "工业" => "industrial",
        "办公" => "office",
        "其他" => "other",
        _ => return None,
    })
}

/// 共有方式 (`gyfs`).
fn co_ownership(code: &str) -> Option<&'static str> {
    Some(match code {
        "单独所有" => "sole",
        "共同共有" => "joint",
        "按份共有" => "in_shares",
        _ => return None,
    })
}

/// 抵押状态 and 查封状态 (`dyzt`, `cfzt`).
fn yes_no(code: &str) -> Option<bool> {
    match code {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

const DOCUMENT_TYPES: &str = "real estate document type (zjzl)";
const HOLDER_TYPES: &str = "real estate holder type (qlrlx)";
const RIGHT_TYPES: &str = "real estate right type (qllx)";
const USES: &str = "real estate use (yt)";
const CO_OWNERSHIP: &str = "real estate co-ownership (gyfs)";
const MORTGAGE_STATES: &str = "real estate mortgage state (dyzt)";
const SEIZURE_STATES: &str = "real estate seizure state (cfzt)";

/// Reads one native record into one mention per right holder, each holding the title.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(
        payload,
        &["/bdcqzh", "/bdcdyh", "/zl", "/qllx", "/yt", "/gyfs", "/djsj"],
    )?;
    let mut record_flags = Vec::new();
    let title = title_facts(payload, &mut record_flags)?;
    let mut reading = Reading::default();
    for (position, _) in fields::array(payload, "/qlr")?.iter().enumerate() {
        let index = u32::try_from(position).map_err(|_| ReadError {
            pointer: "/qlr".to_owned(),
            message: "more right holders than the schema allows".to_owned(),
        })?;
        let Some(holder) = right_holder(payload, index, &title, &mut record_flags)? else {
            continue;
        };
        reading.relations.push(Relation {
            kind: RelationKind::HoldsTitle,
            from: holder.slot,
            to: None,
            detail: fields::filled_text(payload, &format!("/qlr/{index}/fe"))?.map(str::to_owned),
        });
        reading.mentions.push(holder);
    }
    // A flag needs a mention to sit on; with no holder at all there is nobody to report.
    if let Some(first) = reading.mentions.first_mut() {
        first.flags.extend(record_flags);
    }
    Ok(reading)
}

/// The facts of the title every holder shares (each holder adds its own share).
fn title_facts(payload: &Value, flags: &mut Vec<QualityFlag>) -> Result<Vec<(&'static str, RawFact)>, ReadError> {
    let mut facts = Vec::new();
    for (name, pointer) in [("title", "/bdcqzh"), ("unit_number", "/bdcdyh"), ("location", "/zl")] {
        facts.extend(fields::typed_fact(payload, name, pointer, RawFact::Text)?);
    }
    let tables: [(&'static str, &str, CodeTable, &str); 3] = [
        ("right_type", "/qllx", right_type, RIGHT_TYPES),
        ("use", "/yt", usage, USES),
        ("co_ownership", "/gyfs", co_ownership, CO_OWNERSHIP),
    ];
    for (name, pointer, table, table_name) in tables {
        if let Some(word) = fields::lookup(fields::text(payload, pointer)?, pointer, table, table_name, flags) {
            facts.push((name, RawFact::Code(word)));
        }
    }
    facts.push(("area", RawFact::Number(fields::number(payload, "/mj")?)));
    facts.extend(fields::typed_fact(payload, "registered", "/djsj", fields::date_fact)?);
    // Optional codes: a blank one says nothing.
    for (name, pointer, table_name) in [
        ("mortgaged", "/dyzt", MORTGAGE_STATES),
        ("seized", "/cfzt", SEIZURE_STATES),
    ] {
        let Some(code) = fields::filled_text(payload, pointer)? else {
            continue;
        };
        if let Some(yes) = fields::lookup(code, pointer, yes_no, table_name, flags) {
            facts.push((name, RawFact::Bool(yes)));
        }
    }
    Ok(facts)
}

/// `qlr[index]`, or `None` when it names nobody (no name and no number) or its kind
/// cannot be told (unknown holder type and a document type that implies no kind):
/// then its flags go to the record's flags.
fn right_holder(
    payload: &Value,
    index: u32,
    title: &[(&'static str, RawFact)],
    record_flags: &mut Vec<QualityFlag>,
) -> Result<Option<RawMention>, ReadError> {
    fields::object(payload, &format!("/qlr/{index}"))?;
    let at = |field: &str| format!("/qlr/{index}/{field}");
    fields::require_texts(payload, &[&at("qlrmc"), &at("qlrlx"), &at("zjzl"), &at("zjh")])?;

    let mut flags = Vec::new();
    let (document, document_flag) =
        fields::coded_document(payload, &at("zjh"), &at("zjzl"), document_family, DOCUMENT_TYPES)?;
    flags.extend(document_flag);
    let holder_type = fields::lookup(
        fields::text(payload, &at("qlrlx"))?,
        &at("qlrlx"),
        holder_type,
        HOLDER_TYPES,
        &mut flags,
    );
    let kind = match holder_type {
        Some((kind, _)) => Some(kind),
        None => document_family(&fields::code(fields::text(payload, &at("zjzl"))?)).and_then(kind_of_family),
    };
    let Some(kind) = kind else {
        record_flags.extend(flags);
        return Ok(None);
    };

    let mut mention = RawMention::new(Slot::new(Role::RightHolder, index), kind);
    mention.flags = flags;
    mention.documents.extend(document);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, &at("qlrmc"))?);
    if let Some((EntityKind::Organisation, Some(organisation_type))) = holder_type {
        mention.values.push(RawValue::text(
            Attribute::OrganisationType,
            at("qlrlx"),
            organisation_type,
        ));
    }
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, &at("dh"))?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Address, &at("dz"))?);
    if !fields::identifies(&mention) {
        record_flags.append(&mut mention.flags);
        return Ok(None);
    }
    let mut facts = title.to_vec();
    facts.extend(fields::typed_fact(payload, "share", &at("fe"), RawFact::Amount)?);
    mention.facts.push(RawFactSet {
        topic: "real_estate_title",
        fields: facts,
    });
    Ok(Some(mention))
}
