//! Helpers for the tests of unified records: pushing synthetic records as their
//! departments, reading the change feed and lookups as the platform, and judging the
//! clusters the hub built against the synthetic city's ground truth.
//!
//! A mention is addressed as the platform sees it: (record_type, source_id, role, index).
//! The hub says where each mention went twice: in the push result of the record that
//! carried it (`RecordResult.mentions`, at that moment) and in the `sources` of the
//! unified records of the feed (now, after any later merge). [`FeedState`] gives the
//! second view; [`pairwise`] compares a view with the truth.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tongban_adapters::model::EntityKind;
use tongban_adapters::normalise;
use tongban_adapters::synth::{SyntheticRecord, TrueEntity};
use tongban_adapters::RecordType;
use tongban_gateway::identity::Identity;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_proto::v1::unified_client::UnifiedClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::hub::{department, TestHub};

/// The address of one mention: which record, which role in it, which position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MentionAddr {
    pub record_type: String,
    pub source_id: String,
    pub role: String,
    pub index: u32,
}

impl MentionAddr {
    pub fn new(record_type: &str, source_id: &str, role: &str, index: u32) -> MentionAddr {
        MentionAddr {
            record_type: record_type.to_owned(),
            source_id: source_id.to_owned(),
            role: role.to_owned(),
            index,
        }
    }
}

impl From<&pb::MentionRef> for MentionAddr {
    fn from(m: &pb::MentionRef) -> Self {
        MentionAddr::new(&m.record_type, &m.source_id, &m.role, m.index)
    }
}

/// The envelope a department would send for a synthetic record.
pub fn envelope(record: &SyntheticRecord) -> pb::Envelope {
    pb::Envelope {
        record_type: record.record_type.as_str().to_owned(),
        source_id: record.source_id.clone(),
        source_version: record.source_version,
        deleted: record.deleted,
        payload: record.payload.to_string().into(),
    }
}

/// An envelope of a department's native record, written by hand in a test.
pub fn env(record_type: &str, source_id: &str, source_version: i64, payload: serde_json::Value) -> pb::Envelope {
    pb::Envelope {
        record_type: record_type.to_owned(),
        source_id: source_id.to_owned(),
        source_version,
        deleted: false,
        payload: payload.to_string().into(),
    }
}

/// The department identity allowed to push `record_type`.
pub fn owner(record_type: &str) -> Identity {
    let record_type: RecordType = record_type.parse().expect("known record type");
    department(record_type.department().as_str())
}

/// A Unified client as `identity`.
pub async fn unified(hub: &TestHub, identity: &Identity) -> UnifiedClient<Channel> {
    UnifiedClient::new(hub.channel(identity).await)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

/// Attempts at one batch while the hub answers UNAVAILABLE, which its contract tells
/// clients to resend (the store was busy or batches collided; nothing was stored).
const PUSH_ATTEMPTS: usize = 20;

/// UNAVAILABLE answers resent by [`push`] in this process, for the tests to report.
pub static RESENT: AtomicUsize = AtomicUsize::new(0);

/// Pushes one batch and returns its results, resending it while the hub answers
/// UNAVAILABLE; panics on any other error.
pub async fn push(
    client: &mut ExchangeClient<Channel>,
    batch_id: &str,
    envelopes: Vec<pb::Envelope>,
) -> Vec<pb::RecordResult> {
    let mut last = None;
    for attempt in 0..PUSH_ATTEMPTS {
        let request = pb::PushRequest {
            batch_id: batch_id.to_owned(),
            envelopes: envelopes.clone(),
        };
        match client.push(request).await {
            Ok(response) => {
                let results = response.into_inner().results;
                assert_eq!(results.len(), envelopes.len(), "one result per envelope");
                return results;
            }
            Err(status) if status.code() == Code::Unavailable => {
                last = Some(status);
                RESENT.fetch_add(1, Ordering::Relaxed);
                // The hub asks for a retry after a delay; back off a little more each time.
                tokio::time::sleep(Duration::from_millis(50 * (attempt as u64 + 1))).await;
            }
            Err(status) => panic!("push of batch {batch_id} failed: {status:?}"),
        }
    }
    panic!("push of batch {batch_id} still UNAVAILABLE after {PUSH_ATTEMPTS} attempts: {last:?}");
}

/// The outcome of a result.
pub fn outcome(result: &pb::RecordResult) -> pb::Outcome {
    pb::Outcome::try_from(result.outcome).expect("known outcome")
}

/// Where the mentions of ACCEPTED results went, as the push results say.
pub fn resolutions(results: &[pb::RecordResult]) -> HashMap<MentionAddr, String> {
    results
        .iter()
        .filter(|r| outcome(r) == pb::Outcome::Accepted)
        .flat_map(|r| {
            r.mentions.iter().map(|m| {
                (
                    MentionAddr::new(&r.record_type, &r.source_id, &m.role, m.index),
                    m.unified_id.clone(),
                )
            })
        })
        .collect()
}

/// Every change of the feed after `after`, without following: the stream ends at the
/// last change committed.
pub async fn read_feed(client: &mut UnifiedClient<Channel>, after: &str) -> Vec<pb::Change> {
    let request = pb::ChangesRequest {
        after: after.to_owned(),
        kinds: Vec::new(),
        follow: false,
        page_size: 0,
    };
    let mut stream = client.changes(request).await.expect("changes").into_inner();
    let mut changes = Vec::new();
    while let Some(change) = stream.message().await.expect("change") {
        changes.push(change);
    }
    changes
}

/// A cursor as a number, to compare positions (cursors are decimal strings).
pub fn position(change: &pb::Change) -> i64 {
    change.cursor.parse().expect("a feed cursor is a decimal number")
}

/// The purpose the helpers below declare.
pub const PURPOSE: &str = "tongban-tests";

/// A lookup of one unified ID, for everything the caller may see.
pub async fn lookup_id(client: &mut UnifiedClient<Channel>, id: &str) -> Result<pb::LookupResponse, Status> {
    lookup(client, pb::lookup_request::By::UnifiedId(id.to_owned()), PURPOSE, &[]).await
}

/// A lookup by an identifier in any form, for everything the caller may see.
pub async fn lookup_identifier(client: &mut UnifiedClient<Channel>, text: &str) -> Result<pb::LookupResponse, Status> {
    lookup(
        client,
        pb::lookup_request::By::Identifier(text.to_owned()),
        PURPOSE,
        &[],
    )
    .await
}

/// A lookup declaring `purpose` and asking for `parts` (empty: all the caller may see).
pub async fn lookup(
    client: &mut UnifiedClient<Channel>,
    by: pb::lookup_request::By,
    purpose: &str,
    parts: &[&str],
) -> Result<pb::LookupResponse, Status> {
    let request = pb::LookupRequest {
        by: Some(by),
        purpose: purpose.to_owned(),
        parts: parts.iter().map(|p| (*p).to_owned()).collect(),
    };
    client.lookup(request).await.map(tonic::Response::into_inner)
}

/// A unified record's JSON.
pub fn record_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("unified record is not JSON ({e}): {text}"))
}

/// The feed replayed into the state a consumer would hold: the last change of every
/// unified ID.
#[derive(Debug, Default)]
pub struct FeedState {
    pub latest: BTreeMap<String, pb::Change>,
}

impl FeedState {
    pub fn from_changes<'a>(changes: impl IntoIterator<Item = &'a pb::Change>) -> FeedState {
        let mut state = FeedState::default();
        for change in changes {
            state.apply(change);
        }
        state
    }

    /// Applies a change the way the contract tells consumers to: only if its version
    /// is above the one held.
    pub fn apply(&mut self, change: &pb::Change) {
        let newer = self
            .latest
            .get(&change.unified_id)
            .is_none_or(|held| change.version > held.version);
        if newer {
            self.latest.insert(change.unified_id.clone(), change.clone());
        }
    }

    /// The ID `id` finally redirects to (itself when it was not merged).
    pub fn survivor<'a>(&'a self, mut id: &'a str) -> &'a str {
        for _ in 0..=self.latest.len() {
            match self.latest.get(id) {
                Some(change) if !change.merged_into.is_empty() => id = &change.merged_into,
                _ => return id,
            }
        }
        panic!("redirects of {id} form a cycle");
    }

    /// Entities not merged away.
    pub fn live(&self) -> impl Iterator<Item = &pb::Change> {
        self.latest.values().filter(|c| c.merged_into.is_empty())
    }

    /// Where every mention is now: the live entity listing it among its sources.
    /// Panics when a mention is listed by two live entities (one mention, one entity).
    pub fn clusters(&self) -> HashMap<MentionAddr, String> {
        let mut out: HashMap<MentionAddr, String> = HashMap::new();
        for change in self.live() {
            for source in &change.sources {
                if let Some(other) = out.insert(source.into(), change.unified_id.clone()) {
                    panic!(
                        "mention {source:?} is a source of two live entities, {other} and {}",
                        change.unified_id
                    );
                }
            }
        }
        out
    }
}

/// The ground truth of records as pushed: who each mention of the current, not
/// withdrawn version of every record really is.
pub fn truth(records: &[SyntheticRecord]) -> HashMap<MentionAddr, TrueEntity> {
    let mut current: HashMap<(RecordType, &str), &SyntheticRecord> = HashMap::new();
    for record in records {
        let key = (record.record_type, record.source_id.as_str());
        let newer = current
            .get(&key)
            .is_none_or(|held| record.source_version > held.source_version);
        if newer {
            current.insert(key, record);
        }
    }
    current
        .values()
        .filter(|r| !r.deleted)
        .flat_map(|r| {
            r.truth.iter().map(|t| {
                let addr = MentionAddr::new(r.record_type.as_str(), &r.source_id, t.slot.role.as_str(), t.slot.index);
                (addr, t.entity)
            })
        })
        .collect()
}

/// A deterministic key of a mention: kind, scheme and value.
pub type Key = (EntityKind, String, String);

/// The keys each mention of `records` carries, read the way the hub's pipeline reads
/// them (the department's adapter, then normalisation). Used only to tell which
/// mentions deterministic resolution must put together; the truth says who they are.
pub fn mention_keys(records: &[SyntheticRecord]) -> HashMap<MentionAddr, Vec<Key>> {
    let mut out = HashMap::new();
    for record in records.iter().filter(|r| !r.deleted) {
        let reading = tongban_adapters::read(record.record_type, &record.payload).expect("a synthetic record reads");
        for raw in &reading.mentions {
            let mention = normalise::mention(raw);
            let keys = mention
                .keys()
                .map(|i| (mention.kind, i.scheme.as_str().to_owned(), i.value.clone()))
                .collect();
            let addr = MentionAddr::new(
                record.record_type.as_str(),
                &record.source_id,
                mention.slot.role.as_str(),
                mention.slot.index,
            );
            out.insert(addr, keys);
        }
    }
    out
}

/// Groups of mentions that share deterministic keys, directly or through others:
/// each group must be one unified entity, whatever order the records came in.
pub fn key_groups(keys: &HashMap<MentionAddr, Vec<Key>>) -> Vec<Vec<MentionAddr>> {
    let mentions: Vec<&MentionAddr> = keys.keys().filter(|m| !keys[*m].is_empty()).collect();
    let mut parent: Vec<usize> = (0..mentions.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with_key: HashMap<&Key, usize> = HashMap::new();
    for (i, mention) in mentions.iter().enumerate() {
        for key in &keys[*mention] {
            match first_with_key.get(key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    first_with_key.insert(key, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<MentionAddr>> = BTreeMap::new();
    for (i, mention) in mentions.iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push((*mention).clone());
    }
    groups.into_values().collect()
}

/// Asserts that every group of mentions sharing keys resolved to one unified ID in
/// `resolved`. Returns the number of groups checked.
pub fn assert_key_groups_unified(
    keys: &HashMap<MentionAddr, Vec<Key>>,
    resolved: &HashMap<MentionAddr, String>,
) -> usize {
    let groups = key_groups(keys);
    for group in &groups {
        let ids: BTreeSet<&String> = group
            .iter()
            .map(|m| {
                resolved
                    .get(m)
                    .unwrap_or_else(|| panic!("mention {m:?} was not resolved"))
            })
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "mentions sharing deterministic keys went to several entities {ids:?}: {group:?}"
        );
    }
    groups.len()
}

/// Pairwise comparison of a clustering with the truth, over the mentions both know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairQuality {
    /// Pairs of mentions put in one entity.
    pub predicted_pairs: u64,
    /// Pairs of mentions of one true entity.
    pub true_pairs: u64,
    /// Pairs in both.
    pub correct_pairs: u64,
    /// correct / predicted (1 when nothing was put together).
    pub precision: f64,
    /// correct / true (1 when the truth has no pairs).
    pub recall: f64,
}

/// Pairwise precision and recall of `resolved` (mention → unified ID) against `truth`.
pub fn pairwise(resolved: &HashMap<MentionAddr, String>, truth: &HashMap<MentionAddr, TrueEntity>) -> PairQuality {
    fn pairs(n: u64) -> u64 {
        n * n.saturating_sub(1) / 2
    }
    let mut by_predicted: HashMap<&String, u64> = HashMap::new();
    let mut by_truth: HashMap<TrueEntity, u64> = HashMap::new();
    let mut by_both: HashMap<(&String, TrueEntity), u64> = HashMap::new();
    for (mention, id) in resolved {
        let Some(entity) = truth.get(mention) else {
            continue;
        };
        *by_predicted.entry(id).or_default() += 1;
        *by_truth.entry(*entity).or_default() += 1;
        *by_both.entry((id, *entity)).or_default() += 1;
    }
    let predicted_pairs: u64 = by_predicted.values().map(|n| pairs(*n)).sum();
    let true_pairs: u64 = by_truth.values().map(|n| pairs(*n)).sum();
    let correct_pairs: u64 = by_both.values().map(|n| pairs(*n)).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    PairQuality {
        predicted_pairs,
        true_pairs,
        correct_pairs,
        precision: ratio(correct_pairs, predicted_pairs),
        recall: ratio(correct_pairs, true_pairs),
    }
}

/// The pairs of mentions of different true entities put into one entity, for a
/// failure message that names them.
pub fn wrong_merges(
    resolved: &HashMap<MentionAddr, String>,
    truth: &HashMap<MentionAddr, TrueEntity>,
) -> Vec<(String, Vec<(MentionAddr, TrueEntity)>)> {
    let mut clusters: BTreeMap<&String, Vec<(MentionAddr, TrueEntity)>> = BTreeMap::new();
    for (mention, id) in resolved {
        if let Some(entity) = truth.get(mention) {
            clusters.entry(id).or_default().push((mention.clone(), *entity));
        }
    }
    clusters
        .into_iter()
        .filter(|(_, members)| members.iter().map(|(_, e)| e).collect::<BTreeSet<_>>().len() > 1)
        .map(|(id, members)| (id.clone(), members))
        .collect()
}

#[cfg(test)]
mod tests {
    use tongban_adapters::model::EntityKind;

    use super::*;

    fn person(id: u32) -> TrueEntity {
        TrueEntity {
            kind: EntityKind::Person,
            id,
        }
    }

    fn m(n: u32) -> MentionAddr {
        MentionAddr::new("tax.taxpayer", &n.to_string(), "taxpayer", 0)
    }

    #[test]
    fn pairwise_counts_pairs() {
        // Truth: {1,2,3} are P1, {4,5} are P2. Predicted: {1,2}, {3}, {4,5}.
        let truth: HashMap<_, _> = [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
            .into_iter()
            .map(|(n, p)| (m(n), person(p)))
            .collect();
        let resolved: HashMap<_, _> = [(1, "A"), (2, "A"), (3, "B"), (4, "C"), (5, "C")]
            .into_iter()
            .map(|(n, id)| (m(n), id.to_owned()))
            .collect();
        let q = pairwise(&resolved, &truth);
        assert_eq!((q.predicted_pairs, q.true_pairs, q.correct_pairs), (2, 4, 2));
        assert_eq!(q.precision, 1.0);
        assert_eq!(q.recall, 0.5);
        assert!(wrong_merges(&resolved, &truth).is_empty());

        // 3 and 4 put together: one wrong pair.
        let mut merged = resolved.clone();
        merged.insert(m(3), "C".to_owned());
        let q = pairwise(&merged, &truth);
        assert_eq!((q.predicted_pairs, q.correct_pairs), (4, 2));
        assert_eq!(q.precision, 0.5);
        assert_eq!(wrong_merges(&merged, &truth).len(), 1);
    }

    #[test]
    fn key_groups_join_through_shared_keys() {
        let key = |s: &str| (EntityKind::Person, "resident_id".to_owned(), s.to_owned());
        let keys: HashMap<_, _> = [
            (m(1), vec![key("a")]),
            (m(2), vec![key("a"), key("b")]),
            (m(3), vec![key("b")]),
            (m(4), vec![key("c")]),
            (m(5), vec![]),
        ]
        .into_iter()
        .collect();
        let mut groups: Vec<Vec<MentionAddr>> = key_groups(&keys)
            .into_iter()
            .map(|mut g| {
                g.sort();
                g
            })
            .collect();
        groups.sort();
        assert_eq!(groups, vec![vec![m(1), m(2), m(3)], vec![m(4)]]);
    }
}
