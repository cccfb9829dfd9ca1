//! Limits per caller identity, so that one busy or runaway client cannot slow the
//! others: how many streaming calls (PushStream, Changes) it holds open at once, and
//! how many requests a second it makes (a token bucket per identity: `burst` tokens,
//! refilled at `per_second`).
//!
//! Checked in one place, the tower layer [`CallerLimitsLayer`] in front of every
//! service, keyed by the identity of the connection's [`Peer`]: every call takes a
//! token, a streaming call also a stream slot, held until its answer stream ends.
//! Health checks and reflection are free. A PushStream's batches are requests too, but
//! a layer sees only the HTTP body, not the messages in it: the Exchange service takes
//! a token per batch ([`CallerLimits::request`]) and ends the stream with the refusal,
//! so the batches answered before it stand and the client resends the rest after the
//! delay (opening the stream takes none: the first batch pays).
//!
//! A refused call never reaches a handler: it gets RESOURCE_EXHAUSTED with the delay
//! until the caller's next token (or a second, for a stream) as google.rpc.RetryInfo
//! (`status.rs`), and counts in `tongban.requests.limited`. A connection without an
//! identity is not limited here; every handler refuses it at once.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tongban_proto::v1::{exchange_server, unified_server};
use tonic::body::Body;
use tonic::codegen::{http, Bytes};
use tonic::Status;
use tower::{Layer, Service};

use crate::config::Limits;
use crate::identity::Identity;
use crate::tls::Peer;

/// How long a caller refused a stream is asked to wait: streams end at the client's
/// pace, so there is no better guess.
pub const STREAM_RETRY: Duration = Duration::from_secs(1);
/// The longest retry delay ever given (a very low configured rate).
const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// Why a caller's request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Limited {
    #[error(
        "this caller sends more than {per_second} requests a second (bursts of {burst}); \
         retry in {} ms",
        retry_after.as_millis()
    )]
    Rate {
        per_second: f64,
        burst: u32,
        /// Until the caller's next token.
        retry_after: Duration,
    },
    #[error(
        "this caller already holds {max} streams open (PushStream and Changes); close one, \
         or retry in {} s",
        STREAM_RETRY.as_secs()
    )]
    Streams { max: usize },
}

impl Limited {
    /// How long the caller should wait before it tries again.
    pub fn retry_after(&self) -> Duration {
        match self {
            Limited::Rate { retry_after, .. } => *retry_after,
            Limited::Streams { .. } => STREAM_RETRY,
        }
    }

    /// The ErrorInfo reason, and (lower case) the metric's label.
    pub fn reason(&self) -> &'static str {
        match self {
            Limited::Rate { .. } => "RATE_LIMITED",
            Limited::Streams { .. } => "TOO_MANY_STREAMS",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Limited::Rate { .. } => "rate_limited",
            Limited::Streams { .. } => "too_many_streams",
        }
    }
}

/// What one identity has left.
struct Allowance {
    /// Requests it may make now (fractions accumulate between requests).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// Streaming calls open.
    streams: usize,
}

/// The per-identity allowances of this process (each replica counts its own).
pub struct CallerLimits {
    per_second: f64,
    burst: u32,
    max_streams: usize,
    /// Identities are few (one per certificate the CA issued), and the lock is held
    /// for a few arithmetic operations only.
    callers: Mutex<HashMap<Identity, Allowance>>,
}

impl CallerLimits {
    pub fn new(limits: &Limits) -> Arc<CallerLimits> {
        Arc::new(CallerLimits {
            per_second: limits.requests_per_second_per_identity,
            burst: limits.burst_per_identity.max(1),
            max_streams: limits.max_streams_per_identity,
            callers: Mutex::new(HashMap::new()),
        })
    }

    /// One request of `identity`: takes a token, or says how long until there is one.
    pub fn request(&self, identity: &Identity) -> Result<(), Limited> {
        self.request_at(identity, Instant::now())
            .inspect_err(|e| refused(identity, e))
    }

    fn request_at(&self, identity: &Identity, now: Instant) -> Result<(), Limited> {
        let per_second = self.per_second;
        let burst = f64::from(self.burst);
        self.with_allowance(identity, now, |allowance| {
            // Refill for the time since the last request, up to the bucket's size.
            let elapsed = now.saturating_duration_since(allowance.at).as_secs_f64();
            allowance.tokens = (allowance.tokens + elapsed * per_second).min(burst);
            allowance.at = allowance.at.max(now);
            if allowance.tokens >= 1.0 {
                allowance.tokens -= 1.0;
                return Ok(());
            }
            let wait = (1.0 - allowance.tokens) / per_second;
            // Whole milliseconds, rounded up: a client waiting exactly this long finds
            // its token.
            let retry_after = Duration::try_from_secs_f64(wait)
                .map_or(LONGEST_RETRY, |d| d.min(LONGEST_RETRY))
                .as_millis()
                .saturating_add(1);
            Err(Limited::Rate {
                per_second,
                burst: self.burst,
                retry_after: Duration::from_millis(u64::try_from(retry_after).unwrap_or(u64::MAX)),
            })
        })
    }

    /// Opens a streaming call of `identity`: a slot held until the returned guard drops.
    pub fn open_stream(self: &Arc<Self>, identity: &Identity) -> Result<StreamSlot, Limited> {
        let max = self.max_streams;
        let opened = self.with_allowance(identity, Instant::now(), |allowance| {
            if allowance.streams >= max {
                return Err(Limited::Streams { max });
            }
            allowance.streams += 1;
            Ok(())
        });
        match opened {
            Ok(()) => Ok(StreamSlot {
                limits: Arc::clone(self),
                identity: identity.clone(),
            }),
            Err(e) => {
                refused(identity, &e);
                Err(e)
            }
        }
    }

    fn with_allowance<T>(&self, identity: &Identity, now: Instant, f: impl FnOnce(&mut Allowance) -> T) -> T {
        let mut callers = self.callers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(allowance) = callers.get_mut(identity) {
            return f(allowance);
        }
        let allowance = callers.entry(identity.clone()).or_insert(Allowance {
            tokens: f64::from(self.burst),
            at: now,
            streams: 0,
        });
        f(allowance)
    }

    /// What one call on `path` costs, and whether it may go ahead; `None` for a
    /// caller without an identity (its handler refuses it).
    fn admit(self: &Arc<Self>, peer: Option<&Peer>, path: &str) -> Result<Option<StreamSlot>, Limited> {
        let Some(identity) = peer.and_then(|peer| peer.identity.as_ref().ok()) else {
            return Ok(None);
        };
        match Charge::of(path) {
            Charge::Free => Ok(None),
            Charge::Request => self.request(identity).map(|()| None),
            // The stream's batches pay, each one (in the Exchange service).
            Charge::Stream { request: false } => self.open_stream(identity).map(Some),
            Charge::Stream { request: true } => {
                // The slot first, so that a stream refused costs no token; a token
                // refused gives the slot back (the guard drops).
                let slot = self.open_stream(identity)?;
                self.request(identity)?;
                Ok(Some(slot))
            }
        }
    }
}

/// Counted; the call's own line (`traced.rs`) logs its RESOURCE_EXHAUSTED.
fn refused(identity: &Identity, limited: &Limited) {
    crate::telemetry::metrics::metrics().limited(identity, limited.label());
}

/// One open streaming call of an identity, counted until dropped.
pub struct StreamSlot {
    limits: Arc<CallerLimits>,
    identity: Identity,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.limits.with_allowance(&self.identity, Instant::now(), |allowance| {
            allowance.streams = allowance.streams.saturating_sub(1);
        });
    }
}

/// What a call costs, by its path.
#[derive(Debug, PartialEq, Eq)]
enum Charge {
    /// Health checks and reflection: probes and tools, cheap and never personal.
    Free,
    Request,
    /// A streaming call: a slot, and a token unless its messages pay one by one.
    Stream {
        request: bool,
    },
}

impl Charge {
    fn of(path: &str) -> Charge {
        if path.starts_with("/grpc.") {
            return Charge::Free;
        }
        match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            Some((exchange_server::SERVICE_NAME, "PushStream")) => Charge::Stream { request: false },
            Some((unified_server::SERVICE_NAME, "Changes")) => Charge::Stream { request: true },
            _ => Charge::Request,
        }
    }
}

/// The tower layer that applies [`CallerLimits`] to every call.
#[derive(Clone)]
pub struct CallerLimitsLayer {
    pub limits: Arc<CallerLimits>,
}

impl<S> Layer<S> for CallerLimitsLayer {
    type Service = CallerLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerLimited {
            inner,
            limits: Arc::clone(&self.limits),
        }
    }
}

#[derive(Clone)]
pub struct CallerLimited<S> {
    inner: S,
    limits: Arc<CallerLimits>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallerLimited<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let slot = match self
            .limits
            .admit(request.extensions().get::<Peer>(), request.uri().path())
        {
            Ok(slot) => slot,
            Err(limited) => {
                let answer = Status::from(limited).into_http::<Body>();
                return Box::pin(std::future::ready(Ok(answer)));
            }
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| match slot {
                Some(slot) => Body::new(HoldsSlot {
                    body: Body::new(body),
                    slot: Some(slot),
                }),
                None => Body::new(body),
            }))
        })
    }
}

/// A streaming call's answer, holding the caller's stream slot until it ends (its
/// trailers are out, it failed, or the client went away and it was dropped).
struct HoldsSlot {
    body: Body,
    slot: Option<StreamSlot>,
}

impl http_body::Body for HoldsSlot {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        let ended = match &frame {
            Some(Ok(frame)) => frame.is_trailers(),
            Some(Err(_)) | None => true,
        };
        if ended {
            // Free the slot before the trailers leave: a client that sees its stream end
            // may open the next one at once.
            this.slot = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: f64, burst: u32, max_streams: usize) -> Arc<CallerLimits> {
        CallerLimits::new(&Limits {
            requests_per_second_per_identity: per_second,
            burst_per_identity: burst,
            max_streams_per_identity: max_streams,
            ..Limits::default()
        })
    }

    fn tax() -> Identity {
        Identity::from_name("tax").expect("department")
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limits = limits(10.0, 3, 1);
        let start = Instant::now();
        for _ in 0..3 {
            limits.request_at(&tax(), start).expect("within the burst");
        }
        let refused = limits.request_at(&tax(), start).expect_err("burst spent");
        assert_eq!(refused.reason(), "RATE_LIMITED");
        let wait = refused.retry_after();
        assert!(
            wait >= Duration::from_millis(100) && wait <= Duration::from_millis(101),
            "{wait:?}"
        );
        // Another identity has its own bucket.
        limits
            .request_at(&Identity::Platform, start)
            .expect("the platform is not tax");
        // After the delay given, one more; not two.
        let later = start + wait;
        limits.request_at(&tax(), later).expect("a token after the delay");
        assert!(limits.request_at(&tax(), later).is_err());
        // A long quiet spell fills the bucket to the burst, no further.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            limits.request_at(&tax(), much_later).expect("a full bucket");
        }
        assert!(limits.request_at(&tax(), much_later).is_err());
    }

    #[test]
    fn a_very_low_rate_gives_a_bounded_delay() {
        let limits = limits(1e-9, 1, 1);
        let now = Instant::now();
        limits.request_at(&tax(), now).expect("the one token");
        let wait = limits.request_at(&tax(), now).expect_err("none left").retry_after();
        assert!(wait > LONGEST_RETRY - Duration::from_secs(1) && wait <= LONGEST_RETRY + Duration::from_millis(1));
    }

    #[test]
    fn stream_slots_come_back_when_dropped() {
        let limits = limits(100.0, 100, 2);
        let first = limits.open_stream(&tax()).expect("first");
        let _second = limits.open_stream(&tax()).expect("second");
        let refused = limits.open_stream(&tax()).err().expect("third");
        assert_eq!(refused.reason(), "TOO_MANY_STREAMS");
        assert_eq!(refused.retry_after(), STREAM_RETRY);
        let _platform = limits.open_stream(&Identity::Platform).expect("another identity");
        drop(first);
        let _third = limits.open_stream(&tax()).expect("a slot was freed");
    }

    #[test]
    fn calls_are_charged_by_path() {
        assert_eq!(Charge::of("/grpc.health.v1.Health/Check"), Charge::Free);
        assert_eq!(
            Charge::of("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Charge::Free
        );
        assert_eq!(
            Charge::of("/tongban.v1.Exchange/PushStream"),
            Charge::Stream { request: false }
        );
        assert_eq!(
            Charge::of("/tongban.v1.Unified/Changes"),
            Charge::Stream { request: true }
        );
        assert_eq!(Charge::of("/tongban.v1.Exchange/Push"), Charge::Request);
        assert_eq!(Charge::of("/tongban.v1.Unified/Lookup"), Charge::Request);
        assert_eq!(Charge::of("/anything"), Charge::Request);
    }
}
