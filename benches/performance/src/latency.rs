//! Single-record pushes (`Exchange.Push` with one envelope): first the most the hub
//! takes with many callers at once (closed loop), then an open loop at half that rate,
//! latency measured from each push's scheduled start.
//!
//! The records are new to the hub — another city's (another seed), their source IDs
//! prefixed so that none is a version of a record already held — each pushed by its
//! own department: every push is validated, adapted, resolved and committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tongban_adapters::synth::{self, CityConfig};
use tongban_adapters::Department;
use tongban_gateway::client::connect;
use tongban_gateway::identity::Identity;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tonic::transport::Channel;

use crate::hub::Hub;
use crate::load::{self, Step, Summary};

/// Records of a city the hub has not seen, one department's at a time, as envelopes.
pub fn fresh_records(people: usize, seed: u64) -> Vec<(Department, pb::Envelope)> {
    let mut records = Vec::new();
    for (department, written) in synth::city_by_department(&CityConfig { people, seed }) {
        records.extend(written.into_iter().filter(|r| !r.deleted).map(|r| {
            (
                department,
                pb::Envelope {
                    record_type: r.record_type.as_str().to_owned(),
                    source_id: format!("bench-{}", r.source_id),
                    source_version: r.source_version,
                    deleted: false,
                    payload: r.payload.to_string().into_bytes(),
                },
            )
        }));
    }
    // Interleaved, as pushes of several departments arrive.
    fastrand::Rng::with_seed(seed).shuffle(&mut records);
    records
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Callers of the closed loop: twice the hub's pool on PostgreSQL, so that the
    /// store always has the next push waiting; as many on the embedded store, for
    /// the same load (its one connection is never idle either).
    pub max_callers: usize,
    /// The closed loop: its rate is the most the hub took.
    pub max: Summary,
    /// The open loop at half of it.
    pub half: Summary,
    pub half_rate: f64,
}

/// Pushes records from `records` in order: the max-rate phase takes the first ones,
/// the half-rate phase goes on after them.
pub async fn run(
    hub: &Hub,
    records: Arc<Vec<(Department, pb::Envelope)>>,
    pool_size: usize,
    max_seconds: Duration,
    half_seconds: Duration,
) -> anyhow::Result<Latency> {
    let max_callers = 2 * pool_size;
    let mut clients = HashMap::new();
    for department in Department::ALL {
        let identity = hub.identity(&Identity::Department(department))?;
        let client = connect(&hub.endpoint, &identity)
            .await
            .context("connecting a department")?;
        clients.insert(department, client);
    }
    let clients = Arc::new(clients);
    let next = Arc::new(AtomicUsize::new(0));
    let max = {
        let (clients, records, next) = (clients.clone(), records.clone(), next.clone());
        load::closed_loop(max_callers, max_seconds, move |_| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            push(clients.clone(), records.clone(), n)
        })
        .await
    };
    let used = next.load(Ordering::Relaxed).min(records.len());
    eprintln!(
        "bench:   max rate {:.0} pushes/s ({} callers, p50 {:.1} ms, {} errors{})",
        max.rate,
        max_callers,
        max.p50_ms,
        max.errors,
        if max.exhausted { ", records ran out" } else { "" }
    );
    let half_rate = max.rate / 2.0;
    let available = (records.len() - used) as u64;
    let half = load::open_loop(half_rate, half_seconds, available, |n| {
        push(clients.clone(), records.clone(), used + n as usize)
    })
    .await;
    Ok(Latency {
        max_callers,
        max,
        half,
        half_rate,
    })
}

async fn push(
    clients: Arc<HashMap<Department, ExchangeClient<Channel>>>,
    records: Arc<Vec<(Department, pb::Envelope)>>,
    n: usize,
) -> Step {
    let Some((department, envelope)) = records.get(n) else {
        return Step::Exhausted;
    };
    let Some(client) = clients.get(department) else {
        return Step::Failed(format!("no client for {department}"));
    };
    let request = pb::PushRequest {
        batch_id: n.to_string(),
        envelopes: vec![envelope.clone()],
    };
    match client.clone().push(request).await {
        Ok(response) => match response.into_inner().results.first().map(|r| r.outcome()) {
            Some(pb::Outcome::Accepted) => Step::Done,
            other => Step::Failed(format!("answered {other:?}, not ACCEPTED")),
        },
        Err(status) => Step::Failed(format!("{:?}: {}", status.code(), status.message())),
    }
}
