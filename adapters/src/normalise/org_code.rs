//! Organisation codes in their four historical forms, all reduced to the key they
//! share.
//!
//! - the unified social credit code (统一社会信用代码, GB 32100-2015), 18 characters,
//!   whose positions 9-17 are the organisation code;
//! - the organisation code (组织机构代码, GB 11714), 8 characters and a check
//!   character, often written `XXXXXXXX-X`;
//! - the 15-character tax ID of units registered before 2015: 6-digit region code
//!   and the organisation code;
//! - the 15-digit business registration number (注册号) of licences issued before
//!   2015, with an ISO 7064 MOD 11,10 check digit. It shares no digits with the
//!   others and is a key of its own.
//!
//! A code with a wrong check character is not a key at all: a typo in one character
//! could land on another organisation's code, and precision comes first.

use std::fmt;

use crate::model::{DocumentFamily, FlagCode, IdScheme, Identifier};

/// The characters of GB 32100 codes, in value order 0-30 (no I, O, S, V, Z).
pub const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights of the first 17 characters.
pub const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// GB 11714 weights of the first 8 characters.
pub const ORGANISATION_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// The form a code was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgForm {
    Uscc,
    OrganisationCode,
    LegacyTaxId,
    RegistrationNumber,
}

impl OrgForm {
    /// The scheme an unreliable code of this form is shown under.
    pub fn scheme(self) -> IdScheme {
        match self {
            OrgForm::Uscc => IdScheme::UnifiedSocialCreditCode,
            OrgForm::OrganisationCode | OrgForm::LegacyTaxId => IdScheme::OrganisationCode,
            OrgForm::RegistrationNumber => IdScheme::RegistrationNumber,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            OrgForm::Uscc => "unified social credit code",
            OrgForm::OrganisationCode => "organisation code",
            OrgForm::LegacyTaxId => "15-character tax ID",
            OrgForm::RegistrationNumber => "business registration number",
        }
    }
}

/// A code that passed every check, in the form it was typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrgCode {
    /// `organisation_code` is positions 9-17, present when they carry a valid GB 11714
    /// check character themselves (the USCC's own check does not vouch for that).
    Uscc {
        uscc: String,
        organisation_code: Option<String>,
    },
    OrganisationCode(String),
    LegacyTaxId {
        tax_id: String,
        organisation_code: String,
    },
    RegistrationNumber(String),
}

impl OrgCode {
    pub fn form(&self) -> OrgForm {
        match self {
            OrgCode::Uscc { .. } => OrgForm::Uscc,
            OrgCode::OrganisationCode(_) => OrgForm::OrganisationCode,
            OrgCode::LegacyTaxId { .. } => OrgForm::LegacyTaxId,
            OrgCode::RegistrationNumber(_) => OrgForm::RegistrationNumber,
        }
    }

    /// The 9-character organisation code every form but the registration number reduces to.
    pub fn organisation_code(&self) -> Option<&str> {
        match self {
            OrgCode::Uscc { organisation_code, .. } => organisation_code.as_deref(),
            OrgCode::OrganisationCode(code) => Some(code),
            OrgCode::LegacyTaxId { organisation_code, .. } => Some(organisation_code),
            OrgCode::RegistrationNumber(_) => None,
        }
    }

    /// The keys: the organisation code, and the USCC itself or the registration number.
    pub fn identifiers(&self) -> Vec<Identifier> {
        let key = |scheme, value: &str| Identifier {
            scheme,
            value: value.to_owned(),
            key: true,
        };
        let mut identifiers: Vec<Identifier> = self
            .organisation_code()
            .map(|code| key(IdScheme::OrganisationCode, code))
            .into_iter()
            .collect();
        match self {
            OrgCode::Uscc { uscc, .. } => identifiers.push(key(IdScheme::UnifiedSocialCreditCode, uscc)),
            OrgCode::RegistrationNumber(number) => identifiers.push(key(IdScheme::RegistrationNumber, number)),
            OrgCode::OrganisationCode(_) | OrgCode::LegacyTaxId { .. } => {}
        }
        identifiers
    }
}

/// What is wrong with a code. Messages never quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgCodeDefect {
    Empty,
    /// No form has this many characters.
    Length,
    /// A character outside the form's alphabet.
    Character,
    CheckCharacter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgCodeError {
    /// The form the length (and the family) pointed to; `None` when no form fits.
    pub form: Option<OrgForm>,
    pub defect: OrgCodeDefect,
    /// The code cleaned, to be shown (never used as a key).
    pub cleaned: String,
}

impl OrgCodeError {
    pub fn flag_code(&self) -> FlagCode {
        match self.defect {
            OrgCodeDefect::CheckCharacter => FlagCode::WrongCheckCharacter,
            _ => FlagCode::MalformedIdentifier,
        }
    }

    fn new(form: Option<OrgForm>, defect: OrgCodeDefect, cleaned: &str) -> OrgCodeError {
        OrgCodeError {
            form,
            defect,
            cleaned: cleaned.to_owned(),
        }
    }
}

impl fmt::Display for OrgCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = self.form.map_or("organisation code", OrgForm::noun);
        match self.defect {
            OrgCodeDefect::Empty => write!(f, "{noun} is empty"),
            OrgCodeDefect::Length => write!(
                f,
                "{noun} has a length no code has (18 for a USCC, 9 for an organisation code, 15 for a tax ID or registration number)"
            ),
            OrgCodeDefect::Character => write!(f, "{noun} has a character outside its alphabet"),
            OrgCodeDefect::CheckCharacter => write!(f, "{noun} has a wrong check character"),
        }
    }
}

/// The code as it should have been typed: NFKC (full-width), no white space, no
/// hyphens (`XXXXXXXX-X`), upper case.
pub fn clean(raw: &str) -> String {
    super::nfkc(raw)
        .chars()
        .filter(|&c| !super::is_space(c) && !super::is_hyphen(c))
        .collect::<String>()
        .to_uppercase()
}

fn uscc_value(c: char) -> Option<u32> {
    USCC_ALPHABET.find(c).map(|i| i as u32)
}

/// The GB 32100 check character of the first 17 characters of a USCC.
pub fn uscc_check_character(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * weight;
    }
    // 31 - (sum mod 31), with 31 written as 0.
    USCC_ALPHABET.chars().nth(((31 - sum % 31) % 31) as usize)
}

/// The GB 11714 check character of the first 8 characters of an organisation code
/// (digits, and upper-case letters worth 10-35).
pub fn organisation_code_check_character(first8: &str) -> Option<char> {
    if first8.chars().count() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first8.chars().zip(ORGANISATION_CODE_WEIGHTS) {
        if !(c.is_ascii_digit() || c.is_ascii_uppercase()) {
            return None;
        }
        sum += c.to_digit(36)? * weight;
    }
    match 11 - sum % 11 {
        10 => Some('X'),
        11 => Some('0'),
        n => char::from_digit(n, 10),
    }
}

/// The ISO 7064 MOD 11,10 check digit of the first 14 digits of a registration number
/// (any number of digits, in fact).
pub fn registration_number_check_digit(body: &str) -> Option<char> {
    if body.is_empty() {
        return None;
    }
    let mut product = 10;
    for c in body.chars() {
        let sum = (product + c.to_digit(10)?) % 10;
        product = (if sum == 0 { 10 } else { sum }) * 2 % 11;
    }
    char::from_digit((11 - product) % 10, 10)
}

/// Reads a unified social credit code.
pub fn parse_uscc(raw: &str) -> Result<OrgCode, OrgCodeError> {
    let code = clean(raw);
    let form = Some(OrgForm::Uscc);
    check_length(&code, form, 18)?;
    // Registration authority and category may be letters (N, Y); the region is digits.
    let alphabet_ok = code.chars().all(|c| uscc_value(c).is_some());
    if !alphabet_ok || !code[2..8].bytes().all(|b| b.is_ascii_digit()) {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Character, &code));
    }
    if uscc_check_character(&code[..17]) != code[17..].chars().next() {
        return Err(OrgCodeError::new(form, OrgCodeDefect::CheckCharacter, &code));
    }
    let organisation_code = valid_organisation_code(&code[8..17]).then(|| code[8..17].to_owned());
    Ok(OrgCode::Uscc {
        uscc: code,
        organisation_code,
    })
}

/// Reads an organisation code, with or without its hyphen.
pub fn parse_organisation_code(raw: &str) -> Result<OrgCode, OrgCodeError> {
    let code = clean(raw);
    let form = Some(OrgForm::OrganisationCode);
    check_length(&code, form, 9)?;
    check_organisation_code(&code, &code, form)?;
    Ok(OrgCode::OrganisationCode(code))
}

/// Reads a 15-character tax ID: region code and organisation code.
pub fn parse_legacy_tax_id(raw: &str) -> Result<OrgCode, OrgCodeError> {
    let tax_id = clean(raw);
    let form = Some(OrgForm::LegacyTaxId);
    check_length(&tax_id, form, 15)?;
    if !tax_id[..6].bytes().all(|b| b.is_ascii_digit()) {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Character, &tax_id));
    }
    check_organisation_code(&tax_id[6..], &tax_id, form)?;
    Ok(OrgCode::LegacyTaxId {
        organisation_code: tax_id[6..].to_owned(),
        tax_id,
    })
}

/// Reads a 15-digit business registration number.
pub fn parse_registration_number(raw: &str) -> Result<OrgCode, OrgCodeError> {
    let number = clean(raw);
    let form = Some(OrgForm::RegistrationNumber);
    check_length(&number, form, 15)?;
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Character, &number));
    }
    if registration_number_check_digit(&number[..14]) != number[14..].chars().next() {
        return Err(OrgCodeError::new(form, OrgCodeDefect::CheckCharacter, &number));
    }
    Ok(OrgCode::RegistrationNumber(number))
}

/// Reads a code whatever form it was typed in: the cleaned length decides (18 USCC,
/// 9 organisation code, 15 tax ID), the family only breaks the tie of 15 digits,
/// which under [`DocumentFamily::BusinessLicence`] are a registration number.
pub fn read(raw: &str, family: DocumentFamily) -> Result<OrgCode, OrgCodeError> {
    let code = clean(raw);
    match code.chars().count() {
        0 => Err(OrgCodeError::new(None, OrgCodeDefect::Empty, &code)),
        18 => parse_uscc(&code),
        9 => parse_organisation_code(&code),
        15 if family == DocumentFamily::BusinessLicence && code.bytes().all(|b| b.is_ascii_digit()) => {
            parse_registration_number(&code)
        }
        15 => parse_legacy_tax_id(&code),
        _ => Err(OrgCodeError::new(None, OrgCodeDefect::Length, &code)),
    }
}

/// Every key a typed code may stand for, whatever its form: 15 digits can be a tax
/// ID and a registration number at once.
pub fn lookup(raw: &str) -> Vec<OrgCode> {
    [
        parse_uscc,
        parse_organisation_code,
        parse_legacy_tax_id,
        parse_registration_number,
    ]
    .iter()
    .filter_map(|parse| parse(raw).ok())
    .collect()
}

/// Length first, and only ASCII beyond it, so that byte offsets are character offsets.
fn check_length(code: &str, form: Option<OrgForm>, length: usize) -> Result<(), OrgCodeError> {
    if code.is_empty() {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Empty, code));
    }
    if code.chars().count() != length {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Length, code));
    }
    if !code.is_ascii() {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Character, code));
    }
    Ok(())
}

fn check_organisation_code(code: &str, whole: &str, form: Option<OrgForm>) -> Result<(), OrgCodeError> {
    let (body, check) = code.split_at(8);
    let check_ok = check.len() == 1 && check.bytes().all(|b| b.is_ascii_digit() || b == b'X');
    if !body.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) || !check_ok {
        return Err(OrgCodeError::new(form, OrgCodeDefect::Character, whole));
    }
    if organisation_code_check_character(body) != check.chars().next() {
        return Err(OrgCodeError::new(form, OrgCodeDefect::CheckCharacter, whole));
    }
    Ok(())
}

fn valid_organisation_code(code: &str) -> bool {
    code.len() == 9 && code.is_ascii() && organisation_code_check_character(&code[..8]) == code[8..].chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from python-stdnum (`stdnum.cn.uscc`, `stdnum.iso7064.mod_11_10`) and,
    /// for GB 11714 which stdnum lacks, an implementation written from the standard
    /// in `vectors/make_vectors.py`.
    const VECTORS: &str = include_str!("vectors/check_characters.txt");

    fn vectors(kind: &str) -> Vec<(&'static str, &'static str, Option<&'static str>)> {
        VECTORS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let fields: Vec<&str> = l.split('\t').collect();
                (fields.first() == Some(&kind)).then(|| (fields[1], fields[2], fields.get(3).copied()))
            })
            .collect()
    }

    #[test]
    fn credit_codes_agree_with_stdnum() {
        let all = vectors("uscc");
        assert!(all.len() >= 150, "{} vectors", all.len());
        for (code, verdict, organisation_code) in all {
            match verdict {
                "valid" => {
                    let read = parse_uscc(code).unwrap_or_else(|e| panic!("{code}: {e}"));
                    let expected = organisation_code.filter(|c| *c != "-");
                    assert_eq!(read.organisation_code(), expected, "{code}");
                    assert!(read.identifiers().iter().all(|i| i.key));
                }
                "wrong_check" => {
                    let error = parse_uscc(code).expect_err(code);
                    assert_eq!(error.defect, OrgCodeDefect::CheckCharacter, "{code}");
                    assert_eq!(error.flag_code(), FlagCode::WrongCheckCharacter);
                }
                other => panic!("unknown verdict {other}"),
            }
        }
    }

    #[test]
    fn organisation_codes_agree_with_the_reference() {
        let all = vectors("orgcode");
        assert!(all.len() >= 80, "{} vectors", all.len());
        for (code, verdict, _) in all {
            let read = parse_organisation_code(code);
            match verdict {
                "valid" => assert_eq!(read, Ok(OrgCode::OrganisationCode(clean(code))), "{code}"),
                "wrong_check" => assert_eq!(read.map_err(|e| e.defect), Err(OrgCodeDefect::CheckCharacter), "{code}"),
                other => panic!("unknown verdict {other}"),
            }
        }
    }

    #[test]
    fn registration_numbers_agree_with_stdnum() {
        let all = vectors("regno");
        assert!(all.len() >= 60, "{} vectors", all.len());
        for (number, verdict, _) in all {
            let read = parse_registration_number(number);
            match verdict {
                "valid" => assert_eq!(read, Ok(OrgCode::RegistrationNumber(number.to_owned())), "{number}"),
                "wrong_check" => assert_eq!(
                    read.map_err(|e| e.defect),
                    Err(OrgCodeDefect::CheckCharacter),
                    "{number}"
                ),
                other => panic!("unknown verdict {other}"),
            }
        }
    }

    #[test]
    fn tax_ids_agree_with_the_reference() {
        let all = vectors("taxid");
        assert!(all.len() >= 40, "{} vectors", all.len());
        for (tax_id, verdict, _) in all {
            let read = parse_legacy_tax_id(tax_id);
            match verdict {
                "valid" => assert_eq!(
                    read.map(|c| c.organisation_code().map(str::to_owned)),
                    Ok(Some(tax_id[6..].to_owned()))
                ),
                "wrong_check" => assert_eq!(
                    read.map_err(|e| e.defect),
                    Err(OrgCodeDefect::CheckCharacter),
                    "{tax_id}"
                ),
                other => panic!("unknown verdict {other}"),
            }
        }
    }

    #[test]
    fn every_form_reduces_to_one_organisation_code() {
        // stdnum's own example; its positions 9-17 are a valid organisation code.
        let uscc = "91110000600037341L";
        let code = "600037341";
        let forms = [
            (uscc, DocumentFamily::UnifiedSocialCreditCode),
            (" 91110000600037341l\u{3000}", DocumentFamily::BusinessLicence),
            ("９１１１００００６０００３７３４１Ｌ", DocumentFamily::LegacyTaxId),
            ("60003734-1", DocumentFamily::OrganisationCode),
            ("600037341", DocumentFamily::UnifiedSocialCreditCode),
            ("60003734－1", DocumentFamily::OrganisationCode),
            ("110000600037341", DocumentFamily::LegacyTaxId),
            ("110000 60003734-1", DocumentFamily::OrganisationCode),
        ];
        for (typed, family) in forms {
            let read = read(typed, family).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(read.organisation_code(), Some(code), "{typed}");
            let keys = read.identifiers();
            assert!(keys.contains(&Identifier {
                scheme: IdScheme::OrganisationCode,
                value: code.into(),
                key: true
            }));
        }
        let keys = read(uscc, DocumentFamily::UnifiedSocialCreditCode).map(|c| c.identifiers());
        assert_eq!(keys.map(|k| k.len()), Ok(2), "organisation code and the USCC itself");
    }

    #[test]
    fn fifteen_digits_under_the_business_licence_are_a_registration_number() {
        let body = "37068760012345";
        let number = format!("{body}{}", registration_number_check_digit(body).expect("digits"));
        let read = read(&number, DocumentFamily::BusinessLicence).expect("valid");
        assert_eq!(read, OrgCode::RegistrationNumber(number.clone()));
        assert_eq!(
            read.identifiers(),
            vec![Identifier {
                scheme: IdScheme::RegistrationNumber,
                value: number.clone(),
                key: true
            }]
        );
        // The same digits under another family are a tax ID, read as such.
        assert_eq!(
            read_form(&number, DocumentFamily::LegacyTaxId),
            Some(OrgForm::LegacyTaxId)
        );
        // A tax ID with letters under the licence family is still a tax ID.
        assert_eq!(
            read_form("370687MA3C4D5E6X", DocumentFamily::BusinessLicence),
            None,
            "16 characters"
        );
    }

    fn read_form(raw: &str, family: DocumentFamily) -> Option<OrgForm> {
        match read(raw, family) {
            Ok(code) => Some(code.form()),
            Err(error) => error.form,
        }
    }

    #[test]
    fn wrong_check_character_is_no_key() {
        let error = read("91110000600037341M", DocumentFamily::UnifiedSocialCreditCode).expect_err("wrong check");
        assert_eq!(error.form, Some(OrgForm::Uscc));
        assert_eq!(error.flag_code(), FlagCode::WrongCheckCharacter);
        assert_eq!(error.cleaned, "91110000600037341M");
        assert!(!error.to_string().contains("9111"), "messages never quote the value");
        let error = read("60003734-2", DocumentFamily::OrganisationCode).expect_err("wrong check");
        assert_eq!(
            (error.form, error.defect),
            (Some(OrgForm::OrganisationCode), OrgCodeDefect::CheckCharacter)
        );
        let error = read("110000600037342", DocumentFamily::LegacyTaxId).expect_err("wrong check");
        assert_eq!(
            (error.form, error.defect),
            (Some(OrgForm::LegacyTaxId), OrgCodeDefect::CheckCharacter)
        );
    }

    #[test]
    fn malformed_codes() {
        let defect = |raw: &str| read(raw, DocumentFamily::UnifiedSocialCreditCode).map_err(|e| e.defect);
        assert_eq!(defect(""), Err(OrgCodeDefect::Empty));
        assert_eq!(defect(" - "), Err(OrgCodeDefect::Empty));
        assert_eq!(defect("9111000060003734"), Err(OrgCodeDefect::Length));
        assert_eq!(
            defect("91110000600037341I"),
            Err(OrgCodeDefect::Character),
            "I is not in the alphabet"
        );
        assert_eq!(
            defect("911A0000600037341L"),
            Err(OrgCodeDefect::Character),
            "region must be digits"
        );
        assert_eq!(defect("9111000060003734一L"), Err(OrgCodeDefect::Character));
        assert_eq!(
            defect("60003734Y"),
            Err(OrgCodeDefect::Character),
            "check is a digit or X"
        );
        assert_eq!(
            read("d2143569-x", DocumentFamily::OrganisationCode).map(|c| c.form()),
            Ok(OrgForm::OrganisationCode)
        );
        assert_eq!(
            defect("ABCDEF600037341"),
            Err(OrgCodeDefect::Character),
            "region must be digits"
        );
        assert_eq!(defect("一二三四五六七八九"), Err(OrgCodeDefect::Character));
    }

    #[test]
    fn letters_in_the_authority_and_category() {
        // Y1 (other authority): GB 32100 allows letters in the first two positions.
        let first17 = "Y1370687MA3C4D5E6";
        let check = uscc_check_character(first17).expect("alphabet");
        let read = parse_uscc(&format!("{first17}{check}")).expect("valid");
        assert_eq!(read.form(), OrgForm::Uscc);
    }

    #[test]
    fn check_functions_reject_what_is_outside_their_alphabet() {
        assert_eq!(uscc_check_character("91110000600037341"), Some('L'));
        assert_eq!(uscc_check_character("9111000060003734"), None);
        assert_eq!(uscc_check_character("9111000060003734I"), None);
        assert_eq!(organisation_code_check_character("D2143569"), Some('X'));
        assert_eq!(organisation_code_check_character("d2143569"), None);
        assert_eq!(organisation_code_check_character("D214356"), None);
        assert_eq!(registration_number_check_digit(""), None);
        assert_eq!(registration_number_check_digit("3706876001234a"), None);
    }

    #[test]
    fn lookup_offers_every_reading_of_fifteen_digits() {
        // Digits that are a valid tax ID (region + code) and a valid registration number.
        let mut both = None;
        for region in 370_600..370_700 {
            let candidate = format!("{region}600037341");
            if registration_number_check_digit(&candidate[..14]) == candidate[14..].chars().next() {
                both = Some(candidate);
                break;
            }
        }
        let both = both.expect("one region in a hundred satisfies MOD 11,10");
        let forms: Vec<OrgForm> = lookup(&both).iter().map(OrgCode::form).collect();
        assert_eq!(forms, vec![OrgForm::LegacyTaxId, OrgForm::RegistrationNumber]);
        assert!(lookup("hello").is_empty());
    }
}
