//! Assembles the hub: TLS accept loop, gRPC services (Exchange, Unified, Stewardship,
//! Operations, Quality, health, reflection), the health probe of the store, and the
//! flushing of operational statistics.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tongban_proto::v1::exchange_server::ExchangeServer;
use tongban_proto::v1::operations_server::OperationsServer;
use tongban_proto::v1::quality_server::QualityServer;
use tongban_proto::v1::stewardship_server::StewardshipServer;
use tongban_proto::v1::unified_server::UnifiedServer;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::admin_port::{AdminConnection, AdminListener};
use crate::config::Limits;
use crate::console::Console;
use crate::grpc::caller_limits::{CallerLimits, CallerLimitsLayer};
use crate::grpc::exchange::ExchangeService;
use crate::grpc::message_limit::MessageLimitLayer;
use crate::grpc::operations::OperationsService;
use crate::grpc::quality::QualityService;
use crate::grpc::stewardship::StewardshipService;
use crate::grpc::traced::TracedLayer;
use crate::grpc::unified::UnifiedService;
use crate::pipeline::{Pipeline, SchemaError};
use crate::quality::QualityDesk;
use crate::registry::{FeedSettings, Registry};
use crate::sharing::SharingRules;
use crate::statistics::Statistics;
use crate::stewardship::StewardDesk;
use crate::store::Store;
use crate::tls::accept_loop;

/// The gRPC service names health reports on besides the overall status ("").
pub const EXCHANGE_SERVICE_NAME: &str = "tongban.v1.Exchange";
pub const UNIFIED_SERVICE_NAME: &str = "tongban.v1.Unified";
pub const STEWARDSHIP_SERVICE_NAME: &str = "tongban.v1.Stewardship";
pub const OPERATIONS_SERVICE_NAME: &str = "tongban.v1.Operations";
pub const QUALITY_SERVICE_NAME: &str = "tongban.v1.Quality";
/// Every service name health reports on, the overall status ("") first.
const HEALTH_NAMES: [&str; 6] = [
    "",
    EXCHANGE_SERVICE_NAME,
    UNIFIED_SERVICE_NAME,
    STEWARDSHIP_SERVICE_NAME,
    OPERATIONS_SERVICE_NAME,
    QUALITY_SERVICE_NAME,
];

/// How long a stopping hub waits for the admin port's requests in flight.
const ADMIN_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a stopping server waits to store its last statistics.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the server needs besides its store and listener.
#[derive(Clone)]
pub struct ServerSettings {
    pub tls: crate::tls::ServerTls,
    pub limits: Limits,
    pub handshake_timeout: Duration,
    /// Interval of the store probe behind gRPC health.
    pub probe_interval: Duration,
    /// How long in-flight calls and open streams get to finish once shutdown begins.
    pub shutdown_grace: Duration,
    pub sharing: SharingRules,
    pub feed: FeedSettings,
    /// Keyed pseudonyms of the identifiers lookups ask for, in the audit log; without a
    /// key the log says only "identifier".
    pub pseudonyms: Option<crate::pseudonym::Pseudonymiser>,
    /// The console's sign-in links and sessions; held here so that whoever starts the
    /// hub (the demo) can mint a link for the console it serves.
    pub console_sessions: Arc<crate::console::Sessions>,
    /// What `/metrics` on the admin port renders; `None`: no `/metrics`.
    pub metrics: Option<prometheus::Registry>,
}

impl ServerSettings {
    /// Settings for a hub on a development PKI folder (`tongban dev`, the demo, tests):
    /// its CA for clients, its server certificate, default limits.
    pub fn development(
        pki: &crate::pki::PkiLayout,
        revoked_serials: std::collections::HashSet<String>,
    ) -> Result<Self, crate::tls::TlsError> {
        let server = pki.server_dir();
        Ok(ServerSettings {
            tls: crate::tls::server_config(
                &pki.ca_cert(),
                &server.join("cert.pem"),
                &server.join("key.pem"),
                revoked_serials,
            )?,
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            probe_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
            sharing: SharingRules::default(),
            feed: FeedSettings::default(),
            pseudonyms: Some(
                crate::pseudonym::Pseudonymiser::from_file_or_new(&pki.root.join("audit-key"))
                    .map_err(|e| crate::tls::TlsError::Verifier(e.to_string()))?,
            ),
            console_sessions: Arc::default(),
            metrics: None,
        })
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("the server task failed: {0}")]
    Join(String),
}

/// A hub serving on a socket, stopped by [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The admin port (console and `/metrics`), when one was given.
    pub admin_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight calls finish, and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops on its own (or fails).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        (&mut self.task).await.map_err(|e| ServerError::Join(e.to_string()))?
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Starts the hub on `listener` over `store`.
pub fn start<S: Store + Clone>(
    listener: TcpListener,
    settings: ServerSettings,
    store: S,
) -> Result<RunningServer, ServerError> {
    start_with_admin(listener, None, settings, store)
}

/// Starts the hub on `listener`, and the admin port (console, `/metrics`) on `admin`.
pub fn start_with_admin<S: Store + Clone>(
    listener: TcpListener,
    admin: Option<TcpListener>,
    settings: ServerSettings,
    store: S,
) -> Result<RunningServer, ServerError> {
    let admin_addr = admin
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()
        .map_err(|source| ServerError::Bind {
            addr: "admin listener".into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: "listener".into(),
        source,
    })?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, admin, settings, store, async {
        let _ = stop_rx.await;
    }));
    Ok(RunningServer {
        addr,
        admin_addr,
        stop: Some(stop_tx),
        task,
    })
}

/// Serves the hub on `listener` and, when given, the admin port on `admin`, until
/// `shutdown` resolves.
pub async fn serve<S: Store + Clone>(
    listener: TcpListener,
    admin: Option<TcpListener>,
    settings: ServerSettings,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = settings.limits.clone();
    let pipeline = Arc::new(Pipeline::new(store.clone(), &limits)?);
    let refusals_store = store.clone();
    let refusals_store_at_exit = store.clone();
    let desk = Arc::new(StewardDesk::new(store.clone()));
    let statistics = Arc::new(Statistics::new(store.clone(), pipeline.traffic()));
    let quality_desk = Arc::new(QualityDesk::new(store.clone()));
    let registry = Arc::new(Registry::new(
        store,
        settings.sharing.clone(),
        settings.feed.clone(),
        pipeline.commits(),
        pipeline.traffic(),
        settings.pseudonyms.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    // The first probe of the store answers before the first connection is accepted: a
    // health check never sees NOT_FOUND for our own service, nor a NOT_SERVING that only
    // means "not asked yet" (a client checking right after start-up would take it for a
    // store that is down).
    let reachable = probe_store_once(
        &pipeline,
        &health,
        FIRST_PROBE_TIMEOUT.min(probe_timeout(settings.probe_interval)),
        None,
    )
    .await;
    let probe = tokio::spawn(probe_store(
        pipeline.clone(),
        health,
        settings.probe_interval,
        reachable,
    ));
    let (flusher_stop, flusher_stopped) = oneshot::channel::<()>();
    tokio::spawn({
        let statistics = Arc::clone(&statistics);
        async move {
            statistics
                .flush_until(async {
                    let _ = flusher_stopped.await;
                })
                .await
        }
    });

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tongban_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Join(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tongban_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::Join(format!("reflection: {e}")))?;

    // Streams open and requests a second, per caller identity: the layer below checks
    // every call, the Exchange service every batch of a PushStream.
    let caller_limits = CallerLimits::new(&limits);
    // When shutdown begins, following feeds end cleanly and PushStreams end with
    // UNAVAILABLE after the batch in hand.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let exchange = ExchangeServer::new(ExchangeService::new(
        pipeline,
        limits.stream_window,
        limits.max_message_bytes,
        Arc::clone(&caller_limits),
        stopping_rx.clone(),
    ))
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes.saturating_mul(4));

    let admin_stopping = stopping_rx.clone();
    let unified = UnifiedServer::new(UnifiedService::new(registry, limits.stream_window.max(16), stopping_rx))
        .max_encoding_message_size(limits.max_message_bytes.saturating_mul(4));

    let stewardship = StewardshipServer::new(StewardshipService::new(Arc::clone(&desk)))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes.saturating_mul(4));

    let operations = OperationsServer::new(OperationsService::new(Arc::clone(&statistics)))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes.saturating_mul(4));

    let quality = QualityServer::new(QualityService::new(Arc::clone(&quality_desk)))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes.saturating_mul(4));

    // The admin port answers while the hub does: when shutdown begins it stops accepting
    // and closes its connections once their requests are answered (a browser's
    // keep-alive connection is not answered again), within a bound (below).
    let admin_task = match admin {
        Some(admin) => {
            let console = Arc::new(Console::new(
                Arc::clone(&desk),
                Arc::clone(&quality_desk),
                Arc::clone(&statistics),
                Arc::clone(&settings.console_sessions),
            ));
            let router = crate::console::admin_router(console, settings.metrics.clone());
            let admin = AdminListener::new(admin, &settings.tls, settings.handshake_timeout).map_err(|source| {
                ServerError::Bind {
                    addr: "admin listener".into(),
                    source,
                }
            })?;
            let mut stopping = admin_stopping;
            Some(tokio::spawn(async move {
                let app = router.into_make_service_with_connect_info::<AdminConnection>();
                let stop = async move {
                    let _ = stopping.wait_for(|stopping| *stopping).await;
                };
                if let Err(e) = axum::serve(admin, app).with_graceful_shutdown(stop).await {
                    tracing::warn!(error = %e, "admin port stopped");
                }
            }))
        }
        None => None,
    };
    let refusals_audit = tokio::spawn(audit_refusals(Arc::clone(&settings.tls.refusals), refusals_store));
    let incoming = accept_loop(listener, settings.tls.clone(), settings.handshake_timeout);
    // tonic's graceful shutdown waits for every client to hang up; a department that
    // keeps its connection open must not keep the hub from stopping.
    let (grace_tx, grace_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
        let _ = grace_tx.send(());
    };
    let shutdown_grace = settings.shutdown_grace;
    let grace = async move {
        if grace_rx.await.is_ok() {
            tokio::time::sleep(shutdown_grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let server = tonic::transport::Server::builder()
        .layer(TracedLayer)
        .layer(MessageLimitLayer {
            limit: limits.max_message_bytes,
        })
        // Inside the span: a refusal is logged and traced like any answer.
        .layer(CallerLimitsLayer { limits: caller_limits })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(exchange)
        .add_service(unified)
        .add_service(stewardship)
        .add_service(operations)
        .add_service(quality)
        .serve_with_incoming_shutdown(incoming, shutdown);
    let result = tokio::select! {
        result = server => result,
        _ = grace => {
            tracing::warn!("clients still connected {shutdown_grace:?} after shutdown began; stopping anyway");
            Ok(())
        }
    };
    probe.abort();
    refusals_audit.abort();
    if let Some(mut admin) = admin_task {
        if tokio::time::timeout(ADMIN_CLOSE_TIMEOUT, &mut admin).await.is_err() {
            tracing::warn!("console connections still open {ADMIN_CLOSE_TIMEOUT:?} after shutdown began; closing them");
            admin.abort();
        }
    }
    // Refusals still queued are written before the hub stops, within a bound.
    let (refused, dropped) = settings.tls.refusals.take();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        write_refusals(&refusals_store_at_exit, refused, dropped),
    )
    .await;
    // What was counted since the last flush is kept, unless the store is gone too (the
    // flush waits for one under way).
    let _ = flusher_stop.send(());
    match tokio::time::timeout(FINAL_FLUSH_TIMEOUT, statistics.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the last statistics could not be stored"),
        Err(_) => tracing::warn!("the last statistics could not be stored in {FINAL_FLUSH_TIMEOUT:?}"),
    }
    Ok(result?)
}

/// Writes every refused client certificate to the audit log (its serial, what it
/// claimed, why), off the handshake's path.
async fn audit_refusals<S: Store>(refusals: Arc<crate::tls::Refusals>, store: S) {
    loop {
        let (refused, dropped) = refusals.next().await;
        write_refusals(&store, refused, dropped).await;
    }
}

async fn write_refusals<S: Store>(store: &S, refused: Vec<crate::tls::CertificateRefusal>, dropped: u64) {
    let entry = |subject: String, reason: String| crate::store::AuditEntry {
        at: std::time::SystemTime::now(),
        // Refused in the handshake: nobody was authenticated, whatever was claimed.
        identity: "unauthenticated".to_owned(),
        action: "connect".to_owned(),
        subject,
        purpose: String::new(),
        outcome: format!("refused: {reason}"),
        trace_id: String::new(),
    };
    // One entry per certificate and reason in what was queued: a client retrying a
    // refused certificate in a loop adds one line per drain, not one per handshake.
    let mut grouped: Vec<(crate::tls::CertificateRefusal, u64)> = Vec::new();
    for refusal in refused {
        match grouped.iter_mut().find(|(r, _)| *r == refusal) {
            Some((_, n)) => *n += 1,
            None => grouped.push((refusal, 1)),
        }
    }
    let mut entries: Vec<_> = grouped
        .into_iter()
        .map(|(r, n)| match n {
            1 => entry(r.certificate, r.reason),
            n => entry(format!("{} ({n} times)", r.certificate), r.reason),
        })
        .collect();
    if dropped > 0 {
        entries.push(entry(
            format!("{dropped} more certificates"),
            "more than the audit queue holds".to_owned(),
        ));
    }
    for entry in entries {
        if let Err(e) = crate::audit::append(store, &entry).await {
            tracing::warn!(error = %e, "could not audit a refused certificate");
        }
    }
}

/// The longest the first probe holds up the first connection: a store that hangs at
/// start-up is reported NOT_SERVING after this, whatever the probe interval.
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a probe waits for the store: an interval, at least a second.
fn probe_timeout(interval: Duration) -> Duration {
    interval.max(Duration::from_secs(1))
}

/// Drives gRPC health from the store: SERVING while it answers, NOT_SERVING while not.
/// `last` is what the previous probe found.
async fn probe_store<S: Store>(pipeline: Arc<Pipeline<S>>, health: HealthReporter, interval: Duration, mut last: bool) {
    loop {
        tokio::time::sleep(interval).await;
        last = probe_store_once(&pipeline, &health, probe_timeout(interval), Some(last)).await;
    }
}

/// Pings the store once, sets every health name from the answer and logs a change from
/// `last`. Returns whether the store answered.
async fn probe_store_once<S: Store>(
    pipeline: &Pipeline<S>,
    health: &HealthReporter,
    timeout: Duration,
    last: Option<bool>,
) -> bool {
    let reachable = tokio::time::timeout(timeout, pipeline.store().ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let status = if reachable {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    if last != Some(reachable) {
        if reachable {
            tracing::info!("store reachable: serving");
        } else {
            tracing::warn!("store unreachable: not serving");
        }
    }
    for service in HEALTH_NAMES {
        health.set_service_status(service, status).await;
    }
    reachable
}
