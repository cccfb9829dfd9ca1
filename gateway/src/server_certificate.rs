//! The hub's own certificate, read again when its files are renewed.
//!
//! cert-manager renews the server certificate in place (the Secret's mounted files
//! change), and on a single server a new certificate is copied over the old one. Every
//! replica of a Deployment holds the same certificate, so if renewal needed a restart
//! and nobody restarted, all of them would fail their handshakes at the same instant.
//! Instead each handshake asks this resolver, which looks at the files' modification
//! times at most every [`RECHECK`] and loads the new pair once it is complete and
//! consistent; until then, and whenever the new files cannot be read, it keeps
//! serving the certificate it has.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::tls::{file_error, read_certificates, TlsError};

/// How often a handshake may look at the files: a stat of two files, at most this often.
pub const RECHECK: Duration = Duration::from_secs(10);

/// The certificate and key files of the server, and the pair loaded from them.
#[derive(Debug)]
pub struct RenewableCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    pair: Arc<CertifiedKey>,
    /// The files' modification times when `pair` was read: a change means a renewal.
    stamp: Stamp,
    checked: Instant,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

impl RenewableCertificate {
    /// Reads the pair now: a hub does not start with a certificate it cannot use.
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamp = stamp(cert, key);
        let pair = read_pair(cert, key, &provider)?;
        Ok(RenewableCertificate {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            loaded: Mutex::new(Loaded {
                pair: Arc::new(pair),
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to present, renewed first if the files changed since it was read.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.checked.elapsed() >= RECHECK {
            loaded.checked = Instant::now();
            let now = stamp(&self.cert, &self.key);
            if now != loaded.stamp {
                match read_pair(&self.cert, &self.key, &self.provider) {
                    Ok(pair) => {
                        loaded.pair = Arc::new(pair);
                        loaded.stamp = now;
                        tracing::info!(cert = %self.cert.display(), "server certificate renewed from its files");
                    }
                    // Half copied, or a key that does not match yet: try again later.
                    Err(e) => {
                        tracing::warn!(error = %e, "server certificate files changed but cannot be used; keeping the one in use")
                    }
                }
            }
        }
        Arc::clone(&loaded.pair)
    }
}

impl ResolvesServerCert for RenewableCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

/// The chain and key, checked to belong together.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(TlsError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CertificateAuthority;

    fn serial_of(pair: &CertifiedKey) -> Vec<u8> {
        use x509_parser::prelude::FromDer;
        let (_, cert) =
            x509_parser::certificate::X509Certificate::from_der(pair.end_entity_cert().expect("a certificate"))
                .expect("parses");
        cert.raw_serial().to_vec()
    }

    #[test]
    fn a_renewed_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("a folder");
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let first = ca.issue_server(&["localhost"]).expect("first");
        first.write_to(dir.path()).expect("written");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let renewable = RenewableCertificate::load(&cert, &key, provider).expect("loads");
        let served = serial_of(&renewable.current());

        // Half a renewal: the new certificate beside the old key. Kept the old pair.
        let second = ca.issue_server(&["localhost"]).expect("second");
        std::fs::write(&cert, &second.cert_pem).expect("cert");
        renewable.loaded.lock().expect("lock").checked -= RECHECK;
        assert_eq!(
            serial_of(&renewable.current()),
            served,
            "a certificate without its key is not served"
        );

        // The key arrives: the new pair is served.
        std::fs::write(&key, &second.key_pem).expect("key");
        let mut loaded = renewable.loaded.lock().expect("lock");
        loaded.checked -= RECHECK;
        // A file system with a coarse clock may give both writes one time: force a change.
        loaded.stamp = (None, None);
        drop(loaded);
        let renewed = serial_of(&renewable.current());
        assert_ne!(renewed, served, "the renewed certificate is served");
    }
}
