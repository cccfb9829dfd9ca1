//! Limits per caller identity: a caller over its request rate or its open streams gets
//! RESOURCE_EXHAUSTED with a retry delay, while other callers go on unhindered; after
//! the delay it is served again; the push connector honours the delays and delivers
//! everything.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tongban_gateway::config::Limits;
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_tests::hub::{department, HubOptions, StoreKind, TestHub};
use tongban_tests::unified::unified;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

tongban_tests::on_both_stores!(a_caller_over_its_rate_is_told_when_to_return_and_others_go_on);

const FIXTURES: &str = include_str!("../fixtures/one_of_each.jsonl");

/// The fixture record of `record_type`, under source ID `source_id`.
fn envelope(record_type: &str, source_id: String) -> pb::Envelope {
    let line = FIXTURES
        .lines()
        .find(|line| line.contains(&format!("\"record_type\": \"{record_type}\"")))
        .expect("fixture of that type");
    let v: serde_json::Value = serde_json::from_str(line).expect("fixture line");
    pb::Envelope {
        record_type: record_type.to_owned(),
        source_id,
        source_version: 1,
        deleted: false,
        payload: v["payload"].to_string().into(),
    }
}

/// The taxpayers numbered `numbers` are held by the hub.
async fn assert_stored(hub: &TestHub, numbers: std::ops::Range<usize>, what: &str) {
    for n in numbers {
        let held = hub
            .store
            .current("tax.taxpayer", &tax_source_id(n))
            .await
            .expect("store");
        assert!(held.is_some(), "{what} ({n}) is stored");
    }
}

fn tax_source_id(n: usize) -> String {
    format!("8{n:019}")
}

/// A batch of one tax record.
fn tax_batch(n: usize) -> pb::PushRequest {
    pb::PushRequest {
        batch_id: n.to_string(),
        envelopes: vec![envelope("tax.taxpayer", tax_source_id(n))],
    }
}

/// A batch of one hrss record.
fn hrss_batch(n: usize) -> pb::PushRequest {
    pb::PushRequest {
        batch_id: n.to_string(),
        envelopes: vec![envelope("hrss.insured_person", format!("{n:010}-20000001"))],
    }
}

/// The refusal's RetryInfo delay and ErrorInfo reason, checking it is a limit's.
fn limited(status: &Status) -> (Duration, String) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| panic!("RetryInfo with a delay: {status:?}"));
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "tongban.gov");
    (delay, info.reason)
}

async fn a_caller_over_its_rate_is_told_when_to_return_and_others_go_on(kind: StoreKind) {
    const PER_SECOND: f64 = 2.0;
    const BURST: usize = 3;
    let limits = Limits {
        requests_per_second_per_identity: PER_SECOND,
        burst_per_identity: BURST as u32,
        ..Limits::default()
    };
    let hub = TestHub::start_with(kind, HubOptions::with_limits(limits)).await;
    let mut tax = hub.exchange(&department("tax")).await;
    let mut hrss = hub.exchange(&department("hrss")).await;

    // Tax pushes as fast as it can; at the same time hrss pushes as much as its own
    // allowance holds. Twenty pushes cannot all fit in a burst of three refilled at two
    // a second (each would have to take half a second).
    let flood = async {
        let mut answered = 0;
        for n in 0..20 {
            match tax.push(tax_batch(n)).await {
                Ok(_) => answered += 1,
                Err(status) => return (answered, status),
            }
        }
        panic!("twenty pushes at once were never limited");
    };
    let others = async {
        let mut answers = Vec::new();
        for n in 0..BURST {
            answers.push(hrss.push(hrss_batch(n)).await);
        }
        answers
    };
    let ((answered, refusal), others) = tokio::join!(flood, others);
    assert!(answered >= BURST, "the burst is served: {answered}");
    let (delay, reason) = limited(&refusal);
    assert_eq!(reason, "RATE_LIMITED");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(501),
        "the time until the next token at two a second: {delay:?}"
    );
    // The other department was not refused once, and every record of it is in.
    for (n, answer) in others.into_iter().enumerate() {
        let answer = answer.unwrap_or_else(|s| panic!("hrss push {n} while tax was limited: {s:?}"));
        assert_eq!(answer.into_inner().results.len(), 1);
    }
    // Nothing of the refused push was stored.
    assert!(hub
        .store
        .current("tax.taxpayer", &tax_source_id(answered))
        .await
        .expect("store")
        .is_none());

    // Health checks are free: the limited caller's probe still gets its answer.
    let mut health = tonic_health::pb::health_client::HealthClient::new(hub.channel(&department("tax")).await);
    health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("a health check is never limited");

    // After the delay it was given, the limited caller is served again.
    tokio::time::sleep(delay).await;
    let answer = tax
        .push(tax_batch(answered))
        .await
        .expect("served after the retry delay");
    assert_eq!(answer.into_inner().results.len(), 1);
}

/// Each batch of a PushStream is a request: the batch over the rate ends the stream
/// with the refusal, the ones before it are answered and stored, it is not.
#[tokio::test]
async fn a_push_stream_is_limited_batch_by_batch() {
    const BURST: usize = 3;
    const BATCHES: usize = 20;
    let limits = Limits {
        requests_per_second_per_identity: 1.0,
        burst_per_identity: BURST as u32,
        ..Limits::default()
    };
    let hub = TestHub::start_with(StoreKind::Embedded, HubOptions::with_limits(limits)).await;
    let mut tax = hub.exchange(&department("tax")).await;
    let batches: Vec<pb::PushRequest> = (0..BATCHES).map(tax_batch).collect();
    let mut answers = tax
        .push_stream(tokio_stream::iter(batches))
        .await
        .expect("opening a stream takes no token")
        .into_inner();
    let mut answered = 0;
    let refusal = loop {
        match answers.message().await {
            Ok(Some(answer)) => {
                assert_eq!(answer.batch_id, answered.to_string(), "in order");
                answered += 1;
            }
            Ok(None) => panic!("{BATCHES} batches at once were never limited"),
            Err(status) => break status,
        }
    };
    assert!((BURST..BATCHES).contains(&answered), "{answered}");
    let (delay, reason) = limited(&refusal);
    assert_eq!(reason, "RATE_LIMITED");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(1001),
        "{delay:?}"
    );
    assert_stored(&hub, 0..answered, "an answered batch").await;
    assert!(
        hub.store
            .current("tax.taxpayer", &tax_source_id(answered))
            .await
            .expect("store")
            .is_none(),
        "the refused batch was not looked at"
    );
}

/// Opens a PushStream whose batches the test sends one by one.
async fn open_push_stream(
    client: &mut ExchangeClient<Channel>,
) -> Result<(mpsc::Sender<pb::PushRequest>, Streaming<pb::PushResponse>), Status> {
    let (tx, rx) = mpsc::channel(4);
    let answers = client.push_stream(ReceiverStream::new(rx)).await?.into_inner();
    Ok((tx, answers))
}

async fn follow_feed(
    client: &mut tongban_proto::v1::unified_client::UnifiedClient<Channel>,
) -> Result<Streaming<pb::Change>, Status> {
    let request = pb::ChangesRequest {
        after: String::new(),
        kinds: Vec::new(),
        follow: true,
        page_size: 0,
    };
    Ok(client.changes(request).await?.into_inner())
}

#[tokio::test]
async fn open_streams_are_limited_per_identity() {
    let limits = Limits {
        max_streams_per_identity: 2,
        ..Limits::default()
    };
    let hub = TestHub::start_with(StoreKind::Embedded, HubOptions::with_limits(limits)).await;
    let mut tax = hub.exchange(&department("tax")).await;
    let (first_tx, mut first) = open_push_stream(&mut tax).await.expect("first stream");
    let (second_tx, mut second) = open_push_stream(&mut tax).await.expect("second stream");
    let refusal = open_push_stream(&mut tax).await.expect_err("a third stream is refused");
    let (delay, reason) = limited(&refusal);
    assert_eq!(reason, "TOO_MANY_STREAMS");
    assert_eq!(delay, Duration::from_secs(1));

    // The two open streams work on.
    for (n, (tx, answers)) in [(&first_tx, &mut first), (&second_tx, &mut second)]
        .into_iter()
        .enumerate()
    {
        tx.send(tax_batch(n)).await.expect("send");
        let answer = answers.message().await.expect("answer").expect("one answer");
        assert_eq!(answer.batch_id, n.to_string());
    }
    // Another identity has its own streams.
    let mut hrss = hub.exchange(&department("hrss")).await;
    let (hrss_tx, mut hrss_answers) = open_push_stream(&mut hrss).await.expect("hrss is not tax");
    hrss_tx.send(hrss_batch(0)).await.expect("send");
    assert!(hrss_answers.message().await.expect("answer").is_some());

    // A stream that ends gives its place back.
    drop(first_tx);
    assert!(first.message().await.expect("the stream ends cleanly").is_none());
    let (third_tx, mut third) = open_push_stream(&mut tax).await.expect("a place was freed");
    third_tx.send(tax_batch(2)).await.expect("send");
    assert!(third.message().await.expect("answer").is_some());

    // Feeds are streams too.
    let mut platform = unified(&hub, &Identity::Platform).await;
    let feed = follow_feed(&mut platform).await.expect("first feed");
    let _other_feed = follow_feed(&mut platform).await.expect("second feed");
    let refusal = follow_feed(&mut platform).await.expect_err("a third feed is refused");
    let (delay, reason) = limited(&refusal);
    assert_eq!(reason, "TOO_MANY_STREAMS");
    // A consumer that goes away gives its place back once the hub sees the stream
    // reset; it is asked to come back after the delay given, a few times at most.
    drop(feed);
    let mut attempts = 0;
    loop {
        match follow_feed(&mut platform).await {
            Ok(_feed) => break,
            Err(status) => {
                limited(&status);
                attempts += 1;
                assert!(attempts < 10, "the place of a dropped feed never came back");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Under a tight rate the connector is refused again and again; it waits each delay
/// the hub gives and resends what was not answered, and delivers every record once.
#[tokio::test]
async fn the_push_connector_honours_the_retry_delays() {
    const RECORDS: usize = 24;
    let limits = Limits {
        requests_per_second_per_identity: 5.0,
        burst_per_identity: 2,
        ..Limits::default()
    };
    let hub = TestHub::start_with(StoreKind::Embedded, HubOptions::with_limits(limits)).await;
    let file = hub.dir.path().join("tax.jsonl");
    let lines: Vec<String> = (0..RECORDS)
        .map(|n| {
            let e = envelope("tax.taxpayer", tax_source_id(n));
            serde_json::json!({
                "record_type": e.record_type,
                "source_id": e.source_id,
                "source_version": 1,
                "payload": serde_json::from_slice::<serde_json::Value>(&e.payload).expect("json"),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("file");
    let mut options = tongban_gateway::client::PushOptions::new(hub.endpoint.clone());
    options.show_progress = false;
    // Twelve batches against a burst of two and five a second: a couple of seconds.
    options.batch_size = 2;
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        tongban_gateway::client::push_file(&file, &hub.identity(&department("tax")), &options),
    )
    .await
    .expect("the push finishes")
    .expect("push");
    assert!(report.is_complete(), "{:?}", report.failure);
    assert!(report.throttled >= 1, "the connector was limited and waited");
    assert_eq!((report.lines, report.accepted), (RECORDS as u64, RECORDS as u64));
    assert_eq!(report.rejected + report.unchanged + report.stale, 0, "each record once");
    assert_stored(&hub, 0..RECORDS, "a record the connector sent").await;
}
