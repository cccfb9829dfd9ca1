//! The console's one error type, and the one place it becomes a response: an HTML page
//! for a browser, `{"error": …}` for `console.js`'s requests (`Accept:
//! application/json`, chosen by [`answer_in_kind`]).
//!
//! Messages come from the desks and the store, which never put a personal value in
//! an error; a store's internal error is logged and shown only as "internal error".

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::quality::QualityError;
use crate::statistics::StatisticsError;
use crate::stewardship::StewardError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No client certificate and no session: sign in first.
    #[error("{0}")]
    SignIn(String),
    /// Known, but not allowed here (the desk has audited the refusal where it reads
    /// personal data).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The store did not answer; try again.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal,
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn(_) => StatusCode::UNAUTHORIZED,
            ConsoleError::Refused(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The most of a plain refusal's text kept (axum's are a line).
const REFUSAL_BYTES: usize = 4096;

/// What a response carries of its error, for [`answer_in_kind`].
#[derive(Clone)]
struct ErrorMessage(String);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        let (view, title) = match &self {
            ConsoleError::SignIn(_) => ("signin", "Sign in"),
            ConsoleError::Refused(_) => ("refused", "Not for you"),
            _ => ("refused", "Something went wrong"),
        };
        let body = super::page::bare(
            title,
            view,
            html! {
                main id=(view) {
                    h1 { (title) }
                    p.error { (message) }
                    @if let ConsoleError::SignIn(_) = &self {
                        p { "Present a steward's or operator's client certificate of this hub's CA, \
                             or open a sign-in link (" code { "tongban demo --console" } " prints one)." }
                    }
                }
            },
        );
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}

/// Turns an error page into `{"error": …}` when the request asked for JSON; and axum's
/// own refusals of a request it could not read (a form, a query, a path or a method it
/// did not expect, answered in plain text) into the console's error, keeping the status.
pub async fn answer_in_kind(request: Request, next: Next) -> Response {
    let wants_json = super::wants_json(request.headers());
    let mut response = next.run(request).await;
    let plain_refusal = response.status().is_client_error()
        && response.extensions().get::<ErrorMessage>().is_none()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if plain_refusal {
        let status = response.status();
        let body = axum::body::to_bytes(std::mem::take(response.body_mut()), REFUSAL_BYTES)
            .await
            .unwrap_or_default();
        let message = match String::from_utf8_lossy(&body).trim() {
            "" => status.canonical_reason().unwrap_or("bad request").to_owned(),
            text => text.to_owned(),
        };
        response = ConsoleError::BadRequest(message).into_response();
        *response.status_mut() = status;
    }
    match response.extensions().get::<ErrorMessage>() {
        Some(ErrorMessage(message)) if wants_json => {
            let status = response.status();
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
        }
        _ => response,
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Contention(_) => {
                ConsoleError::Unavailable(format!("{e}; try again in a moment"))
            }
            StoreError::NotFound(what) => ConsoleError::NotFound(format!("not found: {what}")),
            StoreError::Refused(why) => ConsoleError::BadRequest(why),
            StoreError::Internal(detail) => {
                tracing::error!(error = %detail, "console: store failure");
                ConsoleError::Internal
            }
        }
    }
}

impl From<StewardError> for ConsoleError {
    fn from(e: StewardError) -> Self {
        match e {
            StewardError::Refused { .. } => ConsoleError::Refused(e.to_string()),
            StewardError::InvalidArgument(m) => ConsoleError::BadRequest(m),
            StewardError::NotFound(_) => ConsoleError::NotFound(e.to_string()),
            StewardError::Store(e) => e.into(),
        }
    }
}

impl From<QualityError> for ConsoleError {
    fn from(e: QualityError) -> Self {
        match e {
            QualityError::NotADepartment { .. }
            | QualityError::NotStewardOrOps { .. }
            | QualityError::NotOwner { .. } => ConsoleError::Refused(e.to_string()),
            QualityError::InvalidArgument(m) => ConsoleError::BadRequest(m),
            QualityError::Store(e) => e.into(),
        }
    }
}

impl From<StatisticsError> for ConsoleError {
    fn from(e: StatisticsError) -> Self {
        match e {
            StatisticsError::Refused { .. } => ConsoleError::Refused(e.to_string()),
            StatisticsError::InvalidArgument(m) => ConsoleError::BadRequest(m),
            StatisticsError::Store(e) => e.into(),
        }
    }
}
