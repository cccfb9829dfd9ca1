//! The hub's own view of what a department sends and what it gets back: the domain
//! types between the gRPC boundary, the pipeline and the store.

use std::fmt;

use tongban_adapters::model::QualityFlag;

use crate::unified::{Contribution, Resolution};

/// An envelope as received, before validation. The payload is the bytes exactly as
/// the department sent them (JSON text, if it is UTF-8); they are kept verbatim in
/// quarantine if rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    pub deleted: bool,
    pub payload: Vec<u8>,
}

/// A record that passed validation and is ready to be kept as one version of a
/// source record.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    pub deleted: bool,
    /// Canonical JSON text of the payload (keys sorted, no insignificant white
    /// space), so that a replay of the same content compares equal whatever its
    /// formatting.
    pub payload: String,
    /// What the record says about persons and organisations, adapted and normalised;
    /// resolved if this version becomes current. `None` contributes nothing, like a
    /// deleted record.
    pub contribution: Option<Contribution>,
}

impl SourceRecord {
    /// The envelope the record arrived in (payload in canonical form), for quarantining
    /// a record refused after validation.
    pub fn envelope(&self) -> Envelope {
        Envelope {
            record_type: self.record_type.clone(),
            source_id: self.source_id.clone(),
            source_version: self.source_version,
            deleted: self.deleted,
            payload: self.payload.as_bytes().to_vec(),
        }
    }
}

/// A record that failed validation, on its way to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub envelope: Envelope,
    pub errors: Vec<RecordError>,
}

/// What a batch item is once validated: a record to keep, or a rejection to quarantine.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    Valid(SourceRecord),
    Rejected(Rejection),
}

/// Where a [`RecordError`] points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorScope {
    /// A JSON Pointer into the payload.
    Payload,
    /// An envelope field, e.g. `/source_version`.
    Envelope,
}

/// One reason for a rejection, worded for a department's engineer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordError {
    pub scope: ErrorScope,
    /// RFC 6901 JSON Pointer; `""` is the whole payload (or envelope).
    pub pointer: String,
    pub message: String,
    /// Stable machine-readable kind, e.g. `schema.required`.
    pub code: String,
}

impl RecordError {
    pub fn payload(pointer: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        RecordError {
            scope: ErrorScope::Payload,
            pointer: pointer.into(),
            message: message.into(),
            code: code.to_owned(),
        }
    }

    pub fn envelope(field: &str, code: &str, message: impl Into<String>) -> Self {
        RecordError {
            scope: ErrorScope::Envelope,
            pointer: format!("/{field}"),
            message: message.into(),
            code: code.to_owned(),
        }
    }

    /// The same version of a record arrived with different content: the department's
    /// system changed a record without raising its version. The first copy stands.
    pub fn version_conflict(version: i64) -> Self {
        RecordError::envelope(
            "source_version",
            "envelope.version_conflict",
            format!(
                "version {version} of this record is already held with different content; \
                 a changed record must carry a higher source_version"
            ),
        )
    }
}

/// What the hub did with one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Unchanged,
    Stale,
    Rejected,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Accepted, Outcome::Unchanged, Outcome::Stale, Outcome::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Unchanged => "unchanged",
            Outcome::Stale => "stale",
            Outcome::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer for one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    pub outcome: Outcome,
    /// The version held as current after this batch; `None` when none is held.
    pub current_version: Option<i64>,
    pub errors: Vec<RecordError>,
    /// Set for rejections: the quarantine entry that keeps the record.
    pub quarantine_id: Option<String>,
    /// For an accepted record: where each of its mentions resolved.
    pub resolutions: Vec<Resolution>,
    /// For an accepted record: the semantic defects found in it.
    pub quality_flags: Vec<QualityFlag>,
}
