//! Amounts of money with their unit in the text (`500万元人民币`, `50万美元`,
//! `5000.00`), and shares of a title (`50%`, `1/2`).
//!
//! Money is written `<decimal> <ISO 4217 code>`: `5000000 CNY`. The decimal is exact
//! (the arithmetic is done on the digits, never in floating point) and canonical:
//! no leading zeros, no trailing zeros after the point and no point when nothing
//! follows it, so `5000.00` and `5000` are both `5000 CNY` and compare equal. A plain
//! number is yuan. Shares are a decimal between 0 and 1: `0.5`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    Cny,
    Usd,
    Hkd,
    Eur,
    Jpy,
}

impl Currency {
    /// ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
            Currency::Hkd => "HKD",
            Currency::Eur => "EUR",
            Currency::Jpy => "JPY",
        }
    }
}

/// Currency words after the number (and its 万 / 亿), parentheses removed.
const CURRENCY_WORDS: [(&str, Currency); 11] = [
    ("", Currency::Cny),
    ("元", Currency::Cny),
    ("人民币", Currency::Cny),
    ("元人民币", Currency::Cny),
    ("人民币元", Currency::Cny),
    ("美元", Currency::Usd),
    ("港元", Currency::Hkd),
    ("港币", Currency::Hkd),
    ("欧元", Currency::Eur),
    ("日元", Currency::Jpy),
    ("日币", Currency::Jpy),
];

/// An exact amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    /// Canonical decimal, e.g. `5000000`, `1234.5`.
    pub value: String,
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.currency.code())
    }
}

/// What a [`crate::model::RawFact::Amount`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Amount {
    Money(Money),
    /// Canonical decimal in [0, 1].
    Share(String),
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Money(money) => money.fmt(f),
            Amount::Share(share) => f.write_str(share),
        }
    }
}

/// Why an amount could not be read. Messages never quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    /// No number where one was expected.
    Number,
    /// A unit or currency word we do not know.
    Unit,
    /// A share above 1, or a fraction over 0.
    Share,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::Empty => "amount is empty",
            AmountError::Number => "amount has no readable number",
            AmountError::Unit => "amount has a unit or currency that is not known",
            AmountError::Share => "share is not between 0 and 1",
        })
    }
}

/// Digits of a decimal with the number of them after the point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    digits: String,
    scale: usize,
}

impl Decimal {
    /// Leading ASCII digits with an optional fraction; the rest of the text after them.
    fn read(text: &str) -> Option<(Decimal, &str)> {
        let integer_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (integer, rest) = text.split_at(integer_end);
        let (fraction, rest) = match rest.strip_prefix('.') {
            Some(after) => {
                let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
                after.split_at(end)
            }
            None => ("", rest),
        };
        if integer.is_empty() && fraction.is_empty() {
            return None;
        }
        let digits = format!("{integer}{fraction}");
        Some((
            Decimal {
                digits,
                scale: fraction.len(),
            },
            rest,
        ))
    }

    /// Multiplied by 10^exponent.
    fn shifted_left(mut self, exponent: usize) -> Decimal {
        if exponent <= self.scale {
            self.scale -= exponent;
        } else {
            self.digits.push_str(&"0".repeat(exponent - self.scale));
            self.scale = 0;
        }
        self
    }

    /// Divided by 10^exponent.
    fn shifted_right(mut self, exponent: usize) -> Decimal {
        self.scale += exponent;
        self
    }

    /// `0` for zero, no leading zeros, no trailing fractional zeros, no bare point.
    fn canonical(&self) -> String {
        let padded = if self.digits.len() <= self.scale {
            format!("{}{}", "0".repeat(self.scale + 1 - self.digits.len()), self.digits)
        } else {
            self.digits.clone()
        };
        let (integer, fraction) = padded.split_at(padded.len() - self.scale);
        let integer = integer.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        if fraction.is_empty() {
            integer.to_owned()
        } else {
            format!("{integer}.{fraction}")
        }
    }
}

fn compact(raw: &str) -> String {
    // Thousands separators (5,000.00) go with the white space.
    super::without_space(&super::nfkc(raw)).replace(',', "")
}

/// Reads an amount of money: a number, an optional multiplier (十 百 千 万 亿, as in
/// 万元, 千万元) and a currency (元 人民币 美元 港元 欧元 日元; none means yuan).
pub fn parse_money(raw: &str) -> Result<Money, AmountError> {
    let text = compact(raw);
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    // 人民币 or ¥ may stand before the number as well.
    let (text, prefixed_cny) = match text.strip_prefix("人民币").or_else(|| text.strip_prefix('¥')) {
        Some(rest) => (rest, true),
        None => (text.as_str(), false),
    };
    let (number, rest) = Decimal::read(text).ok_or(AmountError::Number)?;
    let mut exponent = 0;
    let mut unit = rest;
    while let Some(c) = unit.chars().next() {
        let step = match c {
            '十' => 1,
            '百' => 2,
            '千' => 3,
            '万' => 4,
            '亿' => 8,
            _ => break,
        };
        exponent += step;
        unit = &unit[c.len_utf8()..];
    }
    let unit: String = unit.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    let currency = CURRENCY_WORDS
        .iter()
        .find(|(word, _)| *word == unit)
        .map(|&(_, currency)| currency)
        .ok_or(AmountError::Unit)?;
    if prefixed_cny && currency != Currency::Cny {
        return Err(AmountError::Unit);
    }
    Ok(Money {
        value: number.shifted_left(exponent).canonical(),
        currency,
    })
}

/// Digits after the point a share is rounded to when a fraction has no finite
/// decimal (1/3 → 0.333333): a millionth of a title is below any registered share.
pub const SHARE_DECIMALS: u32 = 6;

/// Reads a share: `50%`, `33.33%`, `1/2`, `1/3` (rounded half up to
/// [`SHARE_DECIMALS`] places when it has no exact decimal), or a plain `0.5`.
pub fn parse_share(raw: &str) -> Result<String, AmountError> {
    let text = compact(raw);
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let share = if let Some(percent) = text.strip_suffix('%') {
        match Decimal::read(percent) {
            Some((number, "")) => number.shifted_right(2),
            _ => return Err(AmountError::Number),
        }
    } else if let Some((numerator, denominator)) = text.split_once('/') {
        fraction(numerator, denominator)?
    } else {
        match Decimal::read(&text) {
            Some((number, "")) => number,
            _ => return Err(AmountError::Number),
        }
    };
    let canonical = share.canonical();
    // At most 1: the integer part is 0, or it is 1 with nothing after it.
    if canonical == "1" || canonical.starts_with('0') {
        Ok(canonical)
    } else {
        Err(AmountError::Share)
    }
}

fn fraction(numerator: &str, denominator: &str) -> Result<Decimal, AmountError> {
    let whole = |s: &str| -> Result<u128, AmountError> {
        if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Number);
        }
        s.parse().map_err(|_| AmountError::Number)
    };
    let (numerator, denominator) = (whole(numerator)?, whole(denominator)?);
    if denominator == 0 {
        return Err(AmountError::Share);
    }
    // Rounded half up: (2·n·10^k + d) / (2·d).
    let scale = 10u128.pow(SHARE_DECIMALS);
    let scaled = (2 * numerator * scale + denominator) / (2 * denominator);
    Ok(Decimal {
        digits: scaled.to_string(),
        scale: SHARE_DECIMALS as usize,
    })
}

/// Reads a [`crate::model::RawFact::Amount`]: a share when it ends with `%` or is a
/// fraction, money otherwise.
pub fn parse(raw: &str) -> Result<Amount, AmountError> {
    let text = compact(raw);
    if text.ends_with('%') || text.contains('/') {
        parse_share(&text).map(Amount::Share)
    } else {
        parse_money(&text).map(Amount::Money)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> String {
        parse(raw).map_or_else(|e| format!("{e:?}"), |a| a.to_string())
    }

    #[test]
    fn registered_capital_as_the_market_writes_it() {
        assert_eq!(read("500万元人民币"), "5000000 CNY");
        assert_eq!(read("500万元"), "5000000 CNY");
        assert_eq!(read("5000000元"), "5000000 CNY");
        assert_eq!(read("50万美元"), "500000 USD");
        assert_eq!(read("1.5亿元"), "150000000 CNY");
        assert_eq!(read("0.5万元"), "5000 CNY");
        assert_eq!(read("12.3456万元"), "123456 CNY");
        assert_eq!(read("12.34567万元"), "123456.7 CNY", "no rounding");
        assert_eq!(read("100万港元"), "1000000 HKD");
        assert_eq!(read("20万欧元"), "200000 EUR");
        assert_eq!(read("3000万日元"), "30000000 JPY");
        assert_eq!(read("1千万元"), "10000000 CNY");
        assert_eq!(read("人民币500万元"), "5000000 CNY");
        assert_eq!(read("500万元(人民币)"), "5000000 CNY");
        assert_eq!(read("５００万元人民币 "), "5000000 CNY");
        assert_eq!(read(" 500 万元 "), "5000000 CNY");
    }

    #[test]
    fn plain_yuan() {
        assert_eq!(read("5000.00"), "5000 CNY");
        assert_eq!(read("5000"), "5000 CNY");
        assert_eq!(read("5,000.50"), "5000.5 CNY");
        assert_eq!(read("0.10"), "0.1 CNY");
        assert_eq!(read("0.00"), "0 CNY");
        assert_eq!(read("007"), "7 CNY");
        assert_eq!(read(".5"), "0.5 CNY");
        assert_eq!(read("¥1200"), "1200 CNY");
        // Exact where f64 is not: 0.1 + 0.2 style digits survive.
        assert_eq!(read("12345678901234567.89"), "12345678901234567.89 CNY");
        assert_eq!(read("0.3亿元"), "30000000 CNY");
    }

    #[test]
    fn shares_as_percentages_and_fractions() {
        assert_eq!(read("50%"), "0.5");
        assert_eq!(read("1/2"), "0.5");
        assert_eq!(read("100%"), "1");
        assert_eq!(read("1/1"), "1");
        assert_eq!(read("34%"), "0.34");
        assert_eq!(read("33.33%"), "0.3333");
        assert_eq!(read("5%"), "0.05");
        assert_eq!(read("1/4"), "0.25");
        assert_eq!(read("1/3"), "0.333333");
        assert_eq!(read("2/3"), "0.666667", "rounded half up");
        assert_eq!(read("0/2"), "0");
        assert_eq!(read("５０％"), "0.5");
        assert_eq!(read(" 1 / 2 "), "0.5");
        assert_eq!(parse_share("0.5"), Ok("0.5".into()));
    }

    #[test]
    fn what_cannot_be_read() {
        assert_eq!(parse(""), Err(AmountError::Empty));
        assert_eq!(parse(" \u{3000}"), Err(AmountError::Empty));
        assert_eq!(parse("万元"), Err(AmountError::Number));
        assert_eq!(parse("五百万元"), Err(AmountError::Number));
        assert_eq!(parse("-500万元"), Err(AmountError::Number));
        assert_eq!(parse("500万英镑"), Err(AmountError::Unit));
        assert_eq!(parse("500万元整左右"), Err(AmountError::Unit));
        assert_eq!(parse("人民币50万美元"), Err(AmountError::Unit));
        assert_eq!(parse("1.2.3万元"), Err(AmountError::Unit));
        assert_eq!(parse("150%"), Err(AmountError::Share));
        assert_eq!(parse("3/2"), Err(AmountError::Share));
        assert_eq!(parse("1/0"), Err(AmountError::Share));
        assert_eq!(parse("1/"), Err(AmountError::Number));
        assert_eq!(parse("a/b"), Err(AmountError::Number));
        assert_eq!(parse("%"), Err(AmountError::Number));
        assert_eq!(parse("50%%"), Err(AmountError::Number));
        assert_eq!(parse_money("50%"), Err(AmountError::Unit));
    }
}
