//! The control handle: hooks for tests and demos, and the ground truth.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vppkit_core::{Asset, AssetKey, Holder, MdmInfo, VppUser};

use crate::location::Location;
use crate::notify::{lock, NotificationFaults, Outgoing};
use crate::sim::{read, write, ServerFaults, Shared};
use crate::spec::{AssetSpec, LocationSpec};
use crate::truth::{EventRecord, LocationSummary, NotificationRecord, TokenFile};
use crate::SimError;

/// Which 5xx answer to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// HTTP 500 with 9603.
    InternalError,
    /// HTTP 503 with 9729.
    Unavailable,
}

/// Hooks into a running simulator. Cheap to clone. Every location is named by
/// its `uId` (`&Uid`, `&str` or `String`).
#[derive(Debug, Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

impl Control {
    fn loc(&self, uid: &str) -> Result<Arc<Mutex<Location>>, SimError> {
        self.shared.location_by_uid(uid)
    }

    fn with_loc<T>(
        &self,
        uid: impl AsRef<str>,
        f: impl FnOnce(&mut Location) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let loc = self.loc(uid.as_ref())?;
        let mut l = lock(&loc);
        f(&mut l)
    }

    fn send(&self, n: Option<Outgoing>) {
        self.shared.notifier.enqueue(n.into_iter().collect());
    }

    // ----- locations and tokens -----

    /// Creates a location at run time and returns its token file. Cheap: a few
    /// hundred locations take milliseconds.
    pub fn add_location(&self, spec: LocationSpec) -> Result<TokenFile, SimError> {
        let (_, token) = self.shared.create_location(spec)?;
        Ok(token)
    }

    /// Every location, in creation order.
    pub fn locations(&self) -> Vec<LocationSummary> {
        read(&self.shared.locations)
            .iter()
            .map(|l| lock(l).info())
            .collect()
    }

    /// One location.
    pub fn location(&self, uid: impl AsRef<str>) -> Result<LocationSummary, SimError> {
        self.with_loc(uid, |l| Ok(l.info()))
    }

    /// Every token file the simulator accepts.
    pub fn token_files(&self) -> Vec<TokenFile> {
        lock(&self.shared.token_files).clone()
    }

    /// Issues a second (third ...) token for the same location (same `uId`).
    /// With `revoke_previous`, the older tokens then answer 9625, as Apple
    /// appears to do when a newer token is downloaded.
    pub fn add_token(
        &self,
        uid: impl AsRef<str>,
        revoke_previous: bool,
    ) -> Result<TokenFile, SimError> {
        let idx = read(&self.shared.by_uid)
            .get(uid.as_ref())
            .copied()
            .ok_or_else(|| SimError::UnknownLocation(uid.as_ref().to_owned()))?;
        self.shared.issue_token(idx, revoke_previous)
    }

    fn with_token(
        &self,
        token: &TokenFile,
        f: impl FnOnce(&mut crate::sim::TokenRec),
    ) -> Result<(), SimError> {
        let mut tokens = write(&self.shared.tokens);
        let rec = tokens
            .get_mut(token.content.expose())
            .ok_or(SimError::UnknownToken)?;
        f(rec);
        Ok(())
    }

    /// Makes a token answer 9621 (expired) from now on.
    pub fn expire_token(&self, token: &TokenFile) -> Result<(), SimError> {
        self.with_token(token, |t| t.expired = true)
    }

    /// Makes a token answer 9625 (revoked) from now on.
    pub fn revoke_token(&self, token: &TokenFile) -> Result<(), SimError> {
        self.with_token(token, |t| t.revoked = true)
    }

    /// Makes Apple no longer recognise a token: it answers 9622 (invalid
    /// authentication token; HTTP 200 with the error body by default) from now on,
    /// as for a token Apple never issued. Not undone by [`Control::restore_token`].
    pub fn forget_token(&self, token: &TokenFile) -> Result<(), SimError> {
        write(&self.shared.tokens)
            .remove(token.content.expose())
            .map(|_| ())
            .ok_or(SimError::UnknownToken)
    }

    /// Restores an expired or revoked token.
    pub fn restore_token(&self, token: &TokenFile) -> Result<(), SimError> {
        self.with_token(token, |t| {
            t.revoked = false;
            t.expired = false;
        })
    }

    /// Changes the expiry Apple reports (`tokenExpirationDate`); a date in the
    /// past makes the token answer 9621.
    pub fn set_token_expiry(&self, token: &TokenFile, at: DateTime<Utc>) -> Result<(), SimError> {
        self.with_token(token, |t| t.expires_at = at)
    }

    /// Writes an `mdmInfo` on the location as another MDM would (`None`
    /// clears it). No notification: Apple sends none.
    pub fn set_mdm_info(
        &self,
        uid: impl AsRef<str>,
        info: Option<MdmInfo>,
    ) -> Result<(), SimError> {
        self.with_loc(uid, |l| {
            l.mdm_info = info;
            Ok(())
        })
    }

    // ----- assets and licences -----

    /// Adds an asset to a location (a new purchase of a new product).
    pub fn add_asset(&self, uid: impl AsRef<str>, spec: AssetSpec) -> Result<(), SimError> {
        self.with_loc(uid, |l| l.add_asset(&spec).map(|_| ()))?;
        write(&self.shared.catalog).add(&spec);
        Ok(())
    }

    /// Removes an asset (transferred away): its assignments go, and
    /// `ASSET_COUNT` reports `-totalCount`.
    pub fn remove_asset(&self, uid: impl AsRef<str>, key: &AssetKey) -> Result<(), SimError> {
        let n = self.with_loc(uid, |l| l.remove_asset(key))?;
        self.send(n);
        Ok(())
    }

    /// Buys `count` more licences; fires `ASSET_COUNT` with `countDelta` = count.
    pub fn buy_licences(
        &self,
        uid: impl AsRef<str>,
        key: &AssetKey,
        count: u32,
    ) -> Result<(), SimError> {
        let n = self.with_loc(uid, |l| l.change_count(key, i64::from(count)))?;
        self.send(n);
        Ok(())
    }

    /// Refunds `count` free licences; fires `ASSET_COUNT` with a negative
    /// `countDelta`. Fails when fewer than `count` are free.
    pub fn refund_licences(
        &self,
        uid: impl AsRef<str>,
        key: &AssetKey,
        count: u32,
    ) -> Result<(), SimError> {
        let n = self.with_loc(uid, |l| l.change_count(key, -i64::from(count)))?;
        self.send(n);
        Ok(())
    }

    // ----- another MDM -----

    /// Another MDM (one holding the same token, or an administrator in Apple
    /// Business or School Manager) associates licences of an asset with devices
    /// and users between two syncs. Applied at once, without an event of ours;
    /// the assignments' `versionId` changes and an incremental read
    /// (`sinceVersionId`) returns the new pairs. Sends no notification: whether
    /// Apple notifies our URL of another MDM's work is not documented. Users must
    /// be active; fails without changing anything on a shortage. Returns how many
    /// pairs were new.
    pub fn foreign_associate(
        &self,
        uid: impl AsRef<str>,
        key: &AssetKey,
        serial_numbers: &[&str],
        client_user_ids: &[&str],
    ) -> Result<usize, SimError> {
        let serials: Vec<String> = serial_numbers.iter().map(|s| (*s).to_owned()).collect();
        let users: Vec<String> = client_user_ids.iter().map(|s| (*s).to_owned()).collect();
        self.with_loc(uid, |l| l.foreign_change(key, &serials, &users, true))
    }

    /// Another MDM disassociates licences (see [`Control::foreign_associate`]).
    /// Pairs that do not exist are skipped; a non-revocable asset fails
    /// ([`SimError::NotRevocable`]). Returns how many pairs were removed.
    pub fn foreign_disassociate(
        &self,
        uid: impl AsRef<str>,
        key: &AssetKey,
        serial_numbers: &[&str],
        client_user_ids: &[&str],
    ) -> Result<usize, SimError> {
        let serials: Vec<String> = serial_numbers.iter().map(|s| (*s).to_owned()).collect();
        let users: Vec<String> = client_user_ids.iter().map(|s| (*s).to_owned()).collect();
        self.with_loc(uid, |l| l.foreign_change(key, &serials, &users, false))
    }

    // ----- users -----

    /// The user accepts the invitation: Registered -> Associated, fires
    /// `USER_ASSOCIATED`. (Opening the `invitationEmail` link with the
    /// user's invite code does the same over HTTP.)
    pub fn accept_invitation(
        &self,
        uid: impl AsRef<str>,
        client_user_id: &str,
    ) -> Result<(), SimError> {
        let n = self.with_loc(uid, |l| l.accept_invitation(client_user_id))?;
        self.send(n);
        Ok(())
    }

    // ----- time and events -----

    /// Moves a manual clock forward and runs the events that fall due.
    pub fn advance(&self, by: Duration) -> Result<(), SimError> {
        if !self.shared.clock.advance(by) {
            return Err(SimError::ManualClockRequired);
        }
        self.shared.tick(false);
        Ok(())
    }

    /// Runs every pending event now, whatever the clock.
    pub fn complete_pending(&self) {
        self.shared.tick(true);
    }

    // ----- faults -----

    /// Switches throttling at `maxRequestPerSecond` (9646, HTTP 429) on or off.
    pub fn set_throttling(&self, on: bool) {
        self.shared.throttle.store(on, Ordering::Relaxed);
    }

    /// `Retry-After` on throttled answers: `Some(secs)` sends it, `None` (the
    /// default) does not, as Apple documents the header for 5xx only.
    pub fn set_throttle_retry_after(&self, secs: Option<u32>) {
        self.shared
            .throttle_retry_after
            .store(secs.unwrap_or(0), Ordering::Relaxed);
    }

    /// The next `count` requests to `/mdm/v2` answer a 5xx with
    /// `Retry-After: retry_after_secs`.
    pub fn fail_next_requests(&self, count: u32, kind: ServerErrorKind, retry_after_secs: u32) {
        *lock(&self.shared.server_faults) = Some(ServerFaults {
            remaining: count,
            kind,
            retry_after_secs,
        });
    }

    /// Adds latency to every answer.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Answers 9622 with HTTP 200 (on, the default) or 401 (off).
    pub fn set_invalid_token_http_200(&self, on: bool) {
        self.shared
            .invalid_token_http_200
            .store(on, Ordering::Relaxed);
    }

    /// Every page of `GET assets`, `GET assignments` and `GET users` carries,
    /// after its records, one more of a shape no client can read (an `adamId`
    /// that is an object), and the first asset of a `GET assets` page is sent
    /// in that shape too (an asset the walk cannot read): how a client meets
    /// records Apple sends in a shape it does not know. The counts and
    /// `totalPages` are left as they are.
    pub fn set_unreadable_records(&self, on: bool) {
        self.shared.unreadable_records.store(on, Ordering::Relaxed);
    }

    /// Items per page from now on.
    pub fn set_page_size(&self, n: usize) {
        self.shared.page_size.store(n.max(1), Ordering::Relaxed);
    }

    /// Switches notification faults (drop, duplicate, reorder).
    pub fn set_notification_faults(&self, faults: NotificationFaults) {
        self.shared.notifier.set_faults(faults);
    }

    /// Waits until every queued notification has been delivered or given up
    /// (at most `timeout`); `true` when the queue is empty.
    pub async fn flush_notifications(&self, timeout: Duration) -> bool {
        self.shared.notifier.flush(timeout).await
    }

    // ----- ground truth -----

    /// Every owned asset with its counts.
    pub fn assets(&self, uid: impl AsRef<str>) -> Result<Vec<Asset>, SimError> {
        self.with_loc(uid, |l| Ok(l.truth_assets()))
    }

    /// One asset with its counts.
    pub fn asset(&self, uid: impl AsRef<str>, key: &AssetKey) -> Result<Asset, SimError> {
        let uid = uid.as_ref();
        self.assets(uid)?
            .into_iter()
            .find(|a| &a.key == key)
            .ok_or_else(|| SimError::UnknownAsset {
                uid: uid.to_owned(),
                asset: key.to_string(),
            })
    }

    /// Every assignment, by asset.
    pub fn assignments(&self, uid: impl AsRef<str>) -> Result<Vec<(AssetKey, Holder)>, SimError> {
        self.with_loc(uid, |l| Ok(l.truth_assignments()))
    }

    /// Number of assignments.
    pub fn assignment_count(&self, uid: impl AsRef<str>) -> Result<usize, SimError> {
        self.with_loc(uid, |l| Ok(l.store.len()))
    }

    /// Every user record (retired ones included).
    pub fn users(&self, uid: impl AsRef<str>) -> Result<Vec<VppUser>, SimError> {
        self.with_loc(uid, |l| Ok(l.truth_users()))
    }

    /// Every event, oldest first.
    pub fn events(&self, uid: impl AsRef<str>) -> Result<Vec<EventRecord>, SimError> {
        self.with_loc(uid, |l| Ok(l.truth_events()))
    }

    /// Notifications produced (for subscribed locations), oldest first; the
    /// log keeps the latest 10,000.
    pub fn notifications(&self, uid: impl AsRef<str>) -> Vec<NotificationRecord> {
        self.shared.notifier.records(Some(uid.as_ref()))
    }

    /// Approximate heap bytes used by a location's state.
    pub fn heap_bytes(&self, uid: impl AsRef<str>) -> Result<usize, SimError> {
        self.with_loc(uid, |l| Ok(l.heap_bytes()))
    }
}
