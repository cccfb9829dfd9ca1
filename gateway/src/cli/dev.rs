//! `tongban dev`: the hub on a laptop, ready in seconds.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::identity::Identity;
use crate::pki::PkiLayout;
use crate::server::{self, ServerSettings};
use crate::store::embedded::EmbeddedStore;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder for the embedded store and the development PKI.
    #[arg(long, default_value_os_t = super::default_data_dir())]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7443", env = "TONGBAN_LISTEN")]
    listen: SocketAddr,
    /// A TOML file with a `[matching]` table (as `tongban estimate` writes) instead of
    /// the default weights and thresholds.
    #[arg(long)]
    matching: Option<PathBuf>,
    /// Also serve the web console (HTTPS) at this address, e.g. 127.0.0.1:9464, and
    /// print sign-in links for the development steward and ops.
    #[arg(long, value_name = "ADDR")]
    console: Option<SocketAddr>,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let pki = PkiLayout::new(args.data_dir.join("pki"));
    let created = pki.ensure_dev().context("creating the development PKI")?;
    let db_path = args.data_dir.join("tongban.db");
    let mut store = EmbeddedStore::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
    if let Some(path) = &args.matching {
        store = store.with_resolution(crate::resolve::Settings {
            matching: super::matching::load_matching(path)?,
            ..Default::default()
        });
    }
    let settings = ServerSettings::development(&pki, Default::default())?;
    let listener = server::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let admin = match args.console {
        Some(console) => Some(
            server::bind(console)
                .await
                .with_context(|| format!("the console's address {console}"))?,
        ),
        None => None,
    };
    print_next_steps(&pki, created, addr, &db_path);
    if let Some(admin) = &admin {
        println!();
        super::announce_console(admin.local_addr()?, &settings.console_sessions, &pki)?;
    }
    use std::io::Write as _;
    std::io::stdout().flush()?;
    server::serve(listener, admin, settings, store, super::shutdown_signal()).await?;
    Ok(())
}

fn print_next_steps(pki: &PkiLayout, created: bool, addr: SocketAddr, db: &std::path::Path) {
    let tax = pki.identity_dir(&Identity::Department(tongban_adapters::Department::Tax));
    println!("Tongban dev hub listening on https://{addr} (mutual TLS)");
    println!(
        "  store: {} (embedded)\n  PKI:   {} ({})",
        db.display(),
        pki.root.display(),
        if created { "created now" } else { "reused" }
    );
    println!();
    println!("What to do next:");
    println!("  push a department's file (one JSON envelope per line):");
    println!(
        "    tongban push --endpoint https://{addr} --identity {} --file records.jsonl",
        tax.display()
    );
    println!("  follow the feed of unified records as the platform (again: only what is new):");
    println!(
        "    tongban pull --endpoint https://{addr} --identity {} --out unified.jsonl",
        pki.identity_dir(&Identity::Platform).display()
    );
    println!("  look up one unified record by unified ID or any identifier:");
    println!(
        "    tongban get --endpoint https://{addr} --identity {} <identifier> --purpose <matter>",
        pki.identity_dir(&Identity::Platform).display()
    );
    println!("  as a data steward, the pairs matching could not settle (then decide, merge, split, explain):");
    println!(
        "    tongban review --endpoint https://{addr} --identity {}",
        pki.identity_dir(&Identity::Steward("steward".to_owned())).display()
    );
    println!("  explore the API with any gRPC client (reflection is on), e.g.:");
    println!(
        "    grpcurl -cacert {ca} -cert {dir}/cert.pem -key {dir}/key.pem {addr} list",
        ca = pki.ca_cert().display(),
        dir = tax.display()
    );
    println!("  client certificates for every identity: {}/<tax|hrss|market|realestate|housingfund|construction|civil|platform|steward|ops>/", pki.root.display());
    println!("  step by step: docs/onboarding.md (a department), docs/platform.md (the platform)");
    println!("Press Ctrl-C to stop.");
}
