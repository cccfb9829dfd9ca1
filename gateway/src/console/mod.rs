//! The web console on the admin port: pages rendered on the server (maud escapes every
//! value), a little JavaScript for keyboard shortcuts and live charts, both embedded in
//! the binary, nothing fetched from the internet.
//!
//! - [`review`]: the review queue, side by side, decided through the [`StewardDesk`];
//! - [`entity`]: a unified record with provenance, variants, flags, relations, history,
//!   and splitting a source out;
//! - [`operations`]: the operators' charts (no personal data), fed by
//!   `/operations/data.json`;
//! - [`quality`]: a department's data-quality report;
//! - [`session`]: who is at the browser (certificate or sign-in link) and the
//!   protections every request passes; [`error`]: the one error type and its pages;
//!   [`page`]: the frame of every page.
//!
//! **The console decides nothing itself.** Every read and action goes through the same
//! desks as the gRPC services, which authorise and audit it; an operator opening the
//! review queue is refused (and audited) by the steward desk, not by a page.

mod entity;
mod error;
mod operations;
mod page;
mod quality;
mod review;
pub mod session;

use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub use error::ConsoleError;
pub use session::Sessions;
use session::Viewer;

use crate::admin_port::{AdminConnection, Channel};
use crate::identity::Identity;
use crate::quality::QualityDesk;
use crate::statistics::Statistics;
use crate::stewardship::StewardDesk;
use crate::store::Store;

const STYLESHEET: &str = "/assets/console.css";
const SCRIPT: &str = "/assets/console.js";

/// What the console's handlers share: the hub's desks and the sessions.
pub struct Console<S> {
    desk: Arc<StewardDesk<S>>,
    quality: Arc<QualityDesk<S>>,
    statistics: Arc<Statistics<S>>,
    sessions: Arc<Sessions>,
}

impl<S: Store + Clone> Console<S> {
    pub fn new(
        desk: Arc<StewardDesk<S>>,
        quality: Arc<QualityDesk<S>>,
        statistics: Arc<Statistics<S>>,
        sessions: Arc<Sessions>,
    ) -> Self {
        Console {
            desk,
            quality,
            statistics,
            sessions,
        }
    }
}

/// Everything the admin port answers: `/metrics` (plain HTTP or HTTPS; counts only)
/// and the console (HTTPS only).
pub fn admin_router<S: Store + Clone>(console: Arc<Console<S>>, metrics: Option<prometheus::Registry>) -> Router {
    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/logout", post(logout))
        .route("/review", get(review::page::<S>))
        .route("/review/{pair}/decide", post(review::decide::<S>))
        .route("/entities", get(entity::find))
        .route("/entities/{id}", get(entity::page::<S>))
        .route("/entities/{id}/split", post(entity::split::<S>))
        .route("/operations", get(operations::page::<S>))
        .route("/operations/data.json", get(operations::data::<S>))
        .route("/quality", get(quality::page::<S>))
        .route(
            SCRIPT,
            get(|| asset("text/javascript; charset=utf-8", include_str!("assets/console.js"))),
        )
        .route(
            STYLESHEET,
            get(|| asset("text/css; charset=utf-8", include_str!("assets/console.css"))),
        )
        .fallback(|| async { ConsoleError::NotFound("no such page".to_owned()) })
        .layer(from_fn(session::same_origin_only))
        .layer(from_fn(error::answer_in_kind))
        .layer(from_fn(session::protective_headers))
        .layer(from_fn_with_state(Arc::clone(&console), https_only::<S>))
        .with_state(console);
    match metrics {
        Some(registry) => pages.merge(crate::telemetry::admin::metrics_router(registry)),
        None => pages,
    }
}

/// Plain HTTP on the admin port is for the scraper: the console answers only over TLS,
/// so a session cookie never crosses the network in clear, and a sign-in link that did
/// (someone typed `http://`) is spent, since anyone on the way may have read it.
async fn https_only<S: Send + Sync + 'static>(
    State(console): State<Arc<Console<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let plain = request
        .extensions()
        .get::<ConnectInfo<AdminConnection>>()
        .is_none_or(|info| matches!(info.0.channel, Channel::Plain));
    if plain {
        let link = (request.uri().path() == "/login")
            .then(|| request.uri().query())
            .flatten()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("token=")));
        if let Some(token) = link {
            console.sessions.discard_link(token);
        }
        return (
            StatusCode::BAD_REQUEST,
            "The Tongban console is served over HTTPS on this port; plain HTTP answers /metrics only.\n",
        )
            .into_response();
    }
    next.run(request).await
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The first page of an identity: stewards work the queue, operators watch the flows.
fn home_of(identity: &Identity) -> &'static str {
    match identity {
        Identity::Steward(_) => "/review",
        _ => "/operations",
    }
}

async fn home(viewer: Viewer) -> Redirect {
    Redirect::to(home_of(&viewer.identity))
}

#[derive(Deserialize)]
struct LoginQuery {
    token: String,
}

/// Spends a sign-in link on a session cookie, then goes to the identity's first page
/// (the token leaves the address bar with the redirect).
async fn login<S: Send + Sync + 'static>(
    State(console): State<Arc<Console<S>>>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ConsoleError> {
    let (session, identity) = console.sessions.redeem(&query.token)?;
    tracing::info!(%identity, "console: signed in with a link");
    let mut response = Redirect::to(home_of(&identity)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::session_cookie(&session));
    Ok(response)
}

async fn logout<S: Send + Sync + 'static>(State(console): State<Arc<Console<S>>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(token) = session::session_token(&parts) {
        console.sessions.end(&token);
    }
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::ended_session_cookie());
    response
}

/// Whether the request came from `console.js` (it asks for JSON).
fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}
