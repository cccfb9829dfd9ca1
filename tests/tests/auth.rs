//! Mutual TLS and identity, against both stores: only certificates of the configured CA,
//! not revoked, carrying a Tongban identity, reach a handler.

use std::collections::HashSet;
use std::time::Duration;

use tongban_gateway::client::{self, error_chain, ClientIdentity};
use tongban_gateway::pki::{CertificateAuthority, PkiLayout};
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_tests::hub::{department, HubOptions, StoreKind, TestHub};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

tongban_tests::on_both_stores!(
    a_connection_without_a_client_certificate_is_refused,
    a_certificate_from_another_ca_is_refused,
    a_revoked_serial_is_refused,
    a_certificate_without_a_tongban_identity_is_unauthenticated,
);

fn tax_record(source_id: &str) -> pb::PushRequest {
    let payload = serde_json::json!({
        "djxh": source_id, "nsrsbh": "370687198001010019", "nsrmc": "王伟", "nsrlx": "3",
        "zjlx_dm": "201", "zcdz": "海阳市", "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"
    });
    pb::PushRequest {
        batch_id: "1".into(),
        envelopes: vec![pb::Envelope {
            record_type: "tax.taxpayer".into(),
            source_id: source_id.into(),
            source_version: 1,
            deleted: false,
            payload: payload.to_string(),
        }],
    }
}

/// Pushes as `credentials`; the error is the gRPC status or the connection failure,
/// with its causes.
async fn push_as(hub: &TestHub, credentials: &ClientIdentity, source_id: &str) -> Result<pb::PushResponse, String> {
    let mut client = client::connect(&hub.endpoint, credentials)
        .await
        .map_err(|e| error_chain(&e))?;
    client
        .push(tax_record(source_id))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("{:?}: {}", s.code(), error_chain(&s)))
}

/// The hub refused the handshake with this TLS alert: no handler ever saw the call.
fn assert_tls_alert(result: &Result<pb::PushResponse, String>, alert: &str) {
    match result {
        Ok(response) => panic!("expected the TLS alert {alert}, got an answer: {response:?}"),
        Err(error) => assert!(error.contains(alert), "expected the TLS alert {alert}, got: {error}"),
    }
}

async fn assert_not_stored(hub: &TestHub, source_id: &str) {
    let held = hub.store.current("tax.taxpayer", source_id).await.expect("store");
    assert!(held.is_none(), "nothing from a refused connection is stored");
}

/// The refusal of `certificate` reaches the audit log (written off the handshake's
/// path, so it is waited for, with a deadline), under no identity: what a refused
/// certificate claims is only a claim.
async fn assert_refusal_audited(hub: &TestHub, certificate: &str, reason: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = hub.store.audit_log(1000).await.expect("audit log");
        if log.iter().any(|e| {
            e.action == "connect"
                && e.subject == certificate
                && e.identity == "unauthenticated"
                && e.outcome == format!("refused: {reason}")
        }) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal of {certificate} ({reason}) in the audit log: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn claiming(serial: &str, claim: &str) -> String {
    let serial = tongban_gateway::pki::normalise_serial(serial).expect("serial");
    format!("certificate {serial} claiming {claim}")
}

async fn a_connection_without_a_client_certificate_is_refused(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let ca = std::fs::read_to_string(hub.pki.ca_cert()).expect("ca");
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    let result = async {
        let channel = Endpoint::from_shared(hub.endpoint.clone())
            .map_err(|e| e.to_string())?
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| error_chain(&e))?;
        ExchangeClient::new(channel)
            .push(tax_record("30000000000000000001"))
            .await
            .map(|r| r.into_inner())
            .map_err(|s| error_chain(&s))
    }
    .await;
    assert_tls_alert(&result, "CertificateRequired");
    assert_not_stored(&hub, "30000000000000000001").await;
    assert_refusal_audited(&hub, "no certificate", "no client certificate").await;
    // A proper client still gets in.
    let ok = push_as(&hub, &hub.identity(&department("tax")), "30000000000000000002").await;
    assert!(ok.is_ok(), "{ok:?}");
}

async fn a_certificate_from_another_ca_is_refused(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let stranger_ca = CertificateAuthority::generate("some other CA").expect("ca");
    let issued = stranger_ca.issue_client(&department("tax")).expect("issue");
    // It trusts the hub's CA for the server, but its own certificate is a stranger's.
    let credentials = hub.credentials(&issued);
    let result = push_as(&hub, &credentials, "30000000000000000003").await;
    assert_tls_alert(&result, "UnknownCA");
    assert_not_stored(&hub, "30000000000000000003").await;
    assert_refusal_audited(
        &hub,
        &claiming(&issued.serial, "department:tax"),
        "not issued by the hub's CA",
    )
    .await;
}

async fn a_revoked_serial_is_refused(kind: StoreKind) {
    // A PKI made before the hub starts, so that one of its serials can be revoked.
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let layout = PkiLayout::new(pki_dir.path());
    layout.ensure_dev().expect("pki");
    let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key()).expect("ca");
    let revoked = ca.issue_client(&department("tax")).expect("issue");
    let valid = ca.issue_client(&department("tax")).expect("issue");
    let options = HubOptions {
        revoked: HashSet::from([revoked.serial.to_uppercase()]),
        pki_dir: Some(layout.root.clone()),
        ..HubOptions::default()
    };
    let hub = TestHub::start_with(kind, options).await;
    let refused = push_as(&hub, &hub.credentials(&revoked), "30000000000000000004").await;
    assert_tls_alert(&refused, "CertificateRevoked");
    assert_not_stored(&hub, "30000000000000000004").await;
    assert_refusal_audited(&hub, &claiming(&revoked.serial, "department:tax"), "revoked").await;
    let accepted = push_as(&hub, &hub.credentials(&valid), "30000000000000000005").await;
    assert!(
        accepted.is_ok(),
        "the same CA's other certificate still works: {accepted:?}"
    );
}

async fn a_certificate_without_a_tongban_identity_is_unauthenticated(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let issued = hub.ca().issue_client_for_uri("urn:example:someone").expect("issue");
    let result = push_as(&hub, &hub.credentials(&issued), "30000000000000000006").await;
    let error = result.expect_err("no identity, no push");
    assert!(error.starts_with(&format!("{:?}", Code::Unauthenticated)), "{error}");
    assert_not_stored(&hub, "30000000000000000006").await;
    assert_refusal_audited(
        &hub,
        &claiming(&issued.serial, "no Tongban identity"),
        "the client certificate carries no urn:tongban: SAN URI",
    )
    .await;
    // An identity the hub does not know is as good as none.
    let unknown = hub
        .ca()
        .issue_client_for_uri("urn:tongban:department:police")
        .expect("issue");
    let error = push_as(&hub, &hub.credentials(&unknown), "30000000000000000007")
        .await
        .expect_err("unknown");
    assert!(error.contains("police"), "{error}");
}
