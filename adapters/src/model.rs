//! The canonical model: what a departmental record says about persons and
//! organisations, in the hub's own terms.
//!
//! Two stages, two sets of types:
//! - an adapter (`crate::<department>::read`) turns one native record into a
//!   [`Reading`]: [`RawMention`]s with the department's code tables already mapped to
//!   ours, but every typed value (names, numbers, phones, addresses, dates) still as
//!   the department typed it;
//! - [`crate::normalise`] turns a [`RawMention`] into a [`Mention`]: cleaned values,
//!   identifiers reduced to the keys resolution uses, and a [`QualityFlag`] for every
//!   defect found on the way.
//!
//! Keeping the stages apart means an adapter's golden test shows exactly what the
//! department sent, and a normaliser is tested once for all departments.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::RecordType;

/// Is a mention about a natural person or an organisation (enterprise, individual
/// business, cooperative, public body)?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Person,
    Organisation,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Person => "person",
            EntityKind::Organisation => "organisation",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        match s {
            "person" => Some(EntityKind::Person),
            "organisation" => Some(EntityKind::Organisation),
            _ => None,
        }
    }
}

/// The part a mention plays in its record (DESIGN.md, "Mentions and their roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Taxpayer,
    LegalRepresentative,
    Insured,
    Employer,
    Entity,
    RightHolder,
    AccountHolder,
    Developer,
    Builder,
    Supervisor,
    ProjectManager,
    Party,
    Member,
}

impl Role {
    pub const ALL: [Role; 13] = [
        Role::Taxpayer,
        Role::LegalRepresentative,
        Role::Insured,
        Role::Employer,
        Role::Entity,
        Role::RightHolder,
        Role::AccountHolder,
        Role::Developer,
        Role::Builder,
        Role::Supervisor,
        Role::ProjectManager,
        Role::Party,
        Role::Member,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Taxpayer => "taxpayer",
            Role::LegalRepresentative => "legal_representative",
            Role::Insured => "insured",
            Role::Employer => "employer",
            Role::Entity => "entity",
            Role::RightHolder => "right_holder",
            Role::AccountHolder => "account_holder",
            Role::Developer => "developer",
            Role::Builder => "builder",
            Role::Supervisor => "supervisor",
            Role::ProjectManager => "project_manager",
            Role::Party => "party",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a mention sits within its record: (role, index). With the record's type and
/// source id this is the mention's address, stable across versions of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub role: Role,
    pub index: u32,
}

impl Slot {
    pub const fn new(role: Role, index: u32) -> Slot {
        Slot { role, index }
    }
}

/// The full address of a mention: (record_type, source_id, role, index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MentionKey {
    pub record_type: RecordType,
    pub source_id: String,
    pub slot: Slot,
}

// ---------------------------------------------------------------------------
// Documents and identifiers

/// The family of an identity document or organisation code, whatever department code
/// table it came through. Two numbers identify the same holder only within one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentFamily {
    /// 居民身份证, GB 11643 (15 or 18 characters).
    ResidentIdentityCard,
    /// Any national passport.
    Passport,
    /// Mainland travel permits of Hong Kong, Macao and Taiwan residents (港澳居民来往内地
    /// 通行证, 台湾居民来往大陆通行证): the departments' tables split or join them
    /// differently, the numbers themselves do not collide (H/M prefixes, 8 digits).
    HkMacaoTaiwanPermit,
    /// Hong Kong, Macao or Taiwan identity card itself (real estate table `2`).
    HkMacaoTaiwanIdentityCard,
    /// 外国人永久居留身份证.
    ForeignPermanentResidentCard,
    /// 军官证.
    MilitaryOfficerCard,
    /// 户口簿 (carries the resident identity number).
    HouseholdRegister,
    /// 统一社会信用代码, GB 32100.
    UnifiedSocialCreditCode,
    /// 组织机构代码, GB 11714 (`XXXXXXXX-X`).
    OrganisationCode,
    /// The 15-character tax ID of units registered before 2015 (region code + organisation code).
    LegacyTaxId,
    /// 营业执照: before 2015 the 15-digit registration number (注册号), since then the USCC.
    BusinessLicence,
    /// A department's own number for a person or unit, meaningful only within that
    /// department (HRSS 个人编号 and 单位编号, housing fund 单位账号).
    DepartmentNumber,
    /// A document the department calls "other".
    Other,
}

impl DocumentFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFamily::ResidentIdentityCard => "resident_identity_card",
            DocumentFamily::Passport => "passport",
            DocumentFamily::HkMacaoTaiwanPermit => "hk_macao_taiwan_permit",
            DocumentFamily::HkMacaoTaiwanIdentityCard => "hk_macao_taiwan_identity_card",
            DocumentFamily::ForeignPermanentResidentCard => "foreign_permanent_resident_card",
            DocumentFamily::MilitaryOfficerCard => "military_officer_card",
            DocumentFamily::HouseholdRegister => "household_register",
            DocumentFamily::UnifiedSocialCreditCode => "unified_social_credit_code",
            DocumentFamily::OrganisationCode => "organisation_code",
            DocumentFamily::LegacyTaxId => "legacy_tax_id",
            DocumentFamily::BusinessLicence => "business_licence",
            DocumentFamily::DepartmentNumber => "department_number",
            DocumentFamily::Other => "other",
        }
    }
}

/// A document number as the department typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDocument {
    /// `None` when the department's code is not in its table: the number is kept and
    /// flagged, never used as a key.
    pub family: Option<DocumentFamily>,
    /// The department's own type code as sent (`"201"`, `"01"`, ...), for the flag of
    /// an unknown code; empty where the field implies the family.
    pub code: String,
    /// For [`DocumentFamily::DepartmentNumber`]: which department register the number
    /// belongs to (`"hrss.person"`, `"hrss.employer"`, `"housingfund.employer"`).
    pub register: Option<&'static str>,
    /// JSON Pointer of the number within the payload, for quality flags.
    pub pointer: String,
    pub number: String,
}

/// What an identifier is, after normalisation. Resolution compares identifiers only
/// within one scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdScheme {
    /// 18-character resident identity number with a valid check character.
    ResidentId,
    /// Upper-case passport number, no separators.
    Passport,
    HkMacaoTaiwanPermit,
    HkMacaoTaiwanIdentityCard,
    ForeignPermanentResidentCard,
    MilitaryOfficerCard,
    /// The 9-character organisation code (GB 11714) with a valid check character: the
    /// key every form of an organisation's code reduces to.
    OrganisationCode,
    /// The full USCC, kept for display beside the organisation code it contains.
    #[serde(rename = "uscc")]
    UnifiedSocialCreditCode,
    /// The 15-digit pre-2015 business registration number.
    RegistrationNumber,
    /// A department register's own number (`value` is `<register>:<number>`).
    DepartmentNumber,
}

impl IdScheme {
    pub const ALL: [IdScheme; 10] = [
        IdScheme::ResidentId,
        IdScheme::Passport,
        IdScheme::HkMacaoTaiwanPermit,
        IdScheme::HkMacaoTaiwanIdentityCard,
        IdScheme::ForeignPermanentResidentCard,
        IdScheme::MilitaryOfficerCard,
        IdScheme::OrganisationCode,
        IdScheme::UnifiedSocialCreditCode,
        IdScheme::RegistrationNumber,
        IdScheme::DepartmentNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdScheme::ResidentId => "resident_id",
            IdScheme::Passport => "passport",
            IdScheme::HkMacaoTaiwanPermit => "hk_macao_taiwan_permit",
            IdScheme::HkMacaoTaiwanIdentityCard => "hk_macao_taiwan_identity_card",
            IdScheme::ForeignPermanentResidentCard => "foreign_permanent_resident_card",
            IdScheme::MilitaryOfficerCard => "military_officer_card",
            IdScheme::OrganisationCode => "organisation_code",
            IdScheme::UnifiedSocialCreditCode => "uscc",
            IdScheme::RegistrationNumber => "registration_number",
            IdScheme::DepartmentNumber => "department_number",
        }
    }

    pub fn parse(s: &str) -> Option<IdScheme> {
        IdScheme::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A normalised identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub scheme: IdScheme,
    pub value: String,
    /// Reliable enough to be a deterministic resolution key: a verified check
    /// character, or a document number whose family is known. An unreliable
    /// identifier is shown but never used to link.
    pub key: bool,
}

// ---------------------------------------------------------------------------
// Attributes, facts and relations

/// An attribute of a unified record that several departments may state, and that
/// survivorship chooses one value of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// Person or organisation name.
    Name,
    /// `male` / `female` (persons).
    Sex,
    /// `YYYY-MM-DD`, or `YYYY-MM` where only year and month are known.
    BirthDate,
    /// ISO 3166 alpha-3, `CHN` for Chinese citizens.
    Nationality,
    /// GB 3304 code, two digits.
    Ethnicity,
    /// A mobile number (11 digits) or a landline (`0535-xxxxxxx`).
    Phone,
    /// Residence or business address, without the 山东省烟台市海阳市 prefix.
    Address,
    /// 户籍地址.
    HouseholdAddress,
    /// `married` / `divorced` (civil affairs is the authority).
    MaritalStatus,
    /// Organisation's registration status: `active`, `moved_out`, `deregistered`, `revoked`, `abnormal`.
    Status,
    /// Organisation type: `limited_company`, `joint_stock_company`, `cooperative`,
    /// `individual_business`, `unit`, `public_institution`, `state_organ`.
    OrganisationType,
    /// Date an organisation was founded, `YYYY-MM-DD`.
    Founded,
    /// Registered capital, normalised amount with currency (`5000000 CNY`).
    RegisteredCapital,
    /// GB/T 4754 industry class.
    Industry,
}

impl Attribute {
    pub const ALL: [Attribute; 14] = [
        Attribute::Name,
        Attribute::Sex,
        Attribute::BirthDate,
        Attribute::Nationality,
        Attribute::Ethnicity,
        Attribute::Phone,
        Attribute::Address,
        Attribute::HouseholdAddress,
        Attribute::MaritalStatus,
        Attribute::Status,
        Attribute::OrganisationType,
        Attribute::Founded,
        Attribute::RegisteredCapital,
        Attribute::Industry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Name => "name",
            Attribute::Sex => "sex",
            Attribute::BirthDate => "birth_date",
            Attribute::Nationality => "nationality",
            Attribute::Ethnicity => "ethnicity",
            Attribute::Phone => "phone",
            Attribute::Address => "address",
            Attribute::HouseholdAddress => "household_address",
            Attribute::MaritalStatus => "marital_status",
            Attribute::Status => "status",
            Attribute::OrganisationType => "organisation_type",
            Attribute::Founded => "founded",
            Attribute::RegisteredCapital => "registered_capital",
            Attribute::Industry => "industry",
        }
    }

    pub fn parse(s: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A date as a department wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawDate {
    /// Any of the departments' text formats: `YYYYMMDD`, `YYYY-MM-DD`,
    /// `YYYY-MM-DD HH:MM:SS`, `YYYY.MM.DD`, `YYYY/M/D`, `YYYY年M月D日`, `YYYYMM`.
    Text(String),
    /// Unix time in milliseconds, meaning a moment in Beijing time (UTC+8).
    BeijingMillis(i64),
}

/// An attribute value as the department typed it, with its place in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    pub attribute: Attribute,
    /// Text as typed for free-text attributes (name, phone, address, capital); for
    /// coded attributes (sex, status, ...) the adapter has already mapped the code to
    /// the canonical word documented on [`Attribute`].
    pub text: String,
    /// For [`Attribute::BirthDate`] and [`Attribute::Founded`].
    pub date: Option<RawDate>,
    /// When the value became true, where the record says (a marriage registration's
    /// date): survivorship prefers the latest such date to the latest edit of a record.
    pub as_of: Option<RawDate>,
    /// JSON Pointer of the value within the payload.
    pub pointer: String,
}

impl RawValue {
    pub fn text(attribute: Attribute, pointer: impl Into<String>, text: impl Into<String>) -> RawValue {
        RawValue {
            attribute,
            text: text.into(),
            date: None,
            as_of: None,
            pointer: pointer.into(),
        }
    }

    /// The same value, true as of `date`.
    pub fn as_of(mut self, date: RawDate) -> RawValue {
        self.as_of = Some(date);
        self
    }

    pub fn date(attribute: Attribute, pointer: impl Into<String>, date: RawDate) -> RawValue {
        let text = match &date {
            RawDate::Text(text) => text.clone(),
            RawDate::BeijingMillis(ms) => ms.to_string(),
        };
        RawValue {
            attribute,
            text,
            date: Some(date),
            as_of: None,
            pointer: pointer.into(),
        }
    }
}

/// A value inside a department fact, as the department wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawFact {
    /// A code already mapped to a canonical English word (`paying`, `pension`).
    Code(&'static str),
    /// Free text kept as typed (trimmed by normalisation).
    Text(String),
    Date(RawDate),
    /// An amount with its unit in the text (`500万元人民币`, `5000.00`, `50%`, `1/2`).
    Amount(String),
    Number(f64),
    Bool(bool),
    List(Vec<RawFact>),
}

/// One fact a department states about the holder of a mention: its tax status, its
/// insurance, its account, its title, its permit, its marriage, its allowance.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFactSet {
    /// What the facts are about: `taxpayer_registration`, `social_insurance`,
    /// `provident_fund_account`, `real_estate_title`, `construction_permit`,
    /// `marriage_registration`, `subsistence_allowance`, `market_registration`.
    pub topic: &'static str,
    pub fields: Vec<(&'static str, RawFact)>,
}

/// A relation a record proves between two of its mentions, or between a mention and
/// the record itself (a title held, a project managed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// person → organisation.
    LegalRepresentativeOf,
    /// person → organisation.
    EmployedBy,
    /// holder → the title record (`to` is `None`); co-holders are related through it.
    HoldsTitle,
    /// party 0 ↔ party 1 of a marriage registration (a divorce registration proves the
    /// relation ended: see the facts).
    SpouseOf,
    /// member → head of household.
    MemberOfHousehold,
    /// project manager → builder.
    ManagesProject,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::LegalRepresentativeOf => "legal_representative_of",
            RelationKind::EmployedBy => "employed_by",
            RelationKind::HoldsTitle => "holds_title",
            RelationKind::SpouseOf => "spouse_of",
            RelationKind::MemberOfHousehold => "member_of_household",
            RelationKind::ManagesProject => "manages_project",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    pub kind: RelationKind,
    pub from: Slot,
    /// The other mention, or `None` for the record itself.
    pub to: Option<Slot>,
    /// A short qualifier where the record gives one (`配偶` → `spouse`, a share `50%`).
    pub detail: Option<String>,
}

// ---------------------------------------------------------------------------
// Quality flags

/// A semantic defect found in an accepted record. It never rejects the record; it is
/// reported back to the department, and the defective value is not used as a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QualityFlag {
    pub code: FlagCode,
    /// JSON Pointer into the payload of the offending value.
    pub pointer: String,
    /// For the department's engineer: what is wrong. Never contains the value itself
    /// (flags are logged and counted).
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlagCode {
    /// A code not in the department's own table.
    UnknownCode,
    /// A resident identity number, USCC or organisation code whose check character is wrong.
    WrongCheckCharacter,
    /// An identifier that has the wrong length or characters for its family.
    MalformedIdentifier,
    /// A 15-digit resident identity number (upgraded to 18 for matching).
    LegacyIdentityNumber,
    /// The typed birth date disagrees with the one inside the identity number.
    BirthDateDisagrees,
    /// The typed sex disagrees with the one the identity number encodes.
    SexDisagrees,
    /// A date that cannot be read in the department's format.
    UnreadableDate,
    /// A phone number that is neither a mobile nor a landline.
    UnreadablePhone,
    /// An amount whose unit or number cannot be read.
    UnreadableAmount,
    /// A value of an attribute another department is the authority for, differing from
    /// the value that authority gave. Never raised by an adapter: the hub computes it
    /// across departments (its data-quality report), with an empty pointer.
    ContradictsAuthority,
}

impl FlagCode {
    pub const ALL: [FlagCode; 10] = [
        FlagCode::UnknownCode,
        FlagCode::WrongCheckCharacter,
        FlagCode::MalformedIdentifier,
        FlagCode::LegacyIdentityNumber,
        FlagCode::BirthDateDisagrees,
        FlagCode::SexDisagrees,
        FlagCode::UnreadableDate,
        FlagCode::UnreadablePhone,
        FlagCode::UnreadableAmount,
        FlagCode::ContradictsAuthority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagCode::UnknownCode => "UNKNOWN_CODE",
            FlagCode::WrongCheckCharacter => "WRONG_CHECK_CHARACTER",
            FlagCode::MalformedIdentifier => "MALFORMED_IDENTIFIER",
            FlagCode::LegacyIdentityNumber => "LEGACY_IDENTITY_NUMBER",
            FlagCode::BirthDateDisagrees => "BIRTH_DATE_DISAGREES",
            FlagCode::SexDisagrees => "SEX_DISAGREES",
            FlagCode::UnreadableDate => "UNREADABLE_DATE",
            FlagCode::UnreadablePhone => "UNREADABLE_PHONE",
            FlagCode::UnreadableAmount => "UNREADABLE_AMOUNT",
            FlagCode::ContradictsAuthority => "CONTRADICTS_AUTHORITY",
        }
    }

    pub fn parse(s: &str) -> Option<FlagCode> {
        FlagCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl QualityFlag {
    pub fn new(code: FlagCode, pointer: impl Into<String>, message: impl Into<String>) -> QualityFlag {
        QualityFlag {
            code,
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// What an adapter produces

/// One person or organisation as one record mentions it, values as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMention {
    pub slot: Slot,
    pub kind: EntityKind,
    pub documents: Vec<RawDocument>,
    pub values: Vec<RawValue>,
    pub facts: Vec<RawFactSet>,
    /// Defects the adapter itself found (an unknown code).
    pub flags: Vec<QualityFlag>,
}

impl RawMention {
    pub fn new(slot: Slot, kind: EntityKind) -> RawMention {
        RawMention {
            slot,
            kind,
            documents: Vec::new(),
            values: Vec::new(),
            facts: Vec::new(),
            flags: Vec::new(),
        }
    }
}

/// Everything one native record says: its mentions and the relations between them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    pub mentions: Vec<RawMention>,
    pub relations: Vec<Relation>,
}

/// Why an adapter could not read a record that passed its JSON Schema. The schemas
/// are meant to make this impossible; when it happens it is a bug to report, and
/// the record is rejected rather than guessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub pointer: String,
    pub message: String,
}

// ---------------------------------------------------------------------------
// What normalisation produces

/// One attribute value after normalisation, with the value as typed beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub attribute: Attribute,
    /// The normalised value, as documented on [`Attribute`].
    pub value: String,
    /// The value as typed (trimmed), to show variants.
    pub typed: String,
    /// True when the value was derived from a valid identity number (birth date and
    /// sex), which survivorship prefers to typed ones.
    pub derived: bool,
    /// `YYYY-MM-DD` from which the value holds, where the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

/// A normalised mention: what resolution and survivorship work on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub slot: Slot,
    pub kind: EntityKind,
    /// Every identifier read, keys and unreliable ones; deduplicated.
    pub identifiers: Vec<Identifier>,
    pub observations: Vec<Observation>,
    /// One JSON object per fact set, `{"topic": .., <field>: <normalised value>, ..}`.
    pub facts: Vec<Map<String, Value>>,
    pub flags: Vec<QualityFlag>,
    /// Normalised name used for comparisons (simplified, no spaces, Latin name parts
    /// sorted and upper-cased); empty when the mention has no name.
    pub match_name: String,
}

impl Mention {
    /// The identifiers resolution may link on.
    pub fn keys(&self) -> impl Iterator<Item = &Identifier> {
        self.identifiers.iter().filter(|i| i.key)
    }

    pub fn observation(&self, attribute: Attribute) -> Option<&Observation> {
        self.observations.iter().find(|o| o.attribute == attribute)
    }
}
