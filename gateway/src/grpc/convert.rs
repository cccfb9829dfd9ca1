//! Wire types ⇄ domain types.

use tongban_proto::v1 as pb;

use crate::record::{Envelope, ErrorScope, Outcome, RecordError, RecordResult};

impl From<pb::Envelope> for Envelope {
    fn from(e: pb::Envelope) -> Self {
        Envelope {
            record_type: e.record_type,
            source_id: e.source_id,
            source_version: e.source_version,
            deleted: e.deleted,
            payload: e.payload,
        }
    }
}

impl From<Outcome> for pb::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Accepted => pb::Outcome::Accepted,
            Outcome::Unchanged => pb::Outcome::Unchanged,
            Outcome::Stale => pb::Outcome::Stale,
            Outcome::Rejected => pb::Outcome::Rejected,
        }
    }
}

impl From<RecordError> for pb::RecordError {
    fn from(e: RecordError) -> Self {
        let scope = match e.scope {
            ErrorScope::Payload => pb::ErrorScope::Payload,
            ErrorScope::Envelope => pb::ErrorScope::Envelope,
        };
        pb::RecordError {
            scope: scope.into(),
            pointer: e.pointer,
            message: e.message,
            code: e.code,
        }
    }
}

impl From<RecordResult> for pb::RecordResult {
    fn from(r: RecordResult) -> Self {
        pb::RecordResult {
            record_type: r.record_type,
            source_id: r.source_id,
            source_version: r.source_version,
            outcome: pb::Outcome::from(r.outcome).into(),
            current_version: r.current_version,
            errors: r.errors.into_iter().map(Into::into).collect(),
            quarantine_id: r.quarantine_id.unwrap_or_default(),
            mentions: r
                .resolutions
                .into_iter()
                .map(|m| pb::MentionResolution {
                    role: m.slot.role.as_str().to_owned(),
                    index: m.slot.index,
                    unified_id: m.unified_id,
                    matched_existing: m.matched_existing,
                    resolved_by: m.resolved_by.to_owned(),
                })
                .collect(),
            quality_flags: r
                .quality_flags
                .into_iter()
                .map(|f| pb::QualityFlag {
                    code: f.code.as_str().to_owned(),
                    pointer: f.pointer,
                    message: f.message,
                })
                .collect(),
        }
    }
}

/// A response with its results and their counts.
pub fn push_response(batch_id: String, results: Vec<RecordResult>) -> pb::PushResponse {
    let mut counts = pb::OutcomeCounts::default();
    for r in &results {
        match r.outcome {
            Outcome::Accepted => counts.accepted += 1,
            Outcome::Unchanged => counts.unchanged += 1,
            Outcome::Stale => counts.stale += 1,
            Outcome::Rejected => counts.rejected += 1,
        }
    }
    pb::PushResponse {
        batch_id,
        results: results.into_iter().map(Into::into).collect(),
        counts: Some(counts),
    }
}

fn kind_to_pb(kind: tongban_adapters::model::EntityKind) -> pb::EntityKind {
    match kind {
        tongban_adapters::model::EntityKind::Person => pb::EntityKind::Person,
        tongban_adapters::model::EntityKind::Organisation => pb::EntityKind::Organisation,
    }
}

fn sources_to_pb(sources: &[crate::unified::MentionRef]) -> Vec<pb::MentionRef> {
    sources
        .iter()
        .map(|s| pb::MentionRef {
            record_type: s.record_type.clone(),
            source_id: s.source_id.clone(),
            role: s.role.clone(),
            index: s.index,
        })
        .collect()
}

/// The record as JSON for the wire; a merged-away entity carries none.
fn record_json(record: &crate::unified::UnifiedRecord) -> String {
    if record.merged_into.is_some() {
        return String::new();
    }
    // Serialising plain data cannot fail; an empty record would be noticed by consumers.
    serde_json::to_string(record).unwrap_or_default()
}

pub fn change_to_pb(change: crate::unified::Change) -> pb::Change {
    let record = change.record;
    pb::Change {
        cursor: change.position.to_string(),
        unified_id: record.unified_id.clone(),
        kind: kind_to_pb(record.kind).into(),
        version: record.version,
        merged_into: record.merged_into.clone().unwrap_or_default(),
        sources: sources_to_pb(&record.sources),
        record: record_json(&record),
    }
}

pub fn lookup_response(found: crate::registry::Found) -> pb::LookupResponse {
    let record = found.record;
    pb::LookupResponse {
        unified_id: record.unified_id.clone(),
        kind: kind_to_pb(record.kind).into(),
        version: record.version,
        redirected_from: found.redirected_from.unwrap_or_default(),
        sources: sources_to_pb(&record.sources),
        record: record_json(&record),
    }
}
