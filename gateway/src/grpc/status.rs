//! Errors become a `tonic::Status` here and nowhere else, each with the gRPC code a
//! client can act on and google.rpc error details (tonic-types).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::caller_limits::Limited;
use crate::pipeline::PushError;
use crate::quality::QualityError;
use crate::registry::ReadError;
use crate::statistics::StatisticsError;
use crate::stewardship::StewardError;
use crate::store::StoreError;

/// The `domain` of every google.rpc.ErrorInfo the hub sends.
pub const ERROR_DOMAIN: &str = "tongban.gov";
/// How long a client should wait before retrying after UNAVAILABLE.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Why a caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Only possible if a service were mounted outside the TLS accept loop.
    #[error("the connection carries no verified client certificate")]
    NoPeer,
    #[error("{0}")]
    NoIdentity(String),
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Status {
        Status::with_error_details(
            Code::Unauthenticated,
            e.to_string(),
            ErrorDetails::with_error_info("NO_TONGBAN_IDENTITY", ERROR_DOMAIN, HashMap::new()),
        )
    }
}

/// PERMISSION_DENIED for a caller that is not a department (pushes, quality reports).
fn not_a_department(message: String, identity: &crate::identity::Identity) -> Status {
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(
            "NOT_A_DEPARTMENT",
            ERROR_DOMAIN,
            HashMap::from([("identity".to_owned(), identity.to_string())]),
        ),
    )
}

/// PERMISSION_DENIED for a department reaching for another's record type.
fn record_type_not_owned(
    message: String,
    identity: &crate::identity::Identity,
    record_type: &str,
    owner: tongban_adapters::Department,
) -> Status {
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(
            "RECORD_TYPE_NOT_OWNED",
            ERROR_DOMAIN,
            HashMap::from([
                ("identity".to_owned(), identity.to_string()),
                ("record_type".to_owned(), record_type.to_owned()),
                ("owner".to_owned(), owner.to_string()),
            ]),
        ),
    )
}

impl From<PushError> for Status {
    fn from(e: PushError) -> Status {
        let message = e.to_string();
        match e {
            PushError::NotADepartment { identity } => not_a_department(message, &identity),
            PushError::NotOwner {
                identity,
                record_type,
                owner,
            } => record_type_not_owned(message, &identity, record_type.as_str(), owner),
            PushError::EmptyBatch => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation("envelopes", "send at least one envelope"),
            ),
            PushError::TooManyRecords { max, .. } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(
                    "envelopes",
                    format!("split the batch into at most {max} envelopes"),
                ),
            ),
            PushError::Store(e) => e.into(),
        }
    }
}

impl From<ReadError> for Status {
    fn from(e: ReadError) -> Status {
        let message = e.to_string();
        match e {
            ReadError::Refused { identity, what } => Status::with_error_details(
                Code::PermissionDenied,
                message,
                ErrorDetails::with_error_info(
                    "NOT_SHARED",
                    ERROR_DOMAIN,
                    HashMap::from([("identity".to_owned(), identity.to_string()), ("part".to_owned(), what)]),
                ),
            ),
            ReadError::NotFound(_) => Status::not_found(message),
            ReadError::InvalidArgument(_) => Status::invalid_argument(message),
            ReadError::Store(e) => e.into(),
        }
    }
}

impl From<StewardError> for Status {
    fn from(e: StewardError) -> Status {
        let message = e.to_string();
        match e {
            StewardError::Refused { identity, .. } => Status::with_error_details(
                Code::PermissionDenied,
                message,
                ErrorDetails::with_error_info(
                    "NOT_A_STEWARD",
                    ERROR_DOMAIN,
                    HashMap::from([("identity".to_owned(), identity.to_string())]),
                ),
            ),
            StewardError::InvalidArgument(_) => Status::invalid_argument(message),
            StewardError::NotFound(_) => Status::not_found(message),
            StewardError::Store(e) => e.into(),
        }
    }
}

impl From<StatisticsError> for Status {
    fn from(e: StatisticsError) -> Status {
        let message = e.to_string();
        match e {
            StatisticsError::Refused { identity } => Status::with_error_details(
                Code::PermissionDenied,
                message,
                ErrorDetails::with_error_info(
                    "NOT_OPS",
                    ERROR_DOMAIN,
                    HashMap::from([("identity".to_owned(), identity.to_string())]),
                ),
            ),
            StatisticsError::InvalidArgument(_) => Status::invalid_argument(message),
            StatisticsError::Store(e) => e.into(),
        }
    }
}

impl From<QualityError> for Status {
    fn from(e: QualityError) -> Status {
        let message = e.to_string();
        match e {
            QualityError::NotADepartment { identity } => not_a_department(message, &identity),
            QualityError::NotOwner {
                identity,
                record_type,
                owner,
            } => record_type_not_owned(message, &identity, &record_type, owner),
            // Only the console asks on a department's behalf; the service never does.
            QualityError::NotStewardOrOps { .. } => Status::permission_denied(message),
            QualityError::InvalidArgument(_) => Status::invalid_argument(message),
            QualityError::Store(e) => e.into(),
        }
    }
}

/// UNAVAILABLE for a PushStream the hub ends because it is shutting down: the batches
/// it answered are committed, the others were never read. The client sends them again,
/// to another replica or to this one once it is back.
pub fn shutting_down() -> Status {
    let mut details = ErrorDetails::with_error_info("SHUTTING_DOWN", ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(RETRY_DELAY));
    Status::with_error_details(
        Code::Unavailable,
        "the hub is shutting down; the batches answered are stored, send the others again",
        details,
    )
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        match e {
            StoreError::Unavailable(_) | StoreError::Contention(_) => {
                tracing::warn!(error = %e, "store unavailable");
                Status::with_error_details(
                    Code::Unavailable,
                    "the hub's store is unavailable; nothing of this request was stored, send it again",
                    ErrorDetails::with_retry_info(Some(RETRY_DELAY)),
                )
            }
            StoreError::Internal(_) => {
                tracing::error!(error = %e, "store failure");
                Status::internal("internal error of the hub's store; nothing of this request was stored")
            }
            StoreError::NotFound(what) => Status::not_found(format!("no such {what}")),
            StoreError::Refused(why) => Status::failed_precondition(why),
        }
    }
}

/// A caller over its rate or stream limit: RESOURCE_EXHAUSTED, with the delay after
/// which it may try again as RetryInfo (gRPC clients and `tongban push` honour it).
impl From<Limited> for Status {
    fn from(e: Limited) -> Status {
        let metadata = match &e {
            Limited::Rate { per_second, burst, .. } => HashMap::from([
                ("requests_per_second".to_owned(), per_second.to_string()),
                ("burst".to_owned(), burst.to_string()),
            ]),
            Limited::Streams { max } => HashMap::from([("max_streams".to_owned(), max.to_string())]),
        };
        let mut details = ErrorDetails::with_retry_info(Some(e.retry_after()));
        details.set_error_info(e.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(Code::ResourceExhausted, e.to_string(), details)
    }
}

/// The status for a message above the configured size limit.
pub fn message_too_large(found: Option<&str>, limit: usize) -> Status {
    let detail = match found {
        Some(found) => format!("a message of {found} bytes exceeds the limit of {limit} bytes"),
        None => format!("a message exceeds the limit of {limit} bytes"),
    };
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("{detail}; send smaller batches"),
        ErrorDetails::with_error_info(
            "MESSAGE_TOO_LARGE",
            ERROR_DOMAIN,
            HashMap::from([("limit_bytes".to_owned(), limit.to_string())]),
        ),
    )
}

/// The statuses tonic gives an inbound message it could not take, made the contract's:
/// - over the size limit: OUT_OF_RANGE from tonic, RESOURCE_EXHAUSTED by gRPC's
///   convention and our contract;
/// - not decodable (not protobuf, or a `string` field that is not UTF-8): INTERNAL from
///   tonic, as if the hub were at fault; it is the caller's message, so
///   INVALID_ARGUMENT, with prost's account of what is wrong and where.
///
/// Other statuses pass through.
pub fn from_inbound(status: Status, limit: usize) -> Status {
    const TONIC_TOO_LARGE: &str = "decoded message length too large";
    const TONIC_UNDECODABLE: &str = "failed to decode Protobuf message: ";
    match status.code() {
        Code::OutOfRange if status.message().contains(TONIC_TOO_LARGE) => {
            let found = status
                .message()
                .split("found ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next());
            message_too_large(found, limit)
        }
        // Only tonic's decoder words an INTERNAL this way: the hub's own INTERNAL (a store
        // failure, above) has a fixed message of its own, so no handler's error is taken
        // for the caller's.
        Code::Internal if status.message().starts_with(TONIC_UNDECODABLE) => {
            let detail = &status.message()[TONIC_UNDECODABLE.len()..];
            let hint = if detail.contains("UTF-8") {
                "; every text field but an envelope's payload must be UTF-8"
            } else {
                ""
            };
            Status::with_error_details(
                Code::InvalidArgument,
                format!("the message is not a valid tongban.v1 message ({detail}); nothing of it was stored{hint}"),
                ErrorDetails::with_error_info("MALFORMED_MESSAGE", ERROR_DOMAIN, HashMap::new()),
            )
        }
        _ => status,
    }
}
