//! Tax (税务): the taxpayer registration system, record type `tax.taxpayer`.
//!
//! The only module that knows the tax bureau's field names and code tables. [`synth`]
//! writes synthetic records as the bureau exports them;

pub(crate) mod synth;

use serde_json::Value;

use crate::model::{ReadError, Reading};

/// Reads one native record into mentions and relations.
pub(crate) fn read(payload: &Value) -> Result<Reading, ReadError> {
    let _ = payload;
    todo!()
}
