//! Mutual TLS and identity, against both stores: only certificates of the configured CA,
//! valid now, made for a client, not revoked, carrying a Tongban identity, reach a
//! handler; a department pushes only its own records, whatever its payload says. Every
//! refusal is in the audit log.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use tongban_gateway::client::{self, error_chain, ClientIdentity};
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::{CertificateAuthority, CertificatePurpose, ClientCertificateSpec, PkiLayout};
use tongban_gateway::store::{AuditEntry, Store};
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_tests::hub::{department, HubOptions, StoreKind, TestHub};
use tongban_tests::unified::{env, lookup_identifier, outcome, push, record_json, unified};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

tongban_tests::on_both_stores!(
    a_connection_without_a_client_certificate_is_refused,
    a_certificate_from_another_ca_is_refused,
    a_revoked_serial_is_refused,
    a_certificate_without_a_tongban_identity_is_unauthenticated,
    an_expired_certificate_is_refused,
    a_certificate_for_another_purpose_is_refused,
    a_department_pushing_another_departments_records_is_refused_and_audited,
    a_payload_claiming_another_department_gains_nothing,
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
            payload: payload.to_string().into(),
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

/// The hub's own CA issues it, for tax: only its validity is wrong.
async fn an_expired_certificate_is_refused(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let year = Duration::from_secs(365 * 24 * 3600);
    let now = SystemTime::now();
    let spec = ClientCertificateSpec {
        validity: Some(now - 2 * year..now - Duration::from_secs(24 * 3600)),
        ..ClientCertificateSpec::new(&department("tax").to_uri())
    };
    let expired = hub.ca().issue_client_with(&spec).expect("issue");
    let result = push_as(&hub, &hub.credentials(&expired), "30000000000000000008").await;
    assert_tls_alert(&result, "CertificateExpired");
    assert_not_stored(&hub, "30000000000000000008").await;
    assert_refusal_audited(&hub, &claiming(&expired.serial, "department:tax"), "expired").await;

    // Not valid yet is refused the same way.
    let spec = ClientCertificateSpec {
        validity: Some(now + Duration::from_secs(24 * 3600)..now + year),
        ..ClientCertificateSpec::new(&department("tax").to_uri())
    };
    let early = hub.ca().issue_client_with(&spec).expect("issue");
    let result = push_as(&hub, &hub.credentials(&early), "30000000000000000009").await;
    assert_tls_alert(&result, "CertificateExpired");
    assert_refusal_audited(&hub, &claiming(&early.serial, "department:tax"), "not valid yet").await;
}

/// A server's certificate, and a CA's, each signed by the hub's CA and naming tax:
/// neither was made to authenticate a client.
async fn a_certificate_for_another_purpose_is_refused(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let issue = |purpose| {
        let spec = ClientCertificateSpec {
            purpose,
            ..ClientCertificateSpec::new(&department("tax").to_uri())
        };
        hub.ca().issue_client_with(&spec).expect("issue")
    };
    let server = issue(CertificatePurpose::Server);
    let result = push_as(&hub, &hub.credentials(&server), "30000000000000000010").await;
    assert_tls_alert(&result, "UnsupportedCertificate");
    assert_not_stored(&hub, "30000000000000000010").await;
    assert_refusal_audited(
        &hub,
        &claiming(&server.serial, "department:tax"),
        "not a client certificate",
    )
    .await;

    let authority = issue(CertificatePurpose::Authority);
    let result = push_as(&hub, &hub.credentials(&authority), "30000000000000000011").await;
    assert_tls_alert(&result, "CertificateUnknown");
    assert_not_stored(&hub, "30000000000000000011").await;
    assert_refusal_audited(
        &hub,
        &claiming(&authority.serial, "department:tax"),
        "not a client certificate",
    )
    .await;

    // The same CA's client certificate for tax still works.
    let client = issue(CertificatePurpose::Client);
    let accepted = push_as(&hub, &hub.credentials(&client), "30000000000000000012").await;
    assert!(accepted.is_ok(), "{accepted:?}");
}

/// The audit entries of refused pushes.
async fn refused_pushes(hub: &TestHub) -> Vec<AuditEntry> {
    let log = hub.store.audit_log(1000).await.expect("audit log");
    log.into_iter()
        .filter(|e| e.action == "push" && e.outcome.starts_with("refused: "))
        .collect()
}

/// Tax sends market's record type (its own record in the same batch): the whole batch
/// is refused, nothing of it is stored, and the attempt is audited under tax's
/// identity, naming the record type and not a value of the payload. The platform, no
/// department at all, is refused and audited the same way.
async fn a_department_pushing_another_departments_records_is_refused_and_audited(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let own = tax_record("30000000000000000013").envelopes.remove(0);
    let foreign = env(
        "market.entity",
        "c6990d843c84ce922c5afd6175d302d5",
        1,
        serde_json::json!({
            "ztid": "c6990d843c84ce922c5afd6175d302d5", "tyshxydm": "91370687L3G00MW66G",
            "ztmc": "海阳永盛旭日食品有限公司", "ztlx": "1100", "fddbr": "胡东",
            "fddbr_zjlx": "10", "fddbr_zjhm": "370684196012238683", "djzt": "注销",
            "djjg": "海阳市市场监督管理局"
        }),
    );
    let mut tax = hub.exchange(&department("tax")).await;
    let status = tax
        .push(pb::PushRequest {
            batch_id: "impersonation".into(),
            envelopes: vec![own.clone(), foreign.clone()],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(hub
        .store
        .current(&own.record_type, &own.source_id)
        .await
        .expect("store")
        .is_none());
    assert!(hub
        .store
        .current(&foreign.record_type, &foreign.source_id)
        .await
        .expect("store")
        .is_none());

    let mut platform = hub.exchange(&Identity::Platform).await;
    let status = platform
        .push(pb::PushRequest {
            batch_id: "not-a-department".into(),
            envelopes: vec![foreign.clone(), own.clone()],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let refused = refused_pushes(&hub).await;
    let by = |identity: &str| {
        refused
            .iter()
            .find(|e| e.identity == identity)
            .unwrap_or_else(|| panic!("no refused push of {identity} audited: {refused:#?}"))
    };
    let entry = by("department:tax");
    assert_eq!(entry.subject, "market.entity");
    assert_eq!(entry.outcome, "refused: the record type belongs to department:market");
    let entry = by("platform");
    assert_eq!(entry.subject, "market.entity, tax.taxpayer");
    assert_eq!(entry.outcome, "refused: not a department");
    assert_eq!(refused.len(), 2, "one entry per refused batch: {refused:#?}");
    for entry in &refused {
        let text = format!("{entry:?}");
        for value in [
            "91370687L3G00MW66G",
            "370684196012238683",
            "胡东",
            "王伟",
            "370687198001010019",
        ] {
            assert!(!text.contains(value), "a payload value in the audit log: {entry:?}");
        }
    }
    // The department's own records alone still go through.
    let results = push(&mut tax, "own", vec![own]).await;
    assert_eq!(outcome(&results[0]), pb::Outcome::Accepted);
}

/// Departments name offices in their payloads (tax's `swjg_dm`, market's and civil's
/// `djjg`), and a payload may carry columns the schema does not list. None of it is
/// trusted for who sent the record: a record belongs to the department of its record
/// type, which the certificate proves; authority in the unified record goes by that.
/// So tax, writing market's columns and office into a taxpayer's payload, pushes a tax
/// record and nothing more: market stays the authority on the enterprise's status.
async fn a_payload_claiming_another_department_gains_nothing(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let uscc = "91370687L3G00MW66G";
    let market = env(
        "market.entity",
        "c6990d843c84ce922c5afd6175d302d5",
        1,
        serde_json::json!({
            "ztid": "c6990d843c84ce922c5afd6175d302d5", "tyshxydm": uscc, "zch": "",
            "ztmc": "海阳永盛旭日食品有限公司", "ztlx": "1100", "fddbr": "胡东", "fddbr_zjlx": "10",
            "fddbr_zjhm": "370684196012238683", "zczb": "50万元人民币", "clrq": "2004年1月18日",
            "zs": "海阳市东村街道万隆村116号", "jyfw": "食品", "djzt": "在业",
            "djjg": "海阳市市场监督管理局", "lxdh": ""
        }),
    );
    let results = push(&mut hub.exchange(&department("market")).await, "market", vec![market]).await;
    assert_eq!(outcome(&results[0]), pb::Outcome::Accepted, "{results:?}");
    // Later than market's, saying the enterprise is deregistered, and dressed as market's.
    let claiming_market = env(
        "tax.taxpayer",
        "30000000000000000014",
        2,
        serde_json::json!({
            "djxh": "30000000000000000014", "nsrsbh": uscc, "nsrmc": "海阳永盛旭日食品有限公司",
            "nsrlx": "1", "djrq": "20190516", "nsrzt_dm": "07", "swjg_dm": "13706870000",
            "record_type": "market.entity", "department": "market", "djzt": "注销",
            "djjg": "海阳市市场监督管理局", "ztmc": "海阳永盛旭日食品有限公司"
        }),
    );
    let results = push(
        &mut hub.exchange(&department("tax")).await,
        "tax",
        vec![claiming_market],
    )
    .await;
    assert_eq!(
        outcome(&results[0]),
        pb::Outcome::Accepted,
        "its own record type: {results:?}"
    );
    assert!(
        hub.store
            .current("market.entity", "30000000000000000014")
            .await
            .expect("store")
            .is_none(),
        "held as tax's record only"
    );

    let mut platform = unified(&hub, &Identity::Platform).await;
    let found = lookup_identifier(&mut platform, uscc).await.expect("lookup");
    let record = record_json(&found.record);
    let status = &record["attributes"]["status"];
    assert_eq!(status["rule"], "authority", "{record}");
    assert_eq!(status["source"]["record_type"], "market.entity", "{record}");
    let tax_facts = record["facts"]["tax"].to_string();
    assert!(
        !tax_facts.contains("registry") && !tax_facts.contains("市场监督"),
        "market's columns in a tax payload are not read: {tax_facts}"
    );
}

/// A refused certificate is told as such every time, never as a broken connection: the
/// client's connection waits for the hub's first bytes (the alert, or HTTP/2's settings)
/// before it sends a request, which with TLS 1.3 used to race the refusal.
#[tokio::test]
async fn a_refusal_is_told_every_time_not_lost_behind_the_first_request() {
    let hub = TestHub::start(StoreKind::Embedded).await;
    let stranger_ca = CertificateAuthority::generate("some other CA").expect("ca");
    let credentials = hub.credentials(&stranger_ca.issue_client(&department("tax")).expect("issue"));
    for attempt in 0..20 {
        match client::channel(&hub.endpoint, &credentials).await {
            Err(client::ClientError::Refused { alert, .. }) => assert_eq!(alert, "UnknownCA"),
            Err(other) => panic!("attempt {attempt}: not told a refusal: {other}"),
            Ok(_) => panic!("attempt {attempt}: a stranger's certificate was let in"),
        }
    }
}
