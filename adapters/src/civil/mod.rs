//! Civil affairs (民政): marriage and divorce registrations (`civil.marriage`, the
//! authority for marital status) and subsistence allowance households
//! (`civil.assistance`).
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;
