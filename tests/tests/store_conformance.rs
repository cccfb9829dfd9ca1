//! The contract of `Store`, checked against both implementations.
//!
//! Every check in `conformance!` runs twice, as `embedded::<check>` on a SQLite file in
//! a temporary directory and as `postgres::<check>` on a fresh PostgreSQL database. The
//! tests after it cover what only one of the stores has: concurrent replicas,
//! migrations, and how each reports a database it cannot use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;
use tongban_adapters::model::{
    Attribute, EntityKind, FlagCode, IdScheme, Identifier, Mention, Observation, QualityFlag, Role, Slot,
};
use tongban_adapters::{Department, RecordType};
use tongban_gateway::audit::{verify, ChainReport};
use tongban_gateway::identity::Identity;
use tongban_gateway::quality::FlagFilter;
use tongban_gateway::record::{Envelope, Outcome, RecordError, RecordResult, Rejection, SourceRecord, Submission};
use tongban_gateway::store::embedded::{EmbeddedSettings, EmbeddedStore};
use tongban_gateway::store::postgres::{PostgresSettings, PostgresStore};
use tongban_gateway::store::{
    AnyStore, AuditEntry, QuarantineEntry, Receipt, Store, StoreError, StoredVersion, TrafficRow,
};
use tongban_gateway::unified::{Change, Contribution, UnifiedRecord};
use tongban_tests::db::TestDatabase;

// ---------------------------------------------------------------------------------------
// Fixtures

/// A store under test, and a way to open a second one on the same data.
trait Fixture {
    type S: Store;

    fn store(&self) -> &Self::S;

    /// A new store instance on the same database: it sees only what was committed.
    async fn reopen(&self) -> Self::S;
}

struct Embedded {
    store: EmbeddedStore,
    path: PathBuf,
    _dir: TempDir,
}

impl Embedded {
    fn new() -> Embedded {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("tongban.sqlite3");
        let store = EmbeddedStore::open(&path).expect("open the embedded store");
        Embedded { store, path, _dir: dir }
    }
}

impl Fixture for Embedded {
    type S = EmbeddedStore;

    fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    async fn reopen(&self) -> EmbeddedStore {
        EmbeddedStore::open(&self.path).expect("reopen the embedded store")
    }
}

/// Fields drop in order: the store's pool before the database.
struct Postgres {
    store: PostgresStore,
    db: TestDatabase,
}

impl Postgres {
    async fn new() -> Postgres {
        let db = TestDatabase::create().await;
        let store = PostgresStore::connect(&db.settings())
            .await
            .expect("connect the PostgreSQL store");
        Postgres { store, db }
    }
}

impl Fixture for Postgres {
    type S = PostgresStore;

    fn store(&self) -> &PostgresStore {
        &self.store
    }

    async fn reopen(&self) -> PostgresStore {
        PostgresStore::connect(&self.db.settings())
            .await
            .expect("connect a second PostgreSQL store")
    }
}

/// Generates `embedded::<check>` and `postgres::<check>` for every check named.
macro_rules! conformance {
    ($($check:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $check() {
                    let fixture = super::Embedded::new();
                    super::$check(&fixture).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    let fixture = super::Postgres::new().await;
                    super::$check(&fixture).await;
                }
            )+
        }
    };
}

conformance!(
    accepts_a_new_record,
    replay_of_the_same_content_is_unchanged,
    same_version_with_other_content_is_a_quarantined_conflict,
    higher_version_becomes_current,
    lower_version_not_held_is_stale,
    out_of_order_arrival_ends_with_the_highest_version,
    tombstone_becomes_current,
    rejections_are_quarantined_verbatim_per_identity,
    mixed_batch_answers_in_batch_order,
    same_record_twice_in_a_batch_applies_in_batch_order,
    same_record_three_times_in_a_batch_with_versions_2_1_2,
    interleaved_records_and_rejections_keep_their_own_quarantine_ids,
    results_are_committed_when_returned,
    any_store_delegates,
    empty_batch_and_ping,
    text_with_nul_is_kept_replayed_and_quarantined,
    rejection_with_nul_in_its_key_is_quarantined,
    content_is_compared_as_canonical_text,
    mentions_sharing_a_key_are_one_entity,
    a_mention_carrying_two_entities_keys_merges_them,
    a_corrected_number_moves_the_mention_and_its_key,
    a_deleted_record_withdraws_its_mentions,
    stale_and_replayed_records_change_no_unified_record,
    the_feed_is_gap_free_in_commit_order,
    reads_are_audited,
    traffic_adds_up,
    flagged_records_page_in_byte_order,
);

// ---------------------------------------------------------------------------------------
// Helpers

const TAX: &str = "department:tax";

fn tax_receipt() -> Receipt {
    Receipt {
        identity: Identity::Department(Department::Tax),
        received_at: SystemTime::now(),
    }
}

fn record_type() -> String {
    RecordType::TaxTaxpayer.as_str().to_owned()
}

fn valid(source_id: &str, version: i64, payload: &str) -> Submission {
    Submission::Valid(SourceRecord {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: false,
        payload: payload.to_owned(),
        contribution: None,
    })
}

fn tombstone(source_id: &str, version: i64) -> Submission {
    Submission::Valid(SourceRecord {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: true,
        payload: "{}".to_owned(),
        contribution: None,
    })
}

/// A key of the tests: a resident identity number (any text does for the store).
fn resident(value: &str) -> Identifier {
    Identifier {
        scheme: IdScheme::ResidentId,
        value: value.to_owned(),
        key: true,
    }
}

fn passport(value: &str) -> Identifier {
    Identifier {
        scheme: IdScheme::Passport,
        value: value.to_owned(),
        key: true,
    }
}

/// A taxpayer record mentioning one person with these identifiers and name.
fn person_record(source_id: &str, version: i64, name: &str, identifiers: &[Identifier]) -> Submission {
    let mention = Mention {
        slot: Slot::new(Role::Taxpayer, 0),
        kind: EntityKind::Person,
        identifiers: identifiers.to_vec(),
        observations: vec![Observation {
            attribute: Attribute::Name,
            value: name.to_owned(),
            typed: name.to_owned(),
            derived: false,
            as_of: None,
        }],
        facts: Vec::new(),
        flags: Vec::new(),
        match_name: name.to_owned(),
    };
    Submission::Valid(SourceRecord {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: false,
        payload: format!("{{\"name\":\"{name}\"}}"),
        contribution: Some(Contribution {
            record_type: RecordType::TaxTaxpayer,
            mentions: vec![mention],
            relations: Vec::new(),
        }),
    })
}

fn withdrawn(source_id: &str, version: i64) -> Submission {
    Submission::Valid(SourceRecord {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: true,
        payload: "{}".to_owned(),
        contribution: Some(Contribution::withdrawn(RecordType::TaxTaxpayer)),
    })
}

/// The unified ID the record's one mention resolved to.
fn resolved(result: &RecordResult) -> String {
    assert_eq!(result.resolutions.len(), 1, "one mention resolved: {result:?}");
    result.resolutions[0].unified_id.clone()
}

/// Every change of the feed, in order.
async fn feed<S: Store>(store: &S) -> Vec<Change> {
    store.changes(0, &[], 10_000).await.expect("read the feed")
}

/// The live record behind `id`, following a merge, and the ID it was merged into.
async fn unified<S: Store>(store: &S, id: &str) -> (Option<String>, UnifiedRecord) {
    store
        .entity(id)
        .await
        .expect("read an entity")
        .expect("the entity exists")
}

fn source_ids(record: &UnifiedRecord) -> Vec<&str> {
    record.sources.iter().map(|s| s.source_id.as_str()).collect()
}

fn rejected(source_id: &str, version: i64, payload: &str) -> (Submission, Envelope, Vec<RecordError>) {
    let envelope = Envelope {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: false,
        payload: payload.as_bytes().to_vec(),
    };
    let errors = vec![
        RecordError::payload("", "payload.invalid_json", "the payload is not JSON"),
        RecordError::envelope("source_id", "envelope.source_id", "too short"),
    ];
    let submission = Submission::Rejected(Rejection {
        envelope: envelope.clone(),
        errors: errors.clone(),
    });
    (submission, envelope, errors)
}

async fn commit<S: Store>(store: &S, batch: Vec<Submission>) -> Vec<RecordResult> {
    let expected = batch.len();
    let results = store.commit(&tax_receipt(), batch).await.expect("commit");
    assert_eq!(results.len(), expected, "one result per item");
    results
}

/// Commits one item and returns its result.
async fn commit_one<S: Store>(store: &S, item: Submission) -> RecordResult {
    commit(store, vec![item]).await.remove(0)
}

fn outcomes(results: &[RecordResult]) -> Vec<Outcome> {
    results.iter().map(|result| result.outcome).collect()
}

async fn held_versions<S: Store>(store: &S, source_id: &str) -> Vec<i64> {
    let versions = store.versions(&record_type(), source_id).await.expect("versions");
    versions.iter().map(|version| version.source_version).collect()
}

async fn current<S: Store>(store: &S, source_id: &str) -> Option<StoredVersion> {
    store.current(&record_type(), source_id).await.expect("current")
}

async fn quarantine<S: Store>(store: &S, identity: Option<&str>) -> Vec<QuarantineEntry> {
    store.quarantine(identity, 100).await.expect("quarantine")
}

fn stored(version: i64, payload: &str) -> StoredVersion {
    StoredVersion {
        source_version: version,
        deleted: false,
        payload: payload.to_owned(),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: expected StoreError::Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The conformance checks

async fn accepts_a_new_record(fixture: &impl Fixture) {
    let store = fixture.store();
    let result = commit_one(store, valid("A-1", 1, r#"{"name":"Li"}"#)).await;

    assert_eq!(
        result,
        RecordResult {
            record_type: record_type(),
            source_id: "A-1".to_owned(),
            source_version: 1,
            outcome: Outcome::Accepted,
            current_version: Some(1),
            errors: Vec::new(),
            quarantine_id: None,
            resolutions: Vec::new(),
            quality_flags: Vec::new(),
        }
    );
    assert_eq!(current(store, "A-1").await, Some(stored(1, r#"{"name":"Li"}"#)));
    assert_eq!(
        store.versions(&record_type(), "A-1").await.unwrap(),
        vec![stored(1, r#"{"name":"Li"}"#)]
    );
    assert_eq!(current(store, "A-2").await, None, "another record is not held");
    assert!(quarantine(store, None).await.is_empty());
}

async fn replay_of_the_same_content_is_unchanged(fixture: &impl Fixture) {
    let store = fixture.store();
    // What a department sends as `{ "b": 2, "a": 1 }` reaches the store canonicalised.
    let canonical = r#"{"a":1,"b":2}"#;
    commit_one(store, valid("R-1", 1, canonical)).await;

    let replay = commit_one(store, valid("R-1", 1, canonical)).await;

    assert_eq!(replay.outcome, Outcome::Unchanged);
    assert_eq!(replay.current_version, Some(1));
    assert_eq!(replay.quarantine_id, None);
    assert!(replay.errors.is_empty());
    assert_eq!(held_versions(store, "R-1").await, vec![1]);
    assert!(quarantine(store, None).await.is_empty(), "a replay is not quarantined");
}

async fn same_version_with_other_content_is_a_quarantined_conflict(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("C-1", 1, r#"{"a":1}"#)).await;

    let changed = commit_one(store, valid("C-1", 1, r#"{"a":2}"#)).await;
    let undeleted = commit_one(store, tombstone("C-1", 1)).await;

    for result in [&changed, &undeleted] {
        assert_eq!(result.outcome, Outcome::Rejected);
        assert_eq!(result.current_version, Some(1));
        assert_eq!(result.errors, vec![RecordError::version_conflict(1)]);
        assert_eq!(result.errors[0].code, "envelope.version_conflict");
    }
    assert_eq!(
        current(store, "C-1").await,
        Some(stored(1, r#"{"a":1}"#)),
        "the held copy stands"
    );
    assert_eq!(held_versions(store, "C-1").await, vec![1]);

    let entries = quarantine(store, Some(TAX)).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(Some(&entries[0].id), changed.quarantine_id.as_ref());
    assert_eq!(Some(&entries[1].id), undeleted.quarantine_id.as_ref());
    assert_eq!(
        entries[0].envelope.payload, br#"{"a":2}"#,
        "the refused copy is what is quarantined"
    );
    assert!(entries[1].envelope.deleted);
    assert_eq!(entries[0].errors, vec![RecordError::version_conflict(1)]);
    assert_eq!(entries[0].identity, TAX);
}

async fn text_with_nul_is_kept_replayed_and_quarantined(fixture: &impl Fixture) {
    let store = fixture.store();
    // Valid JSON may escape a NUL inside a string; free-text fields let it through.
    let payload = r#"{"jzdz":"海阳\u0000市"}"#;
    assert_eq!(
        commit_one(store, valid("N-1", 1, payload)).await.outcome,
        Outcome::Accepted
    );
    let replay = commit_one(store, valid("N-1", 1, payload)).await;
    assert_eq!(replay.outcome, Outcome::Unchanged, "{:?}", replay.errors);
    assert_eq!(current(store, "N-1").await, Some(stored(1, payload)));
    // A rejection whose message quotes such a value is quarantined like any other.
    let (submission, _, _) = rejected("N-2", 1, payload);
    let Submission::Rejected(mut rejection) = submission else {
        panic!("a rejection")
    };
    rejection.errors[0].message = "\"海阳\u{0}市\" is not of the expected shape".to_owned();
    let result = commit_one(store, Submission::Rejected(rejection.clone())).await;
    assert_eq!(result.outcome, Outcome::Rejected);
    let entries = quarantine(store, Some(TAX)).await;
    assert_eq!(entries.last().map(|e| &e.errors), Some(&rejection.errors));
}

/// A record whose source ID or record type holds a NUL is refused by validation, and
/// its rejection is quarantined like any other, with the rest of its batch.
async fn rejection_with_nul_in_its_key_is_quarantined(fixture: &impl Fixture) {
    let store = fixture.store();
    let (bad_id, _, _) = rejected("Z-\u{0}1", 1, "{}");
    let (bad_type, _, _) = rejected("Z-2", 1, "{}");
    let Submission::Rejected(mut bad_type) = bad_type else {
        panic!("a rejection")
    };
    bad_type.envelope.record_type = "tax.\u{0}taxpayer".to_owned();
    let results = commit(
        store,
        vec![bad_id, valid("Z-3", 1, r#"{"v":1}"#), Submission::Rejected(bad_type)],
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [Outcome::Rejected, Outcome::Accepted, Outcome::Rejected]
    );
    assert_eq!(results[0].current_version, None);
    assert_eq!(results[2].current_version, None);
    let entries = quarantine(store, Some(TAX)).await;
    let ids: Vec<Option<&String>> = entries.iter().map(|e| Some(&e.id)).collect();
    assert_eq!(
        ids,
        [results[0].quarantine_id.as_ref(), results[2].quarantine_id.as_ref()]
    );
    assert_eq!(current(store, "Z-3").await, Some(stored(1, r#"{"v":1}"#)));
}

async fn content_is_compared_as_canonical_text(fixture: &impl Fixture) {
    let store = fixture.store();
    // The pipeline hands over canonical text, which keeps numbers as written: the same
    // version with `760.0` instead of `760` is other content on every store.
    commit_one(store, valid("E-1", 1, r#"{"bzje":760}"#)).await;
    let other = commit_one(store, valid("E-1", 1, r#"{"bzje":760.0}"#)).await;
    assert_eq!(other.outcome, Outcome::Rejected);
    assert_eq!(other.errors, vec![RecordError::version_conflict(1)]);
    let big = r#"{"mj":12345678901234567890123.45}"#;
    commit_one(store, valid("E-2", 1, big)).await;
    assert_eq!(current(store, "E-2").await, Some(stored(1, big)), "digits kept as sent");
}

async fn higher_version_becomes_current(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("H-1", 1, r#"{"v":1}"#)).await;

    let result = commit_one(store, valid("H-1", 2, r#"{"v":2}"#)).await;

    assert_eq!(result.outcome, Outcome::Accepted);
    assert_eq!(result.current_version, Some(2));
    assert_eq!(current(store, "H-1").await, Some(stored(2, r#"{"v":2}"#)));
    assert_eq!(held_versions(store, "H-1").await, vec![1, 2]);
}

async fn lower_version_not_held_is_stale(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("S-1", 5, r#"{"v":5}"#)).await;

    let result = commit_one(store, valid("S-1", 3, r#"{"v":3}"#)).await;

    assert_eq!(result.outcome, Outcome::Stale);
    assert_eq!(result.current_version, Some(5));
    assert_eq!(result.quarantine_id, None);
    assert_eq!(
        current(store, "S-1").await,
        Some(stored(5, r#"{"v":5}"#)),
        "current unchanged"
    );
    assert_eq!(
        store.versions(&record_type(), "S-1").await.unwrap(),
        vec![stored(3, r#"{"v":3}"#), stored(5, r#"{"v":5}"#)],
        "the stale version is kept in history"
    );
}

async fn out_of_order_arrival_ends_with_the_highest_version(fixture: &impl Fixture) {
    let store = fixture.store();
    let mut seen = Vec::new();
    for version in [3, 1, 2] {
        seen.push(
            commit_one(store, valid("O-1", version, &format!(r#"{{"v":{version}}}"#)))
                .await
                .outcome,
        );
    }

    assert_eq!(seen, [Outcome::Accepted, Outcome::Stale, Outcome::Stale]);
    assert_eq!(current(store, "O-1").await.map(|v| v.source_version), Some(3));
    assert_eq!(held_versions(store, "O-1").await, vec![1, 2, 3]);
}

async fn tombstone_becomes_current(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("T-1", 1, r#"{"v":1}"#)).await;

    let result = commit_one(store, tombstone("T-1", 2)).await;

    assert_eq!(result.outcome, Outcome::Accepted);
    assert_eq!(result.current_version, Some(2));
    let now = current(store, "T-1")
        .await
        .expect("a tombstone is still a held version");
    assert_eq!(
        now,
        StoredVersion {
            source_version: 2,
            deleted: true,
            payload: "{}".to_owned()
        }
    );
    assert_eq!(held_versions(store, "T-1").await, vec![1, 2]);

    // Replaying the tombstone is unchanged, like any other version.
    assert_eq!(commit_one(store, tombstone("T-1", 2)).await.outcome, Outcome::Unchanged);
}

async fn rejections_are_quarantined_verbatim_per_identity(fixture: &impl Fixture) {
    let store = fixture.store();
    let (truncated, truncated_envelope, errors) = rejected("Q-1", 1, r#"{"a":"#);
    // Not even text a JSON parser would accept, and a NUL that PostgreSQL text refuses.
    let (odd, odd_envelope, _) = rejected("Q-2", 7, "\u{0}\u{1F600} not json");
    let receipt = tax_receipt();

    let results = store.commit(&receipt, vec![truncated, odd]).await.expect("commit");

    assert_eq!(outcomes(&results), [Outcome::Rejected, Outcome::Rejected]);
    assert_eq!(results[0].errors, errors);
    assert_eq!(
        results[0].current_version, None,
        "an unknown record has no current version"
    );
    assert!(
        !held_versions(store, "Q-1").await.contains(&1),
        "a rejection is not a version"
    );

    let civil = Receipt {
        identity: Identity::Department(Department::Civil),
        received_at: SystemTime::now(),
    };
    let (other, _, _) = rejected("Q-3", 1, "[");
    store.commit(&civil, vec![other]).await.expect("commit as civil");

    let entries = quarantine(store, Some(TAX)).await;
    assert_eq!(entries.len(), 2, "only the tax department's entries: {entries:?}");
    for (entry, (result, envelope)) in entries
        .iter()
        .zip([(&results[0], &truncated_envelope), (&results[1], &odd_envelope)])
    {
        assert_eq!(Some(&entry.id), result.quarantine_id.as_ref());
        assert_eq!(entry.identity, TAX);
        assert_eq!(&entry.envelope, envelope, "kept verbatim");
        assert_eq!(entry.errors, errors);
        let skew = entry
            .received_at
            .duration_since(receipt.received_at)
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_millis(1), "received_at kept: off by {skew:?}");
    }

    let civil_entries = quarantine(store, Some("department:civil")).await;
    assert_eq!(civil_entries.len(), 1);
    assert_eq!(civil_entries[0].identity, "department:civil");
    assert!(quarantine(store, Some("department:hrss")).await.is_empty());

    let all = quarantine(store, None).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].envelope.source_id, "Q-3", "oldest first");
    let first = store.quarantine(None, 1).await.expect("quarantine");
    assert_eq!(first.len(), 1, "the limit is honoured");
    assert_eq!(first[0].envelope.source_id, "Q-1");
}

async fn mixed_batch_answers_in_batch_order(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("M-known", 4, r#"{"v":4}"#)).await;
    let (bad_new, _, _) = rejected("M-bad", 1, "nope");
    let (bad_known, _, _) = rejected("M-known", 9, "nope");

    let results = commit(
        store,
        vec![
            valid("M-3", 1, r#"{"v":1}"#),
            bad_new,
            valid("M-1", 1, r#"{"v":1}"#),
            bad_known,
            valid("M-known", 2, r#"{"v":2}"#),
            valid("M-2", 1, r#"{"v":1}"#),
        ],
    )
    .await;

    let ids: Vec<&str> = results.iter().map(|r| r.source_id.as_str()).collect();
    assert_eq!(ids, ["M-3", "M-bad", "M-1", "M-known", "M-known", "M-2"]);
    assert_eq!(
        outcomes(&results),
        [
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::Stale,
            Outcome::Accepted
        ]
    );
    assert_eq!(results[1].current_version, None);
    assert_eq!(
        results[3].current_version,
        Some(4),
        "a rejection reports the record's current version"
    );
    assert_eq!(results[3].source_version, 9);
    assert!(results
        .iter()
        .all(|r| (r.outcome == Outcome::Rejected) == r.quarantine_id.is_some()));
    for id in ["M-1", "M-2", "M-3"] {
        assert_eq!(held_versions(store, id).await, vec![1], "{id}");
    }
}

async fn same_record_twice_in_a_batch_applies_in_batch_order(fixture: &impl Fixture) {
    let store = fixture.store();

    let results = commit(
        store,
        vec![valid("D-1", 2, r#"{"v":2}"#), valid("D-1", 1, r#"{"v":1}"#)],
    )
    .await;
    assert_eq!(outcomes(&results), [Outcome::Accepted, Outcome::Stale]);
    assert_eq!(results[0].current_version, Some(2));
    assert_eq!(results[1].current_version, Some(2));

    // Every result reports the version current after the whole batch.
    let results = commit(
        store,
        vec![valid("D-2", 1, r#"{"v":1}"#), valid("D-2", 2, r#"{"v":2}"#)],
    )
    .await;
    assert_eq!(outcomes(&results), [Outcome::Accepted, Outcome::Accepted]);
    assert_eq!(results[0].current_version, Some(2));

    let results = commit(
        store,
        vec![
            valid("D-3", 3, r#"{"v":"first"}"#),
            valid("D-3", 3, r#"{"v":"first"}"#),
            valid("D-3", 3, r#"{"v":"second"}"#),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [Outcome::Accepted, Outcome::Unchanged, Outcome::Rejected]
    );
    assert_eq!(results[2].errors, vec![RecordError::version_conflict(3)]);
    assert_eq!(
        current(store, "D-3").await,
        Some(stored(3, r#"{"v":"first"}"#)),
        "the first copy stands"
    );
}

/// One record named three times in a batch, versions 2, 1, 2 with other content each
/// time: the first copy of a version is held, the later one is measured against it.
async fn same_record_three_times_in_a_batch_with_versions_2_1_2(fixture: &impl Fixture) {
    let store = fixture.store();

    let results = commit(
        store,
        vec![
            valid("D-4", 2, r#"{"v":"2a"}"#),
            valid("D-4", 1, r#"{"v":"1a"}"#),
            valid("D-4", 2, r#"{"v":"2b"}"#),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [Outcome::Accepted, Outcome::Stale, Outcome::Rejected]
    );
    assert_eq!(results[2].errors, vec![RecordError::version_conflict(2)]);
    assert!(results.iter().all(|r| r.current_version == Some(2)), "{results:?}");
    assert_eq!(current(store, "D-4").await, Some(stored(2, r#"{"v":"2a"}"#)));
    assert_eq!(held_versions(store, "D-4").await, vec![1, 2]);
    let entries = quarantine(store, Some(TAX)).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(Some(&entries[0].id), results[2].quarantine_id.as_ref());
    assert_eq!(entries[0].envelope.payload, br#"{"v":"2b"}"#);

    // Again on the held record: copies of held versions, same or other content, a new
    // version, and a version the batch itself made held.
    let results = commit(
        store,
        vec![
            valid("D-4", 2, r#"{"v":"2b"}"#),
            valid("D-4", 1, r#"{"v":"1a"}"#),
            valid("D-4", 3, r#"{"v":"3a"}"#),
            valid("D-4", 2, r#"{"v":"2a"}"#),
            valid("D-4", 1, r#"{"v":"1b"}"#),
            valid("D-4", 3, r#"{"v":"3a"}"#),
            tombstone("D-4", 3),
            tombstone("D-4", 4),
            tombstone("D-4", 4),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            Outcome::Rejected,
            Outcome::Unchanged,
            Outcome::Accepted,
            Outcome::Unchanged,
            Outcome::Rejected,
            Outcome::Unchanged,
            Outcome::Rejected,
            Outcome::Accepted,
            Outcome::Unchanged,
        ]
    );
    assert!(results.iter().all(|r| r.current_version == Some(4)), "{results:?}");
    assert_eq!(held_versions(store, "D-4").await, vec![1, 2, 3, 4]);
    assert_eq!(
        store.versions(&record_type(), "D-4").await.expect("versions")[2],
        stored(3, r#"{"v":"3a"}"#)
    );
    let entries = quarantine(store, Some(TAX)).await;
    let refused: Vec<(&str, i64, &[u8], bool)> = entries[1..]
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.envelope.source_version,
                e.envelope.payload.as_slice(),
                e.envelope.deleted,
            )
        })
        .collect();
    let expected: Vec<(&str, i64, &[u8], bool)> = [
        (0, 2, r#"{"v":"2b"}"#, false),
        (4, 1, r#"{"v":"1b"}"#, false),
        (6, 3, "{}", true),
    ]
    .into_iter()
    .map(|(item, version, payload, deleted)| {
        (
            results[item].quarantine_id.as_deref().expect("a quarantine id"),
            version,
            payload.as_bytes(),
            deleted,
        )
    })
    .collect();
    assert_eq!(refused, expected);
}

/// Several records and rejections interleaved in one batch: every refused item gets the
/// quarantine entry holding its own envelope and errors, in batch order.
async fn interleaved_records_and_rejections_keep_their_own_quarantine_ids(fixture: &impl Fixture) {
    let store = fixture.store();
    commit_one(store, valid("I-1", 1, r#"{"v":1}"#)).await;
    let (bad_new, bad_new_envelope, bad_errors) = rejected("I-bad", 1, "x");
    let (bad_known, bad_known_envelope, _) = rejected("I-1", 5, "y");

    let results = commit(
        store,
        vec![
            valid("I-2", 1, r#"{"v":"a"}"#),
            valid("I-1", 1, r#"{"v":"other"}"#),
            bad_new,
            valid("I-2", 1, r#"{"v":"b"}"#),
            valid("I-1", 2, r#"{"v":2}"#),
            bad_known,
            valid("I-2", 1, r#"{"v":"a"}"#),
            valid("I-3", 7, r#"{"v":7}"#),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::Rejected,
            Outcome::Rejected,
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::Unchanged,
            Outcome::Accepted,
        ]
    );
    let current_versions: Vec<Option<i64>> = results.iter().map(|r| r.current_version).collect();
    assert_eq!(
        current_versions,
        [Some(1), Some(2), None, Some(1), Some(2), Some(2), Some(1), Some(7)]
    );

    let envelope = |source_id: &str, version: i64, payload: &str| Envelope {
        record_type: record_type(),
        source_id: source_id.to_owned(),
        source_version: version,
        deleted: false,
        payload: payload.as_bytes().to_vec(),
    };
    let expected = [
        (
            1,
            envelope("I-1", 1, r#"{"v":"other"}"#),
            vec![RecordError::version_conflict(1)],
        ),
        (2, bad_new_envelope, bad_errors.clone()),
        (
            3,
            envelope("I-2", 1, r#"{"v":"b"}"#),
            vec![RecordError::version_conflict(1)],
        ),
        (5, bad_known_envelope, bad_errors),
    ];
    let entries = quarantine(store, Some(TAX)).await;
    assert_eq!(entries.len(), expected.len(), "{entries:?}");
    for (entry, (item, envelope, errors)) in entries.iter().zip(expected) {
        assert_eq!(Some(&entry.id), results[item].quarantine_id.as_ref(), "item {item}");
        assert_eq!(entry.envelope, envelope, "item {item}");
        assert_eq!(entry.errors, errors, "item {item}");
        assert_eq!(results[item].errors, errors, "item {item}");
    }
    assert!(results
        .iter()
        .all(|r| (r.outcome == Outcome::Rejected) == r.quarantine_id.is_some()));
}

async fn results_are_committed_when_returned(fixture: &impl Fixture) {
    let (bad, bad_envelope, _) = rejected("K-2", 1, "{");
    let results = commit(fixture.store(), vec![valid("K-1", 1, r#"{"v":1}"#), bad]).await;
    let quarantine_id = results[1].quarantine_id.clone();

    // Another store instance, another connection: it can only see what was committed.
    let other = fixture.reopen().await;
    assert_eq!(current(&other, "K-1").await, Some(stored(1, r#"{"v":1}"#)));
    let entries = quarantine(&other, Some(TAX)).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(Some(entries[0].id.clone()), quarantine_id);
    assert_eq!(entries[0].envelope, bad_envelope);

    // And the reopened store (migrations run again) keeps working on the same data.
    assert_eq!(
        commit_one(&other, valid("K-1", 2, r#"{"v":2}"#)).await.outcome,
        Outcome::Accepted
    );
    assert_eq!(current(fixture.store(), "K-1").await.map(|v| v.source_version), Some(2));
}

async fn any_store_delegates<F: Fixture>(fixture: &F)
where
    AnyStore: From<F::S>,
{
    let store = AnyStore::from(fixture.reopen().await);
    assert_eq!(
        commit_one(&store, valid("Y-1", 1, "{}")).await.outcome,
        Outcome::Accepted
    );
    assert_eq!(current(fixture.store(), "Y-1").await, Some(stored(1, "{}")));
    assert_eq!(held_versions(&store, "Y-1").await, vec![1]);
    store.ping().await.expect("ping");
}

async fn empty_batch_and_ping(fixture: &impl Fixture) {
    let store = fixture.store();
    store.ping().await.expect("ping");
    let results = store.commit(&tax_receipt(), Vec::new()).await.expect("empty commit");
    assert!(results.is_empty());
}

// ---------------------------------------------------------------------------------------
// PostgreSQL only

/// Replicas committing overlapping batches, each naming the records in its own shuffled
/// order: nothing deadlocks or fails, every version is inserted exactly once, and the
/// highest one ends up current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_batches_from_two_replicas() {
    const RECORDS: usize = 8;
    const VERSIONS: i64 = 6;
    const TASKS: usize = 6;
    let fixture = Postgres::new().await;
    let replicas = [Arc::new(fixture.store.clone()), Arc::new(fixture.reopen().await)];

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&replicas[task % 2]);
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(task as u64);
            let mut results = Vec::new();
            for round in 0..VERSIONS {
                let version = (task as i64 + round) % VERSIONS + 1;
                let mut batch: Vec<Submission> = (0..RECORDS)
                    .map(|i| {
                        valid(
                            &format!("P-{i}"),
                            version,
                            &format!(r#"{{"record":{i},"v":{version}}}"#),
                        )
                    })
                    .collect();
                rng.shuffle(&mut batch);
                results.extend(store.commit(&tax_receipt(), batch).await.expect("concurrent commit"));
            }
            results
        });
    }
    let inserted = inserted_versions(tasks).await;

    assert_eq!(
        inserted.len(),
        RECORDS * VERSIONS as usize,
        "every version was inserted"
    );
    assert!(
        inserted.values().all(|&count| count == 1),
        "and only once: {inserted:?}"
    );
    for i in 0..RECORDS {
        let id = format!("P-{i}");
        assert_eq!(
            current(&fixture.store, &id).await.map(|v| v.source_version),
            Some(VERSIONS),
            "{id}"
        );
        assert_eq!(
            held_versions(&fixture.store, &id).await,
            (1..=VERSIONS).collect::<Vec<_>>(),
            "{id}"
        );
    }
}

/// Replicas committing batches that create records and write to held ones at once, in
/// shuffled order, naming some records twice: the server never has to break a deadlock
/// (the store retries one, which would hide it, so the test reads the database's
/// counter), every version is kept once, and the highest named ends current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batches_creating_and_updating_records_at_once_never_deadlock() {
    const TASKS: usize = 6;
    const ROUNDS: usize = 8;
    const RECORDS: usize = 10;
    let fixture = Postgres::new().await;
    let replicas = [Arc::new(fixture.store.clone()), Arc::new(fixture.reopen().await)];
    // The content of a version depends on the record and the version only: a copy another
    // task committed first is a replay, never a conflict.
    let copy =
        |source_id: &str, version: i64| valid(source_id, version, &format!(r#"{{"id":"{source_id}","v":{version}}}"#));

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&replicas[task % 2]);
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(task as u64 + 100);
            let version = task as i64 + 2;
            let mut results = Vec::new();
            for round in 0..ROUNDS {
                // This round's records are new to whichever task comes first; the last
                // round's are held by then, or being created by a slower task.
                let mut batch = Vec::new();
                for i in 0..RECORDS {
                    for id in [format!("N-{round}-{i}"), format!("N-{}-{i}", round.saturating_sub(1))] {
                        batch.push(copy(&id, version));
                        if rng.bool() {
                            batch.push(copy(&id, 1));
                        }
                    }
                }
                rng.shuffle(&mut batch);
                results.extend(store.commit(&tax_receipt(), batch).await.expect("concurrent commit"));
            }
            results
        });
    }
    let inserted = inserted_versions(tasks).await;
    assert!(
        inserted.values().all(|&count| count == 1),
        "every version once: {inserted:?}"
    );
    let highest = TASKS as i64 + 1;
    for round in 0..ROUNDS {
        for i in 0..RECORDS {
            let id = format!("N-{round}-{i}");
            assert_eq!(
                current(&fixture.store, &id).await.map(|v| v.source_version),
                Some(highest),
                "{id}"
            );
        }
    }

    // A backend reports its counters when it ends: close the pools and wait for them.
    for replica in &replicas {
        replica.close();
    }
    drop(replicas);
    let admin = fixture.db.admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tongban-gateway'",
                &[&fixture.db.name],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the store's sessions did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadlocks: i64 = admin
        .query_one(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = $1",
            &[&fixture.db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deadlocks, 0, "deadlocks the server had to break");
}

/// Replicas resolving the same people at the same moment, each person reached through
/// different keys by different records (so that batches also merge entities under each
/// other's feet): every person ends as one live entity, never two, and the feed is
/// gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_resolving_the_same_people_make_one_entity_each() {
    const PEOPLE: usize = 12;
    const TASKS: usize = 6;
    let fixture = Postgres::new().await;
    let replicas = [Arc::new(fixture.store.clone()), Arc::new(fixture.reopen().await)];

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&replicas[task % 2]);
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(task as u64);
            // Each task's record about person p carries the resident number, the passport,
            // or both, depending on the task.
            let mut batch: Vec<Submission> = (0..PEOPLE)
                .map(|p| {
                    let keys = match (task + p) % 3 {
                        0 => vec![resident(&format!("R{p}"))],
                        1 => vec![passport(&format!("E{p}"))],
                        _ => vec![resident(&format!("R{p}")), passport(&format!("E{p}"))],
                    };
                    person_record(&format!("T{task}-{p}"), 1, "周九", &keys)
                })
                .collect();
            rng.shuffle(&mut batch);
            for chunk in batch.chunks(4) {
                store
                    .commit(&tax_receipt(), chunk.to_vec())
                    .await
                    .expect("concurrent commit");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }

    let store = &fixture.store;
    let mut live_entities = std::collections::HashSet::new();
    for p in 0..PEOPLE {
        let by_id = store
            .key_owner(&[(IdScheme::ResidentId, format!("R{p}"))])
            .await
            .unwrap();
        let by_passport = store.key_owner(&[(IdScheme::Passport, format!("E{p}"))]).await.unwrap();
        assert_eq!(by_id, by_passport, "person {p}: both keys lead to one entity");
        let id = by_id.expect("person resolved");
        let (redirect, record) = unified(store, &id).await;
        assert_eq!(redirect, None, "keys point at live entities");
        assert_eq!(
            record.sources.len(),
            TASKS,
            "person {p}: every task's record in one entity"
        );
        live_entities.insert(id);
    }
    assert_eq!(live_entities.len(), PEOPLE);
    let positions: Vec<i64> = feed(store).await.iter().map(|c| c.position).collect();
    assert_eq!(
        positions,
        (1..=positions.len() as i64).collect::<Vec<_>>(),
        "gap-free feed"
    );
}

/// Replicas starting at once migrate one at a time; a later start changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_run_once_even_when_replicas_race() {
    let db = Arc::new(TestDatabase::create().await);
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let db = Arc::clone(&db);
        starts.spawn(async move { PostgresStore::connect(&db.settings()).await.map(|_| ()) });
    }
    while let Some(started) = starts.join_next().await {
        started.expect("task").expect("concurrent start");
    }

    let store = PostgresStore::connect(&db.settings()).await.expect("first store");
    commit_one(&store, valid("G-1", 1, "{}")).await;
    let again = PostgresStore::connect(&db.settings()).await.expect("second start");
    assert_eq!(
        current(&again, "G-1").await.map(|v| v.source_version),
        Some(1),
        "data survives"
    );

    let client = db.connect().await;
    let rows = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9], "each migration recorded once");
}

/// The database refuses connections and the store's sessions are killed: commits fail as
/// `Unavailable`; once it accepts connections again the same store works without help.
#[tokio::test]
async fn postgres_unavailable_while_the_database_refuses_then_recovers() {
    let db = TestDatabase::create().await;
    let settings = PostgresSettings {
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..db.settings()
    };
    let store = PostgresStore::connect(&settings).await.expect("connect");
    commit_one(&store, valid("U-1", 1, "{}")).await;

    let admin = db.admin().await;
    admin
        .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name))
        .await
        .unwrap();
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .await
        .unwrap();
    assert!(!terminated.is_empty(), "the store had a session to kill");

    assert_unavailable(
        store.commit(&tax_receipt(), vec![valid("U-1", 2, "{}")]).await,
        "commit",
    );
    assert_unavailable(
        store.commit(&tax_receipt(), vec![valid("U-1", 2, "{}")]).await,
        "second commit",
    );
    assert_unavailable(store.ping().await, "ping");
    assert_unavailable(store.versions(&record_type(), "U-1").await, "versions");

    admin
        .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name))
        .await
        .unwrap();
    store.ping().await.expect("ping after recovery");
    assert_eq!(
        held_versions(&store, "U-1").await,
        vec![1],
        "the failed commits left nothing"
    );
    assert_eq!(
        commit_one(&store, valid("U-1", 2, "{}")).await.outcome,
        Outcome::Accepted
    );
    drop(store);
    // `db` drops here, forcing out whatever the pool reconnected.
}

/// The session is killed while a batch is under way (queued behind a table lock): the
/// commit fails as `Unavailable`, and the next one gets a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_session_killed_mid_batch_is_unavailable() {
    let fixture = Postgres::new().await;
    commit_one(&fixture.store, valid("X-1", 1, "{}")).await;

    let blocker = fixture.db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE source_records IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let store = fixture.store.clone();
    let pending = tokio::spawn(async move { store.commit(&tax_receipt(), vec![valid("X-1", 2, "{}")]).await });

    let admin = fixture.db.admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = 'tongban-gateway'
                   AND wait_event_type = 'Lock'",
                &[&fixture.db.name],
            )
            .await
            .unwrap();
        if !killed.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the commit never queued behind the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_unavailable(pending.await.expect("task"), "commit whose session was killed");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        commit_one(&fixture.store, valid("X-1", 2, "{}")).await.outcome,
        Outcome::Accepted
    );
}

/// A statement waiting longer than `statement_timeout` (here behind a table lock) fails as
/// `Unavailable`, and the connection stays usable.
#[tokio::test]
async fn postgres_statement_timeout_is_unavailable() {
    let db = TestDatabase::create().await;
    let settings = PostgresSettings {
        statement_timeout: Duration::from_millis(300),
        ..db.settings()
    };
    let store = PostgresStore::connect(&settings).await.expect("connect");
    commit_one(&store, valid("W-1", 1, "{}")).await;

    let blocker = db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE source_records IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    assert_unavailable(
        store.commit(&tax_receipt(), vec![valid("W-1", 2, "{}")]).await,
        "commit behind a lock",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );

    blocker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        commit_one(&store, valid("W-1", 2, "{}")).await.outcome,
        Outcome::Accepted
    );
}

/// A server (or network) that goes silent, neither answering nor closing, is reported
/// unavailable after the statement timeout plus a margin, not waited on for ever.
#[tokio::test]
async fn postgres_silent_server_is_unavailable_then_recovers() {
    let db = TestDatabase::create().await;
    let config: tokio_postgres::Config = db.url.parse().expect("test database URL");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = tongban_tests::proxy::SilentProxy::start(upstream).await;
    let settings = PostgresSettings {
        url: format!(
            "postgres://{}@{}/{}",
            config.get_user().unwrap_or("postgres"),
            proxy.addr,
            config.get_dbname().unwrap_or("postgres")
        ),
        statement_timeout: Duration::from_millis(500),
        ..db.settings()
    };
    let store = PostgresStore::connect(&settings)
        .await
        .expect("connect through the proxy");
    commit_one(&store, valid("S-1", 1, "{}")).await;

    proxy.set_paused(true);
    let started = Instant::now();
    assert_unavailable(
        store.commit(&tax_receipt(), vec![valid("S-1", 2, "{}")]).await,
        "commit to a silent server",
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "gave up after {:?}",
        started.elapsed()
    );

    proxy.set_paused(false);
    let again = commit_one(&store, valid("S-1", 2, "{}")).await;
    assert!(matches!(again.outcome, Outcome::Accepted), "{again:?}");
}

/// An item the database refuses fails the whole batch as `Internal`; nothing of it is kept.
#[tokio::test]
async fn postgres_failed_batch_keeps_nothing() {
    let fixture = Postgres::new().await;
    let (bad, _, _) = rejected("F-0", 1, "{");
    // PostgreSQL text cannot hold NUL; validation is meant to refuse such ids earlier.
    let batch = vec![valid("F-1", 1, "{}"), bad, valid("F-\u{0}", 1, "{}")];

    match fixture.store.commit(&tax_receipt(), batch).await {
        Err(StoreError::Internal(_)) => {}
        other => panic!("expected StoreError::Internal, got {other:?}"),
    }
    assert_eq!(current(&fixture.store, "F-1").await, None);
    assert!(quarantine(&fixture.store, None).await.is_empty());
}

#[tokio::test]
async fn postgres_unreachable_server_is_unavailable() {
    let settings = PostgresSettings {
        // Nothing listens on port 1.
        url: "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
        pool_size: 1,
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(2),
    };
    assert_unavailable(PostgresStore::connect(&settings).await, "connect");
}

// ---------------------------------------------------------------------------------------
// Embedded only

/// Another process holding the write lock longer than `busy_timeout`: commits fail as
/// `Unavailable` (reads still work, thanks to WAL), and succeed once the lock is gone.
#[tokio::test]
async fn embedded_locked_file_is_unavailable_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.sqlite3");
    let settings = EmbeddedSettings {
        busy_timeout: Duration::from_millis(200),
    };
    let store = EmbeddedStore::open_with(&path, &settings).expect("open");
    commit_one(&store, valid("L-1", 1, "{}")).await;

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    assert_unavailable(
        store.commit(&tax_receipt(), vec![valid("L-1", 2, "{}")]).await,
        "commit while locked",
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited for busy_timeout first"
    );
    assert_eq!(held_versions(&store, "L-1").await, vec![1], "readers are not blocked");

    other.execute_batch("COMMIT").unwrap();
    assert_eq!(
        commit_one(&store, valid("L-1", 2, "{}")).await.outcome,
        Outcome::Accepted
    );
}

#[tokio::test]
async fn embedded_unopenable_file_is_unavailable() {
    // A missing folder is made (a fresh deployment's data folder), so the store opens.
    let fresh = tempfile::tempdir().unwrap();
    EmbeddedStore::open(&fresh.path().join("new").join("tongban.sqlite3")).expect("folder is created");
    let dir = tempfile::tempdir().unwrap();
    // Its folder would have to be where a plain file is: it can be neither made nor opened.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("tongban.sqlite3");
    assert_unavailable(EmbeddedStore::open(&path), "open");
}

#[tokio::test]
async fn embedded_migrations_run_once() {
    let fixture = Embedded::new();
    commit_one(&fixture.store, valid("E-1", 1, "{}")).await;
    let again = fixture.reopen().await;
    assert_eq!(held_versions(&again, "E-1").await, vec![1]);

    let connection = rusqlite::Connection::open(&fixture.path).unwrap();
    let mut statement = connection
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap();
    let versions: Vec<i64> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn upgrading_the_quarantine_to_bytes_keeps_every_entry_and_never_reuses_an_id() {
    let fixture = Embedded::new();
    let (first, ..) = rejected("Q-1", 1, r#"{"a": "王伟"#);
    let (second, ..) = rejected("Q-2", 1, "not json");
    let (third, ..) = rejected("Q-3", 1, "[");
    commit(&fixture.store, vec![first, second, third]).await;
    // The quarantine as schema version 7 kept it: payloads as text. The third entry is
    // gone (as if removed by hand), but its id was handed out.
    let connection = rusqlite::Connection::open(&fixture.path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE quarantine_text (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL,
                 identity TEXT NOT NULL, record_type TEXT NOT NULL, source_id TEXT NOT NULL,
                 source_version INTEGER NOT NULL, deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
                 payload TEXT NOT NULL, errors TEXT NOT NULL
             ) STRICT;
             INSERT INTO quarantine_text
                 SELECT id, received_at, identity, record_type, source_id, source_version, deleted,
                        CAST(payload AS TEXT), errors
                   FROM quarantine WHERE source_id <> 'Q-3';
             DROP TABLE quarantine;
             ALTER TABLE quarantine_text RENAME TO quarantine;
             UPDATE sqlite_sequence SET seq = 3 WHERE name = 'quarantine';
             CREATE INDEX quarantine_identity_id ON quarantine (identity, id);
             DELETE FROM schema_migrations WHERE version = 8;",
        )
        .unwrap();
    let text: i64 = connection
        .query_row(
            "SELECT count(*) FROM quarantine WHERE typeof(payload) = 'text'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(text, 2);
    drop(connection);

    let store = fixture.reopen().await;
    let entries = quarantine(&store, None).await;
    let kept: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|e| (e.envelope.source_id.as_str(), e.envelope.payload.as_slice()))
        .collect();
    assert_eq!(
        kept,
        [("Q-1", r#"{"a": "王伟"#.as_bytes()), ("Q-2", b"not json".as_slice())]
    );
    let (fourth, ..) = rejected("Q-4", 1, "]");
    let results = commit(&store, vec![fourth]).await;
    assert_eq!(
        results[0].quarantine_id.as_deref(),
        Some("4"),
        "id 3 was handed out once"
    );
    let connection = rusqlite::Connection::open(&fixture.path).unwrap();
    let blobs: i64 = connection
        .query_row(
            "SELECT count(*) FROM quarantine WHERE typeof(payload) = 'blob'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(blobs, 3, "every payload is kept as bytes");
}

#[tokio::test]
async fn upgrading_to_the_audit_chain_chains_the_entries_already_written() {
    let fixture = Embedded::new();
    // A store as schema version 3 left it: three entries, no chain.
    let connection = rusqlite::Connection::open(&fixture.path).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER audit_log_chained;
             DROP INDEX audit_log_seq;
             ALTER TABLE audit_log DROP COLUMN seq;
             ALTER TABLE audit_log DROP COLUMN hash;
             DROP TABLE audit_head;
             DELETE FROM schema_migrations WHERE version = 4;
             INSERT INTO audit_log (at, identity, action, subject, purpose, outcome) VALUES
                 (1700000000000, 'platform', 'lookup', 'P00000000001', 'case 1', 'granted'),
                 (1700000000001, 'department:tax', 'lookup', 'identifier', 'case 2', 'not found'),
                 (1700000000002, 'ops', 'lookup', 'P00000000001', 'curiosity', 'refused: personal data');",
        )
        .unwrap();
    drop(connection);
    let upgraded = fixture.reopen().await;
    let ChainReport::Intact { entries, .. } = verify(&upgraded).await.unwrap() else {
        panic!("the entries written before are chained in order");
    };
    assert_eq!(entries, 3);
    let entry = AuditEntry {
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_003),
        identity: "platform".to_owned(),
        action: "lookup".to_owned(),
        subject: "P00000000002".to_owned(),
        purpose: "test".to_owned(),
        outcome: "granted".to_owned(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
    };
    upgraded.audit(&entry).await.unwrap();
    let chain = upgraded.audit_chain(0, 10).await.unwrap();
    assert_eq!(
        chain
            .iter()
            .map(|c| (c.seq, c.entry.purpose.as_str()))
            .collect::<Vec<_>>(),
        [(1, "case 1"), (2, "case 2"), (3, "curiosity"), (4, "test")]
    );
    assert!(matches!(
        verify(&upgraded).await.unwrap(),
        ChainReport::Intact { entries: 4, .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Unified records

async fn mentions_sharing_a_key_are_one_entity(fixture: &impl Fixture) {
    let store = fixture.store();
    let first = commit_one(store, person_record("U-1", 1, "王伟", &[resident("R1")])).await;
    let second = commit_one(
        store,
        person_record("U-2", 1, "王伟", &[resident("R1"), passport("E1")]),
    )
    .await;
    let other = commit_one(store, person_record("U-3", 1, "李娜", &[resident("R2")])).await;
    let id = resolved(&first);
    assert!(id.starts_with('P'), "{id}");
    assert_eq!(resolved(&second), id);
    assert_ne!(resolved(&other), id);
    assert!(!first.resolutions[0].matched_existing);
    assert!(
        second.resolutions[0].matched_existing,
        "the second department was not asked again"
    );

    let (redirect, record) = unified(store, &id).await;
    assert_eq!(redirect, None);
    assert_eq!(source_ids(&record), ["U-1", "U-2"]);
    assert_eq!(record.attributes["name"].value, "王伟");
    assert_eq!(
        store.key_owner(&[(IdScheme::Passport, "E1".to_owned())]).await.unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        store
            .key_owner(&[(IdScheme::Passport, "nobody".to_owned())])
            .await
            .unwrap(),
        None
    );
    let again = fixture.reopen().await;
    assert_eq!(
        unified(&again, &id).await.1,
        record,
        "committed, seen by another instance"
    );
}

async fn a_mention_carrying_two_entities_keys_merges_them(fixture: &impl Fixture) {
    let store = fixture.store();
    let by_id = resolved(&commit_one(store, person_record("M-1", 1, "KIM MIN JUN", &[resident("R1")])).await);
    let by_passport = resolved(&commit_one(store, person_record("M-2", 1, "KIM MIN JUN", &[passport("M1")])).await);
    assert_ne!(by_id, by_passport);
    let both = commit_one(
        store,
        person_record("M-3", 1, "KIM MIN JUN", &[resident("R1"), passport("M1")]),
    )
    .await;
    let survivor = resolved(&both);
    assert_eq!(
        survivor,
        by_id.clone().min(by_passport.clone()),
        "the older entity survives"
    );
    let absorbed = if survivor == by_id { by_passport } else { by_id };

    let (redirect, _) = unified(store, &absorbed).await;
    assert_eq!(
        redirect.as_deref(),
        Some(survivor.as_str()),
        "the absorbed ID redirects for ever"
    );
    let (_, record) = unified(store, &survivor).await;
    assert_eq!(source_ids(&record), ["M-1", "M-2", "M-3"]);
    assert_eq!(
        store.key_owner(&[(IdScheme::Passport, "M1".to_owned())]).await.unwrap(),
        Some(survivor.clone()),
        "the absorbed entity's keys moved"
    );
    let merge = feed(store)
        .await
        .into_iter()
        .rev()
        .find(|c| c.head.unified_id == absorbed)
        .expect("a change for the absorbed entity");
    assert_eq!(merge.head.merged_into.as_deref(), Some(survivor.as_str()));
    assert!(merge.head.sources.is_empty());
    let record = merge.record().expect("the change's record");
    assert_eq!(
        record,
        UnifiedRecord::merged(absorbed.clone(), record.kind, merge.head.version, survivor.clone()),
        "a merged entity's change has an empty record"
    );
}

async fn a_corrected_number_moves_the_mention_and_its_key(fixture: &impl Fixture) {
    let store = fixture.store();
    let typo = resolved(
        &commit_one(
            store,
            person_record("C-1", 1, "张三", &[resident("WRONG"), passport("P3")]),
        )
        .await,
    );
    commit_one(store, person_record("C-2", 1, "张三", &[passport("P3")])).await;
    let right = resolved(&commit_one(store, person_record("C-3", 1, "张三", &[resident("RIGHT")])).await);
    assert_ne!(typo, right);

    let corrected = commit_one(store, person_record("C-1", 2, "张三", &[resident("RIGHT")])).await;
    assert_eq!(resolved(&corrected), right, "the new version's key decides");
    let (_, left) = unified(store, &typo).await;
    assert_eq!(source_ids(&left), ["C-2"], "the old entity lost the mention");
    assert_eq!(
        store
            .key_owner(&[(IdScheme::ResidentId, "WRONG".to_owned())])
            .await
            .unwrap(),
        None,
        "a key no mention carries any more leaves its entity"
    );
    let (_, moved) = unified(store, &right).await;
    assert_eq!(source_ids(&moved), ["C-1", "C-3"]);
}

async fn a_deleted_record_withdraws_its_mentions(fixture: &impl Fixture) {
    let store = fixture.store();
    let id = resolved(&commit_one(store, person_record("D-1", 1, "赵六", &[resident("R6")])).await);
    commit_one(store, person_record("D-2", 1, "赵六", &[resident("R6")])).await;
    let deleted = commit_one(store, withdrawn("D-1", 2)).await;
    assert_eq!(deleted.outcome, Outcome::Accepted);
    assert!(deleted.resolutions.is_empty());
    let (_, record) = unified(store, &id).await;
    assert_eq!(source_ids(&record), ["D-2"]);
    let again = resolved(&commit_one(store, person_record("D-3", 1, "赵六", &[resident("R6")])).await);
    assert_eq!(again, id, "the key still leads to the entity");
}

async fn stale_and_replayed_records_change_no_unified_record(fixture: &impl Fixture) {
    let store = fixture.store();
    let id = resolved(&commit_one(store, person_record("S-1", 5, "钱七", &[resident("R7")])).await);
    let before = feed(store).await.len();
    let (_, record_before) = unified(store, &id).await;
    let stale = commit_one(store, person_record("S-1", 4, "钱 七", &[resident("R8")])).await;
    assert_eq!(stale.outcome, Outcome::Stale);
    assert!(stale.resolutions.is_empty());
    let replay = commit_one(store, person_record("S-1", 5, "钱七", &[resident("R7")])).await;
    assert_eq!(replay.outcome, Outcome::Unchanged);
    assert_eq!(feed(store).await.len(), before, "no change published");
    assert_eq!(unified(store, &id).await.1, record_before);
    let newer = commit_one(
        store,
        person_record("S-1", 6, "钱七", &[resident("R7"), passport("Q7")]),
    )
    .await;
    assert_eq!(resolved(&newer), id);
    let (_, record_after) = unified(store, &id).await;
    assert_eq!(record_after.version, record_before.version + 1);
}

async fn the_feed_is_gap_free_in_commit_order(fixture: &impl Fixture) {
    let store = fixture.store();
    for n in 0..5 {
        let batch = (0..3)
            .map(|i| person_record(&format!("F-{n}-{i}"), 1, "孙八", &[resident(&format!("R{i}"))]))
            .collect();
        commit(store, batch).await;
    }
    let changes = feed(store).await;
    let positions: Vec<i64> = changes.iter().map(|c| c.position).collect();
    assert_eq!(
        positions,
        (1..=positions.len() as i64).collect::<Vec<_>>(),
        "no gap, in order"
    );
    let mut versions: HashMap<&str, i64> = HashMap::new();
    for change in &changes {
        // The text is passed on as it is: it must be exactly the record as encoded,
        // and its head the record's.
        let record = change.record().expect("the change's record");
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            change.text,
            "the record as published"
        );
        assert_eq!(
            (
                &record.unified_id,
                record.kind,
                record.version,
                &record.merged_into,
                &record.sources
            ),
            (
                &change.head.unified_id,
                change.head.kind,
                change.head.version,
                &change.head.merged_into,
                &change.head.sources
            ),
            "the head is the record's"
        );
        let last = versions.insert(&change.head.unified_id, change.head.version);
        assert_eq!(
            change.head.version,
            last.unwrap_or(0) + 1,
            "versions grow by one per change"
        );
    }
    assert_eq!(versions.len(), 3, "three people");
    let tail = store.changes(positions[4], &[], 3).await.unwrap();
    assert_eq!(tail.iter().map(|c| c.position).collect::<Vec<_>>(), positions[5..8]);
    assert!(store
        .changes(0, &[EntityKind::Organisation], 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.changes(0, &[EntityKind::Person], 100).await.unwrap().len(),
        changes.len()
    );
}

async fn reads_are_audited(fixture: &impl Fixture) {
    let store = fixture.store();
    let entry = AuditEntry {
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        identity: "department:hrss".to_owned(),
        action: "lookup".to_owned(),
        subject: "P00000000001".to_owned(),
        purpose: "case 2026-1".to_owned(),
        outcome: "granted".to_owned(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
    };
    store.audit(&entry).await.unwrap();
    let second = AuditEntry {
        outcome: "refused: facts:civil".to_owned(),
        trace_id: String::new(),
        ..entry.clone()
    };
    store.audit(&second).await.unwrap();
    assert_eq!(fixture.reopen().await.audit_log(10).await.unwrap(), [entry, second]);
}

async fn traffic_adds_up(fixture: &impl Fixture) {
    let store = fixture.store();
    let row = |minute: i64, counter: &str, n: i64| TrafficRow {
        minute,
        department: "tax".to_owned(),
        record_type: "tax.taxpayer".to_owned(),
        counter: counter.to_owned(),
        n,
    };
    store.add_traffic(&[]).await.unwrap();
    store
        .add_traffic(&[row(60, "accepted", 2), row(60, "stale", 1), row(120, "accepted", 5)])
        .await
        .unwrap();
    // Another replica adds to the same counters, and to a new one.
    let other = fixture.reopen().await;
    other
        .add_traffic(&[row(60, "accepted", 3), row(180, "accepted", 7)])
        .await
        .unwrap();
    let sorted = |mut rows: Vec<TrafficRow>| {
        rows.sort_by_key(|r| (r.minute, r.department.clone(), r.counter.clone()));
        rows
    };
    assert_eq!(
        sorted(store.traffic(60, 180, 60, None).await.unwrap()),
        [row(60, "accepted", 5), row(60, "stale", 1), row(120, "accepted", 5)],
        "[since, until) and added up"
    );
    assert_eq!(other.traffic(0, i64::MAX, 60, None).await.unwrap().len(), 4);

    // Summed in the database per window, for one department when asked.
    other
        .add_traffic(&[TrafficRow {
            department: "civil".to_owned(),
            record_type: "civil.marriage".to_owned(),
            ..row(120, "accepted", 11)
        }])
        .await
        .unwrap();
    assert_eq!(
        sorted(store.traffic(0, 3600, 3600, Some("tax")).await.unwrap()),
        [row(0, "accepted", 17), row(0, "stale", 1)],
        "one window of an hour"
    );
    let civil = TrafficRow {
        department: "civil".to_owned(),
        record_type: "civil.marriage".to_owned(),
        ..row(120, "accepted", 11)
    };
    assert_eq!(
        sorted(store.traffic(0, 240, 120, None).await.unwrap()),
        [
            row(0, "accepted", 5),
            row(0, "stale", 1),
            civil.clone(),
            row(120, "accepted", 12),
        ],
        "windows of two minutes, every department"
    );
    assert_eq!(store.traffic(0, 240, 120, Some("civil")).await.unwrap(), [civil]);
    assert!(store.traffic(0, 240, 120, Some("hrss")).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Quality reports

/// Source IDs that sort differently in byte order and under a linguistic collation
/// (which ignores hyphens and puts `a` before `B`).
const UNEVEN_IDS: [&str; 9] = ["G10-U1", "G1-U1", "G1-V1", "G1U1", "g1-u1", "a-1", "B-1", "b-1", "B-10"];

/// Pages of flagged records follow byte order, the order of the cursor the report hands
/// out (`quality::flagged_records`): every record once, none skipped, on both stores.
async fn flagged_records_page_in_byte_order(fixture: &impl Fixture) {
    let store = fixture.store();
    for (n, id) in UNEVEN_IDS.iter().enumerate() {
        let mut record = person_record(id, 1, "周九", &[resident(&format!("Q{n}"))]);
        let Submission::Valid(source) = &mut record else {
            unreachable!("person_record is valid")
        };
        let contribution = source.contribution.as_mut().expect("a contribution");
        contribution.mentions[0].flags.push(QualityFlag {
            code: FlagCode::WrongCheckCharacter,
            pointer: "/nsrsbh".to_owned(),
            message: "wrong check character".to_owned(),
        });
        assert_eq!(commit_one(store, record).await.outcome, Outcome::Accepted);
    }
    let mut expected: Vec<String> = UNEVEN_IDS.iter().map(|id| (*id).to_owned()).collect();
    expected.sort();
    let filter = FlagFilter {
        record_types: vec![record_type()],
        code: None,
    };
    for page_size in [1, 2, 4] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            // As the quality desk asks: one more than the page, the cursor its last record.
            let mut page = store
                .flagged_records(&filter, after.clone(), page_size + 1)
                .await
                .expect("a page");
            let more = page.len() > page_size;
            page.truncate(page_size);
            after = page.last().map(|r| (r.record_type.clone(), r.source_id.clone()));
            seen.extend(page.into_iter().map(|r| r.source_id));
            if !more {
                break;
            }
        }
        assert_eq!(seen, expected, "pages of {page_size}");
    }
}

/// The same on a PostgreSQL database whose collation is not byte order.
#[tokio::test]
async fn postgres_flagged_records_page_in_byte_order_under_a_linguistic_collation() {
    let db = TestDatabase::create_with_collation("en-US-u-ka-shifted").await;
    let client = db.connect().await;
    let sorted: Vec<String> = client
        .query(
            "SELECT id FROM unnest($1::text[]) AS id ORDER BY id",
            &[&UNEVEN_IDS.to_vec()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut bytes = sorted.clone();
    bytes.sort();
    assert_ne!(sorted, bytes, "the database's collation is not byte order");
    let store = PostgresStore::connect(&db.settings())
        .await
        .expect("connect the PostgreSQL store");
    flagged_records_page_in_byte_order(&Postgres { store, db }).await;
}

/// How many times each version (source ID, version) was newly held by the concurrent
/// batches' results (accepted or stale); none of them may be rejected.
async fn inserted_versions(mut tasks: tokio::task::JoinSet<Vec<RecordResult>>) -> HashMap<(String, i64), usize> {
    let mut inserted: HashMap<(String, i64), usize> = HashMap::new();
    while let Some(results) = tasks.join_next().await {
        for result in results.expect("task") {
            assert_ne!(result.outcome, Outcome::Rejected, "{result:?}");
            if matches!(result.outcome, Outcome::Accepted | Outcome::Stale) {
                *inserted
                    .entry((result.source_id.clone(), result.source_version))
                    .or_default() += 1;
            }
        }
    }
    inserted
}
