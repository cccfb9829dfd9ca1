//! Tax (税务): the taxpayer registration system, record type `tax.taxpayer`.
//!
//! The only module that knows the tax bureau's field names and code tables. [`synth`]
//! writes synthetic records as the bureau exports them;

pub(crate) mod synth;
