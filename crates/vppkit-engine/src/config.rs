//! The engine's configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use vppkit_core::{MdmInfo, Secret};

use crate::liveness::InstanceLiveness;

/// Largest notification body accepted by default. Apple sends at most 100 items
/// per notification, a few kilobytes; 256 KiB leaves room and bounds the work a
/// forged request can cause.
pub const DEFAULT_MAX_NOTIFICATION_BODY: usize = 256 * 1024;

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The webhook URL is not an absolute `https` URL with a host and no query.
    #[error("the notification URL must be an https URL with a host and no query or fragment")]
    BadWebhookUrl,
    /// The webhook URL or its auth token is longer than Apple accepts (512).
    #[error("the notification {0} is longer than the 512 characters Apple accepts")]
    WebhookTooLong(&'static str),
    /// The notification auth token is empty.
    #[error("the notification auth token must not be empty")]
    EmptyAuthToken,
    /// A duration or size that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The engine was built without an MDM command sink.
    #[error("the engine needs an MDM command sink")]
    MissingSink,
}

/// Where Apple delivers notifications and the shared secret it sends with them.
#[derive(Clone)]
pub struct WebhookConfig {
    url: url::Url,
    auth_token: Secret,
}

impl WebhookConfig {
    /// Apple's limit on the URL and on the token (`maxNotificationLength`).
    pub const MAX_LEN: usize = 512;

    /// Validates the URL (https, host, no query, no fragment) and the token.
    pub fn new(url: &str, auth_token: Secret) -> Result<Self, ConfigError> {
        if url.chars().count() > Self::MAX_LEN {
            return Err(ConfigError::WebhookTooLong("URL"));
        }
        if auth_token.is_empty() {
            return Err(ConfigError::EmptyAuthToken);
        }
        if auth_token.expose().chars().count() > Self::MAX_LEN {
            return Err(ConfigError::WebhookTooLong("auth token"));
        }
        let parsed = url::Url::parse(url).map_err(|_| ConfigError::BadWebhookUrl)?;
        if parsed.scheme() != "https"
            || parsed.host_str().is_none()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(ConfigError::BadWebhookUrl);
        }
        Ok(Self {
            url: parsed,
            auth_token,
        })
    }

    /// Like [`WebhookConfig::new`], but also accepts a plain `http://` URL on the
    /// loopback interface (`127.0.0.1`, `[::1]`, `localhost`): for tests and demos
    /// against `vppkit-sim`, which can deliver there. Apple itself only posts to
    /// `https://` URLs.
    pub fn loopback_http(url: &str, auth_token: Secret) -> Result<Self, ConfigError> {
        let parsed = url::Url::parse(url).map_err(|_| ConfigError::BadWebhookUrl)?;
        let loopback = matches!(
            parsed.host_str(),
            Some("127.0.0.1") | Some("[::1]") | Some("localhost")
        );
        if parsed.scheme() == "http" && loopback {
            let as_https = url.replacen("http://", "https://", 1);
            let mut config = Self::new(&as_https, auth_token)?;
            config.url = parsed;
            return Ok(config);
        }
        Self::new(url, auth_token)
    }

    /// The URL Apple posts to (checked when the config was built).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The bearer secret Apple sends with each notification.
    pub fn auth_token(&self) -> &Secret {
        &self.auth_token
    }

    /// Whether this is a plain-`http` loopback webhook (only possible through
    /// [`WebhookConfig::loopback_http`]); the engine then asks `vppkit-client` to
    /// allow it when subscribing.
    pub fn is_loopback_http(&self) -> bool {
        self.url.scheme() == "http"
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url.as_str())
            .field("auth_token", &self.auth_token)
            .finish()
    }
}

/// Everything the engine needs to know that is not in the store.
///
/// Build with [`EngineConfig::new`] and the `with_*` setters; every field has a
/// sensible default except our own `mdmInfo`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Our `mdmInfo`, written to every token we claim and compared with the one
    /// on every Apple answer.
    pub mdm_info: MdmInfo,
    /// Notification subscription; `None` means no webhook (polling and syncs only).
    pub webhook: Option<WebhookConfig>,
    /// A token expiring within this window is reported as `expiring` (default 30 days).
    pub expiry_warning: chrono::Duration,
    /// Time between two scheduled syncs of a location (default 12 hours).
    pub sync_interval: Duration,
    /// Up to this much is added at random to each sync interval so that hundreds of
    /// locations do not sync at the same instant (default 30 minutes).
    pub sync_jitter: Duration,
    /// A scheduled sync walks every assignment and user again (a full
    /// reconciliation) when the last full walk of the location is older than
    /// this (default 7 days). An incremental read cannot show removed
    /// assignments; besides this period, a full walk also runs whenever the
    /// assigned counts disagree with Apple's after an incremental read.
    pub full_sync_interval: Duration,
    /// Time between two event status polls while an event is pending (default 30 s,
    /// Apple's minimum).
    pub event_poll_interval: Duration,
    /// An event still pending after this long is re-checked against the
    /// assignments before anything is resent (default 10 minutes, as Apple asks).
    pub event_recheck_after: Duration,
    /// Largest notification body accepted (default [`DEFAULT_MAX_NOTIFICATION_BODY`]).
    pub max_notification_body: usize,
    /// Id of this engine instance, for leases (default: a random UUID).
    pub instance_id: String,
    /// How long a lease on a location lasts before another instance may take it
    /// over (default 2 minutes). Leases are renewed well before that.
    pub lease_duration: Duration,
    /// Tells when the instance holding a lease is gone, so the lease is taken over at
    /// once instead of waited out (default: none, every lease is waited out). See
    /// [`LocalProcesses`](crate::LocalProcesses) for instances on one host.
    pub instance_liveness: Option<Arc<dyn InstanceLiveness>>,
    /// How many locations are synced or applied at the same time (default 64).
    /// Each location keeps within its own token's rate limit.
    pub max_concurrent_locations: usize,
    /// The reconcile loop's slow tick: every location is reconciled at least this
    /// often even when nothing asked for it (default 15 minutes). Triggers
    /// (purchases, accepted invitations, finished events, desired-state edits,
    /// self-service requests, syncs that found changes) reconcile at once. Each
    /// slow tick first re-reads every location's licence counts (one
    /// `GET assets` walk, [`Engine::refresh_counts`](crate::Engine::refresh_counts)),
    /// so a purchase whose notification never came (none configured, or lost)
    /// waits at most this long, not for the next sync.
    pub reconcile_interval: Duration,
    /// When a plan releases too many of a location's licences, its releases are
    /// held until confirmed (see [`BlastRadius`]).
    pub blast_radius: BlastRadius,
    /// A command the MDM already has (handed out, or answered) is not handed out
    /// again for the same desired-state revision before this long (default 24
    /// hours), so a re-plan that asks for the same install or removal again
    /// does not flood the device.
    pub command_cooldown: Duration,
    /// Processed notification ids, finished operations and answered commands are
    /// forgotten after this long (default 30 days).
    pub retention: Duration,
    /// How many locations' ledgers this instance keeps in memory at most
    /// (default 256); the least recently used one is dropped past that and
    /// rebuilt from the store when needed again.
    pub ledger_cache_capacity: usize,
}

/// The blast-radius guard: a plan that would release, disassociate or revoke
/// more than `max_share` of a location's held licences, or more than
/// `max_count` of them, has those releases held until an operator confirms the
/// desired-state revision ([`Engine::confirm_releases`](crate::Engine::confirm_releases)).
/// An empty or broken directory export then never takes every licence back.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BlastRadius {
    /// Largest share of a location's held licences released without
    /// confirmation (default 0.10).
    pub max_share: f64,
    /// Largest number released without confirmation (default 100).
    pub max_count: u64,
}

impl BlastRadius {
    /// The defaults: 10% or 100 licences.
    pub const DEFAULT: BlastRadius = BlastRadius {
        max_share: 0.10,
        max_count: 100,
    };

    /// A guard with these limits.
    pub fn new(max_share: f64, max_count: u64) -> Self {
        Self {
            max_share,
            max_count,
        }
    }

    /// No guard (every plan is applied as it is).
    pub fn off() -> Self {
        Self {
            max_share: 1.0,
            max_count: u64::MAX,
        }
    }

    /// Whether releasing `released` of `held` licences needs a confirmation.
    pub fn exceeded(&self, released: u64, held: u64) -> bool {
        if released == 0 {
            return false;
        }
        if released > self.max_count {
            return true;
        }
        let held = held.max(released);
        (released as f64) / (held as f64) > self.max_share
    }
}

impl Default for BlastRadius {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl EngineConfig {
    /// A configuration with our `mdmInfo` and every other value at its default.
    pub fn new(mdm_info: MdmInfo) -> Self {
        Self {
            mdm_info,
            webhook: None,
            expiry_warning: chrono::Duration::days(30),
            sync_interval: Duration::from_secs(12 * 3600),
            sync_jitter: Duration::from_secs(30 * 60),
            full_sync_interval: Duration::from_secs(7 * 24 * 3600),
            event_poll_interval: Duration::from_secs(30),
            event_recheck_after: Duration::from_secs(10 * 60),
            max_notification_body: DEFAULT_MAX_NOTIFICATION_BODY,
            instance_id: uuid::Uuid::new_v4().to_string(),
            lease_duration: Duration::from_secs(120),
            instance_liveness: None,
            max_concurrent_locations: 64,
            reconcile_interval: Duration::from_secs(15 * 60),
            blast_radius: BlastRadius::DEFAULT,
            command_cooldown: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            ledger_cache_capacity: 256,
        }
    }

    /// Sets the reconcile loop's slow tick.
    pub fn with_reconcile_interval(mut self, interval: Duration) -> Self {
        self.reconcile_interval = interval;
        self
    }

    /// Sets the blast-radius guard.
    pub fn with_blast_radius(mut self, guard: BlastRadius) -> Self {
        self.blast_radius = guard;
        self
    }

    /// Sets how long a command the MDM has is not handed out again.
    pub fn with_command_cooldown(mut self, cooldown: Duration) -> Self {
        self.command_cooldown = cooldown;
        self
    }

    /// Sets how long processed notifications, finished operations and answered
    /// commands are kept.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Sets how many locations' ledgers are kept in memory.
    pub fn with_ledger_cache_capacity(mut self, n: usize) -> Self {
        self.ledger_cache_capacity = n;
        self
    }

    /// Subscribes to notifications at this webhook.
    pub fn with_webhook(mut self, webhook: WebhookConfig) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// Sets the expiry warning window.
    pub fn with_expiry_warning(mut self, window: chrono::Duration) -> Self {
        self.expiry_warning = window;
        self
    }

    /// Sets the sync interval and its jitter.
    pub fn with_sync_interval(mut self, interval: Duration, jitter: Duration) -> Self {
        self.sync_interval = interval;
        self.sync_jitter = jitter;
        self
    }

    /// Sets the longest time between two full reconciliations of a location.
    pub fn with_full_sync_interval(mut self, interval: Duration) -> Self {
        self.full_sync_interval = interval;
        self
    }

    /// Sets the event polling interval and the re-check delay.
    pub fn with_event_polling(mut self, interval: Duration, recheck_after: Duration) -> Self {
        self.event_poll_interval = interval;
        self.event_recheck_after = recheck_after;
        self
    }

    /// Sets the largest accepted notification body.
    pub fn with_max_notification_body(mut self, bytes: usize) -> Self {
        self.max_notification_body = bytes;
        self
    }

    /// Sets this instance's id (for leases).
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    /// Sets what tells that the holder of a lease is gone (its leases are then taken
    /// over at once).
    pub fn with_instance_liveness(mut self, liveness: Arc<dyn InstanceLiveness>) -> Self {
        self.instance_liveness = Some(liveness);
        self
    }

    /// Sets the lease duration.
    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// Sets how many locations are worked on at once.
    pub fn with_max_concurrent_locations(mut self, n: usize) -> Self {
        self.max_concurrent_locations = n;
        self
    }

    /// Checks that every value can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sync_interval.is_zero() {
            return Err(ConfigError::Zero("sync interval"));
        }
        if self.full_sync_interval.is_zero() {
            return Err(ConfigError::Zero("full sync interval"));
        }
        if self.event_poll_interval.is_zero() {
            return Err(ConfigError::Zero("event poll interval"));
        }
        if self.max_notification_body == 0 {
            return Err(ConfigError::Zero("max notification body"));
        }
        if self.lease_duration.is_zero() {
            return Err(ConfigError::Zero("lease duration"));
        }
        if self.max_concurrent_locations == 0 {
            return Err(ConfigError::Zero("max concurrent locations"));
        }
        if self.reconcile_interval.is_zero() {
            return Err(ConfigError::Zero("reconcile interval"));
        }
        if self.retention.is_zero() {
            return Err(ConfigError::Zero("retention"));
        }
        if self.ledger_cache_capacity == 0 {
            return Err(ConfigError::Zero("ledger cache capacity"));
        }
        if self.blast_radius.max_share.is_nan() || self.blast_radius.max_share < 0.0 {
            return Err(ConfigError::Zero("blast radius share"));
        }
        if self.instance_id.is_empty() {
            return Err(ConfigError::Zero("instance id length"));
        }
        Ok(())
    }

    /// The delay before the next scheduled sync: the interval plus a jitter drawn
    /// uniformly from `[0, sync_jitter]` by `rng`.
    pub fn next_sync_delay(&self, rng: &mut impl rand::Rng) -> Duration {
        let jitter_ms = u64::try_from(self.sync_jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rng.gen_range(0..=jitter_ms)
        };
        self.sync_interval + Duration::from_millis(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mdm() -> MdmInfo {
        MdmInfo::new("id-1", "Test MDM", "mdm.example.org").unwrap()
    }

    #[test]
    fn defaults() {
        let c = EngineConfig::new(mdm());
        assert_eq!(c.expiry_warning, chrono::Duration::days(30));
        assert_eq!(c.sync_interval, Duration::from_secs(43_200));
        assert_eq!(c.full_sync_interval, Duration::from_secs(604_800));
        assert_eq!(c.event_poll_interval, Duration::from_secs(30));
        assert_eq!(c.event_recheck_after, Duration::from_secs(600));
        assert_eq!(c.max_notification_body, DEFAULT_MAX_NOTIFICATION_BODY);
        assert!(c.webhook.is_none());
        c.validate().unwrap();
    }

    #[test]
    fn jitter_stays_in_window() {
        let c = EngineConfig::new(mdm())
            .with_sync_interval(Duration::from_secs(100), Duration::from_secs(10));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen_distinct = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = c.next_sync_delay(&mut rng);
            assert!(d >= Duration::from_secs(100) && d <= Duration::from_secs(110));
            seen_distinct.insert(d);
        }
        assert!(seen_distinct.len() > 10, "jitter should vary");
        let no_jitter =
            EngineConfig::new(mdm()).with_sync_interval(Duration::from_secs(5), Duration::ZERO);
        assert_eq!(no_jitter.next_sync_delay(&mut rng), Duration::from_secs(5));
    }

    #[test]
    fn webhook_validation() {
        let ok = WebhookConfig::new("https://mdm.example.org/vpp/notify", Secret::new("s3cret"))
            .unwrap();
        assert!(
            ok.url().starts_with("https://mdm.example.org/"),
            "{}",
            ok.url()
        );
        assert!(!format!("{ok:?}").contains("s3cret"));
        for bad in [
            "http://mdm.example.org/x",
            "https://mdm.example.org/x?a=1",
            "https://mdm.example.org/x#f",
            "not a url",
        ] {
            assert_eq!(
                WebhookConfig::new(bad, Secret::new("t")).unwrap_err(),
                ConfigError::BadWebhookUrl,
                "{bad}"
            );
        }
        let lo =
            WebhookConfig::loopback_http("http://127.0.0.1:8080/hook", Secret::new("t")).unwrap();
        assert!(lo.is_loopback_http());
        assert!(
            !WebhookConfig::loopback_http("https://a.example/x", Secret::new("t"))
                .unwrap()
                .is_loopback_http()
        );
        assert!(lo.url().starts_with("http://"), "{}", lo.url());
        assert_eq!(
            WebhookConfig::loopback_http("http://example.org/hook", Secret::new("t")).unwrap_err(),
            ConfigError::BadWebhookUrl
        );
        assert_eq!(
            WebhookConfig::new("https://a.example/x", Secret::new("")).unwrap_err(),
            ConfigError::EmptyAuthToken
        );
        let long = format!("https://a.example/{}", "x".repeat(600));
        assert_eq!(
            WebhookConfig::new(&long, Secret::new("t")).unwrap_err(),
            ConfigError::WebhookTooLong("URL")
        );
        assert_eq!(
            WebhookConfig::new("https://a.example/x", Secret::new("t".repeat(513))).unwrap_err(),
            ConfigError::WebhookTooLong("auth token")
        );
    }

    #[test]
    fn validation_rejects_zeros() {
        let c = EngineConfig::new(mdm()).with_max_notification_body(0);
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero("max notification body"))
        );
        let c = EngineConfig::new(mdm()).with_max_concurrent_locations(0);
        assert!(c.validate().is_err());
    }
}
