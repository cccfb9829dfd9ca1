//! Dates in every format the departments write, and Beijing-time milliseconds.
//!
//! Output is `YYYY-MM-DD`, or `YYYY-MM` where only year and month are known (the
//! housing fund's 出生年月). A time of day is read only to be sure it is one, then
//! dropped: every date attribute and fact is a calendar date.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::calendar::civil_from_days;
use crate::model::RawDate;

/// A calendar date, or a year and month where the day is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    /// `None` for a year-month date.
    pub day: Option<u8>,
}

/// The years a typed date may have: four digits, and no earlier than any record a
/// department keeps could mean (a year 0012 is a typo, not a date).
const YEARS: std::ops::RangeInclusive<u16> = 1000..=9999;

impl Date {
    /// A full date, if it exists in the Gregorian calendar.
    pub fn full(year: u16, month: u8, day: u8) -> Option<Date> {
        (YEARS.contains(&year) && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(
            Date {
                year,
                month,
                day: Some(day),
            },
        )
    }

    /// A year and month without a day.
    pub fn year_month(year: u16, month: u8) -> Option<Date> {
        (YEARS.contains(&year) && (1..=12).contains(&month)).then_some(Date { year, month, day: None })
    }

    /// Whether two dates can be the same day: a year-month date agrees with every day
    /// of its month.
    pub fn agrees_with(&self, other: &Date) -> bool {
        match (self.day, other.day) {
            (Some(a), Some(b)) => (self.year, self.month, a) == (other.year, other.month, b),
            _ => (self.year, self.month) == (other.year, other.month),
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.day {
            Some(day) => write!(f, "{:04}-{:02}-{:02}", self.year, self.month, day),
            None => write!(f, "{:04}-{:02}", self.year, self.month),
        }
    }
}

/// Why a date could not be read. The messages never quote the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Nothing but white space: the department does not know the date.
    Empty,
    /// Not in any format the departments use.
    Format,
    /// In a known format, but no such day (`2023-02-30`), or a year out of range.
    NoSuchDay,
    /// A time of day that is no time (`25:00`).
    Time,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateError::Empty => "date is empty",
            DateError::Format => "date is in none of the departments' formats",
            DateError::NoSuchDay => "date does not exist in the calendar",
            DateError::Time => "time of day after the date is not a time",
        })
    }
}

pub fn is_leap_year(year: u16) -> bool {
    // Written with remainders rather than is_multiple_of, which needs Rust 1.87 (the
    // workspace declares 1.85).
    match (year % 4, year % 100, year % 400) {
        (_, _, 0) => true,
        (_, 0, _) => false,
        (r, _, _) => r == 0,
    }
}

/// Days in a month (0 for a month that does not exist).
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Reads a date as an adapter passed it on.
pub fn parse(raw: &RawDate) -> Result<Date, DateError> {
    match raw {
        RawDate::Text(text) => parse_text(text),
        RawDate::BeijingMillis(ms) => from_beijing_millis(*ms),
    }
}

/// Reads any of the departments' text formats: `YYYYMMDD`, `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM:SS`, `YYYY.MM.DD`, `YYYY/M/D`, `YYYY年M月D日`, `YYYYMM` (and the
/// year-month forms `YYYY-MM`, `YYYY年M月`). Full-width digits and stray white space
/// are tolerated.
pub fn parse_text(raw: &str) -> Result<Date, DateError> {
    let text: String = raw.nfkc().collect();
    let text = text.trim_matches(super::is_space);
    if text.is_empty() {
        return Err(DateError::Empty);
    }
    let date_part = match text.find(':') {
        Some(colon) => {
            // The time starts with the digits just before the first colon.
            let start = text[..colon].trim_end_matches(|c: char| c.is_ascii_digit()).len();
            check_time(&text[start..])?;
            text[..start].trim_end_matches(|c: char| super::is_space(c) || c == 'T')
        }
        None => text,
    };
    let compact = super::without_space(date_part);
    read_compact(&compact)
}

fn read_compact(s: &str) -> Result<Date, DateError> {
    if s.chars().all(|c| c.is_ascii_digit()) {
        return match s.len() {
            8 => full(&s[..4], &s[4..6], &s[6..]),
            6 => year_month(&s[..4], &s[4..]),
            _ => Err(DateError::Format),
        };
    }
    if let Some((year, rest)) = s.split_once('年') {
        let (month, rest) = rest.split_once('月').ok_or(DateError::Format)?;
        return if rest.is_empty() {
            year_month(year, month)
        } else {
            // 日 is sometimes left off.
            full(year, month, rest.strip_suffix('日').unwrap_or(rest))
        };
    }
    let separator = s
        .chars()
        .find(|c| matches!(c, '-' | '.' | '/'))
        .ok_or(DateError::Format)?;
    let parts: Vec<&str> = s.split(separator).collect();
    match parts.as_slice() {
        [year, month, day] => full(year, month, day),
        [year, month] => year_month(year, month),
        _ => Err(DateError::Format),
    }
}

fn full(year: &str, month: &str, day: &str) -> Result<Date, DateError> {
    let (year, month, day) = (number(year, 4..=4)?, number(month, 1..=2)?, number(day, 1..=2)?);
    let (Ok(year), Ok(month), Ok(day)) = (u16::try_from(year), u8::try_from(month), u8::try_from(day)) else {
        return Err(DateError::NoSuchDay);
    };
    Date::full(year, month, day).ok_or(DateError::NoSuchDay)
}

fn year_month(year: &str, month: &str) -> Result<Date, DateError> {
    let (year, month) = (number(year, 4..=4)?, number(month, 1..=2)?);
    let (Ok(year), Ok(month)) = (u16::try_from(year), u8::try_from(month)) else {
        return Err(DateError::NoSuchDay);
    };
    Date::year_month(year, month).ok_or(DateError::NoSuchDay)
}

/// A run of ASCII digits of an allowed length.
fn number(s: &str, lengths: std::ops::RangeInclusive<usize>) -> Result<u32, DateError> {
    if !lengths.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DateError::Format);
    }
    s.parse().map_err(|_| DateError::Format)
}

/// `H:MM`, `HH:MM:SS` or `HH:MM:SS.fff`, each part in range.
fn check_time(s: &str) -> Result<(), DateError> {
    let s = super::without_space(s);
    let (clock, fraction) = s.split_once('.').unwrap_or((&s, "0"));
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DateError::Time);
    }
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(DateError::Time);
    }
    let limits = [24, 60, 60];
    for (i, (part, limit)) in parts.iter().zip(limits).enumerate() {
        let lengths = if i == 0 { 1..=2 } else { 2..=2 };
        match number(part, lengths) {
            Ok(n) if n < limit => {}
            _ => return Err(DateError::Time),
        }
    }
    Ok(())
}

const MILLIS_PER_DAY: i64 = 86_400_000;
const BEIJING_OFFSET_MILLIS: i64 = 8 * 3_600_000;

/// The Beijing calendar date (UTC+8, no daylight saving since 1991) of a Unix time
/// in milliseconds.
pub fn from_beijing_millis(ms: i64) -> Result<Date, DateError> {
    let local = ms.checked_add(BEIJING_OFFSET_MILLIS).ok_or(DateError::NoSuchDay)?;
    let (year, month, day) = civil_from_days(local.div_euclid(MILLIS_PER_DAY));
    let (Ok(year), Ok(month), Ok(day)) = (u16::try_from(year), u8::try_from(month), u8::try_from(day)) else {
        return Err(DateError::NoSuchDay);
    };
    Date::full(year, month, day).ok_or(DateError::NoSuchDay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        parse_text(s)
            .map(|d| d.to_string())
            .unwrap_or_else(|e| format!("{e:?}"))
    }

    #[test]
    fn every_department_format() {
        assert_eq!(text("20240305"), "2024-03-05", "tax djrq");
        assert_eq!(text("2024-03-05"), "2024-03-05", "hrss csrq");
        assert_eq!(text("2024-03-05 14:07:09"), "2024-03-05", "real estate djsj");
        assert_eq!(text("2024.03.05"), "2024-03-05", "civil djrq");
        assert_eq!(text("2024/3/5"), "2024-03-05", "housing fund khrq");
        assert_eq!(text("2024/12/25"), "2024-12-25");
        assert_eq!(text("2024年3月5日"), "2024-03-05", "market clrq");
        assert_eq!(text("2024年11月25日"), "2024-11-25");
        assert_eq!(text("198507"), "1985-07", "housing fund csny");
        assert_eq!(text("1985-07"), "1985-07");
        assert_eq!(text("1985年7月"), "1985-07");
    }

    #[test]
    fn full_width_digits_and_stray_white_space() {
        assert_eq!(text("２０２４０３０５"), "2024-03-05");
        assert_eq!(text("２０２４年３月５日"), "2024-03-05");
        assert_eq!(text(" 2024.03.05\u{3000}"), "2024-03-05");
        assert_eq!(text("\u{3000}2024-03-05  14:07:09 "), "2024-03-05");
        assert_eq!(text("2024 年 3 月 5 日"), "2024-03-05");
        assert_eq!(text("2024-03-05T14:07:09"), "2024-03-05");
        assert_eq!(text("2024-03-05 9:07"), "2024-03-05");
        assert_eq!(text("１９８５０７ "), "1985-07");
    }

    #[test]
    fn days_that_do_not_exist() {
        for bad in [
            "20230229",
            "2023-02-29",
            "2024/2/30",
            "2024年13月1日",
            "2024.04.31",
            "20240000",
            "202413",
            "00000101",
        ] {
            assert_eq!(parse_text(bad), Err(DateError::NoSuchDay), "{bad}");
        }
        assert_eq!(text("20240229"), "2024-02-29", "leap year");
        assert_eq!(text("2000-02-29"), "2000-02-29", "divisible by 400");
        assert_eq!(parse_text("1900-02-29"), Err(DateError::NoSuchDay), "divisible by 100");
    }

    #[test]
    fn what_is_no_date() {
        assert_eq!(parse_text(""), Err(DateError::Empty));
        assert_eq!(parse_text(" \u{3000} "), Err(DateError::Empty));
        for bad in [
            "2024",
            "2024030",
            "2024-03-05-01",
            "2024-3.5",
            "yesterday",
            "24-03-05",
            "2024/03/0x",
            "2024年3日",
        ] {
            assert_eq!(parse_text(bad), Err(DateError::Format), "{bad}");
        }
        assert_eq!(parse_text("2024-03-05 25:00:00"), Err(DateError::Time));
        assert_eq!(parse_text("2024-03-05 12:60"), Err(DateError::Time));
        assert_eq!(parse_text("2024-03-05 12:00:00."), Err(DateError::Time));
    }

    #[test]
    fn beijing_millis_near_midnight_utc() {
        // 2024-03-04T15:59:59.999Z is 23:59:59.999 in Beijing; one ms later it is the 5th.
        let midnight_beijing = 1_709_568_000_000; // 2024-03-04T16:00:00Z
        assert_eq!(
            from_beijing_millis(midnight_beijing - 1).map(|d| d.to_string()),
            Ok("2024-03-04".into())
        );
        assert_eq!(
            from_beijing_millis(midnight_beijing).map(|d| d.to_string()),
            Ok("2024-03-05".into())
        );
        // Midnight UTC is already 08:00 in Beijing: the same Beijing day.
        let midnight_utc = 1_709_596_800_000; // 2024-03-05T00:00:00Z
        assert_eq!(
            from_beijing_millis(midnight_utc - 1).map(|d| d.to_string()),
            Ok("2024-03-05".into())
        );
        assert_eq!(
            from_beijing_millis(midnight_utc).map(|d| d.to_string()),
            Ok("2024-03-05".into())
        );
        assert_eq!(
            parse(&RawDate::BeijingMillis(0)).map(|d| d.to_string()),
            Ok("1970-01-01".into())
        );
        assert_eq!(
            from_beijing_millis(-BEIJING_OFFSET_MILLIS - 1).map(|d| d.to_string()),
            Ok("1969-12-31".into()),
            "before the epoch"
        );
        assert_eq!(
            from_beijing_millis(951_753_600_000).map(|d| d.to_string()),
            Ok("2000-02-29".into())
        );
        assert_eq!(from_beijing_millis(i64::MAX), Err(DateError::NoSuchDay));
        assert_eq!(from_beijing_millis(i64::MIN), Err(DateError::NoSuchDay));
    }

    #[test]
    fn civil_days_agree_with_a_day_by_day_count() {
        // Walk the calendar forward from 1970-01-01 for 60 years, leap days included.
        let (mut year, mut month, mut day) = (1970u16, 1u8, 1u8);
        for days in 0..(60 * 366) {
            assert_eq!(
                civil_from_days(days),
                (i64::from(year), i64::from(month), i64::from(day))
            );
            day += 1;
            if day > days_in_month(year, month) {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[test]
    fn year_month_agrees_with_its_days() {
        let ym = Date::year_month(1985, 7).expect("valid");
        let day = Date::full(1985, 7, 31).expect("valid");
        assert!(ym.agrees_with(&day) && day.agrees_with(&ym));
        assert!(!ym.agrees_with(&Date::full(1985, 8, 1).expect("valid")));
        assert!(!day.agrees_with(&Date::full(1985, 7, 30).expect("valid")));
    }
}
