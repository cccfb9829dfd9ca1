//! The review queue: each open pair with both sides field by field (differences
//! marked), the comparison levels and their weights, and the other records of each
//! entity; "same person", "different people" or skip, by mouse or keyboard
//! (`console.js`). Decisions go through the [`StewardDesk`](crate::stewardship::StewardDesk)
//! exactly as `Stewardship.Decide` does.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{layout, mention};
use super::session::Viewer;
use super::Console;
use crate::stewardship::{ReviewOrder, ReviewView, StewardAction, Verdict};
use crate::store::Store;
use crate::unified::UnifiedRecord;

/// Pairs per page: a steward's sitting, not the whole queue.
const PAGE: usize = 20;

#[derive(Deserialize)]
pub struct ReviewQuery {
    /// The pair the page starts after (0: from the start), in either order.
    #[serde(default)]
    after: i64,
    /// `uncertain`: most uncertain first (nearest the middle of the review band).
    #[serde(default)]
    order: String,
}

pub async fn page<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Query(query): Query<ReviewQuery>,
) -> Result<Markup, ConsoleError> {
    let uncertain = query.order == "uncertain";
    let order = match uncertain {
        true => ReviewOrder::MostUncertain { after: query.after },
        false => ReviewOrder::Oldest { after: query.after },
    };
    let views = console.desk.review_page(&viewer.identity, order, PAGE).await?;
    // Either order goes on after the page's last pair, decided or not.
    let next = match views.last() {
        Some(_) if views.len() < PAGE => None,
        Some(last) if uncertain => Some(format!("/review?order=uncertain&after={}", last.pair.id)),
        Some(last) => Some(format!("/review?after={}", last.pair.id)),
        None => None,
    };
    Ok(layout(
        &viewer,
        "Review queue",
        "review",
        html! {
            main #review {
                h1 { "Review queue" }
                p.order {
                    "Order: "
                    @if uncertain { a href="/review" { "oldest first" } " · " strong { "most uncertain first" } }
                    @else { strong { "oldest first" } " · " a href="/review?order=uncertain" { "most uncertain first" } }
                }
                p.hint {
                    "Pairs matching could not settle. "
                    kbd { "S" } " same person · " kbd { "D" } " different people · " kbd { "K" } " skip · "
                    kbd { "J" } "/" kbd { "↓" } " next · " kbd { "↑" } " previous · " kbd { "?" } " all keys"
                }
                aside #shortcuts hidden {
                    h2 { "Keyboard" }
                    dl {
                        dt { kbd { "S" } } dd { "same person: merge the two entities" }
                        dt { kbd { "D" } } dd { "different people: keep them apart for ever" }
                        dt { kbd { "K" } } dd { "skip this pair for now" }
                        dt { kbd { "J" } " or " kbd { "↓" } } dd { "next pair" }
                        dt { kbd { "↑" } } dd { "previous pair" }
                        dt { kbd { "?" } } dd { "show or hide this list" }
                    }
                }
                @if views.is_empty() {
                    p #queue-empty { "No open pairs" @if query.after > 0 { " after this point" } ". Nothing waits for a steward." }
                }
                @for view in &views { (pair(view)) }
                @if let Some(next) = next {
                    p.pager { a #next-page href=(next) { "Next pairs →" } }
                }
            }
        },
    ))
}

fn pair(view: &ReviewView) -> Markup {
    let pair = &view.pair;
    let left = view.entity.as_ref();
    let right = view.candidate.as_ref();
    html! {
        article.pair #{ "pair-" (pair.id) } data-pair=(pair.id) data-entity=(pair.entity) data-candidate=(pair.candidate) tabindex="-1" {
            h2 {
                "Pair " (pair.id) ": is " a href={ "/entities/" (pair.entity) } { (pair.entity) }
                " the same as " a href={ "/entities/" (pair.candidate) } { (pair.candidate) } "?"
            }
            p.meta {
                "Queued " (crate::grpc::convert::rfc3339(pair.queued_at)) " for " (mention(&pair.mention))
            }
            table.sides {
                thead { tr {
                    th { "field" }
                    th.left { (pair.entity) " (this mention's entity)" }
                    th.right { (pair.candidate) " (candidate)" }
                } }
                tbody {
                    @for (field, l, r) in rows(left, right) {
                        @let differs = !l.is_empty() && !r.is_empty() && l != r;
                        tr.field.differs[differs] data-field=(field) {
                            th { (field) }
                            td.left { (l) }
                            td.right { (r) }
                        }
                    }
                }
            }
            table.evidence {
                caption { "Evidence" }
                @for c in &pair.evidence.comparisons {
                    tr data-field=(c.field.as_str()) {
                        td { (c.field.as_str()) }
                        td.level { (c.level.as_str()) }
                        td.weight.against[c.weight < 0.0] { (format!("{:+.1}", c.weight)) }
                    }
                }
            }
            p.total { (format!("{:.1} bits", pair.evidence.total)) }
            div.records {
                (sources("left", left))
                (sources("right", right))
            }
            form.decide method="post" action={ "/review/" (pair.id) "/decide" } {
                button.same type="submit" name="verdict" value="same" { "Same person " kbd { "S" } }
                button.different type="submit" name="verdict" value="different" { "Different " kbd { "D" } }
                button.skip type="button" { "Skip " kbd { "K" } }
            }
        }
    }
}

/// The records that make up one side.
fn sources(side: &str, record: Option<&UnifiedRecord>) -> Markup {
    html! {
        ul class={ "sources " (side) } {
            @match record {
                Some(record) => {
                    @for source in &record.sources { li { (mention(source)) } }
                }
                None => { li { "(no current record)" } }
            }
        }
    }
}

/// The rows of the side-by-side table: identifiers, then every attribute either side
/// has, in name order.
fn rows(left: Option<&UnifiedRecord>, right: Option<&UnifiedRecord>) -> Vec<(String, String, String)> {
    let identifiers = |record: Option<&UnifiedRecord>| {
        record
            .map(|r| {
                r.identifiers
                    .iter()
                    .map(|id| format!("{} {}", id.scheme.as_str(), id.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let attribute = |record: Option<&UnifiedRecord>, name: &str| {
        record
            .and_then(|r| r.attributes.get(name))
            .map(|v| v.value.clone())
            .unwrap_or_default()
    };
    let names: BTreeSet<&String> = left
        .iter()
        .chain(right.iter())
        .flat_map(|r| r.attributes.keys())
        .collect();
    let mut rows = vec![("identifiers".to_owned(), identifiers(left), identifiers(right))];
    rows.extend(
        names
            .into_iter()
            .map(|name| (name.clone(), attribute(left, name), attribute(right, name))),
    );
    rows
}

#[derive(Deserialize)]
pub struct Decision {
    /// Optional here so that a request without one reaches the desk, which audits it as
    /// malformed (as `Stewardship.Decide` does).
    #[serde(default)]
    verdict: Option<String>,
}

pub async fn decide<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Path(pair): Path<i64>,
    headers: HeaderMap,
    Form(decision): Form<Decision>,
) -> Result<Response, ConsoleError> {
    let verdict = match decision.verdict.as_deref() {
        Some("same") => Ok(Verdict::Same),
        Some("different") => Ok(Verdict::Different),
        other => Err(crate::stewardship::StewardError::InvalidArgument(format!(
            "verdict must be same or different, not {}",
            other.map_or_else(|| "missing".to_owned(), |v| format!("{v:?}"))
        ))),
    };
    let action = verdict.map(|verdict| StewardAction::Decide { pair, verdict });
    let outcome = console.desk.act(&viewer.identity, action).await?;
    if !super::wants_json(&headers) {
        return Ok(Redirect::to("/review").into_response());
    }
    Ok(Json(serde_json::json!({
        "pair": pair,
        "verdict": decision.verdict,
        "survivor": outcome.survivor,
        "created": outcome.created,
        "changed": outcome.changed,
    }))
    .into_response())
}
