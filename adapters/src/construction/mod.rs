//! Housing and urban-rural construction (住房和城乡建设): the project approval system,
//! record type `construction.permit`. Every permit names three units and one person.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;
//! [`read`] reads them back into the developer, builder and supervisor (units) and
//! the project manager (a person), each with the permit as a fact.
//!
//! Text is kept as typed; a text field that is empty, white space or missing says
//! nothing, and a unit or manager with neither name nor number is no mention. A
//! [`ReadError`] comes only from what the schema rules out and a reading cannot
//! survive: a value of the wrong JSON type, a missing object or number.

pub(crate) mod synth;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::fields;
use crate::model::{
    Attribute, DocumentFamily, EntityKind, RawDate, RawDocument, RawFact, RawFactSet, RawMention, RawValue, ReadError,
    Reading, Relation, RelationKind, Role, Slot,
};

/// The register the project manager's 注册证书号 belongs to.
const CONSTRUCTOR_CERTIFICATE: &str = "construction.constructor_certificate";

/// The three units a permit names, each `{mc, tyshxydm}`.
const UNITS: [(Role, &str); 3] = [
    (Role::Developer, "/jsdw"),
    (Role::Builder, "/sgdw"),
    (Role::Supervisor, "/jldw"),
];

/// Reads one native record into the four mentions of a permit.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    let permit = permit_facts(payload)?;
    let mut reading = Reading::default();
    for (role, object) in UNITS {
        if let Some(unit) = unit(payload, role, object)? {
            reading.mentions.push(unit);
        }
    }
    if let Some(manager) = project_manager(payload)? {
        reading.mentions.push(manager);
    }
    for mention in &mut reading.mentions {
        let mut facts = permit.clone();
        facts.push(("role", RawFact::Code(mention.slot.role.as_str())));
        mention.facts.push(RawFactSet {
            topic: "construction_permit",
            fields: facts,
        });
    }
    let manager = Slot::new(Role::ProjectManager, 0);
    let builder = Slot::new(Role::Builder, 0);
    let present = |slot: Slot| reading.mentions.iter().any(|m| m.slot == slot);
    if present(manager) && present(builder) {
        reading.relations.push(Relation {
            kind: RelationKind::ManagesProject,
            from: manager,
            to: Some(builder),
            detail: None,
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
        if let Some(text) = fields::filled_text(payload, pointer)? {
            facts.push((name, RawFact::Text(text.to_owned())));
        }
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

/// One of the three units, or `None` when it has neither name nor code.
fn unit(payload: &Value, role: Role, object: &str) -> Result<Option<RawMention>, ReadError> {
    fields::object(payload, object)?;
    let name_at = format!("{object}/mc");
    let code_at = format!("{object}/tyshxydm");
    let name = fields::filled_text(payload, &name_at)?;
    let code = fields::filled_text(payload, &code_at)?;
    if name.is_none() && code.is_none() {
        return Ok(None);
    }
    let mut mention = RawMention::new(Slot::new(role, 0), EntityKind::Organisation);
    if let Some(code) = code {
        mention.documents.push(RawDocument {
            family: Some(DocumentFamily::UnifiedSocialCreditCode),
            code: String::new(),
            register: None,
            pointer: code_at,
            number: code.to_owned(),
        });
    }
    if let Some(name) = name {
        mention.values.push(RawValue::text(Attribute::Name, name_at, name));
    }
    Ok(Some(mention))
}

/// The project manager (`xmjl`), or `None` when the record leaves them empty.
fn project_manager(payload: &Value) -> Result<Option<RawMention>, ReadError> {
    fields::object(payload, "/xmjl")?;
    let name = fields::filled_text(payload, "/xmjl/xm")?;
    let mut documents = Vec::new();
    for (pointer, family, register) in [
        ("/xmjl/zjhm", DocumentFamily::ResidentIdentityCard, None),
        (
            "/xmjl/zczsh",
            DocumentFamily::DepartmentNumber,
            Some(CONSTRUCTOR_CERTIFICATE),
        ),
    ] {
        if let Some(number) = fields::filled_text(payload, pointer)? {
            documents.push(RawDocument {
                family: Some(family),
                code: String::new(),
                register,
                pointer: pointer.to_owned(),
                number: number.to_owned(),
            });
        }
    }
    if name.is_none() && documents.is_empty() {
        return Ok(None);
    }
    let mut mention = RawMention::new(Slot::new(Role::ProjectManager, 0), EntityKind::Person);
    mention.documents = documents;
    if let Some(name) = name {
        mention.values.push(RawValue::text(Attribute::Name, "/xmjl/xm", name));
    }
    if let Some(phone) = fields::filled_text(payload, "/xmjl/lxdh")? {
        mention
            .values
            .push(RawValue::text(Attribute::Phone, "/xmjl/lxdh", phone));
    }
    Ok(Some(mention))
}
