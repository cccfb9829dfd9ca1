//! The subcommands of the `tongban` binary. Each lives in its own file; this one
//! declares them and dispatches.

mod audit;
mod backup;
mod certs;
mod demo;
mod dev;
mod get;
mod health;
mod matching;
mod pull;
mod push;
mod quality;
mod serve;
mod stats;
mod steward;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Tongban (通办): the city's data-exchange hub.
#[derive(Debug, Parser)]
#[command(name = "tongban", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub for development: embedded store and a development PKI under a local
    /// folder, TLS on 127.0.0.1:7443.
    Dev(dev::DevArgs),
    /// Run the hub in production from a configuration file (PostgreSQL, real certificates).
    Serve(serve::ServeArgs),
    /// Make certificates: a CA, a server certificate, or a client certificate for an identity.
    Certs(certs::CertsArgs),
    /// Push a JSON-lines file of envelopes to the hub as a department.
    Push(push::PushArgs),
    /// Follow the change feed of unified records into a JSON-lines file (platform).
    Pull(pull::PullArgs),
    /// Look up one unified record by unified ID or by any identifier.
    Get(get::GetArgs),
    /// A department's data-quality report: its current records with quality flags
    /// (wrong check characters, unknown codes, contradictions with the authority, ...).
    Quality(quality::QualityArgs),
    /// The review queue: pairs matching could not settle, both sides side by side (steward).
    Review(steward::ReviewArgs),
    /// Settle a review pair: same (merge them) or different (apart for ever) (steward).
    Decide(steward::DecideArgs),
    /// Merge two unified records by ID; the older ID survives (steward).
    Merge(steward::MergeArgs),
    /// Take one mention out of its unified record into a new one (steward).
    Split(steward::SplitArgs),
    /// Why each source of a unified record is in it (steward or platform).
    Explain(steward::ExplainArgs),
    /// Start a hub in a temporary folder, push a generated sample from all seven
    /// departments, and print what happened to every record type.
    Demo(demo::DemoArgs),
    /// Estimate matching's m and u probabilities from the records a store holds and
    /// print them as a `[matching]` table.
    Estimate(matching::EstimateArgs),
    /// Resolve every current record again after weights, thresholds or an adapter
    /// changed (no department re-sends; steward decisions stand).
    Rematch(matching::RematchArgs),
    /// The audit log: `tongban audit verify` proves its hash chain intact or names the
    /// first entry altered.
    Audit(audit::AuditArgs),
    /// Operational statistics (ops): per time window and department, records and their
    /// outcomes, push latency, lookups and repeated collections avoided.
    Stats(stats::StatsArgs),
    /// Ask a hub whether it serves (gRPC health over mutual TLS): exit 0 when SERVING, or
    /// with --live when it answers at all. For probes and health checks.
    Health(health::HealthArgs),
    /// Write a consistent copy of an embedded store while the hub runs (PostgreSQL:
    /// pg_dump or the operator's backups).
    Backup(backup::BackupArgs),
}

/// Runs a parsed command line; the error is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Certs(args) => certs::run(args),
        Command::Push(args) => push::run(args).await,
        Command::Pull(args) => pull::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Quality(args) => quality::run(args).await,
        Command::Review(args) => steward::review(args).await,
        Command::Decide(args) => steward::decide(args).await,
        Command::Merge(args) => steward::merge(args).await,
        Command::Split(args) => steward::split(args).await,
        Command::Explain(args) => steward::explain(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Estimate(args) => matching::estimate_run(args).await,
        Command::Rematch(args) => matching::rematch_run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Stats(args) => stats::run(args).await,
        Command::Health(args) => health::run(args).await,
        Command::Backup(args) => backup::run(args).await,
    }
}

/// The store a maintenance verb (`estimate`, `rematch`, `audit`) works on directly: stop
/// the hub, or run beside it (each change is a transaction like a push).
#[derive(Debug, clap::Args)]
pub struct StoreLocation {
    /// A development folder (its tongban.db), as made by `tongban dev` or `tongban demo --keep`.
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<std::path::PathBuf>,
    /// A configuration file of `tongban serve`: its store (and its resolution settings).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

impl StoreLocation {
    /// The store, and the resolution settings of the configuration (defaults for a
    /// development folder).
    pub async fn open(&self) -> anyhow::Result<(crate::store::AnyStore, crate::resolve::Settings)> {
        use anyhow::Context;
        match &self.config {
            Some(path) => {
                let config = crate::config::Config::load(path)?;
                Ok((serve::open_store(&config.store).await?, config.resolution()))
            }
            None => {
                let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
                let path = dir.join("tongban.db");
                anyhow::ensure!(
                    path.exists(),
                    "no hub store at {} (run `tongban dev` first)",
                    path.display()
                );
                let store = crate::store::embedded::EmbeddedStore::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                Ok((store.into(), crate::resolve::Settings::default()))
            }
        }
    }
}

/// The default development folder, `./tongban-data`.
fn default_data_dir() -> PathBuf {
    PathBuf::from("tongban-data")
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Says where the web console of a development hub is and how to get in: a one-time
/// sign-in link for the development steward (and one for ops), or their certificates.
pub fn announce_console(
    admin: std::net::SocketAddr,
    sessions: &crate::console::Sessions,
    pki: &crate::pki::PkiLayout,
) -> anyhow::Result<()> {
    use crate::identity::Identity;
    let steward = Identity::Steward("steward".to_owned());
    let minutes = crate::console::session::LINK_LIFETIME.as_secs() / 60;
    println!("Console: https://{admin}/review");
    let link = sessions.sign_in_link(steward.clone())?;
    println!("  Sign in as {steward} (once, within {minutes} minutes): https://{admin}/login?token={link}");
    let link = sessions.sign_in_link(Identity::Ops)?;
    println!("  Sign in as ops (once, within {minutes} minutes): https://{admin}/login?token={link}");
    println!(
        "  Or present a client certificate: {} or {} (cert.pem, key.pem; CA {})",
        pki.identity_dir(&steward).display(),
        pki.identity_dir(&Identity::Ops).display(),
        pki.ca_cert().display()
    );
    println!("  The browser does not know this hub's development CA: accept its warning, or import the CA.");
    Ok(())
}
