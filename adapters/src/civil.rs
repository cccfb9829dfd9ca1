//! civil
