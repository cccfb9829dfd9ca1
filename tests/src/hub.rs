//! A hub for one test: its own PKI, its own store, a loopback port.

use std::collections::HashSet;
use std::time::Duration;

use tempfile::TempDir;
use tongban_gateway::client::{self, ClientIdentity};
use tongban_gateway::config::Limits;
use tongban_gateway::identity::Identity;
use tongban_gateway::pki::{CertificateAuthority, IssuedCertificate, PkiLayout};
use tongban_gateway::server::{self, RunningServer, ServerSettings};
use tongban_gateway::store::embedded::{EmbeddedSettings, EmbeddedStore};
use tongban_gateway::store::postgres::PostgresStore;
use tongban_gateway::store::AnyStore;
use tongban_proto::v1::exchange_client::ExchangeClient;
use tonic::transport::Channel;

use crate::db::TestDatabase;

/// Which store the hub runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Postgres,
}

/// Knobs a test may turn.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub limits: Limits,
    /// Client certificate serials to refuse.
    pub revoked: HashSet<String>,
    pub probe_interval: Duration,
    /// Busy timeout of the embedded store.
    pub busy_timeout: Duration,
    /// Use this PKI folder (laid out as `tongban dev` makes it) instead of a new one.
    pub pki_dir: Option<std::path::PathBuf>,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            limits: Limits::default(),
            revoked: HashSet::new(),
            probe_interval: Duration::from_millis(200),
            busy_timeout: Duration::from_millis(500),
            pki_dir: None,
        }
    }
}

impl HubOptions {
    /// The defaults, with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        HubOptions {
            limits,
            ..HubOptions::default()
        }
    }
}

/// A running hub and everything needed to talk to it and look behind it.
pub struct TestHub {
    pub endpoint: String,
    pub pki: PkiLayout,
    /// The hub's store, shared: tests read it to check what was really committed.
    pub store: AnyStore,
    pub kind: StoreKind,
    /// Present for [`StoreKind::Postgres`]; dropped (and the database with it) last.
    pub database: Option<TestDatabase>,
    server: Option<RunningServer>,
    /// Holds the PKI and the embedded store's file.
    pub dir: TempDir,
}

impl TestHub {
    pub async fn start(kind: StoreKind) -> TestHub {
        TestHub::start_with(kind, HubOptions::default()).await
    }

    pub async fn start_with(kind: StoreKind, options: HubOptions) -> TestHub {
        tongban_gateway::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temporary folder");
        let pki = PkiLayout::new(options.pki_dir.clone().unwrap_or_else(|| dir.path().join("pki")));
        pki.ensure_dev().expect("test PKI");
        let (store, database): (AnyStore, _) = match kind {
            StoreKind::Embedded => {
                let settings = EmbeddedSettings {
                    busy_timeout: options.busy_timeout,
                };
                let store =
                    EmbeddedStore::open_with(&dir.path().join("tongban.db"), &settings).expect("embedded store");
                (store.into(), None)
            }
            StoreKind::Postgres => {
                let database = TestDatabase::create().await;
                let store = PostgresStore::connect(&database.settings())
                    .await
                    .expect("postgres store");
                (store.into(), Some(database))
            }
        };
        let mut settings = ServerSettings::development(&pki, options.revoked.clone()).expect("server settings");
        settings.limits = options.limits.clone();
        settings.probe_interval = options.probe_interval;
        settings.handshake_timeout = Duration::from_secs(5);
        settings.shutdown_grace = Duration::from_secs(2);
        let listener = server::bind(([127, 0, 0, 1], 0).into()).await.expect("bind");
        let running = server::start(listener, settings, store.clone()).expect("start hub");
        TestHub {
            endpoint: format!("https://{}", running.addr),
            pki,
            store,
            kind,
            database,
            server: Some(running),
            dir,
        }
    }

    /// The certificate folder's credentials of a development identity.
    pub fn identity(&self, identity: &Identity) -> ClientIdentity {
        ClientIdentity::load(&self.pki.identity_dir(identity), None).expect("identity folder")
    }

    /// A mutual-TLS channel as `identity`.
    pub async fn channel(&self, identity: &Identity) -> Channel {
        client::channel(&self.endpoint, &self.identity(identity))
            .await
            .expect("connect")
    }

    /// An Exchange client as `identity`.
    pub async fn exchange(&self, identity: &Identity) -> ExchangeClient<Channel> {
        client::connect(&self.endpoint, &self.identity(identity))
            .await
            .expect("connect")
    }

    /// The CA of this hub, to issue extra certificates.
    pub fn ca(&self) -> CertificateAuthority {
        CertificateAuthority::load(&self.pki.ca_cert(), &self.pki.ca_key()).expect("CA")
    }

    /// Credentials made of an issued certificate and this hub's CA.
    pub fn credentials(&self, issued: &IssuedCertificate) -> ClientIdentity {
        ClientIdentity {
            cert_pem: issued.cert_pem.clone(),
            key_pem: issued.key_pem.clone(),
            ca_pem: std::fs::read_to_string(self.pki.ca_cert()).expect("CA file"),
        }
    }

    /// Stops the hub gracefully.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("hub stopped cleanly");
        }
    }
}

/// A department's identity.
pub fn department(name: &str) -> Identity {
    Identity::from_name(name).expect("department name")
}
