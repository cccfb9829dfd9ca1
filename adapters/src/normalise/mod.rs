//! Normalisation: from values as departments typed them to the forms the hub
//! compares, stores and shows. Pure functions, one file per kind of value.
//!
//! [`mention`] is the stage of the pipeline: it turns an adapter's [`RawMention`] into
//! a [`Mention`], and every defect found on the way (a wrong check character, a birth
//! date that disagrees with the identity number, an unreadable date) becomes a
//! [`QualityFlag`] on it. A defective value is kept for display but never becomes a key.
//!
//! [`lookup_keys`] reads an identifier a user typed into a lookup, in any of its
//! forms, into the keys it may be stored under.

use crate::model::{Identifier, Mention, RawMention};

/// Normalises one mention. Never fails: what cannot be read is flagged.
pub fn mention(raw: &RawMention) -> Mention {
    let _ = raw;
    todo!("normalise::mention")
}

/// The keys under which an identifier typed in any form may be stored: a 15-digit
/// resident identity number gives its 18-digit upgrade, a USCC, a legacy tax ID or an
/// organisation code (with or without hyphen) gives the organisation code, a passport
/// number gives the passport key. Empty when the text is no identifier we know.
pub fn lookup_keys(text: &str) -> Vec<Identifier> {
    let _ = text;
    todo!("normalise::lookup_keys")
}
