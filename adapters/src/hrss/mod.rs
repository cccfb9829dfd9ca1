//! Human resources and social security (人力资源和社会保障): the social insurance
//! system, record type `hrss.insured_person`.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them; [`read`] reads
//! one into the `insured` person and their `employer`.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawFact, RawFactSet, RawMention, RawValue, ReadError, Reading, RelationKind,
    Role, Slot,
};

const INSURED: Slot = Slot::new(Role::Insured, 0);
const EMPLOYER: Slot = Slot::new(Role::Employer, 0);

/// The department registers its own numbers belong to.
const PERSON_REGISTER: &str = "hrss.person";
const EMPLOYER_REGISTER: &str = "hrss.employer";
const CARD_REGISTER: &str = "hrss.card";

/// 证件类型 (`zjlx`).
fn document_family(code: &str) -> Option<DocumentFamily> {
    match code {
        "01" => Some(DocumentFamily::ResidentIdentityCard),
        "03" => Some(DocumentFamily::Passport),
        "04" => Some(DocumentFamily::HkMacaoTaiwanPermit),
        "05" => Some(DocumentFamily::ForeignPermanentResidentCard),
        _ => None,
    }
}

/// 性别 (`xb`, GB/T 2261.1): `Some(None)` for the codes that say the sex is unknown
/// or not stated.
fn sex(code: &str) -> Option<Option<&'static str>> {
    match code {
        "1" => Some(Some("male")),
        "2" => Some(Some("female")),
        "0" | "9" => Some(None),
        _ => None,
    }
}

/// 参保状态 (`cbzt`).
fn insurance_status(code: &str) -> Option<&'static str> {
    match code {
        "1" => Some("paying"),
        "2" => Some("suspended"),
        "3" => Some("terminated"),
        _ => None,
    }
}

/// 险种类型 (`xzlx` items).
fn insurance_type(code: &str) -> Option<&'static str> {
    match code {
        "110" => Some("pension"),
        "210" => Some("unemployment"),
        "310" => Some("medical"),
        "410" => Some("work_injury"),
        "510" => Some("maternity"),
        _ => None,
    }
}

const DOCUMENT_TYPES: &str = "hrss document type (zjlx)";
const SEXES: &str = "GB/T 2261.1 sex (xb)";
const STATUSES: &str = "hrss insurance status (cbzt)";
const INSURANCE_TYPES: &str = "hrss insurance type (xzlx)";

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(
        payload,
        &[
            "/grbh", "/zjlx", "/sfzhm", "/xm", "/xb", "/csrq", "/dwbh", "/dwmc", "/cbzt", "/cbrq",
        ],
    )?;
    Ok(fields::reading(
        [insured(payload)?, employer(payload)?],
        [fields::relation(RelationKind::EmployedBy, INSURED, EMPLOYER)],
    ))
}

fn insured(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(INSURED, EntityKind::Person);
    let (document, flag) = fields::coded_document(payload, "/sfzhm", "/zjlx", document_family, DOCUMENT_TYPES)?;
    mention.documents.extend(document);
    mention.flags.extend(flag);
    for (pointer, register) in [("/grbh", PERSON_REGISTER), ("/sbkh", CARD_REGISTER)] {
        let number = fields::implied_document(payload, pointer, DocumentFamily::DepartmentNumber, Some(register))?;
        mention.documents.extend(number);
    }

    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/xm")?);
    let xb = fields::text(payload, "/xb")?;
    if let Some(Some(sex)) = fields::lookup(xb, "/xb", sex, SEXES, &mut mention.flags) {
        mention.values.push(RawValue::text(Attribute::Sex, "/xb", sex));
    }
    mention
        .values
        .extend(fields::typed_date(payload, Attribute::BirthDate, "/csrq")?);
    // The GB 3304 code as given: the normaliser reads codes for every department alike.
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Ethnicity, "/mz")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, "/lxdh")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::HouseholdAddress, "/hjdz")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Address, "/jzdz")?);

    let mut facts = Vec::new();
    let cbzt = fields::text(payload, "/cbzt")?;
    if let Some(status) = fields::lookup(cbzt, "/cbzt", insurance_status, STATUSES, &mut mention.flags) {
        facts.push(("status", RawFact::Code(status)));
    }
    let mut insurance = Vec::new();
    for (i, item) in fields::array(payload, "/xzlx")?.iter().enumerate() {
        let pointer = format!("/xzlx/{i}");
        let Some(typed) = item.as_str() else {
            return Err(ReadError {
                pointer,
                message: "insurance type is not a string as the schema requires".to_owned(),
            });
        };
        if let Some(kind) = fields::lookup(typed, &pointer, insurance_type, INSURANCE_TYPES, &mut mention.flags) {
            insurance.push(RawFact::Code(kind));
        }
    }
    facts.push(("insurance", RawFact::List(insurance)));
    facts.extend(fields::typed_fact(payload, "enrolled", "/cbrq", fields::date_fact)?);
    facts.extend(fields::typed_fact(payload, "employer_number", "/dwbh", RawFact::Text)?);
    mention.facts.push(RawFactSet {
        topic: "social_insurance",
        fields: facts,
    });
    Ok(mention)
}

fn employer(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(EMPLOYER, EntityKind::Organisation);
    mention.documents.extend(fields::implied_document(
        payload,
        "/dwbh",
        DocumentFamily::DepartmentNumber,
        Some(EMPLOYER_REGISTER),
    )?);
    mention.documents.extend(fields::implied_document(
        payload,
        "/dwtyshxydm",
        DocumentFamily::UnifiedSocialCreditCode,
        None,
    )?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/dwmc")?);
    Ok(mention)
}
