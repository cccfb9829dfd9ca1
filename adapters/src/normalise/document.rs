//! One typed document number → identifiers and quality flags, by document family.
//!
//! Resident identity numbers and organisation codes have their own files; this one
//! dispatches to them and handles the documents without a check character
//! (passports, permits, cards), whose numbers are keys when they look like numbers,
//! and the departments' own numbers, keys within their register.

use crate::model::{DocumentFamily, IdScheme, Identifier, QualityFlag, RawDocument};

use super::org_code;
use super::resident_id::{self, ResidentId, ResidentIdError};

/// The schemes of the documents without a check character, in the order a lookup
/// offers them.
pub const DOCUMENT_SCHEMES: [IdScheme; 5] = [
    IdScheme::Passport,
    IdScheme::HkMacaoTaiwanPermit,
    IdScheme::HkMacaoTaiwanIdentityCard,
    IdScheme::ForeignPermanentResidentCard,
    IdScheme::MilitaryOfficerCard,
];

/// The lengths a plausible document number has, in characters.
const PLAUSIBLE_LENGTHS: std::ops::RangeInclusive<usize> = 5..=20;

/// What one document gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentReading {
    /// Keys and unreliable identifiers (shown, never linked on).
    pub identifiers: Vec<Identifier>,
    pub flags: Vec<QualityFlag>,
    /// The resident identity number, when the document carries a valid one (birth
    /// date and sex are derived from it).
    pub resident_id: Option<ResidentId>,
}

/// The scheme of a document family without a check character.
pub fn scheme(family: DocumentFamily) -> Option<IdScheme> {
    match family {
        DocumentFamily::Passport => Some(IdScheme::Passport),
        DocumentFamily::HkMacaoTaiwanPermit => Some(IdScheme::HkMacaoTaiwanPermit),
        DocumentFamily::HkMacaoTaiwanIdentityCard => Some(IdScheme::HkMacaoTaiwanIdentityCard),
        DocumentFamily::ForeignPermanentResidentCard => Some(IdScheme::ForeignPermanentResidentCard),
        DocumentFamily::MilitaryOfficerCard => Some(IdScheme::MilitaryOfficerCard),
        _ => None,
    }
}

/// A document number as it should have been typed: NFKC (full-width), upper case,
/// no white space, no hyphens, and no parentheses (the Hong Kong and Macao identity
/// cards print their check digit in them: `A123456(7)` is `A1234567`).
pub fn clean_number(raw: &str) -> String {
    super::nfkc(raw)
        .chars()
        .filter(|&c| !super::is_space(c) && !super::is_hyphen(c) && !matches!(c, '(' | ')'))
        .collect::<String>()
        .to_uppercase()
}

/// Letters and digits only (Chinese characters count: a military officer card reads
/// `军字第2001988号`), 5 to 20 of them.
pub fn is_plausible(cleaned: &str) -> bool {
    PLAUSIBLE_LENGTHS.contains(&cleaned.chars().count()) && cleaned.chars().all(char::is_alphanumeric)
}

/// Reads one typed document. An empty number is an unknown value, not a defect: it
/// gives nothing and raises no flag. So does a family the adapter could not map (it
/// flagged the unknown code itself) and "other".
pub fn read(document: &RawDocument) -> DocumentReading {
    let mut reading = DocumentReading::default();
    let Some(family) = document.family else {
        return reading;
    };
    if document.number.chars().all(super::is_space) {
        return reading;
    }
    match family {
        DocumentFamily::ResidentIdentityCard | DocumentFamily::HouseholdRegister => {
            read_resident_id(document, &mut reading);
        }
        DocumentFamily::UnifiedSocialCreditCode
        | DocumentFamily::OrganisationCode
        | DocumentFamily::LegacyTaxId
        | DocumentFamily::BusinessLicence => match org_code::read(&document.number, family) {
            Ok(code) => reading.identifiers = code.identifiers(),
            Err(error) => {
                let scheme = error.form.map_or_else(|| fallback_scheme(family), |f| f.scheme());
                reading.identifiers.push(unreliable(scheme, &error.cleaned));
                reading.flags.push(QualityFlag::new(
                    error.flag_code(),
                    &document.pointer,
                    error.to_string(),
                ));
            }
        },
        DocumentFamily::DepartmentNumber => {
            // A number is meaningful only within its register; without one it cannot be a key.
            let number = clean_number(&document.number);
            if let Some(register) = document.register {
                reading.identifiers.push(Identifier {
                    scheme: IdScheme::DepartmentNumber,
                    value: format!("{register}:{number}"),
                    key: true,
                });
            }
        }
        DocumentFamily::Other => {}
        DocumentFamily::Passport
        | DocumentFamily::HkMacaoTaiwanPermit
        | DocumentFamily::HkMacaoTaiwanIdentityCard
        | DocumentFamily::ForeignPermanentResidentCard
        | DocumentFamily::MilitaryOfficerCard => {
            let Some(scheme) = scheme(family) else {
                return reading;
            };
            let number = clean_number(&document.number);
            let key = is_plausible(&number);
            reading.identifiers.push(Identifier {
                scheme,
                value: number,
                key,
            });
            if !key {
                reading.flags.push(QualityFlag::new(
                    crate::model::FlagCode::MalformedIdentifier,
                    &document.pointer,
                    format!("{} number is not 5 to 20 letters or digits", family.as_str()),
                ));
            }
        }
    }
    reading
}

fn read_resident_id(document: &RawDocument, reading: &mut DocumentReading) {
    match resident_id::parse(&document.number) {
        Ok(id) => {
            reading.identifiers.push(Identifier {
                scheme: IdScheme::ResidentId,
                value: id.number.clone(),
                key: true,
            });
            if id.was_legacy {
                reading.flags.push(QualityFlag::new(
                    crate::model::FlagCode::LegacyIdentityNumber,
                    &document.pointer,
                    "resident identity number in the 15-digit form (upgraded to 18 for matching)",
                ));
            }
            reading.resident_id = Some(id);
        }
        Err(ResidentIdError::Empty) => {}
        Err(error) => {
            reading
                .identifiers
                .push(unreliable(IdScheme::ResidentId, &resident_id::clean(&document.number)));
            reading.flags.push(QualityFlag::new(
                error.flag_code(),
                &document.pointer,
                error.to_string(),
            ));
        }
    }
}

/// The scheme an organisation code of no known length is shown under.
fn fallback_scheme(family: DocumentFamily) -> IdScheme {
    match family {
        DocumentFamily::UnifiedSocialCreditCode => IdScheme::UnifiedSocialCreditCode,
        DocumentFamily::BusinessLicence => IdScheme::RegistrationNumber,
        _ => IdScheme::OrganisationCode,
    }
}

fn unreliable(scheme: IdScheme, value: &str) -> Identifier {
    Identifier {
        scheme,
        value: value.to_owned(),
        key: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FlagCode;

    fn document(family: Option<DocumentFamily>, number: &str) -> RawDocument {
        RawDocument {
            family,
            code: String::new(),
            register: None,
            pointer: "/zjhm".into(),
            number: number.into(),
        }
    }

    fn ids(reading: &DocumentReading) -> Vec<(IdScheme, &str, bool)> {
        reading
            .identifiers
            .iter()
            .map(|i| (i.scheme, i.value.as_str(), i.key))
            .collect()
    }

    fn codes(reading: &DocumentReading) -> Vec<FlagCode> {
        reading.flags.iter().map(|f| f.code).collect()
    }

    #[test]
    fn passports_and_permits_are_cleaned_keys() {
        let cases = [
            (DocumentFamily::Passport, " e1234567 ", IdScheme::Passport, "E1234567"),
            (
                DocumentFamily::Passport,
                "Ｅ１２３４５６７",
                IdScheme::Passport,
                "E1234567",
            ),
            (
                DocumentFamily::HkMacaoTaiwanPermit,
                "h-1234 5678",
                IdScheme::HkMacaoTaiwanPermit,
                "H12345678",
            ),
            (
                DocumentFamily::HkMacaoTaiwanPermit,
                "12345678",
                IdScheme::HkMacaoTaiwanPermit,
                "12345678",
            ),
            (
                DocumentFamily::HkMacaoTaiwanIdentityCard,
                "A123456(7)",
                IdScheme::HkMacaoTaiwanIdentityCard,
                "A1234567",
            ),
            (
                DocumentFamily::HkMacaoTaiwanIdentityCard,
                "1234567（8）",
                IdScheme::HkMacaoTaiwanIdentityCard,
                "12345678",
            ),
            (
                DocumentFamily::ForeignPermanentResidentCard,
                "kor370685010112",
                IdScheme::ForeignPermanentResidentCard,
                "KOR370685010112",
            ),
            (
                DocumentFamily::MilitaryOfficerCard,
                "军字第2001988号",
                IdScheme::MilitaryOfficerCard,
                "军字第2001988号",
            ),
        ];
        for (family, typed, scheme, value) in cases {
            let reading = read(&document(Some(family), typed));
            assert_eq!(ids(&reading), vec![(scheme, value, true)], "{typed}");
            assert!(reading.flags.is_empty(), "{typed}");
            assert!(reading.resident_id.is_none());
        }
    }

    #[test]
    fn implausible_document_numbers() {
        for typed in ["E12", "E1234567890123456789012", "E123/4567", "?????"] {
            let reading = read(&document(Some(DocumentFamily::Passport), typed));
            assert!(reading.identifiers.iter().all(|i| !i.key), "{typed}");
            assert_eq!(codes(&reading), vec![FlagCode::MalformedIdentifier], "{typed}");
            assert_eq!(reading.flags[0].pointer, "/zjhm");
            assert!(
                !reading.flags[0].message.contains(&clean_number(typed)),
                "never the value"
            );
        }
    }

    #[test]
    fn resident_card_and_household_register() {
        for family in [DocumentFamily::ResidentIdentityCard, DocumentFamily::HouseholdRegister] {
            let reading = read(&document(Some(family), "11010519491231002x "));
            assert_eq!(ids(&reading), vec![(IdScheme::ResidentId, "11010519491231002X", true)]);
            assert!(reading.flags.is_empty());
            assert_eq!(
                reading.resident_id.map(|i| i.birth_date.to_string()),
                Some("1949-12-31".into())
            );
        }
        let legacy = read(&document(Some(DocumentFamily::ResidentIdentityCard), "370629650821042"));
        assert_eq!(codes(&legacy), vec![FlagCode::LegacyIdentityNumber]);
        assert!(legacy.identifiers[0].key && legacy.identifiers[0].value.len() == 18);

        let wrong = read(&document(
            Some(DocumentFamily::ResidentIdentityCard),
            "110105194912310021",
        ));
        assert_eq!(ids(&wrong), vec![(IdScheme::ResidentId, "110105194912310021", false)]);
        assert_eq!(codes(&wrong), vec![FlagCode::WrongCheckCharacter]);
        assert!(wrong.resident_id.is_none());
        assert!(!wrong.flags[0].message.contains("1101"));

        let short = read(&document(Some(DocumentFamily::ResidentIdentityCard), "1101051949"));
        assert_eq!(codes(&short), vec![FlagCode::MalformedIdentifier]);
    }

    #[test]
    fn organisation_codes_by_length() {
        let reading = read(&document(Some(DocumentFamily::OrganisationCode), "91110000600037341L"));
        assert_eq!(
            ids(&reading),
            vec![
                (IdScheme::OrganisationCode, "600037341", true),
                (IdScheme::UnifiedSocialCreditCode, "91110000600037341L", true)
            ]
        );
        let wrong = read(&document(
            Some(DocumentFamily::UnifiedSocialCreditCode),
            "91110000600037341Y",
        ));
        assert_eq!(
            ids(&wrong),
            vec![(IdScheme::UnifiedSocialCreditCode, "91110000600037341Y", false)]
        );
        assert_eq!(codes(&wrong), vec![FlagCode::WrongCheckCharacter]);
        let odd = read(&document(Some(DocumentFamily::BusinessLicence), "1234"));
        assert_eq!(ids(&odd), vec![(IdScheme::RegistrationNumber, "1234", false)]);
        assert_eq!(codes(&odd), vec![FlagCode::MalformedIdentifier]);
    }

    #[test]
    fn department_numbers_are_keys_within_their_register() {
        let mut raw = document(Some(DocumentFamily::DepartmentNumber), " 3706000123 ");
        raw.register = Some("hrss.person");
        assert_eq!(
            ids(&read(&raw)),
            vec![(IdScheme::DepartmentNumber, "hrss.person:3706000123", true)]
        );
        raw.register = None;
        assert!(read(&raw).identifiers.is_empty(), "no register, no key");
    }

    #[test]
    fn nothing_from_empty_unknown_or_other() {
        for (family, number) in [
            (Some(DocumentFamily::ResidentIdentityCard), ""),
            (Some(DocumentFamily::ResidentIdentityCard), " \u{3000}"),
            (Some(DocumentFamily::Passport), ""),
            (Some(DocumentFamily::UnifiedSocialCreditCode), ""),
            (None, "11010519491231002X"),
            (Some(DocumentFamily::Other), "11010519491231002X"),
        ] {
            let reading = read(&document(family, number));
            assert_eq!(reading, DocumentReading::default(), "{family:?} {number:?}");
        }
    }
}
