//! Validation: the first stage of the pipeline. Checks the envelope and the payload's
//! structure against the record type's JSON Schema, and turns every defect into a
//! [`RecordError`] a department's engineer can act on.
//!
//! Semantic defects (wrong check digits, unknown codes) are not looked for here: the
//! schemas tolerate them, and later stages flag them.

use std::collections::HashMap;

use serde_json::Value;
use tongban_adapters::RecordType;

use crate::record::{Envelope, RecordError, Rejection, SourceRecord, Submission};
use crate::schemas::schema_text;

/// At most this many schema errors are reported per record: enough to fix a record,
/// not so many that one broken export floods the answer.
const MAX_ERRORS_PER_RECORD: usize = 20;
/// Longest `source_id` accepted; every department's key is far shorter.
const MAX_SOURCE_ID_CHARS: usize = 128;

/// A schema that failed to compile: a bug in `schemas/`, found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("schema of {record_type} is invalid: {message}")]
pub struct SchemaError {
    pub record_type: RecordType,
    pub message: String,
}

/// The compiled schemas of every record type, built once at start-up.
pub struct Validator {
    schemas: HashMap<RecordType, CompiledSchema>,
    max_payload_bytes: usize,
}

struct CompiledSchema {
    validator: jsonschema::Validator,
    /// The schema document, to look up the `description` of a failing property.
    document: Value,
}

impl Validator {
    pub fn new(max_payload_bytes: usize) -> Result<Self, SchemaError> {
        let mut schemas = HashMap::new();
        for record_type in RecordType::ALL {
            let fail = |message: String| SchemaError { record_type, message };
            let document: Value = serde_json::from_str(schema_text(record_type)).map_err(|e| fail(e.to_string()))?;
            let validator = jsonschema::draft202012::new(&document).map_err(|e| fail(e.to_string()))?;
            schemas.insert(record_type, CompiledSchema { validator, document });
        }
        Ok(Validator {
            schemas,
            max_payload_bytes,
        })
    }

    /// Checks one envelope whose record type the caller is known to own (or which is
    /// unknown). Never fails: a defective record becomes a [`Rejection`].
    pub fn check(&self, envelope: Envelope) -> Submission {
        match self.check_parsed(envelope) {
            Ok((record, _)) => Submission::Valid(record),
            Err(rejection) => Submission::Rejected(rejection),
        }
    }

    /// As [`Validator::check`], handing back the parsed payload of a valid record for
    /// the next stage; its `contribution` is left for that stage to fill.
    pub fn check_parsed(&self, envelope: Envelope) -> Result<(SourceRecord, Value), Rejection> {
        match self.find_errors(&envelope) {
            Ok((canonical_payload, payload)) => Ok((
                SourceRecord {
                    record_type: envelope.record_type,
                    source_id: envelope.source_id,
                    source_version: envelope.source_version,
                    deleted: envelope.deleted,
                    payload: canonical_payload,
                    contribution: None,
                },
                payload,
            )),
            Err(errors) => Err(Rejection { envelope, errors }),
        }
    }

    /// The canonical payload text and the parsed payload of a valid record, or every
    /// error found.
    fn find_errors(&self, envelope: &Envelope) -> Result<(String, Value), Vec<RecordError>> {
        let mut errors = envelope_errors(envelope);
        let record_type = envelope.record_type.parse::<RecordType>().ok();
        if envelope.payload.len() > self.max_payload_bytes {
            errors.push(RecordError::payload(
                "",
                "payload.too_large",
                format!(
                    "the payload is {} bytes; the limit is {} bytes per record",
                    envelope.payload.len(),
                    self.max_payload_bytes
                ),
            ));
            return Err(errors);
        }
        let text = match std::str::from_utf8(&envelope.payload) {
            Ok(text) => text,
            Err(e) => {
                errors.push(RecordError::payload(
                    "",
                    "payload.not_utf8",
                    format!(
                        "the payload is not UTF-8 text: the bytes from offset {} are not a UTF-8 \
                         sequence; send the JSON text in UTF-8 (convert a GBK or GB18030 export first)",
                        e.valid_up_to()
                    ),
                ));
                return Err(errors);
            }
        };
        let payload: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                errors.push(RecordError::payload(
                    "",
                    "payload.not_json",
                    format!(
                        "the payload is not valid JSON (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    ),
                ));
                return Err(errors);
            }
        };
        if let Some(schema) = record_type.and_then(|t| self.schemas.get(&t)) {
            errors.extend(schema.errors(&payload));
        }
        if errors.is_empty() {
            Ok((canonical_json(&payload), payload))
        } else {
            Err(errors)
        }
    }
}

fn envelope_errors(envelope: &Envelope) -> Vec<RecordError> {
    let mut errors = Vec::new();
    if envelope.record_type.parse::<RecordType>().is_err() {
        let known: Vec<&str> = RecordType::ALL.iter().map(|t| t.as_str()).collect();
        errors.push(RecordError::envelope(
            "record_type",
            "envelope.unknown_record_type",
            format!(
                "unknown record type {:?}; known types are {}",
                envelope.record_type,
                known.join(", ")
            ),
        ));
    }
    let id = &envelope.source_id;
    if id.trim().is_empty() {
        errors.push(RecordError::envelope(
            "source_id",
            "envelope.source_id",
            "source_id is empty",
        ));
    } else if id.chars().count() > MAX_SOURCE_ID_CHARS || id.chars().any(char::is_control) {
        errors.push(RecordError::envelope(
            "source_id",
            "envelope.source_id",
            format!("source_id must be at most {MAX_SOURCE_ID_CHARS} characters without control characters"),
        ));
    }
    if envelope.source_version < 0 {
        errors.push(RecordError::envelope(
            "source_version",
            "envelope.source_version",
            format!("source_version must not be negative (got {})", envelope.source_version),
        ));
    }
    errors
}

impl CompiledSchema {
    fn errors(&self, payload: &Value) -> Vec<RecordError> {
        self.validator
            .iter_errors(payload)
            .take(MAX_ERRORS_PER_RECORD)
            .map(|error| {
                let pointer = error.instance_path().as_str().to_owned();
                let keyword = error.kind().keyword().to_owned();
                // Masked: the message names the field and the rule, never the value (a
                // name or an identity number would otherwise reach logs and quarantine
                // listings through it).
                let masked = error.masked_with("the value");
                let message = match self.expectation(error.schema_path().as_str(), error.kind()) {
                    Some(expected) => format!("{masked}; expected {expected}"),
                    None => masked.to_string(),
                };
                RecordError::payload(pointer, &format!("schema.{keyword}"), message)
            })
            .collect()
    }

    /// The `description` of the schema of the value an error is about: for a missing
    /// property, the property's own schema; otherwise the subschema that holds the
    /// failing keyword.
    fn expectation(&self, schema_path: &str, kind: &jsonschema::error::ValidationErrorKind) -> Option<String> {
        let holder = schema_path.rsplit_once('/').map(|(parent, _)| parent).unwrap_or("");
        let subschema = match kind {
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let name = property.as_str()?;
                format!("{holder}/properties/{}", escape_pointer_token(name))
            }
            _ => holder.to_owned(),
        };
        let description = self.document.pointer(&subschema)?.get("description")?.as_str()?;
        Some(description.to_owned())
    }
}

fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Canonical JSON text: object keys sorted, no insignificant white space, numbers exactly
/// as written (serde_json's `arbitrary_precision`: a department's amounts and ids are
/// never rounded through a float). A replay that differs only in formatting or key
/// order is the same content.
pub fn canonical_json(value: &Value) -> String {
    // serde_json's default map is ordered by key, so its compact form is canonical; the
    // unit tests below fail should a dependency switch on `preserve_order` or drop
    // `arbitrary_precision`.
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(record_type: &str, payload: &str) -> Envelope {
        Envelope {
            record_type: record_type.to_owned(),
            source_id: "1".to_owned(),
            source_version: 1,
            deleted: false,
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn rejection(submission: Submission) -> Vec<RecordError> {
        match submission {
            Submission::Rejected(r) => r.errors,
            Submission::Valid(v) => panic!("expected a rejection, got {v:?}"),
        }
    }

    #[test]
    fn canonical_form_keeps_every_digit() {
        let text = r#"{"mj": 12345678901234567890123.45, "n": 0.1000, "i": 18446744073709551616}"#;
        let value: Value = serde_json::from_str(text).expect("json");
        assert_eq!(
            canonical_json(&value),
            r#"{"i":18446744073709551616,"mj":12345678901234567890123.45,"n":0.1000}"#
        );
    }

    #[test]
    fn canonical_form_sorts_keys() {
        let value: Value = serde_json::from_str(r#"{ "b": 1, "a": {"d": 2, "c": [3]} }"#).expect("json");
        assert_eq!(canonical_json(&value), r#"{"a":{"c":[3],"d":2},"b":1}"#);
    }

    #[test]
    fn every_schema_compiles() {
        Validator::new(1024).expect("schemas compile");
    }

    #[test]
    fn envelope_defects_point_at_envelope_fields() {
        let validator = Validator::new(1024).expect("schemas");
        let mut bad = envelope("tax.payer", "{}");
        bad.source_id = " ".to_owned();
        bad.source_version = -1;
        let errors = rejection(validator.check(bad));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/record_type", "/source_id", "/source_version"]);
        assert!(
            errors[0].message.contains("tax.taxpayer"),
            "lists the known types: {}",
            errors[0].message
        );
    }

    #[test]
    fn payload_that_is_not_json_or_too_large_is_rejected() {
        let validator = Validator::new(16).expect("schemas");
        let errors = rejection(validator.check(envelope("tax.taxpayer", r#"{"djxh": "#)));
        assert_eq!(errors[0].code, "payload.not_json");
        let errors = rejection(validator.check(envelope("tax.taxpayer", &format!("{{\"x\":\"{}\"}}", "a".repeat(20)))));
        assert_eq!(errors[0].code, "payload.too_large");
    }

    #[test]
    fn payload_that_is_not_utf8_is_rejected_with_the_offset() {
        let validator = Validator::new(1024).expect("schemas");
        let mut gbk = envelope("tax.taxpayer", "");
        // "{"nsrmc":"王伟"}" as a GBK export writes it.
        gbk.payload = b"{\"nsrmc\":\"\xcd\xf5\xce\xb0\"}".to_vec();
        let errors = rejection(validator.check(gbk));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].code, "payload.not_utf8");
        assert_eq!(errors[0].pointer, "");
        assert!(errors[0].message.contains("offset 10"), "{}", errors[0].message);
    }

    #[test]
    fn a_missing_property_is_explained_with_its_description() {
        let validator = Validator::new(1 << 20).expect("schemas");
        let errors = rejection(validator.check(envelope("tax.taxpayer", "{}")));
        let djxh = errors
            .iter()
            .find(|e| e.message.contains("djxh"))
            .expect("djxh reported missing");
        assert_eq!(djxh.pointer, "");
        assert_eq!(djxh.code, "schema.required");
        assert!(
            djxh.message.contains("expected"),
            "message explains the field: {}",
            djxh.message
        );
    }

    fn synthetic(record: &tongban_adapters::synth::SyntheticRecord) -> Envelope {
        Envelope {
            record_type: record.record_type.as_str().to_owned(),
            source_id: record.source_id.clone(),
            source_version: record.source_version,
            deleted: record.deleted,
            payload: record.payload.to_string().into_bytes(),
        }
    }

    /// The generator and the schemas describe the same departments: everything the
    /// synthetic city exports passes, and each deliberately broken record fails exactly
    /// where the generator says it broke it.
    #[test]
    fn the_synthetic_city_fits_the_schemas() {
        use tongban_adapters::synth::{self, CityConfig};
        let validator = Validator::new(1 << 20).expect("schemas");
        let city = synth::city(&CityConfig { people: 400, seed: 7 });
        let again = synth::replays_and_stale(&city, 7, 200);
        for record in city.iter().chain(&again) {
            if let Submission::Rejected(r) = validator.check(synthetic(record)) {
                panic!("{} {} rejected: {:?}", record.record_type, record.source_id, r.errors);
            }
        }
        let defective = synth::defective(7);
        let types: std::collections::HashSet<_> = defective.iter().map(|(r, _)| r.record_type).collect();
        assert_eq!(types.len(), RecordType::ALL.len(), "broken records of every type");
        for (record, pointer) in defective {
            let errors = rejection(validator.check(synthetic(&record)));
            assert!(
                errors.iter().any(|e| e.pointer == pointer),
                "{} broken at {pointer:?}, errors at {:?}",
                record.record_type,
                errors.iter().map(|e| &e.pointer).collect::<Vec<_>>()
            );
        }
    }
}
