//! `tongban backup`: a consistent copy of an embedded store, taken while the hub runs.
//! PostgreSQL has its own tools (pg_dump, or CloudNativePG's backups): docs/operating.md.

use std::path::PathBuf;

use clap::Args;

use crate::config::{Config, StoreConfig};
use crate::store::embedded::EmbeddedStore;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A development folder (its tongban.db), as made by `tongban dev` or `tongban demo --keep`.
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<PathBuf>,
    /// A configuration file of `tongban serve` with an embedded store.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The file to write; it must not exist. Restore: stop the hub, put it in place of
    /// the store's file, start the hub.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let database = match &args.config {
        Some(path) => match Config::load(path)?.store {
            StoreConfig::Embedded(embedded) => embedded.path,
            StoreConfig::Postgres(_) => anyhow::bail!(
                "{} uses PostgreSQL: back it up with pg_dump or the operator's backups (docs/operating.md)",
                path.display()
            ),
        },
        None => args
            .data_dir
            .clone()
            .unwrap_or_else(super::default_data_dir)
            .join("tongban.db"),
    };
    let out = args.out.clone();
    let bytes = tokio::task::spawn_blocking(move || EmbeddedStore::backup(&database, &out)).await??;
    println!(
        "backup written to {} ({:.1} MiB, checked)",
        args.out.display(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
