//! The `tongban.v1.Operations` service: operational statistics for `ops`. Who may call
//! and what is counted are [`Statistics`]'s; this file only converts.

use std::sync::Arc;

use tongban_proto::v1 as pb;
use tongban_proto::v1::operations_server::Operations;
use tonic::{Request, Response, Status};

use crate::statistics::{RecordCounts, Report, Statistics, StatisticsQuery, WindowStats, RESOLVED_BY};
use crate::store::Store;

pub struct OperationsService<S> {
    statistics: Arc<Statistics<S>>,
}

impl<S: Store> OperationsService<S> {
    pub fn new(statistics: Arc<Statistics<S>>) -> Self {
        OperationsService { statistics }
    }
}

#[tonic::async_trait]
impl<S: Store> Operations for OperationsService<S> {
    async fn statistics(
        &self,
        request: Request<pb::StatisticsRequest>,
    ) -> Result<Response<pb::StatisticsResponse>, Status> {
        let identity = super::caller(&request)?;
        let request = request.into_inner();
        let query = StatisticsQuery {
            since: (request.since != 0).then_some(request.since),
            until: (request.until != 0).then_some(request.until),
            window_minutes: (request.window_minutes != 0).then_some(request.window_minutes),
            department: Some(request.department).filter(|d| !d.trim().is_empty()),
        };
        let report = self.statistics.report(&identity, &query).await?;
        Ok(Response::new(statistics_response(report)))
    }
}

fn statistics_response(report: Report) -> pb::StatisticsResponse {
    pb::StatisticsResponse {
        since: report.since,
        until: report.until,
        window_minutes: report.window_minutes,
        windows: report.windows.iter().map(traffic_window).collect(),
        totals: report.totals.iter().map(traffic_window).collect(),
    }
}

fn traffic_window(stats: &WindowStats) -> pb::TrafficWindow {
    pb::TrafficWindow {
        window_start: stats.window_start,
        department: stats.department.clone(),
        records: Some(record_counts(&stats.records)),
        record_types: stats
            .record_types
            .iter()
            .map(|(record_type, counts)| pb::RecordTypeCounts {
                record_type: record_type.clone(),
                records: Some(record_counts(counts)),
            })
            .collect(),
        batches: stats.batches,
        batches_refused: stats.batches_refused,
        latency_p50_ms: stats.latency.percentile_ms(0.50),
        latency_p90_ms: stats.latency.percentile_ms(0.90),
        latency_p99_ms: stats.latency.percentile_ms(0.99),
        lookups: stats.lookups,
        repeated_collections_avoided: stats.collections_avoided,
    }
}

fn record_counts(counts: &RecordCounts) -> pb::RecordCounts {
    let resolved = |by: &str| {
        RESOLVED_BY
            .iter()
            .position(|b| *b == by)
            .map_or(0, |i| counts.resolved[i])
    };
    pb::RecordCounts {
        received: counts.received(),
        accepted: counts.accepted,
        unchanged: counts.unchanged,
        stale: counts.stale,
        rejected: counts.rejected,
        resolutions: Some(pb::ResolutionCounts {
            key: resolved("key"),
            previous: resolved("previous"),
            matched: resolved("matched"),
            founded: resolved("founded"),
            queued: resolved("queued"),
            steward: resolved("steward"),
            existing: counts.existing,
        }),
    }
}
