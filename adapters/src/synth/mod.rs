//! A deterministic synthetic city and the records its seven departments export.
//!
//! The city is generated first, department-agnostic: persons with their identity
//! documents, families and couples, organisations with their codes, jobs and real
//! estate holdings. Then each department's module writes its own records about that
//! city (`crate::tax::synth` and so on), in its own field names, code tables and date
//! formats, with the typing quirks real exports have (see `typing`). Only the
//! department modules know field names; this module knows the people.
//!
//! Everything is a pure function of the seed: no clock, no I/O. "Today" is the fixed
//! date `TODAY`, so that the same seed yields the same records on any day.

mod checks;
mod population;
mod score;
#[cfg(test)]
mod tests;
pub(crate) mod typing;

use std::fmt;

pub use score::PairwiseScore;

use fastrand::Rng;
use serde_json::Value;

use crate::calendar;
use crate::catalog::{Department, RecordType};
use crate::model::{EntityKind, Role, Slot};

/// How big a city to generate, and from which seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityConfig {
    /// Number of persons living in the city (children and infants included).
    pub people: usize,
    pub seed: u64,
}

impl Default for CityConfig {
    fn default() -> Self {
        CityConfig { people: 200, seed: 1 }
    }
}

/// One envelope as a department would send it, and the ground truth about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticRecord {
    pub record_type: RecordType,
    pub source_id: String,
    pub source_version: i64,
    pub deleted: bool,
    pub payload: Value,
    /// Who each mention of the payload really is, one entry per slot the record
    /// writes something in (a name or a number). Not part of the envelope.
    pub truth: Vec<TrueMention>,
}

/// A real person or organisation of the synthetic city: the index of the person in
/// the city's population, or of the organisation among its organisations. Written
/// `P<id>` and `O<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrueEntity {
    pub kind: EntityKind,
    pub id: u32,
}

impl TrueEntity {
    pub(crate) fn person(index: usize) -> TrueEntity {
        TrueEntity {
            kind: EntityKind::Person,
            id: id(index),
        }
    }

    pub(crate) fn org(index: usize) -> TrueEntity {
        TrueEntity {
            kind: EntityKind::Organisation,
            id: id(index),
        }
    }

    /// The entity written `P<id>` or `O<id>`, as in [`truth_lines`].
    pub fn parse(s: &str) -> Option<TrueEntity> {
        let kind = match s.get(..1)? {
            "P" => EntityKind::Person,
            "O" => EntityKind::Organisation,
            _ => return None,
        };
        let digits = s.get(1..)?;
        // Only plain decimal digits: `u32::from_str` would also take a leading `+`.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TrueEntity {
            kind,
            id: digits.parse().ok()?,
        })
    }
}

impl fmt::Display for TrueEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.kind {
            EntityKind::Person => 'P',
            EntityKind::Organisation => 'O',
        };
        write!(f, "{letter}{}", self.id)
    }
}

/// Which entity the mention in `slot` of a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrueMention {
    pub slot: Slot,
    pub entity: TrueEntity,
}

impl TrueMention {
    pub(crate) fn new(role: Role, index: usize, entity: TrueEntity) -> TrueMention {
        TrueMention {
            slot: Slot::new(role, id(index)),
            entity,
        }
    }

    /// The mention, if `payload` writes a name or a number for it at one of
    /// `pointers`: a slot the writer left blank is no mention.
    pub(crate) fn if_written(self, payload: &Value, pointers: &[&str]) -> Option<TrueMention> {
        pointers
            .iter()
            .any(|pointer| !text_at(payload, pointer).trim().is_empty())
            .then_some(self)
    }
}

/// An index of the city model as an id; cities are far smaller than `u32::MAX`.
fn id(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl SyntheticRecord {
    pub(crate) fn new(
        record_type: RecordType,
        source_id: String,
        source_version: i64,
        payload: Value,
        truth: Vec<TrueMention>,
    ) -> Self {
        SyntheticRecord {
            record_type,
            source_id,
            source_version,
            deleted: false,
            payload,
            truth,
        }
    }

    /// The envelope as one line of JSON, fields in the documented order:
    /// `{"record_type":..,"source_id":..,"source_version":..,"deleted":..,"payload":{..}}`.
    pub fn to_json_line(&self) -> String {
        // Written by hand rather than through a map so that the envelope's field order
        // does not depend on serde_json's `preserve_order` feature.
        format!(
            "{{\"record_type\":{},\"source_id\":{},\"source_version\":{},\"deleted\":{},\"payload\":{}}}",
            Value::from(self.record_type.as_str()),
            Value::from(self.source_id.as_str()),
            self.source_version,
            self.deleted,
            self.payload
        )
    }
}

/// Every record of every department about one synthetic city: all eight record types,
/// with the documented dirt. Every record validates against `schemas/`; a few carry
/// `deleted: true` (registrations entered in error and withdrawn). Source ids are
/// unique within each record type. An empty city (`people: 0`) exports nothing.
pub fn city(config: &CityConfig) -> Vec<SyntheticRecord> {
    city_by_department(config).flat_map(|(_, records)| records).collect()
}

/// The records of [`city`], in the same order, one department at a time: a large
/// city's exports can be written without holding all of them at once (the city model
/// itself is kept until the last department is written).
pub fn city_by_department(config: &CityConfig) -> impl Iterator<Item = (Department, Vec<SyntheticRecord>)> {
    let town = City::generate(config);
    let seed = config.seed;
    Department::ALL.into_iter().map(move |department| {
        let mut rng = stream(seed, department_salt(department));
        (department, write_department(department, &town, &mut rng))
    })
}

/// The ground truth of `records`: one line of JSON per true mention of every record
/// not withdrawn, in record order and then in the record's order of slots,
/// `{"record_type":..,"source_id":..,"role":..,"index":..,"entity":"P17"}`.
/// Replays and stale copies of a record repeat its lines; keep one per key.
pub fn truth_lines(records: &[SyntheticRecord]) -> impl Iterator<Item = String> + '_ {
    records.iter().filter(|r| !r.deleted).flat_map(|r| {
        r.truth.iter().map(move |t| {
            format!(
                "{{\"record_type\":{},\"source_id\":{},\"role\":{},\"index\":{},\"entity\":\"{}\"}}",
                Value::from(r.record_type.as_str()),
                Value::from(r.source_id.as_str()),
                Value::from(t.slot.role.as_str()),
                t.slot.index,
                t.entity
            )
        })
    })
}

/// `n` redeliveries drawn from `records`: about half are identical replays, the
/// others older versions of the record (a smaller `source_version`, a slightly
/// different payload, not deleted), as an at-least-once, out-of-order delivery
/// would produce them. Every one still validates against its schema.
pub fn replays_and_stale(records: &[SyntheticRecord], seed: u64, n: usize) -> Vec<SyntheticRecord> {
    let mut rng = stream(seed, 0x5EED_0F7E);
    let mut out = Vec::with_capacity(n);
    if records.is_empty() {
        return out;
    }
    for _ in 0..n {
        let Some(original) = records.get(rng.usize(..records.len())) else {
            continue;
        };
        if rng.bool() {
            out.push(original.clone());
        } else {
            out.push(stale_copy(original, &mut rng));
        }
    }
    out
}

/// Structurally invalid records, several per record type, each with exactly one
/// schema violation, paired with the JSON Pointer (into the payload) at which a
/// JSON Schema validator reports it. For a missing required property the pointer
/// names the object that lacks it (`""` for the payload itself, `"/nan"`, ...).
pub fn defective(seed: u64) -> Vec<(SyntheticRecord, &'static str)> {
    let records = city(&CityConfig { people: 120, seed });
    let mut out = Vec::new();
    for record_type in RecordType::ALL {
        let Some(valid) = records.iter().find(|r| r.record_type == record_type && !r.deleted) else {
            continue;
        };
        for (payload, pointer) in department_defects(record_type, &valid.payload) {
            let record = SyntheticRecord {
                payload,
                ..valid.clone()
            };
            out.push((record, pointer));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Dispatch to the department modules: the only code that knows field names.

fn write_department(department: Department, city: &City, rng: &mut Rng) -> Vec<SyntheticRecord> {
    match department {
        Department::Tax => crate::tax::synth::write(city, rng),
        Department::Hrss => crate::hrss::synth::write(city, rng),
        Department::Market => crate::market::synth::write(city, rng),
        Department::RealEstate => crate::realestate::synth::write(city, rng),
        Department::HousingFund => crate::housingfund::synth::write(city, rng),
        Department::Construction => crate::construction::synth::write(city, rng),
        Department::Civil => crate::civil::synth::write(city, rng),
    }
}

fn older_payload(record_type: RecordType, payload: &Value, rng: &mut Rng) -> Value {
    match record_type {
        RecordType::TaxTaxpayer => crate::tax::synth::older(payload, rng),
        RecordType::HrssInsuredPerson => crate::hrss::synth::older(payload, rng),
        RecordType::MarketEntity => crate::market::synth::older(payload, rng),
        RecordType::RealEstateTitle => crate::realestate::synth::older(payload, rng),
        RecordType::HousingFundAccount => crate::housingfund::synth::older(payload, rng),
        RecordType::ConstructionPermit => crate::construction::synth::older(payload, rng),
        RecordType::CivilMarriage => crate::civil::synth::older_marriage(payload, rng),
        RecordType::CivilAssistance => crate::civil::synth::older_assistance(payload, rng),
    }
}

fn department_defects(record_type: RecordType, payload: &Value) -> Vec<(Value, &'static str)> {
    match record_type {
        RecordType::TaxTaxpayer => crate::tax::synth::defects(payload),
        RecordType::HrssInsuredPerson => crate::hrss::synth::defects(payload),
        RecordType::MarketEntity => crate::market::synth::defects(payload),
        RecordType::RealEstateTitle => crate::realestate::synth::defects(payload),
        RecordType::HousingFundAccount => crate::housingfund::synth::defects(payload),
        RecordType::ConstructionPermit => crate::construction::synth::defects(payload),
        RecordType::CivilMarriage => crate::civil::synth::marriage_defects(payload),
        RecordType::CivilAssistance => crate::civil::synth::assistance_defects(payload),
    }
}

/// Each department draws from its own random stream, so that a change in one
/// department's writer does not reshuffle the records of the others.
fn department_salt(department: Department) -> u64 {
    match department {
        Department::Tax => 1,
        Department::Hrss => 2,
        Department::Market => 3,
        Department::RealEstate => 4,
        Department::HousingFund => 5,
        Department::Construction => 6,
        Department::Civil => 7,
    }
}

fn stream(seed: u64, salt: u64) -> Rng {
    Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

fn stale_copy(original: &SyntheticRecord, rng: &mut Rng) -> SyntheticRecord {
    // An older version predates the change: from a day to about two years earlier,
    // never below 1 so that it stays a valid version number.
    let back = between(rng, DAY_MS, 700 * DAY_MS);
    let version = original
        .source_version
        .saturating_sub(back)
        .max(1)
        .min(original.source_version.saturating_sub(1));
    SyntheticRecord {
        record_type: original.record_type,
        source_id: original.source_id.clone(),
        source_version: version,
        // A withdrawal is the newest state of a record; the versions before it were live.
        deleted: false,
        payload: older_payload(original.record_type, &original.payload, rng),
        // An older version is about the same people.
        truth: original.truth.clone(),
    }
}

// ---------------------------------------------------------------------------
// Small random helpers shared by the writers. None of them panics: fastrand's
// range methods panic on empty ranges, so every range is checked first.

/// True with probability `p`.
pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.f64() < p
}

/// A uniformly chosen item, or `fallback` for an empty slice.
pub(crate) fn pick<T: Copy>(rng: &mut Rng, items: &[T], fallback: T) -> T {
    if items.is_empty() {
        return fallback;
    }
    items.get(rng.usize(..items.len())).copied().unwrap_or(fallback)
}

/// A uniformly chosen integer in `lo..=hi`; `lo` when the range is empty.
pub(crate) fn between(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        lo
    } else {
        rng.i64(lo..=hi)
    }
}

/// A string of `n` random decimal digits.
pub(crate) fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| rng.digit(10)).collect()
}

/// A serial number unique for each `index`, with a random low part so that
/// consecutive records do not get consecutive numbers.
pub(crate) fn serial(rng: &mut Rng, index: usize, spread: u64) -> u64 {
    (index as u64).saturating_mul(spread.max(1)) + rng.u64(..spread.max(1))
}

/// `usual`, or with probability `p` the `odd` value (an unknown code, say).
pub(crate) fn now_and_then<'a>(rng: &mut Rng, p: f64, usual: &'a str, odd: &'a str) -> &'a str {
    if chance(rng, p) {
        odd
    } else {
        usual
    }
}

/// An optional value: present with probability `present`, otherwise the empty string
/// departments write for "unknown".
pub(crate) fn optional(rng: &mut Rng, present: f64, value: impl FnOnce(&mut Rng) -> String) -> String {
    if chance(rng, present) {
        value(rng)
    } else {
        String::new()
    }
}

/// Amount with two decimals, as departments store areas and money.
pub(crate) fn two_decimals(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------
// Dates.

pub(crate) const DAY_MS: i64 = 86_400_000;
/// The fixed "today" of the synthetic city.
pub(crate) const TODAY: Date = Date::new(2026, 6, 30);
/// The departments' systems were migrated in 2015: no version is older.
const FIRST_VERSION: Date = Date::new(2015, 1, 1);

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Date {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) day: u32,
}

impl Date {
    pub(crate) const fn new(year: i32, month: u32, day: u32) -> Date {
        Date { year, month, day }
    }

    /// Days since 1970-01-01.
    pub(crate) fn days(self) -> i64 {
        calendar::days_from_civil(i64::from(self.year), i64::from(self.month), i64::from(self.day))
    }

    /// The date `days` days after 1970-01-01.
    pub(crate) fn from_days(days: i64) -> Date {
        let (year, month, day) = calendar::civil_from_days(days);
        // Month and day are in range by construction; the city's years are four-digit.
        Date {
            year: year as i32,
            month: month as u32,
            day: day as u32,
        }
    }

    pub(crate) fn plus_days(self, days: i64) -> Date {
        Date::from_days(self.days() + days)
    }

    /// The same day `years` later; 29 February becomes 28 February.
    pub(crate) fn plus_years(self, years: i32) -> Date {
        let day = if self.month == 2 && self.day == 29 {
            28
        } else {
            self.day
        };
        Date::new(self.year + years, self.month, day)
    }

    /// A uniformly chosen date in `from..=to` (`from` if the range is empty).
    pub(crate) fn between(rng: &mut Rng, from: Date, to: Date) -> Date {
        Date::from_days(between(rng, from.days(), to.days()))
    }

    /// Midnight of this date in Beijing (UTC+8), in Unix milliseconds.
    pub(crate) fn beijing_midnight_ms(self) -> i64 {
        (self.days() * 86_400 - 8 * 3_600) * 1_000
    }

    /// Whole years a person born on `self` has lived on `on`.
    pub(crate) fn age_on(self, on: Date) -> i32 {
        let before_birthday = (on.month, on.day) < (self.month, self.day);
        on.year - self.year - i32::from(before_birthday)
    }

    /// `YYYYMMDD`, the form inside identity numbers.
    pub(crate) fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

/// A plausible last-modified time in Unix milliseconds for a record whose business
/// date is `date`: some moment between that date (or 2015, when the systems were
/// migrated) and the end of [`TODAY`].
pub(crate) fn version_after(rng: &mut Rng, date: Date) -> i64 {
    let from = date.clamp(FIRST_VERSION, TODAY).beijing_midnight_ms();
    let to = TODAY.plus_days(1).beijing_midnight_ms() - 1;
    between(rng, from, to)
}

// ---------------------------------------------------------------------------
// The city model: what is true about the people, whatever any department typed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sex {
    Male,
    Female,
}

/// The kind of identity document a person holds. Each department numbers these in
/// its own code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocKind {
    ResidentCard,
    Passport,
    HkMacaoPermit,
    TaiwanPermit,
    PermanentResidentCard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub(crate) kind: DocKind,
    /// The correct number: for the resident card 18 characters with a valid check digit.
    pub(crate) number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PersonName {
    /// Han (and most other) names: surname and given name, no separator.
    Chinese { surname: String, given: String },
    /// Transliterated minority names in parts, written with `·` between them.
    Minority { parts: Vec<String> },
    /// Foreigners and residents of Hong Kong, Macao and Taiwan: Latin letters.
    Latin { family: String, given: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// Town or sub-district of Haiyang, e.g. 凤城街道.
    pub(crate) town: &'static str,
    /// Street or village, e.g. 海河路 or 东庄村.
    pub(crate) place: String,
    pub(crate) number: u32,
    /// Optional building/unit/room part, e.g. 3号楼2单元501室.
    pub(crate) flat: Option<String>,
}

impl Address {
    /// The address without the 山东省烟台市海阳市 prefix, e.g. 凤城街道海河路12号.
    pub(crate) fn canonical(&self) -> String {
        let flat = self.flat.as_deref().unwrap_or("");
        format!("{}{}{}号{}", self.town, self.place, self.number, flat)
    }

    /// Villages belong to towns (镇), streets to sub-districts (街道): rural or not.
    pub(crate) fn is_rural(&self) -> bool {
        self.town.ends_with('镇')
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub(crate) name: PersonName,
    pub(crate) sex: Sex,
    pub(crate) birth: Date,
    /// `None` for an infant whose birth is not yet registered.
    pub(crate) document: Option<Document>,
    /// ISO 3166 alpha-3; `CHN` for every Chinese citizen, Hong Kong, Macao and Taiwan included.
    pub(crate) nationality: &'static str,
    /// GB 3304 ethnic group code, `01` Han.
    pub(crate) ethnicity: &'static str,
    /// 11-digit mobile number.
    pub(crate) mobile: String,
    pub(crate) address: Address,
}

impl Person {
    /// The 18-character resident identity number, if the person holds a resident card.
    pub(crate) fn resident_id(&self) -> Option<&str> {
        match &self.document {
            Some(Document {
                kind: DocKind::ResidentCard,
                number,
            }) => Some(number),
            _ => None,
        }
    }

    /// The 15-digit form of the identity number for people who were issued one before
    /// 1999 (born before 1984): region code, YYMMDD, sequence, no check digit.
    pub(crate) fn legacy_id(&self) -> Option<String> {
        let id = self.resident_id()?;
        if self.birth.year >= 1984 {
            return None;
        }
        let region = id.get(0..6)?;
        let yymmdd = id.get(8..14)?;
        let sequence = id.get(14..17)?;
        Some(format!("{region}{yymmdd}{sequence}"))
    }

    pub(crate) fn age_on(&self, on: Date) -> i32 {
        self.birth.age_on(on)
    }

    pub(crate) fn is_foreign(&self) -> bool {
        self.nationality != "CHN"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgKind {
    Company,
    JointStock,
    Cooperative,
    IndividualBusiness,
}

/// What an organisation does, as far as the construction department cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trade {
    Developer,
    Builder,
    Supervisor,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgStatus {
    Active,
    Deregistered,
    Revoked,
    MovedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Currency {
    Yuan,
    Dollar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capital {
    /// In units of 10,000 (万).
    pub(crate) wan: u32,
    pub(crate) currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Org {
    /// The registered name, with full-width parentheses, e.g. 海阳海润（集团）食品有限公司.
    pub(crate) name: String,
    /// The distinctive word of the name (字号), e.g. 海润.
    pub(crate) brand: String,
    pub(crate) kind: OrgKind,
    pub(crate) trade: Trade,
    /// Industry word used in names and business scopes, e.g. 食品.
    pub(crate) industry: &'static str,
    /// GB/T 4754 class of that industry.
    pub(crate) industry_code: &'static str,
    /// 6-digit region code of the registering authority.
    pub(crate) region: &'static str,
    /// Registered in Haiyang (and so known to its market and tax offices).
    pub(crate) local: bool,
    /// GB 11714 organisation code, 9 characters without hyphen, valid check character.
    pub(crate) org_code: String,
    /// GB 32100 unified social credit code; `None` for old individual businesses never re-registered.
    pub(crate) uscc: Option<String>,
    /// The 15-digit registration number (注册号) of entities founded before 2015.
    pub(crate) reg_no: Option<String>,
    pub(crate) founded: Date,
    pub(crate) status: OrgStatus,
    /// Index into `City::persons`.
    pub(crate) legal_rep: usize,
    /// `None` for individual businesses.
    pub(crate) capital: Option<Capital>,
    pub(crate) address: Address,
    /// Local 7-digit landline number (area code 0535 not included).
    pub(crate) phone: String,
}

impl Org {
    /// The 15-character tax ID used before 2015: region code and organisation code.
    pub(crate) fn tax_id15(&self) -> String {
        format!("{}{}", self.region, self.org_code)
    }

    /// The organisation code as printed on certificates, `XXXXXXXX-X`.
    pub(crate) fn org_code_hyphenated(&self) -> String {
        let (body, check) = self.org_code.split_at(self.org_code.len().saturating_sub(1));
        format!("{body}-{check}")
    }

    pub(crate) fn founded_before_2015(&self) -> bool {
        self.founded < Date::new(2015, 1, 1)
    }
}

/// People living together: a head, perhaps a spouse, children and elderly parents
/// (indices into `City::persons`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    pub(crate) head: usize,
    pub(crate) spouse: Option<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) parents: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Couple {
    pub(crate) husband: usize,
    pub(crate) wife: usize,
    pub(crate) married: Date,
    pub(crate) divorced: Option<Date>,
}

/// A person employed by an organisation since `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) person: usize,
    pub(crate) org: usize,
    pub(crate) start: Date,
    /// Still employed there today.
    pub(crate) current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Party {
    Person(usize),
    Org(usize),
}

/// A piece of real estate and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holding {
    pub(crate) holders: Vec<Party>,
    pub(crate) registered: Date,
    /// Owned by a married couple together.
    pub(crate) marital: bool,
    /// Where it is.
    pub(crate) address: Address,
}

/// The synthetic city: the truth every department's records are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct City {
    pub(crate) persons: Vec<Person>,
    pub(crate) orgs: Vec<Org>,
    pub(crate) families: Vec<Family>,
    pub(crate) couples: Vec<Couple>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) holdings: Vec<Holding>,
}

impl City {
    pub(crate) fn generate(config: &CityConfig) -> City {
        population::generate(config.people, &mut stream(config.seed, 0))
    }

    pub(crate) fn person(&self, index: usize) -> Option<&Person> {
        self.persons.get(index)
    }

    pub(crate) fn org(&self, index: usize) -> Option<&Org> {
        self.orgs.get(index)
    }

    /// Indices of adults (18 or older today) who hold a resident identity card.
    pub(crate) fn adult_residents(&self) -> Vec<usize> {
        (0..self.persons.len())
            .filter(|&i| {
                self.persons
                    .get(i)
                    .is_some_and(|p| p.age_on(TODAY) >= 18 && p.resident_id().is_some())
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Editing payloads, for the department modules' defects and older versions.

/// A copy of `payload` with the value at `pointer` replaced (or the member added).
/// Nothing changes if the pointer's parent does not exist.
pub(crate) fn with(payload: &Value, pointer: &str, value: Value) -> Value {
    let mut out = payload.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    match out.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.to_owned(), value);
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value;
            }
        }
        _ => {}
    }
    out
}

/// A copy of `payload` without the object member at `pointer`.
pub(crate) fn without(payload: &Value, pointer: &str) -> Value {
    let mut out = payload.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(Value::Object(map)) = out.pointer_mut(parent) {
        map.remove(key);
    }
    out
}

/// The string at `pointer`, or "".
pub(crate) fn text_at<'a>(payload: &'a Value, pointer: &str) -> &'a str {
    payload.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(crate) use population::{mobile_number, random_address};
