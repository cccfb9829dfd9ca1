//! The PostgreSQL server the benchmark runs against, and the throw-away databases it
//! makes there: one for the baselines, one per run of the hub on PostgreSQL. Each is
//! dropped when its guard goes, also on error or interruption.

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// The server, reached through an administrative URL (a role that may create databases).
#[derive(Debug, Clone)]
pub struct Server {
    admin_url: String,
}

impl Server {
    /// Connects once to make sure the server is there, with an error that says what to do.
    pub async fn check(admin_url: &str) -> anyhow::Result<Server> {
        let server = Server {
            admin_url: admin_url.to_owned(),
        };
        server.admin().await?;
        Ok(server)
    }

    async fn admin(&self) -> anyhow::Result<Client> {
        connect(&self.admin_url).await.with_context(|| {
            format!(
                "PostgreSQL at {} is not reachable; start it or give another server with --database-url",
                self.admin_url
            )
        })
    }

    /// A new empty database named `<prefix>_<pid>_<nanos>`.
    pub async fn create(&self, prefix: &str) -> anyhow::Result<Database> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}_{}_{nanos:08x}", std::process::id());
        self.admin()
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name} (the role needs CREATEDB)"))?;
        Ok(Database {
            url: with_database(&self.admin_url, &name),
            name,
            admin_url: self.admin_url.clone(),
            dropped: false,
        })
    }
}

/// A database of this run, dropped (with any connection left to it) when the guard goes.
#[derive(Debug)]
pub struct Database {
    pub name: String,
    pub url: String,
    admin_url: String,
    dropped: bool,
}

impl Database {
    pub async fn connect(&self) -> anyhow::Result<Client> {
        connect(&self.url)
            .await
            .with_context(|| format!("connecting to database {}", self.name))
    }

    /// Drops the database now, reporting a failure (the guard's drop can only warn).
    pub async fn drop_now(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&drop_sql(&self.name))
            .await
            .with_context(|| format!("dropping database {}", self.name))?;
        Ok(())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside the runtime (an error unwinding the run): a thread of its
        // own with its own runtime works from anywhere.
        let (url, sql) = (self.admin_url.clone(), drop_sql(&self.name));
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                connect(&url).await?.batch_execute(&sql).await?;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop database {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: could not drop database {}: the thread panicked", self.name),
        }
    }
}

fn drop_sql(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
}

/// One connection, its driver task spawned.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("bench: a PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

/// `url` with its database replaced by `name`: `postgres://…/other?x` → `postgres://…/name?x`;
/// a key=value string gets `dbname=name` appended (the last one wins).
pub fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={name}");
    };
    let authority_start = scheme_end + 3;
    let query = url[authority_start..].find('?').map(|i| authority_start + i);
    let before_query = &url[..query.unwrap_or(url.len())];
    let rest = &url[query.unwrap_or(url.len())..];
    let base = match before_query[authority_start..].find('/') {
        Some(slash) => &before_query[..authority_start + slash],
        None => before_query,
    };
    format!("{base}/{name}{rest}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(with_database("postgres://h:1", "b1"), "postgres://h:1/b1");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "b1"),
            "postgresql://u:p@h/b1?sslmode=disable"
        );
        assert_eq!(with_database("host=h user=u", "b1"), "host=h user=u dbname=b1");
    }
}
