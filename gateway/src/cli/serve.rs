//! `tongban serve --config FILE`: the production hub.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, StoreConfig};
use crate::server::{self, ServerSettings};
use crate::store::embedded::{EmbeddedSettings, EmbeddedStore};
use crate::store::postgres::{PostgresSettings, PostgresStore};
use crate::store::AnyStore;
use crate::telemetry::{Telemetry, SERVER_LOG_FILTER};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file; see deploy/tongban.example.toml for every setting.
    #[arg(long, env = "TONGBAN_CONFIG")]
    config: PathBuf,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let telemetry = Telemetry::install(&config.telemetry, SERVER_LOG_FILTER)?;
    let served = serve_hub(&config, telemetry.registry.clone()).await;
    telemetry.shutdown();
    served
}

async fn serve_hub(config: &Config, metrics: prometheus::Registry) -> anyhow::Result<()> {
    let store = open_store(&config.store).await?.with_resolution(config.resolution());
    let _pool_gauge = crate::telemetry::metrics::observe_pool(store.clone());
    let tls = crate::tls::server_config(
        &config.tls.client_ca,
        &config.tls.cert,
        &config.tls.key,
        config.tls.revoked_serials.iter().cloned().collect(),
    )?;
    let settings = ServerSettings {
        tls,
        limits: config.limits.clone(),
        handshake_timeout: Duration::from_secs(config.tls.handshake_timeout_secs.max(1)),
        probe_interval: config.health.probe_interval(),
        shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        sharing: config.sharing.clone(),
        feed: config.feed.settings(),
        pseudonyms: config.audit.pseudonyms(|name| std::env::var(name).ok())?,
        console_sessions: Default::default(),
        metrics: Some(metrics),
    };
    if settings.pseudonyms.is_none() {
        tracing::warn!(
            "no audit.pseudonym_key_file (or TONGBAN_AUDIT_KEY): lookups by identifier are audited without the identifier's pseudonym"
        );
    }
    let listener = server::bind(config.listen).await?;
    let admin = match config.telemetry.admin_listen {
        Some(addr) => {
            let admin = server::bind(addr).await.with_context(|| format!("admin port {addr}"))?;
            tracing::info!(admin = %admin.local_addr()?, "metrics (plain HTTP) and the console (HTTPS) on the admin port");
            Some(admin)
        }
        None => None,
    };
    tracing::info!(listen = %listener.local_addr()?, "tongban serving");
    server::serve(listener, admin, settings, store, super::shutdown_signal()).await?;
    Ok(())
}

/// Opens the configured store, applying migrations.
pub async fn open_store(config: &StoreConfig) -> anyhow::Result<AnyStore> {
    Ok(match config {
        StoreConfig::Postgres(pg) => {
            let settings = PostgresSettings {
                url: pg.url.clone(),
                pool_size: pg.pool_size,
                connect_timeout: Duration::from_millis(pg.connect_timeout_ms),
                wait_timeout: Duration::from_millis(pg.wait_timeout_ms),
                statement_timeout: Duration::from_millis(pg.statement_timeout_ms),
            };
            PostgresStore::connect(&settings)
                .await
                .context("connecting to PostgreSQL")?
                .into()
        }
        StoreConfig::Embedded(e) => {
            let settings = EmbeddedSettings {
                busy_timeout: Duration::from_millis(e.busy_timeout_ms),
            };
            EmbeddedStore::open_with(&e.path, &settings)
                .with_context(|| format!("opening {}", e.path.display()))?
                .into()
        }
    })
}
