//! Normalisation: from values as departments typed them to the forms the hub
//! compares, stores and shows. Pure functions, one file per kind of value:
//!
//! - [`resident_id`]: GB 11643 numbers, 15 → 18 upgrade, birth date and sex;
//! - [`org_code`]: USCC, organisation code, 15-character tax ID, registration number;
//! - [`document`]: one typed document → identifiers and flags, by family;
//! - [`name`]: Chinese, minority and Latin person names, organisation names;
//! - [`phone`], [`date`], [`address`], [`amount`].
//!
//! [`mention`] is the stage of the pipeline: it turns an adapter's [`RawMention`] into
//! a [`Mention`], and every defect found on the way (a wrong check character, a birth
//! date that disagrees with the identity number, an unreadable date) becomes a
//! [`QualityFlag`] on it. A defective value is kept for display but never becomes a key.
//!
//! [`lookup_keys`] reads an identifier a user typed into a lookup, in any of its
//! forms, into the keys it may be stored under.

pub mod address;
pub mod amount;
pub mod date;
pub mod document;
pub mod name;
pub mod org_code;
pub mod phone;
pub mod resident_id;

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::model::{
    Attribute, EntityKind, FlagCode, IdScheme, Identifier, Mention, Observation, QualityFlag, RawDate, RawFact,
    RawFactSet, RawMention, RawValue,
};

use self::date::Date;
use self::resident_id::ResidentId;

/// Normalises one mention. Never fails: what cannot be read is flagged.
pub fn mention(raw: &RawMention) -> Mention {
    let mut flags = raw.flags.clone();
    let mut identifiers: Vec<Identifier> = Vec::new();
    let mut resident: Option<ResidentId> = None;
    for raw_document in &raw.documents {
        let reading = document::read(raw_document);
        for identifier in reading.identifiers {
            if !identifiers.contains(&identifier) {
                identifiers.push(identifier);
            }
        }
        flags.extend(reading.flags);
        resident = resident.or(reading.resident_id);
    }

    let mut observations = Observations::default();
    for value in &raw.values {
        observations.observe(raw.kind, value, &mut flags);
    }
    if raw.kind == EntityKind::Person {
        if let Some(id) = &resident {
            observations.derive(id, &mut flags);
        }
    }

    let facts = raw.facts.iter().map(|set| fact_set(set, &mut flags)).collect();
    Mention {
        slot: raw.slot,
        kind: raw.kind,
        identifiers,
        observations: observations.list,
        facts,
        flags,
        match_name: observations.match_name,
    }
}

/// The keys under which an identifier typed in any form may be stored: a 15-digit
/// resident identity number gives its 18-digit upgrade, a USCC, a legacy tax ID or an
/// organisation code (with or without hyphen) gives the organisation code, a passport
/// number gives the passport key. Empty when the text is no identifier we know.
///
/// Every reading is offered (15 digits can be a legacy identity number, a tax ID and
/// a registration number at once); only when none has a valid check is the text
/// taken for a document number of each scheme without a check character.
pub fn lookup_keys(text: &str) -> Vec<Identifier> {
    let mut keys: Vec<Identifier> = Vec::new();
    if let Ok(id) = resident_id::parse(text) {
        keys.push(Identifier {
            scheme: IdScheme::ResidentId,
            value: id.number,
            key: true,
        });
    }
    for code in org_code::lookup(text) {
        for identifier in code.identifiers() {
            if !keys.contains(&identifier) {
                keys.push(identifier);
            }
        }
    }
    if keys.is_empty() {
        let number = document::clean_number(text);
        if document::is_plausible(&number) {
            keys.extend(document::DOCUMENT_SCHEMES.map(|scheme| Identifier {
                scheme,
                value: number.clone(),
                key: true,
            }));
        }
    }
    keys
}

// ---------------------------------------------------------------------------
// Text helpers shared by the files of this module

/// Unicode NFKC: full-width digits, letters and punctuation become ASCII, U+3000 a space.
fn nfkc(text: &str) -> String {
    text.nfkc().collect()
}

/// White space of any kind (U+3000 included), and the invisible characters that
/// copy and paste leaves behind.
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn without_space(text: &str) -> String {
    text.chars().filter(|&c| !is_space(c)).collect()
}

fn trimmed(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// Hyphens and dashes typed between groups of digits (after NFKC, which already
/// turns the full-width and small hyphen-minus into `-`).
fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}')
}

// ---------------------------------------------------------------------------
// Observations

#[derive(Default)]
struct Observations {
    list: Vec<Observation>,
    match_name: String,
    /// Typed birth dates and sexes with their pointers, to compare with the identity number.
    typed_birth_dates: Vec<(Date, String)>,
    typed_sexes: Vec<(String, String)>,
}

impl Observations {
    fn push(&mut self, attribute: Attribute, value: String, typed: &str, derived: bool) {
        self.push_as_of(attribute, value, typed, derived, None);
    }

    fn push_as_of(&mut self, attribute: Attribute, value: String, typed: &str, derived: bool, as_of: Option<String>) {
        let observation = Observation {
            attribute,
            value,
            typed: trimmed(typed).to_owned(),
            derived,
            as_of,
        };
        if !self.list.contains(&observation) {
            self.list.push(observation);
        }
    }

    fn observe(&mut self, kind: EntityKind, value: &RawValue, flags: &mut Vec<QualityFlag>) {
        let typed = trimmed(&value.text);
        let flag = |code: FlagCode, message: String| QualityFlag::new(code, &value.pointer, message);
        match value.attribute {
            Attribute::Name => {
                let name = match kind {
                    EntityKind::Person => name::person(typed),
                    EntityKind::Organisation => name::organisation(typed),
                };
                if name.display.is_empty() {
                    return;
                }
                if self.match_name.is_empty() {
                    self.match_name = name.match_name;
                }
                self.push(Attribute::Name, name.display, typed, false);
            }
            Attribute::Phone => match phone::parse(typed) {
                Ok(phone) => self.push(Attribute::Phone, phone.to_string(), typed, false),
                Err(phone::PhoneError::Empty) => {}
                Err(error) => flags.push(flag(FlagCode::UnreadablePhone, error.to_string())),
            },
            Attribute::Address | Attribute::HouseholdAddress => {
                let address = address::normalise(typed);
                if !address.is_empty() {
                    self.push(value.attribute, address, typed, false);
                }
            }
            Attribute::BirthDate | Attribute::Founded => {
                let raw_date = value.date.clone().unwrap_or_else(|| RawDate::Text(value.text.clone()));
                match date::parse(&raw_date) {
                    Ok(date) => {
                        if value.attribute == Attribute::BirthDate {
                            self.typed_birth_dates.push((date, value.pointer.clone()));
                        }
                        self.push(value.attribute, date.to_string(), typed, false);
                    }
                    Err(date::DateError::Empty) => {}
                    Err(error) => flags.push(flag(FlagCode::UnreadableDate, error.to_string())),
                }
            }
            Attribute::RegisteredCapital => match amount::parse_money(typed) {
                Ok(money) => self.push(Attribute::RegisteredCapital, money.to_string(), typed, false),
                Err(amount::AmountError::Empty) => {}
                Err(error) => flags.push(flag(FlagCode::UnreadableAmount, error.to_string())),
            },
            Attribute::Sex
            | Attribute::Status
            | Attribute::MaritalStatus
            | Attribute::OrganisationType
            | Attribute::Nationality
            | Attribute::Ethnicity
            | Attribute::Industry => {
                if typed.is_empty() {
                    return;
                }
                if value.attribute == Attribute::Sex {
                    self.typed_sexes.push((typed.to_owned(), value.pointer.clone()));
                }
                // An unreadable date of an event only loses the ordering it would give.
                let as_of = value
                    .as_of
                    .as_ref()
                    .and_then(|d| date::parse(d).ok())
                    .map(|d| d.to_string());
                self.push_as_of(value.attribute, typed.to_owned(), typed, false, as_of);
            }
        }
    }

    /// Birth date and sex from a valid identity number, and a flag wherever a typed
    /// value disagrees with them (one of the two is a typo; the number has a check
    /// character, the typed value has none).
    fn derive(&mut self, id: &ResidentId, flags: &mut Vec<QualityFlag>) {
        let birth_date = id.birth_date.to_string();
        let sex = id.sex.as_str();
        // Nobody typed these: `typed` shows the derived value itself.
        self.push(Attribute::BirthDate, birth_date.clone(), &birth_date, true);
        self.push(Attribute::Sex, sex.to_owned(), sex, true);
        for (typed, pointer) in &self.typed_birth_dates {
            if !typed.agrees_with(&id.birth_date) {
                flags.push(QualityFlag::new(
                    FlagCode::BirthDateDisagrees,
                    pointer,
                    "typed birth date disagrees with the one in the resident identity number",
                ));
            }
        }
        for (typed, pointer) in &self.typed_sexes {
            let known = typed == "male" || typed == "female";
            if known && typed != sex {
                flags.push(QualityFlag::new(
                    FlagCode::SexDisagrees,
                    pointer,
                    "typed sex disagrees with the one the resident identity number encodes",
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Facts

fn fact_set(set: &RawFactSet, flags: &mut Vec<QualityFlag>) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("topic".to_owned(), Value::String(set.topic.to_owned()));
    for (field, fact) in &set.fields {
        let value = fact_value(set.topic, field, fact, flags);
        object.insert((*field).to_owned(), value);
    }
    object
}

/// A fact's value. Facts carry no JSON Pointer, so their flags point at the whole
/// payload (`""`) and name the topic and field in the message.
fn fact_value(topic: &str, field: &str, fact: &RawFact, flags: &mut Vec<QualityFlag>) -> Value {
    let mut flag = |code: FlagCode, what: String| {
        flags.push(QualityFlag::new(code, "", format!("fact {topic}.{field}: {what}")));
    };
    match fact {
        RawFact::Code(code) => Value::String((*code).to_owned()),
        RawFact::Text(text) => Value::String(trimmed(&nfkc(text)).to_owned()),
        RawFact::Date(raw) => match date::parse(raw) {
            Ok(date) => Value::String(date.to_string()),
            Err(date::DateError::Empty) => Value::Null,
            Err(error) => {
                flag(FlagCode::UnreadableDate, error.to_string());
                Value::Null
            }
        },
        RawFact::Amount(text) => match amount::parse(text) {
            Ok(amount) => Value::String(amount.to_string()),
            Err(amount::AmountError::Empty) => Value::Null,
            Err(error) => {
                flag(FlagCode::UnreadableAmount, error.to_string());
                Value::Null
            }
        },
        RawFact::Number(number) => serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number),
        RawFact::Bool(b) => Value::Bool(*b),
        RawFact::List(items) => Value::Array(items.iter().map(|item| fact_value(topic, field, item, flags)).collect()),
    }
}

#[cfg(test)]
mod tests;
