//! Golden records: one hand-written native record per record type, dirt included, and
//! the outcome worked out by hand from the department specifications and the
//! normalisation rules (tests/fixtures/golden/<record_type>.json). Each is pushed by
//! its department over mutual TLS; the push result's mentions and quality flags, and
//! the unified record of every mention as the platform looks it up, must be exactly
//! what the fixture says. On both stores.
//!
//! The fixtures are about different people and organisations (no key is shared
//! between two fixtures), so every unified record here has exactly one source and
//! its attributes are that mention's values under survivorship.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tongban_gateway::identity::Identity;
use tongban_proto::v1 as pb;
use tongban_tests::hub::{department, StoreKind, TestHub};
use tongban_tests::unified::{lookup_id, outcome, push, record_json, unified};

tongban_tests::on_both_stores!(golden_records_unify_as_worked_out_by_hand);

const FIXTURES: [(&str, &str); 8] = [
    ("tax.taxpayer", include_str!("../fixtures/golden/tax.taxpayer.json")),
    (
        "hrss.insured_person",
        include_str!("../fixtures/golden/hrss.insured_person.json"),
    ),
    ("market.entity", include_str!("../fixtures/golden/market.entity.json")),
    (
        "realestate.title",
        include_str!("../fixtures/golden/realestate.title.json"),
    ),
    (
        "housingfund.account",
        include_str!("../fixtures/golden/housingfund.account.json"),
    ),
    (
        "construction.permit",
        include_str!("../fixtures/golden/construction.permit.json"),
    ),
    ("civil.marriage", include_str!("../fixtures/golden/civil.marriage.json")),
    (
        "civil.assistance",
        include_str!("../fixtures/golden/civil.assistance.json"),
    ),
];

/// Every disagreement found, so that one run reports all of them, not only the first.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, context: &str, found: T, expected: T) {
        if found != expected {
            self.0
                .push(format!("{context}: found {found:?}, expected {expected:?}"));
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("fixture value {v} is not a string"))
}

/// `(code, pointer)` pairs of a list of flags, as JSON objects.
fn flag_set<'a>(flags: impl IntoIterator<Item = &'a Value>) -> BTreeSet<(String, String)> {
    flags
        .into_iter()
        .map(|f| (text(&f["code"]).to_owned(), text(&f["pointer"]).to_owned()))
        .collect()
}

/// Numbers compare by value (760 and 760.0 are one allowance); everything else exactly.
fn same_json(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y)),
        _ => found == expected,
    }
}

async fn golden_records_unify_as_worked_out_by_hand(kind: StoreKind) {
    let hub = TestHub::start(kind).await;
    let mut platform = unified(&hub, &Identity::Platform).await;
    let mut findings = Findings::default();
    let mut mentions_checked = 0;
    for (record_type, fixture) in FIXTURES {
        let fixture: Value = serde_json::from_str(fixture).unwrap_or_else(|e| panic!("{record_type} fixture: {e}"));
        mentions_checked += check_fixture(&hub, &mut platform, record_type, &fixture, &mut findings).await;
    }
    assert!(
        findings.0.is_empty(),
        "{} disagreement(s) with the hand-worked outcomes:\n{}",
        findings.0.len(),
        findings.0.join("\n")
    );
    assert_eq!(mentions_checked, 20, "every fixture's mentions were looked up");
}

/// Pushes one fixture and compares everything; returns the number of mentions checked.
async fn check_fixture(
    hub: &TestHub,
    platform: &mut tongban_proto::v1::unified_client::UnifiedClient<tonic::transport::Channel>,
    record_type: &str,
    fixture: &Value,
    findings: &mut Findings,
) -> usize {
    let sent = &fixture["envelope"];
    assert_eq!(
        text(&sent["record_type"]),
        record_type,
        "fixture file name and record type"
    );
    let source_id = text(&sent["source_id"]).to_owned();
    let envelope = pb::Envelope {
        record_type: record_type.to_owned(),
        source_id: source_id.clone(),
        source_version: sent["source_version"].as_i64().expect("source_version"),
        deleted: false,
        payload: sent["payload"].to_string().into(),
    };
    let mut exchange = hub.exchange(&department(text(&fixture["department"]))).await;
    let results = push(&mut exchange, record_type, vec![envelope]).await;
    let result = &results[0];
    assert_eq!(
        outcome(result),
        pb::Outcome::Accepted,
        "{record_type}: the golden record is valid: {:?}",
        result.errors
    );
    let expect = &fixture["expect"];

    // The push result: the flags reported back to the department, and every mention.
    let reported: BTreeSet<(String, String)> = result
        .quality_flags
        .iter()
        .map(|f| (f.code.clone(), f.pointer.clone()))
        .collect();
    findings.equal(
        &format!("{record_type}: quality flags of the push result"),
        reported,
        flag_set(expect["quality_flags"].as_array().expect("quality_flags")),
    );
    for flag in &result.quality_flags {
        // Flags are logged and counted: they describe the defect, never quote the value.
        let value = sent["payload"]
            .pointer(&flag.pointer)
            .and_then(Value::as_str)
            .unwrap_or("");
        let value = value.trim_matches(|c: char| c.is_whitespace());
        findings.check(
            flag.message.is_empty() || value.len() < 4 || !flag.message.contains(value),
            || {
                format!(
                    "{record_type}: the message of flag {} at {} quotes the value",
                    flag.code, flag.pointer
                )
            },
        );
        findings.check(!flag.message.is_empty(), || {
            format!("{record_type}: flag {} at {} has no message", flag.code, flag.pointer)
        });
    }
    let expected_mentions = expect["mentions"].as_array().expect("mentions");
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for m in &result.mentions {
        ids.insert(format!("@{}/{}", m.role, m.index), m.unified_id.clone());
        findings.check(!m.matched_existing, || {
            format!(
                "{record_type}: mention {}/{} matched an existing entity, but no other record names it",
                m.role, m.index
            )
        });
    }
    let expected_slots: BTreeSet<String> = expected_mentions
        .iter()
        .map(|m| format!("@{}/{}", text(&m["role"]), m["index"]))
        .collect();
    findings.equal(
        &format!("{record_type}: mentions of the push result"),
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        expected_slots,
    );
    let distinct: BTreeSet<&String> = ids.values().collect();
    findings.equal(
        &format!("{record_type}: distinct entities of the mentions"),
        distinct.len(),
        ids.len(),
    );

    let mut checked = 0;
    for expected in expected_mentions {
        let slot = format!("@{}/{}", text(&expected["role"]), expected["index"]);
        let Some(id) = ids.get(&slot).cloned() else {
            continue; // already reported above
        };
        let context = format!("{record_type} {slot} ({id})");
        let source = serde_json::json!({
            "record_type": record_type, "source_id": source_id,
            "role": expected["role"], "index": expected["index"],
        });
        check_mention(platform, &context, &id, expected, &source, &ids, findings).await;
        checked += 1;
    }
    checked
}

/// A `"@role/index"` reference to another mention of the record, as its unified ID.
fn resolve_reference(value: &Value, ids: &BTreeMap<String, String>) -> Value {
    match value.as_str() {
        Some(reference) if reference.starts_with('@') => ids.get(reference).map_or_else(
            || Value::String(format!("<no mention {reference}>")),
            |id| Value::String(id.clone()),
        ),
        _ => value.clone(),
    }
}

async fn check_mention(
    platform: &mut tongban_proto::v1::unified_client::UnifiedClient<tonic::transport::Channel>,
    context: &str,
    id: &str,
    expected: &Value,
    source: &Value,
    ids: &BTreeMap<String, String>,
    findings: &mut Findings,
) {
    let kind = text(&expected["kind"]);
    let (prefix, pb_kind) = match kind {
        "person" => ('P', pb::EntityKind::Person),
        _ => ('O', pb::EntityKind::Organisation),
    };
    findings.check(id.starts_with(prefix) && id.len() == 12, || {
        format!("{context}: a {kind}'s unified ID is {prefix} and 11 digits")
    });
    let response = lookup_id(platform, id)
        .await
        .unwrap_or_else(|status| panic!("{context}: lookup as the platform: {status:?}"));
    findings.equal(&format!("{context}: looked-up ID"), response.unified_id.as_str(), id);
    findings.equal(
        &format!("{context}: redirected_from"),
        response.redirected_from.as_str(),
        "",
    );
    findings.equal(&format!("{context}: kind"), response.kind, pb_kind as i32);
    let sources: Vec<Value> = response
        .sources
        .iter()
        .map(|s| serde_json::json!({"record_type": s.record_type, "source_id": s.source_id, "role": s.role, "index": s.index}))
        .collect();
    findings.equal(&format!("{context}: sources"), sources, vec![source.clone()]);

    let record = record_json(&response.record);
    findings.equal(&format!("{context}: record kind"), &record["kind"], &Value::from(kind));
    findings.equal(
        &format!("{context}: record ID"),
        &record["unified_id"],
        &Value::from(id),
    );
    findings.equal(
        &format!("{context}: record version"),
        record["version"].as_i64(),
        Some(response.version),
    );
    findings.equal(
        &format!("{context}: record sources"),
        &record["sources"],
        &Value::Array(vec![source.clone()]),
    );

    // Identifiers: exactly these, keys and unreliable ones.
    let identifiers = |list: &Value| -> BTreeSet<(String, String, bool)> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|i| {
                        (
                            text(&i["scheme"]).to_owned(),
                            text(&i["value"]).to_owned(),
                            i["key"] == Value::Bool(true),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    findings.equal(
        &format!("{context}: identifiers"),
        identifiers(&record["identifiers"]),
        identifiers(&expected["identifiers"]),
    );

    // Attributes: exactly these names, these values, from this mention.
    let attributes = record["attributes"].as_object().cloned().unwrap_or_default();
    let wanted = expected["attributes"].as_object().expect("attributes");
    findings.equal(
        &format!("{context}: attribute names"),
        attributes.keys().cloned().collect::<BTreeSet<_>>(),
        wanted.keys().cloned().collect::<BTreeSet<_>>(),
    );
    for (name, value) in wanted {
        let Some(found) = attributes.get(name) else {
            continue;
        };
        findings.equal(
            &format!("{context}: attribute {name}"),
            &found["value"],
            &resolve_reference(value, ids),
        );
        findings.equal(&format!("{context}: provenance of {name}"), &found["source"], source);
    }
    if let Some(rules) = expected["rules"].as_object() {
        for (name, rule) in rules {
            findings.equal(
                &format!("{context}: survival rule of {name}"),
                &attributes.get(name).map_or(Value::Null, |a| a["rule"].clone()),
                rule,
            );
        }
    }
    if let Some(variants) = expected["variants"].as_object() {
        for (name, values) in variants {
            let seen: BTreeSet<&str> = record["variants"][name]
                .as_array()
                .map(|l| l.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for value in values.as_array().expect("variants") {
                findings.check(seen.contains(text(value)), || {
                    format!("{context}: variants of {name} {seen:?} lack {value}")
                });
            }
        }
    }

    // Facts: under the pushing department only, one set per expected topic.
    let department = source["record_type"]
        .as_str()
        .and_then(|t| t.split('.').next())
        .unwrap_or("");
    let expected_facts = expected["facts"].as_array().expect("facts");
    let facts = record["facts"].as_object().cloned().unwrap_or_default();
    let departments: BTreeSet<String> = facts.keys().cloned().collect();
    let wanted_departments: BTreeSet<String> = if expected_facts.is_empty() {
        BTreeSet::new()
    } else {
        BTreeSet::from([department.to_owned()])
    };
    findings.equal(
        &format!("{context}: departments with facts"),
        departments,
        wanted_departments,
    );
    let stated = facts
        .get(department)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    findings.equal(
        &format!("{context}: number of fact sets"),
        stated.len(),
        expected_facts.len(),
    );
    for wanted in expected_facts {
        let topic = &wanted["topic"];
        let Some(found) = stated.iter().find(|f| &f["topic"] == topic) else {
            findings.0.push(format!("{context}: no fact set about {topic}"));
            continue;
        };
        findings.equal(
            &format!("{context}: source of the {topic} facts"),
            &found["source"],
            source,
        );
        for (field, value) in wanted.as_object().expect("fact set") {
            let present = found.get(field);
            if value.is_null() {
                findings.check(present.is_none_or(Value::is_null), || {
                    format!("{context}: fact {topic}.{field} should be absent, found {present:?}")
                });
            } else {
                findings.check(present.is_some_and(|p| same_json(p, value)), || {
                    format!("{context}: fact {topic}.{field}: found {present:?}, expected {value}")
                });
            }
        }
    }

    // Relations: exactly these, each stated by this mention.
    let relation_set = |list: &Value, resolve: bool| -> BTreeSet<String> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|r| {
                        let other = if resolve {
                            resolve_reference(&r["other"], ids)
                        } else {
                            r["unified_id"].clone()
                        };
                        format!(
                            "{} outgoing={} other={} detail={}",
                            r["relation"], r["outgoing"], other, r["detail"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    findings.equal(
        &format!("{context}: relations"),
        relation_set(&record["relations"], false),
        relation_set(&expected["relations"], true),
    );
    for relation in record["relations"].as_array().into_iter().flatten() {
        findings.equal(&format!("{context}: source of a relation"), &relation["source"], source);
    }

    // Quality flags of the unified record: this mention's, with it as their source.
    let flags = record["quality_flags"].as_array().cloned().unwrap_or_default();
    findings.equal(
        &format!("{context}: quality flags of the unified record"),
        flag_set(&flags),
        flag_set(expected["quality_flags"].as_array().expect("quality_flags")),
    );
    for flag in &flags {
        findings.equal(
            &format!("{context}: source of flag {}", flag["code"]),
            &flag["source"],
            source,
        );
    }
}
