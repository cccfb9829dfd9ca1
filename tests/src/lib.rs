//! Shared harness of the black-box tests: a real hub on a loopback port with mutual TLS,
//! over either store, and clients holding real certificates.
//!
//! - [`db`]: a throw-away PostgreSQL database per test.
//! - [`hub`]: a test PKI, a hub started on it, and clients of every identity.
//! - [`proxy`]: a TCP proxy that can go silent, to play a network that drops packets.

pub mod db;
pub mod hub;
pub mod proxy;
pub mod unified;

/// Runs each named scenario — an `async fn(StoreKind)` — as two tests, one against the
/// embedded store (`embedded::name`) and one against PostgreSQL (`postgres::name`).
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::hub::StoreKind::Embedded).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::hub::StoreKind::Postgres).await
            })*
        }
    };
}
