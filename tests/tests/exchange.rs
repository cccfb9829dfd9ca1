//! The Exchange service over real gRPC with mutual TLS, against both stores: outcomes,
//! rejections with their JSON Pointers, authorisation, limits, health and reflection.

use std::collections::HashMap;

use tongban_gateway::config::Limits;
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1::{self as pb, Outcome};
use tongban_tests::hub::{department, HubOptions, StoreKind, TestHub};
use tonic::Code;
use tonic_types::StatusExt;

tongban_tests::on_both_stores!(
    every_record_type_is_accepted_from_its_department,
    each_rejection_points_at_its_defect,
    a_mixed_batch_keeps_the_good_and_quarantines_the_bad,
    another_departments_record_type_is_refused,
    only_departments_push,
    empty_and_oversized_batches_are_invalid,
    a_message_over_the_limit_is_resource_exhausted,
    replays_stale_and_out_of_order_versions,
    push_stream_answers_every_batch_in_order,
    health_and_reflection_are_served,
);

const FIXTURES: &str = include_str!("../fixtures/one_of_each.jsonl");

/// The fixture records: one valid record of every record type.
fn fixtures() -> Vec<pb::Envelope> {
    FIXTURES
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture line");
            pb::Envelope {
                record_type: v["record_type"].as_str().expect("record_type").to_owned(),
                source_id: v["source_id"].as_str().expect("source_id").to_owned(),
                source_version: v["source_version"].as_i64().expect("version"),
                deleted: false,
                payload: v["payload"].to_string().into(),
            }
        })
        .collect()
}

fn fixture(record_type: &str) -> pb::Envelope {
    fixtures()
        .into_iter()
        .find(|e| e.record_type == record_type)
        .expect("fixture of that type")
}

/// A fixture with its payload changed by `edit`.
fn edited(record_type: &str, edit: impl FnOnce(&mut serde_json::Value)) -> pb::Envelope {
    let mut envelope = fixture(record_type);
    let mut payload: serde_json::Value = serde_json::from_slice(&envelope.payload).expect("payload");
    edit(&mut payload);
    envelope.payload = payload.to_string().into();
    envelope
}

fn batch(envelopes: Vec<pb::Envelope>) -> pb::PushRequest {
    pb::PushRequest {
        batch_id: "b1".into(),
        envelopes,
    }
}

fn outcome(result: &pb::RecordResult) -> Outcome {
    Outcome::try_from(result.outcome).expect("known outcome")
}

async fn every_record_type_is_accepted_from_its_department(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut by_department: HashMap<String, Vec<pb::Envelope>> = HashMap::new();
    for envelope in fixtures() {
        let dept = envelope.record_type.split('.').next().expect("dept").to_owned();
        by_department.entry(dept).or_default().push(envelope);
    }
    assert_eq!(by_department.len(), 7, "the fixtures cover all seven departments");
    let mut types_accepted = 0;
    for (dept, envelopes) in by_department {
        let mut client = hub.exchange(&department(&dept)).await;
        let response = client.push(batch(envelopes.clone())).await.expect("push").into_inner();
        assert_eq!(response.results.len(), envelopes.len());
        for (envelope, result) in envelopes.iter().zip(&response.results) {
            assert_eq!(
                outcome(result),
                Outcome::Accepted,
                "{}: {:?}",
                envelope.record_type,
                result.errors
            );
            assert_eq!(result.current_version, Some(envelope.source_version));
            let held = hub
                .store
                .current(&envelope.record_type, &envelope.source_id)
                .await
                .expect("store");
            let held = held.expect("the accepted record is stored");
            assert_eq!(held.source_version, envelope.source_version);
            let sent: serde_json::Value = serde_json::from_slice(&envelope.payload).expect("json");
            let kept: serde_json::Value = serde_json::from_str(&held.payload).expect("json");
            assert_eq!(sent, kept, "the payload is kept as sent");
            types_accepted += 1;
        }
        assert_eq!(response.counts.expect("counts").accepted as usize, envelopes.len());
    }
    assert_eq!(types_accepted, 8);
}

async fn each_rejection_points_at_its_defect(kind: StoreKind) {
    use pb::ErrorScope::{Envelope, Payload};
    let hub = TestHub::start(kind).await;
    let mut not_json = fixture("tax.taxpayer");
    not_json.payload = br#"{"djxh": "1", "nsrmc": "#.to_vec();
    let mut unknown_type = fixture("tax.taxpayer");
    unknown_type.record_type = "tax.payer".to_owned();
    let mut negative_version = fixture("tax.taxpayer");
    negative_version.source_version = -5;
    let mut no_id = fixture("tax.taxpayer");
    no_id.source_id = String::new();
    // (department, record, scope, pointer, code, words the message must contain)
    #[rustfmt::skip]
    let cases: Vec<(&str, pb::Envelope, pb::ErrorScope, &str, &str, &str)> = vec![
        ("tax", edited("tax.taxpayer", |p| p["djrq"] = "2019-05-16".into()), Payload, "/djrq", "schema.pattern", "YYYYMMDD"),
        ("tax", edited("tax.taxpayer", |p| { p.as_object_mut().map(|o| o.remove("djxh")); }), Payload, "", "schema.required", "djxh"),
        ("tax", edited("tax.taxpayer", |p| p["nsrlx"] = 3.into()), Payload, "/nsrlx", "schema.type", "string"),
        ("tax", not_json, Payload, "", "payload.not_json", "not valid JSON"),
        ("tax", unknown_type, Envelope, "/record_type", "envelope.unknown_record_type", "tax.taxpayer"),
        ("tax", negative_version, Envelope, "/source_version", "envelope.source_version", "negative"),
        ("tax", no_id, Envelope, "/source_id", "envelope.source_id", "empty"),
        ("realestate", edited("realestate.title", |p| p["mj"] = "98.5".into()), Payload, "/mj", "schema.type", "number"),
        ("realestate", edited("realestate.title", |p| p["qlr"][1]["zjh"] = 370687.into()), Payload, "/qlr/1/zjh", "schema.type", "string"),
        ("civil", edited("civil.marriage", |p| { p["nan"].as_object_mut().map(|o| o.remove("xm")); }), Payload, "/nan", "schema.required", "xm"),
        ("civil", edited("civil.assistance", |p| p["jtcy"] = "张秀英".into()), Payload, "/jtcy", "schema.type", "array"),
        ("construction", edited("construction.permit", |p| p["fzrq"] = "2024-08-31".into()), Payload, "/fzrq", "schema.type", "integer"),
        ("market", edited("market.entity", |p| p["clrq"] = "2004-01-08".into()), Payload, "/clrq", "schema.pattern", "年"),
        ("hrss", edited("hrss.insured_person", |p| p["xzlx"] = "110".into()), Payload, "/xzlx", "schema.type", "array"),
        ("housingfund", edited("housingfund.account", |p| p["khrq"] = "2010-03-07".into()), Payload, "/khrq", "schema.pattern", "YYYY/M/D"),
    ];
    for (dept, envelope, scope, pointer, code, words) in cases {
        let mut client = hub.exchange(&department(dept)).await;
        let response = client
            .push(batch(vec![envelope.clone()]))
            .await
            .expect("push")
            .into_inner();
        let result = &response.results[0];
        assert_eq!(
            outcome(result),
            Outcome::Rejected,
            "{code} at {pointer} should be rejected"
        );
        let error = result
            .errors
            .iter()
            .find(|e| e.pointer == pointer && e.code == code)
            .unwrap_or_else(|| panic!("no {code} error at {pointer:?}; got {:?}", result.errors));
        assert_eq!(pb::ErrorScope::try_from(error.scope), Ok(scope));
        assert!(
            error.message.contains(words),
            "message {:?} should mention {words:?}",
            error.message
        );
        assert!(
            !result.quarantine_id.is_empty(),
            "a rejection names its quarantine entry"
        );
        // Nothing of a rejected record becomes current.
        if envelope.source_id.is_empty() || envelope.record_type == "tax.payer" {
            continue;
        }
        let held = hub
            .store
            .current(&envelope.record_type, &envelope.source_id)
            .await
            .expect("store");
        assert!(held.is_none(), "a rejected record is not stored as a source record");
    }
    // Every rejection is in quarantine, verbatim, under the department that sent it.
    let quarantined = hub
        .store
        .quarantine(Some("department:tax"), 100)
        .await
        .expect("quarantine");
    assert_eq!(quarantined.len(), 7);
    assert!(
        quarantined
            .iter()
            .any(|q| q.envelope.payload == br#"{"djxh": "1", "nsrmc": "#),
        "verbatim payload kept"
    );
    let realestate = hub
        .store
        .quarantine(Some("department:realestate"), 100)
        .await
        .expect("quarantine");
    assert_eq!(realestate.len(), 2);
}

async fn a_mixed_batch_keeps_the_good_and_quarantines_the_bad(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let good = fixture("civil.marriage");
    let bad = edited("civil.assistance", |p| p["bzje"] = "七百六".into());
    let also_good = fixture("civil.assistance");
    let mut client = hub.exchange(&department("civil")).await;
    let response = client
        .push(batch(vec![good.clone(), bad.clone(), also_good.clone()]))
        .await
        .expect("push")
        .into_inner();
    let outcomes: Vec<Outcome> = response.results.iter().map(outcome).collect();
    assert_eq!(outcomes, [Outcome::Accepted, Outcome::Rejected, Outcome::Accepted]);
    assert_eq!(response.results[1].errors[0].pointer, "/bzje");
    let counts = response.counts.expect("counts");
    assert_eq!((counts.accepted, counts.rejected), (2, 1));
    assert!(hub
        .store
        .current(&good.record_type, &good.source_id)
        .await
        .expect("store")
        .is_some());
    // The bad record's id equals the good assistance record's: the good one stands.
    let held = hub
        .store
        .current(&also_good.record_type, &also_good.source_id)
        .await
        .expect("store")
        .expect("kept");
    let sent: serde_json::Value = serde_json::from_slice(&also_good.payload).expect("json");
    let kept: serde_json::Value = serde_json::from_str(&held.payload).expect("json");
    assert_eq!(kept, sent, "the good record as sent, not the bad one");
    let quarantined = hub
        .store
        .quarantine(Some("department:civil"), 10)
        .await
        .expect("quarantine");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].envelope.payload, bad.payload);
    assert_eq!(quarantined[0].identity, "department:civil");
    assert_eq!(quarantined[0].errors[0].pointer, "/bzje");
}

async fn another_departments_record_type_is_refused(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut client = hub.exchange(&department("tax")).await;
    let own = fixture("tax.taxpayer");
    let foreign = fixture("civil.marriage");
    let status = client
        .push(batch(vec![own.clone(), foreign]))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, "RECORD_TYPE_NOT_OWNED");
    assert_eq!(
        info.metadata.get("record_type").map(String::as_str),
        Some("civil.marriage")
    );
    assert_eq!(info.metadata.get("owner").map(String::as_str), Some("civil"));
    // The whole batch was refused: not even the caller's own record was stored.
    assert!(hub
        .store
        .current(&own.record_type, &own.source_id)
        .await
        .expect("store")
        .is_none());
}

async fn only_departments_push(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    for identity in [Identity::Platform, Identity::Ops, Identity::Steward("steward".into())] {
        let mut client = hub.exchange(&identity).await;
        let status = client
            .push(batch(vec![fixture("tax.taxpayer")]))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{identity}");
        assert_eq!(
            status.get_details_error_info().expect("detail").reason,
            "NOT_A_DEPARTMENT"
        );
    }
}

async fn empty_and_oversized_batches_are_invalid(kind: StoreKind) {
    let limits = Limits {
        max_batch_records: 3,
        ..Limits::default()
    };
    let hub = TestHub::start_with(kind, HubOptions::with_limits(limits)).await;
    let mut client = hub.exchange(&department("tax")).await;
    let status = client.push(batch(vec![])).await.expect_err("empty");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.get_details_bad_request().expect("BadRequest").field_violations[0].field,
        "envelopes"
    );
    let four = (0..4)
        .map(|i| {
            let mut e = fixture("tax.taxpayer");
            e.source_id = format!("9{i:019}");
            e
        })
        .collect();
    let status = client.push(batch(four)).await.expect_err("too many");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("at most 3"), "{}", status.message());
}

async fn a_message_over_the_limit_is_resource_exhausted(kind: StoreKind) {
    let limits = Limits {
        max_message_bytes: 64 * 1024,
        ..Limits::default()
    };
    let hub = TestHub::start_with(kind, HubOptions::with_limits(limits)).await;
    let mut big = fixture("tax.taxpayer");
    big.payload = String::from_utf8(big.payload)
        .expect("UTF-8 fixture")
        .replace("\"scjydz\":\"\"", &format!("\"scjydz\":\"{}\"", "海".repeat(30_000)))
        .into();
    assert!(big.payload.len() > 64 * 1024);
    let mut client = hub.exchange(&department("tax")).await;
    let status = client.push(batch(vec![big.clone()])).await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.get_details_error_info().expect("detail").reason,
        "MESSAGE_TOO_LARGE"
    );

    let requests = tokio_stream::iter(vec![batch(vec![big])]);
    let mut answers = client.push_stream(requests).await.expect("stream opens").into_inner();
    let status = answers.message().await.expect_err("too large on a stream too");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The hub still serves normal-sized batches afterwards.
    let ok = client
        .push(batch(vec![fixture("tax.taxpayer")]))
        .await
        .expect("push")
        .into_inner();
    assert_eq!(outcome(&ok.results[0]), Outcome::Accepted);
}

async fn replays_stale_and_out_of_order_versions(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let client = hub.exchange(&department("housingfund")).await;
    let v = |version: i64, base: &str| {
        let mut e = edited("housingfund.account", |p| p["jcjs"] = base.into());
        e.source_version = version;
        e
    };
    let push = |envelope: pb::Envelope| {
        let mut client = client.clone();
        async move {
            client
                .push(batch(vec![envelope]))
                .await
                .expect("push")
                .into_inner()
                .results
                .remove(0)
        }
    };
    let first = push(v(20, "5000.00")).await;
    assert_eq!((outcome(&first), first.current_version), (Outcome::Accepted, Some(20)));
    // The same envelope again, with its keys in another order: a replay.
    let mut reordered = v(20, "5000.00");
    let value: serde_json::Value = serde_json::from_slice(&reordered.payload).expect("json");
    let object = value.as_object().expect("object");
    let mut keys: Vec<&String> = object.keys().collect();
    keys.reverse();
    reordered.payload = format!(
        "{{ {} }}",
        keys.iter()
            .map(|k| format!("{:?}: {}", k, object[k.as_str()]))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .into();
    let replay = push(reordered).await;
    assert_eq!(
        (outcome(&replay), replay.current_version),
        (Outcome::Unchanged, Some(20))
    );
    let stale = push(v(10, "4000.00")).await;
    assert_eq!((outcome(&stale), stale.current_version), (Outcome::Stale, Some(20)));
    let newer = push(v(30, "6000.00")).await;
    assert_eq!((outcome(&newer), newer.current_version), (Outcome::Accepted, Some(30)));
    let older_again = push(v(25, "5500.00")).await;
    assert_eq!(
        outcome(&older_again),
        Outcome::Stale,
        "arrived out of order: history only"
    );
    let conflict = push(v(20, "9999.00")).await;
    assert_eq!(outcome(&conflict), Outcome::Rejected);
    assert_eq!(conflict.errors[0].code, "envelope.version_conflict");
    let mut withdrawn = v(40, "6000.00");
    withdrawn.deleted = true;
    assert_eq!(outcome(&push(withdrawn).await), Outcome::Accepted);

    let id = fixture("housingfund.account").source_id;
    let versions = hub.store.versions("housingfund.account", &id).await.expect("versions");
    let numbers: Vec<i64> = versions.iter().map(|v| v.source_version).collect();
    assert_eq!(numbers, [10, 20, 25, 30, 40], "every version is kept");
    assert!(
        versions[1].payload.contains("5000.00"),
        "the first copy of version 20 stands"
    );
    let current = hub
        .store
        .current("housingfund.account", &id)
        .await
        .expect("current")
        .expect("held");
    assert_eq!((current.source_version, current.deleted), (40, true));
}

async fn push_stream_answers_every_batch_in_order(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut client = hub.exchange(&department("tax")).await;
    let batches: Vec<pb::PushRequest> = (0..12)
        .map(|b| pb::PushRequest {
            batch_id: format!("batch-{b}"),
            envelopes: (0..25)
                .map(|i| {
                    let mut e = fixture("tax.taxpayer");
                    e.source_id = format!("{b:02}{i:018}");
                    if i == 7 {
                        e.payload = "[]".into();
                    }
                    e
                })
                .collect(),
        })
        .collect();
    let mut answers = client
        .push_stream(tokio_stream::iter(batches))
        .await
        .expect("stream")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(answer) = answers.message().await.expect("answer") {
        let counts = answer.counts.expect("counts");
        assert_eq!((counts.accepted, counts.rejected), (24, 1), "{}", answer.batch_id);
        assert_eq!(answer.results[7].errors[0].pointer, "");
        seen.push(answer.batch_id);
    }
    let expected: Vec<String> = (0..12).map(|b| format!("batch-{b}")).collect();
    assert_eq!(seen, expected);
    assert!(hub
        .store
        .current("tax.taxpayer", &format!("{:02}{:018}", 11, 24))
        .await
        .expect("store")
        .is_some());
}

async fn health_and_reflection_are_served(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let channel = hub.channel(&Identity::Ops).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    // The first probe of the store has answered before the hub takes a connection: the
    // first check already says SERVING, with no waiting.
    for service in ["", "tongban.v1.Exchange"] {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await.expect("health").into_inner().status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("answer").expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["tongban.v1.Exchange", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
    let mut alpha = AlphaClient::new(channel);
    let request = AlphaReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol("tongban.v1.Exchange".into())),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha")
        .into_inner();
    let response = responses.message().await.expect("answer").expect("one answer");
    assert!(
        response.message_response.is_some(),
        "v1alpha answers with the descriptor"
    );
}
