//! Human resources and social security (人力资源和社会保障): the social insurance
//! system, record type `hrss.insured_person`.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;
