//! `tongban certs`: a CA, server certificates and client certificates.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::identity::Identity;
use crate::pki::{client_request, valid_for_days, write_file, CertificateAuthority, ClientCertificateSpec, PkiLayout};

/// How long what `tongban certs` issues is valid: a year and a month, so that a yearly
/// renewal has a month's overlap. The CA itself lasts; the development PKI too.
const DEFAULT_DAYS: u32 = 397;

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
        /// Days the certificate is valid from now; renew it before (docs/operating.md).
        #[arg(long, default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
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
        /// Days the certificate is valid from now.
        #[arg(long, default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
    },
    /// At a department: make a private key (key.pem, kept here) and a certificate request
    /// (request.pem, sent to the hub's operator) for an identity, in --out.
    Request {
        /// department:<dept> (or just <dept>), platform, steward:<name>, or ops.
        #[arg(long)]
        identity: String,
        /// Folder to write key.pem and request.pem to; it becomes the identity folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// At the hub's operator: sign a department's request.pem for an identity, writing
    /// cert.pem and ca.pem into --out to send back (no private key travels).
    Sign {
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
        /// The identity the certificate is for; the request must ask for this one.
        #[arg(long)]
        identity: String,
        /// The request the department sent.
        #[arg(long)]
        request: PathBuf,
        /// Folder to write cert.pem and ca.pem to.
        #[arg(long)]
        out: PathBuf,
        /// Days the certificate is valid from now.
        #[arg(long, default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
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
        CertsCommand::Server { pki, names, days } => {
            let layout = PkiLayout::new(pki);
            let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key())?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let issued = ca.issue_server_valid(&names, Some(&valid_for_days(days)))?;
            issued.write_to(&layout.server_dir())?;
            println!(
                "server certificate for {} written to {} (valid for {days} days, serial {})",
                names.join(", "),
                layout.server_dir().display(),
                issued.serial
            );
        }
        CertsCommand::Client {
            pki,
            identity,
            out,
            days,
        } => {
            let (layout, ca, identity) = ca_and_identity(pki, &identity)?;
            let issued = ca.issue_client_with(&ClientCertificateSpec {
                validity: Some(valid_for_days(days)),
                ..ClientCertificateSpec::new(&identity.to_uri())
            })?;
            let dir = out.unwrap_or_else(|| layout.identity_dir(&identity));
            issued.write_to(&dir)?;
            std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
            println!(
                "client certificate for {identity} written to {} (valid for {days} days, serial {})",
                dir.display(),
                issued.serial
            );
            println!("give the department the folder; revoke it by listing the serial in tls.revoked_serials");
        }
        CertsCommand::Request { identity, out } => {
            let identity = Identity::from_name(&identity)?;
            let key_path = out.join("key.pem");
            anyhow::ensure!(
                !key_path.exists(),
                "{} already exists; refusing to replace a key",
                key_path.display()
            );
            let (request, key) = client_request(&identity)?;
            std::fs::create_dir_all(&out)?;
            write_file(&key_path, &key, true)?;
            std::fs::write(out.join("request.pem"), request)?;
            println!(
                "key written to {} (keep it here, never send it); send {} to the hub's operator",
                key_path.display(),
                out.join("request.pem").display()
            );
        }
        CertsCommand::Sign {
            pki,
            identity,
            request,
            out,
            days,
        } => {
            let (_, ca, identity) = ca_and_identity(pki, &identity)?;
            let text = std::fs::read_to_string(&request).with_context(|| format!("reading {}", request.display()))?;
            let signed = ca.sign_client_request(&text, &identity, Some(&valid_for_days(days)))?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("cert.pem"), &signed.cert_pem)?;
            std::fs::write(out.join("ca.pem"), ca.cert_pem())?;
            println!(
                "client certificate for {identity} written to {} with ca.pem (valid for {days} days, serial {})",
                out.display(),
                signed.serial
            );
            println!("send both back; revoke it by listing the serial in tls.revoked_serials");
        }
    }
    Ok(())
}

/// The PKI folder, its CA (certificate and key) and the identity named on the command line.
fn ca_and_identity(pki: PathBuf, identity: &str) -> anyhow::Result<(PkiLayout, CertificateAuthority, Identity)> {
    let layout = PkiLayout::new(pki);
    let identity = Identity::from_name(identity)?;
    let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key())?;
    Ok((layout, ca, identity))
}
