//! Reading fields of a payload that has passed its JSON Schema, for every adapter.
//!
//! The schemas guarantee the structure (required fields present, each field of its
//! type); these helpers turn a violation of that guarantee into a [`ReadError`] with
//! the field's JSON Pointer instead of a panic or a guess. They never look at what a
//! value means: deciding that a text is blank, and reading a code the way departments
//! type it, is all they do with content.
//!
//! Pointers are JSON Pointers (`/nsrsbh`, `/jsdw/mc`, `/cy/0/xm`), as in quality flags.
//! An optional field that is present must still have its type: `null` where the
//! schema says `string` is a violation, not an absence.

// Shared by every adapter: until all of them are merged some helpers have no caller.
#![allow(dead_code)]

use serde_json::{Map, Value};

use crate::model::{
    Attribute, DocumentFamily, FlagCode, QualityFlag, RawDate, RawDocument, RawFact, RawMention, RawValue, ReadError,
    Reading, Relation, RelationKind, Slot,
};

/// True when `text` is empty or only white space, the ideographic space U+3000
/// included: such a value means the field was left empty.
pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// A code as departments type it, reduced to the form their code tables use: white
/// space around it (U+3000 included) removed and full-width digits and Latin letters
/// (`０３`, `Ｃ`) made ASCII. Nothing else is changed, so an unknown code stays unknown.
pub(crate) fn code(text: &str) -> String {
    text.trim_matches(char::is_whitespace)
        .chars()
        .map(|c| match c {
            // The full-width forms block mirrors ASCII 0x21..=0x7E at U+FF01..=U+FF5E.
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn missing(pointer: &str, what: &str) -> ReadError {
    ReadError {
        pointer: pointer.to_string(),
        message: format!("required {what} field is missing"),
    }
}

fn wrong_type(pointer: &str, what: &str) -> ReadError {
    ReadError {
        pointer: pointer.to_string(),
        message: format!("field is not {what} as the schema requires"),
    }
}

/// The value at `pointer`, if any.
fn at<'a>(payload: &'a Value, pointer: &str) -> Option<&'a Value> {
    payload.pointer(pointer)
}

/// A required text field, as typed (it may still be blank: schemas that forbid blank
/// values say so with a pattern, and the caller decides what blank means).
pub(crate) fn text<'a>(payload: &'a Value, pointer: &str) -> Result<&'a str, ReadError> {
    optional_text(payload, pointer)?.ok_or_else(|| missing(pointer, "text"))
}

/// An optional text field, as typed: `None` when the field is missing.
pub(crate) fn optional_text<'a>(payload: &'a Value, pointer: &str) -> Result<Option<&'a str>, ReadError> {
    match at(payload, pointer) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(pointer, "a string")),
    }
}

/// An optional text field that says something: `None` when it is missing or blank,
/// otherwise the text as typed (not trimmed).
pub(crate) fn filled_text<'a>(payload: &'a Value, pointer: &str) -> Result<Option<&'a str>, ReadError> {
    Ok(optional_text(payload, pointer)?.filter(|s| !is_blank(s)))
}

/// A required array field.
pub(crate) fn array<'a>(payload: &'a Value, pointer: &str) -> Result<&'a [Value], ReadError> {
    optional_array(payload, pointer)?.ok_or_else(|| missing(pointer, "array"))
}

/// An optional array field: `None` when the field is missing.
pub(crate) fn optional_array<'a>(payload: &'a Value, pointer: &str) -> Result<Option<&'a [Value]>, ReadError> {
    match at(payload, pointer) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.as_slice())),
        Some(_) => Err(wrong_type(pointer, "an array")),
    }
}

/// A required object field.
pub(crate) fn object<'a>(payload: &'a Value, pointer: &str) -> Result<&'a Map<String, Value>, ReadError> {
    optional_object(payload, pointer)?.ok_or_else(|| missing(pointer, "object"))
}

/// An optional object field: `None` when the field is missing.
pub(crate) fn optional_object<'a>(
    payload: &'a Value,
    pointer: &str,
) -> Result<Option<&'a Map<String, Value>>, ReadError> {
    match at(payload, pointer) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(wrong_type(pointer, "an object")),
    }
}

/// A required number field.
pub(crate) fn number(payload: &Value, pointer: &str) -> Result<f64, ReadError> {
    optional_number(payload, pointer)?.ok_or_else(|| missing(pointer, "number"))
}

/// An optional number field: `None` when the field is missing.
pub(crate) fn optional_number(payload: &Value, pointer: &str) -> Result<Option<f64>, ReadError> {
    match at(payload, pointer) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| wrong_type(pointer, "a number")),
        Some(_) => Err(wrong_type(pointer, "a number")),
    }
}

/// A required integer field.
pub(crate) fn integer(payload: &Value, pointer: &str) -> Result<i64, ReadError> {
    optional_integer(payload, pointer)?.ok_or_else(|| missing(pointer, "integer"))
}

/// An optional integer field: `None` when the field is missing. JSON Schema counts
/// `5.0` as an integer, so a number without a fractional part is accepted.
pub(crate) fn optional_integer(payload: &Value, pointer: &str) -> Result<Option<i64>, ReadError> {
    let Some(value) = at(payload, pointer) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(wrong_type(pointer, "an integer"));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // The bounds keep the cast exact; beyond them no department date or count lives.
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(wrong_type(pointer, "an integer")),
    }
}

// ---------------------------------------------------------------------------
// Building mentions from fields: the same few steps in every adapter.

/// The quality flag of a code missing from a department's table. The message names
/// the table, never the code itself (flags are logged and counted).
pub(crate) fn unknown_code(pointer: &str, table: &str) -> QualityFlag {
    QualityFlag::new(
        FlagCode::UnknownCode,
        pointer,
        format!("code is not in the {table} code table"),
    )
}

/// The value of an optional free-text field (name, phone, address, amount), as
/// typed; `None` when the field is missing or blank.
pub(crate) fn typed_value(payload: &Value, attribute: Attribute, pointer: &str) -> Result<Option<RawValue>, ReadError> {
    Ok(filled_text(payload, pointer)?.map(|text| RawValue::text(attribute, pointer, text)))
}

/// The value of an optional date field, as typed; `None` when missing or blank.
pub(crate) fn typed_date(payload: &Value, attribute: Attribute, pointer: &str) -> Result<Option<RawValue>, ReadError> {
    Ok(filled_text(payload, pointer)?.map(|text| RawValue::date(attribute, pointer, RawDate::Text(text.to_owned()))))
}

/// The fact `name` that an optional field states, kept as typed and made a fact by
/// `fact` (`RawFact::Text`, `RawFact::Amount`, [`date_fact`]); `None` when the field
/// is missing or blank.
pub(crate) fn typed_fact(
    payload: &Value,
    name: &'static str,
    pointer: &str,
    fact: fn(String) -> RawFact,
) -> Result<Option<(&'static str, RawFact)>, ReadError> {
    Ok(filled_text(payload, pointer)?.map(|text| (name, fact(text.to_owned()))))
}

/// A date fact as typed, for [`typed_fact`].
pub(crate) fn date_fact(text: String) -> RawFact {
    RawFact::Date(RawDate::Text(text))
}

/// A number whose field implies its family (a credit code column, a department
/// register); `None` when the field is missing or blank.
pub(crate) fn implied_document(
    payload: &Value,
    pointer: &str,
    family: DocumentFamily,
    register: Option<&'static str>,
) -> Result<Option<RawDocument>, ReadError> {
    Ok(filled_text(payload, pointer)?.map(|number| RawDocument {
        family: Some(family),
        code: String::new(),
        register,
        pointer: pointer.to_owned(),
        number: number.to_owned(),
    }))
}

/// A document number typed beside a type code from a department's table, read
/// through `table` (which sees the code as [`code`] reduces it).
///
/// - A number with a known code: the document of that family.
/// - A number with an unknown or blank code: the document without a family (kept,
///   never a key), and a flag on the code's pointer.
/// - No number: no document; still a flag when the code is filled but unknown.
pub(crate) fn coded_document(
    payload: &Value,
    number_pointer: &str,
    code_pointer: &str,
    table: fn(&str) -> Option<DocumentFamily>,
    table_name: &str,
) -> Result<(Option<RawDocument>, Option<QualityFlag>), ReadError> {
    let type_code = optional_text(payload, code_pointer)?.unwrap_or("");
    let number = filled_text(payload, number_pointer)?;
    let family = table(&code(type_code));
    let flag = match (family, number) {
        (Some(_), _) => None,
        (None, Some(_)) if is_blank(type_code) => Some(QualityFlag::new(
            FlagCode::UnknownCode,
            code_pointer,
            format!("document type is empty beside a document number; the {table_name} code table needs one"),
        )),
        (None, None) if is_blank(type_code) => None,
        (None, _) => Some(unknown_code(code_pointer, table_name)),
    };
    let document = number.map(|number| RawDocument {
        family,
        code: type_code.to_owned(),
        register: None,
        pointer: number_pointer.to_owned(),
        number: number.to_owned(),
    });
    Ok((document, flag))
}

/// A code read through a department's table: the mapped value, or `None` and an
/// unknown-code flag pushed on `flags` (a blank code is unknown too: call this only
/// for codes that are required, or after deciding an optional one is filled).
pub(crate) fn lookup<T>(
    typed: &str,
    pointer: &str,
    table: impl Fn(&str) -> Option<T>,
    table_name: &str,
    flags: &mut Vec<QualityFlag>,
) -> Option<T> {
    let found = table(&code(typed));
    if found.is_none() {
        flags.push(unknown_code(pointer, table_name));
    }
    found
}

/// Checks that the text fields a schema requires are present and strings, so that an
/// adapter may read them with the optional readers and still reject a record whose
/// structure the schema should have refused.
pub(crate) fn require_texts(payload: &Value, pointers: &[&str]) -> Result<(), ReadError> {
    pointers
        .iter()
        .try_for_each(|pointer| text(payload, pointer).map(|_| ()))
}

/// True when a mention says who it is about: a name or a number. DESIGN.md: "A
/// mention that a record leaves empty (no name, no number) is not a mention."
pub(crate) fn identifies(mention: &RawMention) -> bool {
    !mention.documents.is_empty() || mention.values.iter().any(|v| v.attribute == Attribute::Name)
}

/// A relation between two mentions of a record that the record states without a
/// qualifier (employed by, legal representative of, manages the project of).
pub(crate) fn relation(kind: RelationKind, from: Slot, to: Slot) -> Relation {
    Relation {
        kind,
        from,
        to: Some(to),
        detail: None,
    }
}

/// A record's reading: of `mentions` (in record order) those that [`identifies`]
/// someone, and of `relations` those whose mentions are both still there, so that
/// no relation points at a mention the record left empty.
pub(crate) fn reading(
    mentions: impl IntoIterator<Item = RawMention>,
    relations: impl IntoIterator<Item = Relation>,
) -> Reading {
    let mentions: Vec<RawMention> = mentions.into_iter().filter(identifies).collect();
    let present = |slot: Slot| mentions.iter().any(|m| m.slot == slot);
    let relations = relations
        .into_iter()
        .filter(|r| present(r.from) && r.to.is_none_or(present))
        .collect();
    Reading { mentions, relations }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{EntityKind, Role};

    #[test]
    fn blank_includes_ideographic_space() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\u{3000}"));
        assert!(!is_blank(" a "));
    }

    #[test]
    fn codes_are_trimmed_and_made_ascii() {
        assert_eq!(code("\u{3000}０３ "), "03");
        assert_eq!(code("Ｃ１３１１"), "C1311");
        assert_eq!(code("ｃ"), "c");
        assert_eq!(code("存续"), "存续");
        assert_eq!(code("2 99"), "2 99");
    }

    #[test]
    fn text_fields() {
        let p = json!({"a": "x", "b": " ", "n": 5, "o": {"c": "y"}, "z": null});
        assert_eq!(text(&p, "/a"), Ok("x"));
        assert_eq!(text(&p, "/o/c"), Ok("y"));
        assert_eq!(text(&p, "/missing").map_err(|e| e.pointer), Err("/missing".to_string()));
        assert_eq!(text(&p, "/n").map_err(|e| e.pointer), Err("/n".to_string()));
        assert!(optional_text(&p, "/z").is_err());
        assert_eq!(optional_text(&p, "/missing"), Ok(None));
        assert_eq!(optional_text(&p, "/b"), Ok(Some(" ")));
        assert_eq!(filled_text(&p, "/b"), Ok(None));
        assert_eq!(filled_text(&p, "/a"), Ok(Some("x")));
        // Not an object at the root: every field is simply missing.
        assert_eq!(optional_text(&json!([1]), "/a"), Ok(None));
    }

    #[test]
    fn structured_and_numeric_fields() {
        let p = json!({"l": ["a"], "o": {}, "f": 1.5, "i": 1_700_000_000_000_i64, "g": 3.0, "s": "1"});
        assert_eq!(array(&p, "/l").map(<[Value]>::len), Ok(1));
        assert!(array(&p, "/o").is_err());
        assert!(array(&p, "/none").is_err());
        assert_eq!(optional_array(&p, "/none"), Ok(None));
        assert!(object(&p, "/o").is_ok());
        assert!(object(&p, "/l").is_err());
        assert_eq!(number(&p, "/f"), Ok(1.5));
        assert!(number(&p, "/s").is_err());
        assert_eq!(integer(&p, "/i"), Ok(1_700_000_000_000));
        assert_eq!(integer(&p, "/g"), Ok(3));
        assert!(integer(&p, "/f").is_err());
        assert_eq!(optional_integer(&p, "/none"), Ok(None));
    }

    #[test]
    fn readings_keep_what_identifies_and_the_relations_between_it() {
        let (person, unit) = (Slot::new(Role::Insured, 0), Slot::new(Role::Employer, 0));
        let named = |slot: Slot| RawMention {
            values: vec![RawValue::text(Attribute::Name, "/xm", "王伟")],
            ..RawMention::new(slot, EntityKind::Person)
        };
        let employed = relation(RelationKind::EmployedBy, person, unit);
        assert_eq!(
            employed,
            Relation {
                kind: RelationKind::EmployedBy,
                from: person,
                to: Some(unit),
                detail: None
            }
        );
        let both = reading([named(unit), named(person)], [employed.clone()]);
        let slots: Vec<Slot> = both.mentions.iter().map(|m| m.slot).collect();
        assert_eq!(slots, [unit, person], "record order is kept");
        assert_eq!(both.relations, std::slice::from_ref(&employed));
        // An empty mention is no mention, and no relation may point at it.
        let alone = reading(
            [named(person), RawMention::new(unit, EntityKind::Organisation)],
            [employed],
        );
        assert_eq!(alone.mentions, [named(person)]);
        assert!(alone.relations.is_empty());
        let held = Relation {
            kind: RelationKind::HoldsTitle,
            from: person,
            to: None,
            detail: None,
        };
        assert_eq!(reading([named(person)], [held.clone()]).relations, [held]);
    }

    fn table(code: &str) -> Option<DocumentFamily> {
        (code == "01").then_some(DocumentFamily::ResidentIdentityCard)
    }

    #[test]
    fn coded_documents() {
        let p = json!({"n": " 12 ", "c": "\u{3000}０1", "u": "99", "b": "", "e": "\u{3000}"});
        let (doc, flag) = coded_document(&p, "/n", "/c", table, "test").unwrap();
        let doc = doc.unwrap();
        assert_eq!(doc.family, Some(DocumentFamily::ResidentIdentityCard));
        assert_eq!(
            (doc.code.as_str(), doc.number.as_str(), doc.pointer.as_str()),
            ("\u{3000}０1", " 12 ", "/n")
        );
        assert_eq!(flag, None);
        let (doc, flag) = coded_document(&p, "/n", "/u", table, "test").unwrap();
        assert_eq!(doc.unwrap().family, None);
        let flag = flag.unwrap();
        assert_eq!((flag.code, flag.pointer.as_str()), (FlagCode::UnknownCode, "/u"));
        assert!(!flag.message.contains("99"));
        // A blank or missing code with a number: kept without a family, flagged.
        assert!(coded_document(&p, "/n", "/b", table, "test").unwrap().1.is_some());
        assert!(coded_document(&p, "/n", "/none", table, "test").unwrap().1.is_some());
        // No number: no document; an unknown code is still flagged, a blank one is not.
        let (doc, flag) = coded_document(&p, "/e", "/u", table, "test").unwrap();
        assert_eq!((doc, flag.map(|f| f.pointer)), (None, Some("/u".to_owned())));
        assert_eq!(coded_document(&p, "/e", "/b", table, "test"), Ok((None, None)));
        assert_eq!(coded_document(&p, "/none", "/c", table, "test"), Ok((None, None)));
        assert!(coded_document(&json!({"n": "1", "c": 1}), "/n", "/c", table, "test").is_err());
    }

    #[test]
    fn lookups_and_required_texts() {
        let mut flags = Vec::new();
        assert_eq!(
            lookup("０1 ", "/c", table, "test", &mut flags),
            Some(DocumentFamily::ResidentIdentityCard)
        );
        assert!(flags.is_empty());
        assert_eq!(lookup("", "/c", table, "test", &mut flags), None);
        assert_eq!(lookup("7", "/d", table, "test", &mut flags), None);
        let pointers: Vec<&str> = flags.iter().map(|f| f.pointer.as_str()).collect();
        assert_eq!(pointers, ["/c", "/d"]);
        let p = json!({"a": "", "b": 1});
        assert_eq!(require_texts(&p, &["/a"]), Ok(()));
        assert_eq!(
            require_texts(&p, &["/a", "/b"]).map_err(|e| e.pointer),
            Err("/b".to_owned())
        );
        assert_eq!(
            require_texts(&p, &["/c", "/b"]).map_err(|e| e.pointer),
            Err("/c".to_owned())
        );
    }

    #[test]
    fn values_and_implied_documents() {
        let p = json!({"a": " 王 伟 ", "d": "198604", "b": "\u{3000}"});
        assert_eq!(
            typed_value(&p, Attribute::Name, "/a"),
            Ok(Some(RawValue::text(Attribute::Name, "/a", " 王 伟 ")))
        );
        assert_eq!(typed_value(&p, Attribute::Name, "/b"), Ok(None));
        assert_eq!(
            typed_date(&p, Attribute::BirthDate, "/d"),
            Ok(Some(RawValue::date(
                Attribute::BirthDate,
                "/d",
                RawDate::Text("198604".into())
            )))
        );
        let doc = implied_document(&p, "/d", DocumentFamily::DepartmentNumber, Some("x.y"))
            .unwrap()
            .unwrap();
        assert_eq!((doc.register, doc.code.as_str()), (Some("x.y"), ""));
        assert_eq!(implied_document(&p, "/missing", DocumentFamily::Other, None), Ok(None));
        assert_eq!(
            typed_fact(&p, "born", "/d", date_fact),
            Ok(Some(("born", RawFact::Date(RawDate::Text("198604".into())))))
        );
        assert_eq!(
            typed_fact(&p, "holder", "/a", RawFact::Text),
            Ok(Some(("holder", RawFact::Text(" 王 伟 ".into()))))
        );
        assert_eq!(typed_fact(&p, "blank", "/b", RawFact::Amount), Ok(None));
        assert!(typed_fact(&json!({"n": 1}), "number", "/n", RawFact::Text).is_err());
    }
}

/// What every adapter's property test checks over the synthetic city.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashSet;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::OnceLock;

    use serde_json::Value;

    use super::code;
    use crate::catalog::RecordType;
    use crate::model::{
        Attribute, DocumentFamily, QualityFlag, RawDate, RawDocument, RawFact, RawValue, ReadError, Reading, Role,
    };
    use crate::synth::{CityConfig, SyntheticRecord};

    // Builders of the expectations in the departments' golden tests: values as the
    // adapters must read them from hand-written payloads.

    /// What `read` makes of `payload`, or a panic that names the field it failed on.
    pub(crate) fn read_ok(read: fn(&Value) -> Result<Reading, ReadError>, payload: &Value) -> Reading {
        match read(payload) {
            Ok(reading) => reading,
            Err(e) => panic!("read failed at {}: {}", e.pointer, e.message),
        }
    }

    /// A document number typed at `pointer` beside the type code `code` (empty where
    /// the field implies the family).
    pub(crate) fn document(family: Option<DocumentFamily>, code: &str, pointer: &str, number: &str) -> RawDocument {
        RawDocument {
            family,
            code: code.to_owned(),
            register: None,
            pointer: pointer.to_owned(),
            number: number.to_owned(),
        }
    }

    /// A number of a department's own `register`, typed at `pointer`.
    pub(crate) fn department_number(register: &'static str, pointer: &str, number: &str) -> RawDocument {
        RawDocument {
            register: Some(register),
            ..document(Some(DocumentFamily::DepartmentNumber), "", pointer, number)
        }
    }

    /// A text value (or a code already mapped to our word) at `pointer`.
    pub(crate) fn value(attribute: Attribute, pointer: &str, text: &str) -> RawValue {
        RawValue::text(attribute, pointer, text)
    }

    /// A date value typed as text at `pointer`.
    pub(crate) fn date_value(attribute: Attribute, pointer: &str, text: &str) -> RawValue {
        RawValue::date(attribute, pointer, RawDate::Text(text.to_owned()))
    }

    /// A fact kept as typed text.
    pub(crate) fn text(text: &str) -> RawFact {
        RawFact::Text(text.to_owned())
    }

    /// A fact that is a date typed as text.
    pub(crate) fn date(text: &str) -> RawFact {
        RawFact::Date(RawDate::Text(text.to_owned()))
    }

    /// The flag of a code missing from the table named `table`.
    pub(crate) fn unknown(pointer: &str, table: &str) -> QualityFlag {
        super::unknown_code(pointer, table)
    }

    /// The city the property tests read, generated once per test run.
    pub(crate) fn city() -> &'static [SyntheticRecord] {
        static CITY: OnceLock<Vec<SyntheticRecord>> = OnceLock::new();
        CITY.get_or_init(|| crate::synth::city(&CityConfig { people: 2000, seed: 7 }))
    }

    /// Reads every generated record of `record_type` through [`crate::read`] and checks
    /// what must hold for any adapter: it reads without error or panic; every mention
    /// has one of `roles`, a slot of its own, and a name or a number; relations join
    /// mentions of the record; document numbers are exactly as typed; every pointer
    /// points into the payload; no flag message repeats the code it flags. Returns the
    /// readings for the department's own checks.
    pub(crate) fn read_generated(record_type: RecordType, roles: &[Role]) -> Vec<(&'static SyntheticRecord, Reading)> {
        let mut readings = Vec::new();
        for record in city().iter().filter(|r| r.record_type == record_type) {
            let id = &record.source_id;
            let outcome = catch_unwind(AssertUnwindSafe(|| crate::read(record_type, &record.payload)));
            let reading = match outcome {
                Ok(Ok(reading)) => reading,
                Ok(Err(e)) => panic!("{record_type} {id}: read error at {}: {}", e.pointer, e.message),
                Err(_) => panic!("{record_type} {id}: the adapter panicked"),
            };
            let mut slots = HashSet::new();
            for mention in &reading.mentions {
                assert!(roles.contains(&mention.slot.role), "{id}: role {}", mention.slot.role);
                assert!(slots.insert(mention.slot), "{id}: {:?} twice", mention.slot);
                let named = mention.values.iter().any(|v| v.attribute == Attribute::Name);
                assert!(named || !mention.documents.is_empty(), "{id}: empty {:?}", mention.slot);
                for document in &mention.documents {
                    let typed = record.payload.pointer(&document.pointer).and_then(Value::as_str);
                    assert_eq!(typed, Some(document.number.as_str()), "{id}: {}", document.pointer);
                }
                for value in &mention.values {
                    assert!(
                        record.payload.pointer(&value.pointer).is_some(),
                        "{id}: {}",
                        value.pointer
                    );
                }
                for flag in &mention.flags {
                    let typed = record.payload.pointer(&flag.pointer).and_then(Value::as_str);
                    let Some(typed) = typed else {
                        panic!("{id}: flag on {} which is no text field", flag.pointer)
                    };
                    let typed = code(typed);
                    assert!(
                        typed.is_empty() || !flag.message.contains(&typed),
                        "{id}: flag message repeats the code at {}",
                        flag.pointer
                    );
                }
            }
            for relation in &reading.relations {
                assert!(slots.contains(&relation.from), "{id}: relation from a missing mention");
                if let Some(to) = relation.to {
                    assert!(slots.contains(&to), "{id}: relation to a missing mention");
                }
            }
            readings.push((record, reading));
        }
        assert!(!readings.is_empty(), "the city has no {record_type} record");
        readings
    }

    /// Replaces each field of the first generated records of `record_type` in turn by
    /// JSON values of every type (and removes it), and reads each variant: an error is
    /// fine, a panic is not. Also reads payloads that are no object at all.
    pub(crate) fn survives_any_field_value(record_type: RecordType) {
        let odd = [
            Value::Null,
            Value::Bool(true),
            serde_json::json!(-1.5),
            serde_json::json!(""),
            serde_json::json!("\u{3000}"),
            serde_json::json!([]),
            serde_json::json!(["x", 1]),
            serde_json::json!({}),
        ];
        for payload in odd.iter() {
            let outcome = catch_unwind(AssertUnwindSafe(|| crate::read(record_type, payload)));
            assert!(matches!(outcome, Ok(Err(_))), "{record_type}: payload {payload}");
        }
        for record in city().iter().filter(|r| r.record_type == record_type).take(20) {
            let Some(fields) = record.payload.as_object() else {
                panic!("{record_type} {}: payload is no object", record.source_id)
            };
            for name in fields.keys() {
                let mut removed = record.payload.clone();
                if let Some(map) = removed.as_object_mut() {
                    map.remove(name);
                }
                let variants = odd.iter().map(|value| {
                    let mut changed = record.payload.clone();
                    changed[name.as_str()] = value.clone();
                    changed
                });
                for payload in variants.chain([removed]) {
                    let outcome = catch_unwind(AssertUnwindSafe(|| crate::read(record_type, &payload)));
                    assert!(
                        outcome.is_ok(),
                        "{record_type} {}: panicked on {name}",
                        record.source_id
                    );
                }
            }
        }
    }
}
