//! PostgreSQL restarted under a load: `tongban serve` answers UNAVAILABLE while the
//! database is down (never a false ACCEPTED), reports NOT_SERVING, reconnects by itself
//! once it is back, and every record it acknowledged is there. The database is a
//! throwaway cluster the test starts from the installed PostgreSQL binaries: a
//! database the test did not start is never restarted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tongban_gateway::client::{self, ClientIdentity};
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::PkiLayout;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

mod common;

use common::{free_port, start_serve, tls_table, Running};

/// A PostgreSQL cluster of this test's own, stopped and removed at the end.
struct ThrowawayCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl ThrowawayCluster {
    fn start() -> ThrowawayCluster {
        let bin = postgres_bin().unwrap_or_else(|| {
            panic!("no PostgreSQL server binaries (initdb, pg_ctl); install them (Debian: postgresql)")
        });
        let dir = tempfile::Builder::new()
            .prefix("tongban-pg-")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            // initdb refuses root: the cluster belongs to the postgres user.
            run_checked(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let cluster = ThrowawayCluster {
            bin,
            dir,
            port: free_port(),
        };
        cluster.as_owner(&format!(
            "'{}' -D '{}' -A trust -U postgres --no-sync > '{}' 2>&1",
            cluster.bin.join("initdb").display(),
            cluster.data().display(),
            cluster.dir.path().join("initdb.log").display()
        ));
        cluster.pg_ctl("start");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl start|stop`, waiting until done.
    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_owner(&format!(
            "'{}' -D '{}' -l '{}' -w -m fast -o \"{options}\" {action} > /dev/null",
            self.bin.join("pg_ctl").display(),
            self.data().display(),
            self.dir.path().join("server.log").display()
        ));
    }

    fn as_owner(&self, command: &str) {
        let mut shell = if is_root() {
            let mut su = Command::new("su");
            su.args(["postgres", "-s", "/bin/sh", "-c", command]);
            su
        } else {
            let mut sh = Command::new("sh");
            sh.args(["-c", command]);
            sh
        };
        run_checked(&mut shell);
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(if is_root() {
                format!(
                    "su postgres -s /bin/sh -c \"'{}' -D '{}' -m immediate stop\"",
                    self.bin.join("pg_ctl").display(),
                    self.data().display()
                )
            } else {
                format!(
                    "'{}' -D '{}' -m immediate stop",
                    self.bin.join("pg_ctl").display(),
                    self.data().display()
                )
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run_checked(command: &mut Command) {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The newest installed PostgreSQL's bin folder with initdb and pg_ctl.
fn postgres_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    candidates
        .into_iter()
        .rev()
        .find(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
}

async fn serve(dir: &Path, pki: &PkiLayout, url: &str) -> (Running, String) {
    let port = free_port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 1\n{tls}\
         [store]\nkind = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n\
         connect_timeout_ms = 1000\nwait_timeout_ms = 1000\n\
         [health]\nprobe_interval_ms = 200\n[telemetry]\nlog_format = \"text\"\n",
        tls = tls_table(pki),
    );
    let child = start_serve(dir, "hub", &config, port, &[("RUST_LOG", "warn")]).await;
    (child, format!("https://127.0.0.1:{port}"))
}

/// What the pushing client saw.
#[derive(Default)]
struct Observed {
    acknowledged: Vec<String>,
    failures: Vec<Code>,
    not_accepted: usize,
}

fn tax_batch(number: usize) -> (pb::PushRequest, Vec<String>) {
    let ids: Vec<String> = (0..5).map(|i| format!("5{number:09}{i:010}")).collect();
    let envelopes = ids
        .iter()
        .map(|id| pb::Envelope {
            record_type: "tax.taxpayer".into(),
            source_id: id.clone(),
            source_version: 1,
            deleted: false,
            payload: serde_json::json!({
                "djxh": id, "nsrsbh": "91370687MA3C4XYZ0K", "nsrmc": format!("海阳市第{number}商贸有限公司"),
                "nsrlx": "1", "djrq": "20150302", "nsrzt_dm": "03"
            })
            .to_string()
            .into(),
        })
        .collect();
    (
        pb::PushRequest {
            batch_id: format!("restart-{number}"),
            envelopes,
        },
        ids,
    )
}

async fn wait_until(what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_acknowledged() {
    tongban_gateway::tls::install_crypto_provider();
    let cluster = ThrowawayCluster::start();
    let (admin, connection) = tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
        .await
        .expect("connect to the throwaway cluster");
    tokio::spawn(connection);
    admin
        .batch_execute("CREATE DATABASE hub")
        .await
        .expect("create database");
    drop(admin);

    let dir = tempfile::tempdir().expect("tempdir");
    let pki = PkiLayout::new(dir.path().join("pki"));
    pki.ensure_dev().expect("PKI");
    let (_hub, endpoint) = serve(dir.path(), &pki, &cluster.url("hub")).await;
    let tax = ClientIdentity::load(&pki.identity_dir(&Identity::from_name("tax").expect("tax")), None).expect("tax");
    let ops = ClientIdentity::load(&pki.identity_dir(&Identity::Ops), None).expect("ops");
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(client::channel(&endpoint, &ops).await.expect("connect"));
    let mut health_now = async move || {
        health
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1)
    };
    wait_until("the hub serves", Duration::from_secs(30), async || {
        health_now().await == ServingStatus::Serving as i32
    })
    .await;

    // A client pushes small batches without pause, noting what it was told.
    let observed = Arc::new(Mutex::new(Observed::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut exchange = ExchangeClient::new(client::channel(&endpoint, &tax).await.expect("connect"));
    let pusher = {
        let observed = Arc::clone(&observed);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut number = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (request, ids) = tax_batch(number);
                number += 1;
                match tokio::time::timeout(Duration::from_secs(20), exchange.push(request)).await {
                    Ok(Ok(response)) => {
                        let mut seen = observed.lock().await;
                        if response
                            .into_inner()
                            .results
                            .iter()
                            .all(|r| r.outcome == pb::Outcome::Accepted as i32)
                        {
                            seen.acknowledged.extend(ids);
                        } else {
                            seen.not_accepted += 1;
                        }
                    }
                    Ok(Err(status)) => {
                        observed.lock().await.failures.push(status.code());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => observed.lock().await.failures.push(Code::DeadlineExceeded),
                }
            }
        })
    };
    wait_until("some batches are stored", Duration::from_secs(30), async || {
        observed.lock().await.acknowledged.len() >= 100
    })
    .await;

    // Restart: down for a moment, then back.
    cluster.pg_ctl("stop");
    wait_until("a push gets UNAVAILABLE", Duration::from_secs(30), async || {
        observed.lock().await.failures.contains(&Code::Unavailable)
    })
    .await;
    wait_until("health says NOT_SERVING", Duration::from_secs(10), async || {
        health_now().await == ServingStatus::NotServing as i32
    })
    .await;
    // What a Kubernetes probe runs: not ready while the store is down, but alive, so
    // that the pod is taken out of the Service and not restarted.
    let ops_dir = pki.identity_dir(&Identity::Ops);
    let probe = |live: bool| {
        let mut command = Command::new(common::TONGBAN);
        command
            .args(["health", "--endpoint", &endpoint, "--identity"])
            .arg(&ops_dir);
        if live {
            command.arg("--live");
        }
        command.output().expect("tongban health")
    };
    let ready = probe(false);
    assert!(!ready.status.success(), "not ready while the database is down");
    assert_eq!(String::from_utf8_lossy(&ready.stdout).trim(), "NOT_SERVING");
    assert!(probe(true).status.success(), "alive while the database is down");
    let acknowledged_while_down = observed.lock().await.acknowledged.len();
    cluster.pg_ctl("start");
    let back = Instant::now();
    wait_until("pushes are acknowledged again", Duration::from_secs(30), async || {
        observed.lock().await.acknowledged.len() >= acknowledged_while_down + 50
    })
    .await;
    let recovered_in = back.elapsed();
    wait_until("health says SERVING", Duration::from_secs(10), async || {
        health_now().await == ServingStatus::Serving as i32
    })
    .await;
    assert!(probe(false).status.success(), "ready again");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pusher.await.expect("pusher");

    let seen = observed.lock().await;
    assert_eq!(seen.not_accepted, 0, "no answer other than ACCEPTED");
    assert!(
        seen.failures.iter().all(|c| *c == Code::Unavailable),
        "while down, only UNAVAILABLE: {:?}",
        seen.failures
    );
    let (db, connection) = tokio_postgres::connect(&cluster.url("hub"), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let stored: std::collections::HashSet<String> = db
        .query(
            "SELECT source_id FROM source_records WHERE record_type = 'tax.taxpayer'",
            &[],
        )
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let missing: Vec<&String> = seen.acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
    println!(
        "database restart: {} records acknowledged, {} pushes UNAVAILABLE while down, back {recovered_in:?} after the restart",
        seen.acknowledged.len(),
        seen.failures.len()
    );
}
