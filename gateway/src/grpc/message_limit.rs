//! Maps tonic's answer to a unary request it could not take, produced before our handler
//! runs, to the contract's status (see [`from_inbound`]): an oversized message
//! (OUT_OF_RANGE) becomes RESOURCE_EXHAUSTED, an undecodable one (INTERNAL)
//! INVALID_ARGUMENT, both with error details. Streaming calls see the same errors inside
//! the handler and map them there.

use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::Status;
use tower::{Layer, Service};

use super::status::from_inbound;

#[derive(Clone, Copy)]
pub struct MessageLimitLayer {
    pub limit: usize,
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MessageLimit<S>
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
        let limit = self.limit;
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            // An error before the handler is a trailers-only response: the status is in
            // the headers.
            if let Some(status) = Status::from_header_map(response.headers()) {
                let code = status.code();
                if matches!(code, tonic::Code::OutOfRange | tonic::Code::Internal) {
                    let mapped = from_inbound(status, limit);
                    if mapped.code() != code {
                        let headers = response.headers_mut();
                        headers.remove("grpc-status");
                        headers.remove("grpc-message");
                        headers.remove("grpc-status-details-bin");
                        if let Err(e) = mapped.add_header(headers) {
                            tracing::warn!(error = %e, "could not rewrite the status of a refused message");
                        }
                    }
                }
            }
            Ok(response)
        })
    }
}
