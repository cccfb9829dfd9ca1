//! Data-quality reports over real gRPC with mutual TLS, against both stores: a
//! department sees exactly its own defective records with the right codes and counts,
//! a corrected version drops out, pages return every record once, nobody else sees or
//! may ask for them, a value contradicting the authoritative department is reported,
//! and a store of schema version 4 upgrades with its flags filled in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde_json::json;
use tongban_adapters::model::FlagCode;
use tongban_gateway::audit::{verify, ChainReport};
use tongban_gateway::identity::Identity;
use tongban_gateway::quality::{FlagCounts, FlagFilter, FlaggedRecord};
use tongban_gateway::store::{AnyStore, AuditEntry, Store};
use tongban_proto::v1 as pb;
use tongban_proto::v1::quality_client::QualityClient;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tongban_tests::unified::{env, outcome, owner, push};
use tonic::transport::Channel;
use tonic::Code;

tongban_tests::on_both_stores!(
    a_department_sees_its_defective_records_until_corrected,
    pages_return_every_flagged_record_once,
    nobody_else_sees_or_may_ask_for_a_departments_report,
    a_value_contradicting_the_authority_is_reported_until_corrected,
    a_store_of_schema_version_4_upgrades_with_its_flags_and_audit_chain,
);

/// 陈伟, born 1979-03-15, male: a valid resident identity number.
const CHEN_WEI: &str = "37062919790315001X";
/// Born 1981-04-02, female.
const WIFE: &str = "370687198104020022";
/// Born 1988-05-12, female; and the same with a wrong check digit.
const LI_NA: &str = "370687198805120405";
const LI_NA_TYPO: &str = "370687198805120401";
/// A valid unified social credit code.
const USCC: &str = "91370687MA3CNP9K89";

/// An insured person working for unit `U1` (which gives no credit code); `source_id`
/// is `grbh-U1`.
fn insured(grbh: &str, sfzhm: &str, name: &str, xb: &str, csrq: &str, cbzt: &str) -> pb::Envelope {
    insured_v(grbh, 1, sfzhm, name, xb, csrq, cbzt)
}

fn insured_v(grbh: &str, version: i64, sfzhm: &str, name: &str, xb: &str, csrq: &str, cbzt: &str) -> pb::Envelope {
    env(
        "hrss.insured_person",
        &format!("{grbh}-U1"),
        version,
        json!({"grbh": grbh, "zjlx": "01", "sfzhm": sfzhm, "xm": name, "xb": xb, "csrq": csrq, "mz": "01",
               "lxdh": "", "hjdz": "", "jzdz": "", "dwbh": "U1", "dwmc": "海阳市第一号单位",
               "dwtyshxydm": "", "cbzt": cbzt, "xzlx": ["110", "310"], "cbrq": "2008-03-01", "sbkh": ""}),
    )
}

fn tax_unit(djxh: &str, version: i64, uscc: &str, name: &str) -> pb::Envelope {
    env(
        "tax.taxpayer",
        djxh,
        version,
        json!({"djxh": djxh, "nsrsbh": uscc, "nsrmc": name, "nsrlx": "1", "zjlx_dm": "", "fddbrxm": "",
               "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "zcdz": "", "scjydz": "", "lxdh": "", "hy_dm": "",
               "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"}),
    )
}

fn market(ztid: &str, uscc: &str, name: &str) -> pb::Envelope {
    env(
        "market.entity",
        ztid,
        1,
        json!({"ztid": ztid, "tyshxydm": uscc, "zch": "", "ztmc": name, "ztlx": "1100", "fddbr": "张三",
               "fddbr_zjlx": "10", "fddbr_zjhm": "", "zczb": "50万元", "clrq": "2010年5月1日",
               "zs": "海阳市东村街道", "jyfw": "", "djzt": "存续", "djjg": "海阳市市场监督管理局", "lxdh": ""}),
    )
}

/// Pushes envelopes (all of one department) and expects every one accepted.
async fn push_accepted(hub: &TestHub, envelopes: Vec<pb::Envelope>) -> Vec<pb::RecordResult> {
    let mut client = hub.exchange(&owner(&envelopes[0].record_type)).await;
    let results = push(&mut client, "quality", envelopes).await;
    for result in &results {
        assert_eq!(
            outcome(result),
            pb::Outcome::Accepted,
            "{} {}: {:?}",
            result.record_type,
            result.source_id,
            result.errors
        );
    }
    results
}

async fn client(hub: &TestHub, identity: &Identity) -> QualityClient<Channel> {
    QualityClient::new(hub.channel(identity).await)
}

fn request(page_size: u32, after: &str) -> pb::QualityReportRequest {
    pb::QualityReportRequest {
        page_size,
        after: after.to_owned(),
        ..Default::default()
    }
}

async fn report(client: &mut QualityClient<Channel>, request: pb::QualityReportRequest) -> pb::QualityReportResponse {
    client.report(request).await.expect("report").into_inner()
}

/// Every page of a report, followed to the end: the first page's counts and all records.
async fn whole_report(
    client: &mut QualityClient<Channel>,
    mut request: pb::QualityReportRequest,
) -> (pb::QualityReportResponse, Vec<pb::FlaggedRecord>) {
    let first = report(client, request.clone()).await;
    let mut records = first.records.clone();
    let mut next = first.next_after.clone();
    while !next.is_empty() {
        request.after = next;
        let page = report(client, request.clone()).await;
        assert_eq!(page.counts, first.counts, "counts are over everything, on every page");
        records.extend(page.records);
        next = page.next_after;
    }
    (first, records)
}

/// Source ID → the codes of its flags.
fn codes(records: &[pb::FlaggedRecord]) -> BTreeMap<String, BTreeSet<String>> {
    records
        .iter()
        .map(|r| (r.source_id.clone(), r.flags.iter().map(|f| f.code.clone()).collect()))
        .collect()
}

fn counts(response: &pb::QualityReportResponse) -> BTreeMap<(String, String), u64> {
    response
        .counts
        .iter()
        .map(|c| ((c.record_type.clone(), c.code.clone()), c.records))
        .collect()
}

fn expected<const N: usize>(entries: [(&str, &[&str]); N]) -> BTreeMap<String, BTreeSet<String>> {
    entries
        .into_iter()
        .map(|(id, codes)| (id.to_owned(), codes.iter().map(|c| (*c).to_owned()).collect()))
        .collect()
}

fn no_value_in(records: &[pb::FlaggedRecord], values: &[&str]) {
    for record in records {
        for flag in &record.flags {
            for value in values {
                assert!(
                    !flag.message.contains(value) && !flag.pointer.contains(value),
                    "{flag:?} gives a value away"
                );
            }
        }
    }
}

async fn a_department_sees_its_defective_records_until_corrected(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let hrss = department("hrss");
    push_accepted(
        &hub,
        vec![
            insured("G1", CHEN_WEI, "陈伟", "1", "1979-03-15", "1"),
            insured("G2", LI_NA_TYPO, "李娜", "2", "1988-05-12", "1"),
            insured("G3", WIFE, "王芳", "2", "1981-04-03", "1"),
            insured("G4", LI_NA, "李娜", "2", "1988-05-12", "7"),
        ],
    )
    .await;

    let mut quality = client(&hub, &hrss).await;
    let (first, records) = whole_report(&mut quality, request(0, "")).await;
    assert_eq!(
        codes(&records),
        expected([
            ("G2-U1", &["WRONG_CHECK_CHARACTER"]),
            ("G3-U1", &["BIRTH_DATE_DISAGREES"]),
            ("G4-U1", &["UNKNOWN_CODE"]),
        ]),
        "{records:?}"
    );
    let pointers: BTreeMap<String, Vec<String>> = records
        .iter()
        .map(|r| (r.source_id.clone(), r.flags.iter().map(|f| f.pointer.clone()).collect()))
        .collect();
    assert_eq!(pointers["G2-U1"], vec!["/sfzhm"]);
    assert_eq!(pointers["G3-U1"], vec!["/csrq"]);
    assert_eq!(pointers["G4-U1"], vec!["/cbzt"]);
    assert!(records
        .iter()
        .all(|r| r.record_type == "hrss.insured_person" && r.source_version == 1));
    assert_eq!(first.flagged_records, 3);
    let person = |code: &str| ("hrss.insured_person".to_owned(), code.to_owned());
    assert_eq!(
        counts(&first),
        BTreeMap::from([
            (person("BIRTH_DATE_DISAGREES"), 1),
            (person("UNKNOWN_CODE"), 1),
            (person("WRONG_CHECK_CHARACTER"), 1),
        ])
    );
    no_value_in(&records, &[LI_NA_TYPO, WIFE, "1981-04-03", "李娜", "王芳"]);

    // A filter on the code narrows the records and the counts alike.
    let only = report(
        &mut quality,
        pb::QualityReportRequest {
            code: "wrong_check_character".to_owned(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(codes(&only.records), expected([("G2-U1", &["WRONG_CHECK_CHARACTER"])]));
    assert_eq!(only.flagged_records, 1);
    assert_eq!(counts(&only), BTreeMap::from([(person("WRONG_CHECK_CHARACTER"), 1)]));

    // Corrected at the source: the new version drops out; a stale copy changes nothing.
    push_accepted(&hub, vec![insured_v("G2", 2, LI_NA, "李娜", "2", "1988-05-12", "1")]).await;
    let (after_fix, records) = whole_report(&mut quality, request(0, "")).await;
    assert_eq!(
        codes(&records),
        expected([("G3-U1", &["BIRTH_DATE_DISAGREES"]), ("G4-U1", &["UNKNOWN_CODE"])])
    );
    assert_eq!(after_fix.flagged_records, 2);
    assert!(!counts(&after_fix).contains_key(&person("WRONG_CHECK_CHARACTER")));

    // A new version that is still defective is reported at its version; a withdrawn
    // record is not reported at all.
    push_accepted(&hub, vec![insured_v("G4", 3, LI_NA, "李娜", "2", "1988-05-12", "8")]).await;
    let mut withdrawn = insured_v("G3", 2, WIFE, "王芳", "2", "1981-04-03", "1");
    withdrawn.deleted = true;
    push_accepted(&hub, vec![withdrawn]).await;
    let (_, records) = whole_report(&mut quality, request(0, "")).await;
    assert_eq!(codes(&records), expected([("G4-U1", &["UNKNOWN_CODE"])]));
    assert_eq!(records[0].source_version, 3);

    // Bad requests.
    for (request, code) in [
        (
            pb::QualityReportRequest {
                code: "NO_SUCH_CODE".to_owned(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::QualityReportRequest {
                record_type: "hrss.nobody".to_owned(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (request(0, "no cursor"), Code::InvalidArgument),
    ] {
        let status = quality.report(request).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
    }
}

async fn pages_return_every_flagged_record_once(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut envelopes = Vec::new();
    let mut defective = BTreeSet::new();
    for n in 0..23 {
        let grbh = format!("P{n:03}");
        // Every third one clean, the others with an unknown insurance status.
        let cbzt = if n % 3 == 0 { "1" } else { "9" };
        if n % 3 != 0 {
            defective.insert(format!("{grbh}-U1"));
        }
        envelopes.push(insured(&grbh, LI_NA, "李娜", "2", "1988-05-12", cbzt));
    }
    push_accepted(&hub, envelopes).await;

    let mut quality = client(&hub, &department("hrss")).await;
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page = report(&mut quality, request(4, &after)).await;
        assert!(page.records.len() <= 4);
        assert_eq!(page.flagged_records, defective.len() as u64);
        seen.extend(page.records.iter().map(|r| r.source_id.clone()));
        pages += 1;
        if page.next_after.is_empty() {
            break;
        }
        after = page.next_after;
    }
    assert_eq!(pages, defective.len().div_ceil(4));
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a record on two pages: {seen:?}");
    assert_eq!(unique, defective);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in source ID order");
}

async fn nobody_else_sees_or_may_ask_for_a_departments_report(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    push_accepted(&hub, vec![insured("G1", LI_NA_TYPO, "李娜", "2", "1988-05-12", "7")]).await;

    // Another department sees none of them and may not ask for them.
    let mut tax = client(&hub, &department("tax")).await;
    let own = report(&mut tax, request(0, "")).await;
    assert!(own.records.is_empty() && own.counts.is_empty() && own.flagged_records == 0);
    let status = tax
        .report(pb::QualityReportRequest {
            record_type: "hrss.insured_person".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("another department's record type");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Only departments have records of their own.
    for identity in [
        Identity::Platform,
        Identity::Ops,
        Identity::Steward("steward".to_owned()),
    ] {
        let status = client(&hub, &identity)
            .await
            .report(request(0, ""))
            .await
            .expect_err("not a department");
        assert_eq!(status.code(), Code::PermissionDenied, "{identity}: {status:?}");
    }

    // The owner does see it.
    let mut hrss = client(&hub, &department("hrss")).await;
    let own = report(&mut hrss, request(0, "")).await;
    assert_eq!(own.records.len(), 1);
    assert_eq!(own.flagged_records, 1);
}

async fn a_value_contradicting_the_authority_is_reported_until_corrected(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    // Tax registers the enterprise under another name before market supervision (the
    // authority for an enterprise's name) does: the contradiction appears when the
    // authority's record arrives.
    push_accepted(&hub, vec![tax_unit("T1", 1, USCC, "海阳乙贸易有限公司")]).await;
    let mut tax = client(&hub, &department("tax")).await;
    let before = report(&mut tax, request(0, "")).await;
    assert!(before.records.is_empty(), "no authority yet: {:?}", before.records);

    push_accepted(&hub, vec![market("M1", USCC, "海阳甲科技有限公司")]).await;
    let now = report(&mut tax, request(0, "")).await;
    assert_eq!(codes(&now.records), expected([("T1", &["CONTRADICTS_AUTHORITY"])]));
    let flag = &now.records[0].flags[0];
    assert_eq!(flag.pointer, "");
    assert!(
        flag.message.contains("name") && flag.message.contains("market"),
        "{flag:?}"
    );
    no_value_in(&now.records, &["海阳", "有限公司", USCC]);
    assert_eq!(
        counts(&now),
        BTreeMap::from([(("tax.taxpayer".to_owned(), "CONTRADICTS_AUTHORITY".to_owned()), 1)])
    );
    // The authority itself is not told it contradicts itself.
    let mut market_client = client(&hub, &department("market")).await;
    assert!(report(&mut market_client, request(0, "")).await.records.is_empty());

    // Tax corrects the name (traditional characters are the same name).
    push_accepted(&hub, vec![tax_unit("T1", 2, USCC, "海陽甲科技有限公司")]).await;
    let corrected = report(&mut tax, request(0, "")).await;
    assert!(corrected.records.is_empty(), "{:?}", corrected.records);
    assert_eq!(corrected.flagged_records, 0);
}

/// More flagged mentions than the schema-6 backfill reads at a time (1,000).
const MANY: usize = 1_050;

/// A valid resident identity number of a woman born 1988-05-10, -11 or -12, one per `n`
/// below 1,500, and that birth date.
fn woman(n: usize) -> (String, String) {
    let day = 10 + n / 500;
    let sequence = n % 500;
    let body = format!("370687198805{day:02}{:02}{}", sequence / 5, sequence % 5 * 2);
    (with_check_character(&body), format!("1988-05-{day:02}"))
}

/// GB 11643: the 18th character of a resident identity number (ISO 7064 MOD 11-2).
fn with_check_character(body: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("a digit") * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// Everything the stores report to hrss and tax: counts, and every flagged record.
async fn everything_flagged(store: &AnyStore) -> Vec<(FlagCounts, Vec<FlaggedRecord>)> {
    let mut reports = Vec::new();
    for record_type in ["hrss.insured_person", "tax.taxpayer"] {
        let filter = FlagFilter {
            record_types: vec![record_type.to_owned()],
            code: None,
        };
        let counts = store.flag_counts(&filter).await.expect("counts");
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .flagged_records(&filter, after.clone(), 400)
                .await
                .expect("flagged records");
            let Some(last) = page.last() else { break };
            after = Some((last.record_type.clone(), last.source_id.clone()));
            records.extend(page);
        }
        reports.push((counts, records));
    }
    reports
}

/// The migrations recorded, with when they were applied (as text: each store keeps its
/// own type).
async fn applied_migrations(hub: &TestHub) -> Vec<(i64, String)> {
    match hub.kind {
        StoreKind::Embedded => {
            let connection = rusqlite::Connection::open(hub.dir.path().join("tongban.db")).expect("open the file");
            let mut statement = connection
                .prepare("SELECT version, CAST(applied_at AS TEXT) FROM schema_migrations ORDER BY version")
                .expect("prepare");
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        }
        StoreKind::Postgres => {
            let client = hub.database.as_ref().expect("a database").connect().await;
            client
                .query(
                    "SELECT version::bigint, applied_at::text FROM schema_migrations ORDER BY version",
                    &[],
                )
                .await
                .expect("query")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect()
        }
    }
}

fn audit_entry(purpose: &str, trace_id: &str) -> AuditEntry {
    AuditEntry {
        at: SystemTime::now(),
        identity: "department:hrss".to_owned(),
        action: "lookup".to_owned(),
        subject: "P00000000001".to_owned(),
        purpose: purpose.to_owned(),
        outcome: "granted".to_owned(),
        trace_id: trace_id.to_owned(),
    }
}

/// A store written at schema version 4 (no statistics, no quality columns, no trace IDs
/// in the audit log) upgrades to the latest: versions 5, 6 and 7 are applied once, the
/// flags of the mentions kept before are filled in (more of them than the backfill
/// reads at a time) and reported as they would have been, the audit chain still holds,
/// and the hub pushes and audits as before.
async fn a_store_of_schema_version_4_upgrades_with_its_flags_and_audit_chain(kind: StoreKind) {
    assert_eq!(with_check_character("37068719880512040"), LI_NA);
    let mut hub = TestHub::start(kind).await;
    push_accepted(&hub, vec![insured("G1", LI_NA_TYPO, "李娜", "2", "1988-05-12", "1")]).await;
    push_accepted(&hub, vec![tax_unit("T1", 1, USCC, "海阳乙贸易有限公司")]).await;
    push_accepted(&hub, vec![market("M1", USCC, "海阳甲科技有限公司")]).await;
    // An unknown insurance status on every one of them.
    for chunk in (0..MANY).collect::<Vec<_>>().chunks(500) {
        let envelopes = chunk
            .iter()
            .map(|&n| {
                let (id, born) = woman(n);
                insured(&format!("B{n:04}"), &id, "李娜", "2", &born, "9")
            })
            .collect();
        push_accepted(&hub, envelopes).await;
    }
    // Audit entries as schema version 4 wrote them: no trace ID.
    for purpose in ["case 1", "case 2"] {
        hub.store.audit(&audit_entry(purpose, "")).await.expect("audited");
    }
    let reported = everything_flagged(&hub.store).await;
    let unknown = reported[0]
        .0
        .counts
        .iter()
        .find(|c| c.code == FlagCode::UnknownCode)
        .map(|c| c.records);
    assert_eq!(unknown, Some(MANY as u64), "{:?}", reported[0].0);
    assert!(reported[1]
        .1
        .iter()
        .any(|r| r.source_id == "T1" && r.flags.iter().any(|f| f.code == FlagCode::ContradictsAuthority)));
    hub.stop().await;

    // Back to schema version 4: what migrations 5 (traffic), 6 (quality columns and
    // their index) and 7 (audit trace IDs) made is gone, and they are not recorded.
    let downgrade = [
        "DROP TABLE traffic",
        "DROP INDEX mentions_flagged",
        "ALTER TABLE mentions DROP COLUMN flags",
        "ALTER TABLE mentions DROP COLUMN contradictions",
        "ALTER TABLE audit_log DROP COLUMN trace_id",
        "DELETE FROM schema_migrations WHERE version IN (5, 6, 7)",
    ];
    match kind {
        StoreKind::Embedded => {
            let connection = rusqlite::Connection::open(hub.dir.path().join("tongban.db")).expect("open the file");
            for sql in downgrade {
                connection.execute_batch(sql).expect(sql);
            }
        }
        StoreKind::Postgres => {
            let client = hub.database.as_ref().expect("a database").connect().await;
            for sql in downgrade {
                client.batch_execute(sql).await.expect(sql);
            }
        }
    }
    // Later migrations (the embedded store's 8: quarantined payloads as bytes; the index
    // of redirecting entities, 8 on PostgreSQL and 9 embedded; the index of changes by
    // entity, 9 and 10) are independent of 5 to 7 and stay applied.
    let later: &[i64] = match kind {
        StoreKind::Embedded => &[8, 9, 10],
        StoreKind::Postgres => &[8, 9],
    };
    assert_eq!(
        applied_migrations(&hub).await.iter().map(|m| m.0).collect::<Vec<_>>(),
        [&[1, 2, 3, 4][..], later].concat()
    );

    hub.restart().await;
    let applied = applied_migrations(&hub).await;
    assert_eq!(
        applied.iter().map(|m| m.0).collect::<Vec<_>>(),
        [&[1, 2, 3, 4, 5, 6, 7][..], later].concat()
    );
    assert_eq!(
        everything_flagged(&hub.store).await,
        reported,
        "the flags and contradictions kept before are reported as they were"
    );
    let ChainReport::Intact { entries, .. } = verify(&hub.store).await.expect("verify") else {
        panic!("the chain written at version 4 holds");
    };
    hub.restart().await;
    assert_eq!(applied_migrations(&hub).await, applied, "each migration applied once");

    // The upgraded hub works: a push with a flag is reported, an audit entry with a trace
    // ID is chained, the push is counted.
    push_accepted(&hub, vec![insured("G2", LI_NA_TYPO, "李娜", "2", "1988-05-12", "1")]).await;
    let mut hrss = client(&hub, &department("hrss")).await;
    let mut wrong = request(0, "");
    wrong.code = "WRONG_CHECK_CHARACTER".to_owned();
    let (_, records) = whole_report(&mut hrss, wrong).await;
    assert_eq!(
        records.iter().map(|r| r.source_id.as_str()).collect::<Vec<_>>(),
        ["G1-U1", "G2-U1"]
    );
    hub.store
        .audit(&audit_entry("case 3", "4bf92f3577b34da6a3ce929d0e0e4736"))
        .await
        .expect("audited");
    assert!(
        matches!(verify(&hub.store).await.expect("verify"), ChainReport::Intact { entries: now, .. } if now == entries + 1)
    );
    hub.stop().await;
    let traffic = hub.store.traffic(0, i64::MAX, 60, Some("hrss")).await.expect("traffic");
    assert!(
        traffic.iter().any(|r| r.counter == "accepted" && r.n >= 1),
        "{traffic:?}"
    );
}
