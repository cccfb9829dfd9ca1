//! Shared harness of the black-box tests.
pub mod db;
