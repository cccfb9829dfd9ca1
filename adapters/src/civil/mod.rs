//! Civil affairs (民政): marriage and divorce registrations (`civil.marriage`, the
//! authority for marital status) and subsistence allowance households
//! (`civil.assistance`).
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;

use serde_json::Value;

use crate::model::{ReadError, Reading};

/// Reads one `civil.marriage` record into the two parties and their relation.
pub(crate) fn read_marriage(payload: &Value) -> Result<Reading, ReadError> {
    let _ = payload;
    todo!()
}

/// Reads one `civil.assistance` record into the household members and their relations.
pub(crate) fn read_assistance(payload: &Value) -> Result<Reading, ReadError> {
    let _ = payload;
    todo!()
}
