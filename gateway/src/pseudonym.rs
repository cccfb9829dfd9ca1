//! Keyed pseudonyms of identifiers, for the audit log: a lookup by an identity number
//! must be traceable ("who asked for this citizen?") without the log holding the
//! number. The pseudonym is an HMAC-SHA256 of the identifier's normalised key (so every
//! spelling of one number gives one pseudonym) under a secret the auditor holds; with
//! the key, `tongban audit pseudonym <identifier>` gives what to search the log for.
//! Without the key a pseudonym cannot be reversed by trying every identity number.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tongban_adapters::normalise;

/// Environment variable holding the key itself (overrides `audit.pseudonym_key_file`).
pub const ENV_AUDIT_KEY: &str = "TONGBAN_AUDIT_KEY";

/// Bytes of the HMAC kept in a pseudonym (128 bits: no collisions among a province's
/// identifiers, and short enough to read).
const KEPT_BYTES: usize = 16;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit pseudonym key {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("the audit pseudonym key is empty")]
    Empty,
}

/// Makes pseudonyms under one key.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: Vec<u8>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(<key>)")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        let key = key.trim_ascii();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Pseudonymiser { key: key.to_vec() })
    }

    /// The key in a file (its text, surrounding white space ignored).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let key = std::fs::read(path).map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source,
        })?;
        Pseudonymiser::new(&key)
    }

    /// The key in `path`, made (random, 32 bytes as hex, readable by the owner only) if
    /// there is none: what a development hub uses.
    pub fn from_file_or_new(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            let key: String = (0..32).map(|_| format!("{:02x}", fastrand::u8(..))).collect();
            write_secret(path, &key).map_err(|source| KeyError::File {
                path: path.display().to_string(),
                source,
            })?;
        }
        Pseudonymiser::from_file(path)
    }

    /// `hmac:` and 32 hex digits, for any spelling of one identifier the same.
    pub fn pseudonym(&self, identifier: &str) -> String {
        let canonical = normalise::lookup_keys(identifier)
            .into_iter()
            .next()
            .map(|key| format!("{}:{}", key.scheme.as_str(), key.value))
            .unwrap_or_else(|| identifier.trim().to_owned());
        // HMAC accepts a key of any length; an error here would be a bug of the crate.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) else {
            return "hmac:unavailable".to_owned();
        };
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().take(KEPT_BYTES).map(|b| format!("{b:02x}")).collect();
        format!("hmac:{hex}")
    }
}

fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_identifier_one_pseudonym_whatever_the_spelling() {
        let p = Pseudonymiser::new(b"audit key").expect("key");
        let a = p.pseudonym("37068719850612042X");
        assert_eq!(a, p.pseudonym(" 37068719850612042x "));
        assert!(a.starts_with("hmac:") && a.len() == 5 + 32, "{a}");
        assert_ne!(a, p.pseudonym("370687198506120434"));
        assert!(!a.contains("370687"), "the number is not in its pseudonym");
        let other = Pseudonymiser::new(b"another key").expect("key");
        assert_ne!(a, other.pseudonym("37068719850612042X"), "the key matters");
        assert!(Pseudonymiser::new(b"  \n").is_err());
    }

    #[test]
    fn a_development_key_is_made_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pki").join("audit-key");
        let first = Pseudonymiser::from_file_or_new(&path).expect("made");
        let again = Pseudonymiser::from_file_or_new(&path).expect("read");
        assert_eq!(first.pseudonym("abc"), again.pseudonym("abc"));
    }
}
