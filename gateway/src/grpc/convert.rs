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
            quality_flags: r.quality_flags.into_iter().map(quality_flag).collect(),
        }
    }
}

/// A quality flag on the wire.
pub fn quality_flag(flag: tongban_adapters::model::QualityFlag) -> pb::QualityFlag {
    pb::QualityFlag {
        code: flag.code.as_str().to_owned(),
        pointer: flag.pointer,
        message: flag.message,
    }
}

/// A department's quality report on the wire.
pub fn quality_report_response(report: crate::quality::Report) -> pb::QualityReportResponse {
    pb::QualityReportResponse {
        counts: report
            .counts
            .counts
            .into_iter()
            .map(|count| pb::QualityCount {
                record_type: count.record_type,
                code: count.code.as_str().to_owned(),
                records: count.records,
            })
            .collect(),
        flagged_records: report.counts.records,
        records: report
            .records
            .into_iter()
            .map(|record| pb::FlaggedRecord {
                record_type: record.record_type,
                source_id: record.source_id,
                source_version: record.source_version,
                flags: record.flags.into_iter().map(quality_flag).collect(),
            })
            .collect(),
        next_after: report.next_after.unwrap_or_default(),
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
    sources.iter().map(mention_to_pb).collect()
}

/// The record as JSON for the wire; a merged-away entity carries none.
fn record_json(record: &crate::unified::UnifiedRecord) -> String {
    if record.merged_into.is_some() {
        return String::new();
    }
    // Serialising plain data cannot fail; an empty record would be noticed by consumers.
    serde_json::to_string(record).unwrap_or_default()
}

/// A change on the wire. Its record goes as the text the store holds (what
/// `record_json` would write again from it); a merged-away entity carries none.
pub fn change_to_pb(change: crate::unified::Change) -> pb::Change {
    let head = change.head;
    let record = if head.merged_into.is_some() {
        String::new()
    } else {
        change.text
    };
    pb::Change {
        cursor: change.position.to_string(),
        unified_id: head.unified_id,
        kind: kind_to_pb(head.kind).into(),
        version: head.version,
        merged_into: head.merged_into.unwrap_or_default(),
        sources: head.sources.into_iter().map(mention_into_pb).collect(),
        record,
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

// ---------------------------------------------------------------------------------------
// Stewardship

pub fn mention_to_pb(mention: &crate::unified::MentionRef) -> pb::MentionRef {
    mention_into_pb(mention.clone())
}

/// [`mention_to_pb`] for a mention the caller no longer needs: nothing copied.
fn mention_into_pb(mention: crate::unified::MentionRef) -> pb::MentionRef {
    pb::MentionRef {
        record_type: mention.record_type,
        source_id: mention.source_id,
        role: mention.role,
        index: mention.index,
    }
}

pub fn mention_from_pb(mention: pb::MentionRef) -> crate::unified::MentionRef {
    crate::unified::MentionRef {
        record_type: mention.record_type,
        source_id: mention.source_id,
        role: mention.role,
        index: mention.index,
    }
}

/// A page of the review queue; `after` is the request's, for an empty page.
pub fn reviews_response(views: Vec<crate::stewardship::ReviewView>, after: i64) -> pb::ListReviewsResponse {
    let next_after = views.last().map_or(after, |view| view.pair.id);
    let pairs = views
        .into_iter()
        .map(|view| {
            let pair = view.pair;
            pb::ReviewPair {
                id: pair.id,
                mention: Some(mention_to_pb(&pair.mention)),
                entity_id: pair.entity,
                candidate_id: pair.candidate,
                total_weight: pair.evidence.total,
                comparisons: pair
                    .evidence
                    .comparisons
                    .iter()
                    .map(|c| pb::Comparison {
                        field: c.field.as_str().to_owned(),
                        level: c.level.as_str().to_owned(),
                        weight: c.weight,
                    })
                    .collect(),
                queued_at: rfc3339(pair.queued_at),
                entity_record: view.entity.as_ref().map(record_json).unwrap_or_default(),
                candidate_record: view.candidate.as_ref().map(record_json).unwrap_or_default(),
            }
        })
        .collect();
    pb::ListReviewsResponse { pairs, next_after }
}

pub fn steward_response(outcome: crate::stewardship::StewardOutcome) -> pb::StewardResponse {
    pb::StewardResponse {
        survivor: outcome.survivor.unwrap_or_default(),
        created: outcome.created.unwrap_or_default(),
        changed: outcome.changed,
    }
}

pub fn explain_response(explanation: crate::stewardship::Explanation) -> pb::ExplainResponse {
    use crate::stewardship::placement_summary;
    pb::ExplainResponse {
        unified_id: explanation.unified_id,
        redirected_from: explanation.redirected_from.unwrap_or_default(),
        sources: explanation
            .sources
            .iter()
            .map(|(mention, placement)| pb::SourcePlacement {
                mention: Some(mention_to_pb(mention)),
                by: placement
                    .as_ref()
                    .map(crate::resolve::Placement::kind)
                    .unwrap_or_default()
                    .to_owned(),
                summary: placement
                    .as_ref()
                    .map_or_else(|| "placed before placements were kept".to_owned(), placement_summary),
                // Serialising plain data cannot fail.
                placement: placement
                    .as_ref()
                    .and_then(|p| serde_json::to_string(p).ok())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// A time as RFC 3339 in UTC with milliseconds, e.g. `2026-03-01T08:15:30.250Z`.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let millis = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    };
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = tongban_adapters::calendar::civil_from_days(days);
    let (hour, minute, second, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::rfc3339;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_709_251_199_999)),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59.999Z"
        );
    }
}
