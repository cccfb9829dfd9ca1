//! Phone numbers: mobiles as their 11 digits, landlines as `0535-xxxxxxx`.
//!
//! Clerks type country codes (+86, 0086, 86), spaces, hyphens, parentheses around
//! the area code, and often leave out Haiyang's own area code 0535.

use std::fmt;

/// Haiyang's (Yantai's) area code, assumed where a landline is typed without one.
pub const HOME_AREA_CODE: &str = "0535";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Phone {
    /// 11 digits starting with 1.
    Mobile(String),
    /// Area code with its leading 0, and a local number of 7 or 8 digits.
    Landline { area: String, local: String },
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phone::Mobile(number) => f.write_str(number),
            Phone::Landline { area, local } => write!(f, "{area}-{local}"),
        }
    }
}

/// Why a phone number could not be read. Messages never quote the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneError {
    Empty,
    /// Neither a mobile nor a landline (a foreign number, an extension, two numbers, ...).
    Unreadable,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneError::Empty => "phone number is empty",
            PhoneError::Unreadable => "phone number is neither a mobile (11 digits) nor a landline",
        })
    }
}

/// Reads a typed phone number.
pub fn parse(raw: &str) -> Result<Phone, PhoneError> {
    let text: String = super::nfkc(raw)
        .chars()
        .filter(|&c| !super::is_space(c) && !super::is_hyphen(c) && !matches!(c, '(' | ')'))
        .collect();
    if text.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (digits, international) = if let Some(rest) = text.strip_prefix("+86") {
        (rest, true)
    } else if let Some(rest) = text.strip_prefix("0086") {
        (rest, true)
    } else {
        (text.as_str(), false)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PhoneError::Unreadable);
    }
    // 86 without + or 00 before a mobile: 13 digits starting 861.
    let digits = match digits.strip_prefix("86") {
        Some(mobile) if !international && mobile.len() == 11 && mobile.starts_with('1') => mobile,
        _ => digits,
    };
    if digits.len() == 11 && digits.starts_with('1') {
        return Ok(Phone::Mobile(digits.to_owned()));
    }
    // After a country code the area code loses its trunk 0: +86 535 ...
    let digits = if international && !digits.starts_with('0') {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    if let Some(rest) = digits.strip_prefix('0') {
        // Beijing (010) and the big cities (02x) have 3-digit area codes, all others 4.
        let area_length = if rest.starts_with('1') || rest.starts_with('2') {
            3
        } else {
            4
        };
        if digits.len() <= area_length {
            return Err(PhoneError::Unreadable);
        }
        let (area, local) = digits.split_at(area_length);
        return landline(area, local);
    }
    if international {
        return Err(PhoneError::Unreadable);
    }
    landline(HOME_AREA_CODE, &digits)
}

/// Local numbers have 7 or 8 digits and never start with 0 or 1.
fn landline(area: &str, local: &str) -> Result<Phone, PhoneError> {
    if (7..=8).contains(&local.len()) && !local.starts_with(['0', '1']) {
        Ok(Phone::Landline {
            area: area.to_owned(),
            local: local.to_owned(),
        })
    } else {
        Err(PhoneError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> String {
        parse(raw).map_or_else(|e| format!("{e:?}"), |p| p.to_string())
    }

    #[test]
    fn mobiles_with_country_codes_spaces_and_hyphens() {
        for typed in [
            "13812345678",
            "+86 13812345678",
            "+8613812345678",
            "0086 13812345678",
            "008613812345678",
            "8613812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+86-138-1234-5678",
            "１３８１２３４５６７８",
            "\u{3000}13812345678 ",
            "(+86)13812345678",
        ] {
            assert_eq!(read(typed), "13812345678", "{typed:?}");
        }
    }

    #[test]
    fn landlines_with_and_without_the_area_code() {
        for typed in [
            "0535-4561234",
            "05354561234",
            "0535 4561234",
            "(0535)4561234",
            "（0535）4561234",
            "4561234",
            "456 1234",
            "+86 535 4561234",
            "0086-535-4561234",
            "+86 0535 4561234",
        ] {
            assert_eq!(read(typed), "0535-4561234", "{typed:?}");
        }
        assert_eq!(read("45612345"), "0535-45612345", "8-digit local number");
        assert_eq!(read("010-62345678"), "010-62345678", "Beijing keeps its own area code");
        assert_eq!(read("021 62345678"), "021-62345678");
        assert_eq!(read("0531-86123456"), "0531-86123456", "Jinan");
        assert_eq!(read("+86 10 62345678"), "010-62345678");
    }

    #[test]
    fn what_is_no_phone() {
        assert_eq!(parse(""), Err(PhoneError::Empty));
        assert_eq!(parse(" - "), Err(PhoneError::Empty));
        for typed in [
            "1381234567",
            "138123456789",
            "23812345678",
            "0535-456123",
            "0535-456123456",
            "0535-0561234",
            "0535-4561234-801",
            "0535-4561234转801",
            "13812345678/13912345678",
            "+1 415 5550123",
            "+86",
            "0535",
            "123456",
            "1234567",
            "无",
        ] {
            assert_eq!(parse(typed), Err(PhoneError::Unreadable), "{typed:?}");
        }
    }
}
