//! A department's data-quality report, as the department itself gets it from
//! `tongban quality`: counts per record type and flag code, and its flagged records by
//! source ID with each flag's code and pointer. No personal value is in it.

use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;
use tongban_adapters::Department;

use super::error::ConsoleError;
use super::page::layout;
use super::session::Viewer;
use super::Console;
use crate::quality::ReportRequest;
use crate::store::Store;

/// Flagged records per page.
const PAGE: usize = 50;

#[derive(Deserialize)]
pub struct QualityQuery {
    department: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    after: String,
}

pub async fn page<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Query(query): Query<QualityQuery>,
) -> Result<Markup, ConsoleError> {
    let department = match query.department.as_deref().map(str::trim) {
        None | Some("") => Department::ALL[0],
        Some(name) => name
            .parse::<Department>()
            .map_err(|_| ConsoleError::BadRequest(format!("unknown department {name:?}")))?,
    };
    let request = ReportRequest {
        record_type: None,
        code: Some(query.code.clone()).filter(|c| !c.trim().is_empty()),
        page_size: PAGE,
        after: Some(query.after.clone()).filter(|a| !a.trim().is_empty()),
    };
    let report = console.quality.report_on(&viewer.identity, department, request).await?;
    // The cursor holds `:` and whatever a source ID holds: encoded as a form's values.
    let next = report
        .next_after
        .as_ref()
        .map(|after| {
            let code = Some(("code", query.code.as_str())).filter(|(_, c)| !c.is_empty());
            let pairs = [("department", department.as_str()), ("after", after.as_str())];
            serde_urlencoded::to_string(pairs.into_iter().chain(code).collect::<Vec<_>>())
        })
        .transpose()
        .map_err(|_| ConsoleError::Internal)?
        .map(|query| format!("/quality?{query}"));
    Ok(layout(
        &viewer,
        "Data quality",
        "quality",
        html! {
            main #quality {
                h1 { "Data quality: " (department.as_str()) }
                form.choose method="get" action="/quality" {
                    label for="department" { "Department " }
                    select #department name="department" {
                        @for d in Department::ALL {
                            option value=(d.as_str()) selected[d == department] { (d.as_str()) }
                        }
                    }
                    button type="submit" { "Show" }
                }
                p { (report.counts.records) " current records carry a flag. The records were accepted; the flags say what to correct at the source." }
                table #flag-counts {
                    thead { tr { th { "record type" } th { "flag" } th { "records" } } }
                    tbody {
                        @for c in &report.counts.counts {
                            tr data-code=(c.code.as_str()) {
                                td { (c.record_type) }
                                td { a href={ "/quality?department=" (department.as_str()) "&code=" (c.code.as_str()) } { (c.code.as_str()) } }
                                td { (c.records) }
                            }
                        }
                    }
                }
                h2 { "Flagged records" @if !query.code.is_empty() { " with " (query.code) } }
                table #flagged-records {
                    thead { tr { th { "record type" } th { "source ID" } th { "version" } th { "flags" } } }
                    tbody {
                        @for r in &report.records {
                            tr.flagged {
                                td { (r.record_type) }
                                td { (r.source_id) }
                                td { (r.source_version) }
                                td { @for f in &r.flags { span.flag title={ (f.pointer) ": " (f.message) } { (f.code.as_str()) } " " } }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p.pager { a #next-page href=(next) { "Next records →" } }
                }
            }
        },
    ))
}
