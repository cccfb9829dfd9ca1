//! Market supervision (市场监督管理): the market entity registration system, record
//! type `market.entity`. The authority for an enterprise's name, legal
//! representative and status.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them; [`read`] reads
//! one into the `entity` and its `legal_representative` (经营者 of an individual
//! business).

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawDate, RawFact, RawFactSet, RawMention, RawValue, ReadError, Reading,
    RelationKind, Role, Slot,
};

const ENTITY: Slot = Slot::new(Role::Entity, 0);
const LEGAL_REPRESENTATIVE: Slot = Slot::new(Role::LegalRepresentative, 0);

/// The legal representative's document type table (`fddbr_zjlx`).
fn document_family(code: &str) -> Option<DocumentFamily> {
    match code {
        "10" => Some(DocumentFamily::ResidentIdentityCard),
        "20" => Some(DocumentFamily::Passport),
        "30" => Some(DocumentFamily::HkMacaoTaiwanPermit),
        "40" => Some(DocumentFamily::ForeignPermanentResidentCard),
        _ => None,
    }
}

/// 主体类型 (`ztlx`).
fn entity_type(code: &str) -> Option<&'static str> {
    match code {
        "1100" => Some("limited_company"),
        "1200" => Some("joint_stock_company"),
        "4100" => Some("cooperative"),
        "9100" => Some("individual_business"),
        _ => None,
    }
}

/// 登记状态 (`djzt`), written in words: 存续 and 在业 are two clerks' words for one state.
fn status(word: &str) -> Option<&'static str> {
    match word {
        "存续" | "在业" => Some("active"),
        "迁出" => Some("moved_out"),
        "注销" => Some("deregistered"),
        "吊销" => Some("revoked"),
        _ => None,
    }
}

const DOCUMENT_TYPES: &str = "market document type (fddbr_zjlx)";
const ENTITY_TYPES: &str = "market entity type (ztlx)";
const STATUSES: &str = "market registration status (djzt)";

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(payload, &["/ztid", "/ztmc", "/ztlx", "/fddbr", "/clrq", "/djzt"])?;
    Ok(fields::reading(
        [entity(payload)?, legal_representative(payload)?],
        [fields::relation(
            RelationKind::LegalRepresentativeOf,
            LEGAL_REPRESENTATIVE,
            ENTITY,
        )],
    ))
}

fn entity(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(ENTITY, EntityKind::Organisation);
    mention.documents.extend(fields::implied_document(
        payload,
        "/tyshxydm",
        DocumentFamily::UnifiedSocialCreditCode,
        None,
    )?);
    mention.documents.extend(fields::implied_document(
        payload,
        "/zch",
        DocumentFamily::BusinessLicence,
        None,
    )?);

    let entity_type = fields::lookup(
        fields::text(payload, "/ztlx")?,
        "/ztlx",
        entity_type,
        ENTITY_TYPES,
        &mut mention.flags,
    );
    let status = fields::lookup(
        fields::text(payload, "/djzt")?,
        "/djzt",
        status,
        STATUSES,
        &mut mention.flags,
    );
    let founded = fields::filled_text(payload, "/clrq")?;
    let capital = fields::filled_text(payload, "/zczb")?;

    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/ztmc")?);
    if let Some(status) = status {
        mention.values.push(RawValue::text(Attribute::Status, "/djzt", status));
    }
    if let Some(entity_type) = entity_type {
        mention
            .values
            .push(RawValue::text(Attribute::OrganisationType, "/ztlx", entity_type));
    }
    if let Some(founded) = founded {
        let date = RawDate::Text(founded.to_owned());
        mention.values.push(RawValue::date(Attribute::Founded, "/clrq", date));
    }
    if let Some(capital) = capital {
        mention
            .values
            .push(RawValue::text(Attribute::RegisteredCapital, "/zczb", capital));
    }
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Address, "/zs")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, "/lxdh")?);

    let mut facts = Vec::new();
    if let Some(entity_type) = entity_type {
        facts.push(("entity_type", RawFact::Code(entity_type)));
    }
    if let Some(status) = status {
        facts.push(("status", RawFact::Code(status)));
    }
    if let Some(capital) = capital {
        facts.push(("registered_capital", RawFact::Amount(capital.to_owned())));
    }
    if let Some(founded) = founded {
        facts.push(("founded", RawFact::Date(RawDate::Text(founded.to_owned()))));
    }
    facts.extend(fields::typed_fact(payload, "registry", "/djjg", RawFact::Text)?);
    facts.extend(fields::typed_fact(payload, "business_scope", "/jyfw", RawFact::Text)?);
    mention.facts.push(RawFactSet {
        topic: "market_registration",
        fields: facts,
    });
    Ok(mention)
}

fn legal_representative(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(LEGAL_REPRESENTATIVE, EntityKind::Person);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/fddbr")?);
    let (document, flag) =
        fields::coded_document(payload, "/fddbr_zjhm", "/fddbr_zjlx", document_family, DOCUMENT_TYPES)?;
    mention.documents.extend(document);
    mention.flags.extend(flag);
    Ok(mention)
}
