//! Tongban's knowledge of the departments.
//!
//! Map of the crate:
//! - [`catalog`]: the seven departments and the eight record types they own; the only
//!   place that says which department may push which record type.
//! - [`synth`]: a deterministic generator of a synthetic city's departmental exports,
//!   dirt included, for the demo, the tests and the benchmarks.
//! - one module per department (`tax`, `hrss`, ...): the only code that knows that
//!   department's field names and code tables.
//!
//! Everything here is pure: no I/O, no clock, no database, no wire types. Randomness
//! in [`synth`] comes from an explicit seed.

pub mod catalog;
pub mod synth;

mod civil;
mod construction;
mod housingfund;
mod hrss;
mod market;
mod realestate;
mod tax;

pub use catalog::{Department, RecordType};
