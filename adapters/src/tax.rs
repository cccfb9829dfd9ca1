//! tax
