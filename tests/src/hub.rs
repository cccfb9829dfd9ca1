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
    options: HubOptions,
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
        let database = match kind {
            StoreKind::Embedded => None,
            StoreKind::Postgres => Some(TestDatabase::create().await),
        };
        let store = open_store(kind, &dir, database.as_ref(), &options).await;
        let running = serve(&pki, &options, store.clone()).await;
        TestHub {
            endpoint: format!("https://{}", running.addr),
            pki,
            store,
            kind,
            database,
            server: Some(running),
            options,
            dir,
        }
    }

    /// Stops the hub (if it runs) and starts it again on the same data, as a new process
    /// would: a new store on the same file or database (applying any migration not
    /// recorded), the same PKI, a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.store = open_store(self.kind, &self.dir, self.database.as_ref(), &self.options).await;
        let running = serve(&self.pki, &self.options, self.store.clone()).await;
        self.endpoint = format!("https://{}", running.addr);
        self.server = Some(running);
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

/// Opens the store of a hub: the file `tongban.db` in `dir`, or `database`.
async fn open_store(kind: StoreKind, dir: &TempDir, database: Option<&TestDatabase>, options: &HubOptions) -> AnyStore {
    match (kind, database) {
        (StoreKind::Embedded, _) => {
            let settings = EmbeddedSettings {
                busy_timeout: options.busy_timeout,
            };
            EmbeddedStore::open_with(&dir.path().join("tongban.db"), &settings)
                .expect("embedded store")
                .into()
        }
        (StoreKind::Postgres, Some(database)) => PostgresStore::connect(&database.settings())
            .await
            .expect("postgres store")
            .into(),
        (StoreKind::Postgres, None) => panic!("a PostgreSQL hub without a database"),
    }
}

/// Starts a hub server over `store` on a loopback port.
async fn serve(pki: &PkiLayout, options: &HubOptions, store: AnyStore) -> RunningServer {
    let mut settings = ServerSettings::development(pki, options.revoked.clone()).expect("server settings");
    settings.limits = options.limits.clone();
    settings.probe_interval = options.probe_interval;
    settings.handshake_timeout = Duration::from_secs(5);
    settings.shutdown_grace = Duration::from_secs(2);
    let listener = server::bind(([127, 0, 0, 1], 0).into()).await.expect("bind");
    server::start(listener, settings, store).expect("start hub")
}

/// A department's identity.
pub fn department(name: &str) -> Identity {
    Identity::from_name(name).expect("department name")
}
