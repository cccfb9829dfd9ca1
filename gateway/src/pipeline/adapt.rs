//! The adapt and normalise stages: a valid record's payload becomes the mentions,
//! facts and relations it contributes, through its department's adapter and the
//! normalisers of `tongban_adapters`.

use serde_json::Value;
use tongban_adapters::{normalise, RecordType};

use crate::record::{RecordError, Rejection, SourceRecord, Submission};
use crate::unified::Contribution;

/// Adapts one valid record. A deleted record contributes nothing. An adapter that
/// cannot read a record its schema let through rejects it (quarantined, with the
/// pointer): the schema and the adapter disagree, which is a bug to report, and
/// guessing would be worse.
pub fn adapt(mut record: SourceRecord, payload: &Value) -> Submission {
    let Ok(record_type) = record.record_type.parse::<RecordType>() else {
        // Validation refuses unknown record types; nothing to contribute.
        return Submission::Valid(record);
    };
    if record.deleted {
        record.contribution = Some(Contribution::withdrawn(record_type));
        return Submission::Valid(record);
    }
    match tongban_adapters::read(record_type, payload) {
        Ok(reading) => {
            record.contribution = Some(Contribution {
                record_type,
                mentions: reading.mentions.iter().map(normalise::mention).collect(),
                relations: reading.relations,
            });
            Submission::Valid(record)
        }
        Err(error) => {
            let errors = vec![RecordError::payload(
                error.pointer,
                "adapter.unreadable",
                format!("the {record_type} adapter cannot read this record: {}", error.message),
            )];
            Submission::Rejected(Rejection {
                envelope: record.envelope(),
                errors,
            })
        }
    }
}
