//! Addresses, without the 山东省烟台市海阳市 that some clerks type and others do not.
//!
//! NFKC (full-width digits), no white space (but one space between two Latin words
//! or numbers, so that a foreigner's address keeps its words), `#` read as 号, and
//! the leading province, city and county-level city removed, any of them, in that
//! order.
//! `山东` and `烟台` without 省 / 市 are removed only when the next prefix follows
//! (`山东烟台市`, `烟台海阳市`): alone they may begin a street's name (烟台路).

/// Reads a typed address. Never fails; an empty address stays empty.
pub fn normalise(raw: &str) -> String {
    let compact: String = latin_words_apart(&super::nfkc(raw))
        .chars()
        .map(|c| if c == '#' { '号' } else { c })
        .collect();
    let mut rest = compact.as_str();
    rest = strip(rest, &["山东省"], "山东", &["烟台", "海阳市"]);
    rest = strip(rest, &["烟台市"], "烟台", &["海阳市"]);
    rest = strip(rest, &["海阳市"], "", &[]);
    rest.to_owned()
}

/// Without white space, except one space where it stood between two Latin letters or
/// digits (`7 Wallaby Place` stays readable; `海阳路 12 号` becomes `海阳路12号`).
fn latin_words_apart(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space_before = false;
    for c in text.chars() {
        if super::is_space(c) {
            space_before = true;
            continue;
        }
        let after_word = out.chars().next_back().is_some_and(|p| p.is_ascii_alphanumeric());
        if space_before && after_word && c.is_ascii_alphanumeric() {
            out.push(' ');
        }
        space_before = false;
        out.push(c);
    }
    out
}

/// Removes one of `full` prefixes, or `short` when one of `followed_by` comes next;
/// never everything (an address that is only `海阳市` stays that).
fn strip<'a>(text: &'a str, full: &[&str], short: &str, followed_by: &[&str]) -> &'a str {
    let stripped = full.iter().find_map(|p| text.strip_prefix(p)).or_else(|| {
        let rest = text.strip_prefix(short).filter(|_| !short.is_empty())?;
        followed_by.iter().any(|f| rest.starts_with(f)).then_some(rest)
    });
    match stripped {
        Some(rest) if !rest.is_empty() => rest,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_in_any_subset() {
        let canonical = "凤城街道海河路12号3号楼2单元501室";
        for typed in [
            "凤城街道海河路12号3号楼2单元501室",
            "海阳市凤城街道海河路12号3号楼2单元501室",
            "烟台市海阳市凤城街道海河路12号3号楼2单元501室",
            "山东省烟台市海阳市凤城街道海河路12号3号楼2单元501室",
            "山东省海阳市凤城街道海河路12号3号楼2单元501室",
            "山东省烟台市凤城街道海河路12号3号楼2单元501室",
            "山东烟台海阳市凤城街道海河路12号3号楼2单元501室",
            "山东海阳市凤城街道海河路12号3号楼2单元501室",
            "烟台海阳市凤城街道海河路12号3号楼2单元501室",
        ] {
            assert_eq!(normalise(typed), canonical, "{typed}");
        }
    }

    #[test]
    fn hash_full_width_digits_and_white_space() {
        let canonical = "郭城镇东庄村12号";
        for typed in [
            "郭城镇东庄村12#",
            "郭城镇东庄村１２号",
            "郭城镇东庄村１２＃",
            " 海阳市郭城镇东庄村12号\u{3000}",
            "山东省 烟台市 海阳市 郭城镇 东庄村 12 号",
        ] {
            assert_eq!(normalise(typed), canonical, "{typed:?}");
        }
    }

    #[test]
    fn latin_words_keep_one_space_between_them() {
        assert_eq!(
            normalise("  7  Wallaby Place,\tDelmar ,  Cleveland SA 2119 "),
            "7 Wallaby Place,Delmar,Cleveland SA 2119"
        );
        assert_eq!(normalise("海阳路 12 号 Block A"), "海阳路12号Block A");
    }

    #[test]
    fn what_is_not_a_prefix_stays() {
        assert_eq!(normalise("烟台路12号"), "烟台路12号", "a street named after the city");
        assert_eq!(normalise("山东路3号"), "山东路3号");
        assert_eq!(normalise("海阳市"), "海阳市", "nothing would be left");
        assert_eq!(normalise("山东省烟台市海阳市"), "海阳市");
        assert_eq!(
            normalise("烟台市芝罘区南大街1号"),
            "芝罘区南大街1号",
            "elsewhere in Yantai"
        );
        assert_eq!(normalise("北京市海淀区中关村大街1号"), "北京市海淀区中关村大街1号");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("海阳市海阳市凤城街道"), "海阳市凤城街道", "only one of each");
    }
}
