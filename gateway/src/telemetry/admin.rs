//! The admin port: plain HTTP, separate from the gRPC port, listening only where
//! `telemetry.admin_listen` says. `/metrics` renders the Prometheus text format.
//!
//! It serves counts and durations only (no personal data), which is why it may go
//! without client certificates; bind it to an address only the scraper reaches.

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The admin listener, serving until the task is aborted.
pub struct AdminServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AdminServer {
    pub async fn start(addr: SocketAddr, registry: prometheus::Registry) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/metrics", get(move || render(registry.clone())));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "admin port stopped");
            }
        });
        Ok(AdminServer { addr, task })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn render(registry: prometheus::Registry) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}
