//! Housing and urban-rural construction (住房和城乡建设): the project approval system,
//! record type `construction.permit`. Every permit names three units and one person.
//!
//! The only module that knows this department's field names and code tables.
//! [`synth`] writes synthetic records as the department exports them;

pub(crate) mod synth;
