//! The audit log's hash chain. Each entry carries a sequence number and a hash over the
//! previous entry's hash and its own fields, and the store keeps the head (last number
//! and hash): an entry altered, removed or slipped in afterwards, or entries cut off the
//! end, break the chain from there on. `tongban audit verify` walks it and prints the
//! head. The hash has no key: someone who rewrites the rest of the chain and the head
//! as well is caught only against a head kept outside the database (one printed by an
//! earlier verify, say).

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::store::{AuditEntry, Store, StoreError};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries read per page while verifying.
const PAGE: usize = 1_000;

/// An entry as the chain holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEntry {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    pub entry: AuditEntry,
    /// Hex SHA-256 of the previous hash and this entry ([`entry_hash`]).
    pub hash: String,
}

/// The time of an entry as the chain counts it: milliseconds since 1970 (what both
/// stores keep exactly; an impossible time before 1970 counts as 0).
pub fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The hash of entry `seq` after `previous`: every field length-prefixed, so that no
/// two different entries hash alike by moving text from one field to the next.
pub fn entry_hash(previous: &str, seq: i64, entry: &AuditEntry) -> String {
    let mut hasher = Sha256::new();
    let seq = seq.to_string();
    let at = unix_millis(entry.at).to_string();
    for field in [
        previous,
        &seq,
        &at,
        &entry.identity,
        &entry.action,
        &entry.subject,
        &entry.purpose,
        &entry.outcome,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    // The trace ID came with schema version 7: hashed only when present, so entries
    // chained before it keep their hashes, and adding or removing one is still seen.
    if !entry.trace_id.is_empty() {
        hasher.update((entry.trace_id.len() as u64).to_be_bytes());
        hasher.update(entry.trace_id.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `entry` to the audit log of `store`, and counts it once written.
pub async fn append(store: &impl Store, entry: &AuditEntry) -> Result<(), StoreError> {
    store.audit(entry).await?;
    crate::telemetry::metrics::metrics().audit_entry(&entry.action, &entry.outcome);
    Ok(())
}

/// Entries one commit of an [`Appender`] writes at most.
const GROUP: usize = 64;

/// Appends the entries of many concurrent callers to the audit log together ("group
/// commit"): the entries waiting when a commit starts go into the next one. Every append
/// locks the chain's head until its commit, so one transaction per entry let lookups
/// through one disk flush at a time; a group shares the flush. Each caller still returns
/// only once its own entry is committed (or with the error of its group's transaction).
#[derive(Debug, Clone)]
pub struct Appender {
    queue: tokio::sync::mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    entry: AuditEntry,
    written: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

impl Appender {
    /// Starts the task that writes to `store`; it ends when the last clone is dropped.
    /// Call from within the tokio runtime.
    pub fn start<S: Store + Clone>(store: S) -> Self {
        let (queue, mut waiting) = tokio::sync::mpsc::channel::<Pending>(GROUP);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(GROUP);
            while waiting.recv_many(&mut group, GROUP).await > 0 {
                let entries: Vec<AuditEntry> = group.iter().map(|pending| pending.entry.clone()).collect();
                let together = store.audit_all(&entries).await;
                for pending in group.drain(..) {
                    // An entry the store refuses (a bug, not an outage) must not fail the
                    // reads it happened to share a commit with: each is tried alone.
                    let result = match &together {
                        Err(StoreError::Internal(_)) if entries.len() > 1 => store.audit(&pending.entry).await,
                        other => other.clone(),
                    };
                    if result.is_ok() {
                        let entry = &pending.entry;
                        crate::telemetry::metrics::metrics().audit_entry(&entry.action, &entry.outcome);
                    }
                    // A caller that went away no longer waits for its answer.
                    let _ = pending.written.send(result);
                }
            }
        });
        Appender { queue }
    }

    /// Appends `entry`, with whatever other entries are waiting, and returns once it is
    /// committed.
    pub async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let (written, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { entry, written })
            .await
            .map_err(|_| StoreError::Internal("the audit appender has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the audit appender stopped before writing".to_owned()))?
    }
}

/// What verifying found.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainReport {
    /// Every entry follows from the one before, and the last is the head.
    Intact { entries: i64, head: String },
    /// The first entry (by sequence number) where the chain does not hold, and why.
    Broken { seq: i64, reason: String },
}

/// Walks the chain, one entry after the other.
#[derive(Debug)]
pub struct ChainCheck {
    previous: String,
    next_seq: i64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            previous: GENESIS.to_owned(),
            next_seq: 1,
        }
    }
}

impl ChainCheck {
    /// Checks the next entry; the first problem ends the walk.
    pub fn check(&mut self, chained: &ChainedEntry) -> Result<(), ChainReport> {
        let broken = |reason: String| ChainReport::Broken {
            seq: self.next_seq.min(chained.seq),
            reason,
        };
        if chained.seq != self.next_seq {
            return Err(broken(format!(
                "entry {} is missing (the next entry is number {})",
                self.next_seq, chained.seq
            )));
        }
        if entry_hash(&self.previous, chained.seq, &chained.entry) != chained.hash {
            return Err(broken(format!(
                "entry {} was altered: its hash does not follow from its fields and the entry before",
                chained.seq
            )));
        }
        self.previous.clone_from(&chained.hash);
        self.next_seq += 1;
        Ok(())
    }

    /// After the last entry: the head the store keeps must be where the walk ended.
    pub fn finish(self, head: (i64, String)) -> ChainReport {
        let entries = self.next_seq - 1;
        if head.0 != entries {
            return ChainReport::Broken {
                seq: entries + 1,
                reason: format!(
                    "the log ends at entry {entries} but its head says entry {}: entries were removed from the end",
                    head.0
                ),
            };
        }
        if head.1 != self.previous {
            return ChainReport::Broken {
                seq: entries,
                reason: format!("the head's hash is not that of entry {entries}: the head was altered"),
            };
        }
        ChainReport::Intact {
            entries,
            head: self.previous,
        }
    }
}

/// Verifies a store's whole audit chain, a page at a time.
pub async fn verify(store: &impl Store) -> Result<ChainReport, StoreError> {
    // The head first: entries appended while the walk runs come after it.
    let head = store.audit_head().await?;
    let mut check = ChainCheck::default();
    let mut after = 0;
    loop {
        let page = store.audit_chain(after, PAGE).await?;
        for chained in page.iter().take_while(|c| c.seq <= head.0) {
            if let Err(report) = check.check(chained) {
                return Ok(report);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE && last.seq < head.0 => after = last.seq,
            _ => break,
        }
    }
    let report = check.finish(head.clone());
    if !matches!(report, ChainReport::Intact { .. }) {
        return Ok(report);
    }
    // Entries beyond the head: appended since it was read (the head has moved on), or
    // hidden by setting the head back.
    if let Some(beyond) = store.audit_chain(head.0, 1).await?.first() {
        if store.audit_head().await?.0 < beyond.seq {
            return Ok(ChainReport::Broken {
                seq: beyond.seq,
                reason: format!("entry {} lies beyond the head: the head was set back", beyond.seq),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainedEntry> {
        let mut previous = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry {
                    at: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000 + seq as u64),
                    identity: "department:tax".into(),
                    action: "lookup".into(),
                    subject: format!("P{seq:011}"),
                    purpose: "case 2026-001".into(),
                    outcome: "granted".into(),
                    trace_id: if seq % 2 == 0 {
                        format!("{seq:032x}")
                    } else {
                        String::new()
                    },
                };
                let hash = entry_hash(&previous, seq, &entry);
                previous.clone_from(&hash);
                ChainedEntry { seq, entry, hash }
            })
            .collect()
    }

    fn walk(entries: &[ChainedEntry], head: (i64, String)) -> ChainReport {
        let mut check = ChainCheck::default();
        for e in entries {
            if let Err(report) = check.check(e) {
                return report;
            }
        }
        check.finish(head)
    }

    fn head(entries: &[ChainedEntry]) -> (i64, String) {
        entries
            .last()
            .map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()))
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        let entries = chain(5);
        assert_eq!(
            walk(&entries, head(&entries)),
            ChainReport::Intact {
                entries: 5,
                head: entries[4].hash.clone()
            }
        );
        assert!(matches!(
            walk(&[], (0, GENESIS.to_owned())),
            ChainReport::Intact { entries: 0, .. }
        ));
    }

    #[test]
    fn the_first_altered_removed_or_cut_entry_is_found() {
        let entries = chain(5);
        let mut altered = entries.clone();
        altered[2].entry.subject = "P99999999999".into();
        assert!(matches!(
            walk(&altered, head(&entries)),
            ChainReport::Broken { seq: 3, .. }
        ));
        // Moving text between fields changes the hash too.
        let mut shifted = entries.clone();
        shifted[1].entry.purpose = "case 2026-001granted".into();
        shifted[1].entry.outcome = String::new();
        assert!(matches!(
            walk(&shifted, head(&entries)),
            ChainReport::Broken { seq: 2, .. }
        ));
        // A trace ID erased from an entry that had one, or given to one that had none.
        let mut erased = entries.clone();
        erased[1].entry.trace_id = String::new();
        assert!(matches!(
            walk(&erased, head(&entries)),
            ChainReport::Broken { seq: 2, .. }
        ));
        let mut given = entries.clone();
        given[0].entry.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
        assert!(matches!(
            walk(&given, head(&entries)),
            ChainReport::Broken { seq: 1, .. }
        ));
        let mut removed = entries.clone();
        removed.remove(1);
        assert!(matches!(
            walk(&removed, head(&entries)),
            ChainReport::Broken { seq: 2, .. }
        ));
        assert!(matches!(
            walk(&entries[..3], head(&entries)),
            ChainReport::Broken { seq: 4, .. }
        ));
    }
}
