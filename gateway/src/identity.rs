//! Who is calling: the identity carried in a client certificate's SAN URI.
//!
//! `urn:tongban:department:<dept>`, `urn:tongban:platform`, `urn:tongban:steward:<name>`
//! and `urn:tongban:ops` are the only identities; a certificate without exactly one of
//! them is refused.

use std::fmt;
use std::str::FromStr;

use tongban_adapters::{Department, RecordType};

const URN_PREFIX: &str = "urn:tongban:";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Department(Department),
    Platform,
    Steward(String),
    Ops,
}

impl Identity {
    /// Parses the SAN URI form, e.g. `urn:tongban:department:tax`.
    pub fn from_uri(uri: &str) -> Result<Identity, IdentityError> {
        let rest = uri
            .strip_prefix(URN_PREFIX)
            .ok_or_else(|| IdentityError::NotTongban(uri.to_owned()))?;
        rest.parse()
    }

    /// The SAN URI that carries this identity in a certificate.
    pub fn to_uri(&self) -> String {
        format!("{URN_PREFIX}{self}")
    }

    /// The short name used for certificate folders: `tax`, `platform`, `steward`, `ops`.
    pub fn folder_name(&self) -> &str {
        match self {
            Identity::Department(d) => d.as_str(),
            Identity::Platform => "platform",
            Identity::Steward(_) => "steward",
            Identity::Ops => "ops",
        }
    }

    /// Parses a folder name or a full identity: `tax`, `department:tax`, `steward:li`, `ops`.
    pub fn from_name(name: &str) -> Result<Identity, IdentityError> {
        if let Ok(dept) = name.parse::<Department>() {
            return Ok(Identity::Department(dept));
        }
        if name == "steward" {
            return Ok(Identity::Steward("steward".to_owned()));
        }
        name.parse()
    }

    /// Whether this caller may push records of `record_type`: only its owning department.
    pub fn may_push(&self, record_type: RecordType) -> bool {
        matches!(self, Identity::Department(d) if *d == record_type.department())
    }

    /// Every identity the development PKI issues a certificate for.
    pub fn dev_identities() -> Vec<Identity> {
        let mut all: Vec<Identity> = Department::ALL.into_iter().map(Identity::Department).collect();
        all.extend([
            Identity::Platform,
            Identity::Steward("steward".to_owned()),
            Identity::Ops,
        ]);
        all
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Department(d) => write!(f, "department:{d}"),
            Identity::Platform => f.write_str("platform"),
            Identity::Steward(name) => write!(f, "steward:{name}"),
            Identity::Ops => f.write_str("ops"),
        }
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    /// Parses `department:<dept>`, `platform`, `steward:<name>` or `ops`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("department", dept)) => dept
                .parse::<Department>()
                .map(Identity::Department)
                .map_err(|_| IdentityError::UnknownDepartment(dept.to_owned())),
            Some(("steward", name)) if is_valid_steward_name(name) => Ok(Identity::Steward(name.to_owned())),
            None if s == "platform" => Ok(Identity::Platform),
            None if s == "ops" => Ok(Identity::Ops),
            _ => Err(IdentityError::Unknown(s.to_owned())),
        }
    }
}

fn is_valid_steward_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("{0:?} is not a Tongban identity URI (expected urn:tongban:...)")]
    NotTongban(String),
    #[error("unknown department {0:?}")]
    UnknownDepartment(String),
    #[error("unknown identity {0:?} (expected department:<dept>, platform, steward:<name> or ops)")]
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for id in Identity::dev_identities() {
            assert_eq!(Identity::from_uri(&id.to_uri()), Ok(id.clone()));
            assert_eq!(Identity::from_name(id.folder_name()), Ok(id));
        }
        assert_eq!(
            Identity::from_uri("urn:tongban:department:tax"),
            Ok(Identity::Department(Department::Tax))
        );
        assert!(Identity::from_uri("urn:tongban:department:police").is_err());
        assert!(Identity::from_uri("urn:other:ops").is_err());
        assert!(Identity::from_uri("urn:tongban:steward:").is_err());
    }

    #[test]
    fn only_the_owner_pushes() {
        let tax = Identity::Department(Department::Tax);
        assert!(tax.may_push(RecordType::TaxTaxpayer));
        assert!(!tax.may_push(RecordType::CivilMarriage));
        assert!(!Identity::Platform.may_push(RecordType::TaxTaxpayer));
        assert!(Identity::Department(Department::Civil).may_push(RecordType::CivilAssistance));
    }
}
