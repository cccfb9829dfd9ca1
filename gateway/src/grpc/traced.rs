//! A span around every RPC: [`crate::telemetry::rpc_span`] continues the caller's W3C
//! trace context, the handler and the pipeline stages run inside it, and an error
//! status answered in the headers (trailers-only response) marks it failed.

use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;

#[derive(Clone, Copy, Default)]
pub struct TracedLayer;

impl<S> Layer<S> for TracedLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced { inner }
    }
}

#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Traced<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let span = crate::telemetry::rpc_span(&request);
        // Health checks come every few seconds from every probe: not worth a line each.
        let routine = request.uri().path().starts_with("/grpc.");
        let started = std::time::Instant::now();
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = future.await?;
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|text| text.parse::<i32>().ok())
                    .map(tonic::Code::from_i32);
                if let Some(code) = code {
                    crate::telemetry::record_status(code);
                }
                // One line per call, in the call's span (so with its trace ID); a
                // streamed answer's status comes later, in its trailers.
                let status = code.map_or("streaming or ok".to_owned(), |c| format!("{c:?}"));
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                if routine {
                    tracing::debug!(%status, elapsed_ms, "answered");
                } else {
                    tracing::info!(%status, elapsed_ms, "answered");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
