//! A complete client for Apple's Apps and Books (VPP) management API v2.
//!
//! # Quick start
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use vppkit_client::{AssignmentFilter, Client, ClientBuilder, ManageAssetsRequest};
//! use vppkit_core::{AdamId, AssetKey, ContentToken, PricingParam, SerialNumber};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let token = ContentToken::parse(&std::fs::read_to_string("location.vpptoken")?)?;
//! let client: Client = ClientBuilder::new(&token).build()?;
//!
//! // Who is this token? Every answer also carries the envelope (uId, expiry, mdmInfo).
//! let config = client.client_config().await?;
//! println!("{:?} in {:?}", config.body.location_name, config.body.country_iso2a_code);
//!
//! // Stream every assignment, page by page (up to 5 pages in flight).
//! let mut pages = client.assignments(AssignmentFilter::new());
//! while let Some(page) = pages.try_next().await? {
//!     if page.starts_restart() { /* the data changed: drop what the earlier walk gave */ }
//!     for assignment in &page.items {
//!         println!("{} -> {:?}", assignment.asset_key(), assignment.holder());
//!     }
//! }
//! // Next time, ask only for what changed.
//! let since = pages.first_version_id();
//! let _changes = client.assignments(AssignmentFilter::new().since_version_id(since.unwrap_or_default()));
//!
//! // Assign an app to a device; Apple answers with an event to follow.
//! let app = AssetKey::new(AdamId::new("409203825")?, PricingParam::Stdq);
//! let request = ManageAssetsRequest::devices(vec![app], vec![SerialNumber::new("C02000000000")?]);
//! match client.associate_assets(&request).await {
//!     Ok(answer) => println!("event {}", answer.body.event_id),
//!     Err(e) if e.is_outcome_unknown() => { /* check status or assignments before resending */ }
//!     Err(e) if e.token_problem().is_some() => { /* stop writing for this location */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What it does for you
//!
//! - **Every endpoint** of the v2 API (service config, client config get/set,
//!   assets, assignments, associate, disassociate, revoke, status, users get,
//!   create, update, retire), plus the legacy content-metadata lookup
//!   ([`Client::lookup_metadata`]).
//! - **The envelope** (`uId`, `tokenExpirationDate`, `mdmInfo`) on every
//!   authenticated answer ([`ApiResponse::envelope`], [`Page::envelope`]), so a
//!   token claimed by another MDM is seen on any call ([`Client::claim_status`]).
//! - **Error bodies read whatever the HTTP status** (Apple answers 9622 with HTTP
//!   200): [`Error::Api`] with a typed [`ErrorNumber`] for every documented
//!   number, and [`Error::is_retryable`], [`Error::retry_after`],
//!   [`Error::token_problem`].
//! - **Retries as a policy** ([`RetryPolicy`]): backoff with jitter on 9646/429,
//!   `Retry-After` honoured, bounded attempts and time. A write whose answer was
//!   lost is never resent: it fails with [`Error::OutcomeUnknown`].
//! - **Pacing** at `maxRequestPerSecond` per token ([`Pacing`]), shared by clones.
//! - **Paginated reads as streams** ([`PageStream`]) with `versionId` tracking and
//!   a [`VersionChangePolicy`].
//! - **Limits** from service config, cached for 5 minutes ([`Client::limits`]),
//!   and pure request splitters ([`split_manage_assets`], [`split_revoke`],
//!   [`split_users`]).
//! - **Lenient reading of what Apple sends**: a status or product type this
//!   crate does not know is kept (`Other`), serial numbers and `clientUserId`s
//!   are whatever non-empty string Apple sends, `artwork` is read as an object
//!   or an array, and a record that still cannot be read is left out of its page
//!   and reported in [`Page::skipped`] (logged at `warn`), or fails the walk with
//!   [`Error::Record`] under [`ClientBuilder::strict_records`].
//! - **Notifications**: [`parse_notification`] and the constant-time
//!   [`verify_notification_bearer`].
//!
//! No token ever reaches a log, a `Debug` output or an error message.

mod assets;
mod assignments;
mod client;
mod client_config;
mod envelope;
mod error;
mod events;
mod metadata;
mod notification;
mod pacer;
mod pagination;
mod records;
mod retry;
mod serde_util;
mod service_config;
mod split;
mod users;

pub use assets::{AssetFilter, ConversionError, ResponseAsset};
pub use assignments::{Assignment, AssignmentFilter};
pub use client::{Client, ClientBuilder, IntoBearer, DEFAULT_BASE_URL, DEFAULT_USER_AGENT};
pub use client_config::{parse_client_config, ClientConfig, ClientConfigRequest};
pub use envelope::{ApiResponse, ClaimStatus, Envelope};
pub use error::{
    ApiError, DecodeError, Error, ErrorInfo, ErrorNumber, TokenProblem, TransportError,
};
pub use events::{
    EventResponse, EventStatus, EventStatusKind, EventType, ManageAssetsRequest,
    RevokeAssetsRequest,
};
pub use metadata::{parse_metadata_lookup, MetadataQuery, DEFAULT_METADATA_LOOKUP_URL};
pub use notification::{
    parse_notification, verify_notification_bearer, AssetCountNotification,
    AssetManagementNotification, Notification, NotificationResult, UserAssociatedNotification,
    UserManagementNotification, WebhookNotification,
};
pub use pacer::Pacing;
pub use pagination::{Page, PageStream, VersionChangePolicy};
pub use records::SkippedRecord;
pub use retry::{parse_retry_after, RetryPolicy};
pub use service_config::{Limits, NotificationType, ServiceConfig, ServiceUrls};
pub use split::{split_manage_assets, split_revoke, split_users};
pub use users::{ManageUsersRequest, RequestUser, ResponseUser, UserFilter};

/// Parses one page of `GET assignments` as Apple sends it (for tests, fixtures and
/// benchmarks; the client does this for you).
pub fn parse_assignments_page(body: &[u8]) -> Result<Page<Assignment>, DecodeError> {
    use pagination::RawPage;
    let raw: assignments::RawAssignmentsPage =
        serde_json::from_slice(body).map_err(DecodeError::new)?;
    let f = raw.into_fields();
    Ok(Page {
        index: f.current_page_index.unwrap_or(0),
        items: f.items,
        version_id: f.version_id,
        next_page_index: f.next_page_index,
        total_pages: f.total_pages,
        size: f.size,
        envelope: f.envelope,
        walk: 0,
        skipped: f
            .skipped
            .into_iter()
            .map(|mut s| {
                s.page = f.current_page_index.unwrap_or(0);
                s
            })
            .collect(),
    })
}
