//! The platform's side of the hub, as a client: following the change feed into a
//! JSON-lines file with a saved cursor (`tongban pull`), and looking up one unified
//! record (`tongban get`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_stream::StreamExt;
use tongban_proto::v1 as pb;
use tongban_proto::v1::unified_client::UnifiedClient;
use tonic::transport::Channel;

use crate::client::{channel, ClientError, ClientIdentity};

/// What `pull` does.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub endpoint: String,
    /// The JSON-lines file changes are appended to.
    pub out: PathBuf,
    /// Where the cursor is kept between runs.
    pub cursor_file: PathBuf,
    /// Keep following new changes until `stop` resolves.
    pub follow: bool,
    /// Only these kinds; empty for all.
    pub kinds: Vec<pb::EntityKind>,
}

impl PullOptions {
    /// Options for `out`, with the cursor kept beside it in `<out>.cursor`.
    pub fn new(endpoint: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        let out = out.into();
        let mut cursor = out.clone().into_os_string();
        cursor.push(".cursor");
        PullOptions {
            endpoint: endpoint.into(),
            out,
            cursor_file: PathBuf::from(cursor),
            follow: false,
            kinds: Vec::new(),
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// The cursor the pull started after.
    pub from: String,
    /// The cursor saved at the end.
    pub to: String,
    /// Changes written.
    pub changes: u64,
    /// Of those, entities merged into another.
    pub merges: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the hub answered {:?}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no cursor: {text:?}")]
    BadCursor { path: PathBuf, text: String },
}

/// The cursor is saved at least this often while changes arrive, and whenever the feed
/// goes quiet: a restarted pull repeats at most this much (changes carry versions, so
/// a repeated line is harmless to a consumer that applies by version).
const SAVE_EVERY: u64 = 1000;
const SAVE_AFTER: Duration = Duration::from_secs(1);

/// Appends the changes after the saved cursor to `options.out`, one JSON line each, and
/// saves the cursor after the lines it covers are on disk. Returns when caught up, or
/// with `follow` when `stop` resolves.
pub async fn pull(
    identity: &ClientIdentity,
    options: &PullOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<PullReport, PullError> {
    let from = read_cursor(&options.cursor_file)?;
    let mut client =
        UnifiedClient::new(channel(&options.endpoint, identity).await?).max_decoding_message_size(64 * 1024 * 1024);
    let request = pb::ChangesRequest {
        after: from.clone(),
        kinds: options.kinds.iter().map(|k| *k as i32).collect(),
        follow: options.follow,
        page_size: 0,
    };
    let mut stream = client.changes(request).await?.into_inner();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.out)
        .map_err(|source| PullError::File {
            path: options.out.clone(),
            source,
        })?;
    let mut out = std::io::BufWriter::new(file);
    let mut report = PullReport {
        from: from.clone(),
        to: from,
        ..PullReport::default()
    };
    let mut unsaved = 0;
    let mut last_save = Instant::now();
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tokio::time::sleep(SAVE_AFTER) => {
                // Quiet: make what arrived durable.
                save(&mut out, options, &report.to, &mut unsaved)?;
                last_save = Instant::now();
                continue;
            }
            _ = &mut stop => break,
        };
        let Some(change) = next else {
            break;
        };
        let change = change?;
        let line = change_line(&change);
        writeln!(out, "{line}").map_err(|source| PullError::File {
            path: options.out.clone(),
            source,
        })?;
        report.changes += 1;
        if !change.merged_into.is_empty() {
            report.merges += 1;
        }
        report.to = change.cursor;
        unsaved += 1;
        if unsaved >= SAVE_EVERY || last_save.elapsed() >= SAVE_AFTER {
            save(&mut out, options, &report.to, &mut unsaved)?;
            last_save = Instant::now();
        }
    }
    save(&mut out, options, &report.to, &mut unsaved)?;
    Ok(report)
}

/// One line of the output: the unified record, or for a merged entity the line naming
/// its survivor; both with the cursor of the change.
pub fn change_line(change: &pb::Change) -> Value {
    let kind = match pb::EntityKind::try_from(change.kind) {
        Ok(pb::EntityKind::Organisation) => "organisation",
        _ => "person",
    };
    let mut line = if change.merged_into.is_empty() {
        serde_json::from_str::<Value>(&change.record).unwrap_or_else(|_| json!({}))
    } else {
        json!({ "merged_into": change.merged_into, "sources": [] })
    };
    if let Some(map) = line.as_object_mut() {
        map.insert("unified_id".to_owned(), json!(change.unified_id));
        map.insert("kind".to_owned(), json!(kind));
        map.insert("version".to_owned(), json!(change.version));
        map.insert("cursor".to_owned(), json!(change.cursor));
    }
    line
}

/// Flushes and syncs the output, then replaces the cursor file: the cursor never runs
/// ahead of the lines on disk.
fn save(
    out: &mut std::io::BufWriter<std::fs::File>,
    options: &PullOptions,
    cursor: &str,
    unsaved: &mut u64,
) -> Result<(), PullError> {
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |source| PullError::File { path, source }
    };
    out.flush().map_err(file_error(&options.out))?;
    out.get_ref().sync_data().map_err(file_error(&options.out))?;
    *unsaved = 0;
    if cursor.is_empty() {
        // Nothing read yet (a follow stopped before the first change): no cursor to
        // keep, and an empty cursor file would be refused by the next pull.
        return Ok(());
    }
    let mut temporary = options.cursor_file.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, format!("{cursor}\n")).map_err(file_error(&temporary))?;
    std::fs::rename(&temporary, &options.cursor_file).map_err(file_error(&options.cursor_file))?;
    Ok(())
}

fn read_cursor(path: &Path) -> Result<String, PullError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let cursor = text.trim();
            if cursor.is_empty() || !cursor.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PullError::BadCursor {
                    path: path.to_owned(),
                    text: text.clone(),
                });
            }
            Ok(cursor.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(PullError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Looks up one unified record by unified ID or by any identifier.
pub async fn get(
    endpoint: &str,
    identity: &ClientIdentity,
    what: &str,
    purpose: &str,
    parts: Vec<String>,
) -> Result<pb::LookupResponse, PullError> {
    let mut client: UnifiedClient<Channel> = UnifiedClient::new(channel(endpoint, identity).await?);
    let by = if crate::unified::kind_of_id(what.trim()).is_some() {
        pb::lookup_request::By::UnifiedId(what.trim().to_owned())
    } else {
        pb::lookup_request::By::Identifier(what.to_owned())
    };
    let response = client
        .lookup(pb::LookupRequest {
            by: Some(by),
            purpose: purpose.to_owned(),
            parts,
        })
        .await?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_stopped_before_its_first_change_leaves_no_cursor_the_next_pull_refuses() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = PullOptions::new("https://127.0.0.1:1", dir.path().join("unified.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.out)
            .expect("output file");
        let mut out = std::io::BufWriter::new(file);
        let mut unsaved = 3;
        save(&mut out, &options, "", &mut unsaved).expect("saved");
        assert_eq!(unsaved, 0);
        assert_eq!(read_cursor(&options.cursor_file).expect("readable"), "");
        save(&mut out, &options, "42", &mut unsaved).expect("saved");
        assert_eq!(read_cursor(&options.cursor_file).expect("readable"), "42");
        // A cursor file that is not a position is still refused.
        std::fs::write(&options.cursor_file, "\n").expect("written");
        assert!(matches!(
            read_cursor(&options.cursor_file),
            Err(PullError::BadCursor { .. })
        ));
    }
}
