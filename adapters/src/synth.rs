//! Synthetic city generator (being written).
