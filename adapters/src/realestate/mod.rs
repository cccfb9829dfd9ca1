//! Real estate registration (不动产登记): the title register, record type
//! `realestate.title`. A title can have several right holders, persons or units.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;
