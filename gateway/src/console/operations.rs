//! The operators' view: records per department over time, outcomes, rejection reasons,
//! push latency percentiles, the feed's head and lag, repeated collections avoided.
//! Counts, codes and durations only: **no personal data**, which is why `ops` may see
//! it. The page holds the totals as a table; `console.js` draws the charts from
//! `/operations/data.json` and refreshes them every few seconds.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::error::ConsoleError;
use super::page::layout;
use super::session::Viewer;
use super::Console;
use crate::statistics::{Report, StatisticsQuery, WindowStats};
use crate::store::Store;

/// The range the view covers when the page names none.
const DEFAULT_MINUTES: u32 = 60;
/// The longest range the view draws, per minute (a day).
const MAX_MINUTES: u32 = 24 * 60;

#[derive(Deserialize)]
pub struct RangeQuery {
    minutes: Option<u32>,
}

/// One department in one window (or over the whole range), as the charts read it.
#[derive(Serialize)]
struct WindowFigures {
    start: i64,
    department: String,
    accepted: u64,
    unchanged: u64,
    stale: u64,
    rejected: u64,
    batches: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    lookups: u64,
    collections_avoided: u64,
}

impl From<&WindowStats> for WindowFigures {
    fn from(w: &WindowStats) -> Self {
        WindowFigures {
            start: w.window_start,
            department: w.department.clone(),
            accepted: w.records.accepted,
            unchanged: w.records.unchanged,
            stale: w.records.stale,
            rejected: w.records.rejected,
            batches: w.batches,
            p50_ms: w.latency.percentile_ms(0.5),
            p90_ms: w.latency.percentile_ms(0.9),
            p99_ms: w.latency.percentile_ms(0.99),
            lookups: w.lookups,
            collections_avoided: w.collections_avoided,
        }
    }
}

#[derive(Serialize)]
struct RejectionFigure {
    department: String,
    code: &'static str,
    records: u64,
}

#[derive(Serialize)]
struct FeedFigures {
    /// The feed's newest position.
    head: i64,
    /// Changes the furthest-behind feed open on this replica is behind.
    lag: i64,
    /// Feeds open on this replica.
    open_feeds: usize,
}

/// What `/operations/data.json` answers.
#[derive(Serialize)]
struct OperationsData {
    since: i64,
    until: i64,
    window_minutes: u32,
    departments: Vec<String>,
    windows: Vec<WindowFigures>,
    totals: Vec<WindowFigures>,
    rejections: Vec<RejectionFigure>,
    feed: FeedFigures,
}

async fn report<S: Store + Clone>(console: &Console<S>, viewer: &Viewer, minutes: u32) -> Result<Report, ConsoleError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let minutes = minutes.clamp(1, MAX_MINUTES);
    // Until now, as `Statistics` takes an open end.
    let query = StatisticsQuery {
        since: Some(now - i64::from(minutes) * 60),
        until: None,
        window_minutes: Some(1),
        department: None,
    };
    Ok(console.statistics.report(&viewer.identity, &query).await?)
}

pub async fn data<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Query(range): Query<RangeQuery>,
) -> Result<Json<serde_json::Value>, ConsoleError> {
    let report = report(&console, &viewer, range.minutes.unwrap_or(DEFAULT_MINUTES)).await?;
    let head = console.statistics.feed_head(&viewer.identity).await?;
    let (lag, open_feeds) = crate::telemetry::metrics::metrics().feed_lag_now();
    let rejections = report
        .totals
        .iter()
        .flat_map(|t| {
            t.rejections.iter().map(|(code, n)| RejectionFigure {
                department: t.department.clone(),
                code,
                records: *n,
            })
        })
        .collect();
    let data = OperationsData {
        since: report.since,
        until: report.until,
        window_minutes: report.window_minutes,
        departments: report.totals.iter().map(|t| t.department.clone()).collect(),
        windows: report.windows.iter().map(WindowFigures::from).collect(),
        totals: report.totals.iter().map(WindowFigures::from).collect(),
        rejections,
        feed: FeedFigures { head, lag, open_feeds },
    };
    serde_json::to_value(&data)
        .map(Json)
        .map_err(|_| ConsoleError::Internal)
}

pub async fn page<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
) -> Result<Markup, ConsoleError> {
    let report = report(&console, &viewer, DEFAULT_MINUTES).await?;
    let chart = |id: &str, caption: &str| {
        html! {
            figure.chart #(id) {
                svg {}
                figcaption { (caption) }
            }
        }
    };
    Ok(layout(
        &viewer,
        "Operations",
        "operations",
        html! {
            main #operations {
                h1 { "Operations" small { " last " (DEFAULT_MINUTES) " minutes, per minute · updated " span #updated {} } }
                div.charts {
                    (chart("chart-records", "Records received per department"))
                    (chart("chart-outcomes", "Outcomes per department"))
                    (chart("chart-rejections", "Rejection reasons"))
                    (chart("chart-latency", "Push latency p50 / p90 / p99 (ms)"))
                    (chart("chart-avoided", "Repeated collections avoided"))
                    (chart("chart-feed", "Feed"))
                }
                h2 { "Totals" }
                table #totals {
                    thead { tr {
                        th { "department" } th { "accepted" } th { "unchanged" } th { "stale" } th { "rejected" }
                        th { "p50 ms" } th { "p90 ms" } th { "p99 ms" } th { "lookups" } th { "collections avoided" }
                    } }
                    tbody {
                        @for t in &report.totals {
                            @let f = WindowFigures::from(t);
                            tr data-department=(f.department) {
                                th { (f.department) }
                                td { (f.accepted) } td { (f.unchanged) } td { (f.stale) } td { (f.rejected) }
                                td { (format!("{:.1}", f.p50_ms)) } td { (format!("{:.1}", f.p90_ms)) } td { (format!("{:.1}", f.p99_ms)) }
                                td { (f.lookups) } td { (f.collections_avoided) }
                            }
                        }
                        @if report.totals.is_empty() {
                            tr { td colspan="10" { "No traffic in this range." } }
                        }
                    }
                }
            }
        },
    ))
}
