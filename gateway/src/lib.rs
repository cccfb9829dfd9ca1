//! The Tongban hub.
pub mod identity;
pub mod record;
pub mod store;
