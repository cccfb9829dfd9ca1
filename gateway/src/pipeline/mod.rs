//! The pipeline of a pushed batch: authorise → validate → adapt → normalise →
//! (resolve and commit, in the store's transaction) → answer.
//!
//! Data flows one way: envelopes in, [`RecordResult`]s out. Resolution happens inside
//! the store's transaction, because it must see the entities as they are once the
//! batch's keys are locked; the decisions themselves are made by [`crate::resolve`].

pub mod adapt;
pub mod validate;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;
use tracing::Instrument;

use tongban_adapters::{Department, RecordType};

use crate::config::Limits;
use crate::identity::Identity;
use crate::record::{Envelope, Outcome, RecordResult, Submission};
use crate::statistics::Traffic;
use crate::store::{AuditEntry, Receipt, Store, StoreError};
use crate::telemetry::metrics::{metrics, Stage};

pub use validate::{SchemaError, Validator};

/// Runs one synchronous stage of a batch in its span and times it.
fn staged<T>(stage: Stage, department: &str, records: usize, work: impl FnOnce() -> T) -> T {
    let span = tracing::info_span!("stage", otel.name = stage.as_str(), department, records);
    let started = Instant::now();
    let out = span.in_scope(work);
    metrics().stage(stage, started.elapsed());
    out
}

/// Why a whole batch was refused; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{identity} is not a department and may not push records")]
    NotADepartment { identity: Identity },
    #[error("{identity} may not push {record_type} records; they belong to {owner}")]
    NotOwner {
        identity: Identity,
        record_type: RecordType,
        owner: Department,
    },
    #[error("the batch holds no envelopes")]
    EmptyBatch,
    #[error("the batch holds {count} envelopes; at most {max} are accepted per batch")]
    TooManyRecords { count: usize, max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PushError {
    /// A metric label for the refusal: a closed set, no caller text.
    fn reason(&self) -> &'static str {
        match self {
            PushError::NotADepartment { .. } => "not_a_department",
            PushError::NotOwner { .. } => "not_owner",
            PushError::EmptyBatch => "empty",
            PushError::TooManyRecords { .. } => "too_many_records",
            PushError::Store(_) => "store",
        }
    }
}

/// The stages a batch goes through, built once at start-up and shared by every call.
pub struct Pipeline<S> {
    validator: Validator,
    store: S,
    max_batch_records: usize,
    /// Woken after every commit, for the change feeds that follow.
    committed: Arc<Notify>,
    /// This process's operational statistics, shared with the registry.
    traffic: Arc<Traffic>,
}

impl<S: Store> Pipeline<S> {
    pub fn new(store: S, limits: &Limits) -> Result<Self, SchemaError> {
        Ok(Pipeline {
            validator: Validator::new(limits.max_payload_bytes)?,
            store,
            max_batch_records: limits.max_batch_records,
            committed: Arc::new(Notify::new()),
            traffic: Arc::new(Traffic::new()),
        })
    }

    /// Notified after every commit of this pipeline.
    pub fn commits(&self) -> Arc<Notify> {
        Arc::clone(&self.committed)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The operational statistics this pipeline counts into.
    pub fn traffic(&self) -> Arc<Traffic> {
        Arc::clone(&self.traffic)
    }

    /// Pushes one batch. Either every envelope gets a result, all committed, or the
    /// batch fails as a whole and nothing of it is acknowledged.
    ///
    /// Each stage runs in its own span (`validate`, `adapt`, `commit` with `resolve`
    /// inside) and is timed; the span attributes are counts, never record content.
    pub async fn push(&self, identity: &Identity, envelopes: Vec<Envelope>) -> Result<Vec<RecordResult>, PushError> {
        let mut watch = self.traffic.watch_push(identity); // statistics: a refused batch unless answered below
        let result = self.run(identity, envelopes, &mut watch).await;
        if let Err(refusal) = &result {
            metrics().refused_batch(identity, refusal.reason());
        }
        result
    }

    async fn run(
        &self,
        identity: &Identity,
        envelopes: Vec<Envelope>,
        watch: &mut crate::statistics::PushWatch<'_>,
    ) -> Result<Vec<RecordResult>, PushError> {
        if let Err(refusal) = self.authorise(identity, &envelopes) {
            self.audit_refusal(identity, &refusal, &envelopes).await?;
            return Err(refusal);
        }
        let department = identity.folder_name();
        let records = envelopes.len();

        let validated: Vec<_> = staged(Stage::Validate, department, records, || {
            envelopes
                .into_iter()
                .map(|envelope| self.validator.check_parsed(envelope))
                .collect()
        });
        let batch: Vec<Submission> = staged(Stage::Adapt, department, records, || {
            validated
                .into_iter()
                .map(|checked| match checked {
                    Ok((record, payload)) => adapt::adapt(record, &payload),
                    Err(rejection) => Submission::Rejected(rejection),
                })
                .collect()
        });

        let receipt = Receipt {
            identity: identity.clone(),
            received_at: SystemTime::now(),
        };
        let span = tracing::info_span!(
            "commit",
            department,
            records,
            accepted = tracing::field::Empty,
            unchanged = tracing::field::Empty,
            stale = tracing::field::Empty,
            rejected = tracing::field::Empty,
        );
        let started = Instant::now();
        let results = self.store.commit(&receipt, batch).instrument(span.clone()).await?;
        metrics().stage(Stage::Commit, started.elapsed());
        for (field, outcome) in [
            ("accepted", Outcome::Accepted),
            ("unchanged", Outcome::Unchanged),
            ("stale", Outcome::Stale),
            ("rejected", Outcome::Rejected),
        ] {
            span.record(field, results.iter().filter(|r| r.outcome == outcome).count());
        }
        metrics().batch(identity, &results);
        self.committed.notify_waiters();
        watch.answered(&results);
        Ok(results)
    }

    /// A department pushes only its own record types; the batch must be of a sane size.
    /// An unknown record type is not refused here: it is a defect of that one record,
    /// rejected and quarantined with the others' results intact. Who may push what is
    /// checked before the size, so that an attempt on another's record types is refused
    /// (and audited) as such however large its batch.
    fn authorise(&self, identity: &Identity, envelopes: &[Envelope]) -> Result<(), PushError> {
        if !matches!(identity, Identity::Department(_)) {
            return Err(PushError::NotADepartment {
                identity: identity.clone(),
            });
        }
        for envelope in envelopes {
            if let Ok(record_type) = envelope.record_type.parse::<RecordType>() {
                if !identity.may_push(record_type) {
                    return Err(PushError::NotOwner {
                        identity: identity.clone(),
                        record_type,
                        owner: record_type.department(),
                    });
                }
            }
        }
        if envelopes.is_empty() {
            return Err(PushError::EmptyBatch);
        }
        if envelopes.len() > self.max_batch_records {
            return Err(PushError::TooManyRecords {
                count: envelopes.len(),
                max: self.max_batch_records,
            });
        }
        Ok(())
    }

    /// Writes a batch refused for who sent it to the audit log, before the refusal is
    /// answered: a caller reaching for records that are not its own (an identity that
    /// is no department, a department pushing another's record type). The entry names
    /// record types, never a value of a payload. A batch refused for its size is no one's
    /// attempt on anyone's records, and is not audited. If the audit cannot be written,
    /// the batch fails as the store's outage (nothing was stored either way).
    async fn audit_refusal(
        &self,
        identity: &Identity,
        refusal: &PushError,
        envelopes: &[Envelope],
    ) -> Result<(), PushError> {
        let (subject, why) = match refusal {
            PushError::NotADepartment { .. } => {
                // Only record types of the catalogue: an unknown one is the caller's text.
                let mut known: Vec<&str> = envelopes
                    .iter()
                    .filter_map(|e| e.record_type.parse::<RecordType>().ok())
                    .map(|t| t.as_str())
                    .collect();
                known.sort_unstable();
                known.dedup();
                let subject = if known.is_empty() {
                    format!("a batch of {} records", envelopes.len())
                } else {
                    known.join(", ")
                };
                (subject, "not a department".to_owned())
            }
            PushError::NotOwner { record_type, owner, .. } => (
                record_type.as_str().to_owned(),
                format!("the record type belongs to {}", Identity::Department(*owner)),
            ),
            PushError::EmptyBatch | PushError::TooManyRecords { .. } | PushError::Store(_) => return Ok(()),
        };
        let entry = AuditEntry {
            at: SystemTime::now(),
            identity: identity.to_string(),
            action: "push".to_owned(),
            subject,
            purpose: String::new(),
            outcome: format!("refused: {why}"),
            trace_id: crate::telemetry::current_trace_id(),
        };
        crate::audit::append(&self.store, &entry).await?;
        Ok(())
    }
}
