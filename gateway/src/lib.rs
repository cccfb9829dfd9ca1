//! The Tongban hub: a gRPC service that takes each department's records over mutual
//! TLS, validates and keeps every version, recognises the same citizen or enterprise
//! across departments, keeps one unified record of each, and serves them as a change
//! feed and by lookup.
//!
//! Map of the crate, in the order a pushed record flows through it:
//! - [`tls`]: the accept loop; only connections with a client certificate of the
//!   configured CA (and not revoked) get through, each tagged with its [`tls::Peer`];
//!   every refusal is queued for the audit log. The hub's own certificate is read again
//!   when renewed ([`server_certificate`]).
//! - [`identity`]: who the certificate says the caller is (`department:tax`, ...).
//! - [`grpc`]: the gRPC services (`Exchange`, `Unified`, `Stewardship`, `Operations`,
//!   `Quality`), each call in its span, wire ⇄ domain conversions, and the one place
//!   where errors become a `tonic::Status`.
//! - [`pipeline`]: authorise → validate (JSON Schemas from [`schemas`]) → adapt and
//!   normalise (`tongban_adapters`) → commit.
//! - [`resolve`]: which unified entity each mention is, and the unified record built
//!   from an entity's mentions (survivorship). Pure: it decides, the store persists.
//! - [`store`]: the store interface and its two implementations, PostgreSQL and an
//!   embedded SQLite file; resolution runs inside the batch's transaction. The only
//!   module with SQL in it.
//! - [`record`] and [`unified`]: the domain types the stages pass along.
//! - [`registry`]: lookups and the change feed, under the [`sharing`] rules, audited.
//! - [`stewardship`]: a data steward's review queue, decisions, merges, splits and
//!   explanations, for stewards only, audited.
//! - [`quality`]: a department's data-quality report on its own records (the flags of
//!   their current versions, and contradictions with an authoritative department).
//! - [`audit`]: the audit log's hash chain (every read, decision and refusal), and its
//!   verification; [`pseudonym`]: keyed pseudonyms of identifiers asked for in lookups.
//! - [`statistics`]: operational statistics for `ops` (traffic, outcomes, push latency,
//!   lookups, repeated collections avoided; no personal data), counted in process and
//!   added up in the store.
//! - [`server`]: assembles all of the above on a socket, with health and reflection.
//! - [`admin_port`] and [`console`]: the admin port, `/metrics` in plain HTTP and the
//!   web console over HTTPS (review queue, entity view, operations, data quality) for
//!   stewards and operators, calling the same desks as the gRPC services.
//! - [`telemetry`]: what operators see: OpenTelemetry spans per RPC and stage, metrics
//!   (OTLP and Prometheus on the admin port), JSON logs with trace IDs; no personal data.
//!
//! Around the hub: [`config`] (the typed configuration of `tongban serve`), [`pki`]
//! (development PKI, client certificates and requests), [`client`] (the department
//! connector behind `tongban push`, over a TLS connection confirmed before its first
//! request, [`client_connection`]), [`platform`] (the platform's client behind `tongban pull`
//! and `tongban get`), and [`cli`] (the subcommands of the `tongban` binary).

pub mod admin_port;
pub mod audit;
pub mod cli;
pub mod client;
pub mod client_connection;
pub mod config;
pub mod console;
pub mod grpc;
pub mod identity;
pub mod pipeline;
pub mod pki;
pub mod platform;
pub mod pseudonym;
pub mod quality;
pub mod record;
pub mod registry;
pub mod resolve;
pub mod schemas;
pub mod server;
pub mod server_certificate;
pub mod sharing;
pub mod statistics;
pub mod stewardship;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod unified;
