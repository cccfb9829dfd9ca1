//! Housing and urban-rural construction (住房和城乡建设): the project approval system,
//! record type `construction.permit`. Every permit names three units and one person.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;
//! [`read`] reads them back into the developer, builder and supervisor (units) and
//! the project manager (a person), each with the permit as a fact.
//!
//! Text is kept as typed; a text field that is empty or white space says nothing, and
//! a unit or manager with neither name nor number is no mention. A [`ReadError`]
//! comes only from what the schema rules out: a required field missing, a value of
//! the wrong JSON type.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawDate, RawFact, RawFactSet, RawMention, ReadError, Reading, RelationKind,
    Role, Slot,
};

/// The register the project manager's 注册证书号 belongs to.
const CONSTRUCTOR_CERTIFICATE: &str = "construction.constructor_certificate";

const BUILDER: Slot = Slot::new(Role::Builder, 0);
const PROJECT_MANAGER: Slot = Slot::new(Role::ProjectManager, 0);

/// The three units a permit names, each `{mc, tyshxydm}`.
const UNITS: [(Role, &str); 3] = [
    (Role::Developer, "/jsdw"),
    (Role::Builder, "/sgdw"),
    (Role::Supervisor, "/jldw"),
];

/// Reads one native record into the four mentions of a permit.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    for (_, object) in UNITS {
        fields::object(payload, object)?;
    }
    fields::object(payload, "/xmjl")?;
    fields::require_texts(
        payload,
        &[
            "/sgxkzbh",
            "/xmmc",
            "/jsdw/mc",
            "/sgdw/mc",
            "/jldw/mc",
            "/xmjl/xm",
            "/xmjl/zjhm",
        ],
    )?;
    let permit = permit_facts(payload)?;
    let mut mentions = Vec::new();
    for (role, object) in UNITS {
        mentions.push(unit(payload, role, object)?);
    }
    mentions.push(project_manager(payload)?);
    let manages = fields::relation(RelationKind::ManagesProject, PROJECT_MANAGER, BUILDER);
    let mut reading = fields::reading(mentions, [manages]);
    for mention in &mut reading.mentions {
        let mut facts = permit.clone();
        facts.push(("role", RawFact::Code(mention.slot.role.as_str())));
        mention.facts.push(RawFactSet {
            topic: "construction_permit",
            fields: facts,
        });
    }
    Ok(reading)
}

/// The facts of the permit every mention shares (each adds its own role).
fn permit_facts(payload: &Value) -> Result<Vec<(&'static str, RawFact)>, ReadError> {
    let mut facts = Vec::new();
    for (name, pointer) in [
        ("permit", "/sgxkzbh"),
        ("project", "/xmmc"),
        ("project_address", "/xmdz"),
    ] {
        facts.extend(fields::typed_fact(payload, name, pointer, RawFact::Text)?);
    }
    facts.push((
        "contract_value_wan_yuan",
        RawFact::Number(fields::number(payload, "/htje")?),
    ));
    facts.push(("floor_area", RawFact::Number(fields::number(payload, "/jzmj")?)));
    facts.push((
        "issued",
        RawFact::Date(RawDate::BeijingMillis(fields::integer(payload, "/fzrq")?)),
    ));
    for (name, pointer) in [("planned_start", "/jhkgrq"), ("planned_completion", "/jhjgrq")] {
        if let Some(ms) = fields::optional_integer(payload, pointer)? {
            facts.push((name, RawFact::Date(RawDate::BeijingMillis(ms))));
        }
    }
    Ok(facts)
}

/// One of the three units `{mc, tyshxydm}`.
fn unit(payload: &Value, role: Role, object: &str) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(Slot::new(role, 0), EntityKind::Organisation);
    mention.documents.extend(fields::implied_document(
        payload,
        &format!("{object}/tyshxydm"),
        DocumentFamily::UnifiedSocialCreditCode,
        None,
    )?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, &format!("{object}/mc"))?);
    Ok(mention)
}

/// The project manager (`xmjl`): a resident identity number and a constructor
/// certificate of the department's own register.
fn project_manager(payload: &Value) -> Result<RawMention, ReadError> {
    let mut mention = RawMention::new(PROJECT_MANAGER, EntityKind::Person);
    mention.documents.extend(fields::implied_document(
        payload,
        "/xmjl/zjhm",
        DocumentFamily::ResidentIdentityCard,
        None,
    )?);
    mention.documents.extend(fields::implied_document(
        payload,
        "/xmjl/zczsh",
        DocumentFamily::DepartmentNumber,
        Some(CONSTRUCTOR_CERTIFICATE),
    )?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Name, "/xmjl/xm")?);
    mention
        .values
        .extend(fields::typed_value(payload, Attribute::Phone, "/xmjl/lxdh")?);
    Ok(mention)
}
