//! A data steward's verbs: `tongban review` (the queue of pairs matching could not
//! settle), `decide`, `merge`, `split` and `explain`, over the `Stewardship` service.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use tongban_proto::v1 as pb;
use tongban_proto::v1::stewardship_client::StewardshipClient;
use tonic::transport::Channel;

use crate::client::{channel, ClientIdentity};

/// How a steward's command reaches the hub.
#[derive(Debug, Args)]
pub struct Connection {
    /// Identity folder (cert.pem, key.pem) of a steward; `explain` also takes the platform's.
    #[arg(long, default_value_os_t = super::default_data_dir().join("pki").join("steward"))]
    identity: PathBuf,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
}

impl Connection {
    async fn client(&self) -> anyhow::Result<StewardshipClient<Channel>> {
        let identity = ClientIdentity::load(&self.identity, self.ca.as_deref())?;
        let channel = channel(&self.endpoint, &identity).await?;
        Ok(StewardshipClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// A refusal or failure of the hub, for people.
fn hub_error(status: tonic::Status) -> anyhow::Error {
    crate::client::call_failure("the hub", &status).into()
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Show pairs after this queue position (the `--after` printed under a full page).
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Pairs per page (at most 200).
    #[arg(long, default_value_t = 20)]
    page_size: u32,
    /// Print the page as JSON, unified records included.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerdictArg {
    /// One entity: merge them.
    Same,
    /// Two entities: keep them apart for ever.
    Different,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The pair's number, as `tongban review` shows it.
    pair: i64,
    #[arg(value_enum)]
    verdict: VerdictArg,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// A unified ID.
    id: String,
    /// The unified ID to merge with it (the older of the two survives).
    other: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The mention's record type, e.g. civil.marriage.
    record_type: String,
    /// The record's source ID.
    source_id: String,
    /// The mention's role in the record, e.g. party, taxpayer.
    role: String,
    /// The mention's position among that role's.
    index: u32,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A unified ID (a merged-away ID is followed to its survivor).
    id: String,
    /// Print the explanation as JSON, placements included.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub async fn review(args: ReviewArgs) -> anyhow::Result<()> {
    let mut client = args.connection.client().await?;
    let page = client
        .list_reviews(pb::ListReviewsRequest {
            after: args.after,
            page_size: args.page_size,
        })
        .await
        .map_err(hub_error)?
        .into_inner();
    if args.json {
        let pairs: Vec<Value> = page.pairs.iter().map(pair_json).collect();
        let out = json!({ "pairs": pairs, "next_after": page.next_after });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if page.pairs.is_empty() {
        println!("no open review pairs after {}", args.after);
        return Ok(());
    }
    for pair in &page.pairs {
        print!("{}", pair_text(pair));
        println!();
    }
    let asked = if args.page_size == 0 {
        20
    } else {
        args.page_size.min(200)
    };
    if page.pairs.len() >= asked as usize {
        println!("more: tongban review --after {}", page.next_after);
    }
    Ok(())
}

pub async fn decide(args: DecideArgs) -> anyhow::Result<()> {
    let verdict = match args.verdict {
        VerdictArg::Same => pb::Verdict::Same,
        VerdictArg::Different => pb::Verdict::Different,
    };
    let mut client = args.connection.client().await?;
    let response = client
        .decide(pb::DecideRequest {
            pair_id: args.pair,
            verdict: verdict.into(),
        })
        .await
        .map_err(hub_error)?
        .into_inner();
    print_outcome(&response);
    Ok(())
}

pub async fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let mut client = args.connection.client().await?;
    let response = client
        .merge(pb::MergeRequest {
            unified_id: args.id,
            other_id: args.other,
        })
        .await
        .map_err(hub_error)?
        .into_inner();
    print_outcome(&response);
    Ok(())
}

pub async fn split(args: SplitArgs) -> anyhow::Result<()> {
    let mut client = args.connection.client().await?;
    let response = client
        .split(pb::SplitRequest {
            mention: Some(pb::MentionRef {
                record_type: args.record_type,
                source_id: args.source_id,
                role: args.role,
                index: args.index,
            }),
        })
        .await
        .map_err(hub_error)?
        .into_inner();
    print_outcome(&response);
    Ok(())
}

pub async fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let mut client = args.connection.client().await?;
    let response = client
        .explain(pb::ExplainRequest { unified_id: args.id })
        .await
        .map_err(hub_error)?
        .into_inner();
    if args.json {
        let sources: Vec<Value> = response
            .sources
            .iter()
            .map(|s| {
                let placement = if s.placement.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&s.placement).context("the hub sent a placement that is not JSON")?
                };
                Ok(json!({
                    "mention": s.mention.as_ref().map(mention_json),
                    "by": s.by,
                    "summary": s.summary,
                    "placement": placement,
                }))
            })
            .collect::<anyhow::Result<_>>()?;
        let out = json!({
            "unified_id": response.unified_id,
            "redirected_from": response.redirected_from,
            "sources": sources,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if !response.redirected_from.is_empty() {
        println!("{} was merged into {}", response.redirected_from, response.unified_id);
    }
    println!("{}: {} sources", response.unified_id, response.sources.len());
    for source in &response.sources {
        let mention = source.mention.as_ref().map(mention_text).unwrap_or_default();
        let by = if source.by.is_empty() { "-" } else { &source.by };
        println!("  {mention}\n    {by}: {}", source.summary);
    }
    Ok(())
}

fn print_outcome(response: &pb::StewardResponse) {
    if !response.survivor.is_empty() {
        println!("survivor: {}", response.survivor);
    }
    if !response.created.is_empty() {
        println!("created: {}", response.created);
    }
    if response.changed.is_empty() {
        println!("nothing republished");
    } else {
        println!("republished: {}", response.changed.join(", "));
    }
}

fn mention_text(mention: &pb::MentionRef) -> String {
    format!(
        "{} {} {}/{}",
        mention.record_type, mention.source_id, mention.role, mention.index
    )
}

fn mention_json(mention: &pb::MentionRef) -> Value {
    json!({
        "record_type": mention.record_type,
        "source_id": mention.source_id,
        "role": mention.role,
        "index": mention.index,
    })
}

/// A unified record's JSON, or null when the hub sent none.
fn record_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn pair_json(pair: &pb::ReviewPair) -> Value {
    json!({
        "id": pair.id,
        "mention": pair.mention.as_ref().map(mention_json),
        "entity_id": pair.entity_id,
        "candidate_id": pair.candidate_id,
        "total_weight": pair.total_weight,
        "comparisons": pair.comparisons.iter().map(|c| json!({
            "field": c.field, "level": c.level, "weight": c.weight,
        })).collect::<Vec<_>>(),
        "queued_at": pair.queued_at,
        "entity_record": record_value(&pair.entity_record),
        "candidate_record": record_value(&pair.candidate_record),
    })
}

/// One pair for people: the mention, both sides' records side by side, the evidence.
fn pair_text(pair: &pb::ReviewPair) -> String {
    let mention = pair.mention.as_ref().map(mention_text).unwrap_or_default();
    let mut out = format!(
        "pair {}  {:.1} bits  queued {}\n  mention {mention}\n",
        pair.id, pair.total_weight, pair.queued_at
    );
    let entity = record_value(&pair.entity_record);
    let candidate = record_value(&pair.candidate_record);
    let rows = [
        (
            "",
            format!("{} (its entity)", pair.entity_id),
            format!("{} (candidate)", pair.candidate_id),
        ),
        ("name", attribute(&entity, "name"), attribute(&candidate, "name")),
        (
            "birth date",
            attribute(&entity, "birth_date"),
            attribute(&candidate, "birth_date"),
        ),
        ("sex", attribute(&entity, "sex"), attribute(&candidate, "sex")),
    ];
    let ids = (identifiers(&entity), identifiers(&candidate));
    let sources = (sources(&entity), sources(&candidate));
    let mut lines: Vec<(&str, String, String)> = rows.into_iter().collect();
    push_list(&mut lines, "identifiers", ids);
    push_list(&mut lines, "sources", sources);
    let width = lines.iter().map(|(_, left, _)| display_width(left)).max().unwrap_or(0);
    for (label, left, right) in &lines {
        let pad = " ".repeat(width - display_width(left));
        out.push_str(&format!("  {label:<12}{left}{pad}   {right}\n"));
    }
    let comparisons: Vec<String> = pair
        .comparisons
        .iter()
        .map(|c| format!("{} {} {:+.1}", c.field, c.level, c.weight))
        .collect();
    out.push_str(&format!(
        "  {:<12}{} = {:.1} bits\n",
        "evidence",
        comparisons.join(", "),
        pair.total_weight
    ));
    out
}

/// Rows of two lists side by side, the label on the first.
fn push_list<'a>(
    lines: &mut Vec<(&'a str, String, String)>,
    label: &'a str,
    (left, right): (Vec<String>, Vec<String>),
) {
    let n = left.len().max(right.len()).max(1);
    for i in 0..n {
        let cell = |list: &Vec<String>| {
            list.get(i)
                .cloned()
                .unwrap_or_else(|| if i == 0 { "-".to_owned() } else { String::new() })
        };
        lines.push((if i == 0 { label } else { "" }, cell(&left), cell(&right)));
    }
}

fn attribute(record: &Value, name: &str) -> String {
    record["attributes"][name]["value"]
        .as_str()
        .map_or_else(|| "-".to_owned(), str::to_owned)
}

fn identifiers(record: &Value) -> Vec<String> {
    record["identifiers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let unchecked = if i["key"] == true { "" } else { " (unchecked)" };
            format!(
                "{} {}{unchecked}",
                i["scheme"].as_str().unwrap_or("?"),
                i["value"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn sources(record: &Value) -> Vec<String> {
    record["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} {} {}/{}",
                s["record_type"].as_str().unwrap_or("?"),
                s["source_id"].as_str().unwrap_or("?"),
                s["role"].as_str().unwrap_or("?"),
                s["index"]
            )
        })
        .collect()
}

/// Columns a terminal gives `text`: CJK and full-width characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let wide = matches!(c as u32,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
                | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
                | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_prints_both_sides_side_by_side() {
        let record = |id: &str, name: &str, birth: &str, scheme: &str, number: &str| {
            json!({
                "unified_id": id,
                "attributes": {"name": {"value": name}, "birth_date": {"value": birth}},
                "identifiers": [{"scheme": scheme, "value": number, "key": true}],
                "sources": [{"record_type": "tax.taxpayer", "source_id": "1", "role": "taxpayer", "index": 0}],
            })
            .to_string()
        };
        let pair = pb::ReviewPair {
            id: 7,
            mention: Some(pb::MentionRef {
                record_type: "civil.marriage".into(),
                source_id: "M1".into(),
                role: "party".into(),
                index: 0,
            }),
            entity_id: "P00000000002".into(),
            candidate_id: "P00000000001".into(),
            total_weight: 16.88,
            comparisons: vec![pb::Comparison {
                field: "name".into(),
                level: "exact".into(),
                weight: 13.24,
            }],
            queued_at: "2026-01-01T00:00:00.000Z".into(),
            entity_record: record("P00000000002", "陈伟", "1979-03-20", "passport", "E12345678"),
            candidate_record: record(
                "P00000000001",
                "陈伟",
                "1979-03-15",
                "resident_id",
                "37062919790315001X",
            ),
        };
        let text = pair_text(&pair);
        assert!(text.starts_with("pair 7  16.9 bits"), "{text}");
        assert!(text.contains("mention civil.marriage M1 party/0"), "{text}");
        let birth = text.lines().find(|l| l.contains("birth date")).expect("birth row");
        assert!(birth.contains("1979-03-20") && birth.contains("1979-03-15"), "{text}");
        assert!(text.contains("resident_id 37062919790315001X"), "{text}");
        assert!(text.contains("name exact +13.2 = 16.9 bits"), "{text}");
        // The right column starts at one place on every row.
        let name = text.lines().find(|l| l.contains("陈伟")).expect("name row");
        let header = text.lines().find(|l| l.contains("(candidate)")).expect("header");
        let column = |line: &str, needle: &str| display_width(&line[..line.find(needle).expect("needle")]);
        assert_eq!(
            display_width(&name[..name.rfind("陈伟").expect("right")]),
            column(header, "P00000000001")
        );
    }
}
