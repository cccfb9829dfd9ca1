//! The feed read from the start: `Unified.Changes` as the platform, not following,
//! until the hub has sent every change; changes counted, nothing else done with them.
//! Cursors are opaque (unified.proto): the last one is kept as given, never parsed;
//! the baseline reads as many rows as the feed delivered changes.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tongban_gateway::client::channel;
use tongban_gateway::identity::Identity;
use tongban_proto::v1 as pb;
use tongban_proto::v1::unified_client::UnifiedClient;

use crate::hub::Hub;

#[derive(Debug, Clone, Serialize)]
pub struct FeedRead {
    pub changes: u64,
    pub seconds: f64,
    pub rate: f64,
    /// The cursor of the last change read, as the hub gave it.
    pub last_cursor: String,
}

pub async fn read_from_start(hub: &Hub) -> anyhow::Result<FeedRead> {
    let platform = hub.identity(&Identity::Platform)?;
    let mut client =
        UnifiedClient::new(channel(&hub.endpoint, &platform).await?).max_decoding_message_size(64 * 1024 * 1024);
    let started = Instant::now();
    let mut stream = client
        .changes(pb::ChangesRequest {
            after: String::new(),
            kinds: Vec::new(),
            follow: false,
            page_size: 0,
        })
        .await
        .context("opening the feed")?
        .into_inner();
    let mut changes = 0u64;
    let mut last_cursor = String::new();
    while let Some(change) = stream.message().await.context("reading the feed")? {
        changes += 1;
        last_cursor = change.cursor;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(FeedRead {
        changes,
        seconds,
        rate: changes as f64 / seconds.max(1e-9),
        last_cursor,
    })
}
