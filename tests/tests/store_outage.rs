//! The store goes away in the middle of a load: pushes get UNAVAILABLE (never a false
//! ACCEPTED), health says NOT_SERVING, the hub recovers by itself, and every record it
//! acknowledged is there afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// What the pushing client saw, batch by batch.
#[derive(Default)]
struct Observed {
    /// Source ids of batches answered, with every outcome ACCEPTED.
    acknowledged: Vec<String>,
    /// Status codes of failed batches.
    failures: Vec<Code>,
    /// Answers with something other than ACCEPTED (there should be none).
    odd_outcomes: usize,
}

fn batch(number: usize) -> (pb::PushRequest, Vec<String>) {
    let ids: Vec<String> = (0..10).map(|i| format!("4{number:09}{i:010}")).collect();
    let envelopes = ids
        .iter()
        .map(|id| pb::Envelope {
            record_type: "tax.taxpayer".into(),
            source_id: id.clone(),
            source_version: 1,
            deleted: false,
            payload: serde_json::json!({
                "djxh": id, "nsrsbh": "370687198001010019", "nsrmc": "王伟", "nsrlx": "3", "zjlx_dm": "201",
                "zcdz": "海阳市", "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"
            })
            .to_string()
            .into(),
        })
        .collect();
    (
        pb::PushRequest {
            batch_id: number.to_string(),
            envelopes,
        },
        ids,
    )
}

/// Pushes batch after batch until `stop`, recording what came back.
fn start_pushing(client: tongban_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>) -> Pusher {
    let stop = Arc::new(AtomicBool::new(false));
    let observed = Arc::new(Mutex::new(Observed::default()));
    let task = {
        let (stop, observed) = (stop.clone(), observed.clone());
        tokio::spawn(async move {
            let mut client = client;
            let mut number = 0;
            while !stop.load(Ordering::Relaxed) && number < 5_000 {
                let (request, ids) = batch(number);
                number += 1;
                let answer = client.push(request).await;
                let mut seen = observed.lock().await;
                match answer {
                    Ok(response) => {
                        let all_accepted = response
                            .get_ref()
                            .results
                            .iter()
                            .all(|r| r.outcome == pb::Outcome::Accepted as i32);
                        if all_accepted && response.get_ref().results.len() == ids.len() {
                            seen.acknowledged.extend(ids);
                        } else {
                            seen.odd_outcomes += 1;
                        }
                    }
                    Err(status) => seen.failures.push(status.code()),
                }
                drop(seen);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    Pusher { stop, observed, task }
}

async fn wait_until(what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health_of(hub: &TestHub) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(hub.channel(&Identity::Ops).await);
    let request = tonic_health::pb::HealthCheckRequest {
        service: "tongban.v1.Exchange".into(),
    };
    health.check(request).await.map(|r| r.into_inner().status).unwrap_or(-1)
}

/// The pushing task of a test.
struct Pusher {
    stop: Arc<AtomicBool>,
    observed: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

/// Once the store is back: pushes succeed again by themselves; the only failures seen
/// were UNAVAILABLE; every acknowledged record is there.
async fn after_recovery(hub: &TestHub, pusher: Pusher, acknowledged_while_down: usize) {
    let Pusher { stop, observed, task } = pusher;
    wait_until("pushes succeed again", Duration::from_secs(30), async || {
        observed.lock().await.acknowledged.len() > acknowledged_while_down + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("pusher");
    let observed = observed.lock().await;
    assert!(
        observed.failures.iter().all(|c| *c == Code::Unavailable),
        "only UNAVAILABLE while the store was away: {:?}",
        observed.failures
    );
    assert_nothing_acknowledged_is_missing(hub, &observed).await;
}

/// Every batch the hub acknowledged is stored.
async fn assert_nothing_acknowledged_is_missing(hub: &TestHub, observed: &Observed) {
    assert!(!observed.acknowledged.is_empty());
    for id in &observed.acknowledged {
        let held = hub.store.current("tax.taxpayer", id).await.expect("store is back");
        let held = held.unwrap_or_else(|| panic!("acknowledged record {id} is missing"));
        assert_eq!(held.source_version, 1);
        assert!(held.payload.contains(id.as_str()), "{id} holds its own payload");
    }
    assert_eq!(observed.odd_outcomes, 0, "every answered batch was a clean ACCEPTED");
}

#[tokio::test]
async fn postgres_going_away_mid_push() {
    let hub = TestHub::start(StoreKind::Postgres).await;
    let database = hub.database.as_ref().expect("postgres hub has a database");
    let pusher = start_pushing(hub.exchange(&department("tax")).await);
    let observed = pusher.observed.clone();
    wait_until("some batches are stored", Duration::from_secs(30), async || {
        observed.lock().await.acknowledged.len() >= 50
    })
    .await;

    // The database goes away: it refuses new connections and drops the hub's.
    let admin = database.admin().await;
    admin
        .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", database.name))
        .await
        .expect("alter");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database.name],
        )
        .await
        .expect("terminate");
    wait_until("a push gets UNAVAILABLE", Duration::from_secs(30), async || {
        observed.lock().await.failures.contains(&Code::Unavailable)
    })
    .await;
    wait_until("health says NOT_SERVING", Duration::from_secs(10), async || {
        health_of(&hub).await == ServingStatus::NotServing as i32
    })
    .await;
    let acknowledged_while_down = observed.lock().await.acknowledged.len();

    // It comes back: the hub reconnects by itself.
    admin
        .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", database.name))
        .await
        .expect("alter");
    after_recovery(&hub, pusher, acknowledged_while_down).await;
    wait_until("health says SERVING", Duration::from_secs(10), async || {
        health_of(&hub).await == ServingStatus::Serving as i32
    })
    .await;
}

#[tokio::test]
async fn embedded_store_locked_mid_push() {
    let hub = TestHub::start(StoreKind::Embedded).await;
    let db_path = hub.dir.path().join("tongban.db");
    let pusher = start_pushing(hub.exchange(&department("tax")).await);
    let observed = pusher.observed.clone();
    wait_until("some batches are stored", Duration::from_secs(30), async || {
        observed.lock().await.acknowledged.len() >= 50
    })
    .await;

    // Another process takes the file's write lock and holds it longer than the hub waits.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(db_path).expect("open");
        connection.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        locked_tx.send(()).expect("signal");
        let _ = release_rx.recv_timeout(Duration::from_secs(60));
        connection.execute_batch("ROLLBACK").expect("unlock");
    });
    locked_rx.recv().expect("locked");
    wait_until("a push gets UNAVAILABLE", Duration::from_secs(30), async || {
        observed.lock().await.failures.contains(&Code::Unavailable)
    })
    .await;
    let acknowledged_while_locked = observed.lock().await.acknowledged.len();
    release_tx.send(()).expect("release");
    locker.join().expect("locker");

    after_recovery(&hub, pusher, acknowledged_while_locked).await;
}

#[tokio::test]
async fn the_push_connector_resends_what_was_unavailable() {
    let hub = TestHub::start(StoreKind::Embedded).await;
    let db_path = hub.dir.path().join("tongban.db");
    let file = hub.dir.path().join("tax.jsonl");
    let lines: Vec<String> = (0..3_000)
        .map(|n| {
            let (request, _) = batch(n);
            let envelope = &request.envelopes[0];
            serde_json::json!({
                "record_type": envelope.record_type,
                "source_id": format!("7{n:019}"),
                "source_version": 1,
                "payload": serde_json::from_slice::<serde_json::Value>(&envelope.payload).expect("json"),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("file");

    // The store is locked when the push starts and released a little later.
    let locker = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(db_path).expect("open");
        connection.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        std::thread::sleep(Duration::from_millis(1_500));
        connection.execute_batch("ROLLBACK").expect("unlock");
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut options = tongban_gateway::client::PushOptions::new(hub.endpoint.clone());
    options.show_progress = false;
    options.batch_size = 100;
    let report = tongban_gateway::client::push_file(&file, &hub.identity(&department("tax")), &options)
        .await
        .expect("push");
    locker.join().expect("locker");

    assert!(report.retries >= 1, "the connector met UNAVAILABLE and retried");
    assert!(report.is_complete(), "{:?}", report.failure);
    assert_eq!((report.lines, report.accepted + report.unchanged), (3_000, 3_000));
    assert_eq!(report.rejected, 0);
    for n in (0..3_000).step_by(97) {
        let id = format!("7{n:019}");
        assert!(
            hub.store.current("tax.taxpayer", &id).await.expect("store").is_some(),
            "{id}"
        );
    }
}
