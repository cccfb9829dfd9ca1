//! A data steward's work over real gRPC with mutual TLS, against both stores: pairs
//! matching could not settle land in the review queue and page oldest first with both
//! sides' records; "same" merges them; "different" keeps them apart whatever is pushed
//! again; a split takes a mention out for good; a merge by ID; explanations name a
//! placement for every source; only stewards act (the platform may read explanations),
//! and every decision and every refusal is in the audit log.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tongban_gateway::identity::Identity;
use tongban_gateway::store::{AuditEntry, Store};
use tongban_proto::v1 as pb;
use tongban_proto::v1::stewardship_client::StewardshipClient;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tongban_tests::unified::{
    env, lookup_identifier, outcome, owner, push, read_feed, record_json, unified, FeedState, MentionAddr,
};
use tonic::transport::Channel;
use tonic::Code;

tongban_tests::on_both_stores!(
    the_thresholds_link_queue_or_found_a_new_entity,
    a_foreigner_typed_differently_is_matched,
    rematching_with_new_weights_links_more_and_keeps_decisions,
    pairs_between_the_thresholds_are_queued_and_page_oldest_first,
    the_most_uncertain_pairs_come_first_and_a_merge_is_in_the_history,
    same_merges_the_pair,
    different_keeps_the_pair_apart_for_ever,
    a_split_mention_stays_split,
    stewards_merge_entities_by_id,
    explanations_place_every_source,
    only_stewards_act_and_refusals_are_audited,
);

// ---------------------------------------------------------------------------
// Records, as the departments export them.

/// 陈伟, born 1979-03-15 (his identity number says so).
const CHEN_WEI: &str = "37062919790315001X";
/// 林芳, born 1981-04-02.
const LIN_FANG: &str = "370687198104020022";
/// The marriage registration whose parties carry passports only, and birth dates in
/// the right month but on the wrong day: name and month agree, nothing else is known,
/// so each party scores between the review (10 bits) and link (20 bits) thresholds
/// against the taxpayer of the same name.
const MARRIAGE: &str = "J370687-2005-000100";

fn taxpayer(djxh: &str, nsrsbh: &str, name: &str, version: i64) -> pb::Envelope {
    env(
        "tax.taxpayer",
        djxh,
        version,
        json!({"djxh": djxh, "nsrsbh": nsrsbh, "nsrmc": name, "nsrlx": "3", "zjlx_dm": "201", "fddbrxm": "",
               "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "zcdz": "", "scjydz": "", "lxdh": "", "hy_dm": "",
               "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"}),
    )
}

fn insured(grbh: &str, sfzhm: &str, name: &str, csrq: &str, version: i64) -> pb::Envelope {
    let dwbh = "10000001";
    env(
        "hrss.insured_person",
        &format!("{grbh}-{dwbh}"),
        version,
        json!({"grbh": grbh, "zjlx": "01", "sfzhm": sfzhm, "xm": name, "xb": "1", "csrq": csrq, "mz": "01",
               "lxdh": "", "hjdz": "", "jzdz": "", "dwbh": dwbh, "dwmc": "海阳市第10000001号单位",
               "dwtyshxydm": "", "cbzt": "1", "xzlx": ["110", "310"], "cbrq": "2008-03-01", "sbkh": ""}),
    )
}

fn marriage(version: i64) -> pb::Envelope {
    marriage_of(
        MARRIAGE,
        ("陈伟", "E12345678", "1979.03.20"),
        ("林芳", "E87654321", "1981.04.25"),
        version,
    )
}

/// A marriage registration between a man and a woman, each `(name, passport, birth date)`.
fn marriage_of(zsbh: &str, man: (&str, &str, &str), woman: (&str, &str, &str), version: i64) -> pb::Envelope {
    let party = |(name, passport, csrq): (&str, &str, &str)| json!({"xm": name, "zjlx": "2", "zjhm": passport, "csrq": csrq, "gj": "中国", "hjdz": ""});
    env(
        "civil.marriage",
        zsbh,
        version,
        json!({"zsbh": zsbh, "ywlx": "结婚", "djrq": "2005.10.01", "djjg": "海阳市民政局婚姻登记处",
               "nan": party(man), "nv": party(woman)}),
    )
}

const CHEN_WEI_TAX: &str = "30000000000000000001";
const LIN_FANG_TAX: &str = "30000000000000000002";

/// Pushes each envelope as its department, one batch each, and expects them accepted;
/// returns the unified ID of every mention.
async fn push_all(hub: &TestHub, envelopes: Vec<pb::Envelope>) -> Vec<(MentionAddr, String)> {
    let mut placed = Vec::new();
    for envelope in envelopes {
        let mut client = hub.exchange(&owner(&envelope.record_type)).await;
        let context = format!("{} {}", envelope.record_type, envelope.source_id);
        let result = push(&mut client, "steward-test", vec![envelope]).await.remove(0);
        assert_eq!(
            outcome(&result),
            pb::Outcome::Accepted,
            "{context}: {:?}",
            result.errors
        );
        for m in &result.mentions {
            placed.push((
                MentionAddr::new(&result.record_type, &result.source_id, &m.role, m.index),
                m.unified_id.clone(),
            ));
        }
    }
    placed
}

/// Where the mention `role`/`index` of record `source_id` went.
fn id_of(placed: &[(MentionAddr, String)], source_id: &str, role: &str, index: u32) -> String {
    placed
        .iter()
        .find(|(m, _)| m.source_id == source_id && m.role == role && m.index == index)
        .map(|(_, id)| id.clone())
        .unwrap_or_else(|| panic!("no {source_id} {role}/{index} in {placed:?}"))
}

fn steward_identity() -> Identity {
    Identity::Steward("steward".to_owned())
}

async fn stewardship(hub: &TestHub, identity: &Identity) -> StewardshipClient<Channel> {
    StewardshipClient::new(hub.channel(identity).await).max_decoding_message_size(64 * 1024 * 1024)
}

async fn list(client: &mut StewardshipClient<Channel>, after: i64, page_size: u32) -> pb::ListReviewsResponse {
    client
        .list_reviews(pb::ListReviewsRequest { after, page_size })
        .await
        .expect("list reviews")
        .into_inner()
}

async fn decide(
    client: &mut StewardshipClient<Channel>,
    pair_id: i64,
    verdict: pb::Verdict,
) -> Result<pb::StewardResponse, tonic::Status> {
    client
        .decide(pb::DecideRequest {
            pair_id,
            verdict: verdict.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The placements of an entity's sources.
async fn explain(client: &mut StewardshipClient<Channel>, id: &str) -> Vec<pb::SourcePlacement> {
    client
        .explain(pb::ExplainRequest {
            unified_id: id.to_owned(),
        })
        .await
        .expect("explain")
        .into_inner()
        .sources
}

fn mention_ref(record_type: &str, source_id: &str, role: &str, index: u32) -> pb::MentionRef {
    pb::MentionRef {
        record_type: record_type.to_owned(),
        source_id: source_id.to_owned(),
        role: role.to_owned(),
        index,
    }
}

/// The feed replayed as the platform holds it.
async fn feed(hub: &TestHub) -> FeedState {
    let mut platform = unified(hub, &Identity::Platform).await;
    FeedState::from_changes(&read_feed(&mut platform, "").await)
}

fn sources_of(state: &FeedState, id: &str) -> BTreeSet<MentionAddr> {
    let change = state
        .latest
        .get(id)
        .unwrap_or_else(|| panic!("{id} is not in the feed"));
    change.sources.iter().map(MentionAddr::from).collect()
}

fn distinct_from(state: &FeedState, id: &str) -> Vec<String> {
    let record = record_json(&state.latest[id].record);
    record["distinct_from"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn addr(record_type: &str, source_id: &str, role: &str, index: u32) -> MentionAddr {
    MentionAddr::new(record_type, source_id, role, index)
}

async fn audit_log(hub: &TestHub) -> Vec<AuditEntry> {
    hub.store.audit_log(10_000).await.expect("audit log")
}

fn audited<'a>(log: &'a [AuditEntry], identity: &str, action: &str) -> Vec<&'a AuditEntry> {
    log.iter()
        .filter(|e| e.identity == identity && e.action == action)
        .collect()
}

/// Two taxpayers, then a marriage whose parties each land in review against one of
/// them. Returns where every mention went.
async fn two_queued_parties(hub: &TestHub) -> Vec<(MentionAddr, String)> {
    push_all(
        hub,
        vec![
            taxpayer(CHEN_WEI_TAX, CHEN_WEI, "陈伟", 1),
            taxpayer(LIN_FANG_TAX, LIN_FANG, "林芳", 1),
            marriage(1),
        ],
    )
    .await
}

// ---------------------------------------------------------------------------

/// Without a key the hub holds, a mention is compared with the candidates its blocking
/// keys find: name and full birth date link it (above 20 bits), name and birth month
/// only queue it (between 10 and 20), a name with another birth date founds a new entity.
async fn the_thresholds_link_queue_or_found_a_new_entity(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let held = push_all(
        &hub,
        vec![
            insured("3700000001", CHEN_WEI, "陈伟", "1979-03-15", 1),
            taxpayer(LIN_FANG_TAX, LIN_FANG, "林芳", 1),
        ],
    )
    .await;
    let chen = id_of(&held, "3700000001-10000001", "insured", 0);
    let lin = id_of(&held, LIN_FANG_TAX, "taxpayer", 0);

    let mut civil = hub.exchange(&department("civil")).await;
    let married = push(
        &mut civil,
        "thresholds",
        vec![
            marriage_of(
                "J370687-2005-000200",
                ("陈伟", "E11111111", "1979.03.15"),
                ("林芳", "E22222222", "1981.04.25"),
                1,
            ),
            marriage_of(
                "J370687-2012-000300",
                ("陈伟", "E33333333", "1990.07.01"),
                ("王芳", "E44444444", "1991.02.03"),
                1,
            ),
        ],
    )
    .await;
    let placed = |record: usize, index: u32| -> (String, String) {
        let m = married[record]
            .mentions
            .iter()
            .find(|m| m.index == index)
            .unwrap_or_else(|| panic!("party {index} of record {record}: {:?}", married[record]));
        (m.unified_id.clone(), m.resolved_by.clone())
    };
    assert_eq!(
        placed(0, 0),
        (chen.clone(), "matched".to_owned()),
        "name and birth date: linked"
    );
    let (lin_party, how) = placed(0, 1);
    assert_eq!(how, "queued", "name and birth month only: a steward decides");
    assert_ne!(lin_party, lin, "a queued mention is its own entity meanwhile");
    let (other_chen, how) = placed(1, 0);
    assert_eq!(how, "founded", "another 陈伟, born eleven years later");
    assert_ne!(other_chen, chen);
    assert_eq!(placed(1, 1).1, "founded", "nobody to compare with");

    let mut desk = stewardship(&hub, &steward_identity()).await;
    let queue = list(&mut desk, 0, 50).await;
    assert_eq!(queue.pairs.len(), 1, "{queue:?}");
    assert_eq!(queue.pairs[0].entity_id, lin_party);
    assert_eq!(queue.pairs[0].candidate_id, lin);
    let sources = explain(&mut desk, &chen).await;
    let by: BTreeSet<&str> = sources.iter().map(|s| s.by.as_str()).collect();
    assert_eq!(
        by,
        BTreeSet::from(["founded", "matched"]),
        "the insured founded 陈伟, the party was matched: {sources:?}"
    );

    // The same registration again, corrected elsewhere: the open question is not asked twice.
    let again = push(
        &mut civil,
        "thresholds",
        vec![marriage_of(
            "J370687-2005-000200",
            ("陈伟", "E11111111", "1979.03.15"),
            ("林芳", "E22222222", "1981.04.25"),
            2,
        )],
    )
    .await;
    assert_eq!(outcome(&again[0]), pb::Outcome::Accepted);

    assert_eq!(
        list(&mut desk, 0, 50).await.pairs.len(),
        1,
        "one open pair per two entities"
    );
}

/// A foreign resident insured by HRSS, with a passport (`zjlx` 03) and a Latin name and
/// address as typed.
fn foreign_insured(grbh: &str, passport: &str, name: &str, csrq: &str, address: &str) -> pb::Envelope {
    let dwbh = "10000002";
    env(
        "hrss.insured_person",
        &format!("{grbh}-{dwbh}"),
        1,
        json!({"grbh": grbh, "zjlx": "03", "sfzhm": passport, "xm": name, "xb": "2", "csrq": csrq, "mz": "",
               "lxdh": "", "hjdz": address, "jzdz": "", "dwbh": dwbh, "dwmc": "海阳市第10000002号单位",
               "dwtyshxydm": "", "cbzt": "1", "xzlx": ["110"], "cbrq": "2020-01-01", "sbkh": ""}),
    )
}

/// The same foreigner typed by two clerks: two digits of the passport swapped, the
/// given name left out, the address's parts in another order. The passport number one
/// character away finds her; the name part, the birth date and the address link her.
async fn a_foreigner_typed_differently_is_matched(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let held = push_all(
        &hub,
        vec![foreign_insured(
            "3800000001",
            "E12345678",
            "Lauren Gibb",
            "1969-04-30",
            "The Gums, 35 Tenison-Woods Circuit, Adamstown Heights NSW 6333",
        )],
    )
    .await;
    let lauren = id_of(&held, "3800000001-10000002", "insured", 0);
    let again = push_all(
        &hub,
        vec![foreign_insured(
            "3800000002",
            "E12345687",
            "GIBB",
            "1969-04-30",
            "35 Tenison-Woods Circuit, Adamstown Heights NSW 6333",
        )],
    )
    .await;
    assert_eq!(id_of(&again, "3800000002-10000002", "insured", 0), lauren);

    let mut desk = stewardship(&hub, &steward_identity()).await;
    let sources = explain(&mut desk, &lauren).await;
    let matched = sources
        .iter()
        .find(|s| s.by == "matched")
        .unwrap_or_else(|| panic!("the second record was matched: {sources:?}"));
    let placement: Value = serde_json::from_str(&matched.placement).expect("placement JSON");
    let levels: BTreeSet<(String, String)> = placement["evidence"]["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_owned(),
                c["level"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (field, level) in [
        ("name", "part_missing"),
        ("birth_date", "exact"),
        ("document", "one_edit"),
        ("address", "mostly_contained"),
    ] {
        assert!(
            levels.contains(&(field.to_owned(), level.to_owned())),
            "{field} {level}: {levels:?}"
        );
    }
}

/// What `tongban rematch` does: every current record read again through its adapter
/// and resolved again, here with a lower link threshold.
async fn rematch(store: &tongban_gateway::store::AnyStore) -> usize {
    let mut batch = Vec::new();
    for record in store.current_records(None, 10_000).await.expect("current records") {
        let record_type = record.record_type.parse().expect("a known record type");
        let payload: Value = serde_json::from_str(&record.version.payload).expect("stored JSON");
        let contribution =
            tongban_gateway::pipeline::adapt::contribution(record_type, &payload, record.version.deleted)
                .expect("the adapter reads what it read before");
        batch.push(tongban_gateway::store::Reresolution {
            source_id: record.source_id,
            source_version: record.version.source_version,
            contribution,
        });
    }
    store.reresolve(batch).await.expect("resolved again")
}

async fn rematching_with_new_weights_links_more_and_keeps_decisions(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let chen_party = id_of(&placed, MARRIAGE, "party", 0);
    let lin = id_of(&placed, LIN_FANG_TAX, "taxpayer", 0);
    let lin_party = id_of(&placed, MARRIAGE, "party", 1);
    let mut desk = stewardship(&hub, &steward_identity()).await;
    let queue = list(&mut desk, 0, 10).await;
    let chen_pair = queue
        .pairs
        .iter()
        .find(|p| p.entity_id == chen_party)
        .expect("陈伟's pair is queued");
    decide(&mut desk, chen_pair.id, pb::Verdict::Different)
        .await
        .expect("different");
    let before = feed_length(&hub).await;

    // Weights that would link both parties (name and birth month now suffice).
    let mut settings = tongban_gateway::resolve::Settings::default();
    settings.matching.person.link = 12.0;
    settings.matching.person.review = 8.0;
    let store = hub.store.clone().with_resolution(settings);
    assert_eq!(rematch(&store).await, 3, "every current record is resolved again");

    let after = feed(&hub).await;
    assert_eq!(
        after.latest[&lin_party].merged_into, lin,
        "林芳's party now links to the taxpayer"
    );
    assert!(sources_of(&after, &lin).contains(&addr("civil.marriage", MARRIAGE, "party", 1)));
    assert!(
        after.latest[&chen_party].merged_into.is_empty(),
        "the steward said 陈伟's party is someone else: it stays apart"
    );
    assert_eq!(
        sources_of(&after, &chen_party),
        BTreeSet::from([addr("civil.marriage", MARRIAGE, "party", 0)])
    );
    let published = feed_length(&hub).await;
    assert!(published > before, "the changes are in the feed");

    // A second pass finds nothing new to say: nothing is published.
    rematch(&store).await;
    assert_eq!(
        feed_length(&hub).await,
        published,
        "an unchanged record is not republished"
    );
}

/// Changes in the feed so far.
async fn feed_length(hub: &TestHub) -> usize {
    let mut platform = unified(hub, &Identity::Platform).await;
    read_feed(&mut platform, "").await.len()
}

async fn pairs_between_the_thresholds_are_queued_and_page_oldest_first(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let chen = id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0);
    let lin = id_of(&placed, LIN_FANG_TAX, "taxpayer", 0);
    let chen_party = id_of(&placed, MARRIAGE, "party", 0);
    let lin_party = id_of(&placed, MARRIAGE, "party", 1);
    assert_ne!(
        chen_party, chen,
        "between the thresholds the party founds its own entity"
    );
    assert_ne!(lin_party, lin);

    let mut steward = stewardship(&hub, &steward_identity()).await;
    let all = list(&mut steward, 0, 0).await;
    assert_eq!(all.pairs.len(), 2, "{:#?}", all.pairs);

    // One pair a page, oldest first; next_after leads on.
    let first = list(&mut steward, 0, 1).await;
    assert_eq!(first.pairs.len(), 1);
    let pair = &first.pairs[0];
    assert_eq!(first.next_after, pair.id);
    assert_eq!(
        pair.mention.as_ref().map(MentionAddr::from),
        Some(addr("civil.marriage", MARRIAGE, "party", 0))
    );
    assert_eq!(
        (pair.entity_id.as_str(), pair.candidate_id.as_str()),
        (chen_party.as_str(), chen.as_str())
    );
    assert!(
        (10.0..20.0).contains(&pair.total_weight),
        "between the review and link thresholds: {}",
        pair.total_weight
    );
    let fields: Vec<(&str, &str)> = pair
        .comparisons
        .iter()
        .map(|c| (c.field.as_str(), c.level.as_str()))
        .collect();
    assert_eq!(fields, vec![("name", "exact"), ("birth_date", "year_month")]);
    let sum: f64 = pair.comparisons.iter().map(|c| c.weight).sum();
    assert!((sum - pair.total_weight).abs() < 0.01, "{sum} vs {}", pair.total_weight);
    assert!(
        pair.queued_at.len() == 24 && pair.queued_at.ends_with('Z') && pair.queued_at.as_bytes()[10] == b'T',
        "RFC 3339: {}",
        pair.queued_at
    );
    // Both sides, as their current unified records.
    let entity = record_json(&pair.entity_record);
    let candidate = record_json(&pair.candidate_record);
    assert_eq!(entity["unified_id"], chen_party.as_str());
    assert_eq!(candidate["unified_id"], chen.as_str());
    assert_eq!(entity["attributes"]["name"]["value"], "陈伟");
    assert_eq!(entity["attributes"]["birth_date"]["value"], "1979-03-20");
    assert_eq!(candidate["attributes"]["birth_date"]["value"], "1979-03-15");
    assert_eq!(candidate["identifiers"][0]["value"], CHEN_WEI);

    let second = list(&mut steward, first.next_after, 1).await;
    assert_eq!(second.pairs.len(), 1);
    assert!(second.pairs[0].id > pair.id, "oldest first");
    assert_eq!(
        second.pairs[0].mention.as_ref().map(MentionAddr::from),
        Some(addr("civil.marriage", MARRIAGE, "party", 1))
    );
    assert_eq!(second.pairs[0].candidate_id, lin);
    assert_eq!(second.next_after, second.pairs[0].id);
    let end = list(&mut steward, second.next_after, 1).await;
    assert!(end.pairs.is_empty());
    assert_eq!(end.next_after, second.next_after, "an empty page stays where it is");

    // A page is capped, not refused.
    assert_eq!(list(&mut steward, 0, 100_000).await.pairs.len(), 2);

    // Reading the queue is a read of personal data: audited.
    let log = audit_log(&hub).await;
    let reads = audited(&log, "steward:steward", "steward.reviews");
    assert!(
        reads.len() >= 5 && reads.iter().all(|e| e.outcome == "granted"),
        "{reads:#?}"
    );
}

/// The console's other order: nearest the middle of the review band (15 bits for
/// persons by default) first, then oldest; `skip` pages through it. After a "same", the
/// survivor's history (the console's entity view) holds the absorbed entity's merge and
/// the survivor's version that the mention joined.
async fn the_most_uncertain_pairs_come_first_and_a_merge_is_in_the_history(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let chen = id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0);
    let chen_party = id_of(&placed, MARRIAGE, "party", 0);

    let oldest = hub.store.review_queue(0, 10).await.expect("queue");
    assert_eq!(oldest.len(), 2);
    // Both parties score alike; the older pair is made the less uncertain of the two
    // (near the review threshold), so the order can only come out reversed.
    let settings = tongban_gateway::resolve::Settings::default();
    let person = &settings.matching.person;
    let middle = (person.review + person.link) / 2.0;
    let near_review = format!(
        "UPDATE review_pairs SET total = {} WHERE id = {}",
        person.review + 0.1,
        oldest[0].id
    );
    match kind {
        StoreKind::Embedded => {
            let connection = rusqlite::Connection::open(hub.dir.path().join("tongban.db")).expect("open the file");
            connection
                .execute_batch(&near_review)
                .expect("moved away from the middle");
        }
        StoreKind::Postgres => {
            let client = hub.database.as_ref().expect("a database").connect().await;
            client
                .batch_execute(&near_review)
                .await
                .expect("moved away from the middle");
        }
    }
    assert!((oldest[1].evidence.total - middle).abs() < (person.review + 0.1 - middle).abs());
    let uncertain = hub.store.review_queue_uncertain(0, 10).await.expect("uncertain order");
    let ids: Vec<i64> = uncertain.iter().map(|p| p.id).collect();
    assert_eq!(
        ids,
        vec![oldest[1].id, oldest[0].id],
        "the pair nearer the middle first"
    );
    let second = hub
        .store
        .review_queue_uncertain(ids[0], 10)
        .await
        .expect("after the first");
    assert_eq!(second.iter().map(|p| p.id).collect::<Vec<_>>(), ids[1..].to_vec());
    assert!(hub
        .store
        .review_queue_uncertain(ids[1], 10)
        .await
        .expect("past the end")
        .is_empty());

    let pair = oldest
        .iter()
        .find(|p| p.entity == chen_party)
        .expect("Chen Wei's party is queued");
    let mut steward = stewardship(&hub, &steward_identity()).await;
    let merged = decide(&mut steward, pair.id, pb::Verdict::Same).await.expect("same");
    assert_eq!(merged.survivor, chen, "the older entity survives");
    let history = hub.store.entity_history(&chen, 50).await.expect("history");
    let positions: Vec<i64> = history.iter().map(|c| c.position).collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "newest first: {positions:?}");
    assert!(
        history
            .iter()
            .any(|c| c.head.unified_id == chen_party && c.head.merged_into.as_deref() == Some(chen.as_str())),
        "the absorbed entity's merge is in the survivor's history: {history:#?}"
    );
    let newest = history
        .iter()
        .find(|c| c.head.unified_id == chen)
        .expect("the survivor's own changes");
    assert!(
        newest
            .head
            .sources
            .iter()
            .any(|s| s.source_id == MARRIAGE && s.index == 0),
        "its newest version holds the party that joined: {newest:#?}"
    );
    assert!(history
        .iter()
        .all(|c| c.head.unified_id == chen || c.head.unified_id == chen_party));
}

async fn same_merges_the_pair(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let chen_party = id_of(&placed, MARRIAGE, "party", 0);
    let mut steward = stewardship(&hub, &steward_identity()).await;
    let pair = list(&mut steward, 0, 1).await.pairs.remove(0);
    let chen = pair.candidate_id.clone();

    let outcome = decide(&mut steward, pair.id, pb::Verdict::Same).await.expect("same");
    assert_eq!(outcome.survivor, chen, "the older ID survives");
    assert!(outcome.created.is_empty());
    let changed: BTreeSet<&str> = outcome.changed.iter().map(String::as_str).collect();
    assert!(
        changed.contains(chen.as_str()) && changed.contains(chen_party.as_str()),
        "{changed:?}"
    );

    // The feed: the absorbed ID names its survivor, the survivor has both sources.
    let state = feed(&hub).await;
    assert_eq!(state.latest[&chen_party].merged_into, chen);
    assert!(state.latest[&chen_party].record.is_empty());
    assert_eq!(
        sources_of(&state, &chen),
        BTreeSet::from([
            addr("tax.taxpayer", CHEN_WEI_TAX, "taxpayer", 0),
            addr("civil.marriage", MARRIAGE, "party", 0),
        ])
    );
    let record = record_json(&state.latest[&chen].record);
    assert_eq!(record["attributes"]["marital_status"]["value"], "married");

    // The pair is closed: off the queue, and not decided twice.
    let open = list(&mut steward, 0, 0).await;
    assert!(open.pairs.iter().all(|p| p.id != pair.id), "{:#?}", open.pairs);
    let again = decide(&mut steward, pair.id, pb::Verdict::Different)
        .await
        .expect_err("decided already");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let missing = decide(&mut steward, 999_999, pb::Verdict::Same)
        .await
        .expect_err("no such pair");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let unspecified = decide(&mut steward, pair.id, pb::Verdict::Unspecified)
        .await
        .expect_err("no verdict");
    assert_eq!(unspecified.code(), Code::InvalidArgument, "{unspecified:?}");

    // Re-pushing the records changes nothing of the decision.
    push_all(&hub, vec![marriage(2), taxpayer(CHEN_WEI_TAX, CHEN_WEI, "陈伟", 2)]).await;
    let state = feed(&hub).await;
    assert_eq!(state.survivor(&chen_party), chen);
    assert_eq!(sources_of(&state, &chen).len(), 2);

    // The decision is audited as the steward's, once.
    let log = audit_log(&hub).await;
    let decisions = audited(&log, "steward:steward", "steward.review.same");
    assert_eq!(decisions.len(), 1, "{log:#?}");
    assert_eq!(decisions[0].subject, format!("pair {}", pair.id));
    assert_eq!(decisions[0].outcome, "done");
}

async fn different_keeps_the_pair_apart_for_ever(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let lin_party = id_of(&placed, MARRIAGE, "party", 1);
    let mut steward = stewardship(&hub, &steward_identity()).await;
    let pair = list(&mut steward, 0, 0)
        .await
        .pairs
        .into_iter()
        .find(|p| p.entity_id == lin_party)
        .expect("林芳's pair");
    let lin = pair.candidate_id.clone();

    let outcome = decide(&mut steward, pair.id, pb::Verdict::Different)
        .await
        .expect("different");
    assert!(outcome.survivor.is_empty() && outcome.created.is_empty());
    let changed: BTreeSet<&str> = outcome.changed.iter().map(String::as_str).collect();
    assert_eq!(changed, BTreeSet::from([lin.as_str(), lin_party.as_str()]));

    // Both are republished, each naming the other as distinct.
    let state = feed(&hub).await;
    assert_eq!(distinct_from(&state, &lin), vec![lin_party.clone()]);
    assert_eq!(distinct_from(&state, &lin_party), vec![lin.clone()]);
    let open = list(&mut steward, 0, 0).await;
    assert!(open.pairs.iter().all(|p| p.id != pair.id));
    let explained = explain(&mut steward, &lin_party).await;
    assert_eq!(
        (explained[0].by.as_str(), explained[0].summary.as_str()),
        ("steward", "put here by a steward (different)")
    );

    // The same records again, as new versions: still two people, still apart, and no
    // new pair for the steward.
    let placed = push_all(
        &hub,
        vec![taxpayer(LIN_FANG_TAX, LIN_FANG, "林芳", 2), marriage(2), marriage(3)],
    )
    .await;
    assert_eq!(id_of(&placed, MARRIAGE, "party", 1), lin_party);
    let state = feed(&hub).await;
    assert!(state.latest[&lin].merged_into.is_empty());
    assert!(state.latest[&lin_party].merged_into.is_empty());
    assert_eq!(
        sources_of(&state, &lin_party),
        BTreeSet::from([addr("civil.marriage", MARRIAGE, "party", 1)])
    );
    assert_eq!(
        sources_of(&state, &lin),
        BTreeSet::from([addr("tax.taxpayer", LIN_FANG_TAX, "taxpayer", 0)])
    );
    assert_eq!(distinct_from(&state, &lin), vec![lin_party.clone()]);
    assert_eq!(distinct_from(&state, &lin_party), vec![lin.clone()]);
    assert_eq!(explain(&mut steward, &lin_party).await[0].by, "steward");
    let open = list(&mut steward, 0, 0).await;
    assert!(
        open.pairs
            .iter()
            .all(|p| p.mention.as_ref().map(|m| m.index) != Some(1)),
        "no new pair for a decided mention: {:#?}",
        open.pairs
    );

    // Even when the department corrects the party's document to 林芳's own identity
    // number, a key her taxpayer's entity holds: the steward's "different" stands, and
    // the number still finds the taxpayer.
    let mut corrected = marriage(4);
    let text = String::from_utf8(corrected.payload).expect("UTF-8 payload").replace(
        r#""xm":"林芳","zjhm":"E87654321","zjlx":"2""#,
        &format!(r#""xm":"林芳","zjhm":"{LIN_FANG}","zjlx":"1""#),
    );
    assert!(text.contains(LIN_FANG), "{text}");
    corrected.payload = text.into_bytes();
    let placed = push_all(&hub, vec![corrected]).await;
    assert_eq!(id_of(&placed, MARRIAGE, "party", 1), lin_party);
    let state = feed(&hub).await;
    assert!(state.latest[&lin].merged_into.is_empty() && state.latest[&lin_party].merged_into.is_empty());
    assert_eq!(sources_of(&state, &lin_party).len(), 1);
    assert_eq!(sources_of(&state, &lin).len(), 1);
    let mut platform = unified(&hub, &Identity::Platform).await;
    let found = lookup_identifier(&mut platform, LIN_FANG)
        .await
        .expect("lookup by number");
    assert_eq!(found.unified_id, lin);

    // A "different" on a pair that is one entity by now is refused.
    let chen_pair = open.pairs.first().expect("陈伟's pair is still open").clone();
    steward
        .merge(pb::MergeRequest {
            unified_id: chen_pair.entity_id.clone(),
            other_id: chen_pair.candidate_id.clone(),
        })
        .await
        .expect("merge");
    let refused = decide(&mut steward, chen_pair.id, pb::Verdict::Different)
        .await
        .expect_err("one entity already");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let log = audit_log(&hub).await;
    let decisions = audited(&log, "steward:steward", "steward.review.different");
    assert_eq!(decisions.len(), 1, "only the decision carried out: {log:#?}");
    assert_eq!(decisions[0].subject, format!("pair {}", pair.id));
}

async fn a_split_mention_stays_split(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = push_all(
        &hub,
        vec![
            taxpayer(CHEN_WEI_TAX, CHEN_WEI, "陈伟", 1),
            insured("0000000001", CHEN_WEI, "陈伟", "1979-03-15", 1),
        ],
    )
    .await;
    let chen = id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0);
    let hrss_source = "0000000001-10000001";
    assert_eq!(id_of(&placed, hrss_source, "insured", 0), chen, "one key, one person");

    let mut steward = stewardship(&hub, &steward_identity()).await;
    let outcome = steward
        .split(pb::SplitRequest {
            mention: Some(mention_ref("hrss.insured_person", hrss_source, "insured", 0)),
        })
        .await
        .expect("split")
        .into_inner();
    let created = outcome.created.clone();
    assert!(!created.is_empty() && created != chen, "{outcome:?}");
    assert!(outcome.survivor.is_empty());
    let changed: BTreeSet<&str> = outcome.changed.iter().map(String::as_str).collect();
    assert!(
        changed.contains(chen.as_str()) && changed.contains(created.as_str()),
        "{changed:?}"
    );

    // The feed: a new entity with the mention, the old one without it, set apart.
    let state = feed(&hub).await;
    assert_eq!(
        sources_of(&state, &created),
        BTreeSet::from([addr("hrss.insured_person", hrss_source, "insured", 0)])
    );
    assert_eq!(
        sources_of(&state, &chen),
        BTreeSet::from([addr("tax.taxpayer", CHEN_WEI_TAX, "taxpayer", 0)])
    );
    assert_eq!(distinct_from(&state, &chen), vec![created.clone()]);
    let explained = explain(&mut steward, &created).await;
    assert_eq!(
        (explained[0].by.as_str(), explained[0].summary.as_str()),
        ("steward", "put here by a steward (split)")
    );

    // A new version of the record carries the same key the old entity holds: it stays
    // where the steward put it.
    let placed = push_all(&hub, vec![insured("0000000001", CHEN_WEI, "陈伟", "1979-03-15", 2)]).await;
    assert_eq!(id_of(&placed, hrss_source, "insured", 0), created);
    let state = feed(&hub).await;
    assert_eq!(
        sources_of(&state, &created),
        BTreeSet::from([addr("hrss.insured_person", hrss_source, "insured", 0)])
    );
    assert_eq!(sources_of(&state, &chen).len(), 1);
    assert!(state.latest[&created].merged_into.is_empty() && state.latest[&chen].merged_into.is_empty());

    // Nothing left to split: the mention is alone in its entity now.
    let refused = steward
        .split(pb::SplitRequest {
            mention: Some(mention_ref("hrss.insured_person", hrss_source, "insured", 0)),
        })
        .await
        .expect_err("alone");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let unknown = steward
        .split(pb::SplitRequest {
            mention: Some(mention_ref("hrss.insured_person", "no-such-record", "insured", 0)),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let unnamed = steward
        .split(pb::SplitRequest { mention: None })
        .await
        .expect_err("no mention");
    assert_eq!(unnamed.code(), Code::InvalidArgument, "{unnamed:?}");

    let log = audit_log(&hub).await;
    let splits = audited(&log, "steward:steward", "steward.split");
    assert_eq!(splits.len(), 1, "{log:#?}");
    assert_eq!(
        splits[0].subject,
        format!("hrss.insured_person {hrss_source} insured 0")
    );
}

async fn stewards_merge_entities_by_id(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = push_all(
        &hub,
        vec![
            taxpayer(CHEN_WEI_TAX, CHEN_WEI, "陈伟", 1),
            taxpayer(LIN_FANG_TAX, LIN_FANG, "林芳", 1),
        ],
    )
    .await;
    let (older, younger) = (
        id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0),
        id_of(&placed, LIN_FANG_TAX, "taxpayer", 0),
    );
    assert!(older < younger);

    let mut steward = stewardship(&hub, &steward_identity()).await;
    let outcome = steward
        .merge(pb::MergeRequest {
            unified_id: younger.clone(),
            other_id: older.clone(),
        })
        .await
        .expect("merge")
        .into_inner();
    assert_eq!(
        outcome.survivor, older,
        "the older ID survives whichever is named first"
    );
    let changed: BTreeSet<&str> = outcome.changed.iter().map(String::as_str).collect();
    assert_eq!(changed, BTreeSet::from([older.as_str(), younger.as_str()]));

    let state = feed(&hub).await;
    assert_eq!(state.latest[&younger].merged_into, older);
    assert_eq!(
        sources_of(&state, &older),
        BTreeSet::from([
            addr("tax.taxpayer", CHEN_WEI_TAX, "taxpayer", 0),
            addr("tax.taxpayer", LIN_FANG_TAX, "taxpayer", 0),
        ])
    );

    // What cannot be merged.
    let merge = |a: &str, b: &str| pb::MergeRequest {
        unified_id: a.to_owned(),
        other_id: b.to_owned(),
    };
    let again = steward.merge(merge(&older, &younger)).await.expect_err("one already");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let malformed = steward.merge(merge(&older, "陈伟")).await.expect_err("not an ID");
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");
    let unknown = steward.merge(merge(&older, "P99999999999")).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let log = audit_log(&hub).await;
    let merges = audited(&log, "steward:steward", "steward.merge");
    assert_eq!(merges.len(), 1, "{log:#?}");
    assert_eq!(merges[0].subject, format!("{younger} {older}"));
}

async fn explanations_place_every_source(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    push_all(&hub, vec![insured("0000000001", CHEN_WEI, "陈伟", "1979-03-15", 1)]).await;
    let chen = id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0);
    let chen_party = id_of(&placed, MARRIAGE, "party", 0);
    let mut steward = stewardship(&hub, &steward_identity()).await;
    let pair = list(&mut steward, 0, 1).await.pairs.remove(0);
    decide(&mut steward, pair.id, pb::Verdict::Same).await.expect("same");

    // Asked by the absorbed ID: the survivor is explained.
    let explanation = steward
        .explain(pb::ExplainRequest {
            unified_id: chen_party.clone(),
        })
        .await
        .expect("explain")
        .into_inner();
    assert_eq!(explanation.unified_id, chen);
    assert_eq!(explanation.redirected_from, chen_party);
    let state = feed(&hub).await;
    let explained: BTreeSet<MentionAddr> = explanation
        .sources
        .iter()
        .map(|s| MentionAddr::from(s.mention.as_ref().expect("mention")))
        .collect();
    assert_eq!(explained, sources_of(&state, &chen), "a placement for every source");
    assert_eq!(explained.len(), 3);
    let known = ["key", "previous", "matched", "founded", "queued", "steward"];
    for source in &explanation.sources {
        assert!(known.contains(&source.by.as_str()), "{source:?}");
        assert!(!source.summary.is_empty(), "{source:?}");
        let placement: Value = serde_json::from_str(&source.placement).expect("placement JSON");
        assert_eq!(placement["by"], source.by.as_str(), "{source:?}");
    }
    let by = |record_type: &str| {
        explanation
            .sources
            .iter()
            .find(|s| s.mention.as_ref().is_some_and(|m| m.record_type == record_type))
            .expect("source")
            .clone()
    };
    // The insured person joined by its identity number.
    let insured = by("hrss.insured_person");
    assert_eq!(insured.by, "key");
    assert!(
        insured.summary.starts_with("joined by its resident_id key"),
        "{}",
        insured.summary
    );
    // The taxpayer founded the entity.
    let founder = by("tax.taxpayer");
    assert_eq!(founder.by, "founded");
    assert!(
        founder.summary.starts_with("founded this entity"),
        "{}",
        founder.summary
    );
    // The marriage party is there by the steward's decision.
    let party = by("civil.marriage");
    assert_eq!(party.by, "steward", "{party:?}");
    assert_eq!(party.summary, "put here by a steward (same)");
    // The other party is still queued (its pair is open), with the evidence.
    let lin_party = id_of(&placed, MARRIAGE, "party", 1);
    let queued = steward
        .explain(pb::ExplainRequest { unified_id: lin_party })
        .await
        .expect("explain")
        .into_inner();
    assert_eq!(queued.sources.len(), 1);
    assert_eq!(queued.sources[0].by, "queued");
    let summary = &queued.sources[0].summary;
    assert!(
        summary.starts_with("founded this entity while a steward reviews a candidate: ")
            && summary.contains("bits (name exact +")
            && summary.contains("birth_date year_month +"),
        "{summary}"
    );

    // The platform may read explanations too; a department may not.
    let mut platform = stewardship(&hub, &Identity::Platform).await;
    let by_platform = platform
        .explain(pb::ExplainRequest {
            unified_id: chen.clone(),
        })
        .await
        .expect("the platform explains")
        .into_inner();
    assert_eq!(by_platform.sources.len(), 3);
    assert!(by_platform.redirected_from.is_empty());
    let unknown = steward
        .explain(pb::ExplainRequest {
            unified_id: "P99999999999".to_owned(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let malformed = steward
        .explain(pb::ExplainRequest {
            unified_id: CHEN_WEI.to_owned(),
        })
        .await
        .expect_err("not an ID");
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");

    let log = audit_log(&hub).await;
    assert!(
        audited(&log, "platform", "steward.explain")
            .iter()
            .any(|e| e.outcome == "granted" && e.subject == chen),
        "{log:#?}"
    );
}

async fn only_stewards_act_and_refusals_are_audited(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let placed = two_queued_parties(&hub).await;
    let chen = id_of(&placed, CHEN_WEI_TAX, "taxpayer", 0);
    let mut steward = stewardship(&hub, &steward_identity()).await;
    let pair = list(&mut steward, 0, 1).await.pairs.remove(0);

    let civil = department("civil");
    let mut department_client = stewardship(&hub, &civil).await;
    let refused = decide(&mut department_client, pair.id, pb::Verdict::Same)
        .await
        .expect_err("a department may not decide");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Refused before its request is looked at: a malformed one is refused the same way.
    let refused = decide(&mut department_client, pair.id, pb::Verdict::Unspecified)
        .await
        .expect_err("a department may not decide");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = department_client
        .list_reviews(pb::ListReviewsRequest { after: 0, page_size: 0 })
        .await
        .expect_err("a department may not read the queue");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = department_client
        .explain(pb::ExplainRequest {
            unified_id: chen.clone(),
        })
        .await
        .expect_err("a department may not read explanations");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Tax, whose record is one of the pair's, may not settle it, merge or split either.
    let mut tax_client = stewardship(&hub, &department("tax")).await;
    let refused = decide(&mut tax_client, pair.id, pb::Verdict::Different)
        .await
        .expect_err("tax may not decide");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = tax_client
        .merge(pb::MergeRequest {
            unified_id: chen.clone(),
            other_id: pair.entity_id.clone(),
        })
        .await
        .expect_err("tax may not merge");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = tax_client
        .split(pb::SplitRequest {
            mention: Some(mention_ref("tax.taxpayer", CHEN_WEI_TAX, "taxpayer", 0)),
        })
        .await
        .expect_err("tax may not split");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The platform reads explanations but does not act; ops does neither.
    let mut platform = stewardship(&hub, &Identity::Platform).await;
    let refused = platform
        .split(pb::SplitRequest {
            mention: Some(mention_ref("tax.taxpayer", CHEN_WEI_TAX, "taxpayer", 0)),
        })
        .await
        .expect_err("the platform may not split");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let mut ops = stewardship(&hub, &Identity::Ops).await;
    let refused = ops
        .merge(pb::MergeRequest {
            unified_id: chen.clone(),
            other_id: pair.entity_id.clone(),
        })
        .await
        .expect_err("ops may not merge");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = ops
        .explain(pb::ExplainRequest {
            unified_id: chen.clone(),
        })
        .await
        .expect_err("ops may not read explanations");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Nothing of it happened: the pair is still open, the entities apart.
    let open = list(&mut steward, 0, 0).await;
    assert!(open.pairs.iter().any(|p| p.id == pair.id));
    let state = feed(&hub).await;
    assert!(state.latest.values().all(|c| c.merged_into.is_empty()));

    // Every refusal is in the audit log, with who asked what.
    let log = audit_log(&hub).await;
    let refusal = |identity: &str, action: &str| {
        let entries = audited(&log, identity, action);
        assert!(
            !entries.is_empty() && entries.iter().all(|e| e.outcome.starts_with("refused")),
            "{identity} {action}: {log:#?}"
        );
        entries[0].clone()
    };
    let decided = refusal("department:civil", "steward.review.same");
    assert_eq!(decided.subject, format!("pair {}", pair.id));
    refusal("department:civil", "steward.request");
    refusal("department:civil", "steward.reviews");
    refusal("department:civil", "steward.explain");
    assert_eq!(
        refusal("department:tax", "steward.review.different").subject,
        format!("pair {}", pair.id)
    );
    let merge = refusal("department:tax", "steward.merge");
    assert!(merge.subject.contains(&chen), "{merge:?}");
    refusal("department:tax", "steward.split");
    refusal("platform", "steward.split");
    refusal("ops", "steward.merge");
    refusal("ops", "steward.explain");
    assert!(
        log.iter()
            .filter(|e| e.action.starts_with("steward.") && e.outcome == "done")
            .count()
            == 0,
        "no action was carried out: {log:#?}"
    );
}
