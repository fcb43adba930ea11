//! The notification entry point: Apple's webhook requests, verified, checked
//! for size, de-duplicated, and taken as hints: what a notification claims is
//! confirmed against Apple (or left to a sync) before any count moves.

use tracing::Instrument;
use vppkit_client::{
    parse_notification, verify_notification_bearer, EventType, Notification as AppleNotification,
    NotificationResult,
};
use vppkit_core::{LocationId, TokenState, VppUser};
use vppkit_ledger::{AppleHolding, EventKind, LedgerNotification, NotificationBody};
use vppkit_store::{ErrorKind, SyncPage};

use crate::apply::LocationApplyReport;
use crate::engine::{Engine, LocationGuard};
use crate::error::Result;
use crate::marks::{mark_document, Mark};
use crate::progress::ProgressReporter;

/// A notification request the engine refused. Answer it with
/// [`NotificationError::http_status`]; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// No webhook is configured, so no notification is expected.
    #[error("notifications are not configured")]
    NotConfigured,
    /// The body is larger than the configured limit.
    #[error("the notification body is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The `Authorization` header is missing or does not carry our secret.
    #[error("the notification is not authorised")]
    Unauthorized,
    /// The body is not a notification Apple sends.
    #[error("the notification is malformed: {0}")]
    Malformed(String),
}

impl NotificationError {
    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            NotificationError::NotConfigured => 404,
            NotificationError::TooLarge { .. } => 413,
            NotificationError::Unauthorized => 401,
            NotificationError::Malformed(_) => 400,
        }
    }
}

/// What became of an accepted notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotificationOutcome {
    /// Recorded: its claim was checked against Apple, or a sync and a
    /// reconcile pass of the location are stored to do it.
    Applied {
        /// The location.
        location: LocationId,
    },
    /// Seen before (same `notificationId`): nothing done.
    Duplicate,
    /// A `TEST_NOTIFICATION`.
    Test,
    /// Accepted but not applied (unknown organisational unit, a type the engine
    /// does not use); the reason says which.
    Ignored(String),
    /// The store failed, so nothing was recorded: answer 503 so Apple delivers
    /// it again (a scheduled sync catches up otherwise).
    Deferred(String),
}

impl NotificationOutcome {
    /// The HTTP status to answer with (2xx means delivered).
    pub fn http_status(&self) -> u16 {
        match self {
            NotificationOutcome::Deferred(_) => 503,
            _ => 200,
        }
    }
}

impl Engine {
    /// Handles one webhook request from Apple: checks the size, verifies the
    /// bearer secret in constant time, parses the body, de-duplicates on
    /// `notificationId` and applies it through the ledger. `headers` are the
    /// request's headers (name, value), in any case.
    pub async fn handle_notification<I, K, V>(
        &self,
        headers: I,
        body: &[u8],
    ) -> std::result::Result<NotificationOutcome, NotificationError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let inner = &self.inner;
        let Some(webhook) = &inner.config.webhook else {
            return Err(NotificationError::NotConfigured);
        };
        let max = inner.config.max_notification_body;
        if body.len() > max {
            return Err(NotificationError::TooLarge {
                size: body.len(),
                max,
            });
        }
        let auth = headers
            .into_iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_ref().to_owned());
        match auth {
            Some(v) if verify_notification_bearer(&v, webhook.auth_token()) => {}
            _ => return Err(NotificationError::Unauthorized),
        }
        let parsed =
            parse_notification(body).map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let span = tracing::info_span!(
            "vppkit.notification",
            id = %parsed.notification_id,
            kind = %parsed.notification.notification_type().as_str()
        );
        self.apply_notification(parsed).instrument(span).await
    }

    async fn apply_notification(
        &self,
        parsed: vppkit_client::WebhookNotification,
    ) -> std::result::Result<NotificationOutcome, NotificationError> {
        let body = match to_ledger(&parsed.notification) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Ok(match parsed.notification {
                    AppleNotification::Test => NotificationOutcome::Test,
                    other => NotificationOutcome::Ignored(format!(
                        "{} notifications are not used",
                        other.notification_type().as_str()
                    )),
                })
            }
            Err(reason) => return Err(NotificationError::Malformed(reason)),
        };
        let location = match self.location_for(parsed.uid.as_ref()).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Ok(NotificationOutcome::Ignored(
                    "no location has this organisational unit".to_owned(),
                ))
            }
            Err(e) => return Ok(NotificationOutcome::Deferred(e.to_string())),
        };
        let notification = LedgerNotification::new(parsed.notification_id.clone(), body);
        match self.take_hint(&location, &notification).await {
            Ok(true) => Ok(NotificationOutcome::Applied { location }),
            Ok(false) => Ok(NotificationOutcome::Duplicate),
            Err(e) => {
                // Nothing was recorded: Apple delivers it again.
                tracing::warn!(error = %e, "notification not recorded; Apple will deliver it again");
                Ok(NotificationOutcome::Deferred(e.to_string()))
            }
        }
    }

    /// A notification is a hint, Apple is the truth: what it claims is read
    /// back from Apple (the asset's counts, the event's status) before anything
    /// moves, or left to a sync. The notification id is recorded in the same
    /// transaction as the marks that make the scheduler act on it, so a
    /// redelivery after a failure is applied, and a replay is a duplicate.
    /// Returns `false` for a duplicate.
    async fn take_hint(
        &self,
        location: &LocationId,
        notification: &LedgerNotification,
    ) -> Result<bool> {
        let inner = &self.inner;
        let now = inner.now();
        let (what, sync_needed) = match &notification.body {
            NotificationBody::AssetCount { .. } => ("licences bought or refunded", false),
            NotificationBody::AssetManagement { .. } => ("licence event finished", false),
            NotificationBody::UserManagement { .. } => ("users changed at Apple", true),
            NotificationBody::UserAssociated { .. } => ("invitation accepted", true),
            _ => ("Apple notification", true),
        };
        // A quick look at the truth when the location is free; otherwise (or
        // when Apple cannot be read now) the scheduler's sync does it.
        let mut settled = !sync_needed;
        if settled {
            settled = match inner.lock_location(location).await {
                Ok(mut guard) => {
                    let r = self.check_claim(&mut guard, notification).await;
                    guard.release(inner).await;
                    match r {
                        Ok(ok) => ok,
                        Err(e) => {
                            tracing::info!(error = %e, "notification's claim not checked now; a sync will");
                            false
                        }
                    }
                }
                Err(_) => false,
            };
        }
        let mut page = SyncPage::new(now);
        page.notification = Some(notification.id.clone());
        page.documents
            .push(mark_document(Mark::Reconcile, location, what, now));
        if !settled {
            page.documents
                .push(mark_document(Mark::Sync, location, what, now));
        }
        match inner.store.apply_sync_page(location, &page).await {
            Ok(_) => {
                inner.wake_scheduler();
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a notification's claim against Apple under the location lock:
    /// the asset's counts re-read for `ASSET_COUNT`; for `ASSET_MANAGEMENT`,
    /// the event's status polled when it is one of this manager's operations.
    /// Returns whether the claim is settled (otherwise a sync is needed: an
    /// event this manager never sent is read back by a sync, never believed).
    async fn check_claim(
        &self,
        guard: &mut LocationGuard,
        notification: &LedgerNotification,
    ) -> Result<bool> {
        let inner = &self.inner;
        match &notification.body {
            NotificationBody::AssetCount { .. } => {
                self.sync_assets(guard, &ProgressReporter::none()).await?;
                Ok(true)
            }
            NotificationBody::AssetManagement { event_id, .. } => {
                let Some(op) = inner
                    .store
                    .operation_by_event(&guard.id(), event_id)
                    .await?
                else {
                    tracing::info!(event = %event_id, "an event this manager did not send: read back by a sync");
                    return Ok(false);
                };
                if !op.status.is_finished() {
                    let mut report = LocationApplyReport::default();
                    self.advance(guard, op, &mut report).await?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The location of an organisational unit (not the duplicate one).
    async fn location_for(&self, uid: Option<&vppkit_core::Uid>) -> Result<Option<LocationId>> {
        let Some(uid) = uid else { return Ok(None) };
        let mut candidates: Vec<_> = self
            .inner
            .store
            .locations()
            .await?
            .into_iter()
            .filter(|l| l.uid.as_ref() == Some(uid))
            .collect();
        candidates.sort_by_key(|l| (l.token_state == TokenState::DuplicateLocation, l.created_at));
        Ok(candidates.into_iter().next().map(|l| l.id))
    }
}

/// The ledger's notification, `None` for types the ledger does not take.
fn to_ledger(n: &AppleNotification) -> std::result::Result<Option<NotificationBody>, String> {
    Ok(Some(match n {
        AppleNotification::AssetCount(c) => NotificationBody::AssetCount {
            asset: c.asset_key(),
            count_delta: c.count_delta,
        },
        AppleNotification::AssetManagement(m) => {
            let kind = match m.event_type {
                EventType::Associate => EventKind::Associate,
                EventType::Disassociate => EventKind::Disassociate,
                EventType::Revoke => EventKind::Revoke,
                ref other => return Err(format!("ASSET_MANAGEMENT of type {other}")),
            };
            let event_id = m
                .event_id
                .clone()
                .ok_or_else(|| "ASSET_MANAGEMENT without an eventId".to_owned())?;
            NotificationBody::AssetManagement {
                kind,
                event_id,
                succeeded: m.result == NotificationResult::Success,
                assignments: m
                    .assignments
                    .iter()
                    .filter_map(|a| a.holder().map(|h| AppleHolding::new(a.asset_key(), h)))
                    .collect(),
                error_number: m
                    .error
                    .as_ref()
                    .and_then(|e| u32::try_from(e.number.number()).ok()),
            }
        }
        AppleNotification::UserManagement(m) => NotificationBody::UserManagement {
            event_id: m
                .event_id
                .clone()
                .ok_or_else(|| "USER_MANAGEMENT without an eventId".to_owned())?,
            succeeded: m.result == NotificationResult::Success,
            users: m.users.iter().cloned().map(VppUser::from).collect(),
        },
        AppleNotification::UserAssociated(m) => NotificationBody::UserAssociated {
            users: m
                .associated_users
                .iter()
                .cloned()
                .map(VppUser::from)
                .collect(),
        },
        _ => return Ok(None),
    }))
}

/// Fails to compile if the entry point's future stops being `Send` (embedders
/// run it inside their HTTP server's tasks).
#[allow(dead_code)]
fn assert_send(e: &Engine) -> impl Send + '_ {
    e.handle_notification(Vec::<(String, String)>::new(), b"")
}
