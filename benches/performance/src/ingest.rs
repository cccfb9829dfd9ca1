//! The city's ingest end to end: the seven departments push their files at once with
//! the real connector (`push_file`: mutual TLS, PushStream, resending), the hub
//! validates, adapts, resolves (with probabilistic matching) and commits, while the
//! platform follows the feed with the real `pull` into a JSON-lines file.
//!
//! Ingest time: from the first push until every department's last batch is
//! acknowledged (acknowledged means committed). Published time: until the platform has
//! read every change up to the feed's head after the pushes finished — the city
//! unified, committed and delivered.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use tongban_gateway::client::{push_file, PushOptions};
use tongban_gateway::identity::Identity;
use tongban_gateway::platform::{pull, PullOptions};

use crate::city::CityFiles;
use crate::hub::Hub;

#[derive(Debug, Clone, Serialize)]
pub struct Ingest {
    pub records: u64,
    /// Every record of the city is new and valid, so every one should be ACCEPTED;
    /// false when some were not (the figures are then not of the city's ingest).
    pub all_accepted: bool,
    pub accepted: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub rejected: u64,
    pub mentions: u64,
    pub ingest_seconds: f64,
    /// Records per second, first push to last acknowledgement.
    pub rate: f64,
    pub published_seconds: f64,
    /// Changes the platform read while following and when draining.
    pub changes_followed: u64,
    pub changes_drained: u64,
}

impl Ingest {
    /// Records answered otherwise than ACCEPTED.
    pub fn not_accepted(&self) -> u64 {
        self.unchanged + self.stale + self.rejected
    }
}

pub async fn run(hub: &Hub, city: &CityFiles, batch_size: usize, feed_out: &Path) -> anyhow::Result<Ingest> {
    let platform = hub.identity(&Identity::Platform)?;
    let mut follow = PullOptions::new(hub.endpoint.clone(), feed_out);
    follow.follow = true;
    let drain = PullOptions::new(hub.endpoint.clone(), feed_out);
    let mut pushes = Vec::new();
    for (department, file) in &city.files {
        let identity = hub.identity(&Identity::Department(*department))?;
        let mut options = PushOptions::new(hub.endpoint.clone());
        options.show_progress = false;
        options.batch_size = batch_size;
        pushes.push(async move { (department, push_file(file, &identity, &options).await) });
    }
    let (pushed_tx, pushed_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let follower = tokio::spawn(async move {
        let followed = pull(&platform, &follow, async {
            let _ = pushed_rx.await;
        })
        .await?;
        // A pull that does not follow ends at the head it found: everything the
        // acknowledged pushes committed.
        let drained = pull(&platform, &drain, std::future::pending()).await?;
        anyhow::Ok((followed.changes, drained.changes, started.elapsed()))
    });
    let reports = futures_util::future::join_all(pushes).await;
    let ingest = started.elapsed();
    let _ = pushed_tx.send(());
    let mut result = Ingest {
        records: 0,
        all_accepted: false,
        accepted: 0,
        unchanged: 0,
        stale: 0,
        rejected: 0,
        mentions: 0,
        ingest_seconds: ingest.as_secs_f64(),
        rate: 0.0,
        published_seconds: 0.0,
        changes_followed: 0,
        changes_drained: 0,
    };
    for (department, report) in reports {
        let report = report.with_context(|| format!("{department}: push"))?;
        if let Some(failure) = &report.failure {
            bail!(
                "{department}: the push failed: {failure}; the hub's log ends:\n{}",
                hub.log_tail()
            );
        }
        if !report.is_complete() {
            bail!("{department}: {} records were not delivered", report.not_delivered);
        }
        result.records += report.lines;
        result.accepted += report.accepted;
        result.unchanged += report.unchanged;
        result.stale += report.stale;
        result.rejected += report.rejected;
        result.mentions += report.mentions;
    }
    let (followed, drained, published) = follower
        .await
        .context("the platform's follower")?
        .context("the platform's pull")?;
    result.all_accepted = result.not_accepted() == 0 && result.accepted == result.records;
    result.rate = result.records as f64 / result.ingest_seconds.max(1e-9);
    result.published_seconds = published.as_secs_f64();
    result.changes_followed = followed;
    result.changes_drained = drained;
    Ok(result)
}

/// Up to `n` resident identity numbers (keys of person records) drawn evenly from the
/// feed the platform wrote: what the lookup benchmark asks for. Only each person's
/// current state counts (its line of the highest version; a person merged away has
/// none left), and each number once, so that people with many changes or numbers
/// shared by several records are not asked for more often than the others.
pub fn sample_identifiers(feed: &Path, n: usize, seed: u64) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(feed).with_context(|| format!("opening {}", feed.display()))?;
    // unified_id → (version, its resident identity numbers at that version).
    let mut current: HashMap<String, (i64, Vec<String>)> = HashMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", feed.display()))?;
        let change: serde_json::Value = serde_json::from_str(&line).context("a feed line that is not JSON")?;
        if change.get("kind").and_then(|k| k.as_str()) != Some("person") {
            continue;
        }
        let Some(unified_id) = change.get("unified_id").and_then(|i| i.as_str()) else {
            bail!("a feed line without unified_id");
        };
        let version = change.get("version").and_then(|v| v.as_i64()).unwrap_or_default();
        // Delivery is at-least-once: a change seen again is no newer.
        if current.get(unified_id).is_some_and(|(held, _)| *held > version) {
            continue;
        }
        let identifiers = change.get("identifiers").and_then(|i| i.as_array());
        let keys = identifiers
            .into_iter()
            .flatten()
            .filter(|identifier| {
                identifier.get("key").and_then(|k| k.as_bool()) == Some(true)
                    && identifier.get("scheme").and_then(|s| s.as_str()) == Some("resident_id")
            })
            .filter_map(|identifier| identifier.get("value").and_then(|v| v.as_str()).map(str::to_owned))
            .collect();
        current.insert(unified_id.to_owned(), (version, keys));
    }
    // Sorted before shuffling, so that the seed alone decides the sample.
    let distinct: BTreeSet<String> = current.into_values().flat_map(|(_, keys)| keys).collect();
    let mut sample: Vec<String> = distinct.into_iter().collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut sample);
    sample.truncate(n);
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_drawn_from_current_states_once_each() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let feed = dir.path().join("feed.jsonl");
        let person = |id: &str, version: i64, numbers: &[&str]| {
            let identifiers: Vec<serde_json::Value> = numbers
                .iter()
                .map(|n| serde_json::json!({"scheme": "resident_id", "value": n, "key": true}))
                .collect();
            serde_json::json!({"unified_id": id, "kind": "person", "version": version, "identifiers": identifiers})
                .to_string()
        };
        let lines = [
            // P1 changed many times; only its current number counts.
            person("P1", 1, &["old1"]),
            person("P1", 2, &["old2"]),
            person("P1", 3, &["a"]),
            // P2 shares a number with P3: asked for once.
            person("P2", 1, &["b", "shared"]),
            person("P3", 1, &["shared"]),
            // P4 merged away: nothing left to ask for.
            person("P4", 1, &["gone"]),
            serde_json::json!({"unified_id": "P4", "kind": "person", "version": 2, "merged_into": "P2"}).to_string(),
            // A change delivered again after a newer one.
            person("P1", 2, &["old2"]),
            serde_json::json!({"unified_id": "O1", "kind": "organisation", "version": 1,
                "identifiers": [{"scheme": "resident_id", "value": "org", "key": true}]})
            .to_string(),
            serde_json::json!({"unified_id": "P5", "kind": "person", "version": 1,
                "identifiers": [{"scheme": "passport", "value": "E1", "key": true},
                                {"scheme": "resident_id", "value": "nokey", "key": false}]})
            .to_string(),
        ];
        std::fs::write(&feed, lines.join("\n") + "\n").expect("writing the feed");
        let mut all = sample_identifiers(&feed, 100, 7).expect("sampled");
        all.sort();
        assert_eq!(all, ["a", "b", "shared"]);
        assert_eq!(sample_identifiers(&feed, 2, 7).expect("sampled").len(), 2);
        assert_eq!(
            sample_identifiers(&feed, 2, 7).expect("sampled"),
            sample_identifiers(&feed, 2, 7).expect("sampled")
        );
    }
}
