//! Configuration of `tongban serve`, parsed once into typed structs.
//!
//! The file format is TOML; `deploy/tongban.example.toml` documents every setting and
//! is checked against this module by a test. Secrets can come from the environment
//! instead of the file (see [`Config::apply_env`]).

use crate::registry::FeedSettings;
use crate::resolve::matching::MatchSettings;
use crate::resolve::survivorship::Authorities;
use crate::resolve::Settings;
use crate::sharing::SharingRules;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Environment variable that overrides `store.postgres.url` (it carries a password).
pub const ENV_DATABASE_URL: &str = "TONGBAN_DATABASE_URL";
/// Environment variable that overrides `tls.key` (the server key's path).
pub const ENV_TLS_KEY: &str = "TONGBAN_TLS_KEY";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the gRPC listener (TLS only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub health: HealthConfig,
    /// Seconds in-flight calls get to finish after SIGTERM or Ctrl-C.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Which department is the authority for which attribute of a unified record.
    #[serde(default)]
    pub survivorship: Authorities,
    /// What each department may read of unified records.
    #[serde(default)]
    pub sharing: SharingRules,
    #[serde(default)]
    pub feed: FeedConfig,
    /// Probabilistic matching: weights and thresholds.
    #[serde(default)]
    pub matching: MatchSettings,
    /// Traces, metrics and logs.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub audit: AuditConfig,
}

/// The audit log.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// File holding the secret key of the identifiers' pseudonyms in the audit log
    /// (TONGBAN_AUDIT_KEY, the key itself, overrides it); none: lookups by identifier
    /// are audited as "identifier" only.
    #[serde(default)]
    pub pseudonym_key_file: Option<PathBuf>,
}

impl AuditConfig {
    /// The pseudonymiser of this configuration, if it has a key.
    pub fn pseudonyms(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<crate::pseudonym::Pseudonymiser>, crate::pseudonym::KeyError> {
        use crate::pseudonym::{Pseudonymiser, ENV_AUDIT_KEY};
        match (var(ENV_AUDIT_KEY), &self.pseudonym_key_file) {
            (Some(key), _) => Pseudonymiser::new(key.as_bytes()).map(Some),
            (None, Some(path)) => Pseudonymiser::from_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// How the hub shows itself to operators: OTLP traces and metrics, the Prometheus
/// endpoint on the admin port, and the log format. Nothing is exported unless configured.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector (`http://host:4317`) for traces and metrics; none: no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces kept (0.0 to 1.0); a caller's sampled trace is always continued.
    #[serde(default = "default_sampling_ratio")]
    pub sampling_ratio: f64,
    /// Milliseconds one export to the collector may take before it is abandoned.
    #[serde(default = "default_export_timeout_ms")]
    pub export_timeout_ms: u64,
    /// Seconds between two exports of the metrics to the collector.
    #[serde(default = "default_metrics_interval_secs")]
    pub metrics_interval_secs: u64,
    /// `service.name` of the traces and metrics.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Plain HTTP listener of the admin port (`/metrics` in Prometheus text); none: closed.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// `json` (one object per line, with trace IDs) or `text`.
    #[serde(default)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

fn default_sampling_ratio() -> f64 {
    1.0
}

fn default_export_timeout_ms() -> u64 {
    3000
}

fn default_metrics_interval_secs() -> u64 {
    30
}

fn default_service_name() -> String {
    "tongban".to_owned()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            sampling_ratio: default_sampling_ratio(),
            export_timeout_ms: default_export_timeout_ms(),
            metrics_interval_secs: default_metrics_interval_secs(),
            service_name: default_service_name(),
            admin_listen: None,
            log_format: LogFormat::default(),
        }
    }
}

/// The change feed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Changes per page read from the store and per message batch.
    #[serde(default = "default_feed_page")]
    pub max_page: usize,
    /// Milliseconds between looks for changes other replicas committed, while following.
    #[serde(default = "default_feed_poll_ms")]
    pub poll_interval_ms: u64,
}

fn default_feed_page() -> usize {
    FeedSettings::default().max_page
}

fn default_feed_poll_ms() -> u64 {
    u64::try_from(FeedSettings::default().poll_interval.as_millis()).unwrap_or(250)
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            max_page: default_feed_page(),
            poll_interval_ms: default_feed_poll_ms(),
        }
    }
}

impl FeedConfig {
    pub fn settings(&self) -> FeedSettings {
        FeedSettings {
            max_page: self.max_page.max(1),
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA that issues client certificates; only its certificates are let in.
    pub client_ca: PathBuf,
    /// PEM file of the server's certificate chain.
    pub cert: PathBuf,
    /// PEM file of the server's private key.
    pub key: PathBuf,
    /// Serial numbers (hex, colons optional) of client certificates that are refused.
    #[serde(default)]
    pub revoked_serials: Vec<String>,
    /// Seconds a client gets to complete the TLS handshake.
    #[serde(default = "default_handshake_timeout_secs")]
    pub handshake_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    Postgres(PostgresConfig),
    Embedded(EmbeddedConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`; prefer TONGBAN_DATABASE_URL for the password.
    #[serde(default)]
    pub url: String,
    /// Connections kept by this process.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Milliseconds to open a new connection before the store counts as unavailable.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds a request waits for a free connection before it gets UNAVAILABLE.
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
    /// Milliseconds any one SQL statement may run.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The database file; created with its folder if missing.
    pub path: PathBuf,
    /// Milliseconds a write waits for a lock held by another process before UNAVAILABLE.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

/// Limits that protect the service from oversized or runaway input, and each caller
/// from the others: streams and request rate are counted per identity
/// (`grpc/caller_limits.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes (bigger ones get RESOURCE_EXHAUSTED).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most envelopes in one batch (more get INVALID_ARGUMENT).
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// Largest payload of one record, in bytes (bigger ones are rejected and quarantined).
    #[serde(default = "default_max_payload_bytes")]
    pub max_payload_bytes: usize,
    /// Answers a PushStream keeps ready for a client that is slow to read them; once
    /// they are all unread the hub stops reading the stream (backpressure).
    #[serde(default = "default_stream_window")]
    pub stream_window: usize,
    /// Streaming calls (PushStream, Changes) one identity may hold open at once; one
    /// more gets RESOURCE_EXHAUSTED.
    #[serde(default = "default_max_streams_per_identity")]
    pub max_streams_per_identity: usize,
    /// Requests a second one identity may make, sustained: every call, and every batch
    /// of a PushStream, takes one (health checks and reflection take none). Beyond it
    /// the caller gets RESOURCE_EXHAUSTED with the delay until its next request.
    #[serde(default = "default_requests_per_second_per_identity")]
    pub requests_per_second_per_identity: f64,
    /// Requests one identity may make at once after a quiet spell (the size of its
    /// token bucket).
    #[serde(default = "default_burst_per_identity")]
    pub burst_per_identity: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: default_max_message_bytes(),
            max_batch_records: default_max_batch_records(),
            max_payload_bytes: default_max_payload_bytes(),
            stream_window: default_stream_window(),
            max_streams_per_identity: default_max_streams_per_identity(),
            requests_per_second_per_identity: default_requests_per_second_per_identity(),
            burst_per_identity: default_burst_per_identity(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Milliseconds between probes of the store that drive gRPC health.
    #[serde(default = "default_probe_interval_ms")]
    pub probe_interval_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe_interval_ms: default_probe_interval_ms(),
        }
    }
}

impl HealthConfig {
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms.max(100))
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid configuration: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads, parses, applies environment overrides and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.apply_env(|name| std::env::var(name).ok());
        config.resolve_relative_paths(path.parent().unwrap_or(Path::new(".")));
        config.check()?;
        config.check_survivorship()?;
        config.check_matching()?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Secrets may be given in the environment instead of the file.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let (StoreConfig::Postgres(pg), Some(url)) = (&mut self.store, var(ENV_DATABASE_URL)) {
            pg.url = url;
        }
        if let Some(key) = var(ENV_TLS_KEY) {
            self.tls.key = PathBuf::from(key);
        }
    }

    fn check_matching(&self) -> Result<(), ConfigError> {
        let problems = self.matching.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }

    /// How the store resolves: survivorship's authorities and matching's settings.
    pub fn resolution(&self) -> Settings {
        Settings {
            authorities: self.survivorship.clone(),
            matching: self.matching.clone(),
        }
    }

    fn check_survivorship(&self) -> Result<(), ConfigError> {
        let unknown = self.survivorship.unknown_attributes();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "survivorship names unknown attributes: {}",
                unknown.join(", ")
            )))
        }
    }

    /// Relative paths in a configuration file are relative to that file, so that a
    /// service manager's working directory does not matter.
    fn resolve_relative_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.tls.client_ca);
        resolve(&mut self.tls.cert);
        resolve(&mut self.tls.key);
        if let StoreConfig::Embedded(e) = &mut self.store {
            resolve(&mut e.path);
        }
        if let Some(path) = &mut self.audit.pseudonym_key_file {
            resolve(path);
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if let StoreConfig::Postgres(pg) = &self.store {
            if pg.url.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "store.postgres: no database URL; set `url` or the {ENV_DATABASE_URL} environment variable"
                )));
            }
            if pg.pool_size == 0 {
                return Err(ConfigError::Invalid("store.pool_size must be at least 1".into()));
            }
        }
        if !(0.0..=1.0).contains(&self.telemetry.sampling_ratio) {
            return Err(ConfigError::Invalid(
                "telemetry.sampling_ratio must be between 0.0 and 1.0".into(),
            ));
        }
        for serial in &self.tls.revoked_serials {
            crate::pki::normalise_serial(serial)
                .map_err(|e| ConfigError::Invalid(format!("tls.revoked_serials: {e}")))?;
        }
        let l = &self.limits;
        if l.max_batch_records == 0 || l.max_message_bytes < 1024 || l.max_payload_bytes == 0 || l.stream_window == 0 {
            return Err(ConfigError::Invalid(
                "limits: max_batch_records, max_payload_bytes and stream_window must be positive, \
                 max_message_bytes at least 1024"
                    .into(),
            ));
        }
        if l.max_streams_per_identity == 0
            || l.burst_per_identity == 0
            || !(l.requests_per_second_per_identity.is_finite() && l.requests_per_second_per_identity > 0.0)
        {
            return Err(ConfigError::Invalid(
                "limits: max_streams_per_identity, requests_per_second_per_identity and burst_per_identity \
                 must be positive"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn default_shutdown_grace_secs() -> u64 {
    10
}
/// Every interface: a production hub is reached from other machines (and only with a
/// client certificate); `tongban dev` listens on loopback instead.
fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 7443))
}
fn default_handshake_timeout_secs() -> u64 {
    10
}
fn default_pool_size() -> usize {
    16
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_wait_timeout_ms() -> u64 {
    5_000
}
fn default_statement_timeout_ms() -> u64 {
    30_000
}
fn default_busy_timeout_ms() -> u64 {
    5_000
}
fn default_max_message_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_max_batch_records() -> usize {
    1_000
}
fn default_max_payload_bytes() -> usize {
    256 * 1024
}
fn default_stream_window() -> usize {
    4
}
fn default_max_streams_per_identity() -> usize {
    8
}
fn default_requests_per_second_per_identity() -> f64 {
    1_000.0
}
fn default_burst_per_identity() -> u32 {
    2_000
}
fn default_probe_interval_ms() -> u64 {
    2_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../deploy/tongban.example.toml");

    #[test]
    fn the_documented_example_parses_and_checks() {
        let mut config = Config::parse(EXAMPLE).expect("deploy/tongban.example.toml parses");
        config.apply_env(|name| (name == ENV_DATABASE_URL).then(|| "postgres://u:p@db/tongban".to_owned()));
        config.check().expect("example is valid");
        match &config.store {
            StoreConfig::Postgres(pg) => assert_eq!(pg.url, "postgres://u:p@db/tongban"),
            other => panic!("example should configure postgres, got {other:?}"),
        }
        config.check_survivorship().expect("example survivorship is valid");
        assert_eq!(
            config.matching,
            crate::resolve::matching::MatchSettings::default(),
            "the example documents the matching defaults"
        );
        assert_eq!(
            config.survivorship,
            Authorities::default(),
            "the example shows the defaults"
        );
        assert_eq!(config.feed.settings().max_page, FeedSettings::default().max_page);
        assert_eq!(
            config.listen,
            default_listen(),
            "the example shows the listener's default"
        );
        assert_eq!(
            config.telemetry,
            TelemetryConfig::default(),
            "the example shows the telemetry defaults"
        );
        assert_eq!(
            config.limits,
            Limits::default(),
            "the example shows the limits' defaults"
        );
        let text = EXAMPLE.replace("burst_per_identity = 2000", "burst_per_identity = 0");
        assert!(
            Config::parse(&text).expect("parses").check().is_err(),
            "no burst, no request"
        );
        let text = EXAMPLE.replace("sampling_ratio = 1.0", "sampling_ratio = 1.5");
        let config = Config::parse(&text).expect("parses");
        assert!(config.check().is_err(), "a sampling ratio above 1 is refused");
    }

    /// Every value the example writes is the code's default: the example read whole is
    /// the configuration of only what has no default (compared through `Debug`, which
    /// every part of it has).
    #[test]
    fn the_example_writes_every_value_as_its_default() {
        let required = "[tls]\nclient_ca = \"pki/ca.pem\"\ncert = \"pki/server/cert.pem\"\nkey = \"pki/server/key.pem\"\n[store]\nkind = \"postgres\"\nurl = \"\"\n";
        let minimal = Config::parse(required).expect("the required settings parse");
        let example = Config::parse(EXAMPLE).expect("the example parses");
        assert_eq!(format!("{minimal:#?}"), format!("{example:#?}"));
    }

    #[test]
    fn a_survivorship_table_written_leaves_the_other_kind_its_defaults() {
        let organisation =
            "[survivorship.organisation]\nname = \"market\"\nlegal_representative = \"market\"\nstatus = \"market\"\n";
        assert!(EXAMPLE.contains(organisation));
        let text = EXAMPLE
            .replace(organisation, "")
            .replace("marital_status = \"civil\"", "marital_status = \"hrss\"");
        let config = Config::parse(&text).expect("parses");
        assert_eq!(config.survivorship.organisation, Authorities::default().organisation);
        assert_eq!(config.survivorship.person.len(), 1);
        assert_eq!(
            config.survivorship.person["marital_status"],
            tongban_adapters::Department::Hrss
        );
    }

    #[test]
    fn survivorship_and_sharing_are_checked() {
        let text = format!("{EXAMPLE}\n[survivorship.unknown]\nname = \"tax\"\n");
        assert!(Config::parse(&text).is_err(), "only person and organisation tables");
        let text = EXAMPLE.replace("marital_status = \"civil\"", "marriage = \"civil\"");
        let config = Config::parse(&text).expect("parses");
        assert!(config.check_survivorship().is_err(), "unknown attribute");
        let text = EXAMPLE.replace("# hrss = [", "hrss = [");
        let config = Config::parse(&text).expect("sharing parses");
        assert_eq!(config.sharing.departments.len(), 1);
        let text = EXAMPLE.replace("# hrss = [\"identifiers\"", "hrss = [\"everything\"");
        assert!(Config::parse(&text).is_err(), "unknown part");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let text = EXAMPLE.replace("[limits]", "[limits]\nmax_bogus = 1");
        assert!(Config::parse(&text).is_err());
    }

    #[test]
    fn missing_database_url_is_explained() {
        let config = Config::parse(
            r#"
            [tls]
            client_ca = "ca.pem"
            cert = "c.pem"
            key = "k.pem"
            [store]
            kind = "postgres"
            "#,
        )
        .expect("parses");
        let err = config.check().expect_err("no url");
        assert!(err.to_string().contains(ENV_DATABASE_URL));
    }
}
