//! What probabilistic matching compares: the [`Profile`] of a mention or of a whole
//! entity (every value its mentions gave), and the blocking keys that find an entity's
//! plausible candidates cheaply from an index.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tongban_adapters::model::{Attribute, EntityKind, IdScheme, Mention};
use tongban_adapters::normalise::name::is_latin;

use super::compare;

/// At most this many distinct values of one field are kept per entity: an employer
/// named in thousands of records must not grow a profile without bound, and the first
/// values are as good as any for matching.
const MAX_VALUES: usize = 24;

/// The comparable values of a mention, or the union of those of an entity's mentions.
/// Every list is sorted and deduplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Comparable names (`Mention::match_name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub birth_dates: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sexes: Vec<String>,
    /// Identity numbers whose check character holds: resident identity numbers of a
    /// person, organisation codes of an organisation. Two different ones are strong
    /// evidence of two entities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_ids: Vec<String>,
    /// Identity numbers or codes as typed that fail their check: a typo of a valid one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_ids: Vec<String>,
    /// Numbers of documents without a check character (passports, permits, cards),
    /// whatever family they were typed under: the same number typed as a permit in
    /// one system and as an identity card in another is one document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    /// Residence or business addresses, normalised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl Profile {
    /// The profile of one mention.
    pub fn of_mention(mention: &Mention) -> Profile {
        let mut profile = Profile::default();
        profile.absorb(mention);
        profile
    }

    /// The profile of an entity with these mentions.
    pub fn of_mentions<'a>(mentions: impl IntoIterator<Item = &'a Mention>) -> Profile {
        let mut profile = Profile::default();
        for mention in mentions {
            profile.absorb(mention);
        }
        profile
    }

    /// Adds a mention's values.
    pub fn absorb(&mut self, mention: &Mention) {
        add(&mut self.names, &mention.match_name);
        for observation in &mention.observations {
            let list = match observation.attribute {
                Attribute::BirthDate => &mut self.birth_dates,
                Attribute::Sex => &mut self.sexes,
                Attribute::Phone => &mut self.phones,
                // Where someone lives and where their household is registered are often
                // the same place, typed by different clerks.
                Attribute::Address | Attribute::HouseholdAddress => &mut self.addresses,
                _ => continue,
            };
            add(list, &observation.value);
        }
        for identifier in &mention.identifiers {
            match identifier.scheme {
                IdScheme::ResidentId if !identifier.key && !looks_like_resident_id(&identifier.value) => {
                    // A passport number typed into the identity number field.
                    add(&mut self.documents, &identifier.value);
                }
                IdScheme::ResidentId if identifier.key => {
                    // A valid number says when the person was born and which sex,
                    // whatever the record typed.
                    add(&mut self.valid_ids, &identifier.value);
                    if let Some((birth, sex)) = born_of(&identifier.value) {
                        add(&mut self.birth_dates, &birth);
                        add(&mut self.sexes, sex);
                    }
                }
                IdScheme::ResidentId | IdScheme::OrganisationCode => {
                    let list = if identifier.key {
                        &mut self.valid_ids
                    } else {
                        &mut self.unchecked_ids
                    };
                    add(list, &identifier.value);
                }
                IdScheme::UnifiedSocialCreditCode | IdScheme::RegistrationNumber if !identifier.key => {
                    // A code that failed its check: its organisation-code part is the
                    // comparable one (positions 9-17 of a USCC).
                    let code: String = if identifier.value.chars().count() == 18 {
                        identifier.value.chars().skip(8).take(9).collect()
                    } else {
                        identifier.value.clone()
                    };
                    add(&mut self.unchecked_ids, &code);
                }
                IdScheme::Passport
                | IdScheme::HkMacaoTaiwanPermit
                | IdScheme::HkMacaoTaiwanIdentityCard
                | IdScheme::ForeignPermanentResidentCard
                | IdScheme::MilitaryOfficerCard => {
                    add(&mut self.documents, &identifier.value);
                }
                IdScheme::UnifiedSocialCreditCode | IdScheme::RegistrationNumber | IdScheme::DepartmentNumber => {}
            }
        }
    }

    /// Adds another profile's values.
    pub fn extend(&mut self, other: &Profile) {
        for (mine, theirs) in [
            (&mut self.names, &other.names),
            (&mut self.birth_dates, &other.birth_dates),
            (&mut self.sexes, &other.sexes),
            (&mut self.valid_ids, &other.valid_ids),
            (&mut self.unchecked_ids, &other.unchecked_ids),
            (&mut self.documents, &other.documents),
            (&mut self.phones, &other.phones),
            (&mut self.addresses, &other.addresses),
        ] {
            for value in theirs {
                add(mine, value);
            }
        }
    }

    /// True when the profile has nothing to compare beyond a name: such a mention (a
    /// name typed as an employer, say) is matched only on a rare name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.identity_numbers().next().is_none() && self.documents.is_empty()
    }

    /// Valid and unchecked identity numbers.
    pub fn identity_numbers(&self) -> impl Iterator<Item = &String> {
        self.valid_ids.iter().chain(&self.unchecked_ids)
    }

    /// The blocking keys of this profile: every entity sharing one is a candidate.
    /// Each is prefixed by its kind of evidence so that keys of different fields never
    /// meet.
    pub fn blocks(&self, kind: EntityKind) -> BTreeSet<String> {
        let mut blocks = BTreeSet::new();
        let prefix = match kind {
            EntityKind::Person => 'p',
            EntityKind::Organisation => 'o',
        };
        let mut block = |field: &str, value: &str| {
            blocks.insert(format!("{prefix}{field}:{value}"));
        };
        for number in self.identity_numbers() {
            let chars: Vec<char> = number.chars().collect();
            // One wrong character anywhere leaves at least one of these intact: the body
            // without its check character, and the number without either half.
            let n = chars.len();
            if n >= 8 {
                let half = n / 2;
                block("i1", &chars[..n - 1].iter().collect::<String>());
                block("i2", &chars[..half].iter().collect::<String>());
                block("i3", &chars[half..].iter().collect::<String>());
            }
        }
        for document in &self.documents {
            block("d", document);
            // One character typed wrong, left out, added, or two neighbours swapped:
            // the two numbers then share the number without one character (or one is
            // the other without it).
            let chars: Vec<char> = document.chars().collect();
            // No longer than a document number can be: text typed into the field
            // must not multiply into keys.
            if (compare::SHORTEST_TYPO..=LONGEST_DOCUMENT).contains(&chars.len()) {
                block("d1", document);
                for skip in 0..chars.len() {
                    let without: String = (0..chars.len()).filter(|&i| i != skip).map(|i| chars[i]).collect();
                    block("d1", &without);
                }
            }
        }
        for phone in &self.phones {
            block("t", phone);
        }
        for name in &self.names {
            for address in &self.addresses {
                block("na", &format!("{name}|{address}"));
            }
            match kind {
                EntityKind::Person => {
                    for birth in &self.birth_dates {
                        // Year and month only, so that a date known to the month finds
                        // the full one.
                        let month: String = birth.chars().take(7).collect();
                        block("nb", &format!("{name}|{month}"));
                    }
                }
                EntityKind::Organisation => block("n", name),
            }
        }
        for address in self.addresses.iter().filter(|a| written_in_words(a)) {
            // A foreigner's address: house number and postcode survive typing better
            // than the words around them; paired with each other, and with each part
            // of a Latin name.
            let numbers: Vec<&str> = address
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .take(MAX_ADDRESS_NUMBERS)
                .collect();
            for (i, first) in numbers.iter().enumerate() {
                for second in &numbers[i + 1..] {
                    block("an", &format!("{first}|{second}"));
                }
            }
            // Numbers of one digit are in too many addresses; a few names suffice.
            for name in self.names.iter().filter(|n| is_latin(n)).take(MAX_NAMES_BY_NUMBER) {
                for part in name_parts(name) {
                    for number in numbers.iter().filter(|n| n.len() >= 2) {
                        block("pn", &format!("{part}|{number}"));
                    }
                }
            }
        }
        if kind == EntityKind::Person {
            for name in &self.names {
                // The name alone, for records whose birth date is mistyped or missing (a
                // common name fills its block: the read is capped per block, and the
                // name's frequency keeps it from counting for much).
                block("n", name);
                // A typo in one part of a name: each part with the full birth date, and
                // with the address.
                let latin = is_latin(name);
                for part in name_parts(name) {
                    for birth in self.birth_dates.iter().filter(|b| b.len() == 10) {
                        block("pb", &format!("{part}|{birth}"));
                        if latin {
                            // Typos in every part of a Latin name seldom reach the
                            // first letter.
                            if let Some(initial) = part.chars().next() {
                                block("pi", &format!("{initial}|{birth}"));
                            }
                        }
                    }
                    for address in &self.addresses {
                        block("pa", &format!("{part}|{address}"));
                    }
                }
            }
        }
        blocks
    }
}

/// The key under which the frequency of a name is counted (term-frequency adjustment).
pub fn name_frequency_key(kind: EntityKind, name: &str) -> String {
    match kind {
        EntityKind::Person => format!("pf:{name}"),
        EntityKind::Organisation => format!("of:{name}"),
    }
}

/// Parts of a comparable name: the words of a Latin name (one word is one part), or
/// the surname character and the given name of a Chinese one.
fn name_parts(name: &str) -> Vec<String> {
    if is_latin(name) {
        return name.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if name.chars().count() >= 2 => vec![first.to_string(), chars.collect()],
        _ => Vec::new(),
    }
}

/// Numbers of one address paired for blocking (street, building, postcode, ...).
const MAX_ADDRESS_NUMBERS: usize = 4;

/// Names of a profile paired with its addresses' numbers.
const MAX_NAMES_BY_NUMBER: usize = 4;

/// The longest document number (passports, permits, officer cards: 5 to 20 characters).
const LONGEST_DOCUMENT: usize = 20;

/// An address written in Latin words (a foreigner's), not a Chinese one.
pub(super) fn written_in_words(address: &str) -> bool {
    address.contains(' ') && address.is_ascii()
}

/// The birth date and sex an 18-character resident identity number encodes (GB 11643:
/// positions 7-14 the date, position 17 odd for men).
fn born_of(number: &str) -> Option<(String, &'static str)> {
    let date = number.get(6..14)?;
    let order = number.get(16..17)?.parse::<u8>().ok()?;
    let birth = format!("{}-{}-{}", date.get(..4)?, date.get(4..6)?, date.get(6..)?);
    Some((birth, if order % 2 == 1 { "male" } else { "female" }))
}

/// 15 or 18 characters, all digits but perhaps a final X: a resident identity number
/// with a typo rather than another document.
fn looks_like_resident_id(value: &str) -> bool {
    let n = value.chars().count();
    (n == 15 || n == 18)
        && value
            .char_indices()
            .all(|(i, c)| c.is_ascii_digit() || (c == 'X' && i == value.len() - 1))
}

fn add(list: &mut Vec<String>, value: &str) {
    if value.is_empty() || list.len() >= MAX_VALUES {
        return;
    }
    if let Err(at) = list.binary_search_by(|v| v.as_str().cmp(value)) {
        list.insert(at, value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks_of(f: impl FnOnce(&mut Profile)) -> BTreeSet<String> {
        let mut profile = Profile::default();
        f(&mut profile);
        profile.blocks(EntityKind::Person)
    }

    fn share(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
        a.intersection(b).next().is_some()
    }

    #[test]
    fn a_document_number_one_typo_away_shares_a_block() {
        let of = |d: &str| blocks_of(|p| p.documents = vec![d.into()]);
        let right = of("E1234567");
        for typo in ["E1234576", "E1234568", "E123467", "E12345678", "E2134567"] {
            assert!(share(&right, &of(typo)), "{typo}");
        }
        assert!(!share(&right, &of("E7654321")));
        assert!(
            !share(&of("12345"), &of("12354")),
            "short numbers: neighbours are other people"
        );
    }

    #[test]
    fn latin_names_block_on_initials_and_address_numbers() {
        let person = |name: &str, birth: &str, address: &str| {
            blocks_of(|p| {
                p.names = vec![name.into()];
                p.birth_dates = vec![birth.into()];
                p.addresses = vec![address.into()];
            })
        };
        // Typos in both parts of the name, another address: the initials with the birth date.
        assert!(share(
            &person("BEZUCH NIKITA", "1946-06-15", "10 boddington crescent"),
            &person("BZEUCH NIKIGA", "1946-06-15", "12 other street")
        ));
        // No birth date in common, the address typed differently: a name part with the
        // house number or postcode.
        assert!(share(
            &person(
                "EMIILY HINGSTON",
                "1971-12-19",
                "15 paul coe crescent,mooroolbark sa 2565"
            ),
            &person(
                "EMIILY HINGSTXON",
                "1980-01-01",
                "15 paul coe crescent,mooroolbark sa 2556"
            )
        ));
        // A one-word Latin name is one part, not a surname character and a given name.
        assert!(share(
            &person("BRAITHWAITE", "1974-08-15", "a"),
            &person("BRAITHWAITE VINCENT", "1974-08-15", "b")
        ));
        assert!(
            !blocks_of(|p| {
                p.names = vec!["王伟".into()];
                p.addresses = vec!["海阳路12号3单元".into()];
            })
            .iter()
            .any(|b| b.starts_with("pan:") || b.starts_with("ppn:")),
            "Chinese addresses have no number blocks"
        );
    }
}
