//! Housing and urban-rural construction (住房和城乡建设): the project approval system,
//! record type `construction.permit`. Every permit names three units and one person.
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
