//! What the fuzz targets share: how fuzz input becomes an envelope, a payload, a value
//! or a raw mention, and the hub's own code each of them is handed to.
//!
//! Every target asserts one thing: the hub's code returns, whatever it is given: no
//! panic (overflow checks and debug assertions are on in fuzz builds), no stack
//! overflow, no allocation over the limits `scripts/fuzz` sets. Where a function
//! promises more (a rejection always says why; canonical JSON reads back as itself),
//! the target checks that too.

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use serde_json::Value;
use tongban_adapters::model::{
    Attribute, DocumentFamily, EntityKind, RawDate, RawDocument, RawFact, RawFactSet, RawMention, RawValue, Role, Slot,
};
use tongban_adapters::{normalise, RecordType};
use tongban_gateway::config::Limits;
use tongban_gateway::pipeline::validate::canonical_json;
use tongban_gateway::pipeline::{adapt, Validator};
use tongban_gateway::record::{Envelope, Submission};

/// The validator of a hub with the default limits, built once per fuzzing process: the
/// schemas are compiled at start-up in the hub too.
fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| Validator::new(Limits::default().max_payload_bytes).expect("the schemas compile"))
}

/// The record type named by one byte of input: one of the eight, or (for the ninth
/// value) a type the hub does not know.
pub fn record_type_of(selector: u8) -> Option<RecordType> {
    RecordType::ALL
        .get(usize::from(selector) % (RecordType::ALL.len() + 1))
        .copied()
}

/// The byte that selects `record_type` in an envelope input; the seed corpus uses it.
pub fn selector_of(record_type: RecordType) -> u8 {
    RecordType::ALL
        .iter()
        .position(|&t| t == record_type)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// Envelope input: byte 0 chooses the record type, bit 0 of byte 1 says `deleted`, the
/// rest is the payload's bytes. The payload goes through exactly the pipeline's
/// validate and adapt stages (`Pipeline::push` without the store).
pub fn envelope(data: &[u8]) {
    let [selector, flags, payload @ ..] = data else {
        return;
    };
    let envelope = Envelope {
        record_type: record_type_of(*selector)
            .map_or("unknown.record_type", RecordType::as_str)
            .to_owned(),
        source_id: "1".to_owned(),
        source_version: 1,
        deleted: flags & 1 == 1,
        // The wire's `payload` is bytes: whatever they are reaches validation.
        payload: payload.to_vec(),
    };
    match validator().check_parsed(envelope) {
        Ok((record, payload)) => {
            // A stored payload is its canonical form; read again, it must be the same.
            let reread: Value = serde_json::from_str(&record.payload).expect("canonical JSON parses");
            assert_eq!(canonical_json(&reread), record.payload, "canonical JSON is stable");
            match adapt::adapt(record, &payload) {
                Submission::Valid(_) => {}
                Submission::Rejected(rejection) => assert!(!rejection.errors.is_empty(), "a rejection says why"),
            }
        }
        Err(rejection) => assert!(!rejection.errors.is_empty(), "a rejection says why"),
    }
}

/// Adapter input: any JSON text, handed to the department's adapter and the
/// normalisers (the pipeline's `contribution`) without the schema in front: an adapter
/// must answer a `ReadError` for what it cannot read, never panic.
pub fn adapter(record_type: RecordType, data: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = adapt::contribution(record_type, &payload, false);
}

/// Normaliser input: the bytes as text (lossily: every normaliser takes `&str`).
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Every document family, for the targets that choose one.
pub const FAMILIES: [DocumentFamily; 13] = [
    DocumentFamily::ResidentIdentityCard,
    DocumentFamily::Passport,
    DocumentFamily::HkMacaoTaiwanPermit,
    DocumentFamily::HkMacaoTaiwanIdentityCard,
    DocumentFamily::ForeignPermanentResidentCard,
    DocumentFamily::MilitaryOfficerCard,
    DocumentFamily::HouseholdRegister,
    DocumentFamily::UnifiedSocialCreditCode,
    DocumentFamily::OrganisationCode,
    DocumentFamily::LegacyTaxId,
    DocumentFamily::BusinessLicence,
    DocumentFamily::DepartmentNumber,
    DocumentFamily::Other,
];

/// The family named by one byte: one of them, or `None` (a code not in a table).
pub fn family_of(selector: u8) -> Option<DocumentFamily> {
    FAMILIES.get(usize::from(selector) % (FAMILIES.len() + 1)).copied()
}

/// A raw document built from fuzz input.
pub fn raw_document(u: &mut Unstructured<'_>) -> ArbitraryResult<RawDocument> {
    Ok(RawDocument {
        family: family_of(u.arbitrary()?),
        code: u.arbitrary()?,
        register: *u.choose(&[
            None,
            Some("hrss.person"),
            Some("hrss.employer"),
            Some("housingfund.employer"),
        ])?,
        pointer: "/number".to_owned(),
        number: u.arbitrary()?,
    })
}

fn raw_date(u: &mut Unstructured<'_>) -> ArbitraryResult<RawDate> {
    Ok(if u.arbitrary()? {
        RawDate::BeijingMillis(u.arbitrary()?)
    } else {
        RawDate::Text(u.arbitrary()?)
    })
}

fn raw_fact(u: &mut Unstructured<'_>, depth: u32) -> ArbitraryResult<RawFact> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => RawFact::Code("paying"),
        1 => RawFact::Text(u.arbitrary()?),
        2 => RawFact::Date(raw_date(u)?),
        3 => RawFact::Amount(u.arbitrary()?),
        4 => RawFact::Number(u.arbitrary()?),
        5 => RawFact::Bool(u.arbitrary()?),
        _ if depth < 3 => {
            let n = u.int_in_range(0..=4usize)?;
            RawFact::List((0..n).map(|_| raw_fact(u, depth + 1)).collect::<ArbitraryResult<_>>()?)
        }
        _ => RawFact::Bool(false),
    })
}

/// A raw mention built from fuzz input: any documents, any values of any attribute
/// (dates as text or as milliseconds), any facts, as an adapter could hand them over.
pub fn raw_mention(u: &mut Unstructured<'_>) -> ArbitraryResult<RawMention> {
    let kind = *u.choose(&[EntityKind::Person, EntityKind::Organisation])?;
    let mut mention = RawMention::new(Slot::new(*u.choose(&Role::ALL)?, u.arbitrary()?), kind);
    for _ in 0..u.int_in_range(0..=4u8)? {
        mention.documents.push(raw_document(u)?);
    }
    for _ in 0..u.int_in_range(0..=8u8)? {
        let attribute = *u.choose(&Attribute::ALL)?;
        mention.values.push(RawValue {
            attribute,
            text: u.arbitrary()?,
            date: if u.arbitrary()? { Some(raw_date(u)?) } else { None },
            as_of: if u.arbitrary()? { Some(raw_date(u)?) } else { None },
            pointer: format!("/{}", attribute.as_str()),
        });
    }
    for _ in 0..u.int_in_range(0..=2u8)? {
        let n = u.int_in_range(0..=4usize)?;
        let fields = (0..n)
            .map(|_| Ok((*u.choose(&["a", "b", "c", "d"])?, raw_fact(u, 0)?)))
            .collect::<ArbitraryResult<_>>()?;
        mention.facts.push(RawFactSet { topic: "fuzz", fields });
    }
    Ok(mention)
}

/// Normalises a raw mention built from `data`.
pub fn mention(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(raw) = raw_mention(&mut u) {
        let _ = normalise::mention(&raw);
    }
}
