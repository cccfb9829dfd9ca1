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
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = future.await?;
                if let Some(code) = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|text| text.parse::<i32>().ok())
                {
                    crate::telemetry::record_status(tonic::Code::from_i32(code));
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
