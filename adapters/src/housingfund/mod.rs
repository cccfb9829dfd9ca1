//! Housing provident fund (住房公积金): the personal account system, record type
//! `housingfund.account`. Employers are known here only by name and organisation code.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;

use serde_json::Value;

use crate::model::{ReadError, Reading};

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    let _ = payload;
    todo!()
}
