//! PushStream applies backpressure: a client that does not read its answers stops being
//! read, instead of the hub buffering an unbounded backlog.

use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

const BATCHES: usize = 200;
const PER_BATCH: usize = 10;

fn source_id(batch: usize, i: usize) -> String {
    format!("6{batch:09}{i:010}")
}

fn batch(number: usize) -> pb::PushRequest {
    let envelopes = (0..PER_BATCH)
        .map(|i| {
            let id = source_id(number, i);
            pb::Envelope {
                record_type: "tax.taxpayer".into(),
                source_id: id.clone(),
                source_version: 1,
                deleted: false,
                payload: serde_json::json!({
                    "djxh": id, "nsrsbh": "370687198001010019", "nsrmc": "王伟", "nsrlx": "3",
                    "zcdz": "海阳市", "djrq": "20190516", "nsrzt_dm": "03"
                })
                .to_string()
                .into(),
            }
        })
        .collect();
    pb::PushRequest {
        batch_id: number.to_string(),
        envelopes,
    }
}

async fn committed_batches(hub: &TestHub) -> usize {
    let mut committed = 0;
    for b in 0..BATCHES {
        // Batches commit whole, so one record tells.
        if hub
            .store
            .current("tax.taxpayer", &source_id(b, 0))
            .await
            .expect("store")
            .is_some()
        {
            committed += 1;
        }
    }
    committed
}

#[tokio::test]
async fn an_unread_stream_is_not_read_either() {
    let hub = TestHub::start(StoreKind::Embedded).await;
    let credentials = hub.identity(&department("tax"));
    // A small HTTP/2 receive window, so that unread answers fill it after a few batches.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&credentials.ca_pem))
        .identity(TlsIdentity::from_pem(&credentials.cert_pem, &credentials.key_pem));
    let channel = Endpoint::from_shared(hub.endpoint.clone())
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .initial_stream_window_size(Some(16 * 1024))
        .initial_connection_window_size(Some(16 * 1024))
        .connect()
        .await
        .expect("connect");
    let mut client = ExchangeClient::new(channel);

    // Everything is ready to go at once; the answers are left unread.
    let (tx, rx) = tokio::sync::mpsc::channel(BATCHES);
    for number in 0..BATCHES {
        tx.send(batch(number)).await.expect("queue");
    }
    drop(tx);
    let mut answers = client
        .push_stream(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let while_unread = committed_batches(&hub).await;
    assert!(while_unread >= 1, "the hub started working");
    assert!(
        while_unread <= 60,
        "the hub processed {while_unread} of {BATCHES} batches whose answers nobody read"
    );

    // Once the client reads, everything goes through, in order.
    let mut answered = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        assert_eq!(answer.batch_id, answered.to_string());
        answered += 1;
    }
    assert_eq!(answered, BATCHES);
    assert_eq!(committed_batches(&hub).await, BATCHES);
}

#[tokio::test]
async fn the_hub_stops_while_clients_keep_their_connections() {
    let mut hub = TestHub::start(StoreKind::Embedded).await;
    let mut client = hub.exchange(&department("tax")).await;
    client.push(batch(0)).await.expect("push");
    // An open PushStream whose client neither sends nor hangs up.
    let (_keep_open, rx) = tokio::sync::mpsc::channel::<pb::PushRequest>(1);
    let _stream = client.push_stream(ReceiverStream::new(rx)).await.expect("stream");
    let stopped = tokio::time::timeout(Duration::from_secs(30), hub.stop()).await;
    assert!(stopped.is_ok(), "the hub did not stop within 30 s");
}
