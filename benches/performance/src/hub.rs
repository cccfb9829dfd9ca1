//! The hub under test: `tongban serve` (the release binary) as a child process with a
//! development PKI, on a fresh PostgreSQL database or an embedded store in a temporary
//! folder. Its peak RSS is read from `/proc/<pid>/status` (VmHWM) just before it is
//! stopped with SIGTERM; a hub dropped without stopping (an error, Ctrl-C, SIGTERM) is
//! killed, and a driver killed outright takes the hub with it (PR_SET_PDEATHSIG).

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tongban_gateway::client::ClientIdentity;
use tongban_gateway::config::StoreConfig;
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::PkiLayout;

use crate::database::{Database, Server};
use crate::process::die_with_driver;

/// Which store the hub runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Postgres,
    Embedded,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Embedded => "embedded",
        })
    }
}

/// How long `tongban serve` may take to listen (migrations run first) and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Hub {
    child: Option<Child>,
    pub endpoint: String,
    pki: PkiLayout,
    log: PathBuf,
    /// The hub's database (PostgreSQL), dropped after the hub stopped.
    database: Option<Database>,
    /// PKI, configuration, log and the embedded store; removed last.
    dir: tempfile::TempDir,
}

impl Hub {
    /// Starts `binary serve` on `store` and returns once it accepts connections.
    pub async fn start(binary: &Path, store: StoreKind, server: &Server, work: &Path) -> anyhow::Result<Hub> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hub-{store}-"))
            .tempdir_in(work)
            .context("creating the hub's folder")?;
        let pki = PkiLayout::new(dir.path().join("pki"));
        pki.ensure_dev().context("generating the development PKI")?;
        let database = match store {
            StoreKind::Postgres => Some(server.create("tongban_bench_hub").await?),
            StoreKind::Embedded => None,
        };
        let port = free_port()?;
        let config_path = dir.path().join("tongban.toml");
        std::fs::write(&config_path, config(&pki, store, dir.path(), port)?)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log = dir.path().join("serve.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env_remove("TONGBAN_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(database) = &database {
            command.env("TONGBAN_DATABASE_URL", &database.url);
        }
        die_with_driver(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let mut hub = Hub {
            child: Some(child),
            endpoint: format!("https://127.0.0.1:{port}"),
            pki,
            log,
            database,
            dir,
        };
        hub.wait_listening(port).await?;
        Ok(hub)
    }

    async fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "tongban serve exited with {status} before listening; its log ends:\n{}",
                        self.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "tongban serve did not listen on port {port} within {START_TIMEOUT:?}; its log ends:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The last lines of the hub's log, for errors.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A client certificate of the development PKI.
    pub fn identity(&self, identity: &Identity) -> anyhow::Result<ClientIdentity> {
        ClientIdentity::load(&self.pki.identity_dir(identity), None)
            .with_context(|| format!("loading the certificate of {identity:?}"))
    }

    /// The hub's PostgreSQL database, if it runs on one.
    pub fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    /// The embedded store's SQLite file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("store").join("tongban.db")
    }

    /// What the store takes on disk, in bytes: the database's size, or the SQLite file
    /// with its write-ahead log.
    pub async fn store_bytes(&self) -> anyhow::Result<u64> {
        match &self.database {
            Some(database) => {
                let size: i64 = database
                    .connect()
                    .await?
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await
                    .context("the hub database's size")?
                    .get(0);
                Ok(u64::try_from(size).unwrap_or_default())
            }
            None => {
                let folder = self.dir.path().join("store");
                let mut bytes = 0;
                for entry in std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
                    bytes += entry?.metadata()?.len();
                }
                Ok(bytes)
            }
        }
    }

    /// The highest resident set the hub has had so far, in bytes (VmHWM).
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let pid = self.child.as_ref().map(Child::id).context("the hub is not running")?;
        peak_rss_of(&format!("/proc/{pid}/status"))
    }

    /// Reads the peak RSS, stops the hub with SIGTERM (SIGKILL if it does not stop in
    /// time) and drops its database. Returns the peak RSS in bytes.
    pub async fn stop(mut self) -> anyhow::Result<u64> {
        let peak = self.peak_rss()?;
        let mut child = self.child.take().context("the hub is not running")?;
        let pid = libc::pid_t::try_from(child.id()).context("process id out of range")?;
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so the pid
        // cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match status {
            Some(status) if status.success() => {}
            Some(status) => eprintln!(
                "bench: warning: tongban serve exited with {status} after SIGTERM; its log ends:\n{}",
                self.log_tail()
            ),
            None => eprintln!("bench: warning: tongban serve did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed"),
        }
        if let Some(database) = self.database.take() {
            database.drop_now().await?;
        }
        Ok(peak)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Then the database's guard drops it, and the folder goes.
    }
}

/// `VmHWM` of a `/proc/<pid>/status` file, in bytes.
pub fn peak_rss_of(status_file: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(status_file).with_context(|| format!("reading {status_file}"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse::<u64>().ok())
        .with_context(|| format!("no VmHWM in {status_file}"))?;
    Ok(kib * 1024)
}

/// The connection pool of the hub on PostgreSQL as the benchmark runs it: read back
/// from the configuration `tongban serve` is given, so it is the gateway's default
/// (`store.pool_size`) and follows it. (The embedded store has no pool: one SQLite
/// connection does all its work.)
pub fn postgres_pool_size() -> anyhow::Result<usize> {
    let text = config(&PkiLayout::new("pki"), StoreKind::Postgres, Path::new("."), 7443)?;
    let parsed = tongban_gateway::config::Config::parse(&text).context("the hub's configuration")?;
    match parsed.store {
        StoreConfig::Postgres(postgres) => Ok(postgres.pool_size),
        StoreConfig::Embedded(_) => bail!("the PostgreSQL configuration came out embedded"),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free port")?
        .port())
}

/// The hub's configuration: defaults except that the per-identity limits are out of
/// the way (the benchmark measures the hub, not its protection against one runaway
/// caller: 64 lookup callers of one department would otherwise be throttled).
fn config(pki: &PkiLayout, store: StoreKind, dir: &Path, port: u16) -> anyhow::Result<String> {
    let path = |p: PathBuf| serde_json::to_string(&p.display().to_string());
    let store_table = match store {
        // The URL comes from TONGBAN_DATABASE_URL.
        StoreKind::Postgres => "kind = \"postgres\"\n".to_owned(),
        StoreKind::Embedded => format!(
            "kind = \"embedded\"\npath = {}\n",
            path(dir.join("store").join("tongban.db"))?
        ),
    };
    Ok(format!(
        "listen = \"127.0.0.1:{port}\"\n\
         shutdown_grace_secs = 30\n\
         \n[tls]\nclient_ca = {}\ncert = {}\nkey = {}\n\
         \n[store]\n{store_table}\
         \n[limits]\nmax_streams_per_identity = 256\n\
         requests_per_second_per_identity = 1000000.0\nburst_per_identity = 1000000\n",
        path(pki.ca_cert())?,
        path(pki.server_dir().join("cert.pem"))?,
        path(pki.server_dir().join("key.pem"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_one_tongban_serve_reads() {
        let pki = PkiLayout::new("/tmp/x/pki");
        for store in [StoreKind::Postgres, StoreKind::Embedded] {
            let text = config(&pki, store, Path::new("/tmp/x"), 7443).expect("config");
            let parsed = tongban_gateway::config::Config::parse(&text).expect("parses");
            assert_eq!(parsed.listen.port(), 7443);
        }
    }

    #[test]
    fn the_pool_size_is_the_gateways_default() {
        let default = tongban_gateway::config::Config::parse(
            "[tls]\nclient_ca = \"a\"\ncert = \"b\"\nkey = \"c\"\n[store]\nkind = \"postgres\"\n",
        )
        .expect("a minimal configuration");
        let StoreConfig::Postgres(postgres) = default.store else {
            panic!("not PostgreSQL");
        };
        assert_eq!(postgres_pool_size().expect("the pool size"), postgres.pool_size);
    }

    #[test]
    fn the_peak_rss_is_read_from_proc() {
        let peak = peak_rss_of("/proc/self/status").expect("VmHWM of this test");
        assert!(peak > 1024 * 1024);
    }
}
