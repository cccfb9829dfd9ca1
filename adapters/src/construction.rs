//! construction
