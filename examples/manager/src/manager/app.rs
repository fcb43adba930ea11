//! Opening the manager: the store from `--db`, the secret key, the manager's identity, and
//! the engine pointed at `--apple-url`.

use std::sync::Arc;
use std::time::Duration;

use vppkit::core::MdmInfo;
use vppkit::engine::{Engine, EngineConfig, LocalProcesses, WebhookConfig};
use vppkit::store::{SecretCipher, Store};
use vppkit::store_sqlite::SqliteStore;
use vppkit_store_postgres::PostgresStore;

use super::error::{ManagerError, Result};
use super::sink::RecordingSink;
use super::state::{self, ManagerIdentity};

/// Apple's Apps and Books API v2.
pub(crate) const APPLE_URL: &str = "https://vpp.itunes.apple.com/mdm/v2";
/// The default database: a SQLite file in the current directory.
pub(crate) const DEFAULT_DB: &str = "vppkit-manager.db";
/// The environment variable holding the key that encrypts content tokens at rest.
pub(crate) const KEY_ENV: &str = "VPPKIT_SECRET_KEY";

/// What the manager is opened with.
#[derive(Debug, Clone)]
pub(crate) struct OpenOptions {
    /// `postgres://...`, `sqlite:...` or a file path (see [`sqlite_url`]).
    pub(crate) db: String,
    /// Apple's API base (or the simulator's).
    pub(crate) apple_url: String,
    /// Where Apple posts notifications (`https://...`, or `http://127.0.0.1...` for the
    /// simulator); `None` means no notifications (event polling and syncs only).
    pub(crate) webhook_url: Option<String>,
}

/// The opened manager.
pub(crate) struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Engine,
    pub(crate) sink: Arc<RecordingSink>,
    pub(crate) identity: ManagerIdentity,
}

/// The cipher from `VPPKIT_SECRET_KEY`.
pub(crate) fn cipher_from_env() -> Result<SecretCipher> {
    let key = std::env::var(KEY_ENV).map_err(|_| {
        ManagerError::Key(format!(
            "set {KEY_ENV} to a base64 32-byte key (e.g. `openssl rand -base64 32`): content tokens are stored encrypted with it"
        ))
    })?;
    SecretCipher::from_base64(key.trim())
        .map_err(|_| ManagerError::Key(format!("{KEY_ENV} is not a base64 32-byte key")))
}

/// Whether a URL points at this machine (the simulator): event status is then polled
/// every 250 ms instead of Apple's 30-second minimum.
pub(crate) fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| rest.starts_with(h))
}

/// The SQLite URL for `--db`: a plain path becomes `sqlite://PATH?mode=rwc`; a `sqlite:` URL
/// gets `mode=rwc` when it names no mode, so both create a missing file (sqlx's default
/// for a URL is `mode=rw`, which fails with "unable to open database file"). `None` for a
/// PostgreSQL URL. Any other `scheme://` is an error rather than a file name.
pub(crate) fn sqlite_url(db: &str) -> Result<Option<String>> {
    if let Some((scheme, _)) = db.split_once("://") {
        let is_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme {
            match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => return Ok(None),
                "sqlite" => {}
                _ => {
                    return Err(ManagerError::usage(format!(
                        "--db {scheme}://...: unknown database scheme {scheme:?}; use a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB"
                    )))
                }
            }
        }
    }
    let Some(rest) = db.strip_prefix("sqlite:") else {
        return Ok(Some(format!("sqlite://{db}?mode=rwc")));
    };
    let in_memory = rest.trim_start_matches('/').starts_with(":memory:");
    let has_mode = rest
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("mode=")));
    if in_memory || has_mode {
        return Ok(Some(db.to_owned()));
    }
    let separator = if rest.contains('?') { '&' } else { '?' };
    Ok(Some(format!("{db}{separator}mode=rwc")))
}

/// Opens a store from `--db`: `postgres://` / `postgresql://`, `sqlite:` or a plain path
/// (a SQLite file, created if missing, see [`sqlite_url`]).
pub(crate) async fn open_store(url: &str, cipher: SecretCipher) -> Result<Arc<dyn Store>> {
    match sqlite_url(url)? {
        None => Ok(Arc::new(PostgresStore::connect_url(url, cipher).await?)),
        Some(sqlite_url) => Ok(Arc::new(SqliteStore::connect(&sqlite_url, cipher).await?)),
    }
}

impl App {
    /// Opens the store and builds the engine.
    pub(crate) async fn open(options: OpenOptions, cipher: SecretCipher) -> Result<Self> {
        let store = open_store(&options.db, cipher.clone()).await?;
        Self::with_store(options, store, &cipher).await
    }

    /// Builds the engine over an opened store.
    pub(crate) async fn with_store(
        options: OpenOptions,
        store: Arc<dyn Store>,
        cipher: &SecretCipher,
    ) -> Result<Self> {
        let identity = state::identity(&store, cipher).await?;
        let mdm = MdmInfo::new(
            identity.mdm_id.clone(),
            "vppkit manager example",
            "vppkit-manager",
        )
        .map_err(|e| ManagerError::usage(format!("mdmInfo: {e}")))?;
        // An instance id that names this process, so that the next manager on this host
        // takes over at once the leases of one that was killed, instead of waiting them
        // out (the fencing token still refuses anything the killed one would write).
        let mut config = EngineConfig::new(mdm)
            .with_instance_id(LocalProcesses::instance_id("manager"))
            .with_instance_liveness(Arc::new(LocalProcesses));
        if is_loopback(&options.apple_url) {
            config = config.with_event_polling(Duration::from_millis(250), Duration::from_secs(30));
        }
        if let Some(url) = &options.webhook_url {
            let webhook = WebhookConfig::loopback_http(url, identity.notification_secret.clone())
                .map_err(|e| ManagerError::usage(format!("--webhook-url {url}: {e}")))?;
            config = config.with_webhook(webhook);
        }
        let sink = Arc::new(RecordingSink::default());
        let engine = Engine::builder(store.clone(), config)
            .sink(sink.clone())
            .apple_base_url(options.apple_url.clone())
            .build()?;
        Ok(Self {
            store,
            engine,
            sink,
            identity,
        })
    }
}
