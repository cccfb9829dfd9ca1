//! `tongban serve` stopped by SIGTERM, as an orchestrator stops it, while a department
//! streams batches and the platform follows the change feed: the hub stops taking new
//! connections, answers the batch it is working on, ends the PushStream with
//! UNAVAILABLE (send the unanswered batches again) and the feed with a clean end of
//! stream, and exits 0 within its configured grace. Every batch it answered is in the
//! store afterwards, and no batch is there in part.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tongban_gateway::client::{self, ClientIdentity};
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::PkiLayout;
use tongban_gateway::store::embedded::EmbeddedStore;
use tongban_gateway::store::postgres::{PostgresSettings, PostgresStore};
use tongban_gateway::store::{AnyStore, Store};
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_proto::v1::unified_client::UnifiedClient;
use tonic::Code;
use tonic_types::StatusExt;

mod common;

use common::{free_port, start_serve, Database, Running};

/// The configured `shutdown_grace_secs`.
const GRACE: Duration = Duration::from_secs(5);
/// How long past the grace the process may take to exit (flushing statistics, closing
/// the store).
const EXIT_MARGIN: Duration = Duration::from_secs(5);
/// Batches the client keeps unanswered on its PushStream.
const WINDOW: usize = 4;
const RECORDS_PER_BATCH: usize = 20;
/// Batches answered before SIGTERM is sent.
const ANSWERED_BEFORE_SIGTERM: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_postgres_drains_and_exits_0() {
    let database = Database::create("tongban_shutdown");
    sigterm_drains_and_exits_0(Backing::Postgres(&database)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_embedded_store_drains_and_exits_0() {
    sigterm_drains_and_exits_0(Backing::Embedded).await;
}

enum Backing<'a> {
    Postgres(&'a Database),
    Embedded,
}

impl Backing<'_> {
    fn table(&self, dir: &Path) -> String {
        match self {
            Backing::Postgres(database) => format!(
                "[store]\nkind = \"postgres\"\nurl = \"{}\"\npool_size = 4\n",
                database.url
            ),
            Backing::Embedded => format!(
                "[store]\nkind = \"embedded\"\npath = \"{}\"\n",
                embedded_path(dir).display()
            ),
        }
    }

    /// The store the hub wrote, opened afresh after it exited.
    async fn reopen(&self, dir: &Path) -> AnyStore {
        match self {
            Backing::Postgres(database) => PostgresStore::connect(&PostgresSettings {
                url: database.url.clone(),
                pool_size: 2,
                connect_timeout: Duration::from_secs(10),
                wait_timeout: Duration::from_secs(10),
                statement_timeout: Duration::from_secs(30),
            })
            .await
            .expect("reopen PostgreSQL")
            .into(),
            Backing::Embedded => EmbeddedStore::open(&embedded_path(dir)).expect("reopen").into(),
        }
    }
}

fn embedded_path(dir: &Path) -> PathBuf {
    dir.join("data").join("tongban.db")
}

/// A valid resident identity number for person `n` (GB 11643 check character).
fn resident_id(n: usize) -> String {
    let body = format!(
        "370687{:04}{:02}{:02}{:03}",
        1950 + n % 50,
        1 + (n / 50) % 12,
        1 + (n / 600) % 28,
        (n / 16_800) % 1000
    );
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("digit") * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

fn source_id(batch: usize, record: usize) -> String {
    format!("{:020}", 40_000_000 + batch * RECORDS_PER_BATCH + record)
}

/// Batch `n`: tax registrations of persons nobody else has pushed.
fn batch(n: usize) -> pb::PushRequest {
    let envelopes = (0..RECORDS_PER_BATCH)
        .map(|r| {
            let source_id = source_id(n, r);
            let payload = serde_json::json!({
                "djxh": source_id, "nsrsbh": resident_id(n * RECORDS_PER_BATCH + r), "nsrmc": "王伟",
                "nsrlx": "3", "zjlx_dm": "201", "zcdz": "海阳市", "djrq": "20190516", "nsrzt_dm": "03",
                "swjg_dm": "13706870000"
            });
            pb::Envelope {
                record_type: "tax.taxpayer".into(),
                source_id,
                source_version: 1,
                deleted: false,
                payload: payload.to_string().into(),
            }
        })
        .collect();
    pb::PushRequest {
        batch_id: n.to_string(),
        envelopes,
    }
}

/// Starts `tongban serve` in `dir` and waits until it listens.
async fn serve(dir: &Path, pki: &PkiLayout, backing: &Backing<'_>, port: u16) -> Running {
    let path = |p: PathBuf| p.display().to_string();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
shutdown_grace_secs = {grace}
[tls]
client_ca = "{ca}"
cert = "{cert}"
key = "{key}"
{store}
[feed]
poll_interval_ms = 50
"#,
        grace = GRACE.as_secs(),
        ca = path(pki.ca_cert()),
        cert = path(pki.server_dir().join("cert.pem")),
        key = path(pki.server_dir().join("key.pem")),
        store = backing.table(dir),
    );
    std::fs::create_dir_all(dir.join("data")).expect("data folder");
    start_serve(dir, "serve", &config, port, &[]).await
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
}

/// SIGTERM, as `kill` sends it (no libc in the tests).
fn terminate(child: &Running) {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM failed: {status}");
}

/// How the PushStream went: the batches answered (in order) and how the stream ended.
struct Pushed {
    sent: usize,
    answered: Vec<usize>,
    end: Result<(), tonic::Status>,
    /// When SIGTERM was sent.
    terminated_at: Instant,
}

/// Streams batches with up to [`WINDOW`] unanswered, sends SIGTERM to `child` once
/// [`ANSWERED_BEFORE_SIGTERM`] are answered, and goes on sending until the hub ends the
/// stream.
async fn push_until_the_hub_ends_the_stream(
    exchange: &mut ExchangeClient<tonic::transport::Channel>,
    child: &Running,
) -> Pushed {
    let (tx, rx) = mpsc::channel::<pb::PushRequest>(WINDOW);
    let mut answers = exchange
        .push_stream(ReceiverStream::new(rx))
        .await
        .expect("push stream")
        .into_inner();
    let mut unanswered: VecDeque<usize> = VecDeque::new();
    let mut answered = Vec::new();
    let mut next = 0;
    let mut terminated_at = None;
    let end = loop {
        tokio::select! {
            permit = tx.reserve(), if unanswered.len() < WINDOW => {
                let Ok(permit) = permit else { continue };
                permit.send(batch(next));
                unanswered.push_back(next);
                next += 1;
            }
            answer = answers.message() => match answer {
                Ok(Some(response)) => {
                    let batch = unanswered.pop_front().expect("an answer to a batch sent");
                    assert_eq!(response.batch_id, batch.to_string(), "answers come in order");
                    assert_eq!(response.results.len(), RECORDS_PER_BATCH);
                    assert!(
                        response.results.iter().all(|r| r.outcome == pb::Outcome::Accepted as i32),
                        "batch {batch}: {:?}", response.results
                    );
                    answered.push(batch);
                    if answered.len() == ANSWERED_BEFORE_SIGTERM {
                        terminate(child);
                        terminated_at = Some(Instant::now());
                    }
                }
                Ok(None) => break Ok(()),
                Err(status) => break Err(status),
            },
        }
    };
    Pushed {
        sent: next,
        answered,
        end,
        terminated_at: terminated_at.expect("SIGTERM was sent"),
    }
}

async fn sigterm_drains_and_exits_0(backing: Backing<'_>) {
    tongban_gateway::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = PkiLayout::new(dir.path().join("pki"));
    pki.ensure_dev().expect("PKI");
    let port = free_port();
    let mut child = serve(dir.path(), &pki, &backing, port).await;
    let endpoint = format!("https://127.0.0.1:{port}");
    let credentials = |identity: &Identity| {
        ClientIdentity::load(&pki.identity_dir(identity), Some(&pki.ca_cert())).expect("identity folder")
    };

    // The platform follows the feed from the start.
    let mut platform = UnifiedClient::new(
        client::channel(&endpoint, &credentials(&Identity::Platform))
            .await
            .expect("connect as the platform"),
    );
    let mut feed = platform
        .changes(pb::ChangesRequest {
            after: String::new(),
            kinds: Vec::new(),
            follow: true,
            page_size: 0,
        })
        .await
        .expect("follow the feed")
        .into_inner();
    let follower = tokio::spawn(async move {
        let mut changes = 0usize;
        loop {
            match feed.message().await {
                Ok(Some(_)) => changes += 1,
                Ok(None) => return Ok(changes),
                Err(status) => return Err(status),
            }
        }
    });

    let tax = credentials(&Identity::from_name("tax").expect("tax"));
    let mut exchange = client::connect(&endpoint, &tax).await.expect("connect as tax");
    let bound = GRACE + EXIT_MARGIN;
    let pushed = tokio::time::timeout(bound, push_until_the_hub_ends_the_stream(&mut exchange, &child))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the hub did not end the PushStream within {bound:?}:\n{}",
                server_log(dir.path())
            )
        });

    // The batch in hand was answered; the rest are for the client to send again.
    let status = pushed.end.expect_err("the PushStream ends with a status to resend");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.get_details_error_info().map(|info| info.reason),
        Some("SHUTTING_DOWN".to_owned()),
        "{status:?}"
    );
    assert!(pushed.answered.len() >= ANSWERED_BEFORE_SIGTERM);

    // Shutdown has begun: no new connection is served (the listener is closed, or the
    // process gone).
    let refused_by = Instant::now() + Duration::from_secs(2);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(2), client::connect(&endpoint, &tax)).await;
        if !matches!(attempt, Ok(Ok(_))) {
            break;
        }
        assert!(
            Instant::now() < refused_by,
            "new connections are still accepted after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The feed ends as a stream ends, not with an error.
    let followed = tokio::time::timeout(bound, follower)
        .await
        .expect("the feed ended")
        .expect("follower task");
    let changes = followed.unwrap_or_else(|status| panic!("the feed ended with an error: {status:?}"));
    assert!(changes > 0, "the follower saw the commits before SIGTERM");

    // The process exits 0 within the grace, plus a margin.
    let exit_deadline = pushed.terminated_at + bound;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < exit_deadline,
            "tongban serve still running {bound:?} after SIGTERM:\n{}",
            server_log(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}:\n{}", server_log(dir.path()));
    let stopped_after = pushed.terminated_at.elapsed();

    // Every answered batch is in the store; each sent batch is there whole or not at all.
    let store = backing.reopen(dir.path()).await;
    for batch in 0..pushed.sent {
        let mut held = 0;
        for record in 0..RECORDS_PER_BATCH {
            if store
                .current("tax.taxpayer", &source_id(batch, record))
                .await
                .expect("store")
                .is_some()
            {
                held += 1;
            }
        }
        if pushed.answered.contains(&batch) {
            assert_eq!(held, RECORDS_PER_BATCH, "answered batch {batch} is committed");
        } else {
            assert!(
                held == 0 || held == RECORDS_PER_BATCH,
                "unanswered batch {batch} is stored in part: {held} of {RECORDS_PER_BATCH}"
            );
        }
    }
    println!(
        "shutdown: {} batches sent, {} answered, {changes} changes followed, exited 0 {stopped_after:?} after SIGTERM",
        pushed.sent,
        pushed.answered.len()
    );
}
