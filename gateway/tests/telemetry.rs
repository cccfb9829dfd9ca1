//! What operators see of `tongban serve`, checked from outside the process: traces sent
//! to an OTLP collector (an in-process tonic server of the OTLP trace and metrics
//! services, standing in for a standard collector), the Prometheus endpoint of the admin
//! port read by a third-party parser, the JSON log lines, and the error messages callers
//! get. None of it may carry a pushed name, identity number, phone or address.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use tongban_gateway::client::{channel, ClientIdentity};
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::PkiLayout;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_proto::v1::unified_client::UnifiedClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

mod common;

use common::{free_port, start_serve, Database, Running};

/// The spans and metric exports a collector received.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    metric_exports: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().expect("spans");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metric_exports.lock().expect("metrics").push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

impl Collector {
    async fn start() -> (Collector, u16) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        (collector, port)
    }

    fn spans_of(&self, trace_id: &[u8]) -> Vec<Span> {
        self.spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

/// Starts `tongban serve` from `config` (written into `dir`) with `RUST_LOG=log_filter`,
/// its stderr in `serve.log`.
async fn serve(dir: &Path, config: &str, port: u16, log_filter: &str) -> Running {
    start_serve(dir, "serve", config, port, &[("RUST_LOG", log_filter)]).await
}

/// A `[store]` table: PostgreSQL at `url`, or the embedded store without one.
fn store_table(url: Option<&str>) -> String {
    match url {
        Some(url) => format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\npool_size = 3\n"),
        None => "[store]\nkind = \"embedded\"\npath = \"data/tongban.db\"\n".to_owned(),
    }
}

fn config(port: u16, store: &str, otlp: &str, admin_port: u16, export_timeout_ms: u64) -> String {
    format!(
        r#"
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 1
[tls]
client_ca = "pki/ca.pem"
cert = "pki/server/cert.pem"
key = "pki/server/key.pem"
{store}
[telemetry]
otlp_endpoint = "{otlp}"
export_timeout_ms = {export_timeout_ms}
metrics_interval_secs = 1
admin_listen = "127.0.0.1:{admin_port}"
log_format = "json"
"#
    )
}

async fn client(dir: &Path, port: u16, identity: &Identity) -> Channel {
    let pki = PkiLayout::new(dir.join("pki"));
    let credentials = ClientIdentity::load(&pki.identity_dir(identity), None).expect("identity");
    channel(&format!("https://127.0.0.1:{port}"), &credentials)
        .await
        .expect("channel")
}

/// A resident identity number with its check character (GB 11643).
fn resident_id(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("digit") * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{first17}{check}")
}

/// The personal values pushed, which must appear nowhere an operator looks.
struct Citizen {
    source_id: String,
    name: &'static str,
    id_number: String,
    phone: &'static str,
    address: &'static str,
}

fn citizens() -> Vec<Citizen> {
    vec![
        Citizen {
            source_id: "10013706870000000101".into(),
            name: "欧阳靖雯",
            id_number: resident_id("37068719850612042"),
            phone: "13912345678",
            address: "海阳市凤城街道海政路27号",
        },
        Citizen {
            source_id: "10013706870000000102".into(),
            name: "司马德昌",
            id_number: resident_id("37068719720309151"),
            phone: "13587654321",
            address: "海阳市方圆街道东村路8号",
        },
    ]
}

fn taxpayer(c: &Citizen) -> pb::Envelope {
    let payload = serde_json::json!({
        "djxh": c.source_id, "nsrsbh": c.id_number, "nsrmc": c.name, "nsrlx": "3",
        "zjlx_dm": "201", "zcdz": c.address, "lxdh": c.phone, "djrq": "20150302",
        "nsrzt_dm": "03", "swjg_dm": "13706870000"
    });
    pb::Envelope {
        record_type: "tax.taxpayer".into(),
        source_id: c.source_id.clone(),
        source_version: 1,
        deleted: false,
        payload: payload.to_string().into(),
    }
}

/// A record the schema rejects because personal values sit where they do not belong:
/// its error message must still not repeat them.
fn misfiled(c: &Citizen) -> pb::Envelope {
    let payload = serde_json::json!({
        "djxh": c.source_id, "nsrsbh": 3, "nsrmc": [c.name, c.id_number], "nsrlx": c.phone,
        "djrq": c.address, "nsrzt_dm": "03"
    });
    pb::Envelope {
        record_type: "tax.taxpayer".into(),
        source_id: format!("{}9", c.source_id),
        source_version: 1,
        deleted: false,
        payload: payload.to_string().into(),
    }
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn with_trace<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01").parse().expect("header"),
    );
    request
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GET `/metrics` of the admin port, over a plain socket: the body.
fn scrape(admin_port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin_port)).expect("admin port");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn sample(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_traces_and_metrics_without_personal_data() {
    tongban_gateway::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    PkiLayout::new(dir.path().join("pki")).ensure_dev().expect("PKI");
    let (collector, otlp_port) = Collector::start().await;
    let (port, admin_port) = (free_port(), free_port());
    // PostgreSQL, as in production: its connection pool has a gauge.
    let database = Database::create("tongban_telemetry");
    let _hub = serve(
        dir.path(),
        &config(
            port,
            &store_table(Some(&database.url)),
            &format!("http://127.0.0.1:{otlp_port}"),
            admin_port,
            3000,
        ),
        port,
        // What an operator sets while troubleshooting: the privacy checks below must hold
        // even then (the PostgreSQL driver would log statement parameters at debug).
        "debug",
    )
    .await;

    let tax = Identity::Department("tax".parse().expect("tax"));
    let mut exchange = ExchangeClient::new(client(dir.path(), port, &tax).await);
    let people = citizens();
    let mut envelopes: Vec<pb::Envelope> = people.iter().map(taxpayer).collect();
    envelopes.extend(people.iter().map(misfiled));
    let response = exchange
        .push(with_trace(pb::PushRequest {
            batch_id: "telemetry-1".into(),
            envelopes,
        }))
        .await
        .expect("push")
        .into_inner();
    let outcomes: Vec<i32> = response.results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            pb::Outcome::Accepted as i32,
            pb::Outcome::Accepted as i32,
            pb::Outcome::Rejected as i32,
            pb::Outcome::Rejected as i32
        ],
        "{:?}",
        response.results
    );
    // The same records again: unchanged.
    let again = exchange
        .push(pb::PushRequest {
            batch_id: "telemetry-2".into(),
            envelopes: people.iter().map(taxpayer).collect(),
        })
        .await
        .expect("push again")
        .into_inner();
    assert!(again.results.iter().all(|r| r.outcome == pb::Outcome::Unchanged as i32));

    // Error messages callers get: the rejections above, a refused record type, a lookup
    // by identity number without a purpose, and one with a purpose.
    let mut messages: Vec<String> = response
        .results
        .iter()
        .flat_map(|r| r.errors.iter().map(|e| e.message.clone()))
        .collect();
    let refused = exchange
        .push(pb::PushRequest {
            batch_id: "telemetry-3".into(),
            envelopes: vec![pb::Envelope {
                record_type: "civil.marriage".into(),
                ..taxpayer(&people[0])
            }],
        })
        .await
        .expect_err("tax may not push civil records");
    messages.push(refused.message().to_owned());
    let mut unified = UnifiedClient::new(client(dir.path(), port, &tax).await);
    let lookup = |purpose: &str| pb::LookupRequest {
        by: Some(pb::lookup_request::By::Identifier(people[1].id_number.clone())),
        purpose: purpose.into(),
        parts: Vec::new(),
    };
    let no_purpose = unified.lookup(lookup("")).await.expect_err("no purpose");
    assert_eq!(no_purpose.code(), tonic::Code::InvalidArgument);
    messages.push(no_purpose.message().to_owned());
    let found = unified
        .lookup(with_trace(lookup("案件 2026-0042")))
        .await
        .expect("lookup");
    assert!(!found.into_inner().record.is_empty());

    // The collector receives the push's span tree, under the caller's span.
    let trace_id = (0..16)
        .map(|i| u8::from_str_radix(&CALLER_TRACE[2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>();
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.spans_of(&trace_id);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if ["validate", "adapt", "commit", "resolve"]
            .iter()
            .all(|n| names.contains(n))
            && names.iter().filter(|n| n.starts_with("tongban.v1.")).count() >= 2
        {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans of the trace so far: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_name = |name: &str| -> &Span {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"))
    };
    let rpc = by_name("tongban.v1.Exchange/Push");
    assert_eq!(
        hex(&rpc.parent_span_id),
        CALLER_SPAN,
        "the RPC continues the caller's span"
    );
    for stage in ["validate", "adapt", "commit"] {
        assert_eq!(
            by_name(stage).parent_span_id,
            rpc.span_id,
            "{stage} is a child of the RPC"
        );
    }
    assert_eq!(
        by_name("resolve").parent_span_id,
        by_name("commit").span_id,
        "resolution runs inside the commit"
    );
    let attribute = |span: &Span, key: &str| -> Option<String> {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
    };
    assert!(attribute(rpc, "identity").is_some_and(|v| v.contains("tax")));
    assert!(attribute(by_name("commit"), "accepted").is_some_and(|v| v.contains('2')));
    // Only the hub's spans: no h2 or tower internals.
    let all = collector.spans.lock().expect("spans").clone();
    let allowed = [
        "tongban.v1.",
        "validate",
        "adapt",
        "commit",
        "resolve",
        "grpc.health",
        "grpc.reflection",
    ];
    for span in &all {
        assert!(
            allowed.iter().any(|a| span.name.starts_with(a)),
            "unexpected span {:?}",
            span.name
        );
    }

    // A caller over its limits is counted: the platform holds open every feed it may,
    // and one more is refused.
    let mut feeds = UnifiedClient::new(client(dir.path(), port, &Identity::Platform).await);
    let follow = || pb::ChangesRequest {
        follow: true,
        ..Default::default()
    };
    let mut held = Vec::new();
    for _ in 0..tongban_gateway::config::Limits::default().max_streams_per_identity {
        held.push(feeds.changes(follow()).await.expect("a feed within the limit"));
    }
    let over = feeds.changes(follow()).await.expect_err("a feed over the limit");
    assert_eq!(over.code(), tonic::Code::ResourceExhausted, "{over:?}");

    // Prometheus: counts match what was pushed.
    let text = scrape(admin_port);
    let parsed =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text parses");
    let tax_taxpayer = [("department", "tax"), ("record_type", "tax.taxpayer")];
    let with = |outcome: &'static str| {
        let mut labels = tax_taxpayer.to_vec();
        labels.push(("outcome", outcome));
        labels
    };
    assert_eq!(sample(&parsed, "tongban_records_total", &with("accepted")), 2.0);
    assert_eq!(sample(&parsed, "tongban_records_total", &with("rejected")), 2.0);
    assert_eq!(sample(&parsed, "tongban_records_total", &with("unchanged")), 2.0);
    assert_eq!(sample(&parsed, "tongban_records_received_total", &tax_taxpayer), 6.0);
    assert_eq!(
        sample(
            &parsed,
            "tongban_batches_refused_total",
            &[("department", "tax"), ("reason", "not_owner")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &parsed,
            "tongban_resolutions_total",
            &[("department", "tax"), ("outcome", "deterministic")]
        ) + sample(
            &parsed,
            "tongban_resolutions_total",
            &[("department", "tax"), ("outcome", "new")]
        ),
        2.0,
        "each accepted taxpayer resolved once"
    );
    assert!(
        sample(&parsed, "tongban_stage_duration_seconds_count", &[("stage", "commit")]) >= 2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &parsed,
            "tongban_requests_limited_total",
            &[("identity", "platform"), ("reason", "too_many_streams")]
        ),
        1.0,
        "the feed refused over the stream limit"
    );
    drop(held);
    assert_eq!(
        sample(&parsed, "tongban_store_pool_connections", &[("state", "max")]),
        3.0,
        "the pool gauge shows the configured pool size"
    );

    // Metrics reach the collector over OTLP too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while collector.metric_exports.lock().expect("metrics").is_empty() {
        assert!(Instant::now() < deadline, "no metrics exported over OTLP");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // JSON log lines, those of a call carrying its trace ID.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).expect("log");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    assert!(
        log.lines()
            .any(|line| line.contains("answered") && line.contains(CALLER_TRACE)),
        "no log line of the push with its trace ID:\n{log}"
    );

    // Privacy: nothing an operator sees carries a pushed personal value, in any form.
    let spans_text = format!("{all:?}");
    let metrics_text = format!("{text}{:?}", collector.metric_exports.lock().expect("metrics"));
    let seen = [
        ("spans", spans_text),
        ("metrics", metrics_text),
        ("logs", log),
        ("error messages", messages.join("\n")),
    ];
    for person in &people {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let forbidden = [
            person.name.to_owned(),
            person.id_number.clone(),
            person.id_number.to_lowercase(),
            digits(&person.id_number),
            person.phone.to_owned(),
            person.address.to_owned(),
            // Parts of them: the surname and given name, the street.
            person.name.chars().take(2).collect(),
            person.name.chars().skip(2).collect(),
            person.address.chars().skip(3).take(4).collect(),
            // The birth date inside the identity number.
            person.id_number[6..14].to_owned(),
        ];
        for (what, text) in &seen {
            for value in &forbidden {
                assert!(!text.contains(value.as_str()), "{what} carry {value:?}:\n{text}");
            }
        }
    }
    // Spans, metrics and logs hold no Chinese text at all (error messages may quote a
    // field's description from its schema).
    for (what, text) in &seen[..3] {
        if let Some(c) = text.chars().find(|c| ('\u{4e00}'..='\u{9fff}').contains(c)) {
            panic!("{what} carry Chinese text ({c}), which only records hold:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_collector_does_not_slow_pushes() {
    tongban_gateway::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    PkiLayout::new(dir.path().join("pki")).ensure_dev().expect("PKI");
    // A collector that accepts connections and never answers: each export waits for
    // its whole timeout.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let blackhole_port = blackhole.local_addr().expect("addr").port();
    let held: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
    let holder = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in blackhole.incoming().flatten() {
            holder.lock().expect("held").push(stream);
        }
    });
    let (port, admin_port) = (free_port(), free_port());
    const EXPORT_TIMEOUT_MS: u64 = 10_000;
    let _hub = serve(
        dir.path(),
        &config(
            port,
            &store_table(None),
            &format!("http://127.0.0.1:{blackhole_port}"),
            admin_port,
            EXPORT_TIMEOUT_MS,
        ),
        port,
        "info",
    )
    .await;

    let tax = Identity::Department("tax".parse().expect("tax"));
    let mut exchange = ExchangeClient::new(client(dir.path(), port, &tax).await);
    // Forty pushes, each with a span tree for the exporter. Were a push to wait for an
    // export, forty would take minutes; queued and dropped spans cost nothing.
    let started = Instant::now();
    let mut outcomes: HashMap<i32, usize> = HashMap::new();
    for n in 0..40u32 {
        let citizen = Citizen {
            source_id: format!("100137068700000{n:05}"),
            name: "测试",
            id_number: resident_id(&format!("370687199001{:05}", 10_000 + n)),
            phone: "13900000000",
            address: "海阳市",
        };
        let results = exchange
            .push(with_trace(pb::PushRequest {
                batch_id: format!("slow-collector-{n}"),
                envelopes: vec![taxpayer(&citizen)],
            }))
            .await
            .expect("push")
            .into_inner()
            .results;
        *outcomes.entry(results[0].outcome).or_default() += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(outcomes.get(&(pb::Outcome::Accepted as i32)), Some(&40));
    assert!(
        elapsed < Duration::from_millis(EXPORT_TIMEOUT_MS),
        "40 pushes took {elapsed:?} with an unresponsive collector (one export timeout is {EXPORT_TIMEOUT_MS} ms)"
    );
    // And the exporter did try that collector (so the pushes above ran beside it).
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.lock().expect("held").is_empty() {
        assert!(Instant::now() < deadline, "the exporter never tried the collector");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
