//! An independent gRPC client (Python's grpcio, stubs generated from `proto/`) pushes
//! with a department certificate and gets the same answers as the Rust client.
//!
//! Needs a Python with grpcio and grpcio-tools: `TONGBAN_PYTHON` (scripts/test sets it
//! up in target/python-venv), else `python3` if it has them.

use std::io::Write;
use std::process::Command;

use serde_json::{json, Value};
use tongban_proto::v1 as pb;
use tongban_tests::hub::{department, StoreKind, TestHub};

fn python() -> String {
    if let Ok(python) = std::env::var("TONGBAN_PYTHON") {
        return python;
    }
    let has_grpc = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_grpc,
        "this test needs Python with grpcio and grpcio-tools: run scripts/test, or set TONGBAN_PYTHON \
         to a python that has them (pip install -r tests/python/requirements.txt)"
    );
    "python3".to_owned()
}

/// A tax department's file: new records, a replay, an older version, and defects.
fn tax_file() -> Vec<Value> {
    let fixture = include_str!("../fixtures/one_of_each.jsonl")
        .lines()
        .next()
        .expect("tax fixture");
    let base: Value = serde_json::from_str(fixture).expect("fixture");
    let with = |id: &str, version: i64, edit: &dyn Fn(&mut Value)| {
        let mut e = base.clone();
        e["source_id"] = id.into();
        e["payload"]["djxh"] = id.into();
        e["source_version"] = version.into();
        edit(&mut e["payload"]);
        e
    };
    vec![
        with("20000000000000000001", 100, &|_| {}),
        with("20000000000000000002", 100, &|p| p["nsrmc"] = "陳　偉".into()),
        with("20000000000000000001", 100, &|_| {}),
        with("20000000000000000001", 50, &|p| p["lxdh"] = "".into()),
        with("20000000000000000003", 100, &|p| p["djrq"] = "2019-05-16".into()),
        with("20000000000000000004", 100, &|p| {
            p.as_object_mut().map(|o| o.remove("nsrmc"));
        }),
        with("20000000000000000005", 100, &|p| p["nsrlx"] = json!(3)),
        with("20000000000000000001", 100, &|p| p["zcdz"] = "另一个地址".into()),
    ]
}

fn summary(result: &pb::RecordResult) -> Value {
    json!({
        "record_type": result.record_type,
        "source_id": result.source_id,
        "outcome": pb::Outcome::try_from(result.outcome).expect("outcome").as_str_name(),
        "current_version": result.current_version,
        "errors": result.errors.iter().map(|e| json!({"pointer": e.pointer, "code": e.code})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn python_grpcio_gets_the_same_answers_as_the_rust_client() {
    let records = tax_file();
    let tax = department("tax");

    // The Rust client, against one hub.
    let rust_hub = TestHub::start(StoreKind::Embedded).await;
    let mut client = rust_hub.exchange(&tax).await;
    let envelopes = records
        .iter()
        .map(|e| pb::Envelope {
            record_type: e["record_type"].as_str().expect("type").to_owned(),
            source_id: e["source_id"].as_str().expect("id").to_owned(),
            source_version: e["source_version"].as_i64().expect("version"),
            deleted: false,
            payload: e["payload"].to_string().into(),
        })
        .collect();
    let response = client
        .push(pb::PushRequest {
            batch_id: "0".into(),
            envelopes,
        })
        .await
        .expect("push")
        .into_inner();
    let rust_answers: Vec<Value> = response.results.iter().map(summary).collect();

    // Python, against a fresh hub of its own.
    let python_hub = TestHub::start(StoreKind::Embedded).await;
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for record in &records {
        writeln!(file, "{record}").expect("write");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/push_client.py");
    let endpoint = python_hub.endpoint.trim_start_matches("https://").to_owned();
    let identity_dir = python_hub.pki.identity_dir(&tax);
    let ca = python_hub.pki.ca_cert();
    let file_path = file.path().to_owned();
    let python = python();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--endpoint", &endpoint])
            .arg("--identity")
            .arg(identity_dir)
            .arg("--ca")
            .arg(ca)
            .arg("--file")
            .arg(file_path)
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    assert!(
        output.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python_answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("python prints JSON lines"))
        .collect();

    assert_eq!(python_answers, rust_answers);
    // And the answers are the interesting ones, not all alike.
    let outcomes: Vec<&str> = rust_answers
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        outcomes,
        [
            "OUTCOME_ACCEPTED",
            "OUTCOME_ACCEPTED",
            "OUTCOME_UNCHANGED",
            "OUTCOME_STALE",
            "OUTCOME_REJECTED",
            "OUTCOME_REJECTED",
            "OUTCOME_REJECTED",
            "OUTCOME_REJECTED"
        ]
    );
}
