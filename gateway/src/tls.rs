//! Mutual TLS: the server's rustls configuration and the accept loop.
//!
//! tonic offers no hook for a custom client-certificate verifier, so the hub owns the
//! accept loop: every TCP connection is handshaken here with rustls, and only
//! connections that presented a certificate signed by the configured CA, whose serial
//! is not revoked, are handed to tonic (`serve_with_incoming`).
//!
//! **Invariant: a connection without a valid client certificate never reaches a
//! handler.** Each accepted connection carries a [`Peer`] that handlers read through
//! `Request::extensions()`.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;

use crate::identity::Identity;
use crate::pki::PresentedCertificate;
use crate::server_certificate::RenewableCertificate;

/// Installs the one crypto provider of the process (ring). Call at the top of `main`
/// and in every test helper; later calls are harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed: then it is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why the TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    Verifier(String),
    #[error("tls.revoked_serials: {0}")]
    Revocation(String),
}

pub(crate) fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads every certificate of a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in file"));
    }
    Ok(certs)
}

/// Builds the server's TLS configuration: client certificates required and verified
/// against `client_ca`, revoked serials (any notation: hex, colons, either case)
/// refused during the handshake, HTTP/2 only.
pub fn server_config(
    client_ca: &Path,
    cert: &Path,
    key: &Path,
    revoked_serials: HashSet<String>,
) -> Result<ServerTls, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certificates(client_ca)? {
        roots.add(ca).map_err(|e| file_error(client_ca, e))?;
    }
    let roots = Arc::new(roots);
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    // The console's browsers may come without a certificate (a sign-in link stands in
    // for one); a certificate they do present is verified exactly as on the gRPC port.
    let webpki_optional = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let revoked: HashSet<String> = revoked_serials
        .iter()
        .map(|s| crate::pki::normalise_serial(s))
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Revocation(e.to_string()))?;
    let refusals = Arc::new(Refusals::default());
    let verifier = |inner| {
        Arc::new(RevocationAwareVerifier {
            inner,
            revoked: revoked.clone(),
            refusals: Arc::clone(&refusals),
        })
    };
    // Read again when renewed: server_certificate.rs.
    let certificate = Arc::new(RenewableCertificate::load(cert, key, Arc::clone(&provider))?);
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier(webpki))
        .with_cert_resolver(certificate.clone());
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut console = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier(webpki_optional))
        .with_cert_resolver(certificate);
    console.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        console: Arc::new(console),
        refusals,
    })
}

/// The server's TLS configuration, and the certificates it refuses, for the audit log.
#[derive(Clone)]
pub struct ServerTls {
    /// The gRPC port's: a client certificate is required, HTTP/2 only.
    pub config: Arc<ServerConfig>,
    /// The admin port's console: a client certificate is optional, HTTP/1.1.
    pub console: Arc<ServerConfig>,
    pub refusals: Arc<Refusals>,
}

/// A client turned away for its certificate: what the audit log records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRefusal {
    /// The certificate: `certificate <serial> claiming department:tax`, or `no certificate`.
    /// What it claims is only a claim (anyone can write a certificate saying `tax`), so
    /// it is the subject of the entry, never its identity.
    pub certificate: String,
    /// Why: `revoked`, `expired`, `not issued by the hub's CA`, ...
    pub reason: String,
}

impl CertificateRefusal {
    fn of(claimed: &str, serial: &str, reason: String) -> CertificateRefusal {
        CertificateRefusal {
            certificate: format!("certificate {serial} claiming {claimed}"),
            reason,
        }
    }
}

/// Refusals waiting to be written to the audit log. Bounded: a client hammering the
/// port with bad certificates fills it, and what does not fit is counted, not queued
/// (the handshake must not wait for the store).
#[derive(Debug, Default)]
pub struct Refusals {
    queue: std::sync::Mutex<std::collections::VecDeque<CertificateRefusal>>,
    /// Refusals that did not fit since the last drain.
    dropped: std::sync::atomic::AtomicU64,
    arrived: tokio::sync::Notify,
}

/// Refusals queued at most between two drains.
const REFUSALS_QUEUED: usize = 1024;

impl Refusals {
    /// A certificate of the CA that names no Tongban identity (or several): counted,
    /// and queued for the audit log, on whichever port it was presented.
    pub(crate) fn no_identity(&self, serial: &str, reason: &str) {
        crate::telemetry::metrics::metrics().refused_certificate("no_identity");
        self.push(CertificateRefusal::of("no Tongban identity", serial, reason.to_owned()));
    }

    fn push(&self, refusal: CertificateRefusal) {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if queue.len() < REFUSALS_QUEUED {
            queue.push_back(refusal);
        } else {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drop(queue);
        self.arrived.notify_one();
    }

    /// Waits until there is something, then takes all of it, and how many were dropped.
    pub async fn next(&self) -> (Vec<CertificateRefusal>, u64) {
        loop {
            let notified = self.arrived.notified();
            let (taken, dropped) = self.take();
            if !taken.is_empty() || dropped > 0 {
                return (taken, dropped);
            }
            notified.await;
        }
    }

    /// Takes what is queued now, and how many were dropped (at shutdown).
    pub fn take(&self) -> (Vec<CertificateRefusal>, u64) {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        (queue.drain(..).collect(), dropped)
    }
}

/// A verifier's refusal in words for the audit log (never a value of the certificate
/// beyond what identifies it). `is_ca`: the certificate is a certificate authority's,
/// which webpki refuses as an end entity with an error rustls passes on only as
/// `Other`.
fn refusal_reason(error: &rustls::Error, is_ca: bool) -> (&'static str, String) {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(_)) if is_ca => {
            ("wrong_purpose", "not a client certificate".to_owned())
        }
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => ("revoked", "revoked".to_owned()),
        rustls::Error::InvalidCertificate(CertificateError::Expired)
        | rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            ("expired", "expired".to_owned())
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidYet)
        | rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            ("not_yet_valid", "not valid yet".to_owned())
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            ("unknown_issuer", "not issued by the hub's CA".to_owned())
        }
        rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose)
        | rustls::Error::InvalidCertificate(CertificateError::InvalidPurposeContext { .. }) => {
            ("wrong_purpose", "not a client certificate".to_owned())
        }
        other => ("invalid", format!("invalid: {other}")),
    }
}

/// The CA's verifier, plus a refusal of the serial numbers listed as revoked. The
/// refusal happens in the handshake, so a revoked client sees a `certificate revoked`
/// alert instead of a connection that works until its first call.
#[derive(Debug)]
struct RevocationAwareVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: HashSet<String>,
    /// Where every refusal goes, for the audit log.
    refusals: Arc<Refusals>,
}

impl RevocationAwareVerifier {
    fn refuse(&self, end_entity: &CertificateDer<'_>, error: rustls::Error) -> rustls::Error {
        let (claimed, serial, is_ca) = match PresentedCertificate::parse(end_entity) {
            Ok(presented) => (
                presented
                    .identity()
                    .map_or_else(|_| "no Tongban identity".to_owned(), |i| i.to_string()),
                presented.serial,
                presented.is_ca,
            ),
            Err(_) => ("nothing readable".to_owned(), "?".to_owned(), false),
        };
        let (label, reason) = refusal_reason(&error, is_ca);
        crate::telemetry::metrics::metrics().refused_certificate(label);
        tracing::warn!(%serial, reason = %reason, "refused a client certificate");
        self.refusals.push(CertificateRefusal::of(&claimed, &serial, reason));
        error
    }
}

impl ClientCertVerifier for RevocationAwareVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| self.refuse(end_entity, e))?;
        let presented = PresentedCertificate::parse(end_entity).map_err(|_| {
            self.refuse(
                end_entity,
                rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
            )
        })?;
        if self.revoked.contains(&presented.serial) {
            return Err(self.refuse(end_entity, rustls::Error::InvalidCertificate(CertificateError::Revoked)));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a handler knows about the other end of its connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote_addr: SocketAddr,
    /// Serial of the client certificate, as [`crate::pki::normalise_serial`] prints it.
    pub serial: String,
    /// The identity of the certificate, or why it has none the hub accepts.
    pub identity: Result<Identity, String>,
}

/// A TLS connection whose client certificate passed verification.
pub struct AuthenticatedConnection {
    stream: TlsStream<TcpStream>,
    peer: Peer,
}

impl Connected for AuthenticatedConnection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for AuthenticatedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AuthenticatedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts TCP connections, handshakes each on its own task (a slow client cannot
/// hold up the others), and yields the authenticated ones. The stream ends when the
/// returned receiver is dropped.
pub fn accept_loop(
    listener: TcpListener,
    tls: ServerTls,
    handshake_timeout: Duration,
) -> tokio_stream::wrappers::ReceiverStream<Result<AuthenticatedConnection, io::Error>> {
    // A small queue: handshaken connections are picked up by tonic immediately.
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls.config);
    let refusals = tls.refusals;
    tokio::spawn(async move {
        loop {
            let (tcp, remote_addr) = tokio::select! {
                accepted = next_connection(&listener) => accepted,
                _ = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let refusals = Arc::clone(&refusals);
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        if let Some(connection) = authenticate(stream, remote_addr, &refusals) {
                            let _ = tx.send(Ok(connection)).await;
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::info!(%remote_addr, error = %e, "TLS handshake refused");
                        // A client without any certificate never reaches the verifier.
                        let no_certificate = e
                            .get_ref()
                            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                            .is_some_and(|inner| matches!(inner, rustls::Error::NoCertificatesPresented));
                        if no_certificate {
                            crate::telemetry::metrics::metrics().refused_certificate("none");
                            refusals.push(CertificateRefusal {
                                certificate: "no certificate".to_owned(),
                                reason: "no client certificate".to_owned(),
                            });
                        }
                    }
                    Err(_) => tracing::info!(%remote_addr, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The next TCP connection of `listener`. An accept that fails (out of file descriptors
/// and the like) is logged and tried again after a pause: never a spin.
pub(crate) async fn next_connection(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn authenticate(
    stream: TlsStream<TcpStream>,
    remote_addr: SocketAddr,
    refusals: &Refusals,
) -> Option<AuthenticatedConnection> {
    let (_, session) = stream.get_ref();
    // The verifier made a certificate mandatory, so one is present after a handshake.
    let end_entity = session.peer_certificates()?.first()?;
    let presented = PresentedCertificate::parse(end_entity).ok()?;
    let identity = presented.identity();
    if let Err(reason) = &identity {
        // The connection stands (health checks need no identity); every call on it is
        // refused UNAUTHENTICATED, and the certificate is audited once here.
        tracing::info!(%remote_addr, serial = %presented.serial, %reason, "client certificate without a Tongban identity");
        refusals.no_identity(&presented.serial, reason);
    }
    Some(AuthenticatedConnection {
        stream,
        peer: Peer {
            remote_addr,
            serial: presented.serial,
            identity,
        },
    })
}
