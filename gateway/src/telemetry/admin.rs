//! `/metrics` on the admin port: the Prometheus text format of every instrument.
//!
//! It serves counts and durations only (no personal data), which is why it answers in
//! plain HTTP without a client certificate (the scraper's way); the port itself and the
//! console beside it are in [`crate::admin_port`] and [`crate::console`].

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};

/// The router of `/metrics`, merged into the admin port's.
pub fn metrics_router(registry: prometheus::Registry) -> Router {
    Router::new().route("/metrics", get(move || render(registry.clone())))
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
