//! `tongban get`: one unified record, by unified ID or by any identifier.

use std::path::PathBuf;

use clap::Args;

use crate::client::ClientIdentity;
use crate::platform::get;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// A unified ID (P00000000001, O00000000002) or an identifier in any form: a resident
    /// identity number (15 or 18 digits), a USCC, an organisation code, a legacy tax ID,
    /// a passport or permit number.
    what: String,
    /// Identity folder (cert.pem, key.pem) of the platform or a department.
    #[arg(long)]
    identity: PathBuf,
    /// Why you read this record (a case number, a matter); written to the audit log.
    /// Required of departments.
    #[arg(long, default_value = "")]
    purpose: String,
    /// Only these parts (identifiers, names, attributes, relations, quality_flags,
    /// sources, facts:<department>); repeatable. Default: all you may see.
    #[arg(long = "part")]
    parts: Vec<String>,
    /// The hub's address.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TONGBAN_ENDPOINT")]
    endpoint: String,
    /// CA certificate that vouches for the hub; default: ca.pem in or above the identity folder.
    #[arg(long)]
    ca: Option<PathBuf>,
}

pub async fn run(args: GetArgs) -> anyhow::Result<()> {
    let identity = ClientIdentity::load(&args.identity, args.ca.as_deref())?;
    let found = get(&args.endpoint, &identity, &args.what, &args.purpose, args.parts).await?;
    if !found.redirected_from.is_empty() {
        eprintln!("{} was merged into {}", found.redirected_from, found.unified_id);
    }
    let record: serde_json::Value = serde_json::from_str(&found.record)?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}
