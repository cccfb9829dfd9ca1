//! A throw-away PostgreSQL database for one test.
//!
//! [`TestDatabase::create`] makes a uniquely named database on the server named by
//! `TONGBAN_TEST_DATABASE_URL` (an admin URL, by default the local `postgres` superuser);
//! dropping the value drops the database, even if connections to it are still open.

use std::time::Duration;

use tokio_postgres::NoTls;
use tongban_gateway::store::postgres::PostgresSettings;

/// The environment variable naming the admin URL of the test server.
pub const DATABASE_URL_ENV: &str = "TONGBAN_TEST_DATABASE_URL";

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Long enough for a loaded CI machine, short enough that a missing server fails fast.
const ADMIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that exists for as long as this value.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the test database.
    pub url: String,
    /// Its name, e.g. `tongban_test_4242_9f86d081884c7d65`.
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    ///
    /// If PostgreSQL cannot be reached or refuses to create the database.
    pub async fn create() -> TestDatabase {
        TestDatabase::create_with("").await
    }

    /// Creates a fresh, empty database whose default collation is the ICU locale
    /// `icu_locale` (e.g. `en-US-u-ka-shifted`, which ignores punctuation and puts `a`
    /// before `B`), where text does not sort in byte order as under the usual `C.UTF-8`.
    ///
    /// # Panics
    ///
    /// As [`TestDatabase::create`], and if the server was built without ICU.
    pub async fn create_with_collation(icu_locale: &str) -> TestDatabase {
        TestDatabase::create_with(&format!(
            " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{}'",
            icu_locale.replace('\'', "''")
        ))
        .await
    }

    /// `options` follow `CREATE DATABASE <name>`.
    async fn create_with(options: &str) -> TestDatabase {
        let admin_url = std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let admin = connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin_url}: {e}\n\
                 The PostgreSQL tests need a server: set {DATABASE_URL_ENV} to the URL of a role \
                 allowed to create databases, or run the tests through scripts/test."
            )
        });
        let name = format!("tongban_test_{}_{:016x}", std::process::id(), fastrand::u64(..));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}{options}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} at {admin_url}: {}", describe(&e)));
        TestDatabase {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// Store settings for this database, with timeouts short enough for tests.
    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings {
            url: self.url.clone(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
        }
    }

    /// A plain connection to this database, e.g. to look at tables directly.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }

    /// A connection to the admin database, e.g. to refuse connections to this one.
    pub async fn admin(&self) -> tokio_postgres::Client {
        connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.admin_url))
    }
}

impl Drop for TestDatabase {
    /// Drops the database from a thread of its own with its own runtime: `drop` cannot
    /// await, and blocking on the test's runtime from inside it would panic.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || drop_database(&admin_url, &name)).join();
        // No panic here: this may run while a failed test unwinds, and a second panic
        // would abort the whole test binary and hide the first.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let admin = connect(admin_url).await?;
        // FORCE: terminate whatever sessions a test left open (pools, crashed stores).
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .map_err(|e| describe(&e))
    })
}

/// Connects with a timeout and drives the connection on the current runtime.
async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    config.connect_timeout(ADMIN_CONNECT_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        // Ends when the client is dropped, or with an error when the server goes away,
        // which tests terminating backends do on purpose.
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `name`; both URL and key/value forms.
fn with_database(url: &str, name: &str) -> String {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|scheme| url.starts_with(scheme));
    let Some(scheme) = scheme else {
        // Key/value form: a later key overrides an earlier one.
        return format!("{url} dbname={name}");
    };
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let rest = &base[scheme.len()..];
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}{authority}/{name}?{query}"),
        None => format!("{scheme}{authority}/{name}"),
    }
}

/// The server's message or the I/O error underneath, not just tokio-postgres' summary
/// ("db error", "error connecting to server").
fn describe(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (error.as_db_error(), error.source()) {
        (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        (None, Some(source)) => format!("{error}: {source}"),
        (None, None) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_in_every_url_form() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t"),
            "postgres://postgres@127.0.0.1:5432/t"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t"),
            "postgresql://u:p@h/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "t"), "postgres://h:5432/t");
        assert_eq!(
            with_database("host=/run/postgresql user=postgres", "t"),
            "host=/run/postgresql user=postgres dbname=t"
        );
    }
}
