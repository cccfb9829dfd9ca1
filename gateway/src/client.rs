//! The department's connector: connects with a client certificate and streams a
//! JSON-lines file of envelopes through `PushStream`, resending what the hub could not
//! take (UNAVAILABLE, or RESOURCE_EXHAUSTED over this identity's request rate: after the
//! delay the hub gives) and reporting every rejection. Behind `tongban push` and the demo.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::client_connection::HubConnector;
use crate::pki::ca_for_identity_dir;
use crate::record::{ErrorScope, Outcome, RecordError};

/// Why the connector could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{endpoint} refused this client certificate (TLS alert {alert}): check that it was issued by the hub's CA and is not revoked")]
    Refused { endpoint: String, alert: String },
    #[error("the hub answered {code:?}: {message}")]
    Answered { code: Code, message: String },
}

/// A client certificate, its key, and the CA that vouches for the server.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl ClientIdentity {
    /// Loads `cert.pem` and `key.pem` from an identity folder, and the CA from `ca`
    /// or, if not given, from `ca.pem` in the folder or its parent (the dev PKI layout).
    pub fn load(dir: &Path, ca: Option<&Path>) -> Result<Self, ClientError> {
        let ca_path = match ca {
            Some(ca) => ca.to_owned(),
            None => ca_for_identity_dir(dir).ok_or_else(|| ClientError::File {
                path: dir.join("ca.pem"),
                message: "no CA certificate next to the identity; pass --ca".into(),
            })?,
        };
        ClientIdentity::from_files(&dir.join("cert.pem"), &dir.join("key.pem"), &ca_path)
    }

    /// Loads a certificate, its key and the CA from three files wherever they are, as a
    /// Kubernetes Secret mounts them (`tls.crt`, `tls.key`, `ca.crt`).
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self, ClientError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| ClientError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })
        };
        Ok(ClientIdentity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            ca_pem: read(ca)?,
        })
    }
}

/// Opens a mutual-TLS channel to the hub. `endpoint` is `https://host:port`.
pub async fn connect(endpoint: &str, identity: &ClientIdentity) -> Result<ExchangeClient<Channel>, ClientError> {
    let channel = channel(endpoint, identity).await?;
    Ok(ExchangeClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// A mutual-TLS channel for any of the hub's services.
pub async fn channel(endpoint: &str, identity: &ClientIdentity) -> Result<Channel, ClientError> {
    let fail = |message: String| ClientError::Connect {
        endpoint: endpoint.to_owned(),
        message,
    };
    let uri: tonic::transport::Uri = endpoint.parse().map_err(|e| fail(format!("not an address: {e}")))?;
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(fail("no host in the address".into()));
    };
    // An IPv6 literal is bracketed in a URI, not in a certificate.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let server_name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| fail(e.to_string()))?;
    let connector = HubConnector {
        config: Arc::new(client_tls(identity).map_err(fail)?),
        server_name,
        port: uri.port_u16().unwrap_or(443),
        host,
    };
    // tonic gets the address without a scheme of TLS: the connector makes the TLS
    // connection itself, and confirms it (client_connection.rs).
    Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| fail(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(connector)
        .await
        .map_err(|e| match certificate_refusal(&e) {
            Some(alert) => ClientError::Refused {
                endpoint: endpoint.to_owned(),
                alert,
            },
            None => fail(error_chain(&e)),
        })
}

/// The client's TLS: the hub's CA as the only root, this identity's certificate, HTTP/2.
fn client_tls(identity: &ClientIdentity) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(identity.ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| format!("the CA certificate: {e}"))?;
        roots.add(ca).map_err(|e| format!("the CA certificate: {e}"))?;
    }
    let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the client certificate: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| format!("the private key: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the client certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS alert with which the hub refused this client's certificate (unknown CA,
/// revoked, none presented), if that is what `e` comes down to. Retrying cannot help.
fn certificate_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(e);
    while let Some(error) = current {
        // rustls errors travel inside io::Error, whose `source()` skips them.
        let tls = error.downcast_ref::<rustls::Error>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = tls {
            return Some(format!("{alert:?}"));
        }
        // tokio-rustls hands the alert over as text inside an io::Error.
        let text = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or_else(|| error.to_string(), |inner| inner.to_string());
        if let Some(alert) = text.split("received fatal alert: ").nth(1) {
            return Some(alert.trim().to_owned());
        }
        current = error.source();
    }
    None
}

/// A call's failure, for people: a refused certificate said plainly (the TLS alert, and
/// what to check), anything else as the hub's code and message.
pub fn call_failure(endpoint: &str, status: &Status) -> ClientError {
    match status_refusal(status) {
        Some(alert) => ClientError::Refused {
            endpoint: endpoint.to_owned(),
            alert,
        },
        None => ClientError::Answered {
            code: status.code(),
            message: status.message().to_owned(),
        },
    }
}

fn status_refusal(status: &Status) -> Option<String> {
    let source = std::error::Error::source(status)?;
    certificate_refusal(source)
}

/// An error with every cause behind it, for people: "transport error" alone says
/// nothing, the TLS alert or refused connection behind it does.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        // An io::Error's source() skips the error it wraps (rustls' alert, for one).
        if let Some(inner) = cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            text.push_str(": ");
            text.push_str(&inner.to_string());
        }
        source = cause.source();
    }
    text
}

/// How `push_file` behaves.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub endpoint: String,
    /// Envelopes per batch.
    pub batch_size: usize,
    /// Upper bound of a batch's payload bytes, to stay under the hub's message limit.
    pub max_batch_bytes: usize,
    /// Batches sent but not yet answered.
    pub window: usize,
    /// Reconnection attempts in a row before giving up.
    pub max_attempts: u32,
    /// How long to wait for the answer to a batch before the stream counts as lost
    /// (then it is re-opened and the unanswered batches sent again).
    pub answer_timeout: Duration,
    pub show_progress: bool,
}

impl PushOptions {
    pub fn new(endpoint: impl Into<String>) -> Self {
        PushOptions {
            endpoint: endpoint.into(),
            batch_size: 500,
            max_batch_bytes: 4 * 1024 * 1024,
            window: 4,
            max_attempts: 20,
            answer_timeout: Duration::from_secs(120),
            show_progress: true,
        }
    }
}

/// What happened to a file: the report `tongban push` writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushReport {
    pub file: String,
    pub lines: u64,
    pub accepted: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub rejected: u64,
    /// Lines that are not an envelope at all; never sent.
    pub unreadable: u64,
    /// Envelopes that got no answer because the push stopped early (see `failure`).
    pub not_delivered: u64,
    /// Reconnections after the hub was unavailable.
    pub retries: u64,
    /// Times the hub refused a batch over this identity's request rate, and the
    /// unanswered batches were sent again after the delay it asked for.
    #[serde(default)]
    pub throttled: u64,
    /// Why the push stopped early, if it did.
    pub failure: Option<String>,
    /// The same counts per record type.
    pub by_record_type: std::collections::BTreeMap<String, OutcomeCounts>,
    /// Mentions of persons and organisations in the accepted records.
    pub mentions: u64,
    /// Of those, the mentions that joined a unified record the hub already held: facts
    /// this department need not have collected again.
    pub matched_existing: u64,
    /// Of the mentions, those probabilistic matching linked (no key of theirs was held).
    pub matched_probabilistically: u64,
    /// Of the mentions, those put in their own entity while a steward decides whether
    /// they are someone the hub holds.
    pub queued_for_review: u64,
    /// Quality flags of the accepted records, by code (`WRONG_CHECK_CHARACTER`, ...).
    pub quality_flags: std::collections::BTreeMap<String, u64>,
    /// The accepted lines that carry quality flags: correct these at the source.
    pub flagged: Vec<FlaggedLine>,
    pub rejections: Vec<RejectedLine>,
    pub unreadable_lines: Vec<UnreadableLine>,
}

/// Outcomes of one record type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub accepted: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub rejected: u64,
}

impl PushReport {
    pub fn count(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Accepted => self.accepted,
            Outcome::Unchanged => self.unchanged,
            Outcome::Stale => self.stale,
            Outcome::Rejected => self.rejected,
        }
    }

    /// Every line was answered by the hub or reported unreadable.
    pub fn is_complete(&self) -> bool {
        self.failure.is_none() && self.not_delivered == 0
    }
}

/// An accepted line with semantic defects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlaggedLine {
    pub line: u64,
    pub record_type: String,
    pub source_id: String,
    pub flags: Vec<Flag>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flag {
    pub code: String,
    pub pointer: String,
    pub message: String,
}

/// A line the hub rejected, with its reasons.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedLine {
    pub line: u64,
    pub record_type: String,
    pub source_id: String,
    pub source_version: i64,
    pub quarantine_id: String,
    pub errors: Vec<RecordError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnreadableLine {
    pub line: u64,
    pub error: String,
}

/// One line of a JSON-lines file, as a department writes it. The payload is kept as
/// the raw text of the JSON object, not re-encoded.
#[derive(Deserialize)]
struct LineEnvelope {
    record_type: String,
    source_id: String,
    source_version: i64,
    #[serde(default)]
    deleted: bool,
    payload: Box<RawValue>,
}

/// A batch in flight, with the line numbers of its envelopes.
struct Batch {
    request: pb::PushRequest,
    lines: Vec<u64>,
    /// Bytes of the file this batch covers, for the progress bar.
    bytes: u64,
}

/// Reads a JSON-lines file into batches, lazily.
struct BatchReader {
    file: BufReader<File>,
    line_no: u64,
    next_batch_id: u64,
    done: bool,
    batch_size: usize,
    max_batch_bytes: usize,
}

impl BatchReader {
    /// The next batch of envelopes; lines that are not envelopes go to the report as
    /// unreadable. `None` once the file is done.
    fn next(&mut self, report: &mut PushReport) -> Result<Option<Batch>, std::io::Error> {
        let mut batch = Batch {
            request: pb::PushRequest::default(),
            lines: Vec::new(),
            bytes: 0,
        };
        let mut payload_bytes = 0;
        let mut raw = Vec::new();
        while batch.lines.len() < self.batch_size && payload_bytes < self.max_batch_bytes {
            raw.clear();
            // Bytes, not `lines()`: one line in another encoding must not end the push.
            if self.file.read_until(b'\n', &mut raw)? == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            batch.bytes += raw.len() as u64;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            report.lines += 1;
            match self.envelope(&raw) {
                Ok(envelope) => {
                    payload_bytes += envelope.payload.len();
                    batch.request.envelopes.push(envelope);
                    batch.lines.push(self.line_no);
                }
                Err(error) => {
                    report.unreadable += 1;
                    report.unreadable_lines.push(UnreadableLine {
                        line: self.line_no,
                        error,
                    });
                }
            }
        }
        if batch.lines.is_empty() {
            return Ok(None);
        }
        self.next_batch_id += 1;
        batch.request.batch_id = self.next_batch_id.to_string();
        Ok(Some(batch))
    }

    fn envelope(&self, raw: &[u8]) -> Result<pb::Envelope, String> {
        if raw.len() > self.max_batch_bytes {
            return Err(format!(
                "the line is {} bytes, more than a batch may carry ({} bytes); no record is that large",
                raw.len(),
                self.max_batch_bytes
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!("not UTF-8 text ({e}); the hub takes UTF-8, convert the export (from GBK, for example) first")
        })?;
        let e = serde_json::from_str::<LineEnvelope>(text)
            .map_err(|e| format!("not an envelope (record_type, source_id, source_version, payload): {e}"))?;
        Ok(pb::Envelope {
            record_type: e.record_type,
            source_id: e.source_id,
            source_version: e.source_version,
            deleted: e.deleted,
            payload: e.payload.get().as_bytes().to_vec(),
        })
    }
}

/// A failed stream is worth re-opening when the hub or the network was away; not when
/// the hub refused the certificate or the request.
fn stream_failure(status: Status) -> StreamEnd {
    if let Some(alert) = status_refusal(&status) {
        return StreamEnd::Stopped(format!("the hub refused this client certificate (TLS alert {alert})"));
    }
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => StreamEnd::Lost(status),
        // Over this identity's request rate: the hub says when the next batch will be
        // taken. Every earlier batch was answered; the refused one was not looked at.
        Code::ResourceExhausted if limit_reason(&status) == Some("RATE_LIMITED") => match hinted_delay(&status) {
            Some(delay) => StreamEnd::Throttled(status, delay),
            None => StreamEnd::Lost(status),
        },
        // Too many streams of this identity open (another connector of the same
        // department?): they may close, so retry, but as an attempt that counts.
        Code::ResourceExhausted if hinted_delay(&status).is_some() => StreamEnd::Lost(status),
        // A message too large, for one: resending it will not help.
        _ => StreamEnd::Stopped(describe(&status)),
    }
}

/// The google.rpc.RetryInfo delay of a status, if the hub gave one.
fn hinted_delay(status: &Status) -> Option<Duration> {
    tonic_types::StatusExt::get_details_retry_info(status).and_then(|info| info.retry_delay)
}

/// The google.rpc.ErrorInfo reason of a status from the hub.
fn limit_reason(status: &Status) -> Option<&'static str> {
    let reason = tonic_types::StatusExt::get_details_error_info(status)?.reason;
    ["RATE_LIMITED", "TOO_MANY_STREAMS"]
        .into_iter()
        .find(|known| *known == reason)
}

/// The longest the connector waits when the hub asks it to slow down.
const LONGEST_THROTTLE: Duration = Duration::from_secs(60);

fn retry_delay(status: Option<&Status>, attempt: u32) -> Duration {
    let hinted = status.and_then(hinted_delay);
    let backoff = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)));
    hinted
        .map_or(backoff, |hint| hint.max(backoff))
        .min(Duration::from_secs(10))
}

/// How one stream to the hub ended.
enum StreamEnd {
    /// Every line was read and every batch answered.
    Finished,
    /// The hub or the network went away: reconnect and resend what is pending.
    Lost(Status),
    /// The hub refused a batch over this identity's request rate: wait the delay it
    /// gave, then reconnect and resend what is pending. Not a failed attempt: the hub
    /// is there and says when it takes more.
    Throttled(Status, Duration),
    /// The hub refused the push (certificate, permission, limits), or the file could not
    /// be read on: resending will not help.
    Stopped(String),
}

/// Everything one push carries across reconnections.
struct Push<'a> {
    reader: BatchReader,
    report: PushReport,
    /// Batches sent and not yet answered, oldest first.
    pending: VecDeque<Batch>,
    progress: indicatif::ProgressBar,
    window: usize,
    answer_timeout: Duration,
    path: &'a Path,
}

impl Push<'_> {
    /// One PushStream: resend the pending batches, then keep up to `window` batches in
    /// flight until the file is done or the stream ends.
    async fn stream(&mut self, client: &mut ExchangeClient<Channel>) -> StreamEnd {
        let (tx, rx) = mpsc::channel::<pb::PushRequest>(self.window);
        for batch in &self.pending {
            // Capacity is `window` and at most `window` batches are pending.
            let _ = tx.send(batch.request.clone()).await;
        }
        let mut responses = match client.push_stream(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return stream_failure(status),
        };
        let mut tx = Some(tx);
        loop {
            if self.reader.done {
                if self.pending.is_empty() {
                    return StreamEnd::Finished;
                }
                tx = None; // everything is sent: half-close, the hub answers the rest
            }
            let can_send = tx.is_some() && self.pending.len() < self.window;
            tokio::select! {
                permit = async { tx.as_ref()?.reserve().await.ok() }, if can_send => {
                    let Some(permit) = permit else { continue };
                    let next = match self.reader.next(&mut self.report) {
                        Ok(next) => next,
                        Err(e) => return StreamEnd::Stopped(format!(
                            "reading {} after line {}: {e}", self.path.display(), self.reader.line_no
                        )),
                    };
                    if let Some(batch) = next {
                        permit.send(batch.request.clone());
                        self.pending.push_back(batch);
                    }
                }
                answer = tokio::time::timeout(self.answer_timeout, responses.message()) => match answer {
                    // A hub that neither answers nor hangs up is as good as gone.
                    Err(_) => return StreamEnd::Lost(Status::deadline_exceeded(format!(
                        "no answer from the hub within {:?}", self.answer_timeout
                    ))),
                    Ok(Ok(Some(response))) => {
                        let Some(batch) = self.pending.pop_front() else {
                            return StreamEnd::Stopped("the hub answered a batch that was not sent".into());
                        };
                        self.progress.inc(batch.bytes);
                        record_answers(&mut self.report, &batch, response);
                    }
                    Ok(Ok(None)) => return StreamEnd::Lost(Status::unavailable("the hub closed the stream early")),
                    Ok(Err(status)) => return stream_failure(status),
                },
            }
        }
    }
}

/// Streams `path` to the hub. Returns the report even when the push stopped early;
/// `Err` only when the file cannot be read.
pub async fn push_file(
    path: &Path,
    identity: &ClientIdentity,
    options: &PushOptions,
) -> Result<PushReport, ClientError> {
    let file = File::open(path).map_err(|e| ClientError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut push = Push {
        reader: BatchReader {
            file: BufReader::new(file),
            line_no: 0,
            next_batch_id: 0,
            done: false,
            batch_size: options.batch_size.max(1),
            max_batch_bytes: options.max_batch_bytes.max(1),
        },
        report: PushReport {
            file: path.display().to_string(),
            ..PushReport::default()
        },
        pending: VecDeque::new(),
        progress: progress_bar(total_bytes, options.show_progress),
        window: options.window.max(1),
        answer_timeout: options.answer_timeout,
        path,
    };
    // Attempts in a row without an answer; any answer resets it.
    let mut attempt = 0u32;
    loop {
        let answered_before = push.report.accepted + push.report.unchanged + push.report.stale + push.report.rejected;
        let end = match connect(&options.endpoint, identity).await {
            Ok(mut client) => push.stream(&mut client).await,
            Err(refused @ ClientError::Refused { .. }) => StreamEnd::Stopped(refused.to_string()),
            Err(e) => StreamEnd::Lost(Status::unavailable(e.to_string())),
        };
        let answered_after = push.report.accepted + push.report.unchanged + push.report.stale + push.report.rejected;
        let progressed = answered_after > answered_before;
        let lost = match end {
            StreamEnd::Finished => break,
            StreamEnd::Stopped(reason) => {
                push.report.failure = Some(reason);
                break;
            }
            StreamEnd::Throttled(status, delay) => {
                if progressed {
                    attempt = 0;
                }
                push.report.throttled += 1;
                let delay = delay.min(LONGEST_THROTTLE);
                // Quiet unless it is long: under a tight limit this happens every few batches.
                if delay >= Duration::from_secs(1) {
                    push.progress.suspend(|| {
                        eprintln!(
                            "hub busy ({}); resending {} unanswered batches in {:?}",
                            describe(&status),
                            push.pending.len(),
                            delay
                        )
                    });
                }
                tokio::time::sleep(delay).await;
                continue;
            }
            StreamEnd::Lost(status) => status,
        };
        attempt = if progressed { 1 } else { attempt + 1 };
        if attempt > options.max_attempts {
            push.report.failure = Some(format!(
                "gave up after {} attempts: {}",
                options.max_attempts,
                describe(&lost)
            ));
            break;
        }
        push.report.retries += 1;
        let delay = retry_delay(Some(&lost), attempt);
        // `suspend`, not `println`: the message must show even without a progress bar.
        push.progress.suspend(|| {
            eprintln!(
                "hub unavailable ({}); resending {} unanswered batches in {:?}",
                describe(&lost),
                push.pending.len(),
                delay
            )
        });
        tokio::time::sleep(delay).await;
    }
    push.progress.finish_and_clear();
    let Push {
        mut reader,
        mut report,
        pending,
        ..
    } = push;
    // What is still unanswered, and what was never read, was not delivered.
    report.not_delivered = pending.iter().map(|b| b.lines.len() as u64).sum();
    while !reader.done {
        match reader.next(&mut report) {
            Ok(Some(batch)) => report.not_delivered += batch.lines.len() as u64,
            Ok(None) => {}
            Err(_) => break,
        }
    }
    Ok(report)
}

/// A status in words, with the transport error behind it if any ("transport error"
/// alone helps nobody).
fn describe(status: &Status) -> String {
    match std::error::Error::source(status) {
        Some(source) => format!("{:?}: {}: {}", status.code(), status.message(), error_chain(source)),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

fn record_answers(report: &mut PushReport, batch: &Batch, response: pb::PushResponse) {
    for (i, result) in response.results.into_iter().enumerate() {
        let line = batch.lines.get(i).copied().unwrap_or_default();
        let by_type = report.by_record_type.entry(result.record_type.clone()).or_default();
        match pb::Outcome::try_from(result.outcome).unwrap_or(pb::Outcome::Unspecified) {
            pb::Outcome::Accepted => {
                report.accepted += 1;
                by_type.accepted += 1;
                report.mentions += result.mentions.len() as u64;
                report.matched_existing += result.mentions.iter().filter(|m| m.matched_existing).count() as u64;
                report.matched_probabilistically +=
                    result.mentions.iter().filter(|m| m.resolved_by == "matched").count() as u64;
                report.queued_for_review += result.mentions.iter().filter(|m| m.resolved_by == "queued").count() as u64;
                for flag in &result.quality_flags {
                    *report.quality_flags.entry(flag.code.clone()).or_default() += 1;
                }
                if !result.quality_flags.is_empty() {
                    report.flagged.push(FlaggedLine {
                        line,
                        record_type: result.record_type,
                        source_id: result.source_id,
                        flags: result
                            .quality_flags
                            .into_iter()
                            .map(|f| Flag {
                                code: f.code,
                                pointer: f.pointer,
                                message: f.message,
                            })
                            .collect(),
                    });
                }
            }
            pb::Outcome::Unchanged => {
                report.unchanged += 1;
                by_type.unchanged += 1;
            }
            pb::Outcome::Stale => {
                report.stale += 1;
                by_type.stale += 1;
            }
            pb::Outcome::Rejected | pb::Outcome::Unspecified => {
                report.rejected += 1;
                by_type.rejected += 1;
                report.rejections.push(RejectedLine {
                    line,
                    record_type: result.record_type,
                    source_id: result.source_id,
                    source_version: result.source_version,
                    quarantine_id: result.quarantine_id,
                    errors: result.errors.into_iter().map(record_error).collect(),
                });
            }
        }
    }
}

fn record_error(e: pb::RecordError) -> RecordError {
    let scope = match pb::ErrorScope::try_from(e.scope) {
        Ok(pb::ErrorScope::Envelope) => ErrorScope::Envelope,
        _ => ErrorScope::Payload,
    };
    RecordError {
        scope,
        pointer: e.pointer,
        message: e.message,
        code: e.code,
    }
}

fn progress_bar(total_bytes: u64, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total_bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}
