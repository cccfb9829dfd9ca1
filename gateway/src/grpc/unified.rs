//! The `tongban.v1.Unified` service: the change feed and lookups of unified records.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tongban_adapters::model::EntityKind;
use tongban_proto::v1 as pb;
use tongban_proto::v1::unified_server::Unified;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::convert::{change_to_pb, lookup_response};
use crate::registry::{parse_cursor, LookupBy, ReadError, Registry};
use crate::store::{Store, StoreError};
use crate::unified::Change;

pub struct UnifiedService<S> {
    registry: Arc<Registry<S>>,
    /// Changes sent ahead of the consumer before the feed waits for it.
    window: usize,
    /// Turns true when the server begins to stop: following feeds end cleanly.
    stopping: watch::Receiver<bool>,
}

impl<S: Store> UnifiedService<S> {
    pub fn new(registry: Arc<Registry<S>>, window: usize, stopping: watch::Receiver<bool>) -> Self {
        UnifiedService {
            registry,
            window: window.max(1),
            stopping,
        }
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::Change, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store> Unified for UnifiedService<S> {
    type ChangesStream = ChangeStream;

    async fn changes(&self, request: Request<pb::ChangesRequest>) -> Result<Response<ChangeStream>, Status> {
        let identity = super::caller(&request)?;
        let request = request.into_inner();
        let mut cursor = parse_cursor(&request.after)?;
        let kinds: Vec<EntityKind> = request
            .kinds
            .iter()
            .filter_map(|k| match pb::EntityKind::try_from(*k) {
                Ok(pb::EntityKind::Person) => Some(EntityKind::Person),
                Ok(pb::EntityKind::Organisation) => Some(EntityKind::Organisation),
                _ => None,
            })
            .collect();
        let page = match request.page_size {
            0 => self.registry.feed.max_page,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        self.registry.open_feed(&identity, cursor).await?;

        let (sender, receiver) = mpsc::channel(self.window);
        let registry = Arc::clone(&self.registry);
        let mut stopping = self.stopping.clone();
        let follow = request.follow;
        let feed = async move {
            let lag = crate::telemetry::metrics::metrics().open_feed();
            // The next page is read while this one is sent (a full page promises more);
            // it is audited only when its turn comes, just before it is sent.
            let mut prefetched: Option<tokio::task::JoinHandle<Result<Vec<Change>, ReadError>>> = None;
            loop {
                let read = match prefetched.take() {
                    Some(next) => match next.await {
                        // Read while the last page was sent: what committed since is
                        // looked for again before the feed waits.
                        Ok(Ok(changes)) if changes.is_empty() => registry.read_page(cursor, &kinds, page).await,
                        Ok(read) => read,
                        Err(e) => Err(ReadError::Store(StoreError::Internal(format!(
                            "the feed's read failed: {e}"
                        )))),
                    },
                    None => registry.read_page(cursor, &kinds, page).await,
                };
                let released = match read {
                    Ok(changes) => registry
                        .release_page(&identity, &changes, page, &lag)
                        .await
                        .map(|()| changes),
                    Err(error) => Err(error),
                };
                let changes = match released {
                    Ok(changes) => changes,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(error))).await;
                        return;
                    }
                };
                if let Some(last) = changes.last().filter(|_| changes.len() == registry.page_size(page)) {
                    let registry = Arc::clone(&registry);
                    let kinds = kinds.clone();
                    let after = last.position;
                    let read = async move { registry.read_page(after, &kinds, page).await };
                    prefetched = Some(tokio::spawn(read.instrument(tracing::Span::current())));
                }
                if changes.is_empty() {
                    if !follow || *stopping.borrow() {
                        return;
                    }
                    tokio::select! {
                        _ = registry.committed() => {}
                        _ = tokio::time::sleep(registry.feed.poll_interval) => {}
                        _ = stopping.changed() => return,
                        _ = sender.closed() => return,
                    }
                    continue;
                }
                for change in changes {
                    cursor = change.position;
                    if sender.send(Ok(change_to_pb(change))).await.is_err() {
                        return; // the consumer went away
                    }
                }
            }
        };
        // The feed runs on beyond the call: in the call's span, so its pages' audit
        // entries and log lines carry the trace ID.
        tokio::spawn(feed.instrument(tracing::Span::current()));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn lookup(&self, request: Request<pb::LookupRequest>) -> Result<Response<pb::LookupResponse>, Status> {
        let identity = super::caller(&request)?;
        let request = request.into_inner();
        let by = match request.by {
            Some(pb::lookup_request::By::UnifiedId(id)) => LookupBy::UnifiedId(id),
            Some(pb::lookup_request::By::Identifier(text)) => LookupBy::Identifier(text),
            None => {
                return Err(
                    ReadError::InvalidArgument("name the record by unified_id or by identifier".to_owned()).into(),
                )
            }
        };
        let found = self
            .registry
            .lookup(&identity, &by, &request.purpose, &request.parts)
            .await?;
        Ok(Response::new(lookup_response(found)))
    }
}
