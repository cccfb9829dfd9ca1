//! `tongban`: see `tongban --help`, and the README for the two commands to start with.

use clap::Parser;
use tongban_gateway::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tongban_gateway::tls::install_crypto_provider();
    let cli = Cli::parse();
    // Servers log what they do; client verbs and the demo print their own output and
    // log only what goes wrong. RUST_LOG overrides either.
    let default_filter = match cli.command {
        Command::Dev(_) | Command::Serve(_) => "info,h2=warn,tower=warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        .init();
    match tongban_gateway::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
