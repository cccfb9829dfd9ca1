//! Reading unified records: lookups by ID or identifier and the change feed, under the
//! sharing rules, every read of personal data and every refusal written to the audit
//! log before the answer leaves.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tongban_adapters::model::EntityKind;
use tongban_adapters::normalise;

use crate::identity::Identity;
use crate::pseudonym::Pseudonymiser;
use crate::sharing::{Part, SharingRules};
use crate::statistics::Traffic;
use crate::store::{AuditEntry, Store, StoreError};
use crate::telemetry::current_trace_id;
use crate::telemetry::metrics::FeedLag;
use crate::unified::{kind_of_id, Change, EntityId, UnifiedRecord};

/// How a lookup names its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupBy {
    UnifiedId(String),
    /// Any identifier in any form.
    Identifier(String),
}

/// A record found, reduced to what the caller may see.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub record: UnifiedRecord,
    /// The ID asked for, when it was merged into `record`'s.
    pub redirected_from: Option<EntityId>,
}

/// Why a read was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{identity} may not read {what}")]
    Refused { identity: Identity, what: String },
    #[error("no unified record is known by {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Settings of the change feed.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Changes per page read from the store and at most per request.
    pub max_page: usize,
    /// How often a following feed looks for changes committed by other replicas (those
    /// of this process wake it at once).
    pub poll_interval: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            max_page: 500,
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// The reading side of the hub.
pub struct Registry<S> {
    store: S,
    sharing: SharingRules,
    pub feed: FeedSettings,
    /// Woken after every commit of this process, for following feeds.
    committed: Arc<Notify>,
    /// This process's operational statistics.
    traffic: Arc<Traffic>,
    /// Keyed pseudonyms for the audit of lookups by identifier.
    pseudonyms: Option<Pseudonymiser>,
    /// Concurrent reads' audit entries, committed together.
    audit: crate::audit::Appender,
}

impl<S: Store + Clone> Registry<S> {
    /// Starts the audit appender: call from within the tokio runtime.
    pub fn new(
        store: S,
        sharing: SharingRules,
        feed: FeedSettings,
        committed: Arc<Notify>,
        traffic: Arc<Traffic>,
        pseudonyms: Option<Pseudonymiser>,
    ) -> Self {
        Registry {
            audit: crate::audit::Appender::start(store.clone()),
            store,
            sharing,
            feed,
            committed,
            traffic,
            pseudonyms,
        }
    }
}

impl<S: Store> Registry<S> {
    /// Resolves when this process commits something (or at once if it just did).
    pub async fn committed(&self) {
        self.committed.notified().await;
    }

    async fn audit(
        &self,
        identity: &Identity,
        action: &str,
        subject: &str,
        purpose: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.audit
            .append(AuditEntry {
                at: SystemTime::now(),
                identity: identity.to_string(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                purpose: purpose.to_owned(),
                outcome: outcome.to_owned(),
                trace_id: current_trace_id(),
            })
            .await
    }

    /// One unified record by ID (following a merge) or by any identifier.
    pub async fn lookup(
        &self,
        identity: &Identity,
        by: &LookupBy,
        purpose: &str,
        asked: &[String],
    ) -> Result<Found, ReadError> {
        let subject = match by {
            LookupBy::UnifiedId(id) => id.clone(),
            // The audit names what was asked without repeating an identity number: by
            // its keyed pseudonym, which an auditor holding the key can search for.
            LookupBy::Identifier(text) => match &self.pseudonyms {
                Some(pseudonyms) => format!("identifier {}", pseudonyms.pseudonym(text)),
                None => "identifier".to_owned(),
            },
        };
        let asked: Vec<Part> = asked
            .iter()
            .map(|p| p.parse::<Part>().map_err(ReadError::InvalidArgument))
            .collect::<Result<_, _>>()?;
        if matches!(identity, Identity::Department(_)) && purpose.trim().is_empty() {
            // A department reads a citizen's record for a matter it handles; the audit
            // must be able to say which.
            self.audit(identity, "lookup", &subject, purpose, "refused: no purpose declared")
                .await?;
            return Err(ReadError::InvalidArgument(
                "a department's lookup must name the matter it serves (its case number, say) in `purpose`".to_owned(),
            ));
        }
        let grants = self.sharing.grants(identity);
        let refused = if grants.may_read_anything() {
            grants.refuses(&asked).map(ToString::to_string)
        } else {
            Some("personal data".to_owned())
        };
        if let Some(what) = refused {
            self.audit(identity, "lookup", &subject, purpose, &format!("refused: {what}"))
                .await?;
            return Err(ReadError::Refused {
                identity: identity.clone(),
                what,
            });
        }
        let (id, subject) = match by {
            LookupBy::UnifiedId(id) => {
                if kind_of_id(id).is_none() {
                    return Err(ReadError::InvalidArgument(format!(
                        "{id:?} is not a unified ID (P or O followed by 11 digits)"
                    )));
                }
                (id.clone(), subject)
            }
            LookupBy::Identifier(text) => {
                let keys: Vec<_> = normalise::lookup_keys(text)
                    .into_iter()
                    .map(|identifier| (identifier.scheme, identifier.value))
                    .collect();
                match self.store.key_owner(&keys).await? {
                    Some(id) => (id.clone(), format!("{subject} → {id}")),
                    None => {
                        self.audit(identity, "lookup", &subject, purpose, "not found").await?;
                        return Err(ReadError::NotFound("that identifier".to_owned()));
                    }
                }
            }
        };
        let Some((redirect, record)) = self.store.entity(&id).await? else {
            self.audit(identity, "lookup", &subject, purpose, "not found").await?;
            return Err(ReadError::NotFound(id));
        };
        let (record, redirected_from) = match redirect {
            Some(survivor) => match self.store.entity(&survivor).await? {
                Some((_, record)) => (record, Some(id)),
                None => return Err(ReadError::NotFound(survivor)),
            },
            None => (record, None),
        };
        // Whose record was read: its unified ID, and for a lookup by identifier also
        // the identifier's pseudonym.
        let granted = match by {
            LookupBy::UnifiedId(_) => record.unified_id.clone(),
            LookupBy::Identifier(_) if redirected_from.is_none() => subject,
            LookupBy::Identifier(_) => format!("{subject} → {}", record.unified_id),
        };
        self.audit(identity, "lookup", &granted, purpose, "granted").await?;
        let view = grants.view(&record, &asked);
        self.traffic.lookup(identity, &record, &view);
        Ok(Found {
            record: view,
            redirected_from,
        })
    }

    /// May `identity` read the feed? Audited either way.
    pub async fn open_feed(&self, identity: &Identity, after: i64) -> Result<(), ReadError> {
        let subject = format!("changes after {after}");
        if *identity != Identity::Platform {
            self.audit(
                identity,
                "changes",
                &subject,
                "feed",
                "refused: the feed is the platform's",
            )
            .await?;
            return Err(ReadError::Refused {
                identity: identity.clone(),
                what: "the change feed".to_owned(),
            });
        }
        self.audit(identity, "changes", &subject, "feed", "granted").await?;
        Ok(())
    }

    /// The page size a feed asking for `page` changes gets.
    pub fn page_size(&self, page: usize) -> usize {
        page.clamp(1, self.feed.max_page)
    }

    /// The next page of the feed after `after`, as stored: it must go through
    /// [`Registry::release_page`] before any of it is sent.
    pub async fn read_page(&self, after: i64, kinds: &[EntityKind], page: usize) -> Result<Vec<Change>, ReadError> {
        Ok(self.store.changes(after, kinds, self.page_size(page)).await?)
    }

    /// A page read for `identity` (who opened the feed) is a read of personal data:
    /// audited before it leaves, with the positions it spans. How far the feed is behind
    /// goes to the lag gauge.
    pub async fn release_page(
        &self,
        identity: &Identity,
        changes: &[Change],
        page: usize,
        lag: &FeedLag,
    ) -> Result<(), ReadError> {
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            // Nothing after the cursor: the feed is caught up.
            lag.set(0);
            return Ok(());
        };
        let subject = format!("changes {}..={} ({})", first.position, last.position, changes.len());
        if changes.len() < self.page_size(page) {
            lag.set(0);
            self.audit(identity, "changes", &subject, "feed", "granted").await?;
        } else {
            let (audited, head) = tokio::join!(
                self.audit(identity, "changes", &subject, "feed", "granted"),
                self.store.feed_head()
            );
            audited?;
            if let Ok(head) = head {
                lag.set(head - last.position);
            }
        }
        Ok(())
    }
}

/// Reads a feed cursor: empty means the beginning.
pub fn parse_cursor(text: &str) -> Result<i64, ReadError> {
    if text.trim().is_empty() {
        return Ok(0);
    }
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ReadError::InvalidArgument(format!("{text:?} is not a feed cursor")))
}
