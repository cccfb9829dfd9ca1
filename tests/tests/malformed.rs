//! Malformed input over real gRPC, against both stores: payloads that are not JSON, JSON
//! nested a hundred thousand deep, strings near and above the payload limit, JSON
//! escapes that are no Unicode, a payload that is not UTF-8, and every field of every
//! record type given a value of the wrong type.
//!
//! Each defective record is REJECTED with an error pointing at its defect and a
//! quarantine ID, the good records of its batch are accepted, the quarantine keeps the
//! envelope verbatim, no error message repeats the value, and the hub stays healthy.
//! A message the protobuf decoder refuses (invalid UTF-8 in a `string` field of the
//! envelope, such as `source_id`) cannot be quarantined, there is no envelope: it gets
//! INVALID_ARGUMENT saying what is wrong, and nothing is stored.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use tongban_gateway::config::Limits;
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1::{self as pb, Outcome};
use tongban_tests::hub::{department, StoreKind, TestHub};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

tongban_tests::on_both_stores!(
    malformed_payloads_are_rejected_beside_good_records,
    a_message_the_decoder_refuses_gets_invalid_argument,
    every_field_of_the_wrong_type_is_rejected_at_its_pointer,
);

const FIXTURES: &str = include_str!("../fixtures/one_of_each.jsonl");

/// Text that must never appear in an error message: it stands for a value a department
/// sent (a name, a number), which may be personal.
const SECRET: &str = "秘密值";
const SECRET_NUMBER: i64 = 987_654_321;

/// The fixture of each record type: (record type, source id, version, payload).
fn fixtures() -> Vec<(String, String, i64, Value)> {
    FIXTURES
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("fixture line");
            (
                v["record_type"].as_str().expect("record_type").to_owned(),
                v["source_id"].as_str().expect("source_id").to_owned(),
                v["source_version"].as_i64().expect("version"),
                v["payload"].clone(),
            )
        })
        .collect()
}

fn envelope(record_type: &str, source_id: &str, version: i64, payload: impl Into<Vec<u8>>) -> pb::Envelope {
    pb::Envelope {
        record_type: record_type.to_owned(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: false,
        payload: payload.into(),
    }
}

fn outcome(result: &pb::RecordResult) -> Outcome {
    Outcome::try_from(result.outcome).expect("known outcome")
}

/// Every schema's text: a value the schema itself gives as an example or a code is no
/// value of a department's, and may be quoted in a message.
const SCHEMAS: [&str; 8] = [
    include_str!("../../schemas/tax.taxpayer.schema.json"),
    include_str!("../../schemas/hrss.insured_person.schema.json"),
    include_str!("../../schemas/market.entity.schema.json"),
    include_str!("../../schemas/realestate.title.schema.json"),
    include_str!("../../schemas/housingfund.account.schema.json"),
    include_str!("../../schemas/construction.permit.schema.json"),
    include_str!("../../schemas/civil.marriage.schema.json"),
    include_str!("../../schemas/civil.assistance.schema.json"),
];

/// The values of a payload that are personal or could be: texts with a Han character or
/// of six or more digits (names, addresses, identity numbers, phones), unless a schema
/// documents them. None may appear in an error message.
fn personal_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let s = s.trim();
            let han = s.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
            let digits = s.chars().filter(char::is_ascii_digit).count();
            let documented = SCHEMAS.iter().any(|schema| schema.contains(s));
            if ((han && s.chars().count() >= 2) || digits >= 6) && !documented {
                out.push(s.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| personal_values(v, out)),
        Value::Object(map) => map.values().for_each(|v| personal_values(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Checks what every rejection must be: a quarantine ID, and errors whose messages
/// repeat none of `forbidden`.
fn assert_clean_rejection(result: &pb::RecordResult, what: &str, forbidden: &[String]) {
    assert_eq!(outcome(result), Outcome::Rejected, "{what}: {:?}", result.errors);
    assert!(
        !result.quarantine_id.is_empty(),
        "{what}: a rejection names its quarantine entry"
    );
    assert!(!result.errors.is_empty(), "{what}: a rejection says why");
    for error in &result.errors {
        for value in forbidden {
            assert!(
                !error.message.contains(value.as_str()),
                "{what}: the message {:?} repeats the value {value:?}",
                error.message
            );
        }
    }
}

/// The quarantine of `identity` holds each of `rejected` (quarantine ID → payload sent)
/// verbatim, and nothing else.
async fn assert_quarantined_verbatim(hub: &TestHub, identity: &str, rejected: &HashMap<String, Vec<u8>>) {
    let entries = hub
        .store
        .quarantine(Some(identity), rejected.len() + 10)
        .await
        .expect("quarantine");
    assert_eq!(entries.len(), rejected.len(), "one quarantine entry per rejection");
    for entry in entries {
        let sent = rejected
            .get(&entry.id)
            .unwrap_or_else(|| panic!("quarantine entry {} answers no rejection", entry.id));
        assert!(
            entry.envelope.payload == *sent,
            "quarantine entry {} is not verbatim",
            entry.id
        );
        assert_eq!(entry.identity, identity);
    }
}

/// The hub answers health checks as SERVING and takes a good record.
async fn assert_healthy(hub: &TestHub) {
    let channel = hub.channel(&Identity::Ops).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tongban.v1.Exchange".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let (record_type, _, version, payload) = fixtures().remove(0);
    let mut client = hub.exchange(&department("tax")).await;
    let request = pb::PushRequest {
        batch_id: "after".into(),
        envelopes: vec![envelope(
            &record_type,
            "healthy-afterwards",
            version,
            payload.to_string(),
        )],
    };
    let response = client.push(request).await.expect("push").into_inner();
    assert_eq!(outcome(&response.results[0]), Outcome::Accepted);
}

async fn malformed_payloads_are_rejected_beside_good_records(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let limit = Limits::default().max_payload_bytes;
    let (record_type, good_id, version, good) = fixtures().remove(0);
    assert_eq!(record_type, "tax.taxpayer");
    let with_address = |address: String| {
        let mut payload = good.clone();
        payload["zcdz"] = Value::String(address);
        payload.to_string()
    };
    let near_limit = with_address(SECRET.repeat((limit - good.to_string().len() - 64) / SECRET.len()));
    assert!(near_limit.len() > limit - 128 && near_limit.len() <= limit);
    let above_limit = with_address(SECRET.repeat(limit / SECRET.len() + 1));

    // (payload, pointer of the error, code of the error)
    let text_cases: Vec<(String, &str, &str)> = vec![
        (format!(r#"{{"djxh": "1", "nsrmc": "{SECRET}"#), "", "payload.not_json"),
        (format!(r#"{{"djxh": "1"}} {SECRET}"#), "", "payload.not_json"),
        (format!(r#"{{"djxh": '{SECRET}'}}"#), "", "payload.not_json"),
        (String::new(), "", "payload.not_json"),
        (format!("\u{FEFF}{good}"), "", "payload.not_json"),
        ("[".repeat(100_000), "", "payload.not_json"),
        (
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "",
            "payload.not_json",
        ),
        (
            format!("{}1{}", r#"{"a":"#.repeat(40_000), "}".repeat(40_000)),
            "",
            "payload.not_json",
        ),
        // A JSON escape that is no Unicode scalar value: the JSON form of invalid UTF-8.
        (
            with_address(String::new()).replace(r#""zcdz":"""#, r#""zcdz":"\ud800""#),
            "",
            "payload.not_json",
        ),
        (near_limit.clone(), "/zcdz", "schema.maxLength"),
        (above_limit.clone(), "", "payload.too_large"),
        ("null".to_owned(), "", "schema.type"),
        (format!(r#"["{SECRET}"]"#), "", "schema.type"),
        (
            good.to_string().replace(r#""nsrlx":"3""#, r#""nsrlx":1e999999"#),
            "/nsrlx",
            "schema.type",
        ),
    ];
    let mut cases: Vec<(Vec<u8>, &str, &str)> = text_cases
        .into_iter()
        .map(|(payload, pointer, code)| (payload.into_bytes(), pointer, code))
        .collect();
    // GBK, as an export not converted to UTF-8 carries it: 王伟 is CD F5 CE B0.
    let mut gbk = good.to_string().into_bytes();
    let name = "\"nsrmc\":\"".as_bytes();
    let at = gbk
        .windows(name.len())
        .position(|w| w == name)
        .expect("nsrmc in the fixture")
        + name.len();
    gbk.splice(at..at, [0xCD, 0xF5, 0xCE, 0xB0]);
    assert!(std::str::from_utf8(&gbk).is_err());
    cases.push((gbk, "", "payload.not_utf8"));
    // The good records first, last, and in between.
    let mut envelopes = vec![envelope(&record_type, &good_id, version, good.to_string())];
    for (i, (payload, _, _)) in cases.iter().enumerate() {
        envelopes.push(envelope(&record_type, &format!("bad-{i}"), version, payload.clone()));
        if i == cases.len() / 2 {
            envelopes.push(envelope(&record_type, "good-2", version, good.to_string()));
        }
    }
    envelopes.push(envelope(&record_type, "good-3", version, good.to_string()));

    let mut client = hub.exchange(&department("tax")).await;
    let request = pb::PushRequest {
        batch_id: "malformed".into(),
        envelopes: envelopes.clone(),
    };
    let response = client.push(request).await.expect("push").into_inner();
    assert_eq!(response.results.len(), envelopes.len());

    let forbidden = vec![SECRET.to_owned()];
    let mut rejected = HashMap::new();
    for (sent, result) in envelopes.iter().zip(&response.results) {
        let Some(i) = sent.source_id.strip_prefix("bad-") else {
            assert_eq!(
                outcome(result),
                Outcome::Accepted,
                "{}: {:?}",
                sent.source_id,
                result.errors
            );
            continue;
        };
        let (_, pointer, code) = &cases[i.parse::<usize>().expect("case number")];
        let what = format!("case {i} ({code} at {pointer:?})");
        assert_clean_rejection(result, &what, &forbidden);
        assert!(
            result.errors.iter().any(|e| e.pointer == *pointer && e.code == *code),
            "{what}: got {:?}",
            result.errors
        );
        rejected.insert(result.quarantine_id.clone(), sent.payload.clone());
        let held = hub.store.current(&record_type, &sent.source_id).await.expect("store");
        assert!(held.is_none(), "{what}: nothing of a rejected record is current");
    }
    assert_eq!(rejected.len(), cases.len());
    let counts = response.counts.expect("counts");
    assert_eq!((counts.accepted, counts.rejected), (3, cases.len() as u32));
    assert_quarantined_verbatim(&hub, "department:tax", &rejected).await;
    assert_healthy(&hub).await;
}

/// The wire form of a push whose envelope's `source_id` is bytes rather than a string:
/// the same field numbers as `tongban.v1.PushRequest`, so the hub reads it as one, but
/// free to carry bytes that are not UTF-8 where protobuf requires text.
#[derive(Clone, PartialEq, prost::Message)]
struct RawPushRequest {
    #[prost(string, tag = "1")]
    batch_id: String,
    #[prost(message, repeated, tag = "2")]
    envelopes: Vec<RawEnvelope>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawEnvelope {
    #[prost(string, tag = "1")]
    record_type: String,
    #[prost(bytes = "vec", tag = "2")]
    source_id: Vec<u8>,
    #[prost(int64, tag = "3")]
    source_version: i64,
    #[prost(bool, tag = "4")]
    deleted: bool,
    #[prost(bytes = "vec", tag = "5")]
    payload: Vec<u8>,
}

async fn a_message_the_decoder_refuses_gets_invalid_argument(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let (record_type, source_id, version, good) = fixtures().remove(0);
    let request = RawPushRequest {
        batch_id: "gbk".into(),
        envelopes: vec![
            RawEnvelope {
                record_type: record_type.clone(),
                source_id: source_id.clone().into_bytes(),
                source_version: version,
                deleted: false,
                payload: good.to_string().into_bytes(),
            },
            RawEnvelope {
                record_type: record_type.clone(),
                // 王伟 in GBK: a key typed into a system that stores GBK.
                source_id: vec![0xCD, 0xF5, 0xCE, 0xB0],
                source_version: version,
                deleted: false,
                payload: good.to_string().into_bytes(),
            },
        ],
    };

    let channel = hub.channel(&department("tax")).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    for method in ["Push", "PushStream"] {
        grpc.ready().await.expect("channel ready");
        let path = PathAndQuery::try_from(format!("/tongban.v1.Exchange/{method}")).expect("path");
        let codec = tonic_prost::ProstCodec::<RawPushRequest, pb::PushResponse>::default();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            if method == "Push" {
                grpc.unary(tonic::Request::new(request.clone()), path, codec)
                    .await
                    .map(|r| r.into_inner())
            } else {
                let requests = tokio_stream::iter(vec![request.clone()]);
                let mut answers = grpc
                    .streaming(tonic::Request::new(requests), path, codec)
                    .await?
                    .into_inner();
                answers
                    .message()
                    .await?
                    .ok_or_else(|| tonic::Status::unknown("the stream closed without an answer"))
            }
        })
        .await
        .expect("the hub answers, it does not hang");
        let status = answer.expect_err("a message the decoder refuses is refused");
        // There is no envelope to quarantine: the caller is told the message itself is
        // malformed (not a fault of the hub), what is wrong and where.
        assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
        assert!(status.message().contains("UTF-8"), "{method}: {:?}", status.message());
        assert!(
            status.message().contains("source_id"),
            "{method}: {:?}",
            status.message()
        );
        assert!(
            status.message().contains("nothing of it was stored"),
            "{method}: {:?}",
            status.message()
        );
    }
    // Nothing of the refused messages was stored or quarantined, the good record included.
    assert!(hub
        .store
        .current(&record_type, &source_id)
        .await
        .expect("store")
        .is_none());
    assert!(hub.store.quarantine(None, 10).await.expect("quarantine").is_empty());
    assert_healthy(&hub).await;
}

/// Every JSON Pointer in `value` but the root, in document order.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => return,
    };
    for (token, child) in children {
        let pointer = format!("{prefix}/{token}");
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

fn same_json_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

async fn every_field_of_the_wrong_type_is_rejected_at_its_pointer(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let wrong_values = [
        json!(SECRET_NUMBER),
        json!({ "x": SECRET }),
        json!([SECRET]),
        json!(true),
        Value::Null,
    ];
    let mut rejected_by_department: BTreeMap<String, HashMap<String, Vec<u8>>> = BTreeMap::new();
    let mut cases = 0;
    for (record_type, source_id, version, good) in fixtures() {
        let mut forbidden = vec![SECRET.to_owned(), SECRET_NUMBER.to_string()];
        personal_values(&good, &mut forbidden);
        let mut fields = Vec::new();
        pointers(&good, "", &mut fields);
        let mut envelopes = vec![envelope(&record_type, &source_id, version, good.to_string())];
        let mut wrong = Vec::new();
        for pointer in &fields {
            let original = good.pointer(pointer).expect("pointer into the fixture");
            for value in wrong_values.iter().filter(|v| !same_json_type(v, original)) {
                let mut payload = good.clone();
                *payload.pointer_mut(pointer).expect("pointer") = value.clone();
                envelopes.push(envelope(
                    &record_type,
                    &format!("wrong-{}", wrong.len()),
                    version,
                    payload.to_string(),
                ));
                wrong.push(pointer.clone());
            }
        }
        assert!(wrong.len() >= 4 * 6, "{record_type}: every field tried");
        cases += wrong.len();

        let dept = record_type.split('.').next().expect("department");
        let mut client = hub.exchange(&department(dept)).await;
        let request = pb::PushRequest {
            batch_id: record_type.clone(),
            envelopes: envelopes.clone(),
        };
        let response = client.push(request).await.expect("push").into_inner();
        assert_eq!(
            outcome(&response.results[0]),
            Outcome::Accepted,
            "{record_type}: the good record of the batch: {:?}",
            response.results[0].errors
        );
        let rejected = rejected_by_department.entry(format!("department:{dept}")).or_default();
        for ((sent, result), pointer) in envelopes[1..].iter().zip(&response.results[1..]).zip(&wrong) {
            let what = format!("{record_type}, wrong type at {pointer}");
            assert_clean_rejection(result, &what, &forbidden);
            assert!(
                result.errors.iter().any(|e| e.pointer == *pointer),
                "{record_type}: wrong type at {pointer}, errors at {:?}",
                result.errors.iter().map(|e| (&e.pointer, &e.code)).collect::<Vec<_>>()
            );
            rejected.insert(result.quarantine_id.clone(), sent.payload.clone());
        }
    }
    assert!(cases > 300, "{cases} wrong-type cases");
    for (identity, rejected) in &rejected_by_department {
        assert_quarantined_verbatim(&hub, identity, rejected).await;
    }
    assert_healthy(&hub).await;
}
