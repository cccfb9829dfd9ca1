//! `tongban health`: asks a hub whether it serves, over mutual TLS like any client.
//! Kubernetes probes, Docker's HEALTHCHECK and monitoring scripts run it: the hub has no
//! plain-text port, so a probe needs a certificate (the `ops` identity reads nothing
//! personal and is the one to give it).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::client::{call_failure, channel, ClientIdentity};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Identity folder with cert.pem and key.pem (ca.pem in or above it), e.g.
    /// tongban-data/pki/ops.
    #[arg(long, conflicts_with_all = ["cert", "key"], required_unless_present = "cert")]
    identity: Option<PathBuf>,
    /// Client certificate file (instead of --identity), e.g. a mounted Secret's tls.crt.
    #[arg(long, requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,
    /// Private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// Liveness instead of readiness: succeed when the hub answers at all, even NOT_SERVING
    /// (its store is down; restarting the hub would not bring the store back).
    #[arg(long)]
    live: bool,
    /// Seconds to connect and get the answer.
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
}

pub async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let identity = match (&args.identity, &args.cert, &args.key, &args.ca) {
        (_, Some(cert), Some(key), Some(ca)) => ClientIdentity::from_files(cert, key, ca)?,
        (Some(dir), _, _, ca) => ClientIdentity::load(dir, ca.as_deref())?,
        _ => anyhow::bail!("give --identity DIR, or --cert, --key and --ca"),
    };
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let status = tokio::time::timeout(timeout, check(&args.endpoint, &identity))
        .await
        .map_err(|_| anyhow::anyhow!("{} did not answer within {timeout:?}", args.endpoint))??;
    println!("{}", status.as_str_name());
    anyhow::ensure!(
        args.live || status == ServingStatus::Serving,
        "{} answers but is not serving (its store is unreachable)",
        args.endpoint
    );
    Ok(())
}

/// The hub's answer for the whole server (the empty service name).
async fn check(endpoint: &str, identity: &ClientIdentity) -> anyhow::Result<ServingStatus> {
    let mut client = HealthClient::new(channel(endpoint, identity).await?);
    let answer = client
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|status| call_failure(endpoint, &status))?
        .into_inner();
    Ok(ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown))
}
