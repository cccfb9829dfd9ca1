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

use fastrand::Rng;
use serde_json::Value;

use crate::catalog::{Department, RecordType};

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

/// One envelope as a department would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticRecord {
    pub record_type: RecordType,
    pub source_id: String,
    pub source_version: i64,
    pub deleted: bool,
    pub payload: Value,
}

impl SyntheticRecord {
    pub(crate) fn new(record_type: RecordType, source_id: String, source_version: i64, payload: Value) -> Self {
        SyntheticRecord {
            record_type,
            source_id,
            source_version,
            deleted: false,
            payload,
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
    let town = City::generate(config);
    let mut records = Vec::new();
    for department in Department::ALL {
        let mut rng = stream(config.seed, department_salt(department));
        records.extend(write_department(department, &town, &mut rng));
    }
    records
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

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    pub(crate) fn days(self) -> i64 {
        let m = i64::from(self.month);
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01 (H. Hinnant's `civil_from_days`).
    pub(crate) fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
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
// Check characters. Private to the generator: the normalisation library owns the
// real implementations; these only make the synthetic numbers right (or wrong on
// purpose).

mod checks {
    /// GB 11643-1999 check character of the first 17 digits of an identity number.
    pub(super) fn gb11643(first17: &str) -> Option<char> {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: &[u8; 11] = b"10X98765432";
        if first17.chars().count() != 17 {
            return None;
        }
        let mut sum = 0;
        for (c, w) in first17.chars().zip(WEIGHTS) {
            sum += c.to_digit(10)? * w;
        }
        CHECK.get((sum % 11) as usize).map(|&b| char::from(b))
    }

    /// The characters of GB 32100-2015 codes, in value order 0-30.
    pub(super) const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

    /// GB 32100-2015 check character of the first 17 characters of a credit code.
    pub(super) fn gb32100(first17: &str) -> Option<char> {
        const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
        if first17.chars().count() != 17 {
            return None;
        }
        let mut sum = 0;
        for (c, w) in first17.chars().zip(WEIGHTS) {
            sum += USCC_ALPHABET.find(c)? as u32 * w;
        }
        let check = (31 - sum % 31) % 31;
        USCC_ALPHABET.chars().nth(check as usize)
    }

    /// GB 11714 check character of the first 8 characters of an organisation code
    /// (digits, and letters valued A=10 ... Z=35).
    pub(super) fn gb11714(first8: &str) -> Option<char> {
        const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
        if first8.chars().count() != 8 {
            return None;
        }
        let mut sum = 0;
        for (c, w) in first8.chars().zip(WEIGHTS) {
            sum += c.to_digit(36)? * w;
        }
        match 11 - sum % 11 {
            10 => Some('X'),
            11 => Some('0'),
            n => char::from_digit(n, 10),
        }
    }

    /// ISO 7064 MOD 11,10 check digit, used by the 15-digit registration numbers (注册号).
    pub(super) fn mod11_10(body: &str) -> Option<char> {
        let mut p = 10;
        for c in body.chars() {
            let s = (p + c.to_digit(10)?) % 10;
            let s = if s == 0 { 10 } else { s };
            p = (s * 2) % 11;
        }
        char::from_digit((11 - p) % 10, 10)
    }
}

// ---------------------------------------------------------------------------
// How people type: the documented dirt of README.md "What real exports contain".
// Department writers call these with their own rates.

pub(crate) mod typing {
    use fastrand::Rng;

    use super::{chance, checks, pick, Address, DocKind, Person, PersonName};

    /// How an identity number gets typed at one counter.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct IdTyping {
        /// Probability of the old 15-digit form, for people who had one.
        pub(crate) legacy: f64,
        /// Probability of a wrong check digit (a typo nobody caught).
        pub(crate) wrong_check: f64,
    }

    impl IdTyping {
        pub(crate) const fn new(legacy: f64, wrong_check: f64) -> IdTyping {
            IdTyping { legacy, wrong_check }
        }
    }

    const SPACES: [&str; 2] = [" ", "\u{3000}"];

    /// Sometimes (probability `p`) surrounds `s` with white space, ASCII or U+3000.
    pub(crate) fn pad(rng: &mut Rng, s: &str, p: f64) -> String {
        if !chance(rng, p) {
            return s.to_owned();
        }
        let space = pick(rng, &SPACES, " ");
        match rng.u8(..3) {
            0 => format!("{space}{s}"),
            1 => format!("{s}{space}"),
            _ => format!("{space}{s}{space}"),
        }
    }

    /// ASCII digits and letters replaced by their full-width forms (０-９, Ａ-Ｚ, ａ-ｚ).
    pub(crate) fn fullwidth(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect()
    }

    /// Only the digits made full-width: how digits in Chinese text often look.
    pub(crate) fn fullwidth_digits(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect()
    }

    /// The identity number with a different, wrong check character.
    pub(crate) fn with_wrong_check(rng: &mut Rng, id18: &str) -> String {
        let body: String = id18.chars().take(17).collect();
        let right = checks::gb11643(&body);
        let wrong: Vec<char> = "0123456789X".chars().filter(|&c| Some(c) != right).collect();
        format!("{body}{}", pick(rng, &wrong, '0'))
    }

    /// The person's document number as typed at a counter; empty when the person has
    /// no document (an infant not yet registered).
    pub(crate) fn document_number(rng: &mut Rng, person: &Person, how: IdTyping) -> String {
        let Some(document) = &person.document else {
            return String::new();
        };
        if document.kind != DocKind::ResidentCard {
            let number = if chance(rng, 0.03) {
                document.number.to_lowercase()
            } else {
                document.number.clone()
            };
            return pad(rng, &number, 0.03);
        }
        let mut number = match person.legacy_id() {
            Some(legacy) if chance(rng, how.legacy) => legacy,
            _ if chance(rng, how.wrong_check) => with_wrong_check(rng, &document.number),
            _ => document.number.clone(),
        };
        if number.ends_with('X') && chance(rng, 0.35) {
            number = number.replace('X', "x");
        }
        if chance(rng, 0.02) {
            number = fullwidth(&number);
        }
        if chance(rng, 0.015) {
            // A space where the eye groups the digits: after the region code.
            let (region, rest): (String, String) = (number.chars().take(6).collect(), number.chars().skip(6).collect());
            number = format!("{region} {rest}");
        }
        pad(rng, &number, 0.03)
    }

    /// Simplified characters common in names, with their traditional forms.
    const TRADITIONAL: [(char, char); 40] = [
        ('陈', '陳'),
        ('刘', '劉'),
        ('杨', '楊'),
        ('黄', '黃'),
        ('赵', '趙'),
        ('吴', '吳'),
        ('张', '張'),
        ('郑', '鄭'),
        ('谢', '謝'),
        ('冯', '馮'),
        ('邓', '鄧'),
        ('许', '許'),
        ('韩', '韓'),
        ('叶', '葉'),
        ('苏', '蘇'),
        ('吕', '呂'),
        ('卢', '盧'),
        ('钟', '鍾'),
        ('陆', '陸'),
        ('罗', '羅'),
        ('孙', '孫'),
        ('马', '馬'),
        ('伟', '偉'),
        ('华', '華'),
        ('丽', '麗'),
        ('军', '軍'),
        ('国', '國'),
        ('龙', '龍'),
        ('凤', '鳳'),
        ('红', '紅'),
        ('东', '東'),
        ('兰', '蘭'),
        ('云', '雲'),
        ('庆', '慶'),
        ('杰', '傑'),
        ('涛', '濤'),
        ('飞', '飛'),
        ('辉', '輝'),
        ('鹏', '鵬'),
        ('静', '靜'),
    ];

    /// The name with traditional characters where one exists.
    pub(crate) fn traditional(name: &str) -> String {
        name.chars()
            .map(|c| TRADITIONAL.iter().find(|(s, _)| *s == c).map_or(c, |&(_, t)| t))
            .collect()
    }

    /// The person's name as typed: spaces between characters (probability `spaced`),
    /// traditional characters, other separators in minority names, Latin names in
    /// either order and any case, surrounding white space.
    pub(crate) fn person_name(rng: &mut Rng, person: &Person, spaced: f64) -> String {
        let typed = match &person.name {
            PersonName::Chinese { surname, given } => chinese_name(rng, surname, given, spaced),
            PersonName::Minority { parts } => {
                let separator = pick(rng, &["·", "·", "·", "·", "•", "．", "."], "·");
                parts.join(separator)
            }
            PersonName::Latin { family, given } => latin_name(rng, family, given),
        };
        pad(rng, &typed, 0.03)
    }

    fn chinese_name(rng: &mut Rng, surname: &str, given: &str, spaced: f64) -> String {
        let mut name = format!("{surname}{given}");
        if chance(rng, 0.03) {
            name = traditional(&name);
        }
        if chance(rng, spaced) {
            let space = pick(rng, &SPACES, " ");
            let (first, rest): (String, String) = if given.chars().count() == 1 || rng.bool() {
                // 王 伟, 欧阳 明: between surname and given name.
                let n = surname.chars().count();
                (name.chars().take(n).collect(), name.chars().skip(n).collect())
            } else {
                (name.chars().take(1).collect(), name.chars().skip(1).collect())
            };
            name = format!("{first}{space}{rest}");
        }
        name
    }

    fn latin_name(rng: &mut Rng, family: &str, given: &str) -> String {
        let title = |s: &str| -> String {
            s.split(' ')
                .map(|w| {
                    let lower = w.to_lowercase();
                    let mut chars = lower.chars();
                    chars
                        .next()
                        .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        match rng.u8(..10) {
            0..=3 => format!("{family} {given}"),
            4..=5 => format!("{given} {family}"),
            6 => format!("{} {}", title(given), title(family)),
            7 => format!("{}, {}", title(family), title(given)),
            8 => format!("{} {}", family.to_lowercase(), given.to_lowercase()),
            _ => format!("{} {}", title(family), title(given)),
        }
    }

    /// An organisation name as typed: full-width or ASCII parentheses (ASCII with
    /// probability `ascii_parens`), now and then a stray space.
    pub(crate) fn org_name(rng: &mut Rng, name: &str, ascii_parens: f64) -> String {
        let mut typed = name.to_owned();
        if chance(rng, ascii_parens) {
            typed = typed.replace('（', "(").replace('）', ")");
        }
        if chance(rng, 0.05) {
            typed.push(' ');
        }
        pad(rng, &typed, 0.02)
    }

    /// A mobile number as typed: +86, 0086, spaces, hyphens, full-width digits.
    pub(crate) fn mobile(rng: &mut Rng, number: &str) -> String {
        let (a, b, c) = split_mobile(number);
        let typed = match rng.u8(..20) {
            0..=9 => number.to_owned(),
            10..=11 => format!("+86 {number}"),
            12 => format!("+86{number}"),
            13..=14 => format!("0086{number}"),
            15..=16 => format!("{a} {b} {c}"),
            17 => format!("{a}-{b}-{c}"),
            18 => fullwidth(number),
            _ => format!("+86-{a}-{b}-{c}"),
        };
        pad(rng, &typed, 0.03)
    }

    fn split_mobile(number: &str) -> (String, String, String) {
        let a = number.chars().take(3).collect();
        let b = number.chars().skip(3).take(4).collect();
        let c = number.chars().skip(7).collect();
        (a, b, c)
    }

    /// A Haiyang landline as typed: with or without the area code 0535, in any style.
    pub(crate) fn landline(rng: &mut Rng, local: &str) -> String {
        let typed = match rng.u8(..20) {
            0..=6 => format!("0535-{local}"),
            7..=11 => local.to_owned(),
            12..=13 => format!("(0535){local}"),
            14..=15 => format!("0535{local}"),
            16..=17 => format!("0535 {local}"),
            18 => format!("+86 535 {local}"),
            _ => format!("（0535）{local}"),
        };
        pad(rng, &typed, 0.03)
    }

    /// An address as typed: with or without 山东省 / 烟台市 / 海阳市, # for 号,
    /// full-width digits, surrounding white space.
    pub(crate) fn address(rng: &mut Rng, address: &Address) -> String {
        let prefix = pick(
            rng,
            &[
                "",
                "",
                "海阳市",
                "海阳市",
                "烟台市海阳市",
                "山东省烟台市海阳市",
                "山东省烟台市海阳市",
                "山东省海阳市",
            ],
            "",
        );
        let mut typed = format!("{prefix}{}", address.canonical());
        if chance(rng, 0.07) {
            typed = typed.replace('号', "#");
        }
        if chance(rng, 0.06) {
            typed = fullwidth_digits(&typed);
        }
        pad(rng, &typed, 0.03)
    }

    /// A date, already in the department's format, as typed: now and then with
    /// surrounding white space or full-width digits.
    pub(crate) fn date(rng: &mut Rng, formatted: String) -> String {
        let typed = if chance(rng, 0.01) {
            fullwidth_digits(&formatted)
        } else {
            formatted
        };
        pad(rng, &typed, 0.015)
    }

    /// A credit or organisation code as typed: lower case, full-width, white space.
    pub(crate) fn code(rng: &mut Rng, code: &str) -> String {
        let mut typed = code.to_owned();
        if chance(rng, 0.02) {
            typed = typed.to_lowercase();
        }
        if chance(rng, 0.01) {
            typed = fullwidth(&typed);
        }
        pad(rng, &typed, 0.03)
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

// ---------------------------------------------------------------------------
// Generating the population, organisations and their relations.

mod population {
    use std::collections::HashSet;

    use fastrand::Rng;

    use super::{
        between, chance, checks, pick, Address, Capital, City, Couple, Currency, Date, DocKind, Document, Family,
        Holding, Job, Org, OrgKind, OrgStatus, Party, Person, PersonName, Sex, Trade, TODAY,
    };

    const SURNAMES: [&str; 100] = [
        "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高",
        "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁",
        "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔",
        "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦",
        "邱", "江", "尹", "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵",
        "万", "钱", "严", "覃", "武", "戴", "莫", "孔", "欧阳", "司马",
    ];
    const MALE_GIVEN: [&str; 40] = [
        "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波",
        "宁", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宇", "林", "峰", "建", "国", "志", "文", "东", "海", "龙",
        "成", "庆", "亮", "新",
    ];
    const FEMALE_GIVEN: [&str; 36] = [
        "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "燕", "玲", "桂", "丹", "萍", "红", "梅", "琳", "婷",
        "雪", "慧", "莉", "颖", "倩", "晶", "洁", "欣", "怡", "佳", "悦", "兰", "凤", "云", "英", "玉", "琴", "蕾",
    ];
    /// Uyghur given names and father's names, written in Chinese transliteration.
    const MINORITY_MALE: [&str; 8] = [
        "阿卜杜拉",
        "买买提",
        "艾力",
        "吐尔逊",
        "艾买提",
        "司马义",
        "努尔",
        "依明",
    ];
    const MINORITY_FEMALE: [&str; 6] = ["古丽", "热依拉", "迪丽努尔", "帕提古丽", "阿依古丽", "米热"];
    /// Family name, given names, nationality, passport prefix.
    const FOREIGNERS: [(&str, &[&str], &str, &str); 8] = [
        ("KIM", &["MIN JUN", "JI WOO", "SEO YEON"], "KOR", "M"),
        ("PARK", &["JI HOON", "HYE JIN"], "KOR", "M"),
        ("TANAKA", &["HIROSHI", "YUKI"], "JPN", "TK"),
        ("SMITH", &["JOHN", "EMMA", "DAVID"], "USA", "5"),
        ("BROWN", &["JAMES", "OLIVIA"], "GBR", "1"),
        ("IVANOV", &["IVAN", "OLGA"], "RUS", "75"),
        ("MUELLER", &["THOMAS", "ANNA"], "DEU", "C"),
        ("NGUYEN", &["VAN AN", "THI MAI"], "VNM", "C"),
    ];
    const HK_MACAO: [(&str, &str); 4] = [
        ("CHAN", "TAI MAN"),
        ("WONG", "KA YAN"),
        ("LEUNG", "CHI KEUNG"),
        ("CHEONG", "WENG IO"),
    ];
    const TAIWAN: [(&str, &str); 3] = [("LIN", "CHIH MING"), ("CHEN", "YI HSUAN"), ("HUANG", "CHUN HSIEN")];

    /// Districts of Yantai other than Haiyang.
    const YANTAI: [&str; 10] = [
        "370602", "370611", "370612", "370613", "370681", "370682", "370683", "370684", "370685", "370686",
    ];
    /// Places elsewhere in China.
    const ELSEWHERE: [&str; 10] = [
        "370102", "370202", "370303", "371002", "110105", "310115", "410102", "230103", "220102", "130102",
    ];
    const XINJIANG: [&str; 3] = ["650102", "650104", "653101"];

    const SUBDISTRICTS: [&str; 3] = ["东村街道", "方圆街道", "凤城街道"];
    const TOWNS: [&str; 10] = [
        "留格庄镇",
        "盘石店镇",
        "郭城镇",
        "徐家店镇",
        "发城镇",
        "小纪镇",
        "行村镇",
        "辛安镇",
        "二十里店镇",
        "朱吴镇",
    ];
    const STREETS: [&str; 10] = [
        "海阳路",
        "海政路",
        "榆山路",
        "海河路",
        "黄海路",
        "海天路",
        "海滨路",
        "东村路",
        "凤凰路",
        "方圆路",
    ];
    const VILLAGES: [&str; 12] = [
        "东庄",
        "西庄",
        "南河",
        "北山",
        "郭家",
        "王家",
        "河头",
        "沙埠",
        "石门",
        "林泉",
        "大辛家",
        "前庄",
    ];
    const MOBILE_PREFIXES: [&str; 24] = [
        "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157", "158", "159",
        "166", "177", "180", "182", "186", "187", "188", "199",
    ];

    const BRANDS: [&str; 40] = [
        "海润", "金沙", "鑫源", "恒达", "华宇", "瑞祥", "永泰", "东升", "泰丰", "宏业", "德润", "福瑞", "万通", "盛世",
        "龙腾", "天元", "博远", "嘉禾", "康源", "美达", "富海", "锦程", "祥和", "兴隆", "安泰", "和顺", "聚福", "昊天",
        "晨光", "明珠", "凯旋", "远航", "阳光", "青山", "碧海", "银河", "金帆", "丰源", "润泽", "海纳",
    ];
    /// Industry word and GB/T 4754 class for ordinary companies.
    const INDUSTRIES: [(&str, &str); 11] = [
        ("食品", "1499"),
        ("水产", "1361"),
        ("纺织", "1711"),
        ("物流", "5990"),
        ("商贸", "5199"),
        ("电子科技", "3989"),
        ("机械制造", "3499"),
        ("化工", "2619"),
        ("服装", "1811"),
        ("建材", "3039"),
        ("果蔬", "0141"),
    ];
    const SHOPS: [&str; 10] = [
        "便利店",
        "小吃店",
        "五金店",
        "理发店",
        "超市",
        "饭店",
        "水果店",
        "建材店",
        "汽修部",
        "服装店",
    ];
    const COOP_PRODUCTS: [&str; 5] = ["果蔬种植", "苹果种植", "花生种植", "畜禽养殖", "海水养殖"];
    /// Where builders and supervisors from other cities are registered, and the city's name.
    const OTHER_CITIES: [(&str, &str); 6] = [
        ("370602", "烟台"),
        ("370202", "青岛"),
        ("370102", "济南"),
        ("310115", "上海"),
        ("110105", "北京"),
        ("230103", "哈尔滨"),
    ];
    /// Letters allowed in organisation codes issued as part of a credit code.
    const CODE_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

    pub(super) fn generate(people: usize, rng: &mut Rng) -> City {
        let mut registry = Registry {
            ids: HashSet::new(),
            codes: HashSet::new(),
            names: HashSet::new(),
        };
        let mut persons = Vec::with_capacity(people);
        let mut families = Vec::new();
        while persons.len() < people {
            let first = families.is_empty();
            if let Some(family) = family(rng, &mut registry, &mut persons, people, first) {
                families.push(family);
            }
        }
        let orgs = organisations(rng, &mut registry, &persons, people);
        let couples = couples(rng, &persons, &families);
        let jobs = jobs(rng, &persons, &orgs);
        let holdings = holdings(rng, &persons, &families, &couples, &orgs);
        City {
            persons,
            orgs,
            families,
            couples,
            jobs,
            holdings,
        }
    }

    /// Numbers and names already given out, to keep them unique.
    struct Registry {
        ids: HashSet<String>,
        codes: HashSet<String>,
        names: HashSet<String>,
    }

    /// Where a person comes from, which decides the document and the name.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Origin {
        Haiyang,
        Yantai,
        Elsewhere,
        Uyghur,
        Foreign,
        HkMacao,
        Taiwan,
        PermanentResident,
    }

    fn adult_origin(rng: &mut Rng) -> Origin {
        match rng.u16(..1000) {
            0..=19 => Origin::Foreign,
            20..=29 => Origin::HkMacao,
            30..=34 => Origin::Taiwan,
            35..=39 => Origin::PermanentResident,
            40..=64 => Origin::Uyghur,
            65..=184 => Origin::Elsewhere,
            185..=399 => Origin::Yantai,
            _ => Origin::Haiyang,
        }
    }

    /// A household: a head, perhaps a spouse, children and an elderly parent. `None`
    /// only if the population is already complete.
    fn family(
        rng: &mut Rng,
        registry: &mut Registry,
        persons: &mut Vec<Person>,
        limit: usize,
        first: bool,
    ) -> Option<Family> {
        let home = random_address(rng);
        let head_sex = if rng.bool() { Sex::Male } else { Sex::Female };
        let head_birth = Date::between(rng, Date::new(1940, 1, 1), Date::new(2002, 12, 31));
        let head_origin = adult_origin(rng);
        let head = add(
            persons,
            limit,
            new_person(rng, registry, head_sex, head_birth, head_origin, None, &home),
        )?;
        // The first family is always a couple, so that even a tiny city has a marriage.
        let married = first || (head_birth.age_on(TODAY) >= 24 && chance(rng, 0.72));
        let mut spouse = None;
        if married {
            let sex = if head_sex == Sex::Male { Sex::Female } else { Sex::Male };
            let birth = head_birth
                .plus_days(between(rng, -6 * 365, 6 * 365))
                .min(Date::new(2002, 12, 31));
            // Foreign heads mostly married locally; most spouses are from around here.
            let origin = if chance(rng, 0.6) {
                Origin::Haiyang
            } else {
                adult_origin(rng)
            };
            spouse = add(
                persons,
                limit,
                new_person(rng, registry, sex, birth, origin, None, &home),
            );
        }
        let mut children = Vec::new();
        if let Some(spouse_index) = spouse {
            let father = if head_sex == Sex::Male { head } else { spouse_index };
            let spouse_birth = persons.get(spouse_index).map_or(head_birth, |p| p.birth);
            let mother_birth = if head_sex == Sex::Female {
                head_birth
            } else {
                spouse_birth
            };
            let count = pick(rng, &[0, 1, 1, 1, 2, 2, 3], 1);
            for _ in 0..count {
                let birth = mother_birth.plus_years(22).plus_days(between(rng, 0, 16 * 365));
                if birth > TODAY {
                    continue;
                }
                let surname = family_surname(persons, father);
                let sex = if rng.bool() { Sex::Male } else { Sex::Female };
                let origin = if birth.year >= 1996 {
                    Origin::Haiyang
                } else {
                    Origin::Yantai
                };
                let child = new_person(rng, registry, sex, birth, origin, surname.as_deref(), &home);
                match add(persons, limit, child) {
                    Some(index) => children.push(index),
                    None => break,
                }
            }
        }
        let mut parents = Vec::new();
        if head_birth.year >= 1965 && chance(rng, 0.06) {
            let birth = head_birth.plus_years(-between(rng, 24, 34) as i32);
            let sex = if rng.bool() { Sex::Male } else { Sex::Female };
            let surname = if sex == Sex::Male {
                family_surname(persons, head)
            } else {
                None
            };
            let parent = new_person(rng, registry, sex, birth, Origin::Haiyang, surname.as_deref(), &home);
            parents.extend(add(persons, limit, parent));
        }
        Some(Family {
            head,
            spouse,
            children,
            parents,
        })
    }

    fn add(persons: &mut Vec<Person>, limit: usize, person: Person) -> Option<usize> {
        if persons.len() >= limit {
            return None;
        }
        persons.push(person);
        Some(persons.len() - 1)
    }

    /// The surname children inherit, if the father has a Chinese name.
    fn family_surname(persons: &[Person], father: usize) -> Option<String> {
        match persons.get(father).map(|p| &p.name) {
            Some(PersonName::Chinese { surname, .. }) => Some(surname.clone()),
            _ => None,
        }
    }

    fn new_person(
        rng: &mut Rng,
        registry: &mut Registry,
        sex: Sex,
        birth: Date,
        origin: Origin,
        surname: Option<&str>,
        home: &Address,
    ) -> Person {
        let (name, nationality, document) = match origin {
            Origin::Foreign => foreigner(rng),
            Origin::HkMacao => {
                let (family, given) = pick(rng, &HK_MACAO, ("CHAN", "TAI MAN"));
                let prefix = if family == "CHEONG" { "M" } else { "H" };
                let number = format!("{prefix}{}", super::digits(rng, 8));
                (
                    latin(family, given),
                    "CHN",
                    Some(Document {
                        kind: DocKind::HkMacaoPermit,
                        number,
                    }),
                )
            }
            Origin::Taiwan => {
                let (family, given) = pick(rng, &TAIWAN, ("LIN", "CHIH MING"));
                let number = super::digits(rng, 8);
                (
                    latin(family, given),
                    "CHN",
                    Some(Document {
                        kind: DocKind::TaiwanPermit,
                        number,
                    }),
                )
            }
            Origin::PermanentResident => {
                let (family, givens, nationality, _) = pick(rng, &FOREIGNERS, FOREIGNERS[0]);
                let given = pick(rng, givens, "JOHN");
                // The 15-character card of 2004: nationality, region, birth date, sequence.
                let yymmdd: String = birth.compact().chars().skip(2).collect();
                let number = format!("{nationality}3706{yymmdd}{}", super::digits(rng, 2));
                (
                    latin(family, given),
                    nationality,
                    Some(Document {
                        kind: DocKind::PermanentResidentCard,
                        number,
                    }),
                )
            }
            Origin::Uyghur => {
                let region = pick(rng, &XINJIANG, "650102");
                let given = if sex == Sex::Male {
                    &MINORITY_MALE[..]
                } else {
                    &MINORITY_FEMALE[..]
                };
                let parts = vec![
                    pick(rng, given, "古丽").to_owned(),
                    pick(rng, &MINORITY_MALE, "买买提").to_owned(),
                ];
                let number = issue_id(rng, registry, region, birth, sex);
                (PersonName::Minority { parts }, "CHN", Some(resident(number)))
            }
            Origin::Haiyang | Origin::Yantai | Origin::Elsewhere => {
                let region = region_code(rng, origin, birth);
                let name = chinese_name(rng, sex, surname);
                // Births are registered within weeks to months: some infants have no number yet.
                let registered = TODAY.days() - birth.days() > 365 || chance(rng, 0.5);
                let document = registered.then(|| resident(issue_id(rng, registry, region, birth, sex)));
                (name, "CHN", document)
            }
        };
        let ethnicity = match origin {
            Origin::Uyghur => "05",
            Origin::Foreign | Origin::PermanentResident => "",
            _ => pick(
                rng,
                &[
                    "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "03", "04", "10",
                ],
                "01",
            ),
        };
        let mobile = mobile_number(rng);
        Person {
            name,
            sex,
            birth,
            document,
            nationality,
            ethnicity,
            mobile,
            address: home.clone(),
        }
    }

    fn resident(number: String) -> Document {
        Document {
            kind: DocKind::ResidentCard,
            number,
        }
    }

    fn latin(family: &str, given: &str) -> PersonName {
        PersonName::Latin {
            family: family.to_owned(),
            given: given.to_owned(),
        }
    }

    fn foreigner(rng: &mut Rng) -> (PersonName, &'static str, Option<Document>) {
        let (family, givens, nationality, prefix) = pick(rng, &FOREIGNERS, FOREIGNERS[0]);
        let given = pick(rng, givens, "JOHN");
        let number = format!("{prefix}{}", super::digits(rng, 9 - prefix.len().min(2)));
        (
            latin(family, given),
            nationality,
            Some(Document {
                kind: DocKind::Passport,
                number,
            }),
        )
    }

    /// Region code of first registration: Haiyang has been 370687 since 1996; people
    /// registered there earlier keep 370629 (海阳县).
    fn region_code(rng: &mut Rng, origin: Origin, birth: Date) -> &'static str {
        match origin {
            Origin::Haiyang if birth.year >= 1996 => "370687",
            Origin::Haiyang => "370629",
            Origin::Yantai => pick(rng, &YANTAI, "370602"),
            _ => pick(rng, &ELSEWHERE, "370102"),
        }
    }

    fn chinese_name(rng: &mut Rng, sex: Sex, surname: Option<&str>) -> PersonName {
        let surname = surname.map_or_else(|| pick(rng, &SURNAMES, "王").to_owned(), str::to_owned);
        let pool = if sex == Sex::Male {
            &MALE_GIVEN[..]
        } else {
            &FEMALE_GIVEN[..]
        };
        let mut given = pick(rng, pool, "明").to_owned();
        if chance(rng, 0.65) {
            given.push_str(pick(rng, pool, "华"));
        }
        PersonName::Chinese { surname, given }
    }

    /// An unused resident identity number: region, birth date, a sequence whose
    /// parity is the sex (odd for men), and the GB 11643 check character.
    fn issue_id(rng: &mut Rng, registry: &mut Registry, region: &str, birth: Date, sex: Sex) -> String {
        let mut number = String::new();
        for _ in 0..50 {
            let sequence = rng.u32(..500) * 2 + u32::from(sex == Sex::Male);
            let body = format!("{region}{}{sequence:03}", birth.compact());
            let check = checks::gb11643(&body).unwrap_or('0');
            number = format!("{body}{check}");
            if registry.ids.insert(number.clone()) {
                break;
            }
        }
        number
    }

    pub(crate) fn mobile_number(rng: &mut Rng) -> String {
        format!("{}{}", pick(rng, &MOBILE_PREFIXES, "138"), super::digits(rng, 8))
    }

    pub(crate) fn random_address(rng: &mut Rng) -> Address {
        if chance(rng, 0.45) {
            let flat = chance(rng, 0.5).then(|| {
                format!(
                    "{}号楼{}单元{}0{}室",
                    rng.u8(1..=20),
                    rng.u8(1..=4),
                    rng.u8(1..=18),
                    rng.u8(1..=4)
                )
            });
            Address {
                town: pick(rng, &SUBDISTRICTS, "凤城街道"),
                place: pick(rng, &STREETS, "海阳路").to_owned(),
                number: rng.u32(1..=300),
                flat,
            }
        } else {
            Address {
                town: pick(rng, &TOWNS, "郭城镇"),
                place: format!("{}村", pick(rng, &VILLAGES, "东庄")),
                number: rng.u32(1..=200),
                flat: None,
            }
        }
    }

    // -- organisations -----------------------------------------------------

    fn organisations(rng: &mut Rng, registry: &mut Registry, persons: &[Person], people: usize) -> Vec<Org> {
        // Legal representatives: adults with a document.
        let reps: Vec<usize> = persons
            .iter()
            .enumerate()
            .filter(|(_, p)| p.age_on(TODAY) >= 22 && p.document.is_some())
            .map(|(i, _)| i)
            .collect();
        if reps.is_empty() {
            return Vec::new();
        }
        let local = (people / 7).max(6);
        let outside = (people / 50).max(2);
        let mut orgs = Vec::with_capacity(local + outside);
        for i in 0..local {
            // The first three make every city able to issue a construction permit.
            let (kind, trade) = match i {
                0 => (OrgKind::Company, Trade::Developer),
                1 => (OrgKind::Company, Trade::Builder),
                2 => (OrgKind::Company, Trade::Supervisor),
                _ => random_kind_and_trade(rng),
            };
            orgs.push(organisation(rng, registry, persons, &reps, kind, trade, None));
        }
        for i in 0..outside {
            let trade = if i % 2 == 0 { Trade::Builder } else { Trade::Supervisor };
            let city = pick(rng, &OTHER_CITIES, OTHER_CITIES[0]);
            orgs.push(organisation(
                rng,
                registry,
                persons,
                &reps,
                OrgKind::Company,
                trade,
                Some(city),
            ));
        }
        orgs
    }

    fn random_kind_and_trade(rng: &mut Rng) -> (OrgKind, Trade) {
        match rng.u8(..100) {
            0..=7 => (OrgKind::Company, Trade::Developer),
            8..=14 => (OrgKind::Company, Trade::Builder),
            15..=18 => (OrgKind::Company, Trade::Supervisor),
            19..=49 => (OrgKind::Company, Trade::Other),
            50..=59 => (OrgKind::JointStock, Trade::Other),
            60..=69 => (OrgKind::Cooperative, Trade::Other),
            _ => (OrgKind::IndividualBusiness, Trade::Other),
        }
    }

    fn organisation(
        rng: &mut Rng,
        registry: &mut Registry,
        persons: &[Person],
        reps: &[usize],
        kind: OrgKind,
        trade: Trade,
        elsewhere: Option<(&'static str, &'static str)>,
    ) -> Org {
        let (region, city) = elsewhere.unwrap_or(("370687", "海阳"));
        let (industry, industry_code) = match trade {
            Trade::Developer => ("房地产开发", "7010"),
            Trade::Builder => ("建筑工程", "4710"),
            Trade::Supervisor => ("工程监理", "7481"),
            Trade::Other => pick(rng, &INDUSTRIES, INDUSTRIES[0]),
        };
        let (brand, name) = org_name(rng, registry, kind, city, industry);
        let earliest = if kind == OrgKind::IndividualBusiness {
            2000
        } else {
            1995
        };
        let founded = Date::between(rng, Date::new(earliest, 1, 1), TODAY.plus_days(-60));
        let before_2015 = founded < Date::new(2015, 1, 1);
        let org_code = org_code(rng, registry, before_2015);
        // Old individual businesses that never re-registered have no credit code.
        let uscc = (!(kind == OrgKind::IndividualBusiness && before_2015 && chance(rng, 0.4)))
            .then(|| credit_code(kind, region, &org_code));
        let reg_no = before_2015.then(|| registration_number(rng, region, kind));
        let legal_rep = pick_rep(rng, persons, reps, founded);
        Org {
            name,
            brand,
            kind,
            trade,
            industry,
            industry_code,
            region,
            local: elsewhere.is_none(),
            org_code,
            uscc,
            reg_no,
            founded,
            status: status(rng, founded),
            legal_rep,
            capital: capital(rng, kind),
            address: random_address(rng),
            phone: format!(
                "{}{}",
                pick(rng, &['3', '3', '3', '6', '8'], '3'),
                super::digits(rng, 6)
            ),
        }
    }

    fn org_name(rng: &mut Rng, registry: &mut Registry, kind: OrgKind, city: &str, industry: &str) -> (String, String) {
        let mut result = (String::new(), String::new());
        for attempt in 0..60 {
            let brand = pick(rng, &BRANDS, "海润").to_owned();
            let name = match kind {
                OrgKind::Company if chance(rng, 0.15) => format!("{city}{brand}（集团）{industry}有限公司"),
                OrgKind::Company => format!("{city}{brand}{industry}有限公司"),
                OrgKind::JointStock => format!("{city}{brand}{industry}股份有限公司"),
                OrgKind::Cooperative => format!("{city}市{brand}{}专业合作社", pick(rng, &COOP_PRODUCTS, "果蔬种植")),
                OrgKind::IndividualBusiness => format!("{city}市{brand}{}", pick(rng, &SHOPS, "便利店")),
            };
            // Past a few collisions, a second word makes the name unique.
            let name = if attempt > 20 {
                name.replacen(&brand, &format!("{brand}{}", pick(rng, &BRANDS, "金沙")), 1)
            } else {
                name
            };
            if registry.names.insert(name.clone()) {
                result = (brand, name);
                break;
            }
            result = (brand, name);
        }
        result
    }

    /// A new GB 11714 organisation code: 8 digits before 2015; codes assigned inside a
    /// credit code since then start with MA.
    fn org_code(rng: &mut Rng, registry: &mut Registry, before_2015: bool) -> String {
        let mut code = String::new();
        for _ in 0..50 {
            let body: String = if before_2015 {
                format!("{}{}", rng.u8(1..=7), super::digits(rng, 7))
            } else {
                let tail: String = (0..6).map(|_| char::from(pick(rng, CODE_CHARS, b'0'))).collect();
                format!("MA{tail}")
            };
            code = format!("{body}{}", checks::gb11714(&body).unwrap_or('0'));
            if registry.codes.insert(code.clone()) {
                break;
            }
        }
        code
    }

    /// GB 32100 credit code: authority 9 (market supervision), category by kind,
    /// region, organisation code, check character.
    fn credit_code(kind: OrgKind, region: &str, org_code: &str) -> String {
        let category = match kind {
            OrgKind::Company | OrgKind::JointStock => '1',
            OrgKind::IndividualBusiness => '2',
            OrgKind::Cooperative => '3',
        };
        let body = format!("9{category}{region}{org_code}");
        format!("{body}{}", checks::gb32100(&body).unwrap_or('0'))
    }

    /// The pre-2015 registration number: region, a type digit, sequence, MOD 11,10 check.
    fn registration_number(rng: &mut Rng, region: &str, kind: OrgKind) -> String {
        let kind_digit = if kind == OrgKind::IndividualBusiness { '6' } else { '0' };
        let body = format!("{region}{kind_digit}{}", super::digits(rng, 7));
        format!("{body}{}", checks::mod11_10(&body).unwrap_or('0'))
    }

    fn pick_rep(rng: &mut Rng, persons: &[Person], reps: &[usize], founded: Date) -> usize {
        let mut chosen = pick(rng, reps, 0);
        for _ in 0..20 {
            // Someone who was at least 20 when the organisation was founded, if possible.
            if persons.get(chosen).is_some_and(|p| p.age_on(founded) >= 20) {
                break;
            }
            chosen = pick(rng, reps, 0);
        }
        chosen
    }

    fn status(rng: &mut Rng, founded: Date) -> OrgStatus {
        if founded > Date::new(2023, 1, 1) {
            return OrgStatus::Active;
        }
        match rng.u8(..100) {
            0..=7 => OrgStatus::Deregistered,
            8..=10 => OrgStatus::Revoked,
            11..=12 => OrgStatus::MovedOut,
            _ => OrgStatus::Active,
        }
    }

    fn capital(rng: &mut Rng, kind: OrgKind) -> Option<Capital> {
        let (amounts, currency): (&[u32], Currency) = match kind {
            OrgKind::IndividualBusiness => return None,
            OrgKind::Company if chance(rng, 0.08) => (&[20, 50, 100, 300], Currency::Dollar),
            OrgKind::Company => (&[10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000], Currency::Yuan),
            OrgKind::JointStock => (&[1000, 2000, 5000, 8000, 10000], Currency::Yuan),
            OrgKind::Cooperative => (&[10, 20, 50, 100, 200], Currency::Yuan),
        };
        Some(Capital {
            wan: pick(rng, amounts, 100),
            currency,
        })
    }

    // -- relations -------------------------------------------------------

    fn couples(rng: &mut Rng, persons: &[Person], families: &[Family]) -> Vec<Couple> {
        let mut couples = Vec::new();
        for family in families {
            let Some(spouse) = family.spouse else { continue };
            let (Some(a), Some(b)) = (persons.get(family.head), persons.get(spouse)) else {
                continue;
            };
            let ((husband, h), (wife, w)) = if a.sex == Sex::Male {
                ((family.head, a), (spouse, b))
            } else {
                ((spouse, b), (family.head, a))
            };
            let earliest = h.birth.plus_years(22).max(w.birth.plus_years(20));
            let first_child = family
                .children
                .iter()
                .filter_map(|&c| persons.get(c))
                .map(|c| c.birth)
                .min();
            let latest = first_child.map_or(TODAY, |d| d.plus_days(-200)).min(TODAY);
            let married = Date::between(rng, earliest, latest).min(TODAY);
            let divorced = (married < TODAY.plus_years(-3) && chance(rng, 0.08))
                .then(|| Date::between(rng, married.plus_years(1), TODAY));
            couples.push(Couple {
                husband,
                wife,
                married,
                divorced,
            });
        }
        couples
    }

    fn jobs(rng: &mut Rng, persons: &[Person], orgs: &[Org]) -> Vec<Job> {
        // Individual businesses rarely register employees: one in three does.
        let employers: Vec<usize> = orgs
            .iter()
            .enumerate()
            .filter(|(i, o)| o.local && (o.kind != OrgKind::IndividualBusiness || i % 3 == 0))
            .map(|(i, _)| i)
            .collect();
        let mut jobs = Vec::new();
        if employers.is_empty() {
            return jobs;
        }
        for (index, person) in persons.iter().enumerate() {
            let age = person.age_on(TODAY);
            if !(18..=75).contains(&age) || person.document.is_none() || !chance(rng, 0.75) {
                continue;
            }
            let adult = person.birth.plus_years(18);
            let current_org = pick(rng, &employers, 0);
            let Some(employer) = orgs.get(current_org) else {
                continue;
            };
            let start = job_start(rng, employer, adult);
            let retired = age > 60;
            let active = employer.status == OrgStatus::Active;
            // Some people changed employer: an earlier job at another organisation.
            if chance(rng, 0.12) {
                let previous = pick(rng, &employers, 0);
                if let (true, Some(earlier_employer)) = (previous != current_org, orgs.get(previous)) {
                    let earlier = job_start(rng, earlier_employer, adult).min(start.plus_days(-90));
                    if earlier >= adult {
                        jobs.push(Job {
                            person: index,
                            org: previous,
                            start: earlier,
                            current: false,
                        });
                    }
                }
            }
            jobs.push(Job {
                person: index,
                org: current_org,
                start,
                current: active && !retired,
            });
        }
        jobs
    }

    fn job_start(rng: &mut Rng, org: &Org, adult: Date) -> Date {
        let from = org.founded.max(adult).max(Date::new(1995, 1, 1));
        Date::between(rng, from, TODAY.plus_days(-30))
    }

    fn holdings(
        rng: &mut Rng,
        persons: &[Person],
        families: &[Family],
        couples: &[Couple],
        orgs: &[Org],
    ) -> Vec<Holding> {
        let mut holdings = Vec::new();
        for family in families {
            let Some(head) = persons.get(family.head) else { continue };
            if head.age_on(TODAY) < 22 || !chance(rng, 0.6) {
                continue;
            }
            let couple = couples
                .iter()
                .find(|c| (c.husband == family.head || c.wife == family.head) && c.divorced.is_none());
            let mut holders = vec![Party::Person(family.head)];
            let mut since = head.birth.plus_years(22);
            if let Some(couple) = couple {
                let spouse = if couple.husband == family.head {
                    couple.wife
                } else {
                    couple.husband
                };
                holders.push(Party::Person(spouse));
                since = since.max(couple.married);
            }
            let adult_child = family
                .children
                .iter()
                .filter_map(|&c| persons.get(c).map(|p| (c, p)))
                .find(|(_, p)| p.age_on(TODAY) >= 20);
            if let Some((child, person)) = adult_child.filter(|_| chance(rng, 0.3)) {
                holders.push(Party::Person(child));
                since = since.max(person.birth.plus_years(20));
            }
            let registered = Date::between(rng, since.max(Date::new(2016, 1, 1)), TODAY);
            let marital = couple.is_some() && holders.len() == 2;
            holdings.push(Holding {
                holders,
                registered,
                marital,
                address: head.address.clone(),
            });
            if chance(rng, 0.15) {
                let registered = Date::between(rng, since.max(Date::new(2016, 1, 1)), TODAY);
                let address = random_address(rng);
                holdings.push(Holding {
                    holders: vec![Party::Person(family.head)],
                    registered,
                    marital: false,
                    address,
                });
            }
        }
        for (index, org) in orgs.iter().enumerate() {
            if org.local && matches!(org.kind, OrgKind::Company | OrgKind::JointStock) && chance(rng, 0.35) {
                let registered = Date::between(rng, org.founded.max(Date::new(2016, 1, 1)), TODAY);
                let address = org.address.clone();
                holdings.push(Holding {
                    holders: vec![Party::Org(index)],
                    registered,
                    marital: false,
                    address,
                });
            }
        }
        holdings
    }
}

pub(crate) use population::{mobile_number, random_address};

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn default_city() -> Vec<SyntheticRecord> {
        city(&CityConfig::default())
    }

    #[test]
    fn the_same_seed_gives_the_same_city() {
        let config = CityConfig { people: 80, seed: 42 };
        assert_eq!(city(&config), city(&config));
        let other = city(&CityConfig { people: 80, seed: 43 });
        assert_ne!(city(&config), other);
        let records = city(&config);
        assert_eq!(replays_and_stale(&records, 7, 30), replays_and_stale(&records, 7, 30));
        assert_eq!(defective(3), defective(3));
    }

    #[test]
    fn every_record_type_is_present() {
        let records = default_city();
        for record_type in RecordType::ALL {
            assert!(
                records.iter().any(|r| r.record_type == record_type),
                "no {record_type} record"
            );
        }
        // A small city too.
        let small = city(&CityConfig { people: 25, seed: 9 });
        for record_type in RecordType::ALL {
            assert!(
                small.iter().any(|r| r.record_type == record_type),
                "no {record_type} in a small city"
            );
        }
        assert!(city(&CityConfig { people: 0, seed: 1 }).is_empty());
    }

    #[test]
    fn source_ids_are_unique_per_record_type() {
        for seed in [1, 2, 3] {
            let records = city(&CityConfig { people: 300, seed });
            let mut seen: HashMap<RecordType, HashSet<&str>> = HashMap::new();
            for r in &records {
                assert!(
                    seen.entry(r.record_type).or_default().insert(&r.source_id),
                    "{} twice",
                    r.source_id
                );
                assert!(!r.source_id.trim().is_empty());
            }
        }
    }

    #[test]
    fn versions_are_plausible_millisecond_timestamps() {
        let from = Date::new(2015, 1, 1).beijing_midnight_ms();
        let to = TODAY.plus_days(1).beijing_midnight_ms();
        for r in default_city() {
            assert!(
                (from..to).contains(&r.source_version),
                "{} has version {}",
                r.source_id,
                r.source_version
            );
            assert!(r.payload.is_object());
        }
    }

    #[test]
    fn identity_numbers_of_the_population_have_valid_check_digits() {
        let town = City::generate(&CityConfig::default());
        let mut residents = 0;
        for person in &town.persons {
            if let Some(id) = person.resident_id() {
                residents += 1;
                assert_eq!(id.len(), 18, "{id}");
                assert_eq!(checks::gb11643(&id[..17]), id.chars().last(), "{id}");
                assert_eq!(&id[6..14], person.birth.compact(), "{id}: birth date");
                let sequence: u32 = id[14..17].parse().expect("digits");
                assert_eq!(sequence % 2 == 1, person.sex == Sex::Male, "{id}: sex");
                if let Some(legacy) = person.legacy_id() {
                    assert_eq!(legacy.len(), 15);
                    assert_eq!(&legacy[6..12], &id[8..14]);
                }
            }
        }
        assert!(residents > 150, "most people hold a resident card: {residents}");
        for org in &town.orgs {
            assert_eq!(
                checks::gb11714(&org.org_code[..8]),
                org.org_code.chars().last(),
                "{}",
                org.org_code
            );
            if let Some(uscc) = &org.uscc {
                assert_eq!(uscc.len(), 18);
                assert_eq!(checks::gb32100(&uscc[..17]), uscc.chars().last(), "{uscc}");
                assert_eq!(&uscc[8..17], org.org_code, "positions 9-17 are the organisation code");
            }
            if let Some(reg_no) = &org.reg_no {
                assert_eq!(checks::mod11_10(&reg_no[..14]), reg_no.chars().last(), "{reg_no}");
            }
        }
    }

    #[test]
    fn check_characters_match_published_examples() {
        // GB 11643-1999's own example.
        assert_eq!(checks::gb11643("11010519491231002"), Some('X'));
        assert_eq!(checks::gb11643("44052418800101001"), Some('4'));
        // A widely published credit code and its organisation code.
        assert_eq!(checks::gb32100("91350100M000100Y4"), Some('3'));
        assert_eq!(checks::gb11714("M000100Y"), Some('4'), "positions 9-17 of that code");
        assert_eq!(checks::gb11714("D2143569"), Some('X'));
        assert_eq!(checks::gb11643("1101051949123100"), None);
        assert_eq!(checks::gb32100("91350100M000100YI"), None, "I is not in the alphabet");
    }

    #[test]
    fn exports_show_the_documented_dirt() {
        let records = city(&CityConfig { people: 600, seed: 5 });
        let lines: Vec<String> = records.iter().map(|r| r.to_json_line()).collect();
        // Identity numbers as typed: mostly right, some 15-digit, some with a wrong check digit.
        let (mut right, mut wrong, mut short) = (0, 0, 0);
        for r in records
            .iter()
            .filter(|r| r.record_type == RecordType::HrssInsuredPerson)
        {
            let id = r.payload["sfzhm"].as_str().unwrap_or("").trim().to_uppercase();
            match id.len() {
                18 if checks::gb11643(&id[..17]) == id.chars().last() => right += 1,
                18 => wrong += 1,
                15 => short += 1,
                _ => {}
            }
        }
        assert!(
            wrong > 0 && short > 0 && right > 5 * (wrong + short),
            "{right} right, {wrong} wrong, {short} short"
        );
        let all = lines.join("\n");
        assert!(all.contains('\u{3000}'), "full-width spaces");
        assert!(
            all.contains('０') || all.contains('１') || all.contains('２'),
            "full-width digits"
        );
        assert!(
            all.contains("0086") && all.contains("+86"),
            "international phone prefixes"
        );
        assert!(all.contains('#'), "# for 号");
        assert!(all.contains("(0535)") || all.contains("0535-"), "landlines");
        assert!(all.contains('·') && all.contains("（集团）") && all.contains("(集团)"));
        assert!(
            lines.iter().any(|l| l.contains("\"deleted\":true")),
            "some withdrawn records"
        );
    }

    #[test]
    fn json_lines_are_single_line_envelopes() {
        for r in default_city().iter().take(50) {
            let line = r.to_json_line();
            assert!(!line.contains('\n'));
            assert!(line.starts_with("{\"record_type\":"), "{line}");
            let back: Value = serde_json::from_str(&line).expect("valid JSON");
            assert_eq!(back["record_type"], r.record_type.as_str());
            assert_eq!(back["source_id"], r.source_id.as_str());
            assert_eq!(back["source_version"], r.source_version);
            assert_eq!(back["deleted"], r.deleted);
            assert_eq!(back["payload"], r.payload);
        }
    }

    #[test]
    fn replays_are_identical_and_stale_copies_are_older() {
        let records = default_city();
        let redelivered = replays_and_stale(&records, 11, 200);
        assert_eq!(redelivered.len(), 200);
        let by_key: HashMap<(RecordType, &str), &SyntheticRecord> = records
            .iter()
            .map(|r| ((r.record_type, r.source_id.as_str()), r))
            .collect();
        let (mut replays, mut stale) = (0, 0);
        for copy in &redelivered {
            let original = by_key
                .get(&(copy.record_type, copy.source_id.as_str()))
                .expect("known record");
            if copy == *original {
                replays += 1;
            } else {
                stale += 1;
                assert!(copy.source_version < original.source_version);
                assert!(copy.source_version > 0);
                assert!(!copy.deleted);
            }
        }
        assert!(replays > 50 && stale > 50, "{replays} replays, {stale} stale");
        assert!(replays_and_stale(&[], 1, 5).is_empty());
    }

    #[test]
    fn defective_records_name_a_pointer_into_their_payload() {
        for seed in 1..=4 {
            let valid = city(&CityConfig { people: 120, seed });
            let defects = defective(seed);
            for record_type in RecordType::ALL {
                let count = defects.iter().filter(|(r, _)| r.record_type == record_type).count();
                assert!(count >= 3, "seed {seed}: only {count} defective {record_type}");
            }
            for (record, pointer) in &defects {
                assert!(pointer.is_empty() || pointer.starts_with('/'), "{pointer}");
                // The pointer names an existing value: the bad value itself, or the object
                // that lacks a required member.
                assert!(
                    record.payload.pointer(pointer).is_some(),
                    "{}: {pointer} not in payload",
                    record.record_type
                );
                let original = valid
                    .iter()
                    .find(|r| r.record_type == record.record_type && r.source_id == record.source_id)
                    .expect("a defect is a modified city record");
                assert_ne!(
                    record.payload, original.payload,
                    "{} {pointer}: nothing changed",
                    record.record_type
                );
            }
        }
    }

    #[test]
    fn dates_round_trip() {
        for days in [-25_000, -1, 0, 1, 10_957, 20_000, 20_634] {
            assert_eq!(Date::from_days(days).days(), days);
        }
        assert_eq!(Date::new(1970, 1, 1).days(), 0);
        assert_eq!(Date::new(2000, 3, 1).days(), 11_017);
        assert_eq!(Date::new(2025, 7, 28).beijing_midnight_ms(), 1_753_632_000_000);
        assert_eq!(Date::new(1990, 6, 30).age_on(Date::new(2026, 6, 29)), 35);
        assert_eq!(Date::new(2024, 2, 29).plus_years(1), Date::new(2025, 2, 28));
    }

    /// Writes `city.jsonl`, `replays.jsonl` and `defective.jsonl` (lines
    /// `{"pointer": .., "record": envelope}`) into the directory named by
    /// `TONGBAN_SYNTH_DIR`, for checking against the schemas with another validator:
    /// `TONGBAN_SYNTH_DIR=/tmp/x cargo test -p tongban-adapters -- --ignored write_examples`.
    #[test]
    #[ignore = "writes files; run by hand"]
    fn write_examples() {
        let Ok(dir) = std::env::var("TONGBAN_SYNTH_DIR") else {
            return;
        };
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("create the output directory");
        let records = default_city();
        let lines =
            |records: &[SyntheticRecord]| -> String { records.iter().map(|r| r.to_json_line() + "\n").collect() };
        std::fs::write(dir.join("city.jsonl"), lines(&records)).expect("write city.jsonl");
        let big = city(&CityConfig { people: 2000, seed: 77 });
        std::fs::write(dir.join("city-2000.jsonl"), lines(&big)).expect("write city-2000.jsonl");
        std::fs::write(dir.join("replays.jsonl"), lines(&replays_and_stale(&records, 5, 400))).expect("write");
        let defects: String = defective(1)
            .iter()
            .map(|(r, pointer)| {
                format!(
                    "{{\"pointer\":{},\"record\":{}}}\n",
                    Value::from(*pointer),
                    r.to_json_line()
                )
            })
            .collect();
        std::fs::write(dir.join("defective.jsonl"), defects).expect("write defective.jsonl");
    }
}
