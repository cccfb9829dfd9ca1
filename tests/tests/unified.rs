//! Unified records over real gRPC with mutual TLS, against both stores: one person
//! recognised across all seven departments, merges that redirect for ever, replays,
//! stale copies, new versions and withdrawals, lookups by any identifier form,
//! concurrent writers that must not create duplicates, precision against the
//! synthetic city's truth, the change feed under concurrent writers, and the sharing
//! rules with their audit trail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tongban_adapters::synth::{self, CityConfig, SyntheticRecord};
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tongban_tests::hub::{department, HubOptions, StoreKind, TestHub};
use tongban_tests::unified::{
    assert_key_groups_unified, env, envelope, lookup, lookup_id, lookup_identifier, mention_keys, outcome, owner,
    pairwise, position, push, read_feed, record_json, resolutions, truth, unified, wrong_merges, FeedState,
    MentionAddr, RESENT,
};
use tonic::transport::Channel;
use tonic::Code;

tongban_tests::on_both_stores!(
    one_person_pushed_by_every_department_is_one_unified_person,
    merges_redirect_the_absorbed_id_for_ever,
    replays_stale_copies_new_versions_and_withdrawals,
    lookup_finds_records_by_any_identifier_form,
    sharing_rules_refuse_and_audit,
    a_slot_that_now_names_someone_else_without_a_key_leaves_the_previous_person,
    relations_name_the_survivor_after_a_merge,
    a_departments_view_does_not_reveal_which_other_departments_know_the_person,
    marital_status_follows_the_latest_registration_not_the_latest_edit,
);

/// Like `on_both_stores!`, on a multi-threaded runtime: the hub serves the concurrent
/// writers on several threads at once, as it does in production.
macro_rules! on_both_stores_in_parallel {
    ($($scenario:ident),* $(,)?) => {
        mod in_parallel {
            mod embedded {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::super::$scenario(tongban_tests::hub::StoreKind::Embedded).await
                })*
            }
            mod postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::super::$scenario(tongban_tests::hub::StoreKind::Postgres).await
                })*
            }
        }
    };
}

on_both_stores_in_parallel!(
    concurrent_overlapping_pushes_create_no_duplicates,
    a_300_person_city_resolves_with_full_precision,
    feed_consumers_see_every_change_in_commit_order,
);

// ---------------------------------------------------------------------------
// Native records, written as the departments export them.

/// `base` with the fields of `changes` replaced.
fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(base), Value::Object(changes)) = (base.as_object_mut(), changes) {
        base.extend(changes);
    }
    base
}

fn tax_person(djxh: &str, nsrsbh: &str, name: &str) -> Value {
    json!({"djxh": djxh, "nsrsbh": nsrsbh, "nsrmc": name, "nsrlx": "3", "zjlx_dm": "201", "fddbrxm": "",
           "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "zcdz": "", "scjydz": "", "lxdh": "", "hy_dm": "",
           "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"})
}

/// An insured person; `source_id` is `grbh-dwbh`.
fn hrss(grbh: &str, dwbh: &str, sfzhm: &str, name: &str) -> Value {
    json!({"grbh": grbh, "zjlx": "01", "sfzhm": sfzhm, "xm": name, "xb": "1", "csrq": "1980-01-01", "mz": "01",
           "lxdh": "", "hjdz": "", "jzdz": "", "dwbh": dwbh, "dwmc": format!("海阳市第{dwbh}号单位"),
           "dwtyshxydm": "", "cbzt": "1", "xzlx": ["110", "310"], "cbrq": "2008-03-01", "sbkh": ""})
}

fn market(ztid: &str, uscc: &str, name: &str) -> Value {
    json!({"ztid": ztid, "tyshxydm": uscc, "zch": "", "ztmc": name, "ztlx": "1100", "fddbr": "张三",
           "fddbr_zjlx": "10", "fddbr_zjhm": "", "zczb": "50万元", "clrq": "2010年5月1日", "zs": "海阳市东村街道",
           "jyfw": "", "djzt": "存续", "djjg": "海阳市市场监督管理局", "lxdh": ""})
}

/// A permit whose three units have no credit code and whose manager is given.
fn permit(sgxkzbh: &str, xmjl: Value) -> Value {
    json!({"sgxkzbh": sgxkzbh, "xmmc": "测试项目", "xmdz": "海阳市", "jsdw": {"mc": "海阳甲建设单位"},
           "sgdw": {"mc": "海阳乙施工单位"}, "jldw": {"mc": "海阳丙监理单位"}, "xmjl": xmjl,
           "htje": 100.0, "jzmj": 1000.0, "fzrq": 1725060600000i64})
}

fn party(name: &str, zjhm: &str, csrq: &str) -> Value {
    json!({"xm": name, "zjlx": "1", "zjhm": zjhm, "csrq": csrq, "gj": "中国", "hjdz": ""})
}

fn marriage(zsbh: &str, man: Value, woman: Value) -> Value {
    json!({"zsbh": zsbh, "ywlx": "结婚", "djrq": "2005.10.01", "djjg": "海阳市民政局婚姻登记处", "nan": man, "nv": woman})
}

fn slot(result: &pb::RecordResult, role: &str, index: u32) -> pb::MentionResolution {
    result
        .mentions
        .iter()
        .find(|m| m.role == role && m.index == index)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{} {}: no mention {role}/{index} in {:?}",
                result.record_type, result.source_id, result.mentions
            )
        })
}

/// Pushes one envelope as its department and expects `expected`.
async fn push_one(hub: &TestHub, envelope: pb::Envelope, expected: pb::Outcome) -> pb::RecordResult {
    let mut client = hub.exchange(&owner(&envelope.record_type)).await;
    let context = format!(
        "{} {} v{}",
        envelope.record_type, envelope.source_id, envelope.source_version
    );
    let result = push(&mut client, "one", vec![envelope]).await.remove(0);
    assert_eq!(outcome(&result), expected, "{context}: {:?}", result.errors);
    result
}

fn sources(response: &pb::LookupResponse) -> BTreeSet<MentionAddr> {
    response.sources.iter().map(MentionAddr::from).collect()
}

fn resident_keys(record: &Value) -> Vec<String> {
    record["identifiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["scheme"] == "resident_id" && i["key"] == true)
        .filter_map(|i| i["value"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------

/// 陈伟, born 1979-03-15, first registered in 海阳县 (370629) before 1996, so some
/// departments still carry his 15-digit number. The check character is X.
const CHEN_WEI: &str = "37062919790315001X";
const CHEN_WEI_15: &str = "370629790315001";
const CHEN_WEI_WIFE: &str = "370687198104020022";

async fn one_person_pushed_by_every_department_is_one_unified_person(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    // Every kind of documented dirt, one or more per department.
    let records = vec![
        // Lower-case x and a trailing U+3000; a space in the name; +86 phone; full address prefix and #.
        env(
            "tax.taxpayer",
            "30000000000000000001",
            1_700_000_000_001,
            with(
                tax_person("30000000000000000001", " 37062919790315001x\u{3000}", "陈 伟"),
                json!({"lxdh": "+86 135 3500 1234", "zcdz": "山东省烟台市海阳市方圆街道海河路12#"}),
            ),
        ),
        // The 15-digit number; U+3000 inside the name; 0086 phone.
        env(
            "hrss.insured_person",
            "0000000001-10000001",
            1_700_000_000_002,
            with(
                hrss("0000000001", "10000001", CHEN_WEI_15, "陈\u{3000}伟"),
                json!({"csrq": "1979-03-15", "lxdh": "0086-13535001234", "hjdz": "海阳市方圆街道海河路１２号"}),
            ),
        ),
        // Legal representative of an individual business, number in full-width digits.
        env(
            "market.entity",
            "c0ffee00c0ffee00c0ffee00c0ffee01",
            1_700_000_000_003,
            with(
                market("c0ffee00c0ffee00c0ffee00c0ffee01", "", "海阳市陈伟百货店"),
                json!({"ztlx": "9100", "fddbr": "陈伟", "fddbr_zjhm": "３７０６２９１９７９０３１５００１Ｘ", "zczb": ""}),
            ),
        ),
        // Traditional characters (陳偉).
        env(
            "realestate.title",
            "鲁(2020)海阳市不动产权第0000001号",
            1_700_000_000_004,
            json!({
            "bdcqzh": "鲁(2020)海阳市不动产权第0000001号", "bdcdyh": "370687001001GB00001F00010001",
            "zl": "海阳市方圆街道海河路12号", "qllx": "4", "yt": "住宅", "mj": 98.5, "gyfs": "单独所有",
            "djsj": "2020-05-06 09:10:11", "dyzt": "0", "cfzt": "0",
            "qlr": [{"qlrmc": "陳偉", "qlrlx": "1", "zjzl": "1", "zjh": CHEN_WEI, "fe": "", "dh": "",
                     "dz": "烟台市海阳市方圆街道海河路12号"}]}),
        ),
        // Full-width digits with a full-width lower-case x; a birth year and month only.
        env(
            "housingfund.account",
            "201000000001",
            1_700_000_000_005,
            json!({
            "grzh": "201000000001", "xingming": "陈伟", "zjlx": "01", "zjhm": "３７０６２９１９７９０３１５００１ｘ",
            "csny": "197903", "sjhm": "13535001234", "dwzh": "1000000001", "dwmc": "海阳市海晟商贸有限公司",
            "dwzzjgdm": "", "jcjs": "5000.00", "grjcbl": "0.12", "zhzt": "0", "khrq": "2010/3/7"}),
        ),
        // Wrapped in U+3000.
        env(
            "construction.permit",
            "370687202408310001",
            1_700_000_000_006,
            permit(
                "370687202408310001",
                json!({"xm": "陈 伟", "zjhm": "\u{3000}37062919790315001X\u{3000}", "zczsh": "", "lxdh": ""}),
            ),
        ),
        env(
            "civil.marriage",
            "J370687-2005-000001",
            1_700_000_000_007,
            marriage(
                "J370687-2005-000001",
                party("陈伟", CHEN_WEI, "1979.03.15"),
                party("李娜", CHEN_WEI_WIFE, "1981.04.02"),
            ),
        ),
        // The head written twice: hzsfzh in the 15-digit form, the 本人 member with 18 digits.
        env(
            "civil.assistance",
            "3706870000000001",
            1_700_000_000_008,
            json!({
            "jtbh": "3706870000000001", "hzxm": "陈 伟", "hzsfzh": CHEN_WEI_15,
            "jtcy": [{"xm": "陈伟", "sfzh": CHEN_WEI, "xb": "男", "csrq": "1979.03.15", "yhzgx": "本人"},
                     {"xm": "李娜", "sfzh": CHEN_WEI_WIFE, "xb": "女", "csrq": "1981.04.02", "yhzgx": "配偶"}],
            "bzlx": "城市低保", "bzje": 760, "jzdz": "海阳市方圆街道海河路12号", "lxdh": "", "zt": "在保",
            "sprq": "2022.06.26"}),
        ),
    ];
    let slots = [
        ("taxpayer", 0),
        ("insured", 0),
        ("legal_representative", 0),
        ("right_holder", 0),
        ("account_holder", 0),
        ("project_manager", 0),
        ("party", 0),
        ("member", 0),
    ];
    let mut person: Option<String> = None;
    let mut expected_sources = BTreeSet::new();
    let mut wife = Vec::new();
    for (envelope, (role, index)) in records.into_iter().zip(slots) {
        let result = push_one(&hub, envelope, pb::Outcome::Accepted).await;
        let mention = slot(&result, role, index);
        match &person {
            None => {
                assert!(!mention.matched_existing, "the first department founds the person");
                person = Some(mention.unified_id.clone());
            }
            Some(id) => {
                assert_eq!(
                    &mention.unified_id, id,
                    "{} {role}: the same person",
                    result.record_type
                );
                assert!(
                    mention.matched_existing,
                    "{}: the person was already known (a repeated collection avoided)",
                    result.record_type
                );
            }
        }
        expected_sources.insert(MentionAddr::new(&result.record_type, &result.source_id, role, index));
        if result.record_type == "civil.marriage" {
            wife.push(slot(&result, "party", 1).unified_id);
        }
        if result.record_type == "civil.assistance" {
            wife.push(slot(&result, "member", 1).unified_id);
        }
    }
    let person = person.expect("pushed");
    assert!(person.starts_with('P'), "{person}");
    assert_eq!(wife[0], wife[1], "his wife is one person in both civil records too");
    assert_ne!(wife[0], person);

    let mut platform = unified(&hub, &Identity::Platform).await;
    let found = lookup_id(&mut platform, &person).await.expect("lookup");
    assert_eq!(
        sources(&found),
        expected_sources,
        "all eight mentions are sources of the one person"
    );
    let record = record_json(&found.record);
    assert_eq!(
        resident_keys(&record),
        vec![CHEN_WEI],
        "one resident identity number, in its 18-digit form"
    );
    let attribute = |name: &str| record["attributes"][name].clone();
    assert_eq!(attribute("name")["value"], "陈伟", "simplified, without spaces");
    assert_eq!(attribute("name")["rule"], "agreement");
    assert_eq!(attribute("birth_date")["value"], "1979-03-15");
    assert_eq!(attribute("birth_date")["rule"], "identity_number");
    assert_eq!(attribute("sex")["value"], "male");
    assert_eq!(attribute("sex")["rule"], "identity_number");
    assert_eq!(attribute("marital_status")["value"], "married");
    assert_eq!(attribute("marital_status")["rule"], "authority");
    assert_eq!(attribute("marital_status")["source"]["record_type"], "civil.marriage");
    assert_eq!(attribute("phone")["value"], "13535001234");
    assert_eq!(attribute("address")["value"], "方圆街道海河路12号");
    let birth_variants = record["variants"]["birth_date"].to_string();
    assert!(
        birth_variants.contains("\"1979-03\""),
        "the year-month date is a variant: {birth_variants}"
    );
    let departments: BTreeSet<&str> = record["facts"]
        .as_object()
        .expect("facts")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        departments,
        BTreeSet::from(["tax", "hrss", "realestate", "housingfund", "construction", "civil"]),
        "every department that states facts about him (a legal representative states none)"
    );

    // The 15-digit form finds him, and the feed holds exactly one live person with his number.
    let by_old_number = lookup_identifier(&mut platform, CHEN_WEI_15).await.expect("lookup");
    assert_eq!(by_old_number.unified_id, person);
    let feed = FeedState::from_changes(&read_feed(&mut platform, "").await);
    let holders: Vec<&str> = feed
        .live()
        .filter(|c| resident_keys(&record_json(&c.record)).contains(&CHEN_WEI.to_owned()))
        .map(|c| c.unified_id.as_str())
        .collect();
    assert_eq!(
        holders,
        vec![person.as_str()],
        "exactly one unified person carries his number"
    );
}

// ---------------------------------------------------------------------------

const MERGED_PERSON: &str = "370687198805120405";
/// The same number with a wrong check character: a typo that is no key.
const MERGED_PERSON_TYPO: &str = "370687198805120401";
const MERGED_ORG_USCC: &str = "91370687MA3CNP9K89";

async fn merges_redirect_the_absorbed_id_for_ever(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut platform = unified(&hub, &Identity::Platform).await;

    // A person known by her resident identity number to tax ...
    let tax = push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000777",
            1,
            tax_person("30000000000000000777", MERGED_PERSON, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let survivor = slot(&tax, "taxpayer", 0).unified_id;
    // ... and to social insurance only by its own person number (her identity number
    // was mistyped there): nothing links the two yet.
    let old_job = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000777-10000100",
            2,
            hrss("0000000777", "10000100", MERGED_PERSON_TYPO, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    assert!(
        old_job
            .quality_flags
            .iter()
            .any(|f| f.code == "WRONG_CHECK_CHARACTER" && f.pointer == "/sfzhm"),
        "{:?}",
        old_job.quality_flags
    );
    let absorbed = slot(&old_job, "insured", 0).unified_id;
    assert_ne!(absorbed, survivor, "a mistyped number links nobody");
    // Her new job's record carries both the correct number and the person number: the
    // two entities are one, the older one survives.
    let new_job = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000777-10000200",
            3,
            hrss("0000000777", "10000200", MERGED_PERSON, "赵 丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let joined = slot(&new_job, "insured", 0);
    assert_eq!(joined.unified_id, survivor, "the older entity survives");
    assert!(joined.matched_existing);

    // The same for an organisation: a builder known by its credit code, an employer
    // known by social insurance's employer number, then a record carrying both.
    let builder = push_one(
        &hub,
        env(
            "construction.permit",
            "370687202401010001",
            4,
            with(
                permit(
                    "370687202401010001",
                    json!({"xm": "钱七", "zjhm": "370687197001010716"}),
                ),
                json!({"sgdw": {"mc": "海阳市宏达建筑有限公司", "tyshxydm": MERGED_ORG_USCC}}),
            ),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let org_survivor = slot(&builder, "builder", 0).unified_id;
    let employer = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000888-10000300",
            5,
            hrss("0000000888", "10000300", "370687199001010037", "孙八"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let org_absorbed = slot(&employer, "employer", 0).unified_id;
    assert_ne!(org_absorbed, org_survivor);
    let both = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000999-10000300",
            6,
            with(
                hrss("0000000999", "10000300", "37068719910202004X", "周九"),
                json!({"dwtyshxydm": MERGED_ORG_USCC.to_lowercase()}),
            ),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    assert_eq!(slot(&both, "employer", 0).unified_id, org_survivor);

    for (absorbed, survivor, expected) in [(&absorbed, &survivor, 3), (&org_absorbed, &org_survivor, 3)] {
        // The absorbed ID answers with the survivor, saying so.
        let found = lookup_id(&mut platform, absorbed)
            .await
            .expect("lookup of the absorbed ID");
        assert_eq!(&found.unified_id, survivor);
        assert_eq!(&found.redirected_from, absorbed);
        assert_eq!(
            found.sources.len(),
            expected,
            "the survivor holds every mention: {:?}",
            found.sources
        );
        let direct = lookup_id(&mut platform, survivor)
            .await
            .expect("lookup of the survivor");
        assert_eq!(direct.redirected_from, "");
        assert_eq!(direct.version, found.version);
        assert_eq!(record_json(&direct.record), record_json(&found.record));
    }
    let survivor_record = record_json(&lookup_id(&mut platform, &survivor).await.expect("lookup").record);
    let keys: BTreeSet<String> = survivor_record["identifiers"]
        .as_array()
        .expect("identifiers")
        .iter()
        .filter(|i| i["key"] == true)
        .map(|i| {
            format!(
                "{}:{}",
                i["scheme"].as_str().unwrap_or(""),
                i["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(keys.contains(&format!("resident_id:{MERGED_PERSON}")), "{keys:?}");
    assert!(keys.contains("department_number:hrss.person:0000000777"), "{keys:?}");

    // The feed says where the absorbed IDs went, and in the same commit the survivor
    // took over the absorbed entity's mentions.
    let changes = read_feed(&mut platform, "").await;
    let moved = [
        MentionAddr::new("hrss.insured_person", "0000000777-10000100", "insured", 0),
        MentionAddr::new("hrss.insured_person", "0000000888-10000300", "employer", 0),
    ];
    for ((absorbed, survivor), moved) in [(&absorbed, &survivor), (&org_absorbed, &org_survivor)]
        .into_iter()
        .zip(moved)
    {
        let merged_at = changes
            .iter()
            .rposition(|c| &c.unified_id == absorbed)
            .unwrap_or_else(|| panic!("no change of {absorbed} in the feed"));
        let merged = &changes[merged_at];
        assert_eq!(&merged.merged_into, survivor, "the feed redirects {absorbed}");
        assert!(
            merged.record.is_empty() && merged.sources.is_empty(),
            "a merged-away entity carries nothing: {merged:?}"
        );
        let before = changes[..merged_at]
            .iter()
            .rfind(|c| &c.unified_id == survivor)
            .expect("the survivor changed before the merge was published");
        assert!(
            before.sources.iter().any(|s| MentionAddr::from(s) == moved),
            "the survivor's change published with the merge lists {moved:?}: {:?}",
            before.sources
        );
    }

    // For ever: a later record known only by the absorbed entity's key goes to the survivor.
    let later = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000777-10000400",
            7,
            hrss("0000000777", "10000400", MERGED_PERSON_TYPO, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    assert_eq!(slot(&later, "insured", 0).unified_id, survivor);
    let again = lookup_id(&mut platform, &absorbed).await.expect("lookup");
    assert_eq!(
        (again.unified_id.as_str(), again.redirected_from.as_str()),
        (survivor.as_str(), absorbed.as_str())
    );
}

// ---------------------------------------------------------------------------

const VERSIONED_PERSON: &str = "370687199203010510";

async fn replays_stale_copies_new_versions_and_withdrawals(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    let tax = env(
        "tax.taxpayer",
        "30000000000000000510",
        100,
        tax_person("30000000000000000510", VERSIONED_PERSON, "吴刚"),
    );
    let insured = |version: i64, address: &str| {
        env(
            "hrss.insured_person",
            "0000000510-10000510",
            version,
            with(
                hrss("0000000510", "10000510", VERSIONED_PERSON, "吴刚"),
                json!({"hjdz": address}),
            ),
        )
    };
    let tax_result = push_one(&hub, tax, pb::Outcome::Accepted).await;
    let person = slot(&tax_result, "taxpayer", 0).unified_id;
    let first = push_one(&hub, insured(10, "凤城街道海河路1号"), pb::Outcome::Accepted).await;
    assert_eq!(slot(&first, "insured", 0).unified_id, person);
    let employer = slot(&first, "employer", 0).unified_id;
    let cursor = read_feed(&mut platform, "")
        .await
        .last()
        .expect("changes")
        .cursor
        .clone();
    let before = lookup_id(&mut platform, &person).await.expect("lookup");
    assert_eq!(
        record_json(&before.record)["attributes"]["household_address"]["value"],
        "凤城街道海河路1号"
    );

    // A replay changes nothing and publishes nothing.
    let replay = push_one(&hub, insured(10, "凤城街道海河路1号"), pb::Outcome::Unchanged).await;
    assert!(
        replay.mentions.is_empty(),
        "only accepted records resolve: {:?}",
        replay.mentions
    );
    assert!(
        read_feed(&mut platform, &cursor).await.is_empty(),
        "a replay is no change"
    );

    // A stale copy is kept in history only: the unified record stays as it was.
    let stale = push_one(&hub, insured(5, "凤城街道海河路9号"), pb::Outcome::Stale).await;
    assert_eq!(stale.current_version, Some(10));
    let after_stale = lookup_id(&mut platform, &person).await.expect("lookup");
    assert_eq!(after_stale.version, before.version);
    assert_eq!(record_json(&after_stale.record), record_json(&before.record));
    assert!(
        read_feed(&mut platform, &cursor).await.is_empty(),
        "a stale copy is no change"
    );

    // A new version that changes a value changes the unified record and its version.
    push_one(&hub, insured(20, "凤城街道海河路2号"), pb::Outcome::Accepted).await;
    let changed = lookup_id(&mut platform, &person).await.expect("lookup");
    assert!(
        changed.version > before.version,
        "{} > {}",
        changed.version,
        before.version
    );
    let record = record_json(&changed.record);
    assert_eq!(record["attributes"]["household_address"]["value"], "凤城街道海河路2号");
    let published = read_feed(&mut platform, &cursor).await;
    let mine: Vec<&pb::Change> = published.iter().filter(|c| c.unified_id == person).collect();
    assert_eq!(mine.len(), 1, "one change of the person: {published:?}");
    assert_eq!(mine[0].version, changed.version);
    let cursor = published.last().expect("changes").cursor.clone();

    // A withdrawal: the record's mentions leave every unified record.
    let mut withdrawal = insured(30, "凤城街道海河路2号");
    withdrawal.deleted = true;
    let withdrawn = push_one(&hub, withdrawal.clone(), pb::Outcome::Accepted).await;
    assert!(withdrawn.mentions.is_empty(), "a withdrawn record contributes nothing");
    let after = lookup_id(&mut platform, &person).await.expect("lookup");
    assert!(after.version > changed.version);
    let tax_mention = MentionAddr::new("tax.taxpayer", "30000000000000000510", "taxpayer", 0);
    assert_eq!(
        sources(&after),
        BTreeSet::from([tax_mention.clone()]),
        "only tax still speaks of him"
    );
    let record = record_json(&after.record);
    assert_eq!(
        record["sources"].as_array().map(Vec::len),
        Some(1),
        "{}",
        record["sources"]
    );
    assert!(
        record["attributes"].get("household_address").is_none(),
        "{}",
        record["attributes"]
    );
    assert!(record["facts"].get("hrss").is_none(), "{}", record["facts"]);
    let orphan = lookup_id(&mut platform, &employer)
        .await
        .expect("lookup of the employer");
    assert!(
        orphan.sources.is_empty(),
        "the employer no longer has the withdrawn record as source"
    );
    let published = read_feed(&mut platform, &cursor).await;
    let last = published
        .iter()
        .rfind(|c| c.unified_id == person)
        .expect("a change of the person");
    assert_eq!(
        last.sources.iter().map(MentionAddr::from).collect::<Vec<_>>(),
        vec![tax_mention]
    );
    assert!(
        published.iter().any(|c| c.unified_id == employer),
        "the employer's change is published too"
    );

    // The withdrawal replayed is a replay.
    push_one(&hub, withdrawal, pb::Outcome::Unchanged).await;
}

// ---------------------------------------------------------------------------

const LOOKUP_PERSON: &str = "370629196507080609";
const LOOKUP_PERSON_15: &str = "370629650708060";
const LOOKUP_ORG_USCC: &str = "91370687MA3CRT2L43";

async fn lookup_finds_records_by_any_identifier_form(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let person = push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000609",
            1,
            tax_person("30000000000000000609", LOOKUP_PERSON, "郑红"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let person = slot(&person, "taxpayer", 0).unified_id;
    let org = push_one(
        &hub,
        env(
            "market.entity",
            "0000000000000000000000000000a001",
            2,
            market(
                "0000000000000000000000000000a001",
                LOOKUP_ORG_USCC,
                "海阳市正阳商贸有限公司",
            ),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let org = slot(&org, "entity", 0).unified_id;

    let mut platform = unified(&hub, &Identity::Platform).await;
    for (typed, expected) in [
        (LOOKUP_PERSON_15, &person),
        (LOOKUP_PERSON, &person),
        ("３７０６２９１９６５０７０８０６０９", &person),
        (" 370629196507080609\u{3000}", &person),
        ("MA3CRT2L-4", &org),
        ("MA3CRT2L4", &org),
        ("ma3crt2l-4", &org),
        (LOOKUP_ORG_USCC, &org),
        ("91370687ma3crt2l43", &org),
        ("370687MA3CRT2L4", &org),
    ] {
        let found = lookup_identifier(&mut platform, typed)
            .await
            .unwrap_or_else(|status| panic!("lookup of {typed:?}: {status:?}"));
        assert_eq!(&found.unified_id, expected, "{typed:?}");
        assert_eq!(found.redirected_from, "");
    }
    for (typed, code) in [
        ("370629650708061", Code::NotFound), // someone else's 15-digit number
        ("MA3CRT2L-5", Code::NotFound),      // a wrong check character finds nothing
        ("P123", Code::InvalidArgument),     // not an ID: asked by ID below
    ] {
        let status = if code == Code::InvalidArgument {
            lookup_id(&mut platform, typed).await.expect_err("malformed ID")
        } else {
            lookup_identifier(&mut platform, typed)
                .await
                .expect_err("unknown identifier")
        };
        assert_eq!(status.code(), code, "{typed:?}: {status:?}");
    }
}

// ---------------------------------------------------------------------------
// Concurrent writers.

/// Pushes `work[w]` from worker `w`, all workers at once. Each worker holds one
/// connection per department and pushes its records in batches of `batch` records of
/// one department, the batches in an order shuffled by `seed`. `done` counts batches
/// answered. Returns every result.
async fn push_concurrently(
    hub: &TestHub,
    work: Vec<Vec<pb::Envelope>>,
    batch: usize,
    seed: u64,
    done: Arc<AtomicUsize>,
) -> Vec<pb::RecordResult> {
    let mut tasks = Vec::new();
    for (worker, envelopes) in work.into_iter().enumerate() {
        let mut by_department: BTreeMap<String, Vec<pb::Envelope>> = BTreeMap::new();
        for envelope in envelopes {
            let department = envelope.record_type.split('.').next().unwrap_or("").to_owned();
            by_department.entry(department).or_default().push(envelope);
        }
        let mut clients: HashMap<String, ExchangeClient<Channel>> = HashMap::new();
        let mut batches = Vec::new();
        for (name, envelopes) in by_department {
            clients.insert(name.clone(), hub.exchange(&department(&name)).await);
            for chunk in envelopes.chunks(batch) {
                batches.push((name.clone(), chunk.to_vec()));
            }
        }
        fastrand::Rng::with_seed(seed ^ worker as u64).shuffle(&mut batches);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for (n, (name, envelopes)) in batches.into_iter().enumerate() {
                let client = clients.get_mut(&name).expect("client of the department");
                results.extend(push(client, &format!("w{worker}-b{n}"), envelopes).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
            results
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    all
}

/// How many batches [`push_concurrently`] makes of `work`.
fn batch_count(work: &[Vec<pb::Envelope>], batch: usize) -> usize {
    work.iter()
        .map(|envelopes| {
            let mut per_department: BTreeMap<&str, usize> = BTreeMap::new();
            for envelope in envelopes {
                *per_department
                    .entry(envelope.record_type.split('.').next().unwrap_or(""))
                    .or_default() += 1;
            }
            per_department.values().map(|n| n.div_ceil(batch)).sum::<usize>()
        })
        .sum()
}

/// A hub whose embedded store waits long enough for a writer holding the file.
async fn busy_hub(kind: StoreKind) -> TestHub {
    TestHub::start_with(
        kind,
        HubOptions {
            busy_timeout: Duration::from_secs(20),
            ..HubOptions::default()
        },
    )
    .await
}

/// Checks the clusters the hub holds after concurrent pushes of `records` against the
/// truth and the deterministic keys; returns where every mention went.
fn check_clusters(
    records: &[SyntheticRecord],
    feed: &FeedState,
    results: &[pb::RecordResult],
) -> HashMap<MentionAddr, String> {
    let clusters = feed.clusters();
    let truth = truth(records);
    for mention in truth.keys() {
        assert!(
            clusters.contains_key(mention),
            "mention {mention:?} is in no live unified record"
        );
    }
    // Precision first: no two true entities in one unified entity.
    let merges = wrong_merges(&clusters, &truth);
    assert!(
        merges.is_empty(),
        "different people or organisations merged: {merges:#?}"
    );
    assert_eq!(pairwise(&clusters, &truth).precision, 1.0);
    // No duplicates: mentions sharing deterministic keys are one entity.
    let keys = mention_keys(records);
    let groups = assert_key_groups_unified(&keys, &clusters);
    assert!(groups > 0);
    // The push results agree with the feed once merges are followed.
    let pushed = resolutions(results);
    for (mention, id) in &pushed {
        assert_eq!(
            Some(feed.survivor(id)),
            clusters.get(mention).map(String::as_str),
            "{mention:?}: the push result's entity (through redirects) and the feed disagree"
        );
    }
    clusters
}

async fn concurrent_overlapping_pushes_create_no_duplicates(kind: StoreKind) {
    let hub = busy_hub(kind).await;
    let records = synth::city(&CityConfig { people: 50, seed: 11 });
    // Every record goes to three of the eight workers: the same record arrives up to
    // three times at once, and records about one person arrive through several workers.
    const WORKERS: usize = 8;
    let mut work: Vec<Vec<pb::Envelope>> = vec![Vec::new(); WORKERS];
    for (i, record) in records.iter().enumerate() {
        for w in [i % WORKERS, (i + 3) % WORKERS, (i + 5) % WORKERS] {
            work[w].push(envelope(record));
        }
    }
    let results = push_concurrently(&hub, work, 10, 11, Arc::new(AtomicUsize::new(0))).await;
    for result in &results {
        assert_ne!(outcome(result), pb::Outcome::Rejected, "{result:?}");
    }
    // Each record was accepted exactly once, the other copies are replays.
    let accepted = results.iter().filter(|r| outcome(r) == pb::Outcome::Accepted).count();
    assert_eq!(accepted, records.len(), "one acceptance per record");

    let mut platform = unified(&hub, &Identity::Platform).await;
    let feed = FeedState::from_changes(&read_feed(&mut platform, "").await);
    let clusters = check_clusters(&records, &feed, &results);
    // For every true person, the mentions carrying a resident identity number are one entity.
    let keys = mention_keys(&records);
    let truth = truth(&records);
    let mut by_person: HashMap<_, BTreeSet<&String>> = HashMap::new();
    for (mention, entity) in &truth {
        let resident = keys
            .get(mention)
            .is_some_and(|k| k.iter().any(|(_, scheme, _)| scheme == "resident_id"));
        if resident {
            by_person.entry(*entity).or_default().insert(&clusters[mention]);
        }
    }
    assert!(
        by_person.len() >= 30,
        "most of the 50 people have a usable number: {}",
        by_person.len()
    );
    for (entity, ids) in &by_person {
        assert_eq!(ids.len(), 1, "{entity} is several unified persons: {ids:?}");
    }
}

async fn a_300_person_city_resolves_with_full_precision(kind: StoreKind) {
    let hub = busy_hub(kind).await;
    let records = synth::city(&CityConfig { people: 300, seed: 300 });
    const WORKERS: usize = 8;
    let mut work: Vec<Vec<pb::Envelope>> = vec![Vec::new(); WORKERS];
    for (i, record) in records.iter().enumerate() {
        work[i % WORKERS].push(envelope(record));
    }
    let results = push_concurrently(&hub, work, 50, 300, Arc::new(AtomicUsize::new(0))).await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    let feed = FeedState::from_changes(&read_feed(&mut platform, "").await);
    let clusters = check_clusters(&records, &feed, &results);
    let quality = pairwise(&clusters, &truth(&records));
    println!(
        "300-person city, deterministic keys only: {quality:?}; UNAVAILABLE resent so far: {}",
        RESENT.load(Ordering::Relaxed)
    );
    assert_eq!(quality.precision, 1.0, "{quality:?}");
    assert!(
        quality.true_pairs > 1000,
        "the city has people mentioned many times: {quality:?}"
    );
    // Deterministic keys alone leave out the mentions without a usable number (typos,
    // infants, employers known by name only); the probabilistic matcher of a later
    // issue raises this. With seed 300 it is 0.985; well below would mean keys stopped
    // linking (a 15-digit number not upgraded, a credit code not reduced to its
    // organisation code).
    assert!(quality.recall > 0.95, "{quality:?}");
}

// ---------------------------------------------------------------------------
// The change feed.

/// Follows the feed from `after` until a change at or past `target` (once it is set)
/// has arrived, or until `stop_after` changes when given. Returns the changes.
async fn follow(
    mut client: tongban_proto::v1::unified_client::UnifiedClient<Channel>,
    after: String,
    mut target: tokio::sync::watch::Receiver<Option<i64>>,
    stop_after: Option<usize>,
) -> Vec<pb::Change> {
    let request = pb::ChangesRequest {
        after,
        kinds: Vec::new(),
        follow: true,
        page_size: 50,
    };
    let mut stream = client.changes(request).await.expect("follow the feed").into_inner();
    let mut seen: Vec<pb::Change> = Vec::new();
    loop {
        let reached = |seen: &[pb::Change], target: Option<i64>| {
            target.is_some_and(|t| seen.last().is_some_and(|c| position(c) >= t))
        };
        if reached(&seen, *target.borrow()) || stop_after.is_some_and(|n| seen.len() >= n) {
            return seen;
        }
        tokio::select! {
            message = stream.message() => match message.expect("feed message") {
                Some(change) => seen.push(change),
                None => panic!("a following feed ended by itself after {} changes", seen.len()),
            },
            changed = target.changed() => changed.expect("target sender"),
        }
    }
}

async fn feed_consumers_see_every_change_in_commit_order(kind: StoreKind) {
    let hub = busy_hub(kind).await;
    let records = synth::city(&CityConfig { people: 1000, seed: 4 });
    // At-least-once delivery from departments too: replays and stale copies among them.
    let redeliveries = synth::replays_and_stale(&records, 4, 400);
    const WRITERS: usize = 4;
    let mut work: Vec<Vec<pb::Envelope>> = vec![Vec::new(); WRITERS];
    for (i, record) in records.iter().chain(&redeliveries).enumerate() {
        work[i % WRITERS].push(envelope(record));
    }
    let total: usize = work.iter().map(Vec::len).sum();
    assert!(total >= 2000, "a few thousand records: {total}");

    let platform = unified(&hub, &Identity::Platform).await;
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let follower = tokio::spawn(follow(platform.clone(), String::new(), target_rx.clone(), None));
    // The second consumer stops after its first 300 changes, while the writers are at work.
    let interrupted = tokio::spawn(follow(platform.clone(), String::new(), target_rx.clone(), Some(300)));

    let done = Arc::new(AtomicUsize::new(0));
    let batches = batch_count(&work, 40);
    let writers = push_concurrently(&hub, work, 40, 4, Arc::clone(&done));
    // The interrupted consumer stays away while the writers commit a few more batches,
    // then restarts from its last cursor while they go on.
    let restart = async {
        let first_part = interrupted.await.expect("first consumer");
        assert_eq!(first_part.len(), 300, "stopped part of the way");
        let stopped_at = done.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while done.load(Ordering::SeqCst) < (stopped_at + 5).min(batches) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let restarted_at = done.load(Ordering::SeqCst);
        let resume_at = first_part.last().expect("changes").cursor.clone();
        let second_part = tokio::spawn(follow(platform.clone(), resume_at.clone(), target_rx.clone(), None));
        (first_part, resume_at, second_part, (stopped_at, restarted_at))
    };
    let (results, (first_part, resume_at, second_part, (stopped_at, restarted_at))) = tokio::join!(writers, restart);
    assert_eq!(results.len(), total);

    // The whole feed as committed, read after the writers finished.
    let mut reader = platform.clone();
    let full = read_feed(&mut reader, "").await;
    let last = position(full.last().expect("changes"));
    target_tx.send(Some(last)).expect("consumers listening");
    let deadline = Duration::from_secs(60);
    let followed = tokio::time::timeout(deadline, follower)
        .await
        .expect("the follower caught up")
        .expect("follower");
    let second_part = tokio::time::timeout(deadline, second_part)
        .await
        .expect("the restarted consumer caught up")
        .expect("second consumer");

    let cursors = |changes: &[pb::Change]| changes.iter().map(position).collect::<Vec<_>>();
    let full_cursors = cursors(&full);
    assert!(
        full_cursors.windows(2).all(|w| w[0] < w[1]),
        "the feed is in cursor order"
    );
    // The follower saw every change, in order, none missing, none twice.
    assert_eq!(
        cursors(&followed),
        full_cursors,
        "the follower's changes are the feed's"
    );
    for (seen, committed) in followed.iter().zip(&full) {
        assert_eq!(seen, committed, "a change is delivered as committed");
    }
    // Versions of each entity grow by one from 1: no change of any entity is missing.
    let mut versions: HashMap<&str, i64> = HashMap::new();
    for change in &followed {
        let held = versions.entry(&change.unified_id).or_insert(0);
        assert_eq!(change.version, *held + 1, "{}: version after {held}", change.unified_id);
        *held = change.version;
    }
    // The restarted consumer: before + after = everything, nothing at or before its cursor.
    let resume_at: i64 = resume_at.parse().expect("cursor");
    assert!(
        second_part.iter().all(|c| position(c) > resume_at),
        "nothing at or before the cursor"
    );
    let mut joined = cursors(&first_part);
    joined.extend(cursors(&second_part));
    assert_eq!(joined, full_cursors, "stopped and restarted, it saw every change once");
    println!(
        "feed: {} changes for {total} pushes in {batches} batches; consumer stopped after {} changes at batch \
         {stopped_at}, restarted at batch {restarted_at}; UNAVAILABLE resent so far: {}",
        full.len(),
        first_part.len(),
        RESENT.load(Ordering::Relaxed)
    );

    // Smaller pages and a filter on the kind give the same changes.
    let request = pb::ChangesRequest {
        after: String::new(),
        kinds: vec![pb::EntityKind::Organisation as i32],
        follow: false,
        page_size: 7,
    };
    let mut organisations = Vec::new();
    let mut stream = reader.changes(request).await.expect("changes").into_inner();
    while let Some(change) = stream.message().await.expect("change") {
        organisations.push(change);
    }
    let expected: Vec<&pb::Change> = full
        .iter()
        .filter(|c| c.kind == pb::EntityKind::Organisation as i32)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        organisations.iter().collect::<Vec<_>>(),
        expected,
        "organisations only, in small pages"
    );

    // The final state a consumer holds is what a lookup answers.
    let state = FeedState::from_changes(&followed);
    let mut lookups = platform.clone();
    for (id, change) in &state.latest {
        let found = lookup_id(&mut lookups, id)
            .await
            .unwrap_or_else(|s| panic!("lookup {id}: {s:?}"));
        if change.merged_into.is_empty() {
            assert_eq!(found.version, change.version, "{id}");
            assert_eq!(found.redirected_from, "");
            assert_eq!(record_json(&found.record), record_json(&change.record), "{id}");
            assert_eq!(found.sources, change.sources, "{id}");
        } else {
            assert_eq!(found.unified_id, state.survivor(id), "{id} redirects to its survivor");
            assert_eq!(&found.redirected_from, id);
        }
    }
}

// ---------------------------------------------------------------------------

const SHARED_PERSON: &str = "370687197001010716";
const SHARED_SPOUSE: &str = "370687197202020822";

async fn sharing_rules_refuse_and_audit(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let pushed = push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000716",
            1,
            tax_person("30000000000000000716", SHARED_PERSON, "冯军"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let person = slot(&pushed, "taxpayer", 0).unified_id;
    push_one(
        &hub,
        env(
            "civil.marriage",
            "J370687-1995-000716",
            2,
            marriage(
                "J370687-1995-000716",
                party("冯军", SHARED_PERSON, "1970.01.01"),
                party("陈静", SHARED_SPOUSE, "1972.02.02"),
            ),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let by_id = || pb::lookup_request::By::UnifiedId(person.clone());

    // A department's default view: identifiers and names, its own facts, its own sources.
    let mut tax = unified(&hub, &department("tax")).await;
    let view = lookup(&mut tax, by_id(), "case-default-view", &[])
        .await
        .expect("tax may look up");
    let record = record_json(&view.record);
    assert_eq!(resident_keys(&record), vec![SHARED_PERSON]);
    let attributes: Vec<&String> = record["attributes"].as_object().expect("attributes").keys().collect();
    assert_eq!(attributes, vec!["name"], "names only, no other attribute");
    assert!(
        record["attributes"]["name"]["source"]["record_type"] == "tax.taxpayer"
            || record["attributes"]["name"].get("source").is_none(),
        "provenance in another department is not shown: {}",
        record["attributes"]["name"]
    );
    let departments: Vec<&String> = record["facts"].as_object().expect("facts").keys().collect();
    assert_eq!(departments, vec!["tax"], "no other department's facts");
    assert!(
        !view.record.contains("marriage_registration") && !view.record.contains("married"),
        "{}",
        view.record
    );
    assert!(
        record["relations"].as_array().is_none_or(Vec::is_empty),
        "relations are not granted"
    );
    assert_eq!(view.sources.len(), 1);
    assert_eq!(view.sources[0].record_type, "tax.taxpayer", "only its own sources");
    // The platform sees everything.
    let mut platform = unified(&hub, &Identity::Platform).await;
    let full = record_json(&lookup_id(&mut platform, &person).await.expect("platform").record);
    assert!(full["facts"].get("civil").is_some());
    assert_eq!(full["attributes"]["marital_status"]["value"], "married");

    // Asking for what is not granted is refused.
    let refused = lookup(&mut tax, by_id(), "case-civil-facts", &["facts:civil"])
        .await
        .expect_err("not shared");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let granted = lookup(&mut tax, by_id(), "case-own-facts", &["facts:tax"])
        .await
        .expect("own facts");
    let own = record_json(&granted.record);
    assert!(own["facts"].get("tax").is_some());
    assert!(
        own["identifiers"].as_array().is_none_or(Vec::is_empty),
        "only what was asked: {own}"
    );
    // Operations never read personal data.
    let mut ops = unified(&hub, &Identity::Ops).await;
    let refused = lookup(&mut ops, by_id(), "ops-curiosity", &[]).await.expect_err("ops");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // The feed is the platform's.
    let request = pb::ChangesRequest {
        after: String::new(),
        kinds: Vec::new(),
        follow: false,
        page_size: 0,
    };
    let refused = match tax.changes(request).await {
        Err(status) => status,
        Ok(stream) => stream
            .into_inner()
            .message()
            .await
            .expect_err("a department may not read the feed"),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A department's lookup by identifier: the audit names no number.
    let by_number = lookup(
        &mut tax,
        pb::lookup_request::By::Identifier(SHARED_PERSON.to_owned()),
        "case-by-number",
        &[],
    )
    .await
    .expect("by number");
    assert_eq!(by_number.unified_id, person);
    // A department's lookup naming no matter is refused.
    let unexplained = lookup(&mut tax, pb::lookup_request::By::UnifiedId(person.clone()), "  ", &[])
        .await
        .expect_err("a department must say why it reads");
    assert_eq!(unexplained.code(), Code::InvalidArgument, "{unexplained:?}");
    assert!(unexplained.message().contains("purpose"), "{unexplained:?}");

    // Every read and every refusal is in the audit log, before the answer left.
    let log = hub.store.audit_log(1000).await.expect("audit log");
    let entry = |identity: &str, action: &str, purpose: &str| {
        log.iter()
            .find(|e| e.identity == identity && e.action == action && e.purpose == purpose)
            .unwrap_or_else(|| panic!("no audit entry {identity} {action} {purpose:?} in {log:#?}"))
    };
    let default_view = entry("department:tax", "lookup", "case-default-view");
    assert_eq!(
        (default_view.subject.as_str(), default_view.outcome.as_str()),
        (person.as_str(), "granted")
    );
    let civil_facts = entry("department:tax", "lookup", "case-civil-facts");
    assert!(civil_facts.outcome.starts_with("refused"), "{civil_facts:?}");
    assert!(civil_facts.outcome.contains("facts:civil"), "{civil_facts:?}");
    assert_eq!(civil_facts.subject, person);
    assert_eq!(entry("department:tax", "lookup", "case-own-facts").outcome, "granted");
    let curiosity = entry("ops", "lookup", "ops-curiosity");
    assert!(curiosity.outcome.starts_with("refused"), "{curiosity:?}");
    let feed = log
        .iter()
        .find(|e| e.identity == "department:tax" && e.action == "changes")
        .unwrap_or_else(|| panic!("no refused feed in {log:#?}"));
    assert!(feed.outcome.starts_with("refused"), "{feed:?}");
    assert_eq!(
        entry("department:tax", "lookup", "  ").outcome,
        "refused: no purpose declared"
    );
    let by_number = entry("department:tax", "lookup", "case-by-number");
    assert_eq!(by_number.outcome, "granted");
    // ... but its keyed pseudonym, which the auditor (holding the hub's key) can search.
    let pseudonyms =
        tongban_gateway::pseudonym::Pseudonymiser::from_file(&hub.pki.root.join("audit-key")).expect("the hub's key");
    let lowercase_x = SHARED_PERSON.to_lowercase();
    assert_eq!(
        by_number.subject,
        format!("identifier {} → {person}", pseudonyms.pseudonym(&lowercase_x)),
        "one pseudonym for every spelling of the number"
    );
    for e in &log {
        assert!(
            !e.subject.contains(SHARED_PERSON) && !e.purpose.contains(SHARED_PERSON),
            "the audit log repeats an identity number: {e:?}"
        );
    }
    let platform_reads = log
        .iter()
        .filter(|e| e.identity == "platform" && e.action == "lookup")
        .count();
    assert!(platform_reads >= 1, "the platform's read is audited as well");
}

// ---------------------------------------------------------------------------
// Product bugs found while writing these tests. Each test states the behaviour the
// contract asks for and fails today; they are ignored so that the suite stays usable,
// and run with `cargo test -p tongban-tests --test unified -- --ignored`.

const REPLACED_MANAGER: &str = "370687198512270119";
/// A resident identity number with a wrong check character.
const NEW_MANAGER_TYPO: &str = "370687199001010031";

/// A permit's project manager is replaced: version 2 names another person whose
/// number was mistyped (no key). Were the slot to keep its previous entity, the new
/// person's mention would sit in the old person's unified record, and the next record
/// about the old person would join an entity that is two citizens. Precision before
/// recall: the new mention does not inherit.
async fn a_slot_that_now_names_someone_else_without_a_key_leaves_the_previous_person(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let permit_v = |version: i64, manager: Value| {
        env(
            "construction.permit",
            "370687202401019999",
            version,
            permit("370687202401019999", manager),
        )
    };
    let first = push_one(
        &hub,
        permit_v(1, json!({"xm": "张伟", "zjhm": REPLACED_MANAGER})),
        pb::Outcome::Accepted,
    )
    .await;
    let zhang = slot(&first, "project_manager", 0).unified_id;
    let second = push_one(
        &hub,
        permit_v(2, json!({"xm": "李强", "zjhm": NEW_MANAGER_TYPO})),
        pb::Outcome::Accepted,
    )
    .await;
    let li = slot(&second, "project_manager", 0).unified_id;
    // 张伟 is named again, by tax, with his number.
    let tax = push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000119",
            3,
            tax_person("30000000000000000119", REPLACED_MANAGER, "张伟"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let zhang_again = slot(&tax, "taxpayer", 0).unified_id;
    let mut platform = unified(&hub, &Identity::Platform).await;
    let record = lookup_id(&mut platform, &zhang_again).await.expect("lookup");
    let names = record_json(&record.record)["variants"]["name"].clone();
    assert_eq!(zhang_again, zhang, "张伟 keeps his unified ID");
    assert_ne!(li, zhang, "李强 (no usable number) is not 张伟: {names}");
    assert!(
        !record.sources.iter().any(|s| s.record_type == "construction.permit"),
        "张伟's record holds the permit's manager slot, which now names 李强: {:?}, names {names}",
        record.sources
    );
}

/// The sharing rules give a department identifiers, names and its own facts, and
/// nothing that tells which other departments know the person (that a person is
/// known to civil affairs is itself personal data): not the name's provenance, not
/// another department's register numbers (the HRSS person number).
async fn a_departments_view_does_not_reveal_which_other_departments_know_the_person(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000716",
            1,
            tax_person("30000000000000000716", SHARED_PERSON, "冯军"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000716-10000716",
            2,
            hrss("0000000716", "10000716", SHARED_PERSON, "冯 军"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let civil = push_one(
        &hub,
        env(
            "civil.marriage",
            "J370687-1995-000716",
            3,
            marriage(
                "J370687-1995-000716",
                party("冯军", SHARED_PERSON, "1970.01.01"),
                party("陈静", SHARED_SPOUSE, "1972.02.02"),
            ),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let person = slot(&civil, "party", 0).unified_id;
    let mut tax = unified(&hub, &department("tax")).await;
    let view = lookup_id(&mut tax, &person).await.expect("tax may look up");
    for other in ["civil", "hrss"] {
        assert!(
            !view.record.contains(other),
            "tax's default view reveals that {other} knows the person: {}",
            view.record
        );
    }
}

/// After a merge, the unified records related to the absorbed entity (here its
/// employer) name the survivor: the merging batch rebuilds them too.
async fn relations_name_the_survivor_after_a_merge(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let tax = push_one(
        &hub,
        env(
            "tax.taxpayer",
            "30000000000000000777",
            1,
            tax_person("30000000000000000777", MERGED_PERSON, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let survivor = slot(&tax, "taxpayer", 0).unified_id;
    let old_job = push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000777-10000100",
            2,
            hrss("0000000777", "10000100", MERGED_PERSON_TYPO, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let absorbed = slot(&old_job, "insured", 0).unified_id;
    let old_employer = slot(&old_job, "employer", 0).unified_id;
    push_one(
        &hub,
        env(
            "hrss.insured_person",
            "0000000777-10000200",
            3,
            hrss("0000000777", "10000200", MERGED_PERSON, "赵丽"),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    let employer = record_json(&lookup_id(&mut platform, &old_employer).await.expect("lookup").record);
    let employees: Vec<&Value> = employer["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| &r["unified_id"])
        .collect();
    assert_eq!(
        employees,
        vec![&Value::from(survivor.as_str())],
        "the employer's relation names {absorbed}, merged into {survivor}"
    );
}

/// Civil affairs registered the couple's marriage in 2005 and their divorce in 2020.
/// In 2024 a clerk corrected a typo in the 2005 marriage record, so its
/// `source_version` (last-modified time) is now the newest. The authority says they
/// are divorced: the latest registration decides, not the latest edit. (With
/// revision counters, which the envelope also allows, versions of two records are not
/// comparable at all.)
async fn marital_status_follows_the_latest_registration_not_the_latest_edit(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    const CORRECTED_2024: i64 = 1_714_521_600_000; // 2024-05-01
    const REGISTERED_2020: i64 = 1_590_969_600_000; // 2020-06-01
    let couple = || {
        (
            party("冯军", SHARED_PERSON, "1970.01.01"),
            party("陈静", SHARED_SPOUSE, "1972.02.02"),
        )
    };
    let (man, woman) = couple();
    let wedding = push_one(
        &hub,
        env(
            "civil.marriage",
            "J370687-2005-000009",
            CORRECTED_2024,
            marriage("J370687-2005-000009", man, woman),
        ),
        pb::Outcome::Accepted,
    )
    .await;
    let (man, woman) = couple();
    let divorce = with(
        marriage("L370687-2020-000009", man, woman),
        json!({"ywlx": "离婚", "djrq": "2020.06.01"}),
    );
    push_one(
        &hub,
        env("civil.marriage", "L370687-2020-000009", REGISTERED_2020, divorce),
        pb::Outcome::Accepted,
    )
    .await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    for (role, index) in [("party", 0), ("party", 1)] {
        let id = slot(&wedding, role, index).unified_id;
        let record = record_json(&lookup_id(&mut platform, &id).await.expect("lookup").record);
        let status = &record["attributes"]["marital_status"];
        assert_eq!(status["value"], "divorced", "{role}/{index}: {status}");
    }
}
