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
//!   file) 9622 with HTTP 200 and the error body, as real clients meet it (HTTP
//!   401 with [`SimulatorBuilder::invalid_token_http_200`]`(false)`); revoked
//!   9625; expired 9621.
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
//!   only for subscribed types; at most 3 delivery attempts in all, as Apple
//!   ([`MAX_NOTIFICATION_ATTEMPTS`]); switches to drop,
//!   duplicate or reorder ([`NotificationFaults`]). Setting a URL sends
//!   `TEST_NOTIFICATION` first and answers 9728 if it is not delivered. URLs
//!   must be `https://` (no query), unless
//!   [`SimulatorBuilder::allow_http_loopback_notifications`] allows
//!   `http://127.0.0.1...`. A POST `client/config` without `mdmInfo` keeps the
//!   stored one; without `notificationUrl`/`notificationAuthToken` keeps the
//!   subscription; both given as empty strings unsubscribes.
//! - **Throttling and faults**: [`Control::set_throttling`] (9646, HTTP 429,
//!   per location at `maxRequestPerSecond`; no `Retry-After`, which Apple
//!   documents for 5xx only, unless [`Control::set_throttle_retry_after`] asks),
//!   [`Control::fail_next_requests`] (HTTP 500/9603 or 503/9729 with
//!   `Retry-After`), [`Control::set_latency`].
//! - **Metadata lookup** (`urls.contentMetadataLookup`): `results` keyed by
//!   adam id with `name`, `bundleId`, `artwork` (`{w}x{h}bb.{f}` template served
//!   by the simulator), `offers[].version.display`, `deviceFamilies`, `kind`,
//!   `url`; `kind` as the live lookup answers (`iosSoftware`, `desktopApp` for
//!   Mac apps, `epubBook` for books). The service config's `errorCodes` are the
//!   numbers of Apple's Service Config example (9622 and 9729 are answered but
//!   not listed; 9634, 9709 and 9716 are listed), with Apple's messages where a
//!   documented example shows them. A present but unknown `itvt` cookie, or no `id`, answers 403;
//!   custom (B2B) apps appear only with the cookie of a location owning them.
//!
//! # Driving the simulator from any language
//!
//! Every [`Control`] hook and every ground-truth read-out is also served over
//! HTTP by the same server, under `/_sim/v1` (Apple's paths start with
//! `/mdm/v2`, `/WebObjects` or `/artwork`, so nothing collides), JSON in and
//! out. [`RunningSimulator::control_url`] gives the base; the binary prints
//! it. It is on by default, in the library and the binary, because the
//! simulator is a test tool; [`SimulatorBuilder::control_api`]`(false)` (or
//! `--no-control-api`) serves Apple's paths only. The control API has no
//! authentication and hands out token contents: do not expose it beyond the
//! test machine. It is never slowed by [`Control::set_latency`], failed by
//! [`Control::fail_next_requests`] or throttled.
//!
//! Start the binary with a manual clock so events stay `PENDING` until told:
//!
//! ```sh
//! cargo run -p vppkit-sim -- --preset demo --listen 127.0.0.1:8080 --manual-clock
//! SIM=http://127.0.0.1:8080/_sim/v1
//! LOC=7300000000000101   # Springfield High School uId (see `demo`)
//!
//! # Buy 20 licences of an app (fires ASSET_COUNT to a subscribed MDM)
//! curl -X POST $SIM/locations/$LOC/assets/1200000008/buy -d '{"count": 20}'
//! # Refund 5 (409 not_enough_licences when fewer are free); ?pricingParam=PLUS for PLUS
//! curl -X POST $SIM/locations/$LOC/assets/1200000008/refund -d '{"count": 5}'
//! # A user accepts the invitation (Registered -> Associated, fires USER_ASSOCIATED)
//! curl -X POST $SIM/locations/$LOC/users/sph-user-0541/accept-invitation
//! # Move simulated time forward: due events become COMPLETE or FAILED
//! curl -X POST $SIM/clock/advance -d '{"seconds": 1}'
//! curl -X POST $SIM/events/complete-pending
//! # Expire, revoke or restore the location's first token (index 0), or move its expiry
//! curl -X POST $SIM/locations/$LOC/tokens/0/expire
//! curl -X PUT  $SIM/locations/$LOC/tokens/0/expiration-date -d '{"expirationDate": "2030-01-01T00:00:00+0000"}'
//! # Read the ground truth
//! curl $SIM/locations/$LOC/assets/1200000008
//! curl "$SIM/locations/$LOC/assignments?offset=0&limit=100"
//! curl $SIM/locations/$LOC/events
//! curl $SIM/locations/$LOC/notifications
//! ```
//!
//! Errors are `{"error": "<kind>", "message": "..."}`: 404 `unknown_location`,
//! `unknown_asset`, `unknown_user`, `unknown_token`, `not_found` (no such
//! route); 400 `bad_request` (invalid JSON, a missing or unknown field, a bad
//! id); 405 `method_not_allowed` (with `Allow`); 409 `duplicate_location`,
//! `duplicate_asset`, `not_registered`, `not_enough_licences`,
//! `manual_clock_required` (advancing a real-time clock). An empty body reads
//! as `{}`; any `Content-Type` is accepted. Assets are named by adam id in the
//! path and `?pricingParam=` (default `STDQ`); tokens by their index among the
//! location's tokens, in creation order (never by content: paths get logged).
//!
//! | Method and path (after `/_sim/v1`) | Body | Does |
//! |---|---|---|
//! | `GET /` | | URLs, clock (`manual`, `nowMillis`, `eventDelayMillis`, `pendingEvents`) |
//! | `GET /locations`, `GET /locations/{uId}` | | [`Control::locations`], [`Control::location`] |
//! | `POST /locations` | `{name, orgName?, uId?, account?, country?, assets?, mdmInfo?}` | [`Control::add_location`]; 201 with the token |
//! | `GET /tokens` | | [`Control::token_files`] with `index`, `content`, `expired`, `revoked` |
//! | `GET /locations/{uId}/tokens` | | the location's tokens |
//! | `POST /locations/{uId}/tokens` | `{revokePrevious?}` | [`Control::add_token`]; 201 |
//! | `POST /locations/{uId}/tokens/{n}/expire`, `/revoke`, `/restore` | | [`Control::expire_token`], [`Control::revoke_token`], [`Control::restore_token`] |
//! | `PUT /locations/{uId}/tokens/{n}/expiration-date` | `{expirationDate}` (Apple's form or RFC 3339) | [`Control::set_token_expiry`] |
//! | `PUT`, `DELETE /locations/{uId}/mdm-info` | `{id, name, metadata}` | [`Control::set_mdm_info`] |
//! | `GET /locations/{uId}/assets` | | [`Control::assets`] (Apple's field names) |
//! | `POST /locations/{uId}/assets` | `{adamId, totalCount` or `free, pricingParam?, productType?, retiredCount?, deviceAssignable?, revocable?, supportedPlatforms?, name?, bundleId?, version?, custom?}` | [`Control::add_asset`]; 201 |
//! | `GET`, `DELETE /locations/{uId}/assets/{adamId}` | | [`Control::asset`], [`Control::remove_asset`] |
//! | `POST /locations/{uId}/assets/{adamId}/buy`, `/refund` | `{count}` | [`Control::buy_licences`], [`Control::refund_licences`]; the new counts |
//! | `GET /locations/{uId}/assignments?offset=&limit=` | | [`Control::assignments`]: `{total, assignments}` |
//! | `GET /locations/{uId}/assignments/count` | | [`Control::assignment_count`] |
//! | `GET /locations/{uId}/users` | | [`Control::users`] |
//! | `POST /locations/{uId}/users/{clientUserId}/accept-invitation` | | [`Control::accept_invitation`] |
//! | `GET /locations/{uId}/events`, `/notifications`, `/heap-bytes` | | [`Control::events`], [`Control::notifications`], [`Control::heap_bytes`] |
//! | `POST /clock/advance` | `{seconds}` or `{millis}` | [`Control::advance`] |
//! | `POST /events/complete-pending` | | [`Control::complete_pending`] |
//! | `POST /locations/{uId}/assets/{adamId}/foreign-associate`, `.../foreign-disassociate` (`?pricingParam=`) | `{serialNumbers?, clientUserIds?}` | [`Control::foreign_associate`], [`Control::foreign_disassociate`]: `{changed, asset}` |
//! | `PUT /throttling` | `{enabled, retryAfterSeconds?}` | [`Control::set_throttling`], [`Control::set_throttle_retry_after`] |
//! | `PUT /invalid-token-http-200` | `{enabled}` | [`Control::set_invalid_token_http_200`] |
//! | `POST /server-errors` | `{count, kind?: "unavailable" \| "internal", retryAfterSeconds?}` | [`Control::fail_next_requests`] |
//! | `PUT /latency` | `{millis}` | [`Control::set_latency`] |
//! | `PUT /page-size` | `{pageSize}` | [`Control::set_page_size`] |
//! | `PUT /notification-faults` | `{drop?, duplicate?, reorder?}` | [`Control::set_notification_faults`] |
//! | `POST /notifications/flush` | `{timeoutMillis?}` (default 5000) | [`Control::flush_notifications`]: `{flushed}` |
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
mod control_http;
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
pub use sim::{RunningSimulator, Simulator, SimulatorBuilder, MAX_NOTIFICATION_ATTEMPTS};
pub use spec::{AssetSpec, LocationSpec};
pub use truth::{
    DeliveryOutcome, EventFailure, EventRecord, EventStatusKind, EventType, LocationSummary,
    NotificationRecord, TokenFile,
};
