//! How to reach the database and how to behave there.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use vppkit_core::Secret;
use vppkit_store::{SecretCipher, StoreError};

/// Connection and behaviour settings of a [`PostgresStore`](crate::PostgresStore).
///
/// Built from a URL (`postgres://user:password@host:5432/database?sslmode=prefer`)
/// or field by field, then refined with by-value setters:
///
/// ```
/// use vppkit_store::SecretCipher;
/// use vppkit_store_postgres::PostgresOptions;
///
/// let options = PostgresOptions::from_url(
///     "postgres://vppkit:pw@db.internal:5432/mdm",
///     SecretCipher::from_key_bytes(&[7u8; 32])?,
/// )?
/// .schema("vppkit")?
/// .max_connections(16);
/// assert_eq!(options.schema_name(), Some("vppkit"));
/// assert!(!format!("{options:?}").contains("pw"));
/// # Ok::<(), vppkit_store::StoreError>(())
/// ```
///
/// Secrets (content tokens, notification auth tokens) are sealed with the given
/// [`SecretCipher`] before they are written; the password never appears in `Debug`.
#[derive(Clone)]
pub struct PostgresOptions {
    pub(crate) connect: PgConnectOptions,
    pub(crate) cipher: SecretCipher,
    pub(crate) schema: Option<String>,
    pub(crate) create_schema: bool,
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) migrate: bool,
    pub(crate) max_conflict_retries: u32,
    pub(crate) durable_sync_pages: bool,
}

impl PostgresOptions {
    fn with_connect(connect: PgConnectOptions, cipher: SecretCipher) -> Self {
        Self {
            connect: connect.application_name("vppkit"),
            cipher,
            schema: None,
            create_schema: false,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            migrate: true,
            max_conflict_retries: 8,
            durable_sync_pages: false,
        }
    }

    /// Options from a `postgres://` (or `postgresql://`) URL. Query parameters sqlx
    /// understands (`sslmode`, `options`, `application_name`, ...) are honoured.
    pub fn from_url(url: &str, cipher: SecretCipher) -> Result<Self, StoreError> {
        // The driver's message can quote the URL (and its password): not kept.
        let invalid = || {
            StoreError::invalid(
                "PostgreSQL URL",
                "not a valid postgres:// URL (user, host, port or parameters)",
            )
        };
        let scheme_ok = ["postgres://", "postgresql://"].iter().any(|s| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !scheme_ok {
            return Err(invalid());
        }
        let connect = PgConnectOptions::from_str(url).map_err(|_| invalid())?;
        Ok(Self::with_connect(connect, cipher))
    }

    /// Options for a server by host, port, user and database, without a password
    /// (trust, peer or certificate authentication); see [`PostgresOptions::password`].
    pub fn new(host: &str, port: u16, user: &str, database: &str, cipher: SecretCipher) -> Self {
        let connect = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(port)
            .username(user)
            .database(database);
        Self::with_connect(connect, cipher)
    }

    /// Sets the password.
    pub fn password(mut self, password: &Secret) -> Self {
        self.connect = self.connect.password(password.expose());
        self
    }

    /// Uses (and searches only) this schema: every table lives there, so several
    /// independent stores can share one database. The name must be a plain
    /// identifier (ASCII letters, digits and `_`, not starting with a digit, at
    /// most 63 characters).
    pub fn schema(mut self, name: &str) -> Result<Self, StoreError> {
        check_schema_name(name)?;
        self.connect = self.connect.options([("search_path", name)]);
        self.schema = Some(name.to_owned());
        Ok(self)
    }

    /// Creates the schema on connect when it does not exist (default: no).
    pub fn create_schema(mut self, create: bool) -> Self {
        self.create_schema = create;
        self
    }

    /// The most connections the pool opens (default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Connections the pool keeps open even when idle (default 0).
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a call waits for a free connection before it fails as
    /// [`Unavailable`](vppkit_store::ErrorKind::Unavailable) (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether connecting applies pending migrations (default yes). When no,
    /// connecting fails unless the schema is exactly at this build's version.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How many times a transaction that PostgreSQL aborted for a serialization
    /// failure or a deadlock is run again before the call fails as
    /// [`Unavailable`](vppkit_store::ErrorKind::Unavailable) (default 8).
    pub fn max_conflict_retries(mut self, n: u32) -> Self {
        self.max_conflict_retries = n;
        self
    }

    /// Whether committing a sync page waits until PostgreSQL has flushed it to
    /// disk (default no).
    ///
    /// By default sync pages commit with `synchronous_commit = off`: a crash of
    /// the PostgreSQL server (not of vppkit) can lose the pages of the last moments
    /// (at most three `wal_writer_delay`s), always whole pages with their cursor and
    /// in order, never a cursor without its data, and never a page that a later
    /// durable write (a reservation, a journal append, any other call) followed;
    /// the next sync fetches them again from Apple. That saves one disk flush per
    /// page, about half of a page's time at scale. Every other write is durable
    /// when the call returns.
    pub fn durable_sync_pages(mut self, durable: bool) -> Self {
        self.durable_sync_pages = durable;
        self
    }

    /// Sets the application name reported to the server (default `vppkit`).
    pub fn application_name(mut self, name: &str) -> Self {
        self.connect = self.connect.application_name(name);
        self
    }

    /// The schema the store uses, when one was chosen.
    pub fn schema_name(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("host", &self.connect.get_host())
            .field("port", &self.connect.get_port())
            .field("user", &self.connect.get_username())
            .field("database", &self.connect.get_database())
            .field("schema", &self.schema)
            .field("create_schema", &self.create_schema)
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .field("durable_sync_pages", &self.durable_sync_pages)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

/// Checks that a schema name is a plain identifier that needs no quoting.
pub(crate) fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "schema name",
            format!(
                "{:?} is not a plain identifier (ASCII letters, digits, '_', at most 63)",
                name.chars().take(70).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_store::ErrorKind;

    #[test]
    fn urls_and_schema_names_are_checked() {
        let c = SecretCipher::plaintext;
        assert!(PostgresOptions::from_url("postgres://u@localhost/db", c()).is_ok());
        let e = PostgresOptions::from_url("mysql://u:hunter2@x/db", c()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(!e.to_string().contains("hunter2"));
        let e = PostgresOptions::from_url("postgres://u:hunter2@x:port/db", c()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(!e.to_string().contains("hunter2"));
        let o = PostgresOptions::new("localhost", 5432, "u", "db", c());
        for bad in ["", "1abc", "a-b", "a;drop", "x\"y", &"a".repeat(64)] {
            assert_eq!(
                o.clone().schema(bad).unwrap_err().kind(),
                ErrorKind::Invalid,
                "{bad}"
            );
        }
        let o = o.schema("vppkit_1").unwrap();
        assert_eq!(o.schema_name(), Some("vppkit_1"));
    }

    #[test]
    fn debug_hides_the_password() {
        let o = PostgresOptions::from_url(
            "postgres://u:s3cret-pw@localhost/db",
            SecretCipher::plaintext(),
        )
        .unwrap()
        .password(&Secret::new("other-s3cret"));
        let text = format!("{o:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("localhost"));
    }
}
