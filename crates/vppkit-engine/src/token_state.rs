//! The content token's state machine: a pure function of what Apple said, the
//! clock and the other tokens of the manager, with every transition recorded.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{LocationId, MdmInfo, TokenState};

/// Why Apple refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenRejection {
    /// 9621: the token has expired.
    Expired,
    /// 9625: the token was revoked (often: a newer token was downloaded).
    Revoked,
    /// 9622, 9601 or 9722: the token is unknown, garbled or not sent right.
    Invalid,
}

/// What the engine knows about one location's token. Persisted with the location;
/// the [`TokenState`] is derived from it by [`TokenFacts::state`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenFacts {
    /// Expiry: the token file's `expDate`, updated from Apple's `tokenExpirationDate`.
    pub expires_at: DateTime<Utc>,
    /// The last refusal by Apple, cleared by the next answer that accepts the token.
    pub rejection: Option<TokenRejection>,
    /// The `mdmInfo` of another MDM seen on the last answer, if any.
    pub claimed_by: Option<MdmInfo>,
    /// Another location of this manager with the same `uId`.
    pub duplicate_of: Option<LocationId>,
}

impl TokenFacts {
    /// Facts about a freshly parsed token.
    pub fn new(expires_at: DateTime<Utc>) -> Self {
        Self {
            expires_at,
            rejection: None,
            claimed_by: None,
            duplicate_of: None,
        }
    }

    /// The state these facts give at `now`. Precedence, strongest first:
    /// revoked, invalid, expired, claimed elsewhere, duplicate location,
    /// expiring, valid.
    pub fn state(&self, now: DateTime<Utc>, warning: chrono::Duration) -> TokenState {
        match self.rejection {
            Some(TokenRejection::Revoked) => return TokenState::Revoked,
            Some(TokenRejection::Invalid) => return TokenState::Invalid,
            Some(TokenRejection::Expired) => return TokenState::Expired,
            None => {}
        }
        if now >= self.expires_at {
            return TokenState::Expired;
        }
        if self.claimed_by.is_some() {
            return TokenState::ClaimedElsewhere;
        }
        if self.duplicate_of.is_some() {
            return TokenState::DuplicateLocation;
        }
        if self.expires_at - now <= warning {
            return TokenState::Expiring;
        }
        TokenState::Valid
    }
}

/// Something learnt about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenObservation {
    /// Apple accepted the token and answered with this envelope.
    Answer {
        /// `mdmInfo` on the answer (`None`: nobody has claimed the token).
        mdm_info: Option<MdmInfo>,
        /// `tokenExpirationDate` on the answer, when present.
        expires_at: Option<DateTime<Utc>>,
    },
    /// Apple refused the token.
    Rejected(TokenRejection),
    /// The duplicate check ran: `Some` names the other location with the same `uId`.
    Duplicate(Option<LocationId>),
    /// The token was replaced in place by a new file for the same location.
    Renewed {
        /// The new file's `expDate`.
        expires_at: DateTime<Utc>,
    },
    /// We wrote our `mdmInfo` to the token (with the operator's consent if another
    /// MDM held it).
    ClaimedByUs,
    /// Only time passed (expiring and expired by date).
    Tick,
}

impl TokenObservation {
    fn cause(&self) -> TransitionCause {
        match self {
            TokenObservation::Answer { .. } => TransitionCause::AppleAnswer,
            TokenObservation::Rejected(r) => TransitionCause::AppleRejection(*r),
            TokenObservation::Duplicate(_) => TransitionCause::DuplicateCheck,
            TokenObservation::Renewed { .. } => TransitionCause::Renewed,
            TokenObservation::ClaimedByUs => TransitionCause::Claimed,
            TokenObservation::Tick => TransitionCause::Clock,
        }
    }
}

/// Why a token changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransitionCause {
    /// First evaluation when the token was added.
    Onboarded,
    /// An answer from Apple (its `mdmInfo` or expiry).
    AppleAnswer,
    /// Apple refused the token.
    AppleRejection(TokenRejection),
    /// Another token of the manager has (or no longer has) the same `uId`.
    DuplicateCheck,
    /// The token was replaced in place.
    Renewed,
    /// We claimed the token.
    Claimed,
    /// Time passed.
    Clock,
}

/// One change of a token's state, to be journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenTransition {
    /// The location.
    pub location: LocationId,
    /// State before (`None` on onboarding).
    pub from: Option<TokenState>,
    /// State after.
    pub to: TokenState,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub cause: TransitionCause,
    /// The other MDM's `mdmInfo.id` and name, when the cause is a foreign claim.
    pub claimed_by: Option<MdmInfo>,
}

/// Applies an observation to the facts, for the MDM whose `mdmInfo.id` is
/// `our_mdm_id`. `recorded` is the state last journaled for the location (`None`
/// before onboarding). Returns the new facts and the transition when the state
/// differs from the recorded one. Pure: the same inputs always give the same
/// outputs.
pub fn observe(
    location: &LocationId,
    recorded: Option<TokenState>,
    facts: &TokenFacts,
    observation: &TokenObservation,
    our_mdm_id: &str,
    now: DateTime<Utc>,
    warning: chrono::Duration,
) -> (TokenFacts, Option<TokenTransition>) {
    let mut next = facts.clone();
    match observation {
        TokenObservation::Answer {
            mdm_info,
            expires_at,
        } => {
            next.rejection = None;
            next.claimed_by = mdm_info.as_ref().filter(|m| m.id != our_mdm_id).cloned();
            if let Some(at) = expires_at {
                next.expires_at = *at;
            }
        }
        TokenObservation::Rejected(r) => next.rejection = Some(*r),
        TokenObservation::Duplicate(other) => next.duplicate_of = other.clone(),
        TokenObservation::Renewed { expires_at } => {
            next.expires_at = *expires_at;
            next.rejection = None;
        }
        TokenObservation::ClaimedByUs => next.claimed_by = None,
        TokenObservation::Tick => {}
    }
    let after = next.state(now, warning);
    let transition = (Some(after) != recorded).then(|| TokenTransition {
        location: location.clone(),
        from: recorded,
        to: after,
        at: now,
        cause: if recorded.is_none() {
            TransitionCause::Onboarded
        } else {
            observation.cause()
        },
        claimed_by: next.claimed_by.clone(),
    });
    (next, transition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn loc() -> LocationId {
        LocationId::new("loc-1").unwrap()
    }

    const OURS: &str = "ours";

    fn run(
        facts: &TokenFacts,
        obs: TokenObservation,
        now: &str,
    ) -> (TokenFacts, Option<TokenState>) {
        let recorded = facts.state(t(now) - Duration::seconds(1), Duration::days(30));
        run_from(Some(recorded), facts, obs, now)
    }

    fn run_from(
        recorded: Option<TokenState>,
        facts: &TokenFacts,
        obs: TokenObservation,
        now: &str,
    ) -> (TokenFacts, Option<TokenState>) {
        let (f, tr) = observe(
            &loc(),
            recorded,
            facts,
            &obs,
            OURS,
            t(now),
            Duration::days(30),
        );
        (f, tr.map(|t| t.to))
    }

    #[test]
    fn expiring_then_expired_by_date() {
        let f = TokenFacts::new(t("2030-06-01T00:00:00Z"));
        assert_eq!(
            f.state(t("2030-01-01T00:00:00Z"), Duration::days(30)),
            TokenState::Valid
        );
        let v = Some(TokenState::Valid);
        let (f, s) = run_from(v, &f, TokenObservation::Tick, "2030-05-10T00:00:00Z");
        assert_eq!(s, Some(TokenState::Expiring));
        let e = Some(TokenState::Expiring);
        let (f, s) = run_from(e, &f, TokenObservation::Tick, "2030-05-11T00:00:00Z");
        assert_eq!(s, None, "no transition without a change");
        let (_, s) = run_from(e, &f, TokenObservation::Tick, "2030-06-01T00:00:00Z");
        assert_eq!(s, Some(TokenState::Expired));
    }

    #[test]
    fn apple_rejections_and_recovery() {
        let f = TokenFacts::new(t("2031-01-01T00:00:00Z"));
        let now = "2030-01-01T00:00:00Z";
        let (f2, s) = run(&f, TokenObservation::Rejected(TokenRejection::Expired), now);
        assert_eq!(s, Some(TokenState::Expired));
        let (_, s) = run(
            &f2,
            TokenObservation::Rejected(TokenRejection::Revoked),
            now,
        );
        assert_eq!(s, Some(TokenState::Revoked));
        let (f3, s) = run(&f, TokenObservation::Rejected(TokenRejection::Invalid), now);
        assert_eq!(s, Some(TokenState::Invalid));
        // A renewal clears the rejection.
        let (f4, s) = run(
            &f3,
            TokenObservation::Renewed {
                expires_at: t("2032-01-01T00:00:00Z"),
            },
            now,
        );
        assert_eq!(s, Some(TokenState::Valid));
        assert_eq!(f4.expires_at, t("2032-01-01T00:00:00Z"));
    }

    #[test]
    fn claimed_by_another_mdm_on_any_answer() {
        let f = TokenFacts::new(t("2031-01-01T00:00:00Z"));
        let now = "2030-01-01T00:00:00Z";
        let other = MdmInfo::new_unchecked("theirs", "Other MDM", "other.example");
        let (f, s) = run(
            &f,
            TokenObservation::Answer {
                mdm_info: Some(other.clone()),
                expires_at: None,
            },
            now,
        );
        assert_eq!(s, Some(TokenState::ClaimedElsewhere));
        assert_eq!(f.claimed_by, Some(other));
        // Our own id on the next answer, or our claim, clears it.
        let ours = MdmInfo::new_unchecked(OURS, "Us", "us.example");
        let (g, s) = run(
            &f,
            TokenObservation::Answer {
                mdm_info: Some(ours),
                expires_at: None,
            },
            now,
        );
        assert_eq!(s, Some(TokenState::Valid));
        assert!(g.claimed_by.is_none());
        let (_, s) = run(&f, TokenObservation::ClaimedByUs, now);
        assert_eq!(s, Some(TokenState::Valid));
        // An unclaimed token is not claimed elsewhere.
        let (_, s) = run(
            &f,
            TokenObservation::Answer {
                mdm_info: None,
                expires_at: None,
            },
            now,
        );
        assert_eq!(s, Some(TokenState::Valid));
    }

    #[test]
    fn duplicate_location() {
        let f = TokenFacts::new(t("2031-01-01T00:00:00Z"));
        let now = "2030-01-01T00:00:00Z";
        let (f, s) = run(
            &f,
            TokenObservation::Duplicate(Some(LocationId::new("other").unwrap())),
            now,
        );
        assert_eq!(s, Some(TokenState::DuplicateLocation));
        let (_, s) = run(&f, TokenObservation::Duplicate(None), now);
        assert_eq!(s, Some(TokenState::Valid));
    }

    #[test]
    fn precedence() {
        let mut f = TokenFacts::new(t("2030-01-10T00:00:00Z"));
        f.duplicate_of = Some(LocationId::new("other").unwrap());
        f.claimed_by = Some(MdmInfo::new_unchecked("x", "y", "z"));
        let now = t("2030-01-01T00:00:00Z");
        let w = Duration::days(30);
        assert_eq!(f.state(now, w), TokenState::ClaimedElsewhere);
        f.claimed_by = None;
        assert_eq!(f.state(now, w), TokenState::DuplicateLocation);
        f.duplicate_of = None;
        assert_eq!(f.state(now, w), TokenState::Expiring);
        f.rejection = Some(TokenRejection::Invalid);
        assert_eq!(f.state(now, w), TokenState::Invalid);
        f.rejection = Some(TokenRejection::Revoked);
        assert_eq!(f.state(now, w), TokenState::Revoked);
    }

    #[test]
    fn answer_updates_expiry_and_clears_rejection() {
        let mut f = TokenFacts::new(t("2030-01-05T00:00:00Z"));
        f.rejection = Some(TokenRejection::Invalid);
        let (f, s) = run(
            &f,
            TokenObservation::Answer {
                mdm_info: None,
                expires_at: Some(t("2031-01-01T00:00:00Z")),
            },
            "2030-01-01T00:00:00Z",
        );
        assert_eq!(s, Some(TokenState::Valid));
        assert_eq!(f.expires_at, t("2031-01-01T00:00:00Z"));
        let (_, tr) = observe(
            &loc(),
            None,
            &f,
            &TokenObservation::Tick,
            OURS,
            t("2030-01-01T00:00:00Z"),
            Duration::days(30),
        );
        let tr = tr.unwrap();
        assert_eq!(tr.from, None);
        assert_eq!(tr.to, TokenState::Valid);
        assert_eq!(tr.cause, TransitionCause::Onboarded);
    }
}
