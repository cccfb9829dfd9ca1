//! Market supervision (市场监督管理): the market entity registration system, record
//! type `market.entity`. The authority for an enterprise's name, legal
//! representative and status.
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
