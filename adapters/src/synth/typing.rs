//! How people type: the documented dirt of the departments' exports (white space,
//! full-width characters, 15-digit numbers, wrong check digits, ...). Department
//! writers call these with their own rates.

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
