//! `tongban`: see `tongban --help`, and the README for the two commands to start with.

use clap::Parser;
use tongban_gateway::cli::{Cli, Command};
use tongban_gateway::config::{LogFormat, TelemetryConfig};
use tongban_gateway::telemetry::{Telemetry, SERVER_LOG_FILTER};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Exit status of a process whose reader went away, as a shell reports one that
/// SIGPIPE stopped (128 + 13).
const READER_GONE: i32 = 141;

/// `tongban get ... | head` or `| grep -q`: when the reader has gone, stop quietly as
/// other command-line tools do, instead of panicking in `println!`. (SIGPIPE itself
/// stays ignored: the clients write to sockets without MSG_NOSIGNAL, where it would kill
/// them mid-push.)
fn stop_quietly_when_stdout_is_closed() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(READER_GONE);
        }
        default(info);
    }));
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stop_quietly_when_stdout_is_closed();
    tongban_gateway::tls::install_crypto_provider();
    let cli = Cli::parse();
    // Servers log what they do; client verbs and the demo print their own output and
    // log only what goes wrong. RUST_LOG overrides either. `serve` installs its
    // telemetry (traces, metrics, JSON logs) from its configuration file.
    match cli.command {
        Command::Serve(_) => {}
        Command::Dev(_) => {
            let config = TelemetryConfig {
                log_format: LogFormat::Text,
                ..TelemetryConfig::default()
            };
            // The trace IDs of a development hub's audit entries come from this tracer.
            if let Err(e) = Telemetry::install(&config, SERVER_LOG_FILTER) {
                eprintln!("error: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        _ => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(tongban_gateway::telemetry::log_filter("warn")),
            )
            .init(),
    }
    match tongban_gateway::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
