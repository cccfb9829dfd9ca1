//! Two `tongban serve` replicas over one PostgreSQL database, as production runs them:
//! both start at once on a fresh database, every department pushes the same records
//! through both at the same time, and the hub still keeps one unified entity per
//! real person and organisation; the change feed read from either replica is the
//! same, and a consumer following one replica sees the commits of the other.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tongban_adapters::normalise;
use tongban_adapters::synth::{self, CityConfig, TrueEntity};
use tongban_gateway::client::{self, ClientIdentity};
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::PkiLayout;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_proto::v1::unified_client::UnifiedClient;
use tonic::transport::Channel;

mod common;

use common::{envelope, free_port, push_resending, Database, Running, TONGBAN};

/// Waits (with a deadline) until `port` accepts connections; fails if the process exits.
async fn wait_for_port(port: u16, child: &mut Running, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("tongban serve exited early with {status}:\n{log}");
        }
        assert!(Instant::now() < deadline, "tongban serve did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts one replica on `port` with its configuration in `dir`.
fn spawn_replica(dir: &Path, pki: &PkiLayout, database: &Database, port: u16, n: usize) -> Running {
    let path = |p: std::path::PathBuf| p.display().to_string();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 1
[tls]
client_ca = "{ca}"
cert = "{cert}"
key = "{key}"
[store]
kind = "postgres"
url = "{url}"
pool_size = 4
[feed]
poll_interval_ms = 50
"#,
        ca = path(pki.ca_cert()),
        cert = path(pki.server_dir().join("cert.pem")),
        key = path(pki.server_dir().join("key.pem")),
        url = database.url,
    );
    let config_path = dir.join(format!("replica-{n}.toml"));
    std::fs::write(&config_path, config).expect("config");
    let log = std::fs::File::create(dir.join(format!("replica-{n}.log"))).expect("log file");
    Running(
        Command::new(TONGBAN)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env_remove("TONGBAN_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tongban serve"),
    )
}

/// The whole feed as one replica serves it now.
async fn read_feed(client: &mut UnifiedClient<Channel>) -> Vec<pb::Change> {
    let request = pb::ChangesRequest {
        after: String::new(),
        kinds: Vec::new(),
        follow: false,
        page_size: 0,
    };
    let mut stream = client.changes(request).await.expect("changes").into_inner();
    let mut changes = Vec::new();
    while let Some(change) = stream.message().await.expect("change") {
        changes.push(change);
    }
    changes
}

type Mention = (String, String, String, u32);

fn mention_of(record_type: &str, source_id: &str, role: &str, index: u32) -> Mention {
    (record_type.to_owned(), source_id.to_owned(), role.to_owned(), index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_over_one_database_keep_one_entity_per_person() {
    tongban_gateway::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = PkiLayout::new(dir.path().join("pki"));
    pki.ensure_dev().expect("PKI");
    let database = Database::create("tongban_replicas");

    // Both replicas start at once on the empty database: they race to migrate it.
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Running> = ports
        .iter()
        .enumerate()
        .map(|(n, port)| spawn_replica(dir.path(), &pki, &database, *port, n))
        .collect();
    for (n, (replica, port)) in replicas.iter_mut().zip(ports).enumerate() {
        wait_for_port(port, replica, &dir.path().join(format!("replica-{n}.log"))).await;
    }
    let endpoints: Vec<String> = ports.iter().map(|p| format!("https://127.0.0.1:{p}")).collect();
    let credentials = |identity: &Identity| {
        ClientIdentity::load(&pki.identity_dir(identity), Some(&pki.ca_cert())).expect("identity folder")
    };

    // A consumer follows replica 1's feed from the start; most commits come from replica 0's
    // writers too, which replica 1 learns of only by looking.
    let platform = credentials(&Identity::Platform);
    let mut follower_client = UnifiedClient::new(client::channel(&endpoints[1], &platform).await.expect("connect"));
    let request = pb::ChangesRequest {
        after: String::new(),
        kinds: Vec::new(),
        follow: true,
        page_size: 0,
    };
    let mut following = follower_client.changes(request).await.expect("follow").into_inner();

    // Every record goes to both replicas at the same time, each department pushing
    // through each replica from its own connection, in a different order.
    let records = synth::city(&CityConfig { people: 200, seed: 21 });
    let mut by_department: BTreeMap<&str, Vec<pb::Envelope>> = BTreeMap::new();
    for record in &records {
        by_department
            .entry(record.record_type.department().as_str())
            .or_default()
            .push(envelope(record));
    }
    let mut writers = Vec::new();
    for (n, endpoint) in endpoints.iter().enumerate() {
        for (department, envelopes) in &by_department {
            let identity = Identity::from_name(department).expect("department");
            let channel = client::channel(endpoint, &credentials(&identity))
                .await
                .expect("connect");
            let mut exchange = ExchangeClient::new(channel);
            let mut envelopes = envelopes.clone();
            if n == 1 {
                envelopes.reverse();
            }
            writers.push(tokio::spawn(async move {
                let mut results = Vec::new();
                for batch in envelopes.chunks(15) {
                    results.extend(
                        push_resending(&mut exchange, "replicas", batch.to_vec(), 20, Duration::from_millis(50))
                            .await
                            .into_iter()
                            .map(|r| (n, r)),
                    );
                }
                results
            }));
        }
    }
    let mut results = Vec::new();
    for writer in writers {
        results.extend(writer.await.expect("writer"));
    }
    let accepted: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.outcome == pb::Outcome::Accepted as i32)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        accepted.len(),
        records.len(),
        "each record accepted once, by one replica or the other"
    );
    let by_replica = [0, 1].map(|n| accepted.iter().filter(|a| **a == n).count());
    // Replica 1 takes the records in the opposite order: each gets to some first.
    assert!(
        by_replica.iter().all(|n| *n > 0),
        "both replicas stored records: {by_replica:?}"
    );
    assert!(
        results.iter().all(|(_, r)| r.outcome != pb::Outcome::Rejected as i32),
        "nothing rejected"
    );

    // The feed is the same whichever replica serves it.
    let mut feeds = Vec::new();
    for endpoint in &endpoints {
        let mut reader = UnifiedClient::new(client::channel(endpoint, &platform).await.expect("connect"));
        feeds.push(read_feed(&mut reader).await);
    }
    assert!(!feeds[0].is_empty());
    assert_eq!(feeds[0], feeds[1], "both replicas serve the same feed");
    let positions: Vec<i64> = feeds[0].iter().map(|c| c.cursor.parse().expect("cursor")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in cursor order");

    // The follower of replica 1 saw exactly that feed, commits of replica 0 included.
    let mut followed = Vec::new();
    let last = feeds[0].last().map(|c| c.cursor.clone()).unwrap_or_default();
    tokio::time::timeout(Duration::from_secs(30), async {
        while followed.last().map(|c: &pb::Change| c.cursor.clone()) != Some(last.clone()) {
            match following.message().await.expect("feed message") {
                Some(change) => followed.push(change),
                None => panic!("the follow stream ended"),
            }
        }
    })
    .await
    .expect("the follower of replica 1 caught up");
    assert_eq!(
        followed, feeds[0],
        "a follower of one replica sees every commit of both"
    );

    // One live entity per real person and organisation, as far as keys can tell.
    let mut latest: HashMap<&str, &pb::Change> = HashMap::new();
    for change in &feeds[0] {
        latest.insert(&change.unified_id, change);
    }
    let mut cluster: HashMap<Mention, &str> = HashMap::new();
    for change in latest.values().filter(|c| c.merged_into.is_empty()) {
        for s in &change.sources {
            let mention = mention_of(&s.record_type, &s.source_id, &s.role, s.index);
            let previous = cluster.insert(mention.clone(), &change.unified_id);
            assert!(previous.is_none(), "{mention:?} is a source of two entities");
        }
    }
    let mut truth: HashMap<Mention, TrueEntity> = HashMap::new();
    let mut by_key: HashMap<(String, String, String), BTreeSet<&str>> = HashMap::new();
    for record in records.iter().filter(|r| !r.deleted) {
        let record_type = record.record_type.as_str();
        for t in &record.truth {
            truth.insert(
                mention_of(record_type, &record.source_id, t.slot.role.as_str(), t.slot.index),
                t.entity,
            );
        }
        let reading = tongban_adapters::read(record.record_type, &record.payload).expect("readable");
        for raw in &reading.mentions {
            let m = normalise::mention(raw);
            let mention = mention_of(record_type, &record.source_id, m.slot.role.as_str(), m.slot.index);
            let id = *cluster
                .get(&mention)
                .unwrap_or_else(|| panic!("{mention:?} is in no live entity"));
            for key in m.keys() {
                let key = (
                    m.kind.as_str().to_owned(),
                    key.scheme.as_str().to_owned(),
                    key.value.clone(),
                );
                by_key.entry(key).or_default().insert(id);
            }
        }
    }
    for (key, ids) in &by_key {
        assert_eq!(ids.len(), 1, "key {key:?} is held by several entities: {ids:?}");
    }
    // Precision: no entity holds mentions of two real people or organisations.
    let mut members: HashMap<&str, BTreeSet<TrueEntity>> = HashMap::new();
    for (mention, entity) in &truth {
        let id = cluster
            .get(mention)
            .unwrap_or_else(|| panic!("{mention:?} is in no live entity"));
        members.entry(id).or_default().insert(*entity);
    }
    for (id, entities) in &members {
        assert_eq!(entities.len(), 1, "{id} merges {entities:?}");
    }
    assert!(by_key.len() > 100, "the city has many keys: {}", by_key.len());
    println!(
        "replicas: {} records, accepted {by_replica:?} by replica, {} changes, {} keys",
        records.len(),
        feeds[0].len(),
        by_key.len()
    );
    drop(replicas);
}
