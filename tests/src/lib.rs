//! Shared harness of the black-box tests: a real hub on a loopback port with mutual TLS,
//! over either store, and clients holding real certificates.
//!
//! - [`db`]: a throw-away PostgreSQL database per test.
//! - [`hub`]: a test PKI, a hub started on it, and clients of every identity.

pub mod db;
pub mod hub;
