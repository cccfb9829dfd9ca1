//! `tongban audit verify`: walks the audit log's hash chain and proves it intact, or
//! names the first entry altered, removed or cut off (exit status 1).
//! `tongban audit pseudonym`: what the audit log calls an identifier, to search it.

use clap::{Args, Subcommand};

use crate::audit::{verify, ChainReport};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every entry's hash from its fields and the entry before, and compare
    /// the end with the head the store keeps.
    Verify(VerifyArgs),
    /// Print the keyed pseudonym under which lookups of an identifier are audited
    /// (`identifier hmac:...`), with the hub's key.
    Pseudonym(PseudonymArgs),
}

#[derive(Debug, Args)]
struct PseudonymArgs {
    /// An identity number, passport number, USCC... in any spelling.
    identifier: String,
    /// A development folder (its pki/audit-key), as made by `tongban dev` or `tongban demo --keep`.
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<std::path::PathBuf>,
    /// A configuration file of `tongban serve`: its `audit.pseudonym_key_file` (or TONGBAN_AUDIT_KEY).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    store: super::StoreLocation,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Pseudonym(args) => {
            let pseudonyms = match &args.config {
                Some(path) => crate::config::Config::load(path)?
                    .audit
                    .pseudonyms(|name| std::env::var(name).ok())?
                    .ok_or_else(|| anyhow::anyhow!("{} sets no audit.pseudonym_key_file", path.display()))?,
                None => {
                    let dir = args.data_dir.unwrap_or_else(super::default_data_dir);
                    crate::pseudonym::Pseudonymiser::from_file(&dir.join("pki").join("audit-key"))?
                }
            };
            println!("identifier {}", pseudonyms.pseudonym(&args.identifier));
            Ok(())
        }
        AuditCommand::Verify(args) => {
            let (store, _) = args.store.open().await?;
            let report = verify(&store).await?;
            match report {
                ChainReport::Intact { entries, head } => {
                    println!("audit log intact: {entries} entries, head {head}");
                    Ok(())
                }
                ChainReport::Broken { seq, reason } => {
                    anyhow::bail!("audit log broken at entry {seq}: {reason}")
                }
            }
        }
    }
}
