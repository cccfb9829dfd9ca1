//! Operational statistics over real gRPC with mutual TLS, against both stores: pushes
//! of two departments (accepted, a replay, a stale copy, a rejected record, a batch
//! refused as a whole), lookups that do and do not spare a department a repeated
//! collection; `Operations.Statistics` as ops counts exactly those, and only ops may
//! call it. A second hub process over the same store adds its counts when it stops.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use tongban_gateway::client;
use tongban_gateway::identity::Identity;
use tongban_gateway::server::{self, ServerSettings};
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_proto::v1::operations_client::OperationsClient;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tongban_tests::unified::{env, lookup, lookup_id, outcome, push, unified};
use tonic::Code;

tongban_tests::on_both_stores!(ops_sees_exactly_the_traffic_and_nobody_else_does);

fn taxpayer(source_id: &str, registered: &str) -> Value {
    json!({"djxh": source_id, "nsrsbh": "37062919790315001X", "nsrmc": "陈伟", "nsrlx": "3",
           "zjlx_dm": "201", "fddbr_xm": "", "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "zcdz": "", "scjydz": "",
           "lxdh": "", "hy_dm": "", "djrq": registered, "nsrzt_dm": "03", "swjg_dm": "13706870000"})
}

/// The hrss golden record: a person insured by an employer.
fn insured_person() -> pb::Envelope {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/golden/hrss.insured_person.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let envelope = &fixture["envelope"];
    env(
        envelope["record_type"].as_str().expect("record_type"),
        envelope["source_id"].as_str().expect("source_id"),
        envelope["source_version"].as_i64().expect("source_version"),
        envelope["payload"].clone(),
    )
}

async fn operations(hub: &TestHub, identity: &Identity) -> OperationsClient<tonic::transport::Channel> {
    OperationsClient::new(hub.channel(identity).await)
}

/// The statistics of the last 24 hours in hour windows, as ops.
async fn statistics(hub: &TestHub) -> pb::StatisticsResponse {
    operations(hub, &Identity::Ops)
        .await
        .statistics(pb::StatisticsRequest::default())
        .await
        .expect("statistics as ops")
        .into_inner()
}

fn total<'a>(response: &'a pb::StatisticsResponse, department: &str) -> &'a pb::TrafficWindow {
    response
        .totals
        .iter()
        .find(|t| t.department == department)
        .unwrap_or_else(|| panic!("no totals of {department}: {response:?}"))
}

fn records(window: &pb::TrafficWindow) -> pb::RecordCounts {
    window.records.expect("record counts")
}

/// How the mentions of accepted results were resolved, as the push results say.
fn resolved_by(results: &[pb::RecordResult]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for result in results.iter().filter(|r| outcome(r) == pb::Outcome::Accepted) {
        for mention in &result.mentions {
            *counts.entry(mention.resolved_by.clone()).or_default() += 1;
            if mention.matched_existing {
                *counts.entry("existing".to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

fn resolutions_map(counts: &pb::RecordCounts) -> BTreeMap<String, u64> {
    let r = counts.resolutions.expect("resolutions");
    [
        ("key", r.key),
        ("previous", r.previous),
        ("matched", r.matched),
        ("founded", r.founded),
        ("queued", r.queued),
        ("steward", r.steward),
        ("existing", r.existing),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_owned(), n))
    .collect()
}

async fn ops_sees_exactly_the_traffic_and_nobody_else_does(kind: StoreKind) {
    let mut hub = TestHub::start(kind).await;
    let mut tax = hub.exchange(&department("tax")).await;
    let mut hrss = hub.exchange(&department("hrss")).await;

    // tax: an accepted record and a rejected one; then a replay and a stale copy.
    let first = push(
        &mut tax,
        "tax-1",
        vec![
            env(
                "tax.taxpayer",
                "10137060000000001",
                2,
                taxpayer("10137060000000001", "20190516"),
            ),
            env("tax.taxpayer", "10137060000000002", 1, json!({})),
        ],
    )
    .await;
    assert_eq!(
        first.iter().map(outcome).collect::<Vec<_>>(),
        [pb::Outcome::Accepted, pb::Outcome::Rejected]
    );
    let second = push(
        &mut tax,
        "tax-2",
        vec![
            env(
                "tax.taxpayer",
                "10137060000000001",
                2,
                taxpayer("10137060000000001", "20190516"),
            ),
            env(
                "tax.taxpayer",
                "10137060000000001",
                1,
                taxpayer("10137060000000001", "20180101"),
            ),
        ],
    )
    .await;
    assert_eq!(
        second.iter().map(outcome).collect::<Vec<_>>(),
        [pb::Outcome::Unchanged, pb::Outcome::Stale]
    );
    // A batch refused as a whole: tax may not push hrss records.
    let refused = tax
        .push(pb::PushRequest {
            batch_id: "tax-3".to_owned(),
            envelopes: vec![insured_person()],
        })
        .await
        .expect_err("a foreign record type refuses the batch");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // hrss: one accepted record.
    let insured = push(&mut hrss, "hrss-1", vec![insured_person()]).await;
    assert_eq!(outcome(&insured[0]), pb::Outcome::Accepted);

    let chen_wei = first[0].mentions[0].unified_id.clone();
    let sun_li = insured[0]
        .mentions
        .iter()
        .find(|m| m.role == "insured")
        .expect("the insured person")
        .unified_id
        .clone();

    // tax looks up its own taxpayer (nothing another department collected) and hrss's
    // insured person (her name comes from hrss: a repeated collection avoided).
    let mut tax_reader = unified(&hub, &department("tax")).await;
    let case = "case 2026-0042";
    let by_id = |id: &str| pb::lookup_request::By::UnifiedId(id.to_owned());
    let own = lookup(&mut tax_reader, by_id(&chen_wei), case, &[]).await.expect("own");
    assert!(own.record.contains("陈伟"), "{}", own.record);
    let other = lookup(&mut tax_reader, by_id(&sun_li), case, &[])
        .await
        .expect("other's");
    assert!(other.record.contains("孙丽"), "{}", other.record);
    // Refused lookups are not counted.
    let no_purpose = lookup(&mut tax_reader, by_id(&sun_li), "", &[]).await;
    assert_eq!(no_purpose.expect_err("no purpose").code(), Code::InvalidArgument);
    // The platform reads everything; its lookups count under "platform", never as avoided.
    let mut platform = unified(&hub, &Identity::Platform).await;
    lookup_id(&mut platform, &sun_li).await.expect("platform lookup");

    // Only ops reads the statistics.
    for identity in [
        department("tax"),
        Identity::Platform,
        Identity::Steward("li".to_owned()),
    ] {
        let denied = operations(&hub, &identity)
            .await
            .statistics(pb::StatisticsRequest::default())
            .await
            .expect_err("only ops");
        assert_eq!(denied.code(), Code::PermissionDenied, "{identity}: {denied:?}");
    }

    let response = statistics(&hub).await;
    assert_eq!(response.window_minutes, 60);
    assert!(
        (24 * 3600..=25 * 3600).contains(&(response.until - response.since)),
        "24 hours widened to whole hours: {response:?}"
    );
    let departments: Vec<&str> = response.totals.iter().map(|t| t.department.as_str()).collect();
    assert_eq!(departments, ["hrss", "platform", "tax"], "{response:?}");

    let tax_total = total(&response, "tax");
    let tax_records = records(tax_total);
    assert_eq!(
        (
            tax_records.received,
            tax_records.accepted,
            tax_records.unchanged,
            tax_records.stale,
            tax_records.rejected
        ),
        (4, 1, 1, 1, 1),
        "{tax_total:?}"
    );
    assert_eq!((tax_total.batches, tax_total.batches_refused), (2, 1));
    assert_eq!((tax_total.lookups, tax_total.repeated_collections_avoided), (2, 1));
    assert_eq!(resolutions_map(&tax_records), resolved_by(&first));
    assert!(!resolutions_map(&tax_records).is_empty());
    assert_eq!(tax_total.record_types.len(), 1);
    assert_eq!(tax_total.record_types[0].record_type, "tax.taxpayer");
    assert_eq!(tax_total.record_types[0].records.as_ref(), Some(&tax_records));
    let (p50, p90, p99) = (
        tax_total.latency_p50_ms,
        tax_total.latency_p90_ms,
        tax_total.latency_p99_ms,
    );
    assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99, "{p50} {p90} {p99}");

    let hrss_total = total(&response, "hrss");
    let hrss_records = records(hrss_total);
    assert_eq!((hrss_records.received, hrss_records.accepted), (1, 1));
    assert_eq!((hrss_total.batches, hrss_total.batches_refused), (1, 0));
    assert_eq!(resolutions_map(&hrss_records), resolved_by(&insured));
    assert_eq!(hrss_total.lookups, 0);
    assert!(hrss_total.latency_p50_ms > 0.0);

    let platform_total = total(&response, "platform");
    assert_eq!(
        (platform_total.lookups, platform_total.repeated_collections_avoided),
        (1, 0)
    );
    assert_eq!(records(platform_total).received, 0);

    // The windows add up to the totals (the test may straddle an hour).
    let tax_windows: Vec<&pb::TrafficWindow> = response.windows.iter().filter(|w| w.department == "tax").collect();
    assert!(!tax_windows.is_empty());
    assert_eq!(tax_windows.iter().map(|w| records(w).received).sum::<u64>(), 4);
    assert!(tax_windows
        .iter()
        .all(|w| w.window_start % 3600 == 0 && w.window_start >= response.since));

    // A department filter.
    let only_hrss = operations(&hub, &Identity::Ops)
        .await
        .statistics(pb::StatisticsRequest {
            department: "hrss".to_owned(),
            window_minutes: 1,
            ..Default::default()
        })
        .await
        .expect("statistics")
        .into_inner();
    assert_eq!(only_hrss.totals.len(), 1);
    assert_eq!(records(&only_hrss.totals[0]).accepted, 1);
    assert!(only_hrss.windows.iter().all(|w| w.department == "hrss"));
    // A range that is not one.
    let backwards = operations(&hub, &Identity::Ops)
        .await
        .statistics(pb::StatisticsRequest {
            since: 2_000_000_000,
            until: 1_000_000_000,
            ..Default::default()
        })
        .await
        .expect_err("since after until");
    assert_eq!(backwards.code(), Code::InvalidArgument);

    // A second hub process over the same store (a replica) adds its counts when it
    // stops; asking twice counts nothing twice.
    let settings = ServerSettings::development(&hub.pki, HashSet::new()).expect("settings");
    let listener = server::bind(([127, 0, 0, 1], 0).into()).await.expect("bind");
    let replica = server::start(listener, settings, hub.store.clone()).expect("replica");
    let mut replica_tax = client::connect(&format!("https://{}", replica.addr), &hub.identity(&department("tax")))
        .await
        .expect("connect to the replica");
    push(
        &mut replica_tax,
        "tax-4",
        vec![env("tax.taxpayer", "10137060000000003", 1, json!({}))],
    )
    .await;
    replica.shutdown().await.expect("replica stopped");
    let after = statistics(&hub).await;
    let tax_after = records(total(&after, "tax"));
    assert_eq!((tax_after.received, tax_after.rejected), (5, 2), "{after:?}");
    assert_eq!(total(&after, "tax").batches, 3);
    assert_eq!(total(&after, "tax").lookups, 2, "nothing counted twice");

    // Statistics survive the hub: it stores what it counted when it stops.
    let mut tax_reader = unified(&hub, &department("tax")).await;
    lookup(&mut tax_reader, by_id(&sun_li), case, &[])
        .await
        .expect("lookup");
    hub.stop().await;
    let rows = hub.store.traffic(0, i64::MAX, 60, None).await.expect("traffic rows");
    let stored = |department: &str, counter: &str| -> i64 {
        rows.iter()
            .filter(|r| r.department == department && r.counter == counter)
            .map(|r| r.n)
            .sum()
    };
    assert_eq!(stored("tax", "lookups"), 3);
    assert_eq!(stored("tax", "collections_avoided"), 2);
    assert_eq!(stored("tax", "accepted"), 1);
    // Nothing in them names anyone.
    for row in &rows {
        for text in [&row.department, &row.record_type, &row.counter] {
            assert!(
                !text.contains("3706") && !text.contains('P') && !text.contains('陈'),
                "{row:?}"
            );
        }
    }
}
