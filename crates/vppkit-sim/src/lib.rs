//! A faithful simulator of Apple's Apps and Books (VPP) management API v2, for
//! tests, demos and benchmarks.
//!
//! It serves every v2 endpoint (`service/config`, `client/config`, `assets`,
//! `assignments`, `assets/associate|disassociate|revoke`, `status`, `users`,
//! `users/create|update|retire`) with Apple's authentication errors, envelope,
//! validation order, asynchronous events, licence counts, pagination and
//! `versionId`/`sinceVersionId`; it delivers webhook notifications; and it
//! serves the legacy content metadata lookup. It was written from Apple's
//! documentation and recorded payloads, independently of `vppkit-client`, so
//! the two check each other.
//!
//! ```no_run
//! use vppkit_sim::{Preset, SimClock, Simulator};
//!
//! # async fn run() -> Result<(), vppkit_sim::SimError> {
//! let sim = Simulator::builder()
//!     .preset(Preset::Demo)
//!     .seed(7)
//!     .clock(SimClock::manual())
//!     .allow_http_loopback_notifications(true)
//!     .start()
//!     .await?;
//! let base = sim.base_url(); // http://127.0.0.1:PORT/mdm/v2
//! let token = &sim.token_files()[0]; // token.content is the bearer credential
//! // ... POST base/assets/associate with `Authorization: Bearer <content>` ...
//! sim.control().advance(std::time::Duration::from_secs(1))?; // events complete
//! # let _ = (base, token); Ok(()) }
//! ```
//!
//! # Behaviour (Apple's documented rules, and the choices where Apple is silent)
//!
//! - **Auth**, in this order: no `Authorization` header 9601; not `Bearer
//!   <token>` 9722; unknown token (including the inner `token` field of the
//!   file) 9622 with HTTP 401 (or 200 behind
//!   [`SimulatorBuilder::invalid_token_http_200`]); revoked 9625; expired 9621.
//!   `service/config` needs no auth. The method is checked before auth (9726,
//!   HTTP 405), the `Content-Type` of POSTs after it (9727, HTTP 415); a body
//!   that is not JSON is 9602.
//! - **Envelope**: `uId`, `tokenExpirationDate` (always sent, `+0000` form) and
//!   `mdmInfo` once set, on every authenticated answer.
//! - **Validation order** of associate/disassociate: 9718, 9719, 9700, 9701,
//!   9702, 9703, 9704, 9705, then 9602 for a malformed id or an asset the
//!   location does not own (with `errorInfo.assets`), 9707, 9706. Revoke:
//!   9719, 9701/9702 (against the revoke limits), 9704, 9705, 9602. Users:
//!   9720, 9714, 9602 (no `clientUserId`), 9715, 9717. All HTTP 400, no event.
//! - **Events**: accepted writes answer `{eventId, tokenExpirationDate, uId}`
//!   at once; the event is `PENDING` until the [`SimClock`] reaches its due
//!   time, then `COMPLETE` or `FAILED` with `numCompleted < numRequested` and
//!   failures grouped by error and asset (9709 licence shortage, 9609 unknown
//!   user, 9716 duplicate user). Tasks = assets x targets (revoke and users:
//!   one per target). Effects (counts, assignments, users) apply when the
//!   event completes.
//! - **Counts**: `totalCount = assignedCount + availableCount + retiredCount`.
//!   Re-associating an existing pair and disassociating a missing one are
//!   no-op successes (guess). Unknown serial numbers are accepted on associate
//!   (Fleet issue #20449). Free assets report `totalCount` 2147483647.
//! - **Users**: create with an email gives `Registered` with a 32-hex
//!   `inviteCode`; with a `managedAppleId`, `Associated` with a 28-character
//!   `idHash`. Accepting the invitation ([`Control::accept_invitation`] or
//!   opening the `invitationEmail` link) fires `USER_ASSOCIATED`. Retire sets
//!   `Retired` and takes back the user's revocable licences (books stay with
//!   the account, so `excludeInactiveUsers=true` hides them). A retired user
//!   stays listed beside a re-created one. `managedAppleId` is not echoed
//!   (Apple's examples never show it).
//! - **Paging**: [`SimulatorBuilder::page_size`] items per page (default
//!   1,000); `nextPageIndex` only when another page exists; an empty list has
//!   `totalPages` 0 and answers page 0; any index past the end is 9650.
//! - **Versions**: every completed write of a family gives a new `versionId`
//!   (UUID strings). `sinceVersionId` (assignments and users) returns the rows
//!   changed since that version that still exist: a removed assignment cannot
//!   be expressed in Apple's shape, so it is simply absent (a full walk finds
//!   removals). An id that is not one this location issued is 9721.
//! - **Notifications**: POSTed with `Authorization: Bearer
//!   <notificationAuthToken>`, fresh `notificationId`s, at most 100 items each,
//!   only for subscribed types; up to 3 retries on failure; switches to drop,
//!   duplicate or reorder ([`NotificationFaults`]). Setting a URL sends
//!   `TEST_NOTIFICATION` first and answers 9728 if it is not delivered. URLs
//!   must be `https://` (no query), unless
//!   [`SimulatorBuilder::allow_http_loopback_notifications`] allows
//!   `http://127.0.0.1...`. A POST `client/config` without `mdmInfo` keeps the
//!   stored one; without `notificationUrl`/`notificationAuthToken` keeps the
//!   subscription; both given as empty strings unsubscribes.
//! - **Throttling and faults**: [`Control::set_throttling`] (9646, HTTP 429,
//!   `Retry-After: 1`, per location at `maxRequestPerSecond`),
//!   [`Control::fail_next_requests`] (HTTP 500/9603 or 503/9729 with
//!   `Retry-After`), [`Control::set_latency`].
//! - **Metadata lookup** (`urls.contentMetadataLookup`): `results` keyed by
//!   adam id with `name`, `bundleId`, `artwork` (`{w}x{h}bb.{f}` template served
//!   by the simulator), `offers[].version.display`, `deviceFamilies`, `kind`,
//!   `url`. A present but unknown `itvt` cookie, or no `id`, answers 403;
//!   custom (B2B) apps appear only with the cookie of a location owning them.
//!
//! # Presets
//!
//! [`Preset::Demo`] ids are documented in [`demo`], [`Preset::Scale`] in
//! [`scale`].

mod catalog;
mod changelog;
mod clock;
mod codes;
mod config;
mod control;
mod error;
mod hash;
mod intern;
mod location;
mod notify;
mod presets;
mod query;
mod server;
mod sim;
mod spec;
mod store;
mod truth;
mod wire;

pub use clock::SimClock;
pub use config::Limits;
pub use control::{Control, ServerErrorKind};
pub use error::SimError;
pub use notify::NotificationFaults;
pub use presets::{demo, scale, Preset};
pub use sim::{RunningSimulator, Simulator, SimulatorBuilder};
pub use spec::{AssetSpec, LocationSpec};
pub use truth::{
    DeliveryOutcome, EventFailure, EventKind, EventRecord, EventStatus, LocationInfo,
    NotificationRecord, TokenFile,
};
