//! The entity view: a unified record with every source and why it is there, each
//! surviving value with the source and rule it came from, the variants, quality flags,
//! relations as a small graph, and the history of versions, merges and splits; a source
//! can be split out from here.

use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::TAU;
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
use crate::stewardship::{placement_summary, EntityView, StewardAction};
use crate::store::Store;
use crate::unified::{Change, MentionRef, UnifiedRecord};

/// Related entities the graph draws at most (the table lists them all).
const GRAPH_NODES: usize = 12;

#[derive(Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    id: String,
}

/// The search box: an ID as typed, to its page.
pub async fn find(_viewer: Viewer, Query(query): Query<FindQuery>) -> Redirect {
    let id = query.id.trim().to_ascii_uppercase();
    let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    Redirect::to(&format!("/entities/{id}"))
}

pub async fn page<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    // An absorbed ID shows its survivor, read once (the page says it was merged); a
    // redirect would read and audit the entity a second time.
    let view = console.desk.entity(&viewer.identity, &id).await?;
    Ok(layout(&viewer, &view.record.unified_id, "entity", render(&view)))
}

fn render(view: &EntityView) -> Markup {
    let record = &view.record;
    html! {
        main #entity data-unified-id=(record.unified_id) {
            h1 { (record.kind.as_str()) " " (record.unified_id) small { " version " (record.version) } }
            @if let Some(from) = &view.explanation.redirected_from {
                p.meta { (from) " was merged into this entity." }
            }
            section #attributes-section {
                h2 { "Surviving values" }
                table #attributes {
                    thead { tr { th { "attribute" } th { "value" } th { "from" } th { "rule" } } }
                    tbody {
                        @for (name, value) in &record.attributes {
                            tr data-attribute=(name) {
                                th { (name) }
                                td.value { (value.value) }
                                td.source { @if let Some(source) = &value.source { (mention(source)) } }
                                td.rule { (format!("{:?}", value.rule).to_lowercase()) }
                            }
                        }
                    }
                }
            }
            section #identifiers {
                h2 { "Identifiers" }
                ul {
                    @for id in &record.identifiers {
                        li { code { (id.scheme.as_str()) } " " (id.value) @if id.key { " (key)" } @else { " (not a key: unverified)" } }
                    }
                }
            }
            section #variants {
                h2 { "Variants" }
                dl {
                    @for (name, values) in &record.variants {
                        dt { (name) }
                        dd { @for (i, v) in values.iter().enumerate() { @if i > 0 { " · " } span.variant { (v) } } }
                    }
                }
            }
            section #flags {
                h2 { "Quality flags" }
                @if record.quality_flags.is_empty() { p { "None." } }
                ul {
                    @for flag in &record.quality_flags {
                        li { span.flag title=(flag.flag.pointer) { (flag.flag.code.as_str()) } " " (flag.flag.message) " — " (mention(&flag.source)) }
                    }
                }
            }
            section #relations {
                h2 { "Relations" }
                (graph(record))
                ul {
                    @for r in &record.relations {
                        li {
                            (r.relation.as_str()) @if !r.outgoing { " (of)" } " "
                            @match &r.unified_id {
                                Some(other) => { a href={ "/entities/" (other) } { (other) } }
                                None => { "record " (r.source.record_type) " " (r.source.source_id) }
                            }
                            @if let Some(detail) = &r.detail { " — " (detail) }
                        }
                    }
                }
            }
            section #history {
                h2 { "History" }
                ol reversed { @for event in history(&record.unified_id, &view.history) { li { (event) } } }
            }
            section #sources {
                h2 { "Sources" }
                table {
                    thead { tr { th { "source" } th { "why it is here" } th {} } }
                    tbody {
                        @for (source, placement) in &view.explanation.sources {
                            tr.source {
                                td { (mention(source)) }
                                td { @match placement { Some(p) => { (placement_summary(p)) } None => { "(not recorded)" } } }
                                td {
                                    @if view.explanation.sources.len() > 1 {
                                        form.split method="post" action={ "/entities/" (record.unified_id) "/split" } {
                                            input type="hidden" name="record_type" value=(source.record_type);
                                            input type="hidden" name="source_id" value=(source.source_id);
                                            input type="hidden" name="role" value=(source.role);
                                            input type="hidden" name="index" value=(source.index);
                                            button.split type="submit" { "Split out" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The relations as a star: this entity in the middle, related entities (links) and
/// records around it, each edge named by its relation near its far end.
fn graph(record: &UnifiedRecord) -> Markup {
    let (width, height) = (760.0_f64, 300.0_f64);
    let (cx, cy, rx, ry) = (width / 2.0, height / 2.0, 290.0_f64, 110.0_f64);
    // Related entity or record → (link, label, relations).
    let mut nodes: BTreeMap<String, (Option<String>, String, BTreeSet<&'static str>)> = BTreeMap::new();
    for r in &record.relations {
        let (key, link, label) = match &r.unified_id {
            Some(id) => (id.clone(), Some(id.clone()), id.clone()),
            // A record (a title, a project): its type names it; the title says which.
            None => (
                format!("{} {}", r.source.record_type, r.source.source_id),
                None,
                r.source.record_type.clone(),
            ),
        };
        nodes
            .entry(key)
            .or_insert((link, label, BTreeSet::new()))
            .2
            .insert(r.relation.as_str());
    }
    let n = nodes.len().min(GRAPH_NODES);
    let at = |x: f64| format!("{x:.1}");
    html! {
        svg #relation-graph viewBox={ "0 0 " (width) " " (height) } role="img" aria-label="Relations" {
            @for (i, (key, (link, label, kinds))) in nodes.iter().take(GRAPH_NODES).enumerate() {
                @let angle = TAU * i as f64 / n as f64 - TAU / 4.0;
                @let (x, y) = (cx + rx * angle.cos(), cy + ry * angle.sin());
                @let kinds = kinds.iter().copied().collect::<Vec<_>>().join(", ");
                line.edge x1=(cx) y1=(cy) x2=(at(x)) y2=(at(y)) {}
                text.edge-label x=(at(cx + 0.62 * (x - cx))) y=(at(cy + 0.62 * (y - cy) - 4.0)) { (kinds) }
                @match link {
                    Some(id) => {
                        a href={ "/entities/" (id) } {
                            title { (key) }
                            circle.node r="6" cx=(at(x)) cy=(at(y)) {}
                            text.node-label x=(at(x)) y=(at(y + 18.0)) { (label) }
                        }
                    }
                    None => {
                        g.record {
                            title { (key) }
                            rect x=(at(x - 5.0)) y=(at(y - 5.0)) width="10" height="10" {}
                            text.node-label x=(at(x)) y=(at(y + 18.0)) { (label) }
                        }
                    }
                }
            }
            circle.self r="9" cx=(cx) cy=(cy) {}
            text.node-label.self x=(cx) y=(cy + 24.0) { (record.unified_id) }
            @if nodes.is_empty() {
                text.node-label x=(cx) y=(cy - 20.0) { "no relations" }
            }
        }
    }
}

/// Sentences for the changes of an entity's history (given newest first), newest first:
/// each version compared with the one before it of the same entity.
fn history(id: &str, changes: &[Change]) -> Vec<String> {
    let mut previous: BTreeMap<&str, BTreeSet<&MentionRef>> = BTreeMap::new();
    let mut events = Vec::new();
    for change in changes.iter().rev() {
        let head = &change.head;
        let now: BTreeSet<&MentionRef> = head.sources.iter().collect();
        let who = if head.unified_id == id {
            format!("version {}", head.version)
        } else {
            format!("{} version {}", head.unified_id, head.version)
        };
        let mut parts = Vec::new();
        match (&head.merged_into, previous.get(head.unified_id.as_str())) {
            (Some(survivor), _) => parts.push(format!("merged into {survivor}")),
            (None, None) if head.version <= 1 => parts.push(format!("founded with {} source(s)", now.len())),
            // Older than the history shown: nothing to compare it with.
            (None, None) => parts.push(format!("{} source(s); earlier versions are not shown", now.len())),
            (None, Some(before)) => {
                let joined: Vec<String> = now.difference(before).map(|m| mention(m)).collect();
                let left: Vec<String> = before.difference(&now).map(|m| mention(m)).collect();
                if !joined.is_empty() {
                    parts.push(format!("joined: {}", joined.join(", ")));
                }
                if !left.is_empty() {
                    parts.push(format!("left (split, moved or withdrawn): {}", left.join(", ")));
                }
                if parts.is_empty() {
                    parts.push("values updated".to_owned());
                }
            }
        }
        events.push(format!("#{} {who}: {}", change.position, parts.join("; ")));
        previous.insert(head.unified_id.as_str(), now);
    }
    events.reverse();
    events
}

pub async fn split<S: Store + Clone>(
    State(console): State<Arc<Console<S>>>,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    // The form's hidden fields are the mention's address.
    Form(source): Form<MentionRef>,
) -> Result<Response, ConsoleError> {
    // The page may be stale: split only a mention that is still in the entity shown
    // (a split is a steward's sticky decision, not to be made about another entity).
    let explanation = console.desk.explain(&viewer.identity, &id).await?;
    if !explanation.sources.iter().any(|(kept, _)| *kept == source) {
        return Err(ConsoleError::BadRequest(format!(
            "{} is no longer a source of {id}; reload the page",
            mention(&source)
        )));
    }
    let outcome = console
        .desk
        .act(&viewer.identity, Ok(StewardAction::Split { mention: source }))
        .await?;
    if !super::wants_json(&headers) {
        let to = outcome.created.as_deref().unwrap_or(&id);
        return Ok(Redirect::to(&format!("/entities/{to}")).into_response());
    }
    Ok(Json(serde_json::json!({
        "survivor": outcome.survivor,
        "created": outcome.created,
        "changed": outcome.changed,
    }))
    .into_response())
}
