//! Token lifecycle: add a token, claim it, renew it in place, remove it.

use tracing::Instrument;
use vppkit_client::{ClientConfigRequest, NotificationType};
use vppkit_core::{AccountType, ContentToken, LocationId, MdmInfo, Secret, TokenState, Uid};
use vppkit_store::{LocationRecord, NotificationSettings};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::token_state::TokenObservation;

/// Whether the engine may take a token that another MDM holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimConsent {
    /// Claim the token only if no other MDM holds it (the default). A token held
    /// elsewhere is kept read-only in state `claimed_elsewhere`.
    #[default]
    OnlyIfUnclaimed,
    /// The operator agreed to take the token from the other MDM.
    TakeOver,
}

/// A request to add a content token as a new location.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AddToken {
    /// The id the manager gives the location.
    pub location: LocationId,
    /// The `.vpptoken` file content.
    pub token_file: Secret,
    /// The Apple account the operator downloaded the token with (for the report).
    pub apple_account_name: Option<String>,
    /// Whether a token held by another MDM may be taken.
    pub consent: ClaimConsent,
}

impl AddToken {
    /// A request with no Apple account name and no consent to take a token held elsewhere.
    pub fn new(location: LocationId, token_file: impl Into<Secret>) -> Self {
        Self {
            location,
            token_file: token_file.into(),
            apple_account_name: None,
            consent: ClaimConsent::OnlyIfUnclaimed,
        }
    }

    /// Records the Apple account name.
    pub fn apple_account_name(mut self, name: impl Into<String>) -> Self {
        self.apple_account_name = Some(name.into());
        self
    }

    /// Sets the claim consent.
    pub fn consent(mut self, consent: ClaimConsent) -> Self {
        self.consent = consent;
        self
    }
}

/// What onboarding found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Onboarded {
    /// The new location.
    pub location: LocationId,
    /// Apple's name of the organisational unit.
    pub name: String,
    /// Apple's `uId`.
    pub uid: Option<Uid>,
    /// `countryISO2ACode`.
    pub country: Option<String>,
    /// Business or education.
    pub account_type: Option<AccountType>,
    /// The token's state after onboarding.
    pub token_state: TokenState,
    /// Whether we wrote our `mdmInfo` to the token.
    pub claimed: bool,
    /// Another MDM that holds the token, when we did not take it.
    pub other_mdm: Option<MdmInfo>,
    /// Whether notifications are subscribed.
    pub subscribed: bool,
    /// Why subscribing failed, if it did (the location works without it, by polling).
    pub subscription_error: Option<String>,
}

/// The notification types the engine subscribes to.
pub(crate) fn subscribed_types() -> Vec<NotificationType> {
    vec![
        NotificationType::AssetManagement,
        NotificationType::AssetCount,
        NotificationType::UserManagement,
        NotificationType::UserAssociated,
    ]
}

impl Engine {
    /// Adds a content token as a new location: validates it with Apple
    /// (`GET client/config`), records the location's name, country, `uId` and
    /// account type, detects a duplicate location and a token held by another
    /// MDM, claims the token (only with consent if another MDM holds it), and
    /// subscribes to notifications when a webhook is configured.
    pub async fn add_token(&self, request: AddToken) -> Result<Onboarded> {
        let span = tracing::info_span!("vppkit.onboard", location = %request.location);
        self.add_token_inner(request).instrument(span).await
    }

    async fn add_token_inner(&self, request: AddToken) -> Result<Onboarded> {
        let inner = &self.inner;
        let token = ContentToken::parse(request.token_file.expose())?;
        if inner.store.location(&request.location).await?.is_some() {
            return Err(EngineError::LocationExists(request.location));
        }
        let client = inner.client_builder(token.bearer()).build()?;
        let answer = client
            .client_config()
            .instrument(tracing::info_span!(
                "vppkit.apple",
                call = "GET client/config"
            ))
            .await?;
        let config = answer.body;
        let envelope = answer.envelope;
        let now = inner.now();
        let name = config
            .location_name
            .clone()
            .unwrap_or_else(|| token.org_name().to_owned());
        let mut record = LocationRecord::new(
            request.location.clone(),
            name.clone(),
            token.bearer().clone(),
            envelope
                .token_expiration_date
                .unwrap_or_else(|| token.expires_at()),
            now,
        );
        record.uid = envelope.uid.clone();
        record.country = config.country_iso2a_code.clone();
        record.account_type = config.account_type();
        record.apple_account_name = request.apple_account_name.clone();
        record.mdm_info = envelope.mdm_info.clone();

        // Duplicate location: another token of ours with the same uId.
        let duplicate_of = match &record.uid {
            Some(uid) => inner
                .store
                .locations()
                .await?
                .into_iter()
                .find(|l| l.uid.as_ref() == Some(uid))
                .map(|l| l.id),
            None => None,
        };
        let mut facts = inner.facts(&record);
        facts.duplicate_of = duplicate_of.clone();
        record.token_state = facts.state(now, inner.config.expiry_warning);
        record.revision = 0;
        record.revision = inner.store.save_location(&record).await?;
        let onboarded_transition = crate::token_state::TokenTransition {
            location: record.id.clone(),
            from: None,
            to: record.token_state,
            at: now,
            cause: crate::token_state::TransitionCause::Onboarded,
            claimed_by: facts.claimed_by.clone(),
        };
        inner
            .store
            .append_journal(
                &record.id,
                &[vppkit_store::NewJournalRecord::new(
                    now,
                    "onboarded",
                    crate::book::TOKEN_KIND,
                    serde_json::to_value(&onboarded_transition).unwrap_or_default(),
                )],
            )
            .await?;

        let other_mdm = facts.claimed_by.clone();
        let mut claimed = false;
        let mut subscribed = false;
        let mut subscription_error = None;
        let may_claim = duplicate_of.is_none()
            && !matches!(record.token_state, TokenState::Expired)
            && (other_mdm.is_none() || request.consent == ClaimConsent::TakeOver);
        if may_claim {
            match self.write_client_config(&mut record).await {
                Ok(sub) => {
                    claimed = true;
                    subscribed = sub;
                }
                Err(e @ EngineError::Apple(_)) if other_mdm.is_none() => {
                    // The claim itself went through only if Apple said so; a failed
                    // subscription (9728 unreachable URL) is reported, not fatal.
                    subscription_error = Some(e.to_string());
                    if self.claim_only(&mut record).await.is_ok() {
                        claimed = true;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Onboarded {
            location: record.id.clone(),
            name,
            uid: record.uid.clone(),
            country: record.country.clone(),
            account_type: record.account_type,
            token_state: record.token_state,
            claimed,
            other_mdm: if claimed { None } else { other_mdm },
            subscribed,
            subscription_error,
        })
    }

    /// Takes a token that another MDM holds, with the operator's consent: writes
    /// our `mdmInfo` (and the notification subscription) to it.
    pub async fn claim(&self, location: &LocationId, consent: ClaimConsent) -> Result<TokenState> {
        let inner = &self.inner;
        let mut guard = inner.lock_location(location).await?;
        let result = async {
            if guard.record.token_state == TokenState::ClaimedElsewhere
                && consent != ClaimConsent::TakeOver
            {
                let other = guard
                    .record
                    .mdm_info
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                return Err(EngineError::ClaimedElsewhere { other_mdm: other });
            }
            if !matches!(
                guard.record.token_state,
                TokenState::Valid | TokenState::Expiring | TokenState::ClaimedElsewhere
            ) {
                return Err(EngineError::WritesStopped {
                    location: location.clone(),
                    state: guard.record.token_state,
                });
            }
            let mut record = guard.record.clone();
            self.write_client_config(&mut record).await?;
            guard.record = record;
            Ok(guard.record.token_state)
        }
        .await;
        guard.release(inner).await;
        result
    }

    /// POSTs our `mdmInfo` (and the webhook when configured). Returns whether
    /// notifications are subscribed.
    async fn write_client_config(&self, record: &mut LocationRecord) -> Result<bool> {
        let inner = &self.inner;
        let client = inner.client(record)?;
        let mut req = ClientConfigRequest::new().with_mdm_info(inner.config.mdm_info.clone());
        let webhook = inner.config.webhook.clone();
        if let Some(w) = &webhook {
            req = req
                .with_notifications(w.url(), w.auth_token().clone(), subscribed_types())
                .allow_http_loopback(w.is_loopback_http());
        }
        let answer = match client
            .set_client_config(&req)
            .instrument(tracing::info_span!(
                "vppkit.apple",
                call = "POST client/config"
            ))
            .await
        {
            Ok(a) => a,
            Err(e) => return Err(inner.observe_error(record, e).await),
        };
        inner
            .observe_token(record, TokenObservation::ClaimedByUs)
            .await?;
        inner.observe_envelope(record, &answer.envelope).await?;
        if let Some(w) = webhook {
            let settings = NotificationSettings::new(
                w.url(),
                w.auth_token().clone(),
                subscribed_types()
                    .iter()
                    .map(|t| t.as_str().to_owned())
                    .collect(),
            );
            *record = inner
                .save_record(record, move |r| r.notification = Some(settings.clone()))
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// POSTs our `mdmInfo` alone.
    async fn claim_only(&self, record: &mut LocationRecord) -> Result<()> {
        let inner = &self.inner;
        let client = inner.client(record)?;
        let req = ClientConfigRequest::new().with_mdm_info(inner.config.mdm_info.clone());
        match client.set_client_config(&req).await {
            Ok(answer) => {
                inner
                    .observe_token(record, TokenObservation::ClaimedByUs)
                    .await?;
                inner.observe_envelope(record, &answer.envelope).await?;
                Ok(())
            }
            Err(e) => Err(inner.observe_error(record, e).await),
        }
    }

    /// Replaces a location's token with a new file for the same organisational
    /// unit; everything else (holdings, users, journal, cursors) is kept.
    pub async fn renew_token(
        &self,
        location: &LocationId,
        token_file: impl Into<Secret>,
    ) -> Result<TokenState> {
        let inner = &self.inner;
        let token_file = token_file.into();
        let token = ContentToken::parse(token_file.expose())?;
        let mut guard = inner.lock_location(location).await?;
        let result = async {
            let client = inner.client_builder(token.bearer()).build()?;
            let answer = client.client_config().await?;
            if let (Some(expected), Some(found)) = (&guard.record.uid, &answer.envelope.uid) {
                if expected != found {
                    return Err(EngineError::WrongLocation {
                        expected: expected.clone(),
                        found: found.clone(),
                    });
                }
            }
            let expires = answer
                .envelope
                .token_expiration_date
                .unwrap_or_else(|| token.expires_at());
            let bearer = token.bearer().clone();
            let mut record = inner
                .save_record(&guard.record, move |r| r.token = bearer.clone())
                .await?;
            inner.forget_client(location);
            inner
                .observe_token(
                    &mut record,
                    TokenObservation::Renewed {
                        expires_at: expires,
                    },
                )
                .await?;
            inner
                .observe_envelope(&mut record, &answer.envelope)
                .await?;
            // Keep our claim on the new token when nobody else took it.
            if record.mdm_info.is_none() && record.token_state.allows_writes() {
                self.write_client_config(&mut record).await?;
            }
            guard.record = record;
            Ok(guard.record.token_state)
        }
        .await;
        guard.release(inner).await;
        result
    }

    /// Removes a location and everything stored for it. With `revoke`, first
    /// takes back every revocable licence this manager holds there (its devices
    /// and its own users; foreign holdings are left alone) and waits for Apple to
    /// confirm.
    pub async fn remove_location(&self, location: &LocationId, revoke: bool) -> Result<()> {
        let inner = &self.inner;
        if revoke {
            self.revoke_everything(location).await?;
        }
        let guard = inner.lock_location(location).await?;
        // Documents that belong to the location (its plan notes, last full sync,
        // outbox, pending releases, ...) go with it.
        let deleted = inner.store.delete_location(location).await;
        guard.release(inner).await;
        inner.forget_book(location);
        inner.forget_client(location);
        deleted?;
        Ok(())
    }
}
