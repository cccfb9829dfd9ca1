//! `tongban audit verify`: walks the audit log's hash chain and proves it intact, or
//! names the first entry altered, removed or cut off (exit status 1).

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
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    store: super::StoreLocation,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
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
