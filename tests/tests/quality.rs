//! Data-quality reports over real gRPC with mutual TLS, against both stores: a
//! department sees exactly its own defective records with the right codes and counts,
//! a corrected version drops out, pages return every record once, nobody else sees or
//! may ask for them, and a value contradicting the authoritative department is reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tongban_adapters::model::FlagCode;
use tongban_gateway::identity::Identity;
use tongban_gateway::quality::FlagFilter;
use tongban_gateway::store::embedded::EmbeddedStore;
use tongban_gateway::store::postgres::PostgresStore;
use tongban_gateway::store::{AnyStore, Store};
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
    mentions_kept_before_the_quality_columns_are_reported_after_the_upgrade,
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

async fn mentions_kept_before_the_quality_columns_are_reported_after_the_upgrade(kind: StoreKind) {
    let mut hub = TestHub::start(kind).await;
    push_accepted(&hub, vec![insured("G1", LI_NA_TYPO, "李娜", "2", "1988-05-12", "1")]).await;
    push_accepted(&hub, vec![tax_unit("T1", 1, USCC, "海阳乙贸易有限公司")]).await;
    push_accepted(&hub, vec![market("M1", USCC, "海阳甲科技有限公司")]).await;
    hub.stop().await;

    // Back to schema version 4: the columns and their index gone, version 6 not applied.
    let downgrade = [
        "DROP INDEX mentions_flagged",
        "ALTER TABLE mentions DROP COLUMN flags",
        "ALTER TABLE mentions DROP COLUMN contradictions",
        "DELETE FROM schema_migrations WHERE version = 6",
    ];
    let store: AnyStore = match kind {
        StoreKind::Embedded => {
            let path = hub.dir.path().join("tongban.db");
            let connection = rusqlite::Connection::open(&path).expect("open the database file");
            for sql in downgrade {
                connection.execute_batch(sql).expect(sql);
            }
            drop(connection);
            EmbeddedStore::open(&path).expect("reopened").into()
        }
        StoreKind::Postgres => {
            let database = hub.database.as_ref().expect("a database");
            let client = database.connect().await;
            for sql in downgrade {
                client.batch_execute(sql).await.expect(sql);
            }
            PostgresStore::connect(&database.settings())
                .await
                .expect("reconnected")
                .into()
        }
    };

    let hrss = FlagFilter {
        record_types: vec!["hrss.insured_person".to_owned()],
        code: None,
    };
    let records = store.flagged_records(&hrss, None, 10).await.expect("hrss records");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].source_id, "G1-U1");
    assert_eq!(records[0].flags[0].code, FlagCode::WrongCheckCharacter);
    let tax = FlagFilter {
        record_types: vec!["tax.taxpayer".to_owned()],
        code: Some(FlagCode::ContradictsAuthority),
    };
    let counts = store.flag_counts(&tax).await.expect("tax counts");
    assert_eq!(counts.records, 1, "{counts:?}");
    let records = store.flagged_records(&tax, None, 10).await.expect("tax records");
    assert_eq!(records[0].source_id, "T1");
}
