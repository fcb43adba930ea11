//! The simulator: shared state, the builder, and the running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vppkit_core::{format_apple_datetime, ContentToken, Secret, Uid};

use crate::catalog::Catalog;
use crate::config::{Limits, SimConfig};
use crate::control::{Control, ServerErrorKind};
use crate::control_http::CONTROL_PREFIX;
use crate::hash::{derive_bytes, mix, MixHasher};
use crate::location::Location;
use crate::notify::{lock, Notifier};
use crate::presets::Preset;
use crate::spec::LocationSpec;
use crate::truth::TokenFile;
use crate::{SimClock, SimError};

/// Where the content metadata lookup is served.
pub(crate) const LOOKUP_PATH: &str = "/WebObjects/MZStorePlatform.woa/wa/lookup";
/// Where the invitation link of `urls.invitationEmail` points.
pub(crate) const INVITE_PATH: &str = "/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount";

/// One content token the simulator accepts.
#[derive(Debug, Clone)]
pub(crate) struct TokenRec {
    pub(crate) location: u32,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) revoked: bool,
    pub(crate) expired: bool,
}

/// Injected 5xx answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerFaults {
    pub(crate) remaining: u32,
    pub(crate) kind: ServerErrorKind,
    pub(crate) retry_after_secs: u32,
}

/// Everything the server, the ticker and the control handle share.
/// `Debug` by hand: the keys of `tokens` are content tokens (bearer credentials).
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) page_size: AtomicUsize,
    pub(crate) clock: SimClock,
    pub(crate) seed: u64,
    pub(crate) token_expiry: DateTime<Utc>,
    pub(crate) locations: RwLock<Vec<Arc<Mutex<Location>>>>,
    pub(crate) by_uid: RwLock<HashMap<String, u32>>,
    pub(crate) tokens: RwLock<HashMap<String, TokenRec>>,
    pub(crate) token_files: Mutex<Vec<TokenFile>>,
    pub(crate) catalog: RwLock<Catalog>,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) root_url: RwLock<String>,
    pub(crate) server_faults: Mutex<Option<ServerFaults>>,
    pub(crate) throttle: AtomicBool,
    /// `Retry-After` seconds on a 429 (9646); 0: none (Apple documents the
    /// header for 5xx only).
    pub(crate) throttle_retry_after: std::sync::atomic::AtomicU32,
    pub(crate) invalid_token_http_200: AtomicBool,
    /// Every page of assets, assignments and users carries one more record of
    /// a shape no client can read.
    pub(crate) unreadable_records: AtomicBool,
    pub(crate) latency: Mutex<Duration>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("seed", &self.seed)
            .field("token_expiry", &self.token_expiry)
            .field("locations", &read(&self.locations).len())
            .field("tokens", &read(&self.tokens).len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn slug(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_owned()
}

impl Shared {
    /// The location at `idx`.
    pub(crate) fn location(&self, idx: u32) -> Option<Arc<Mutex<Location>>> {
        read(&self.locations).get(idx as usize).cloned()
    }

    /// The location with `uId`.
    pub(crate) fn location_by_uid(&self, uid: &str) -> Result<Arc<Mutex<Location>>, SimError> {
        let idx = read(&self.by_uid)
            .get(uid)
            .copied()
            .ok_or_else(|| SimError::UnknownLocation(uid.to_owned()))?;
        self.location(idx)
            .ok_or_else(|| SimError::UnknownLocation(uid.to_owned()))
    }

    /// Creates a location and its first token.
    pub(crate) fn create_location(&self, spec: LocationSpec) -> Result<(u32, TokenFile), SimError> {
        let mut locations = write(&self.locations);
        let mut by_uid = write(&self.by_uid);
        let idx = locations.len() as u32;
        let uid = match spec.uid.clone() {
            Some(u) => u,
            None => {
                let mut n = u64::from(idx) + 1;
                loop {
                    let candidate = format!("7300{n:012}");
                    if !by_uid.contains_key(&candidate) {
                        break Uid::new(candidate)
                            .map_err(|_| SimError::UnknownLocation("generated uId".to_owned()))?;
                    }
                    n += 1000;
                }
            }
        };
        if by_uid.contains_key(uid.as_str()) {
            return Err(SimError::DuplicateLocation(uid.to_string()));
        }
        let mut h = std::hash::BuildHasher::build_hasher(
            &std::hash::BuildHasherDefault::<MixHasher>::default(),
        );
        std::hash::Hasher::write(&mut h, uid.as_str().as_bytes());
        let salt = mix(self.seed ^ std::hash::Hasher::finish(&h));
        let mut loc = Location::new(
            uid.clone(),
            spec.name.clone(),
            spec.org_name.clone(),
            spec.country.clone(),
            spec.account,
            salt,
        );
        loc.mdm_info = spec.mdm_info.clone();
        {
            let mut catalog = write(&self.catalog);
            for a in &spec.assets {
                loc.add_asset(a)?;
                catalog.add(a);
            }
        }
        locations.push(Arc::new(Mutex::new(loc)));
        by_uid.insert(uid.to_string(), idx);
        drop(by_uid);
        drop(locations);
        let token = self.issue_token(idx, false)?;
        Ok((idx, token))
    }

    /// Issues another token for location `idx` (same `uId`); optionally revokes
    /// the earlier ones (what Apple appears to do when a new token is downloaded).
    pub(crate) fn issue_token(
        &self,
        idx: u32,
        revoke_previous: bool,
    ) -> Result<TokenFile, SimError> {
        let loc = self
            .location(idx)
            .ok_or_else(|| SimError::UnknownLocation(idx.to_string()))?;
        let (uid, name, org, salt) = {
            let l = lock(&loc);
            (l.uid.clone(), l.name.clone(), l.org_name.clone(), l.salt)
        };
        let mut files = lock(&self.token_files);
        let mut tokens = write(&self.tokens);
        let n = files.iter().filter(|f| f.uid == uid).count() as u64;
        if revoke_previous {
            for t in tokens.values_mut().filter(|t| t.location == idx) {
                t.revoked = true;
            }
        }
        let mut raw = [0u8; 30];
        derive_bytes(salt ^ 0x70_6b_65_6e, n, &mut raw);
        let inner = base64::engine::general_purpose::STANDARD.encode(raw);
        let expires_at = self.token_expiry;
        let content = ContentToken::encode_file(&inner, &format_apple_datetime(expires_at), &org);
        tokens.insert(
            content.clone(),
            TokenRec {
                location: idx,
                expires_at,
                revoked: false,
                expired: false,
            },
        );
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{}", n + 1)
        };
        let file = TokenFile {
            location_name: name.clone(),
            org_name: org,
            uid,
            file_name: format!("{}{suffix}.vpptoken", slug(&name)),
            content: Secret::new(content),
            expires_at,
        };
        files.push(file.clone());
        Ok(file)
    }

    /// Runs the events that are due in every location and queues their
    /// notifications.
    pub(crate) fn tick(&self, force: bool) {
        let now = self.clock.now();
        let locations: Vec<_> = read(&self.locations).clone();
        for loc in locations {
            let out = {
                let mut l = lock(&loc);
                if !force && !l.has_due(now) {
                    continue;
                }
                l.process_due(now, force)
            };
            self.notifier.enqueue(out);
        }
    }

    /// `http://127.0.0.1:PORT` (or the configured public root).
    pub(crate) fn root(&self) -> String {
        read(&self.root_url).clone()
    }
}

/// An Apple Apps and Books API simulator (state and request handling). Cheap to
/// clone; clones share state. Usually obtained through
/// [`SimulatorBuilder::start`], which also serves it over HTTP.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub(crate) shared: Arc<Shared>,
}

impl Simulator {
    /// A builder with the empty preset, seed 0, 1,000 items per page, a
    /// real-time clock with a 200 ms event delay, HTTPS-only notifications,
    /// the control API on.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }

    /// The control handle (test and demo hooks, ground truth).
    pub fn control(&self) -> Control {
        Control {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every token file the simulator accepts, in creation order.
    pub fn token_files(&self) -> Vec<TokenFile> {
        lock(&self.shared.token_files).clone()
    }
}

/// Apple makes up to three delivery attempts per notification, in all.
pub const MAX_NOTIFICATION_ATTEMPTS: u32 = 3;

/// Configures and starts a [`Simulator`].
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    preset: Preset,
    seed: u64,
    page_size: usize,
    clock: SimClock,
    config: SimConfig,
    listen: String,
    throttle: bool,
    throttle_retry_after: u32,
    invalid_token_http_200: bool,
    token_expiry: DateTime<Utc>,
    public_root: Option<String>,
}

impl Default for SimulatorBuilder {
    fn default() -> Self {
        Self {
            preset: Preset::Empty,
            seed: 0,
            page_size: 1000,
            clock: SimClock::default(),
            config: SimConfig::default(),
            listen: "127.0.0.1:0".to_owned(),
            throttle: false,
            throttle_retry_after: 0,
            invalid_token_http_200: true,
            token_expiry: Utc
                .with_ymd_and_hms(2035, 12, 31, 23, 59, 59)
                .single()
                .unwrap_or_else(Utc::now),
            public_root: None,
        }
    }
}

impl SimulatorBuilder {
    /// The seeded scenario.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.preset = preset;
        self
    }

    /// The seed of every generated id (event ids, invite codes, tokens).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Items per page of assets, assignments and users (default 1,000).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The clock (default: real time, 200 ms event delay).
    pub fn clock(mut self, clock: SimClock) -> Self {
        self.clock = clock;
        self
    }

    /// Shortcut: a real-time clock with this event delay.
    pub fn event_delay(mut self, delay: Duration) -> Self {
        self.clock = self.clock.with_event_delay(delay);
        self
    }

    /// The limits announced in `service/config` and enforced.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Accept `http://` notification URLs whose host is a loopback address
    /// (`127.0.0.1`, `::1`, `localhost`), so tests can receive notifications
    /// without TLS. Off by default: like Apple, only `https://` is accepted.
    pub fn allow_http_loopback_notifications(mut self, yes: bool) -> Self {
        self.config.allow_http_loopback_notifications = yes;
        self
    }

    /// Delivery attempts per notification in all, first one included (default
    /// and at most 3, as Apple: "up to three attempts"; at least 1), and the pause
    /// between attempts (default 100 ms; Apple spreads them over 1 to 5 minutes).
    pub fn notification_attempts(mut self, attempts: u32, delay: Duration) -> Self {
        self.config.notification_attempts = attempts.clamp(1, MAX_NOTIFICATION_ATTEMPTS);
        self.config.notification_retry_delay = delay;
        self
    }

    /// Serve the control API (every [`Control`] hook and the ground truth as
    /// JSON under `/_sim/v1`, see the crate docs) on the same port. On by
    /// default: the simulator is a test tool. Switch it off to expose only
    /// Apple's paths (then `/_sim/v1/...` answers 404 like any unknown path).
    pub fn control_api(mut self, yes: bool) -> Self {
        self.config.control_api = yes;
        self
    }

    /// Send `Retry-After: secs` with a throttled answer (9646, HTTP 429). Default
    /// `None`: no header, as Apple documents `Retry-After` for 5xx answers only.
    pub fn throttle_retry_after(mut self, secs: Option<u32>) -> Self {
        self.throttle_retry_after = secs.unwrap_or(0);
        self
    }

    /// Start with throttling at `maxRequestPerSecond` switched on.
    pub fn throttle(mut self, yes: bool) -> Self {
        self.throttle = yes;
        self
    }

    /// Answer 9622 (unknown token) with HTTP 200 and the error body (default
    /// `true`: what Fleet's and zentral's clients of the real service meet, and
    /// what zentral's token-reload path relies on). `false` answers HTTP 401, the
    /// form of Fleet's own unit test.
    pub fn invalid_token_http_200(mut self, yes: bool) -> Self {
        self.invalid_token_http_200 = yes;
        self
    }

    /// `expDate` of issued tokens (default 2035-12-31T23:59:59+0000, so token
    /// files stay valid across restarts with the same seed).
    pub fn token_expiry(mut self, at: DateTime<Utc>) -> Self {
        self.token_expiry = at;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`: a free port).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// The root URL announced in `service/config` when the simulator is used
    /// without [`start`](Self::start) (default `http://127.0.0.1`).
    pub fn public_root(mut self, root: impl Into<String>) -> Self {
        self.public_root = Some(root.into());
        self
    }

    /// Builds the simulator and seeds the preset, without serving it.
    pub fn build(self) -> Result<Simulator, SimError> {
        let notifier = Arc::new(Notifier::new(&self.config));
        let shared = Arc::new(Shared {
            page_size: AtomicUsize::new(self.page_size),
            clock: self.clock,
            seed: self.seed,
            token_expiry: self.token_expiry,
            locations: RwLock::new(Vec::new()),
            by_uid: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
            token_files: Mutex::new(Vec::new()),
            catalog: RwLock::new(Catalog::default()),
            notifier,
            root_url: RwLock::new(
                self.public_root
                    .unwrap_or_else(|| "http://127.0.0.1".to_owned()),
            ),
            server_faults: Mutex::new(None),
            throttle: AtomicBool::new(self.throttle),
            throttle_retry_after: std::sync::atomic::AtomicU32::new(self.throttle_retry_after),
            invalid_token_http_200: AtomicBool::new(self.invalid_token_http_200),
            unreadable_records: AtomicBool::new(false),
            latency: Mutex::new(Duration::ZERO),
            config: self.config,
        });
        crate::presets::seed(&shared, self.preset)?;
        Ok(Simulator { shared })
    }

    /// Builds, seeds and serves the simulator on the configured address.
    pub async fn start(self) -> Result<RunningSimulator, SimError> {
        let listen = self.listen.clone();
        let sim = self.build()?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen.clone(),
            source,
        })?;
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        *write(&sim.shared.root_url) = format!("http://{host}");
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(Arc::clone(&sim.shared.notifier).run()));
        if !sim.shared.clock.is_manual() {
            let shared = Arc::clone(&sim.shared);
            let tick = (shared.clock.event_delay() / 4)
                .clamp(Duration::from_millis(2), Duration::from_millis(25));
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    shared.tick(false);
                }
            }));
        }
        let (tx, rx) = oneshot::channel::<()>();
        let router = crate::server::router(sim.clone());
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        }));
        Ok(RunningSimulator {
            sim,
            addr,
            tasks,
            shutdown: Some(tx),
        })
    }
}

/// A simulator served over HTTP on a loopback port. Dropping it stops the
/// server and its background tasks.
#[derive(Debug)]
pub struct RunningSimulator {
    sim: Simulator,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl RunningSimulator {
    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> String {
        self.sim.shared.root()
    }

    /// The v2 base: `http://127.0.0.1:PORT/mdm/v2` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("{}/mdm/v2", self.root_url())
    }

    /// The content metadata lookup URL (as in `urls.contentMetadataLookup`).
    pub fn metadata_url(&self) -> String {
        format!("{}{LOOKUP_PATH}", self.root_url())
    }

    /// The control API's base, `http://127.0.0.1:PORT/_sim/v1`, or `None`
    /// when [`SimulatorBuilder::control_api`] switched it off.
    pub fn control_url(&self) -> Option<String> {
        self.sim
            .shared
            .config
            .control_api
            .then(|| format!("{}{CONTROL_PREFIX}", self.root_url()))
    }

    /// Every token file the simulator accepts.
    pub fn token_files(&self) -> Vec<TokenFile> {
        self.sim.token_files()
    }

    /// The control handle.
    pub fn control(&self) -> Control {
        self.sim.control()
    }

    /// The simulator itself (for in-process requests).
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Stops serving and waits for the server task to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Whether a token is usable now.
pub(crate) fn token_now_expired(rec: &TokenRec) -> bool {
    rec.expired || rec.expires_at <= Utc::now()
}

pub(crate) fn page_size(shared: &Shared) -> usize {
    shared.page_size.load(Ordering::Relaxed)
}
