//! Helpers shared by the tests that run the `tongban` binary: child processes that die
//! with the test, free ports, and throw-away PostgreSQL databases.
//!
//! (The gateway's own integration tests cannot use the `tongban-tests` harness, which
//! depends on this crate.)

#![allow(dead_code)] // each test file uses a part

use std::net::TcpListener;
use std::process::Child;

pub const TONGBAN: &str = env!("CARGO_BIN_EXE_tongban");

/// A child process killed when the test ends, whatever happens.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The admin URL of the test PostgreSQL, as scripts/test exports it.
pub fn admin_database_url() -> String {
    std::env::var("TONGBAN_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Runs SQL on the admin database, from a thread of its own so that it works from
/// synchronous and asynchronous tests alike (and from `drop`).
pub fn admin_sql(sql: &str) -> Result<(), String> {
    let sql = sql.to_owned();
    let url = admin_database_url();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("PostgreSQL at {url}: {e}; run the tests through scripts/test"))?;
            tokio::spawn(connection);
            client.batch_execute(&sql).await.map_err(|e| format!("{sql}: {e}"))
        })
    })
    .join()
    .map_err(|_| "the admin SQL thread panicked".to_owned())?
}

/// A fresh database for one test, dropped (with whatever connections are left) at the end.
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    /// `prefix` names the test in `pg_database`, for whoever looks while it runs.
    pub fn create(prefix: &str) -> Database {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}_{}_{nanos:08x}", std::process::id());
        admin_sql(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
        let base = admin_database_url();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("unexpected database URL {base}"),
        };
        Database { name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = admin_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// The `[tls]` table of a configuration over a development PKI.
pub fn tls_table(pki: &tongban_gateway::pki::PkiLayout) -> String {
    format!(
        "[tls]\nclient_ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        pki.ca_cert().display(),
        pki.server_dir().join("cert.pem").display(),
        pki.server_dir().join("key.pem").display()
    )
}

/// `tongban serve` with `config` written to `<dir>/<name>.toml`, run in `dir` with
/// `env` (`TONGBAN_DATABASE_URL` taken away unless given), its stderr in
/// `<dir>/<name>.log`; returned once it listens on `port`, the test failing with the
/// log if it exits first or does not listen within a minute.
pub async fn start_serve(dir: &std::path::Path, name: &str, config: &str, port: u16, env: &[(&str, &str)]) -> Running {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).expect("config");
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Running(
        Command::new(TONGBAN)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .env_remove("TONGBAN_DATABASE_URL")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tongban serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("{name}: tongban serve exited early with {status}:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "{name}: tongban serve did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// A generated record as the wire carries it.
pub fn envelope(record: &tongban_adapters::synth::SyntheticRecord) -> tongban_proto::v1::Envelope {
    tongban_proto::v1::Envelope {
        record_type: record.record_type.as_str().to_owned(),
        source_id: record.source_id.clone(),
        source_version: record.source_version,
        deleted: record.deleted,
        payload: record.payload.to_string().into(),
    }
}

/// Pushes a batch, resending up to `attempts` times while the hub answers UNAVAILABLE
/// (its contract for a busy or absent store: nothing was stored, send it again), the
/// pause growing by `step` each time.
pub async fn push_resending(
    client: &mut tongban_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
    batch_id: &str,
    envelopes: Vec<tongban_proto::v1::Envelope>,
    attempts: u32,
    step: std::time::Duration,
) -> Vec<tongban_proto::v1::RecordResult> {
    for attempt in 1..=attempts {
        let request = tongban_proto::v1::PushRequest {
            batch_id: batch_id.to_owned(),
            envelopes: envelopes.clone(),
        };
        match client.push(request).await {
            Ok(response) => return response.into_inner().results,
            Err(status) if status.code() == tonic::Code::Unavailable => tokio::time::sleep(step * attempt).await,
            Err(status) => panic!("push {batch_id} failed: {status:?}"),
        }
    }
    panic!("push {batch_id} still UNAVAILABLE after {attempts} attempts");
}
