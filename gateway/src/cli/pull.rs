//! `tongban pull`: the platform follows the change feed into a JSON-lines file.

use std::path::PathBuf;

use clap::Args;
use tongban_proto::v1 as pb;

use crate::client::ClientIdentity;
use crate::platform::{pull, PullOptions};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Identity folder of the platform (cert.pem, key.pem), e.g. tongban-data/pki/platform.
    #[arg(long)]
    identity: PathBuf,
    /// JSON-lines file the changes are appended to, one unified record per line; the last
    /// line of a unified ID is its current state.
    #[arg(long)]
    out: PathBuf,
    /// Where the cursor is kept between runs; default <out>.cursor. A restarted pull
    /// resumes after the last change it saved.
    #[arg(long)]
    cursor: Option<PathBuf>,
    /// Keep following new changes until interrupted (Ctrl-C or SIGTERM).
    #[arg(long)]
    follow: bool,
    /// Only this kind: person or organisation (repeatable).
    #[arg(long = "kind", value_parser = ["person", "organisation"])]
    kinds: Vec<String>,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
}

pub async fn run(args: PullArgs) -> anyhow::Result<()> {
    let identity = ClientIdentity::load(&args.identity, args.ca.as_deref())?;
    let mut options = PullOptions::new(args.endpoint, args.out);
    if let Some(cursor) = args.cursor {
        options.cursor_file = cursor;
    }
    options.follow = args.follow;
    options.kinds = args
        .kinds
        .iter()
        .map(|k| match k.as_str() {
            "organisation" => pb::EntityKind::Organisation,
            _ => pb::EntityKind::Person,
        })
        .collect();
    let report = pull(&identity, &options, super::shutdown_signal()).await?;
    println!(
        "{} changes written to {} ({} merges); cursor {} saved in {}",
        report.changes,
        options.out.display(),
        report.merges,
        if report.to.is_empty() { "0" } else { &report.to },
        options.cursor_file.display()
    );
    Ok(())
}
