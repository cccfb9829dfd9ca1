//! Human resources and social security (人力资源和社会保障): the social insurance
//! system, record type `hrss.insured_person`.
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
