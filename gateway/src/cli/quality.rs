//! `tongban quality`: a department's data-quality report on its own records, over the
//! `Quality` service: counts per record type and flag code, then each flagged record
//! with its source ID, version and flags, to correct at the source.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use tongban_proto::v1 as pb;
use tongban_proto::v1::quality_client::QualityClient;

use crate::client::{channel, ClientIdentity};

#[derive(Debug, Args)]
pub struct QualityArgs {
    /// Identity folder (cert.pem, key.pem) of a department, e.g. tongban-data/pki/tax.
    #[arg(long)]
    identity: PathBuf,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Only this record type of the department's, e.g. tax.taxpayer.
    #[arg(long)]
    record_type: Option<String>,
    /// Only records with this flag code (and only those flags), e.g. WRONG_CHECK_CHARACTER.
    #[arg(long)]
    code: Option<String>,
    /// Records per page (at most 1000).
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// Start after this record (the `--after` printed under a page).
    #[arg(long)]
    after: Option<String>,
    /// Every flagged record, page after page, not only the first page.
    #[arg(long)]
    all: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: QualityArgs) -> anyhow::Result<()> {
    let identity = ClientIdentity::load(&args.identity, args.ca.as_deref())?;
    let mut client =
        QualityClient::new(channel(&args.endpoint, &identity).await?).max_decoding_message_size(64 * 1024 * 1024);
    let mut after = args.after.clone().unwrap_or_default();
    let mut first: Option<pb::QualityReportResponse> = None;
    let mut records = Vec::new();
    let next_after = loop {
        let page = client
            .report(pb::QualityReportRequest {
                record_type: args.record_type.clone().unwrap_or_default(),
                code: args.code.clone().unwrap_or_default(),
                page_size: args.page_size,
                after: after.clone(),
            })
            .await
            .map_err(|status| crate::client::call_failure(&args.endpoint, &status))?
            .into_inner();
        records.extend(page.records.iter().cloned());
        let next = page.next_after.clone();
        first.get_or_insert(page);
        if !args.all || next.is_empty() {
            break next;
        }
        after = next;
    };
    let first = first.unwrap_or_default();

    if args.json {
        let out = json!({
            "counts": first.counts.iter().map(|c| json!({
                "record_type": c.record_type, "code": c.code, "records": c.records,
            })).collect::<Vec<Value>>(),
            "flagged_records": first.flagged_records,
            "records": records.iter().map(record_json).collect::<Vec<Value>>(),
            "next_after": next_after,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    if first.counts.is_empty() {
        println!("no flagged records");
        return Ok(());
    }
    println!("{} flagged records", first.flagged_records);
    let width = first.counts.iter().map(|c| c.record_type.len()).max().unwrap_or(0);
    let code_width = first.counts.iter().map(|c| c.code.len()).max().unwrap_or(0);
    for count in &first.counts {
        println!(
            "  {:<width$}  {:<code_width$}  {:>7}",
            count.record_type, count.code, count.records
        );
    }
    println!();
    for record in &records {
        println!("{}", record_text(record));
    }
    if !next_after.is_empty() {
        println!("more: tongban quality --after {next_after} (or --all)");
    }
    Ok(())
}

/// One line per record: type, source ID, version, then each flag as `code at pointer: message`.
fn record_text(record: &pb::FlaggedRecord) -> String {
    let flags: Vec<String> = record
        .flags
        .iter()
        .map(|flag| {
            let pointer = if flag.pointer.is_empty() {
                "(record)"
            } else {
                flag.pointer.as_str()
            };
            format!("{} at {pointer}: {}", flag.code, flag.message)
        })
        .collect();
    format!(
        "{} {} v{}  {}",
        record.record_type,
        record.source_id,
        record.source_version,
        flags.join("; ")
    )
}

fn record_json(record: &pb::FlaggedRecord) -> Value {
    json!({
        "record_type": record.record_type,
        "source_id": record.source_id,
        "source_version": record.source_version,
        "flags": record.flags.iter().map(|f| json!({
            "code": f.code, "pointer": f.pointer, "message": f.message,
        })).collect::<Vec<Value>>(),
    })
}
