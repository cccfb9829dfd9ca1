//! The web console's HTTP boundary, seen from outside: a hub started in-process on the
//! embedded store, its admin port spoken to by a small HTTP/1.1 client over plain TCP
//! and over TLS, with and without client certificates.
//!
//! It proves that the console answers only over HTTPS; that who is at the browser comes
//! from a client certificate or a one-time sign-in link, and each view refuses the wrong
//! identity (401 for nobody, 403 for the wrong one); that a post from another origin is
//! refused; that every answer carries the protective headers; and that a revoked
//! certificate gets no answer at all.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tempfile::TempDir;
use tongban_adapters::Department;
use tongban_gateway::console::Sessions;
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::{CertificateAuthority, ClientCertificateSpec, IssuedCertificate, PkiLayout};
use tongban_gateway::server::{self, RunningServer, ServerSettings};
use tongban_gateway::store::embedded::EmbeddedStore;
use tongban_gateway::store::{AnyStore, Store};

/// How a request reaches the admin port: `None` is plain TCP, else TLS with this
/// configuration (which holds the client certificate, if any).
type Tls = Option<Arc<ClientConfig>>;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The development PKI's steward.
fn steward() -> Identity {
    Identity::Steward("steward".to_owned())
}

/// A hub with its admin port, and what a test needs to talk to it.
struct Console {
    pki: PkiLayout,
    admin: SocketAddr,
    /// The hub's sign-in links and sessions (shared with the running server).
    sessions: Arc<Sessions>,
    /// A steward's certificate of the hub's own CA whose serial the hub revoked.
    revoked: IssuedCertificate,
    /// The hub's store, for its audit log.
    store: AnyStore,
    server: RunningServer,
    /// Holds the PKI and the store's file.
    _dir: TempDir,
}

impl Console {
    async fn start() -> Console {
        tongban_gateway::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temporary folder");
        let pki = PkiLayout::new(dir.path().join("pki"));
        pki.ensure_dev().expect("test PKI");
        // Issued before the hub starts, so that its serial can be on the revoked list.
        let ca = CertificateAuthority::load(&pki.ca_cert(), &pki.ca_key()).expect("CA");
        let revoked = ca.issue_client(&Identity::Steward("gone".to_owned())).expect("issue");
        let mut settings =
            ServerSettings::development(&pki, HashSet::from([revoked.serial.clone()])).expect("server settings");
        settings.handshake_timeout = Duration::from_secs(5);
        settings.shutdown_grace = Duration::from_secs(2);
        // `settings.metrics` stays None: tongban-tests does not depend on prometheus, so
        // /metrics is not routed and falls into the console's routes.
        let sessions = Arc::clone(&settings.console_sessions);
        let store: AnyStore = EmbeddedStore::open(&dir.path().join("tongban.db"))
            .expect("embedded store")
            .into();
        let listener = server::bind(([127, 0, 0, 1], 0).into()).await.expect("bind");
        let admin = server::bind(([127, 0, 0, 1], 0).into()).await.expect("bind admin");
        let server = server::start_with_admin(listener, Some(admin), settings, store.clone()).expect("start hub");
        let admin = server.admin_addr.expect("an admin address");
        Console {
            pki,
            admin,
            sessions,
            revoked,
            store,
            server,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.server.shutdown().await.expect("hub stopped cleanly");
    }

    /// What a browser sends as `Origin` from the console's own pages.
    fn origin(&self) -> String {
        format!("https://{}", self.admin)
    }

    /// TLS as a browser without a client certificate.
    fn anonymous(&self) -> Tls {
        Some(client_config(&self.pki, None))
    }

    /// TLS presenting the development PKI's certificate of `identity`.
    fn presenting(&self, identity: &Identity) -> Tls {
        let dir = self.pki.identity_dir(identity);
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("identity folder");
        Some(client_config(
            &self.pki,
            Some((read("cert.pem").as_str(), read("key.pem").as_str())),
        ))
    }

    /// Sends one request (`Connection: close`) and reads the whole answer.
    async fn send(
        &self,
        tls: &Tls,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<Answer> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.admin
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method != "GET" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let (addr, tls) = (self.admin, tls.clone());
        // Blocking sockets on the blocking pool: the hub runs on this test's runtime.
        tokio::task::spawn_blocking(move || exchange(addr, tls, request.as_bytes()))
            .await
            .map_err(io::Error::other)?
    }

    async fn get(&self, tls: &Tls, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(tls, "GET", path, headers, "")
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn post(&self, tls: &Tls, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        self.send(tls, "POST", path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }
}

/// A client configuration trusting the hub's CA only, speaking HTTP/1.1.
fn client_config(pki: &PkiLayout, certificate: Option<(&str, &str)>) -> Arc<ClientConfig> {
    let ca_pem = std::fs::read(pki.ca_cert()).expect("CA file");
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(ca.expect("CA certificate")).expect("a trusted CA");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate");
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("client TLS")
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn exchange(addr: SocketAddr, tls: Tls, request: &[u8]) -> io::Result<Answer> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut raw = Vec::new();
    let read = match tls {
        None => {
            let mut tcp = tcp;
            tcp.write_all(request)?;
            tcp.read_to_end(&mut raw)
        }
        Some(config) => {
            // The dev server certificate names 127.0.0.1 as an IP address.
            let name = ServerName::try_from("127.0.0.1").map_err(io::Error::other)?;
            let connection = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            stream.write_all(request)?;
            stream.read_to_end(&mut raw)
        }
    };
    match read {
        Ok(_) => {}
        // A whole answer, then the TCP close without TLS's close_notify: still an answer.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    Answer::parse(&raw)
}

#[derive(Debug)]
struct Answer {
    status: u16,
    /// Names in lower case, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> io::Result<Answer> {
        let bad = |what: &str| {
            let text = String::from_utf8_lossy(raw);
            io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {text:?}"))
        };
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| bad("no status line"))?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let mut answer = Answer {
            status,
            headers,
            body: String::new(),
        };
        let body = &raw[end + 4..];
        answer.body = match answer.header("transfer-encoding") {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => dechunk(body),
            _ => String::from_utf8_lossy(body).into_owned(),
        };
        Ok(answer)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The body of a chunked answer: each chunk is a hex size line, then its bytes.
fn dechunk(mut rest: &[u8]) -> String {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        let start = line_end + 2;
        let Some(chunk) = rest.get(start..start + size).filter(|_| size > 0) else {
            break;
        };
        body.extend_from_slice(chunk);
        rest = rest.get(start + size + 2..).unwrap_or_default();
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The headers every console answer carries: scripts from the console only, never framed.
fn assert_protected(answer: &Answer, what: &str) {
    let policy = answer.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("script-src 'self'"),
        "{what}: content-security-policy {policy:?}"
    );
    assert_eq!(
        answer.header("x-frame-options"),
        Some("DENY"),
        "{what}: {:?}",
        answer.headers
    );
}

#[tokio::test]
async fn the_console_answers_over_https_only() {
    let console = Console::start().await;
    // Plain HTTP is for the scraper: a cookie or link must never cross in clear.
    let review = console.get(&None, "/review", &[]).await;
    assert_eq!(review.status, 400, "{}", review.body);
    assert!(review.body.contains("HTTPS"), "{}", review.body);
    // Without a Prometheus registry /metrics is one of the console's paths.
    let metrics = console.get(&None, "/metrics", &[]).await;
    assert_eq!(metrics.status, 400, "{}", metrics.body);
    // The embedded script needs no identity, only TLS.
    let script = console.get(&console.anonymous(), "/assets/console.js", &[]).await;
    assert_eq!(script.status, 200, "{}", script.body);
    let content_type = script.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/javascript"), "{content_type}");
    assert_protected(&script, "console.js");
    console.stop().await;
}

#[tokio::test]
async fn certificates_decide_who_sees_what() {
    let console = Console::start().await;
    let nobody = console.get(&console.anonymous(), "/review", &[]).await;
    assert_eq!(nobody.status, 401, "{}", nobody.body);
    assert!(nobody.body.contains(r#"id="signin""#), "{}", nobody.body);
    assert_protected(&nobody, "no certificate");

    // A department is a known identity, but the console is not for it.
    let tax = console.presenting(&Identity::Department(Department::Tax));
    let department = console.get(&tax, "/review", &[]).await;
    assert_eq!(department.status, 403, "{}", department.body);
    assert_protected(&department, "department");

    let ops = console.presenting(&Identity::Ops);
    let queue = console.get(&ops, "/review", &[]).await;
    assert_eq!(queue.status, 403, "{}", queue.body);
    assert!(queue.body.contains(r#"main id="refused""#), "{}", queue.body);
    assert_protected(&queue, "ops on /review");
    let data = console.get(&ops, "/operations/data.json", &[]).await;
    assert_eq!(data.status, 200, "{}", data.body);
    let data: Value = serde_json::from_str(&data.body).expect("data.json is JSON");
    for key in ["windows", "totals", "rejections"] {
        assert!(data[key].is_array(), "{key} in {data}");
    }
    assert!(data["feed"]["head"].is_number(), "feed.head in {data}");
    let operations = console.get(&ops, "/operations", &[]).await;
    assert_eq!(operations.status, 200, "{}", operations.body);
    assert!(
        operations.body.contains(r#"data-view="operations""#),
        "{}",
        operations.body
    );
    assert_protected(&operations, "ops on /operations");

    // Nothing was pushed, so the steward's queue is empty.
    let steward = console.presenting(&steward());
    let review = console.get(&steward, "/review", &[]).await;
    assert_eq!(review.status, 200, "{}", review.body);
    for part in [r#"data-view="review""#, r#"id="queue-empty""#, "steward:steward"] {
        assert!(review.body.contains(part), "{part} in {}", review.body);
    }
    assert_protected(&review, "steward on /review");

    // The refusals came from the steward desk, which audits them as over gRPC.
    let log = console.store.audit_log(100).await.expect("audit log");
    for who in ["ops", "department:tax"] {
        assert!(
            log.iter()
                .any(|e| e.identity == who && e.action == "steward.reviews" && e.outcome.starts_with("refused")),
            "{who}'s refusal is audited: {log:#?}"
        );
    }
    // The operations figures are the operators'.
    let figures = console.get(&steward, "/operations/data.json", &[]).await;
    assert_eq!(figures.status, 403, "{}", figures.body);
    console.stop().await;
}

#[tokio::test]
async fn posts_need_the_consoles_own_origin() {
    let console = Console::start().await;
    let steward = console.presenting(&steward());
    let path = "/review/1/decide";
    // A browser sends the certificate with any site's form: the origin is what tells.
    let evil = ("Origin", "https://evil.example");
    for (what, headers) in [("no Origin", vec![FORM]), ("another origin", vec![FORM, evil])] {
        let refused = console.post(&steward, path, &headers, "verdict=same").await;
        assert_eq!(refused.status, 403, "{what}: {}", refused.body);
        assert!(
            refused.body.contains("did not come from the console's own pages"),
            "{what}: {}",
            refused.body
        );
        assert_protected(&refused, what);
    }
    // The console's own origin passes the check and reaches the desk, which has no
    // pair 1 (nothing was pushed) and says so in JSON, as console.js asked.
    let origin = console.origin();
    let own = [FORM, ("Origin", origin.as_str()), ("Accept", "application/json")];
    let answer = console.post(&steward, path, &own, "verdict=same").await;
    assert!(matches!(answer.status, 400 | 404), "{}: {}", answer.status, answer.body);
    let error: Value = serde_json::from_str(&answer.body).expect("a JSON error");
    assert!(error["error"].is_string(), "{error}");
    console.stop().await;
}

#[tokio::test]
async fn a_sign_in_link_opens_one_session() {
    let console = Console::start().await;
    let browser = console.anonymous();
    let wrong = console.get(&browser, "/login?token=0123456789abcdef", &[]).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_protected(&wrong, "unknown link");

    let token = console
        .sessions
        .sign_in_link(Identity::Steward("wang".to_owned()))
        .expect("a link");
    // A link sent over plain HTTP is refused and spent: anyone on the way may have read it.
    let exposed = console
        .sessions
        .sign_in_link(Identity::Steward("wang".to_owned()))
        .expect("a link");
    let exposed = format!("/login?token={exposed}");
    let plain = console.get(&None, &exposed, &[]).await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    let after = console.get(&browser, &exposed, &[]).await;
    assert_eq!(after.status, 401, "a link seen in clear is spent: {}", after.body);

    let link = format!("/login?token={token}");
    let signed_in = console.get(&browser, &link, &[]).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.header("location"), Some("/review"));
    assert_protected(&signed_in, "sign-in");
    let cookie = signed_in.header("set-cookie").expect("a session cookie");
    for part in ["tongban_console=", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let session = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.trim().strip_prefix("tongban_console="))
        .filter(|value| !value.is_empty())
        .expect("the cookie's value");
    let session_cookie = format!("tongban_console={session}");
    let review = console
        .get(&browser, "/review", &[("Cookie", session_cookie.as_str())])
        .await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(review.body.contains("steward:wang"), "{}", review.body);
    // A cookie the hub did not issue is nobody.
    let forged = console
        .get(&browser, "/review", &[("Cookie", "tongban_console=00ff")])
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);

    let again = console.get(&browser, &link, &[]).await;
    assert_eq!(again.status, 401, "a link is good once: {}", again.body);

    let ops = console.sessions.sign_in_link(Identity::Ops).expect("a link");
    let operator = console.get(&browser, &format!("/login?token={ops}"), &[]).await;
    assert_eq!(operator.status, 303, "{}", operator.body);
    assert_eq!(operator.header("location"), Some("/operations"));
    console.stop().await;
}

#[tokio::test]
async fn a_revoked_certificate_gets_no_answer() {
    let console = Console::start().await;
    let revoked = &console.revoked;
    let tls = Some(client_config(
        &console.pki,
        Some((revoked.cert_pem.as_str(), revoked.key_pem.as_str())),
    ));
    // With TLS 1.3 the refusal may arrive only at the first read; either way, no answer.
    let refused = console.send(&tls, "GET", "/review", &[], "").await;
    assert!(refused.is_err(), "a revoked certificate was answered: {refused:?}");
    // The same CA's other steward certificate still works.
    let steward = console.presenting(&steward());
    let review = console.get(&steward, "/review", &[]).await;
    assert_eq!(review.status, 200, "{}", review.body);

    // A certificate of the CA without a Tongban identity is asked to sign in, and is
    // audited as on the gRPC port.
    let ca = CertificateAuthority::load(&console.pki.ca_cert(), &console.pki.ca_key()).expect("CA");
    let nameless = ca
        .issue_client_with(&ClientCertificateSpec::new("urn:example:nobody"))
        .expect("issue");
    let tls = Some(client_config(
        &console.pki,
        Some((nameless.cert_pem.as_str(), nameless.key_pem.as_str())),
    ));
    let asked = console.get(&tls, "/review", &[]).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    // Refusals reach the audit log off the handshake's path: wait for them.
    let mut log = Vec::new();
    for _ in 0..50 {
        log = console.store.audit_log(100).await.expect("audit log");
        let audited = |serial: &str, reason: &str| {
            log.iter()
                .any(|e| e.action == "connect" && e.subject.contains(serial) && e.outcome.contains(reason))
        };
        if audited(&nameless.serial, "urn:tongban") && audited(&revoked.serial, "revoked") {
            console.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("both refusals are audited: {log:#?}");
}

/// The admin port holds at most `MAX_CONNECTIONS` connections: one more is closed at
/// once, and once they go the port answers again.
#[tokio::test]
async fn the_admin_port_holds_a_bounded_number_of_connections() {
    let console = Console::start().await;
    let mut idle = Vec::new();
    for _ in 0..tongban_gateway::admin_port::MAX_CONNECTIONS {
        // Connected and silent: each holds its place until the handshake timeout.
        idle.push(tokio::net::TcpStream::connect(console.admin).await.expect("connect"));
    }
    // Accepted in order: the last idle one is in before the extra one is looked at.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(console.admin).await.expect("connect");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read(&mut extra, &mut byte),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection beyond the bound was closed at once: {closed:?}"
    );
    drop(idle);
    let steward = console.presenting(&steward());
    let mut answered = None;
    for _ in 0..50 {
        // The dropped sockets' places come back as the hub sees them close.
        if let Ok(review) = console.send(&steward, "GET", "/review", &[], "").await {
            answered = Some(review.status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Some(200));
    console.stop().await;
}
