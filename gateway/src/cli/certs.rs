//! `tongban certs`: a CA, server certificates and client certificates.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::identity::Identity;
use crate::pki::{CertificateAuthority, PkiLayout};

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create a new CA (ca.pem and ca-key.pem) in a PKI folder.
    Ca {
        /// The PKI folder.
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
    },
    /// Issue a server certificate into <pki>/server for the given host names and addresses.
    Server {
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
        /// DNS names and IP addresses the clients use to reach the hub.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Issue a client certificate for an identity into <pki>/<identity> (or --out).
    Client {
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
        /// department:<dept> (or just <dept>), platform, steward:<name>, or ops.
        #[arg(long)]
        identity: String,
        /// Folder to write cert.pem and key.pem to; default <pki>/<identity folder>.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    match args.command {
        CertsCommand::Ca { pki } => {
            let layout = PkiLayout::new(pki);
            anyhow::ensure!(
                !layout.ca_cert().exists(),
                "{} already exists; refusing to replace a CA",
                layout.ca_cert().display()
            );
            CertificateAuthority::generate("Tongban CA")?.save(&layout)?;
            println!(
                "CA written to {} (keep {} offline)",
                layout.ca_cert().display(),
                layout.ca_key().display()
            );
        }
        CertsCommand::Server { pki, names } => {
            let layout = PkiLayout::new(pki);
            let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key())?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let issued = ca.issue_server(&names)?;
            issued.write_to(&layout.server_dir())?;
            println!(
                "server certificate for {} written to {} (serial {})",
                names.join(", "),
                layout.server_dir().display(),
                issued.serial
            );
        }
        CertsCommand::Client { pki, identity, out } => {
            let layout = PkiLayout::new(pki);
            let identity = Identity::from_name(&identity)?;
            let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key())?;
            let issued = ca.issue_client(&identity)?;
            let dir = out.unwrap_or_else(|| layout.identity_dir(&identity));
            issued.write_to(&dir)?;
            std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
            println!(
                "client certificate for {identity} written to {} (serial {})",
                dir.display(),
                issued.serial
            );
            println!("give the department the folder; revoke it by listing the serial in tls.revoked_serials");
        }
    }
    Ok(())
}
