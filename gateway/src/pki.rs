//! Certificates: the development PKI of `tongban dev`, client certificates issued by
//! `tongban certs`, and reading an identity out of a presented certificate.
//!
//! Layout of a PKI folder (what `--identity` of the client verbs expects):
//! ```text
//! pki/ca.pem               the CA certificate (clients verify the server with it)
//! pki/ca-key.pem           the CA key (dev only; keep a real CA's key elsewhere)
//! pki/server/cert.pem      server certificate for localhost and 127.0.0.1
//! pki/server/key.pem
//! pki/<identity>/cert.pem  tax, hrss, ..., civil, platform, steward, ops
//! pki/<identity>/key.pem
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::identity::Identity;

/// Why a certificate could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A certificate with its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    /// Serial number in the form of [`normalise_serial`], for revocation lists.
    pub serial: String,
}

impl IssuedCertificate {
    /// Writes `cert.pem` and `key.pem` (owner-only) into `dir`, creating it.
    pub fn write_to(&self, dir: &Path) -> Result<(), PkiError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        write_file(&dir.join("cert.pem"), &self.cert_pem, false)?;
        write_file(&dir.join("key.pem"), &self.key_pem, true)
    }
}

/// A certificate authority able to issue server and client certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl CertificateAuthority {
    /// A new self-signed CA.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = distinguished_name(common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and key PEM files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let cert_pem = fs::read_to_string(cert_path).map_err(io_error(cert_path))?;
        let key_pem = fs::read_to_string(key_path).map_err(io_error(key_path))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| PkiError::Invalid(format!("{}: not a private key: {e}", key_path.display())))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| PkiError::Invalid(format!("{}: not a CA certificate: {e}", cert_path.display())))?;
        Ok(CertificateAuthority { issuer, cert_pem })
    }

    /// Writes `ca.pem` and `ca-key.pem` (owner-only) into the PKI folder.
    pub fn save(&self, layout: &PkiLayout) -> Result<(), PkiError> {
        fs::create_dir_all(&layout.root).map_err(io_error(&layout.root))?;
        write_file(&layout.ca_cert(), self.cert_pem(), false)?;
        write_file(&layout.ca_key(), &self.key_pem(), true)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCertificate, PkiError> {
        self.issue_server_valid(names, None)
    }

    /// [`CertificateAuthority::issue_server`], valid over `validity` (`None`: from 1975
    /// to 4096, for development).
    pub fn issue_server_valid(
        &self,
        names: &[&str],
        validity: Option<&std::ops::Range<SystemTime>>,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        set_validity(&mut params, validity)?;
        params.distinguished_name = distinguished_name("Tongban gateway");
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into()?),
            });
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate carrying `identity` as its SAN URI.
    pub fn issue_client(&self, identity: &Identity) -> Result<IssuedCertificate, PkiError> {
        self.issue_client_for_uri(&identity.to_uri())
    }

    /// A client certificate with an arbitrary SAN URI (tests use it for certificates
    /// that are valid but carry no Tongban identity).
    pub fn issue_client_for_uri(&self, uri: &str) -> Result<IssuedCertificate, PkiError> {
        self.issue_client_with(&ClientCertificateSpec::new(uri))
    }

    /// A certificate carrying `spec.uri` as its SAN URI, valid when and for what `spec`
    /// says: tests use it for the certificates the hub must refuse although its own CA
    /// signed them (expired, or made for another purpose).
    pub fn issue_client_with(&self, spec: &ClientCertificateSpec) -> Result<IssuedCertificate, PkiError> {
        let mut params = client_params(&spec.uri)?;
        set_validity(&mut params, spec.validity.as_ref())?;
        let mut key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match spec.purpose {
            CertificatePurpose::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            CertificatePurpose::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            CertificatePurpose::Authority => {
                // A CA in every other respect, so that only its being one is wrong.
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                key_usages.push(KeyUsagePurpose::KeyCertSign);
                vec![ExtendedKeyUsagePurpose::ClientAuth]
            }
        };
        self.issue_with_key_usages(params, key_usages)
    }

    /// Signs a department's certificate request for `identity`: the department made its
    /// key and keeps it; the request proves it holds the key (its signature is checked)
    /// and brings the public key. The identity is the CA's decision, taken from
    /// `identity`, never from the request: a request naming another identity is refused.
    pub fn sign_client_request(
        &self,
        request_pem: &str,
        identity: &Identity,
        validity: Option<&std::ops::Range<SystemTime>>,
    ) -> Result<SignedRequest, PkiError> {
        let request = CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|e| PkiError::Invalid(format!("not a valid certificate request: {e}")))?;
        // What the request asks for beyond a key is never granted; asking for a CA or a
        // server certificate is refused rather than quietly ignored.
        if !matches!(request.params.is_ca, IsCa::NoCa | IsCa::ExplicitNoCa)
            || request
                .params
                .extended_key_usages
                .iter()
                .any(|usage| *usage != ExtendedKeyUsagePurpose::ClientAuth)
        {
            return Err(PkiError::Invalid(
                "the request asks for more than a client certificate (a CA, or another usage)".into(),
            ));
        }
        let uri = identity.to_uri();
        for name in &request.params.subject_alt_names {
            match name {
                SanType::URI(asked) if asked.as_str() == uri => {}
                other => {
                    let asked = match other {
                        SanType::URI(asked) => asked.as_str().to_owned(),
                        other => format!("{other:?}"),
                    };
                    return Err(PkiError::Invalid(format!(
                        "the request asks for {asked}, not {uri}: make it with `tongban certs request --identity {identity}`"
                    )));
                }
            }
        }
        let mut params = client_params(&uri)?;
        set_validity(&mut params, validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (cert_pem, serial) = self.sign(params, vec![KeyUsagePurpose::DigitalSignature], &request.public_key)?;
        Ok(SignedRequest { cert_pem, serial })
    }

    fn issue(&self, params: CertificateParams) -> Result<IssuedCertificate, PkiError> {
        self.issue_with_key_usages(params, vec![KeyUsagePurpose::DigitalSignature])
    }

    fn issue_with_key_usages(
        &self,
        params: CertificateParams,
        key_usages: Vec<KeyUsagePurpose>,
    ) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate()?;
        let (cert_pem, serial) = self.sign(params, key_usages, &key)?;
        Ok(IssuedCertificate {
            cert_pem,
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// Signs `params` for `public_key` with a fresh serial: the certificate (PEM) and its
    /// serial in the form of [`normalise_serial`].
    fn sign(
        &self,
        mut params: CertificateParams,
        key_usages: Vec<KeyUsagePurpose>,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<(String, String), PkiError> {
        let serial = random_serial()?;
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        params.key_usages = key_usages;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(public_key, &self.issuer)?;
        Ok((cert.pem(), canonical_hex(&serial_hex)))
    }
}

/// A certificate signed for a request: the key stayed with whoever made the request.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub cert_pem: String,
    /// Serial number in the form of [`normalise_serial`], for revocation lists.
    pub serial: String,
}

/// A department's own key and its request for a certificate of `identity`, both PEM:
/// the request goes to the hub's operator, the key never leaves the department.
pub fn client_request(identity: &Identity) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let request = client_params(&identity.to_uri())?.serialize_request(&key)?;
    let request_pem = request.pem()?;
    Ok((request_pem, key.serialize_pem()))
}

/// From now for `days` days: the validity `tongban certs` gives what it issues. It
/// starts an hour back, so that a hub whose clock runs behind the issuer's takes it.
pub fn valid_for_days(days: u32) -> std::ops::Range<SystemTime> {
    let now = SystemTime::now();
    let start = now.checked_sub(std::time::Duration::from_secs(3_600)).unwrap_or(now);
    start..now + std::time::Duration::from_secs(u64::from(days) * 86_400)
}

/// Sets the validity of `params` (`None` leaves rcgen's lasting default).
fn set_validity(
    params: &mut CertificateParams,
    validity: Option<&std::ops::Range<SystemTime>>,
) -> Result<(), PkiError> {
    if let Some(validity) = validity {
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_1970(validity.start)?;
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_1970(validity.end)?;
    }
    Ok(())
}

/// The subject and SAN URI of a client certificate for `uri`.
fn client_params(uri: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = distinguished_name(&format!("Tongban client {uri}"));
    params.subject_alt_names.push(SanType::URI(uri.try_into()?));
    Ok(params)
}

/// What a certificate issued by [`CertificateAuthority::issue_client_with`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePurpose {
    /// Client authentication (extended key usage `clientAuth`): what the hub accepts.
    Client,
    /// Server authentication only (`serverAuth`): a server's certificate.
    Server,
    /// A certificate authority (basic constraints `cA`), able to sign certificates.
    Authority,
}

/// A client certificate to issue: its SAN URI, when it is valid and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificateSpec {
    /// The SAN URI, `urn:tongban:...` for a Tongban identity.
    pub uri: String,
    /// From when until when it is valid; `None`: from 1975 to 4096.
    pub validity: Option<std::ops::Range<SystemTime>>,
    pub purpose: CertificatePurpose,
}

impl ClientCertificateSpec {
    /// A client certificate for `uri`, valid now and for a long time.
    pub fn new(uri: &str) -> Self {
        ClientCertificateSpec {
            uri: uri.to_owned(),
            validity: None,
            purpose: CertificatePurpose::Client,
        }
    }
}

/// The last second rcgen can write into a certificate (9999-12-31T23:59:59Z).
const LAST_CERTIFICATE_SECOND: u64 = 253_402_300_799;

/// How long after 1970 `at` is, to the second, within what a certificate can say.
fn since_1970(at: SystemTime) -> Result<std::time::Duration, PkiError> {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::Invalid("a certificate validity before 1970".into()))?
        .as_secs();
    if seconds > LAST_CERTIFICATE_SECOND {
        return Err(PkiError::Invalid("a certificate validity beyond the year 9999".into()));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Tongban");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 16 random bytes from the pinned crypto provider, top bit clear so the DER integer
/// stays positive and first byte non-zero so every tool prints the same digits.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| PkiError::Invalid("no system randomness for a serial number".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical form of a serial number: lower-case hex, no colons or spaces, no
/// leading zeros. Accepts what operators copy from tools: `0A:1B:FF`, `0a1bff`,
/// `serial=0A1BFF` (as `openssl x509 -serial` prints it). Anything else is refused, so
/// that a mistyped revocation cannot silently revoke nothing.
pub fn normalise_serial(serial: &str) -> Result<String, PkiError> {
    let trimmed = serial.trim();
    let digits = match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("serial=") => &trimmed[7..],
        _ => trimmed,
    };
    let hex: String = digits.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PkiError::Invalid(format!(
            "{serial:?} is not a certificate serial number (hex digits, colons allowed)"
        )));
    }
    Ok(canonical_hex(&hex))
}

/// Lower case, without leading zeros ("0" for zero).
fn canonical_hex(hex: &str) -> String {
    let lower = hex.to_ascii_lowercase();
    let trimmed = lower.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// What the hub reads from a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// In the form of [`normalise_serial`].
    pub serial: String,
    /// The SAN URIs under `urn:tongban:`.
    pub tongban_uris: Vec<String>,
    /// Whether it is a certificate authority's (basic constraints `cA`): never a client's.
    pub is_ca: bool,
}

impl PresentedCertificate {
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, PkiError> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| PkiError::Invalid(format!("unreadable certificate: {e}")))?;
        let serial = canonical_hex(&hex(cert.raw_serial()));
        let mut tongban_uris = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name {
                    if uri.starts_with("urn:tongban:") {
                        tongban_uris.push((*uri).to_owned());
                    }
                }
            }
        }
        Ok(PresentedCertificate {
            serial,
            tongban_uris,
            is_ca: cert.is_ca(),
        })
    }

    /// The caller's identity: exactly one Tongban SAN URI is required.
    pub fn identity(&self) -> Result<Identity, String> {
        match self.tongban_uris.as_slice() {
            [uri] => Identity::from_uri(uri).map_err(|e| e.to_string()),
            [] => Err("the client certificate carries no urn:tongban: SAN URI".to_owned()),
            _ => Err("the client certificate carries several urn:tongban: SAN URIs".to_owned()),
        }
    }
}

/// The files of a PKI folder laid out as in the module documentation.
#[derive(Debug, Clone)]
pub struct PkiLayout {
    pub root: PathBuf,
}

impl PkiLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PkiLayout { root: root.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca-key.pem")
    }
    pub fn server_dir(&self) -> PathBuf {
        self.root.join("server")
    }
    pub fn identity_dir(&self, identity: &Identity) -> PathBuf {
        self.root.join(identity.folder_name())
    }

    /// Creates the development PKI unless the CA already exists; returns whether it
    /// created one. Every identity of [`Identity::dev_identities`] gets a certificate.
    pub fn ensure_dev(&self) -> Result<bool, PkiError> {
        if self.ca_cert().exists() && self.ca_key().exists() {
            return Ok(false);
        }
        let ca = CertificateAuthority::generate("Tongban development CA")?;
        ca.save(self)?;
        ca.issue_server(&["localhost", "127.0.0.1", "::1"])?
            .write_to(&self.server_dir())?;
        for identity in Identity::dev_identities() {
            ca.issue_client(&identity)?.write_to(&self.identity_dir(&identity))?;
        }
        Ok(true)
    }
}

/// The CA certificate a client should trust, for an identity folder: `<dir>/ca.pem`,
/// else the PKI root's `ca.pem` one level up.
pub fn ca_for_identity_dir(dir: &Path) -> Option<PathBuf> {
    [dir.join("ca.pem"), dir.join("..").join("ca.pem")]
        .into_iter()
        .find(|p| p.exists())
}

/// Writes `contents` to `path`; a private key (`private`) readable by its owner only.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(contents.as_bytes()).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn a_request_is_signed_for_the_identity_the_ca_names_and_no_other() {
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let tax = Identity::Department(tongban_adapters::Department::Tax);
        let (request, key) = client_request(&tax).expect("request");
        let signed = ca
            .sign_client_request(&request, &tax, Some(&valid_for_days(30)))
            .expect("signed");
        let der = CertificateDer::from_pem_slice(signed.cert_pem.as_bytes()).expect("pem");
        let presented = PresentedCertificate::parse(&der).expect("parse");
        assert_eq!(presented.identity().expect("identity"), tax);
        // The certificate is for the requester's key.
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let key = KeyPair::from_pem(&key).expect("key");
        assert_eq!(cert.public_key().subject_public_key.data.as_ref(), key.public_key_raw());
        // A request for another identity, or one tampered with, is refused.
        let hrss = Identity::Department(tongban_adapters::Department::Hrss);
        assert!(ca.sign_client_request(&request, &hrss, None).is_err());
        // A request for a CA certificate is refused.
        let key = KeyPair::generate().expect("key");
        let mut params = client_params(&tax.to_uri()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let asks_for_a_ca = params.serialize_request(&key).expect("request").pem().expect("pem");
        assert!(ca.sign_client_request(&asks_for_a_ca, &tax, None).is_err());
        let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(request.as_bytes()).expect("der");
        let mut bytes = der.as_ref().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = rustls_pki_types::CertificateSigningRequestDer::from(bytes);
        assert!(CertificateSigningRequestParams::from_der(&tampered).is_err());
    }

    #[test]
    fn client_certificates_carry_identity_and_serial() {
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let tax = Identity::Department(tongban_adapters::Department::Tax);
        let issued = ca.issue_client(&tax).expect("issue");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem");
        let presented = PresentedCertificate::parse(&der).expect("parse");
        assert_eq!(presented.identity(), Ok(tax));
        assert_eq!(presented.serial, issued.serial);
        let other = ca.issue_client(&Identity::Ops).expect("issue");
        assert_ne!(other.serial, issued.serial, "serials are unique");
    }

    #[test]
    fn serials_normalise() {
        let canonical = |s: &str| normalise_serial(s).expect(s);
        assert_eq!(canonical("0A:1b:FF"), "a1bff");
        assert_eq!(canonical("a1bff"), "a1bff");
        assert_eq!(
            canonical("  serial=0A1BFF\n"),
            "a1bff",
            "as openssl x509 -serial prints it"
        );
        assert_eq!(canonical("SERIAL=0a 1b ff"), "a1bff");
        assert_eq!(canonical("00"), "0");
        for wrong in ["", "serial=", "0x0a1b", "a1b-ff", "serial: 0a1b", "g1"] {
            assert!(normalise_serial(wrong).is_err(), "{wrong:?} must be refused");
        }
    }

    #[test]
    fn dev_pki_is_made_once_and_a_ca_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = PkiLayout::new(dir.path().join("pki"));
        assert!(layout.ensure_dev().expect("create"));
        assert!(!layout.ensure_dev().expect("second call"));
        for identity in Identity::dev_identities() {
            assert!(layout.identity_dir(&identity).join("cert.pem").exists());
            assert_eq!(
                ca_for_identity_dir(&layout.identity_dir(&identity)),
                Some(layout.identity_dir(&identity).join("..").join("ca.pem"))
            );
        }
        let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key()).expect("load");
        ca.issue_client(&Identity::Platform).expect("issue from reloaded CA");
    }
}
