//! The adapt and normalise stages: a valid record's payload becomes the mentions,
//! facts and relations it contributes, through its department's adapter and the
//! normalisers of `tongban_adapters`.

use serde_json::Value;
use tongban_adapters::model::ReadError;
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
    match contribution(record_type, payload, record.deleted) {
        Ok(contribution) => {
            record.contribution = Some(contribution);
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

/// What one record contributes, through its adapter and the normalisers; a deleted
/// record contributes nothing. Also used to read stored records again.
pub fn contribution(record_type: RecordType, payload: &Value, deleted: bool) -> Result<Contribution, ReadError> {
    if deleted {
        return Ok(Contribution::withdrawn(record_type));
    }
    let reading = tongban_adapters::read(record_type, payload)?;
    Ok(Contribution {
        record_type,
        mentions: reading.mentions.iter().map(normalise::mention).collect(),
        relations: reading.relations,
    })
}
