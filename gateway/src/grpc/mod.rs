//! The gRPC boundary: services, conversions between wire and domain types, and the
//! one place where errors become a `tonic::Status` ([`status`]).
//!
//! **Invariant: only this module knows `tonic::Status` and the generated wire types.**

pub mod caller_limits;
pub mod convert;
pub mod exchange;
pub mod message_limit;
pub mod operations;
pub mod quality;
pub mod status;
pub mod stewardship;
pub mod traced;
pub mod unified;

use tonic::Request;

use crate::identity::Identity;
use crate::tls::Peer;

/// The identity of the caller of `request`, from the connection's client certificate.
/// Names the caller on the RPC's span (an identity is a department or a role, never a
/// person: a steward's own name stays out).
pub fn caller<T>(request: &Request<T>) -> Result<Identity, status::AuthError> {
    let peer = request.extensions().get::<Peer>().ok_or(status::AuthError::NoPeer)?;
    let identity = peer.identity.clone().map_err(status::AuthError::NoIdentity)?;
    tracing::Span::current().record("identity", identity.folder_name());
    Ok(identity)
}
