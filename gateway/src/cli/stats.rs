//! `tongban stats`: the hub's operational statistics (ops), over the `Operations`
//! service — per time window and department: records and their outcomes, batches,
//! push latency, lookups and repeated collections avoided; then totals per department
//! with how the mentions were resolved.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::{json, Value};
use tongban_proto::v1 as pb;
use tongban_proto::v1::operations_client::OperationsClient;

use crate::client::{channel, ClientIdentity};
use crate::grpc::convert::rfc3339;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// How far back: a number with m (minutes), h (hours) or d (days), e.g. 90m, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = parse_span)]
    since: Duration,
    /// Length of each window, e.g. 10m, 1h, 1d; windows are aligned (a 1h window starts
    /// on the hour, UTC).
    #[arg(long, default_value = "1h", value_parser = parse_span)]
    window: Duration,
    /// Only this department (tax, hrss, ...; platform or steward for their lookups).
    #[arg(long)]
    department: Option<String>,
    /// Print the statistics as JSON, per record type too.
    #[arg(long)]
    json: bool,
    /// Identity folder (cert.pem, key.pem) of ops.
    #[arg(long, default_value_os_t = super::default_data_dir().join("pki").join("ops"))]
    identity: PathBuf,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
}

/// Reads `90m`, `24h`, `7d`: a whole number of minutes, hours or days.
fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with m, h or d, e.g. 90m, 24h, 7d"))?;
    let minutes = match unit {
        "m" => number,
        "h" => number.saturating_mul(60),
        "d" => number.saturating_mul(24 * 60),
        _ => return Err(format!("{text:?}: the unit is m (minutes), h (hours) or d (days)")),
    };
    if minutes == 0 {
        return Err(format!("{text:?}: at least one minute"));
    }
    Ok(Duration::from_secs(minutes.saturating_mul(60)))
}

pub async fn run(args: StatsArgs) -> anyhow::Result<()> {
    let identity = ClientIdentity::load(&args.identity, args.ca.as_deref())?;
    let mut client =
        OperationsClient::new(channel(&args.endpoint, &identity).await?).max_decoding_message_size(64 * 1024 * 1024);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let request = pb::StatisticsRequest {
        since: i64::try_from(now.saturating_sub(args.since.as_secs()))?,
        until: 0,
        window_minutes: u32::try_from(args.window.as_secs() / 60)?,
        department: args.department.clone().unwrap_or_default(),
    };
    let response = client
        .statistics(request)
        .await
        .map_err(|status| crate::client::call_failure(&args.endpoint, &status))?
        .into_inner();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response_json(&response))?);
    } else {
        print!("{}", response_text(&response));
    }
    Ok(())
}

/// A window's start, to the minute: `2026-03-01T08:00Z`.
fn minute_text(unix_seconds: i64) -> String {
    let time = UNIX_EPOCH
        .checked_add(Duration::from_secs(u64::try_from(unix_seconds).unwrap_or(0)))
        .unwrap_or(UNIX_EPOCH);
    let text = rfc3339(time);
    format!("{}Z", text.get(..16).unwrap_or(&text))
}

fn counts(window: &pb::TrafficWindow) -> pb::RecordCounts {
    window.records.unwrap_or_default()
}

fn response_text(response: &pb::StatisticsResponse) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Statistics from {} to {} in windows of {} minutes (UTC)",
        minute_text(response.since),
        minute_text(response.until),
        response.window_minutes
    );
    if response.windows.is_empty() {
        let _ = writeln!(out, "no traffic in this range");
        return out;
    }
    let header = format!(
        "{:<18} {:<13} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "window",
        "department",
        "received",
        "accepted",
        "unchanged",
        "stale",
        "rejected",
        "batches",
        "refused",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "lookups",
        "avoided"
    );
    let row = |label: &str, window: &pb::TrafficWindow| {
        let records = counts(window);
        format!(
            "{:<18} {:<13} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>8}",
            label,
            window.department,
            records.received,
            records.accepted,
            records.unchanged,
            records.stale,
            records.rejected,
            window.batches,
            window.batches_refused,
            window.latency_p50_ms,
            window.latency_p90_ms,
            window.latency_p99_ms,
            window.lookups,
            window.repeated_collections_avoided
        )
    };
    let _ = writeln!(out, "\n{header}");
    for window in &response.windows {
        let _ = writeln!(out, "{}", row(&minute_text(window.window_start), window));
    }
    let _ = writeln!(out, "\nTotals\n{header}");
    for total in &response.totals {
        let _ = writeln!(out, "{}", row("total", total));
    }
    let _ = writeln!(
        out,
        "\nMentions of accepted records, by what placed them\n{:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "department", "key", "previous", "matched", "founded", "queued", "steward", "existing"
    );
    for total in &response.totals {
        let resolved = counts(total).resolutions.unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            total.department,
            resolved.key,
            resolved.previous,
            resolved.matched,
            resolved.founded,
            resolved.queued,
            resolved.steward,
            resolved.existing
        );
    }
    let _ = writeln!(
        out,
        "\nrefused: batches refused or failed as a whole (nothing stored); avoided: lookups answered \
         with data another department collected (a repeated collection avoided); existing: mentions \
         of an entity known before"
    );
    out
}

fn record_counts_json(records: &pb::RecordCounts) -> Value {
    let resolved = records.resolutions.unwrap_or_default();
    json!({
        "received": records.received,
        "accepted": records.accepted,
        "unchanged": records.unchanged,
        "stale": records.stale,
        "rejected": records.rejected,
        "resolutions": {
            "key": resolved.key,
            "previous": resolved.previous,
            "matched": resolved.matched,
            "founded": resolved.founded,
            "queued": resolved.queued,
            "steward": resolved.steward,
            "existing": resolved.existing,
        },
    })
}

fn window_json(window: &pb::TrafficWindow) -> Value {
    let record_types: serde_json::Map<String, Value> = window
        .record_types
        .iter()
        .map(|t| {
            (
                t.record_type.clone(),
                record_counts_json(&t.records.unwrap_or_default()),
            )
        })
        .collect();
    json!({
        "window_start": minute_text(window.window_start),
        "department": window.department,
        "records": record_counts_json(&counts(window)),
        "record_types": record_types,
        "batches": window.batches,
        "batches_refused": window.batches_refused,
        "latency_ms": {
            "p50": window.latency_p50_ms,
            "p90": window.latency_p90_ms,
            "p99": window.latency_p99_ms,
        },
        "lookups": window.lookups,
        "repeated_collections_avoided": window.repeated_collections_avoided,
    })
}

fn response_json(response: &pb::StatisticsResponse) -> Value {
    json!({
        "since": minute_text(response.since),
        "until": minute_text(response.until),
        "window_minutes": response.window_minutes,
        "windows": response.windows.iter().map(window_json).collect::<Vec<_>>(),
        "totals": response.totals.iter().map(window_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_minutes_hours_and_days() {
        assert_eq!(parse_span("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_span("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(parse_span("7d"), Ok(Duration::from_secs(7 * 86400)));
        for bad in ["", "h", "10", "10s", "0m", "1.5h", "-1h"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_print_to_the_minute() {
        assert_eq!(minute_text(0), "1970-01-01T00:00Z");
        assert_eq!(minute_text(1_709_251_200), "2024-03-01T00:00Z");
    }
}
