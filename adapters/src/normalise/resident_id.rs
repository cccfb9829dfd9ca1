//! Resident identity numbers (公民身份号码, GB 11643-1999).
//!
//! 18 characters: region code (6), birth date `YYYYMMDD` (8), sequence (3, odd for
//! men), check character. The 15-digit form issued before 1999 (birth date `YYMMDD`,
//! the year taken as 19YY, no check character) denotes the same person as its
//! 18-digit upgrade, which is the only form used as a key.

use std::fmt;

use super::date::Date;
use crate::model::FlagCode;

/// GB 11643 weights of the first 17 digits.
pub const CHECK_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character, indexed by the weighted sum mod 11.
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Birth years an identity number can carry. The check character does not protect
/// the date against every typo, and a year outside these is certainly one.
const BIRTH_YEARS: std::ops::RangeInclusive<u16> = 1800..=2099;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The canonical word of [`crate::model::Attribute::Sex`].
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// A resident identity number that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    /// The 18-character number, upper-case `X`: the key.
    pub number: String,
    pub birth_date: Date,
    pub sex: Sex,
    /// Typed in the 15-digit form and upgraded.
    pub was_legacy: bool,
}

/// Why a typed number is no resident identity number. Messages never quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidentIdError {
    /// Nothing typed.
    Empty,
    /// Neither 15 nor 18 characters.
    Length,
    /// Something other than digits (and a final `X` in the 18-character form).
    Character,
    /// The embedded birth date is no calendar date.
    BirthDate,
    /// The check character does not match the first 17 digits.
    CheckCharacter,
}

impl ResidentIdError {
    /// The quality flag the defect raises.
    pub fn flag_code(self) -> FlagCode {
        match self {
            ResidentIdError::CheckCharacter => FlagCode::WrongCheckCharacter,
            _ => FlagCode::MalformedIdentifier,
        }
    }
}

impl fmt::Display for ResidentIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResidentIdError::Empty => "resident identity number is empty",
            ResidentIdError::Length => "resident identity number has neither 15 nor 18 characters",
            ResidentIdError::Character => "resident identity number has characters other than digits and a final X",
            ResidentIdError::BirthDate => "birth date inside the resident identity number is no calendar date",
            ResidentIdError::CheckCharacter => "resident identity number has a wrong check character",
        })
    }
}

/// The number as it should have been typed: NFKC (full-width digits), no white space
/// at all (U+3000 included), upper-case `X`.
pub fn clean(raw: &str) -> String {
    super::without_space(&super::nfkc(raw)).to_uppercase()
}

/// The GB 11643 check character of the first 17 digits; `None` unless given
/// exactly 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first17.chars().zip(CHECK_WEIGHTS) {
        sum += c.to_digit(10)? * weight;
    }
    CHECK_CHARACTERS.get((sum % 11) as usize).copied()
}

/// Reads a typed number, 15 or 18 characters, with every documented dirt.
pub fn parse(raw: &str) -> Result<ResidentId, ResidentIdError> {
    let number = clean(raw);
    if number.is_empty() {
        return Err(ResidentIdError::Empty);
    }
    // Only ASCII from here on, so byte offsets are character offsets.
    if !number.is_ascii() {
        return Err(ResidentIdError::Character);
    }
    match number.len() {
        15 => parse15(&number),
        18 => parse18(&number),
        _ => Err(ResidentIdError::Length),
    }
}

fn parse18(number: &str) -> Result<ResidentId, ResidentIdError> {
    let first17 = &number[..17];
    let check = char::from(number.as_bytes()[17]);
    if !first17.bytes().all(|b| b.is_ascii_digit()) || !(check.is_ascii_digit() || check == 'X') {
        return Err(ResidentIdError::Character);
    }
    if check_character(first17) != Some(check) {
        return Err(ResidentIdError::CheckCharacter);
    }
    let birth_date = birth_date(&number[6..10], &number[10..12], &number[12..14])?;
    Ok(ResidentId {
        number: number.to_owned(),
        birth_date,
        sex: sex(&number[16..17]),
        was_legacy: false,
    })
}

fn parse15(number: &str) -> Result<ResidentId, ResidentIdError> {
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ResidentIdError::Character);
    }
    let birth_date = birth_date(&format!("19{}", &number[6..8]), &number[8..10], &number[10..12])?;
    let upgraded = upgrade(number).ok_or(ResidentIdError::Character)?;
    Ok(ResidentId {
        number: upgraded,
        birth_date,
        sex: sex(&number[14..15]),
        was_legacy: true,
    })
}

fn birth_date(year: &str, month: &str, day: &str) -> Result<Date, ResidentIdError> {
    let (Ok(year), Ok(month), Ok(day)) = (year.parse::<u16>(), month.parse::<u8>(), day.parse::<u8>()) else {
        return Err(ResidentIdError::BirthDate);
    };
    if !BIRTH_YEARS.contains(&year) {
        return Err(ResidentIdError::BirthDate);
    }
    Date::full(year, month, day).ok_or(ResidentIdError::BirthDate)
}

/// The last digit of the sequence: odd for men, even for women.
fn sex(digit: &str) -> Sex {
    match digit.parse::<u8>() {
        Ok(d) if d % 2 == 1 => Sex::Male,
        _ => Sex::Female,
    }
}

/// The 18-character upgrade of a 15-digit number: `19` inserted before the year and
/// the check character appended. `None` unless given 15 ASCII digits (the birth date
/// is not checked here; [`parse`] does).
pub fn upgrade(number15: &str) -> Option<String> {
    if number15.len() != 15 || !number15.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first17 = format!("{}19{}", &number15[..6], &number15[6..]);
    let check = check_character(&first17)?;
    Some(format!("{first17}{check}"))
}

/// The 15-digit form an 18-character number had before 1999: century and check
/// character dropped. `None` unless the number has 17 digits and a check character,
/// and a birth year 19YY (only those had a 15-digit form).
pub fn downgrade(number18: &str) -> Option<String> {
    if number18.len() != 18 || !number18.is_ascii() || !number18[..17].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if &number18[6..8] != "19" {
        return None;
    }
    Some(format!("{}{}", &number18[..6], &number18[8..17]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from python-stdnum (`stdnum.cn.ric`), generated by `vectors/make_vectors.py`.
    const VECTORS: &str = include_str!("vectors/check_characters.txt");

    fn vectors(kind: &str) -> impl Iterator<Item = Vec<&'static str>> + '_ {
        VECTORS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(move |f| f.first() == Some(&kind))
    }

    #[test]
    fn eighteen_character_numbers_agree_with_stdnum() {
        let (mut valid, mut invalid) = (0, 0);
        for fields in vectors("ric") {
            let [_, number, verdict, rest @ ..] = fields.as_slice() else {
                panic!("bad vector line {fields:?}");
            };
            match *verdict {
                "valid" => {
                    let id = parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
                    assert_eq!(id.number, number.to_uppercase());
                    assert_eq!(id.birth_date.to_string(), rest[0], "{number}");
                    assert_eq!(id.sex.as_str(), rest[1], "{number}");
                    assert!(!id.was_legacy);
                    valid += 1;
                }
                "wrong_check" => {
                    assert_eq!(parse(number), Err(ResidentIdError::CheckCharacter), "{number}");
                    invalid += 1;
                }
                "bad_date" => {
                    assert_eq!(parse(number), Err(ResidentIdError::BirthDate), "{number}");
                    invalid += 1;
                }
                other => panic!("unknown verdict {other}"),
            }
        }
        assert!(
            valid >= 100 && invalid >= 80,
            "{valid} valid, {invalid} invalid vectors"
        );
    }

    #[test]
    fn fifteen_digit_numbers_upgrade_as_stdnum_computes() {
        let mut count = 0;
        for fields in vectors("ric15") {
            let [_, number15, number18] = fields.as_slice() else {
                panic!("bad vector line {fields:?}");
            };
            let id = parse(number15).unwrap_or_else(|e| panic!("{number15}: {e}"));
            assert_eq!(id.number, *number18);
            assert!(id.was_legacy);
            assert_eq!(upgrade(number15).as_deref(), Some(*number18));
            // 15 → 18 → 15 and 18 → 15 → 18.
            assert_eq!(downgrade(number18).as_deref(), Some(*number15));
            assert_eq!(
                upgrade(&downgrade(number18).unwrap_or_default()).as_deref(),
                Some(*number18)
            );
            assert_eq!(parse(number18).map(|i| i.number), Ok(number18.to_string()));
            count += 1;
        }
        assert!(count >= 40, "{count} vectors");
    }

    #[test]
    fn legacy_number_reads_birth_date_and_sex() {
        // 370629 (海阳县), born 1965-08-21, sequence 042 (even: a woman).
        let id = parse("370629650821042").expect("valid");
        assert_eq!(id.birth_date.to_string(), "1965-08-21");
        assert_eq!(id.sex, Sex::Female);
        assert!(id.number.starts_with("37062919650821042") && id.number.len() == 18);
        assert_eq!(parse("370629651321042"), Err(ResidentIdError::BirthDate), "month 13");
        assert_eq!(parse("37062965082104A"), Err(ResidentIdError::Character));
    }

    #[test]
    fn the_dirt_of_real_exports() {
        let id = "11010519491231002X";
        assert!(parse(id).is_ok(), "{id}");
        for typed in [
            " 11010519491231002X",
            "11010519491231002X\u{3000}",
            "\u{3000}110105 19491231002X ",
            "11010519491231002x",
            "１１０１０５１９４９１２３１００２Ｘ",
            "１１０１０５１９４９１２３１００２ｘ",
            "110105\t1949 1231 002X",
        ] {
            assert_eq!(parse(typed).map(|i| i.number), Ok(id.to_owned()), "{typed:?}");
        }
        assert_eq!(parse(""), Err(ResidentIdError::Empty));
        assert_eq!(parse(" \u{3000}"), Err(ResidentIdError::Empty));
        assert_eq!(parse("11010519491231002"), Err(ResidentIdError::Length));
        assert_eq!(parse("110105194912310021X"), Err(ResidentIdError::Length));
        assert_eq!(parse("11010519491231002Y"), Err(ResidentIdError::Character));
        assert_eq!(parse("1101051949123100X2"), Err(ResidentIdError::Character));
        assert_eq!(parse("11010519491231002一"), Err(ResidentIdError::Character));
        assert_eq!(parse("110105194912310020"), Err(ResidentIdError::CheckCharacter));
    }

    #[test]
    fn birth_years_outside_any_living_record_are_malformed() {
        // Valid check characters, impossible years.
        for first17 in ["11010517991231002", "11010521000101002"] {
            let number = format!("{first17}{}", check_character(first17).expect("digits"));
            assert_eq!(parse(&number), Err(ResidentIdError::BirthDate), "{number}");
        }
    }

    #[test]
    fn check_character_needs_seventeen_digits() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100A"), None);
        assert_eq!(
            downgrade("37068720010101001X"),
            None,
            "born in 2001: never had 15 digits"
        );
        assert_eq!(upgrade("37062965082104"), None);
    }

    #[test]
    fn flag_codes() {
        assert_eq!(
            ResidentIdError::CheckCharacter.flag_code(),
            FlagCode::WrongCheckCharacter
        );
        assert_eq!(ResidentIdError::BirthDate.flag_code(), FlagCode::MalformedIdentifier);
        assert_eq!(ResidentIdError::Length.flag_code(), FlagCode::MalformedIdentifier);
    }
}
