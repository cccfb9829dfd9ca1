//! realestate
