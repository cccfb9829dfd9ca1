//! Lookups of a person by identifier (`Unified.Lookup`, the "GetPerson" of the
//! issue) from many callers at once, each with a connection of its own, as a
//! department asking for what another department holds (with a purpose: every read is
//! audited).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tongban_adapters::Department;
use tongban_gateway::client::channel;
use tongban_gateway::identity::Identity;
use tongban_proto::v1 as pb;
use tongban_proto::v1::unified_client::UnifiedClient;

use crate::hub::Hub;
use crate::load::{self, Step, Summary};

/// The department that asks.
const ASKING: Department = Department::Hrss;

pub async fn run(hub: &Hub, identifiers: Vec<String>, callers: usize, duration: Duration) -> anyhow::Result<Summary> {
    anyhow::ensure!(!identifiers.is_empty(), "no identifiers to look up");
    let identity = hub.identity(&Identity::Department(ASKING))?;
    let mut clients = Vec::with_capacity(callers);
    for _ in 0..callers {
        let channel = channel(&hub.endpoint, &identity)
            .await
            .context("connecting a lookup caller")?;
        clients.push(UnifiedClient::new(channel).max_decoding_message_size(64 * 1024 * 1024));
    }
    let clients = Arc::new(clients);
    let identifiers = Arc::new(identifiers);
    Ok(load::closed_loop(callers, duration, move |caller| {
        let (clients, identifiers) = (clients.clone(), identifiers.clone());
        async move {
            let (Some(client), Some(identifier)) = (
                clients.get(caller),
                identifiers.get(fastrand::usize(..identifiers.len())),
            ) else {
                return Step::Failed("no client or identifier".into());
            };
            let request = pb::LookupRequest {
                by: Some(pb::lookup_request::By::Identifier(identifier.clone())),
                purpose: "performance benchmark".to_owned(),
                parts: Vec::new(),
            };
            match client.clone().lookup(request).await {
                Ok(_) => Step::Done,
                Err(status) => Step::Failed(format!("{:?}: {}", status.code(), status.message())),
            }
        }
    })
    .await)
}
