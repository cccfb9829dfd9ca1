//! Person and organisation names.
//!
//! Chinese names: NFKC, no white space at all (王 伟 is 王伟), traditional characters
//! simplified (陳 → 陈), and every separator of a transliterated minority name
//! written `·`. Latin names (foreigners, residents of Hong Kong, Macao and Taiwan):
//! upper case and single spaces in the order typed for display; for comparison the
//! parts are sorted, because departments write family and given names in either
//! order. Organisation names: NFKC, no white space, simplified, full-width
//! parentheses.

use std::sync::OnceLock;

use ferrous_opencc::{config::BuiltinConfig, OpenCC};

/// A name as shown, and the form names are compared in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    pub display: String,
    /// Chinese: the display form without `·`; Latin: upper-case parts sorted and
    /// joined by one space; organisations: the display form with Latin letters upper case.
    pub match_name: String,
}

/// The separator of minority name parts (U+00B7 MIDDLE DOT).
pub const NAME_SEPARATOR: char = '·';

/// Separators clerks type between minority name parts, after NFKC (which already
/// turns `．` into `.` and `･` into `・`).
const SEPARATORS: [char; 7] = [
    '·',        // middle dot
    '•',        // bullet
    '.',        // full stop, and the full-width one after NFKC
    '\u{30FB}', // katakana middle dot, as Japanese input methods type it
    '\u{2027}', // hyphenation point, as Taiwanese input methods type it
    '\u{2219}', // bullet operator
    '\u{22C5}', // dot operator
];

/// Traditional → simplified, with OpenCC's dictionaries (phrases first, so that the
/// conversion of a character follows its word).
pub fn to_simplified(text: &str) -> String {
    static T2S: OnceLock<Option<OpenCC>> = OnceLock::new();
    // The dictionaries are compiled into the binary: loading them fails for every
    // input or for none, and a test shows it does not. Without them names are kept as typed.
    match T2S.get_or_init(|| OpenCC::from_config(BuiltinConfig::T2s).ok()) {
        Some(converter) => converter.convert(text),
        None => text.to_owned(),
    }
}

/// Whether a character is a CJK ideograph (a Chinese character).
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'     // extension A
        | '\u{4E00}'..='\u{9FFF}'   // unified ideographs
        | '\u{F900}'..='\u{FAFF}'   // compatibility ideographs
        | '\u{20000}'..='\u{3134F}' // extensions B-G
    )
}

/// A name in Latin letters: some letter, and no Chinese character.
pub fn is_latin(name: &str) -> bool {
    name.chars().any(char::is_alphabetic) && !name.chars().any(is_han)
}

/// A person's name, Chinese or Latin.
pub fn person(raw: &str) -> Name {
    let text = super::nfkc(raw);
    if is_latin(&text) {
        latin(&text)
    } else {
        chinese(&text)
    }
}

fn chinese(text: &str) -> Name {
    let compact: String = super::without_space(text)
        .chars()
        .map(|c| if SEPARATORS.contains(&c) { NAME_SEPARATOR } else { c })
        .collect();
    let simplified = to_simplified(&compact);
    // One separator between two parts, none at either end.
    let display = simplified
        .split(NAME_SEPARATOR)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("·");
    let match_name = display.chars().filter(|&c| c != NAME_SEPARATOR).collect();
    Name { display, match_name }
}

fn latin(text: &str) -> Name {
    // `Kim, Min Jun`: the comma only marks the family name typed first.
    let upper = text.replace(',', " ").to_uppercase();
    let parts: Vec<&str> = upper.split(super::is_space).filter(|p| !p.is_empty()).collect();
    let display = parts.join(" ");
    let mut sorted = parts;
    sorted.sort_unstable();
    Name {
        display,
        match_name: sorted.join(" "),
    }
}

/// An organisation's name.
pub fn organisation(raw: &str) -> Name {
    // NFKC turns full-width parentheses into ASCII ones; they are turned back after.
    let compact = super::without_space(&super::nfkc(raw));
    let display: String = to_simplified(&compact)
        .chars()
        .map(|c| match c {
            '(' => '（',
            ')' => '）',
            c => c,
        })
        .collect();
    let match_name = display.to_ascii_uppercase();
    Name { display, match_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(name: Name) -> (String, String) {
        (name.display, name.match_name)
    }

    fn pair(display: &str, match_name: &str) -> (String, String) {
        (display.to_owned(), match_name.to_owned())
    }

    #[test]
    fn chinese_names_lose_every_space() {
        for typed in [
            "王伟",
            "王 伟",
            "王\u{3000}伟",
            " 王伟 ",
            "\u{3000}王 伟\u{3000}",
            "王  伟",
            "王\t伟",
        ] {
            assert_eq!(display(person(typed)), pair("王伟", "王伟"), "{typed:?}");
        }
        assert_eq!(display(person("欧阳 明")), pair("欧阳明", "欧阳明"));
    }

    #[test]
    fn traditional_characters_are_simplified() {
        assert_eq!(display(person("陳偉")), pair("陈伟", "陈伟"));
        assert_eq!(display(person("陳 偉")), pair("陈伟", "陈伟"));
        assert_eq!(display(person("劉麗華")), pair("刘丽华", "刘丽华"));
        assert_eq!(display(person("鍾靜")), pair("钟静", "钟静"));
        assert_eq!(to_simplified("海陽市"), "海阳市", "the converter loaded");
        assert_eq!(display(person("张三")), pair("张三", "张三"), "simplified stays");
    }

    #[test]
    fn minority_separators_become_one_middle_dot() {
        for typed in [
            "买买提·吐尔逊",
            "买买提•吐尔逊",
            "买买提．吐尔逊",
            "买买提.吐尔逊",
            "买买提\u{30FB}吐尔逊",
            "买买提\u{FF65}吐尔逊",
            "买买提\u{2027}吐尔逊",
            "买买提 · 吐尔逊",
            "买买提··吐尔逊",
            "·买买提·吐尔逊.",
            "買買提·吐爾遜",
        ] {
            assert_eq!(
                display(person(typed)),
                pair("买买提·吐尔逊", "买买提吐尔逊"),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn latin_names_in_either_order_and_any_case() {
        let family_first = [
            "KIM MIN JUN",
            "Kim Min Jun",
            "kim min jun",
            "Kim, Min Jun",
            " KIM  MIN\u{3000}JUN ",
        ];
        for typed in family_first {
            assert_eq!(display(person(typed)), pair("KIM MIN JUN", "JUN KIM MIN"), "{typed:?}");
        }
        for typed in ["MIN JUN KIM", "Min Jun Kim", "ＭＩＮ ＪＵＮ ＫＩＭ"] {
            assert_eq!(display(person(typed)), pair("MIN JUN KIM", "JUN KIM MIN"), "{typed:?}");
        }
        assert_eq!(
            display(person("O'Brien, Mary-Jane")),
            pair("O'BRIEN MARY-JANE", "MARY-JANE O'BRIEN")
        );
        assert_eq!(display(person("Chan Tai Man")).1, display(person("TAI MAN CHAN")).1);
    }

    #[test]
    fn organisation_names_with_either_parentheses() {
        let canonical = "海阳市某某（集团）有限公司";
        for typed in [
            "海阳市某某（集团）有限公司",
            "海阳市某某(集团)有限公司",
            "海阳市某某（集团)有限公司 ",
            " 海阳市某某 (集团) 有限公司\u{3000}",
            "海陽市某某(集團)有限公司",
        ] {
            assert_eq!(display(organisation(typed)), pair(canonical, canonical), "{typed:?}");
        }
        assert_eq!(
            display(organisation("ａｂｃ商贸有限公司")),
            pair("abc商贸有限公司", "ABC商贸有限公司")
        );
    }

    #[test]
    fn empty_names_stay_empty() {
        assert_eq!(person(" \u{3000}"), Name::default());
        assert_eq!(person("·"), Name::default());
        assert_eq!(organisation(""), Name::default());
    }
}
