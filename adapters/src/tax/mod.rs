//! Tax (税务): the taxpayer registration system, record type `tax.taxpayer`.
//!
//! The only module that knows the tax bureau's field names and code tables. [`synth`]
//! writes synthetic records as the bureau exports them; [`read`] reads them into a
//! `taxpayer` (a person or an organisation) and, for units and individual businesses,
//! their `legal_representative`.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawDocument, RawFact, RawFactSet, RawMention, RawValue, ReadError, Reading,
    RelationKind, Role, Slot,
};

const TAXPAYER: Slot = Slot::new(Role::Taxpayer, 0);
const LEGAL_REPRESENTATIVE: Slot = Slot::new(Role::LegalRepresentative, 0);

/// 纳税人类型 (`nsrlx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaxpayerType {
    Unit,
    IndividualBusiness,
    NaturalPerson,
}

impl TaxpayerType {
    fn from_code(code: &str) -> Option<TaxpayerType> {
        match code {
            "1" => Some(TaxpayerType::Unit),
            "2" => Some(TaxpayerType::IndividualBusiness),
            "3" => Some(TaxpayerType::NaturalPerson),
            _ => None,
        }
    }

    /// The canonical word, for the fact and for [`Attribute::OrganisationType`].
    fn word(self) -> &'static str {
        match self {
            TaxpayerType::Unit => "unit",
            TaxpayerType::IndividualBusiness => "individual_business",
            TaxpayerType::NaturalPerson => "natural_person",
        }
    }

    fn kind(self) -> EntityKind {
        match self {
            TaxpayerType::NaturalPerson => EntityKind::Person,
            TaxpayerType::Unit | TaxpayerType::IndividualBusiness => EntityKind::Organisation,
        }
    }
}

/// 证件类型代码: the bureau's document type table (`zjlx_dm`, `fddbr_zjlx_dm`).
fn document_family(code: &str) -> Option<DocumentFamily> {
    match code {
        "201" => Some(DocumentFamily::ResidentIdentityCard),
        "208" => Some(DocumentFamily::Passport),
        "210" | "213" => Some(DocumentFamily::HkMacaoTaiwanPermit),
        "233" => Some(DocumentFamily::ForeignPermanentResidentCard),
        _ => None,
    }
}

/// 纳税人状态 (`nsrzt_dm`).
fn status(code: &str) -> Option<&'static str> {
    match code {
        "03" => Some("active"),
        "05" => Some("abnormal"),
        "07" => Some("deregistered"),
        _ => None,
    }
}

const TAXPAYER_TYPES: &str = "tax taxpayer type (nsrlx)";
const DOCUMENT_TYPES: &str = "tax document type (证件类型代码)";
const STATUSES: &str = "tax taxpayer status (nsrzt_dm)";

/// The length of a unified social credit code; a unit's `nsrsbh` of any other length
/// is the legacy tax ID (the normaliser checks either form).
const USCC_LENGTH: usize = 18;

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    fields::require_texts(payload, &["/nsrsbh", "/nsrmc", "/nsrlx", "/djrq", "/nsrzt_dm"])?;
    let taxpayer = taxpayer(payload)?;
    // Only an organisation has a legal representative; one typed on a natural
    // person's registration is kept as a mention but proves no relation.
    let represents = (taxpayer.kind == EntityKind::Organisation)
        .then(|| fields::relation(RelationKind::LegalRepresentativeOf, LEGAL_REPRESENTATIVE, TAXPAYER));
    Ok(fields::reading([taxpayer, legal_representative(payload)?], represents))
}

fn taxpayer(payload: &Value) -> Result<RawMention, ReadError> {
    let mut flags = Vec::new();
    let nsrlx = fields::text(payload, "/nsrlx")?;
    let taxpayer_type = fields::lookup(nsrlx, "/nsrlx", TaxpayerType::from_code, TAXPAYER_TYPES, &mut flags);
    // With an unknown type, the document type of `nsrsbh` tells: only natural persons
    // have one.
    let has_document_type = fields::filled_text(payload, "/zjlx_dm")?.is_some();
    let kind = match taxpayer_type {
        Some(t) => t.kind(),
        None if has_document_type => EntityKind::Person,
        None => EntityKind::Organisation,
    };
    let mut mention = RawMention::new(TAXPAYER, kind);

    match kind {
        EntityKind::Person => {
            let (document, flag) =
                fields::coded_document(payload, "/nsrsbh", "/zjlx_dm", document_family, DOCUMENT_TYPES)?;
            mention.documents.extend(document);
            flags.extend(flag);
        }
        EntityKind::Organisation => mention.documents.extend(unit_code(payload)?),
    }

    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/nsrmc")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, "/lxdh")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Address, "/zcdz")?);

    let status = fields::lookup(
        fields::text(payload, "/nsrzt_dm")?,
        "/nsrzt_dm",
        status,
        STATUSES,
        &mut flags,
    );
    let industry = fields::filled_text(payload, "/hy_dm")?;
    if kind == EntityKind::Organisation {
        // A registration status and an industry describe an organisation, not a person.
        if let Some(status) = status {
            mention
                .values
                .push(RawValue::text(Attribute::Status, "/nsrzt_dm", status));
        }
        if let Some(taxpayer_type) = taxpayer_type {
            mention.values.push(RawValue::text(
                Attribute::OrganisationType,
                "/nsrlx",
                taxpayer_type.word(),
            ));
        }
        mention
            .values
            .extend(fields::typed_value(payload, Attribute::Industry, "/hy_dm")?);
    }

    let mut facts = Vec::new();
    if let Some(taxpayer_type) = taxpayer_type {
        facts.push(("taxpayer_type", RawFact::Code(taxpayer_type.word())));
    }
    if let Some(status) = status {
        facts.push(("status", RawFact::Code(status)));
    }
    facts.extend(fields::typed_fact(payload, "registered", "/djrq", fields::date_fact)?);
    facts.extend(fields::typed_fact(payload, "tax_office", "/swjg_dm", RawFact::Text)?);
    if let Some(industry) = industry {
        facts.push(("industry", RawFact::Text(industry.to_owned())));
    }
    mention.facts.push(RawFactSet {
        topic: "taxpayer_registration",
        fields: facts,
    });
    mention.flags = flags;
    Ok(mention)
}

/// A unit's or individual business's `nsrsbh`: its credit code, or the 15-character
/// tax ID of a registration older than 2015.
fn unit_code(payload: &Value) -> Result<Option<RawDocument>, ReadError> {
    let Some(number) = fields::filled_text(payload, "/nsrsbh")? else {
        return Ok(None);
    };
    let length = number.chars().filter(|c| !c.is_whitespace()).count();
    let family = if length == USCC_LENGTH {
        DocumentFamily::UnifiedSocialCreditCode
    } else {
        DocumentFamily::LegacyTaxId
    };
    Ok(Some(RawDocument {
        family: Some(family),
        code: String::new(),
        register: None,
        pointer: "/nsrsbh".to_owned(),
        number: number.to_owned(),
    }))
}

/// The legal representative (a mention only when the record names one or gives a
/// document number).
fn legal_representative(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(LEGAL_REPRESENTATIVE, EntityKind::Person);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/fddbrxm")?);
    let (document, flag) = fields::coded_document(
        payload,
        "/fddbr_zjhm",
        "/fddbr_zjlx_dm",
        document_family,
        DOCUMENT_TYPES,
    )?;
    mention.documents.extend(document);
    mention.flags.extend(flag);
    Ok(mention)
}
