//! The client: configuration, request execution (pacing, retries, error bodies),
//! and one method per endpoint.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, RETRY_AFTER, USER_AGENT,
};
use reqwest::Method;
use tokio::time::Instant;
use tracing::Instrument;
use vppkit_core::{AdamId, AssetMetadata, ContentToken, EventId, Secret};

use crate::assets::RawAssetsPage;
use crate::assignments::RawAssignmentsPage;
use crate::client_config::parse_client_config;
use crate::events::{split_event_response, split_event_status};
use crate::metadata::{parse_metadata_lookup, DEFAULT_METADATA_LOOKUP_URL};
use crate::pacer::Pacer;
use crate::pagination::{FetchPage, PageFields, RawPage, WalkSettings};
use crate::retry::{parse_retry_after, RequestKind};
use crate::users::RawUsersPage;
use crate::{
    ApiError, ApiResponse, AssetFilter, Assignment, AssignmentFilter, ClaimStatus, ClientConfig,
    ClientConfigRequest, DecodeError, Envelope, Error, EventResponse, EventStatus, Limits,
    ManageAssetsRequest, ManageUsersRequest, MetadataQuery, Pacing, Page, PageStream,
    ResponseAsset, ResponseUser, RetryPolicy, RevokeAssetsRequest, ServiceConfig, UserFilter,
    VersionChangePolicy,
};

/// Apple's production base URL of the management API v2.
pub const DEFAULT_BASE_URL: &str = "https://vpp.itunes.apple.com/mdm/v2";

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("vppkit/", env!("CARGO_PKG_VERSION"));

/// Something that yields the bearer credential: a parsed [`ContentToken`] or the
/// file content as a [`Secret`].
pub trait IntoBearer {
    /// The bearer credential (the whole `.vpptoken` file content).
    fn into_bearer(self) -> Secret;
}

impl IntoBearer for Secret {
    fn into_bearer(self) -> Secret {
        self
    }
}

impl IntoBearer for &Secret {
    fn into_bearer(self) -> Secret {
        self.clone()
    }
}

impl IntoBearer for ContentToken {
    fn into_bearer(self) -> Secret {
        self.bearer().clone()
    }
}

impl IntoBearer for &ContentToken {
    fn into_bearer(self) -> Secret {
        self.bearer().clone()
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    bearer: Option<Secret>,
    base_url: String,
    http: Option<reqwest::Client>,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    retry: RetryPolicy,
    pages_in_flight: usize,
    version_change_policy: VersionChangePolicy,
    max_walk_restarts: u32,
    expected_mdm_id: Option<String>,
    pacing: Pacing,
    service_config_ttl: Duration,
    metadata_lookup_url: Option<String>,
    strict_records: bool,
}

impl ClientBuilder {
    /// A builder for a client bound to one content token.
    pub fn new(token: impl IntoBearer) -> Self {
        let mut b = Self::unauthenticated();
        b.bearer = Some(token.into_bearer());
        b
    }

    /// A builder for a client without a token: only [`Client::service_config`]
    /// (and public metadata lookups) work; other calls fail with [`Error::NoToken`].
    pub fn unauthenticated() -> Self {
        Self {
            bearer: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: RetryPolicy::default(),
            pages_in_flight: 5,
            version_change_policy: VersionChangePolicy::default(),
            max_walk_restarts: 3,
            expected_mdm_id: None,
            pacing: Pacing::default(),
            service_config_ttl: Duration::from_secs(300),
            metadata_lookup_url: None,
            strict_records: false,
        }
    }

    /// Overrides the base URL (a simulator, a mock server, a proxy).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Uses a caller-supplied HTTP client (its own TLS, proxy, pool settings).
    /// Timeouts and the user agent of this builder are still set per request.
    ///
    /// The one place a foreign type is in this crate's API, on purpose: an escape
    /// hatch for what the builder does not expose. It follows the `reqwest` version
    /// this crate depends on (0.12), so a major `reqwest` upgrade changes it;
    /// nothing else does (errors are [`TransportError`](crate::TransportError) and
    /// [`DecodeError`](crate::DecodeError)).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout of the built-in HTTP client (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `vppkit/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Pages in flight during a paginated walk (default 5, Apple's maximum).
    pub fn pages_in_flight(mut self, n: usize) -> Self {
        self.pages_in_flight = n.max(1);
        self
    }

    /// What a walk does when `versionId` changes (default: restart).
    pub fn version_change_policy(mut self, policy: VersionChangePolicy) -> Self {
        self.version_change_policy = policy;
        self
    }

    /// How many times a walk may restart before failing (default 3).
    pub fn max_walk_restarts(mut self, n: u32) -> Self {
        self.max_walk_restarts = n;
        self
    }

    /// Our own `mdmInfo.id`: answers claimed by another MDM are logged and
    /// [`Client::claim_status`] reports them.
    pub fn expected_mdm_id(mut self, id: impl Into<String>) -> Self {
        self.expected_mdm_id = Some(id.into());
        self
    }

    /// Request pacing (default: `maxRequestPerSecond` from service config).
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// How long service config (limits, URLs) is cached (default 5 minutes).
    pub fn service_config_ttl(mut self, ttl: Duration) -> Self {
        self.service_config_ttl = ttl;
        self
    }

    /// Overrides the metadata lookup URL (otherwise service config's
    /// `contentMetadataLookup`).
    pub fn metadata_lookup_url(mut self, url: impl Into<String>) -> Self {
        self.metadata_lookup_url = Some(url.into());
        self
    }

    /// Whether a record of a page that cannot be read fails the walk
    /// ([`Error::Record`]) instead of being skipped and reported in
    /// [`Page::skipped`] (default `false`: skip, report, log at `warn`).
    pub fn strict_records(mut self, strict: bool) -> Self {
        self.strict_records = strict;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base = url::Url::parse(&self.base_url)
            .map_err(|e| Error::InvalidRequest(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!(
                "base URL {:?} is not http(s)",
                self.base_url
            )));
        }
        HeaderValue::from_str(&self.user_agent)
            .map_err(|_| Error::InvalidRequest("user agent is not a valid header value".into()))?;
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build()
                .map_err(|e| Error::InvalidRequest(format!("HTTP client: {e}")))?,
        };
        let shared = Arc::new(Shared {
            http,
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            timeout: self.timeout,
            user_agent: self.user_agent,
            retry: self.retry,
            pages_in_flight: self.pages_in_flight,
            max_walk_restarts: self.max_walk_restarts,
            expected_mdm_id: self.expected_mdm_id,
            pacing: self.pacing,
            service_config_ttl: self.service_config_ttl,
            metadata_lookup_url: self.metadata_lookup_url,
            strict_records: self.strict_records,
            service_cache: tokio::sync::Mutex::new(None),
            config_rate: AtomicU32::new(Limits::default().max_request_per_second),
        });
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                bearer: self.bearer,
                pacer: Arc::new(Pacer::new()),
                version_change_policy: self.version_change_policy,
            }),
        })
    }
}

struct Shared {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    user_agent: String,
    retry: RetryPolicy,
    pages_in_flight: usize,
    max_walk_restarts: u32,
    expected_mdm_id: Option<String>,
    pacing: Pacing,
    service_config_ttl: Duration,
    metadata_lookup_url: Option<String>,
    strict_records: bool,
    service_cache: tokio::sync::Mutex<Option<(Instant, Arc<ServiceConfig>)>>,
    config_rate: AtomicU32,
}

struct Inner {
    shared: Arc<Shared>,
    bearer: Option<Secret>,
    pacer: Arc<Pacer>,
    version_change_policy: VersionChangePolicy,
}

/// A client of Apple's Apps and Books management API v2, bound to one content
/// token. Cheap to clone (clones share the HTTP pool, the service-config cache
/// and the token's request pacer); `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.shared.base_url)
            .field("has_token", &self.inner.bearer.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    Bearer,
    Cookie,
}

struct Spec<'a> {
    method: Method,
    /// Path for logs and errors (`/assets`).
    path: &'a str,
    /// Full URL.
    url: String,
    query: &'a [(&'static str, String)],
    body: Option<Vec<u8>>,
    auth: Auth,
    paced: bool,
}

impl Client {
    /// A builder bound to a content token.
    pub fn builder(token: impl IntoBearer) -> ClientBuilder {
        ClientBuilder::new(token)
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.shared.base_url
    }

    /// Whether the client has a content token.
    pub fn has_token(&self) -> bool {
        self.inner.bearer.is_some()
    }

    /// A client for another token sharing this one's HTTP pool, settings and
    /// service-config cache, with its own request pacer.
    pub fn with_token(&self, token: impl IntoBearer) -> Client {
        Client {
            inner: Arc::new(Inner {
                shared: Arc::clone(&self.inner.shared),
                bearer: Some(token.into_bearer()),
                pacer: Arc::new(Pacer::new()),
                version_change_policy: self.inner.version_change_policy,
            }),
        }
    }

    /// The same client (same token and pacer) with another version-change policy
    /// for its paginated reads.
    pub fn with_version_change_policy(&self, policy: VersionChangePolicy) -> Client {
        Client {
            inner: Arc::new(Inner {
                shared: Arc::clone(&self.inner.shared),
                bearer: self.inner.bearer.clone(),
                pacer: Arc::clone(&self.inner.pacer),
                version_change_policy: policy,
            }),
        }
    }

    /// Who claims the token according to an answer's envelope; `None` when the
    /// builder was not given our `expected_mdm_id`.
    pub fn claim_status(&self, envelope: &Envelope) -> Option<ClaimStatus> {
        self.inner
            .shared
            .expected_mdm_id
            .as_deref()
            .map(|id| envelope.claim_status(id))
    }

    // ---- service config and limits ------------------------------------------

    /// `GET service/config` (no token needed), always fresh; refreshes the cache.
    pub async fn service_config(&self) -> Result<ServiceConfig, Error> {
        let cfg = self.fetch_service_config().await?;
        let mut cache = self.inner.shared.service_cache.lock().await;
        self.store_service_config(&mut cache, cfg.clone());
        Ok(cfg)
    }

    /// Service config from the cache, re-read when older than the TTL (5 minutes
    /// by default). When a refresh fails and an older copy exists, the older copy
    /// is returned (and the failure logged).
    pub async fn cached_service_config(&self) -> Result<Arc<ServiceConfig>, Error> {
        let shared = &self.inner.shared;
        let mut cache = shared.service_cache.lock().await;
        if let Some((at, cfg)) = cache.as_ref() {
            if at.elapsed() < shared.service_config_ttl {
                return Ok(Arc::clone(cfg));
            }
        }
        match self.fetch_service_config().await {
            Ok(cfg) => Ok(self.store_service_config(&mut cache, cfg)),
            Err(e) => match cache.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "service config refresh failed; using the cached copy");
                    Ok(Arc::clone(stale))
                }
                None => Err(e),
            },
        }
    }

    /// Apple's limits, from the cached service config.
    pub async fn limits(&self) -> Result<Limits, Error> {
        Ok(self.cached_service_config().await?.limits.clone())
    }

    fn store_service_config(
        &self,
        cache: &mut Option<(Instant, Arc<ServiceConfig>)>,
        cfg: ServiceConfig,
    ) -> Arc<ServiceConfig> {
        let rate = cfg.limits.max_request_per_second;
        if rate > 0 {
            self.inner.shared.config_rate.store(rate, Ordering::Relaxed);
        }
        let cfg = Arc::new(cfg);
        *cache = Some((Instant::now(), Arc::clone(&cfg)));
        cfg
    }

    async fn fetch_service_config(&self) -> Result<ServiceConfig, Error> {
        let path = "/service/config";
        let bytes = self
            .send(Spec {
                method: Method::GET,
                path,
                url: self.url(path),
                query: &[],
                body: None,
                auth: if self.has_token() {
                    Auth::Bearer
                } else {
                    Auth::None
                },
                paced: false,
            })
            .await?;
        decode("GET", path, RequestKind::Read, || {
            serde_json::from_slice(&bytes).map_err(DecodeError::new)
        })
    }

    // ---- client config --------------------------------------------------------

    /// `GET client/config`: location name, country, platform, `uId`, `mdmInfo`,
    /// notification settings. Also the "does this token work" check.
    pub async fn client_config(&self) -> Result<ApiResponse<ClientConfig>, Error> {
        let path = "/client/config";
        let bytes = self.get(path, &[]).await?;
        let r = decode("GET", path, RequestKind::Read, || {
            parse_client_config(&bytes)
        })?;
        self.observe(&r.envelope);
        Ok(r)
    }

    /// `POST client/config`: claims the token (`mdmInfo`) and/or sets the
    /// notification URL, auth token and types. Checked against Apple's rules
    /// first (cached limits, or Apple's documented ones).
    pub async fn set_client_config(
        &self,
        request: &ClientConfigRequest,
    ) -> Result<ApiResponse<ClientConfig>, Error> {
        let limits = self.peek_limits().await;
        request.validate(&limits)?;
        let path = "/client/config";
        let bytes = self.post(path, request).await?;
        let r = decode("POST", path, RequestKind::Write, || {
            parse_client_config(&bytes)
        })?;
        self.observe(&r.envelope);
        Ok(r)
    }

    // ---- paginated reads --------------------------------------------------------

    /// `GET assets` as a stream of pages (no `sinceVersionId` on assets).
    pub fn assets(&self, filter: AssetFilter) -> PageStream<ResponseAsset> {
        self.walk::<RawAssetsPage>("/assets", filter.query())
    }

    /// One page of `GET assets`.
    pub async fn assets_page(
        &self,
        filter: &AssetFilter,
        page_index: u32,
    ) -> Result<Page<ResponseAsset>, Error> {
        self.single_page::<RawAssetsPage>("/assets", filter.query(), page_index)
            .await
    }

    /// `GET assignments` as a stream of pages; `sinceVersionId` in the filter
    /// gives only the changes since an earlier walk.
    pub fn assignments(&self, filter: AssignmentFilter) -> PageStream<Assignment> {
        self.walk::<RawAssignmentsPage>("/assignments", filter.query())
    }

    /// One page of `GET assignments`.
    pub async fn assignments_page(
        &self,
        filter: &AssignmentFilter,
        page_index: u32,
    ) -> Result<Page<Assignment>, Error> {
        self.single_page::<RawAssignmentsPage>("/assignments", filter.query(), page_index)
            .await
    }

    /// `GET users` as a stream of pages; `sinceVersionId` supported.
    pub fn users(&self, filter: UserFilter) -> PageStream<ResponseUser> {
        self.walk::<RawUsersPage>("/users", filter.query())
    }

    /// One page of `GET users`.
    pub async fn users_page(
        &self,
        filter: &UserFilter,
        page_index: u32,
    ) -> Result<Page<ResponseUser>, Error> {
        self.single_page::<RawUsersPage>("/users", filter.query(), page_index)
            .await
    }

    // ---- writes ------------------------------------------------------------------

    /// `POST assets/associate`. Asynchronous at Apple: follow the event.
    pub async fn associate_assets(
        &self,
        request: &ManageAssetsRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/assets/associate", request).await
    }

    /// `POST assets/disassociate`.
    pub async fn disassociate_assets(
        &self,
        request: &ManageAssetsRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/assets/disassociate", request).await
    }

    /// `POST assets/revoke`: every revocable licence of these users and devices.
    pub async fn revoke_assets(
        &self,
        request: &RevokeAssetsRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/assets/revoke", request).await
    }

    /// `POST users/create`.
    pub async fn create_users(
        &self,
        request: &ManageUsersRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/users/create", request).await
    }

    /// `POST users/update`.
    pub async fn update_users(
        &self,
        request: &ManageUsersRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/users/update", request).await
    }

    /// `POST users/retire`.
    pub async fn retire_users(
        &self,
        request: &ManageUsersRequest,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        self.event_write("/users/retire", request).await
    }

    /// `GET status?eventId=`: where an asynchronous write is.
    pub async fn event_status(
        &self,
        event_id: &EventId,
    ) -> Result<ApiResponse<EventStatus>, Error> {
        let path = "/status";
        let query = [("eventId", event_id.as_str().to_owned())];
        let bytes = self.get(path, &query).await?;
        let r = decode("GET", path, RequestKind::Read, || {
            split_event_status(&bytes).map_err(DecodeError::new)
        })?;
        self.observe(&r.envelope);
        Ok(r)
    }

    // ---- metadata ----------------------------------------------------------------

    /// Names, bundle ids, icons and platforms of products, by adam id, through the
    /// legacy lookup named in service config. Sends the token as the `itvt`
    /// cookie (custom apps resolve only with it). Ids unknown in the storefront are
    /// absent from the map.
    pub async fn lookup_metadata(
        &self,
        ids: &[AdamId],
        query: &MetadataQuery,
    ) -> Result<HashMap<AdamId, AssetMetadata>, Error> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let url = match &self.inner.shared.metadata_lookup_url {
            Some(u) => u.clone(),
            None => self
                .cached_service_config()
                .await?
                .urls
                .content_metadata_lookup()
                .unwrap_or(DEFAULT_METADATA_LOOKUP_URL)
                .to_owned(),
        };
        let mut unique: Vec<AdamId> = Vec::with_capacity(ids.len());
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if seen.insert(id) {
                unique.push(id.clone());
            }
        }
        for chunk in unique.chunks(query.batch_size.max(1)) {
            let q = query.query(chunk);
            let bytes = self
                .send(Spec {
                    method: Method::GET,
                    path: "metadata lookup",
                    url: url.clone(),
                    query: &q,
                    body: None,
                    auth: if self.has_token() {
                        Auth::Cookie
                    } else {
                        Auth::None
                    },
                    paced: false,
                })
                .await?;
            let found = decode("GET", "metadata lookup", RequestKind::Read, || {
                parse_metadata_lookup(&bytes)
            })?;
            out.extend(found);
        }
        Ok(out)
    }

    // ---- internals ---------------------------------------------------------------

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.shared.base_url, path)
    }

    /// Cached limits if any, without a network call; Apple's documented ones otherwise.
    async fn peek_limits(&self) -> Limits {
        self.inner
            .shared
            .service_cache
            .lock()
            .await
            .as_ref()
            .map(|(_, c)| c.limits.clone())
            .unwrap_or_default()
    }

    fn observe(&self, envelope: &Envelope) {
        if let Some(ClaimStatus::Other(info)) = self.claim_status(envelope) {
            tracing::warn!(
                other_mdm_id = %info.id,
                other_mdm_name = %info.name,
                "the content token is claimed by another MDM"
            );
        }
    }

    fn pace_rate(&self) -> u32 {
        match self.inner.shared.pacing {
            Pacing::Off => 0,
            Pacing::PerSecond(n) => n,
            Pacing::FromServiceConfig => self.inner.shared.config_rate.load(Ordering::Relaxed),
        }
    }

    async fn get(&self, path: &str, query: &[(&'static str, String)]) -> Result<Bytes, Error> {
        self.require_token()?;
        self.send(Spec {
            method: Method::GET,
            path,
            url: self.url(path),
            query,
            body: None,
            auth: Auth::Bearer,
            paced: true,
        })
        .await
    }

    async fn post<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<Bytes, Error> {
        self.require_token()?;
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidRequest(format!("{path}: body: {e}")))?;
        self.send(Spec {
            method: Method::POST,
            path,
            url: self.url(path),
            query: &[],
            body: Some(body),
            auth: Auth::Bearer,
            paced: true,
        })
        .await
    }

    async fn event_write<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<ApiResponse<EventResponse>, Error> {
        let bytes = self.post(path, body).await?;
        let r = decode("POST", path, RequestKind::Write, || {
            split_event_response(&bytes).map_err(DecodeError::new)
        })?;
        self.observe(&r.envelope);
        Ok(r)
    }

    fn require_token(&self) -> Result<(), Error> {
        if self.has_token() {
            Ok(())
        } else {
            Err(Error::NoToken)
        }
    }

    fn walk<W: RawPage>(
        &self,
        path: &'static str,
        query: Vec<(&'static str, String)>,
    ) -> PageStream<W::Item> {
        let client = self.clone();
        let query = Arc::new(query);
        let fetch: FetchPage<W::Item> = Arc::new(move |index| {
            let client = client.clone();
            let query = Arc::clone(&query);
            Box::pin(async move { client.fetch_page::<W>(path, &query, index).await })
        });
        PageStream::new(
            fetch,
            WalkSettings {
                path: path.to_owned(),
                pages_in_flight: self.inner.shared.pages_in_flight,
                policy: self.inner.version_change_policy,
                max_restarts: self.inner.shared.max_walk_restarts,
            },
        )
    }

    async fn single_page<W: RawPage>(
        &self,
        path: &'static str,
        query: Vec<(&'static str, String)>,
        index: u32,
    ) -> Result<Page<W::Item>, Error> {
        let f = self.fetch_page::<W>(path, &query, index).await?;
        Ok(Page {
            index: f.current_page_index.unwrap_or(index),
            items: f.items,
            version_id: f.version_id,
            next_page_index: f.next_page_index,
            total_pages: f.total_pages,
            size: f.size,
            envelope: f.envelope,
            walk: 0,
            skipped: f.skipped,
        })
    }

    async fn fetch_page<W: RawPage>(
        &self,
        path: &'static str,
        query: &[(&'static str, String)],
        index: u32,
    ) -> Result<PageFields<W::Item>, Error> {
        let mut q = Vec::with_capacity(query.len() + 1);
        q.extend_from_slice(query);
        q.push(("pageIndex", index.to_string()));
        let bytes = self.get(path, &q).await?;
        let raw: W = decode("GET", path, RequestKind::Read, || {
            serde_json::from_slice(&bytes).map_err(DecodeError::new)
        })?;
        let mut fields = raw.into_fields();
        self.observe(&fields.envelope);
        for s in &mut fields.skipped {
            s.page = index;
            if self.inner.shared.strict_records {
                return Err(Error::Record {
                    path: path.to_owned(),
                    page: index,
                    list: s.list,
                    position: s.position,
                    reason: s.reason.clone(),
                });
            }
            tracing::warn!(
                path,
                page = index,
                list = s.list,
                position = s.position,
                reason = %s.reason,
                "skipped a record Apple sent that cannot be read"
            );
        }
        Ok(fields)
    }

    /// Sends with pacing and retries; returns the body of a success without an
    /// Apple error in it.
    async fn send(&self, spec: Spec<'_>) -> Result<Bytes, Error> {
        let kind = if spec.method == Method::GET {
            RequestKind::Read
        } else {
            RequestKind::Write
        };
        let span = tracing::debug_span!(
            "vppkit_client.request",
            method = %spec.method,
            path = spec.path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let policy = &self.inner.shared.retry;
        async {
            let start = Instant::now();
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                tracing::Span::current().record("attempt", attempts);
                if spec.paced {
                    self.inner.pacer.wait(self.pace_rate()).await;
                }
                let result = self.attempt(&spec).await;
                match result {
                    Ok((status, bytes)) => {
                        tracing::Span::current().record("status", status);
                        return Ok(bytes);
                    }
                    Err(e) => {
                        if let Some(status) = e.status() {
                            tracing::Span::current().record("status", status);
                        }
                        match policy.next_delay(attempts, start.elapsed(), &e, kind) {
                            Some(delay) => {
                                tracing::debug!(error = %e, ?delay, attempt = attempts, "retrying");
                                tokio::time::sleep(delay).await;
                            }
                            None => return Err(finish_error(e, kind)),
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn attempt(&self, spec: &Spec<'_>) -> Result<(u16, Bytes), Error> {
        let shared = &self.inner.shared;
        let method_name = method_name(&spec.method);
        let mut rb = shared
            .http
            .request(spec.method.clone(), &spec.url)
            .timeout(shared.timeout)
            .header(ACCEPT, "application/json");
        if let Ok(ua) = HeaderValue::from_str(&shared.user_agent) {
            rb = rb.header(USER_AGENT, ua);
        }
        if !spec.query.is_empty() {
            rb = rb.query(spec.query);
        }
        match (spec.auth, &self.inner.bearer) {
            (Auth::Bearer, Some(token)) => {
                rb = rb.header(
                    AUTHORIZATION,
                    sensitive(&format!("Bearer {}", token.expose()))?,
                );
            }
            (Auth::Cookie, Some(token)) => {
                rb = rb.header(COOKIE, sensitive(&format!("itvt={}", token.expose()))?);
            }
            _ => {}
        }
        if let Some(body) = &spec.body {
            rb = rb
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let transport = |source: reqwest::Error| Error::Transport {
            method: method_name,
            path: spec.path.to_owned(),
            source: crate::error::TransportError::new(source),
        };
        let response = rb.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = response.bytes().await.map_err(transport)?;
        if let Some(error) = find_api_error(&bytes) {
            return Err(Error::Api {
                method: method_name,
                path: spec.path.to_owned(),
                status,
                error: Box::new(error),
                retry_after,
            });
        }
        if !(200..300).contains(&status) {
            let body: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(Error::Http {
                method: method_name,
                path: spec.path.to_owned(),
                status,
                retry_after,
                body,
            });
        }
        Ok((status, bytes))
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::InvalidRequest("the content token is not a valid header value".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        _ => "OTHER",
    }
}

/// An Apple error body at the top level of an answer, whatever the status.
/// A cheap substring test first, so successful pages are not parsed twice.
pub(crate) fn find_api_error(bytes: &[u8]) -> Option<ApiError> {
    const KEY: &[u8] = b"\"errorNumber\"";
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.contains(std::str::from_utf8(KEY).ok()?) {
        return None;
    }
    serde_json::from_str::<ApiError>(text).ok()
}

/// Turns the last failure of a write whose outcome is unknown into
/// [`Error::OutcomeUnknown`].
fn finish_error(e: Error, kind: RequestKind) -> Error {
    if kind == RequestKind::Read {
        return e;
    }
    let unknown = match &e {
        Error::Transport { source, .. } => !source.is_connect(),
        Error::Http { status, .. } => *status >= 500 || *status == 408,
        Error::Decode { .. } => true,
        _ => false,
    };
    if unknown {
        let (method, path) = match &e {
            Error::Transport { method, path, .. }
            | Error::Http { method, path, .. }
            | Error::Decode { method, path, .. } => (*method, path.clone()),
            _ => ("POST", String::new()),
        };
        Error::OutcomeUnknown {
            method,
            path,
            source: Box::new(e),
        }
    } else {
        e
    }
}

/// Decodes a success body; a write whose success body cannot be read has an
/// unknown outcome (Apple likely acted).
fn decode<T>(
    method: &'static str,
    path: &str,
    kind: RequestKind,
    f: impl FnOnce() -> Result<T, DecodeError>,
) -> Result<T, Error> {
    f().map_err(|source| {
        let e = Error::Decode {
            method,
            path: path.to_owned(),
            source,
        };
        finish_error(e, kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_errors_only() {
        assert_eq!(
            find_api_error(
                br#"{"errorNumber": 9622, "errorMessage": "Invalid authentication token"}"#
            )
            .unwrap()
            .number,
            crate::ErrorNumber::InvalidAuthenticationToken
        );
        assert!(find_api_error(
            br#"{"eventStatus":"FAILED","failures":[{"errorNumber":9609,"errorMessage":"x"}]}"#
        )
        .is_none());
        assert!(find_api_error(br#"{"assignments":[]}"#).is_none());
        assert!(find_api_error(b"<html>502</html>").is_none());
    }

    #[test]
    fn client_is_send_sync_and_debug_hides_token() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Client>();
        let c = ClientBuilder::new(Secret::new("the-bearer-secret"))
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("the-bearer-secret"));
        let b = ClientBuilder::new(Secret::new("the-bearer-secret"));
        assert!(!format!("{b:?}").contains("the-bearer-secret"));
        assert!(ClientBuilder::unauthenticated()
            .base_url("ftp://x")
            .build()
            .is_err());
        assert!(ClientBuilder::unauthenticated()
            .base_url("not a url")
            .build()
            .is_err());
    }
}
