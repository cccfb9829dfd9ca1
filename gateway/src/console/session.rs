//! Who is at the browser: the identity of its client certificate, or of the session a
//! one-time sign-in link opened. The console is for stewards and operators, but it is
//! the desks behind each page that refuse anyone else, so that a department's or the
//! platform's attempt is refused and audited exactly as over gRPC.
//!
//! A sign-in link is minted for an identity by someone who already holds it (the demo
//! for its own steward; see `Sessions::sign_in_link`), is good once, within
//! [`LINK_LIFETIME`], and opens a session kept in this process's memory for
//! [`SESSION_LIFETIME`]: a browser signed in on one replica is unknown to the others,
//! which is why a client certificate is the way in for a hub behind a load balancer.
//! Tokens are 256 random bits from the crypto provider; the table keeps only their
//! SHA-256, so neither a memory dump nor a timing of lookups gives a usable token.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ConsoleError;
use super::Console;
use crate::admin_port::{AdminConnection, Channel};
use crate::identity::Identity;

/// How long a sign-in link may wait to be opened.
pub const LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a session lasts from sign-in (a working day).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Open links and sessions at most: the oldest go first (a flood of sign-ins cannot
/// grow the table without bound).
const MAX_ENTRIES: usize = 1_000;
/// The session cookie's name.
pub const COOKIE: &str = "tongban_console";

/// Sign-in links and sessions of this process.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// SHA-256 of a link's token → who it signs in, and until when.
    links: HashMap<[u8; 32], (Identity, Instant)>,
    /// SHA-256 of a session's token → who, and until when.
    sessions: HashMap<[u8; 32], (Identity, Instant)>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 256 random bits as hex, from the process's crypto provider.
fn new_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| ConsoleError::Internal)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Drops what expired, then the oldest entries beyond the bound.
fn prune(entries: &mut HashMap<[u8; 32], (Identity, Instant)>, now: Instant) {
    entries.retain(|_, (_, until)| *until > now);
    while entries.len() >= MAX_ENTRIES {
        let Some(oldest) = entries.iter().min_by_key(|(_, (_, until))| *until).map(|(k, _)| *k) else {
            break;
        };
        entries.remove(&oldest);
    }
}

impl Sessions {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A one-time token that signs a browser in as `identity` (the path is
    /// `/login?token=…`). Only stewards and operators are given one.
    pub fn sign_in_link(&self, identity: Identity) -> Result<String, ConsoleError> {
        if !matches!(identity, Identity::Steward(_) | Identity::Ops) {
            return Err(ConsoleError::Refused(format!(
                "the console is for stewards and operators, not {identity}"
            )));
        }
        let token = new_token()?;
        let now = Instant::now();
        let mut table = self.table();
        prune(&mut table.links, now);
        table.links.insert(digest(&token), (identity, now + LINK_LIFETIME));
        Ok(token)
    }

    /// Spends a link's token on a new session: its token and identity.
    pub fn redeem(&self, link: &str) -> Result<(String, Identity), ConsoleError> {
        let now = Instant::now();
        let session = new_token()?;
        let mut table = self.table();
        let identity = match table.links.remove(&digest(link)) {
            Some((identity, until)) if until > now => identity,
            _ => {
                return Err(ConsoleError::SignIn(
                    "this sign-in link is unknown, used already or expired; ask for a new one".to_owned(),
                ))
            }
        };
        prune(&mut table.sessions, now);
        table
            .sessions
            .insert(digest(&session), (identity.clone(), now + SESSION_LIFETIME));
        Ok((session, identity))
    }

    /// Spends a link without a session (it crossed the network in clear).
    pub fn discard_link(&self, link: &str) {
        self.table().links.remove(&digest(link));
    }

    fn session(&self, token: &str) -> Option<Identity> {
        let table = self.table();
        match table.sessions.get(&digest(token)) {
            Some((identity, until)) if *until > Instant::now() => Some(identity.clone()),
            _ => None,
        }
    }

    /// Ends a session (signing out).
    pub fn end(&self, token: &str) {
        self.table().sessions.remove(&digest(token));
    }
}

/// The `Set-Cookie` of a new session: HTTPS only, out of scripts' reach, never sent
/// with another site's requests.
pub fn session_cookie(token: &str) -> HeaderValue {
    let value = format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| ended_session_cookie())
}

/// The `Set-Cookie` that makes a browser forget its session.
pub fn ended_session_cookie() -> HeaderValue {
    HeaderValue::from_static("tongban_console=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session token the request's cookies carry, if any.
pub fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The console's user, by certificate or session (only stewards and ops get sessions).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub identity: Identity,
}

impl Viewer {
    pub fn is_steward(&self) -> bool {
        matches!(self.identity, Identity::Steward(_))
    }
}

impl<S: Send + Sync> FromRequestParts<std::sync::Arc<Console<S>>> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<Console<S>>,
    ) -> Result<Self, Self::Rejection> {
        let channel = parts
            .extensions
            .get::<ConnectInfo<AdminConnection>>()
            .map(|info| info.0.channel.clone());
        let identity = match channel {
            Some(Channel::Tls {
                certificate: Some(Ok(identity)),
            }) => identity,
            Some(Channel::Tls {
                certificate: Some(Err(reason)),
            }) => {
                return Err(ConsoleError::SignIn(format!(
                    "this client certificate is not usable: {reason}"
                )))
            }
            Some(Channel::Tls { certificate: None }) => session_token(parts)
                .and_then(|token| state.sessions.session(&token))
                .ok_or_else(|| ConsoleError::SignIn("you are not signed in".to_owned()))?,
            Some(Channel::Plain) | None => {
                return Err(ConsoleError::BadRequest(
                    "the console is served over HTTPS on this port".to_owned(),
                ))
            }
        };
        Ok(Viewer { identity })
    }
}

/// Refuses a state-changing request that a page of another origin may have sent (a
/// browser sends the certificate and the cookie with any site's form): its `Origin`
/// must be the console's own.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    // In a block of its own: a borrow of the request (its body is not `Sync`) must not
    // live across the await below.
    let same = {
        let headers = request.headers();
        let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        let own = header(header::HOST).map(|host| format!("https://{host}"));
        match (header(header::ORIGIN), own) {
            (Some(origin), Some(own)) => origin == own,
            _ => false,
        }
    };
    if !same {
        return ConsoleError::Refused("refused: this request did not come from the console's own pages".to_owned())
            .into_response();
    }
    next.run(request).await
}

/// Headers on every console answer: scripts and styles from the console only, never
/// framed, no referrer (a sign-in link must not leak), pages not cached.
pub async fn protective_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_signs_in_once() {
        let sessions = Sessions::default();
        let link = sessions
            .sign_in_link(Identity::Steward("wang".to_owned()))
            .expect("a link");
        let (session, identity) = sessions.redeem(&link).expect("redeemed");
        assert_eq!(identity, Identity::Steward("wang".to_owned()));
        assert_eq!(sessions.session(&session), Some(identity));
        assert!(sessions.redeem(&link).is_err(), "a link is good once");
        assert!(sessions.session(&link).is_none(), "a link is not a session");
        sessions.end(&session);
        assert!(sessions.session(&session).is_none());
    }

    #[test]
    fn departments_and_the_platform_get_no_link() {
        let sessions = Sessions::default();
        assert!(sessions.sign_in_link(Identity::Platform).is_err());
        assert!(sessions
            .sign_in_link(Identity::Department(tongban_adapters::Department::Tax))
            .is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let sessions = Sessions::default();
        for _ in 0..MAX_ENTRIES + 10 {
            sessions.sign_in_link(Identity::Ops).expect("a link");
        }
        assert!(sessions.table().links.len() <= MAX_ENTRIES);
    }
}
