//! Housing provident fund (住房公积金): the personal account system, record type
//! `housingfund.account`. Employers are known here only by name and organisation code.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them; [`read`] reads
//! one into the `account_holder` and, when the record names it, their `employer`.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawFact, RawFactSet, RawMention, ReadError, Reading, RelationKind, Role,
    Slot,
};

const ACCOUNT_HOLDER: Slot = Slot::new(Role::AccountHolder, 0);
const EMPLOYER: Slot = Slot::new(Role::Employer, 0);

/// The fund's registers of its own numbers.
const ACCOUNT_REGISTER: &str = "housingfund.account";
const EMPLOYER_REGISTER: &str = "housingfund.employer";

/// 证件类型 (`zjlx`). It has no code for the foreign permanent resident card: what
/// clerks typed for one (99) is an unknown code.
fn document_family(code: &str) -> Option<DocumentFamily> {
    match code {
        "01" => Some(DocumentFamily::ResidentIdentityCard),
        "02" => Some(DocumentFamily::MilitaryOfficerCard),
        "03" => Some(DocumentFamily::Passport),
        "04" | "05" => Some(DocumentFamily::HkMacaoTaiwanPermit),
        _ => None,
    }
}

/// 账户状态 (`zhzt`).
fn account_status(code: &str) -> Option<&'static str> {
    match code {
        "0" => Some("normal"),
        "1" => Some("sealed"),
        "2" => Some("closed"),
        _ => None,
    }
}

const DOCUMENT_TYPES: &str = "housing fund document type (zjlx)";
const STATUSES: &str = "housing fund account status (zhzt)";

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(
        payload,
        &[
            "/grzh",
            "/xingming",
            "/zjlx",
            "/zjhm",
            "/dwzh",
            "/dwmc",
            "/jcjs",
            "/grjcbl",
            "/zhzt",
            "/khrq",
        ],
    )?;
    Ok(fields::reading(
        [account_holder(payload)?, employer(payload)?],
        [fields::relation(RelationKind::EmployedBy, ACCOUNT_HOLDER, EMPLOYER)],
    ))
}

fn account_holder(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(ACCOUNT_HOLDER, EntityKind::Person);
    let (document, flag) = fields::coded_document(payload, "/zjhm", "/zjlx", document_family, DOCUMENT_TYPES)?;
    mention.documents.extend(document);
    mention.flags.extend(flag);
    mention.documents.extend(fields::implied_document(
        payload,
        "/grzh",
        DocumentFamily::DepartmentNumber,
        Some(ACCOUNT_REGISTER),
    )?);

    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/xingming")?);
    // Year and month only (`YYYYMM`): the normaliser keeps the precision it has.
    mention
        .values
        .extend(fields::typed_date(payload, Attribute::BirthDate, "/csny")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, "/sjhm")?);

    let mut facts = Vec::new();
    facts.extend(fields::typed_fact(payload, "account", "/grzh", RawFact::Text)?);
    let zhzt = fields::text(payload, "/zhzt")?;
    if let Some(status) = fields::lookup(zhzt, "/zhzt", account_status, STATUSES, &mut mention.flags) {
        facts.push(("status", RawFact::Code(status)));
    }
    facts.extend(fields::typed_fact(
        payload,
        "contribution_base",
        "/jcjs",
        RawFact::Amount,
    )?);
    // A fraction such as `0.12`: an amount whose unit is "of the base".
    facts.extend(fields::typed_fact(payload, "personal_rate", "/grjcbl", RawFact::Text)?);
    facts.extend(fields::typed_fact(payload, "opened", "/khrq", fields::date_fact)?);
    facts.extend(fields::typed_fact(payload, "employer_account", "/dwzh", RawFact::Text)?);
    mention.facts.push(RawFactSet {
        topic: "provident_fund_account",
        fields: facts,
    });
    Ok(mention)
}

fn employer(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(EMPLOYER, EntityKind::Organisation);
    mention.documents.extend(fields::implied_document(
        payload,
        "/dwzh",
        DocumentFamily::DepartmentNumber,
        Some(EMPLOYER_REGISTER),
    )?);
    mention.documents.extend(fields::implied_document(
        payload,
        "/dwzzjgdm",
        DocumentFamily::OrganisationCode,
        None,
    )?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/dwmc")?);
    Ok(mention)
}
