//! Tongban's knowledge of the departments.
//!
//! Map of the crate:
//! - [`catalog`]: the seven departments and the eight record types they own; the only
//!   place that says which department may push which record type.
//! - [`synth`]: a deterministic generator of a synthetic city's departmental exports,
//!   dirt included, for the demo, the tests and the benchmarks.
//! - [`model`]: the canonical model: raw mentions as adapters read them, normalised
//!   mentions, identifiers, attributes, facts, relations and quality flags.
//! - one module per department (`tax`, `hrss`, ...): the only code that knows that
//!   department's field names and code tables; [`read`] dispatches to them.
//! - [`normalise`]: identity numbers, organisation codes, documents, names, phones,
//!   dates, addresses and amounts, cleaned and checked for every department alike.
//! - [`calendar`]: proleptic Gregorian day arithmetic on plain integers.
//!
//! Everything here is pure: no I/O, no clock, no database, no wire types. Randomness
//! in [`synth`] comes from an explicit seed.

pub mod calendar;
pub mod catalog;
pub mod model;
pub mod normalise;
pub mod synth;

mod civil;
mod construction;
pub(crate) mod fields;
mod housingfund;
mod hrss;
mod market;
mod realestate;
mod tax;

pub use catalog::{Department, RecordType};
pub use model::{Mention, RawMention, ReadError, Reading};

use serde_json::Value;

/// Reads one native record of `record_type` (its payload, already valid against the
/// record type's JSON Schema) into mentions and relations, values as typed.
pub fn read(record_type: RecordType, payload: &Value) -> Result<Reading, ReadError> {
    match record_type {
        RecordType::TaxTaxpayer => tax::read(payload),
        RecordType::HrssInsuredPerson => hrss::read(payload),
        RecordType::MarketEntity => market::read(payload),
        RecordType::RealEstateTitle => realestate::read(payload),
        RecordType::HousingFundAccount => housingfund::read(payload),
        RecordType::ConstructionPermit => construction::read(payload),
        RecordType::CivilMarriage => civil::read_marriage(payload),
        RecordType::CivilAssistance => civil::read_assistance(payload),
    }
}
