//! The `tongban.v1.Exchange` service: departments push batches of records.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_server::Exchange;
use tonic::{Request, Response, Status, Streaming};

use super::caller_limits::CallerLimits;
use super::convert::push_response;
use super::status::{from_inbound, shutting_down};
use crate::identity::Identity;
use crate::pipeline::Pipeline;
use crate::record::Envelope;
use crate::store::Store;

pub struct ExchangeService<S> {
    pipeline: Arc<Pipeline<S>>,
    /// Answers kept ready per PushStream before the hub stops reading it.
    stream_window: usize,
    /// The configured message limit, named in RESOURCE_EXHAUSTED answers.
    max_message_bytes: usize,
    /// Every batch of a PushStream is a request of its caller (a unary Push is charged
    /// by the layer, before it gets here).
    caller_limits: Arc<CallerLimits>,
    /// Turns true when the server begins to stop: PushStreams take no further batch.
    stopping: watch::Receiver<bool>,
}

impl<S: Store> ExchangeService<S> {
    pub fn new(
        pipeline: Arc<Pipeline<S>>,
        stream_window: usize,
        max_message_bytes: usize,
        caller_limits: Arc<CallerLimits>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        ExchangeService {
            pipeline,
            stream_window: stream_window.max(1),
            max_message_bytes,
            caller_limits,
            stopping,
        }
    }
}

async fn push_batch<S: Store>(
    pipeline: &Pipeline<S>,
    identity: &Identity,
    request: pb::PushRequest,
) -> Result<pb::PushResponse, Status> {
    let envelopes: Vec<Envelope> = request.envelopes.into_iter().map(Envelope::from).collect();
    let results = pipeline.push(identity, envelopes).await?;
    Ok(push_response(request.batch_id, results))
}

type PushStreamResponses = Pin<Box<dyn Stream<Item = Result<pb::PushResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store> Exchange for ExchangeService<S> {
    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        let identity = super::caller(&request)?;
        let response = push_batch(&self.pipeline, &identity, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    type PushStreamStream = PushStreamResponses;

    /// Batches are processed one at a time, in order. Answers go through a channel of
    /// `stream_window` slots: when the client stops reading them the task stops
    /// reading requests, and HTTP/2 flow control pushes back on the client. A batch
    /// that fails ends the stream with its status; the batches answered before it are
    /// committed, those after it were never read. So does a batch over the caller's
    /// request rate (RESOURCE_EXHAUSTED with the delay before it may be sent again),
    /// before any of it is looked at.
    ///
    /// Once the server begins to stop, the batch in hand is finished and answered, and
    /// the stream ends with UNAVAILABLE: a client streaming on would otherwise hold the
    /// hub up until its grace runs out and then lose the stream mid-batch.
    async fn push_stream(
        &self,
        request: Request<Streaming<pb::PushRequest>>,
    ) -> Result<Response<Self::PushStreamStream>, Status> {
        let identity = super::caller(&request)?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(self.stream_window);
        let pipeline = self.pipeline.clone();
        let limit = self.max_message_bytes;
        let caller_limits = Arc::clone(&self.caller_limits);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    biased;
                    // A dropped sender means the server is gone: stop as well.
                    _ = stopping.wait_for(|stopping| *stopping) => None,
                    message = inbound.message() => Some(message),
                };
                let answer = match next {
                    Some(Ok(Some(batch))) => match caller_limits.request(&identity) {
                        Ok(()) => push_batch(&pipeline, &identity, batch).await,
                        Err(limited) => Err(limited.into()),
                    },
                    Some(Ok(None)) => return,
                    Some(Err(status)) => Err(from_inbound(status, limit)),
                    None => Err(shutting_down()),
                };
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    // The client went away, or the stream ends with this error.
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
