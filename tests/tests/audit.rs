//! The audit log over real gRPC, against both stores: lookups and feed reads are
//! appended to a hash chain that verifies intact; an entry altered directly in the
//! database (as someone with access to it could) breaks the chain exactly there;
//! cutting entries off the end, or setting the head back over them, is found too.

use serde_json::json;
use tongban_gateway::audit::{verify, ChainReport};
use tongban_gateway::identity::Identity;
use tongban_gateway::store::Store;
use tongban_proto::v1 as pb;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tongban_tests::unified::{env, lookup, lookup_id, push, read_feed, unified};

tongban_tests::on_both_stores!(
    reads_are_chained_and_an_altered_entry_is_found,
    concurrent_reads_are_each_audited_in_one_chain
);

/// Lookups answered at once are audited together (one commit for the entries waiting):
/// every one of them is in the log, each once, and the chain holds. One caller's purpose
/// holds a NUL, which PostgreSQL's text refuses: it is audited all the same, and fails
/// none of the reads it shares a commit with.
async fn concurrent_reads_are_each_audited_in_one_chain(kind: StoreKind) {
    const READS: usize = 48;
    let hub = TestHub::start(kind).await;
    let person = push_taxpayer(&hub, "10137060000000002").await;
    let platform = unified(&hub, &Identity::Platform).await;
    let mut reads = tokio::task::JoinSet::new();
    for n in 0..READS {
        let mut client = platform.clone();
        let person = person.clone();
        reads.spawn(async move {
            if n == READS / 2 {
                let by = pb::lookup_request::By::UnifiedId(person);
                lookup(&mut client, by, "audit\0with a NUL", &[]).await.map(|_| ())
            } else {
                lookup_id(&mut client, &person).await.map(|_| ())
            }
        });
    }
    while let Some(read) = reads.join_next().await {
        read.expect("the read task").expect("a lookup");
    }

    let log = hub.store.audit_log(1_000).await.expect("audit log");
    let lookups = log
        .iter()
        .filter(|e| e.action == "lookup" && e.identity == "platform" && e.outcome == "granted")
        .count();
    assert_eq!(lookups, READS, "{log:?}");
    match verify(&hub.store).await.expect("verify") {
        ChainReport::Intact { entries, .. } => assert_eq!(entries, log.len() as i64),
        broken => panic!("concurrent appends keep the chain: {broken:?}"),
    }
}

/// Pushes one taxpayer (陈伟) to the hub; returns the person's unified ID.
async fn push_taxpayer(hub: &TestHub, djxh: &str) -> String {
    let mut tax = hub.exchange(&department("tax")).await;
    let pushed = push(
        &mut tax,
        "audit",
        vec![env(
            "tax.taxpayer",
            djxh,
            1,
            json!({"djxh": djxh, "nsrsbh": "37062919790315001X", "nsrmc": "陈伟", "nsrlx": "3",
                   "zjlx_dm": "201", "fddbrxm": "", "fddbr_zjlx_dm": "", "fddbr_zjhm": "", "zcdz": "", "scjydz": "",
                   "lxdh": "", "hy_dm": "", "djrq": "20190516", "nsrzt_dm": "03", "swjg_dm": "13706870000"}),
        )],
    )
    .await;
    pushed[0].mentions[0].unified_id.clone()
}

/// Runs one statement on the hub's database behind its back.
async fn tamper(hub: &TestHub, sql: &str) -> u64 {
    match hub.kind {
        StoreKind::Embedded => {
            let db = rusqlite::Connection::open(hub.dir.path().join("tongban.db")).expect("open the store file");
            db.execute(sql, []).expect("tamper") as u64
        }
        StoreKind::Postgres => {
            let database = hub.database.as_ref().expect("a test database");
            database.connect().await.execute(sql, &[]).await.expect("tamper")
        }
    }
}

async fn reads_are_chained_and_an_altered_entry_is_found(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let person = push_taxpayer(&hub, "10137060000000001").await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    for _ in 0..3 {
        lookup_id(&mut platform, &person).await.expect("lookup");
    }
    read_feed(&mut platform, "").await;

    let log = hub.store.audit_log(100).await.expect("audit log");
    assert!(log.iter().filter(|e| e.action == "lookup").count() >= 3, "{log:?}");
    assert!(log.iter().any(|e| e.action == "changes"), "{log:?}");
    let entries = match verify(&hub.store).await.expect("verify") {
        ChainReport::Intact { entries, .. } => entries,
        broken => panic!("an untouched log is intact: {broken:?}"),
    };
    assert_eq!(entries, log.len() as i64);

    // The last entry cut off: the head the store keeps no longer matches.
    tamper(&hub, &format!("DELETE FROM audit_log WHERE seq = {entries}")).await;
    match verify(&hub.store).await.expect("verify") {
        ChainReport::Broken { seq, reason } => assert_eq!(seq, entries, "{reason}"),
        intact => panic!("the cut is found: {intact:?}"),
    }
    // The head set back to hide the entries after it.
    tamper(
        &hub,
        "UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_log WHERE seq = 1)",
    )
    .await;
    match verify(&hub.store).await.expect("verify") {
        ChainReport::Broken { seq, reason } => assert_eq!(seq, 2, "{reason}"),
        intact => panic!("entries beyond the head are found: {intact:?}"),
    }
    // The head made to fit what is left, as a careful forger would: without a head kept
    // outside the database (the chain has no key) that goes unseen.
    tamper(
        &hub,
        "UPDATE audit_head SET seq = (SELECT max(seq) FROM audit_log),
                               hash = (SELECT hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log))",
    )
    .await;
    assert!(matches!(
        verify(&hub.store).await.expect("verify"),
        ChainReport::Intact { .. }
    ));
    // Someone rewrites whose record the second entry read.
    let altered = tamper(&hub, "UPDATE audit_log SET subject = 'P00000000999' WHERE seq = 2").await;
    assert_eq!(altered, 1);
    match verify(&hub.store).await.expect("verify") {
        ChainReport::Broken { seq, reason } => {
            assert_eq!(seq, 2, "{reason}");
            assert!(reason.contains("altered"), "{reason}");
        }
        intact => panic!("the altered entry is found: {intact:?}"),
    }
    // Or removes it.
    tamper(&hub, "DELETE FROM audit_log WHERE seq = 2").await;
    match verify(&hub.store).await.expect("verify") {
        ChainReport::Broken { seq, reason } => {
            assert_eq!(seq, 2, "{reason}");
            assert!(reason.contains("missing"), "{reason}");
        }
        intact => panic!("the removed entry is found: {intact:?}"),
    }
}
