use vppkit_core::{AccountType, TokenState};
use vppkit_engine::{AddToken, ClaimConsent, EngineError};
use vppkit_sim::demo;

use crate::support::*;

#[tokio::test]
async fn onboarding_records_the_location_and_claims_it() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        assert_eq!(o.name, "Springfield High School");
        assert_eq!(o.uid, Some(uid(demo::SPRINGFIELD_HIGH)));
        assert_eq!(o.country.as_deref(), Some("US"));
        assert_eq!(o.account_type, Some(AccountType::Education));
        assert_eq!(o.token_state, TokenState::Valid);
        assert!(o.claimed);
        assert!(!o.subscribed, "no webhook configured");
        // Apple now has our mdmInfo.
        let info = w.sim.control().location(demo::SPRINGFIELD_HIGH).unwrap();
        assert_eq!(info.mdm_info.map(|m| m.id), Some(OUR_MDM_ID.to_owned()));
        let rec = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(rec.token_state, TokenState::Valid);
        assert_eq!(rec.account_type, Some(AccountType::Education));
        // The same id twice is refused.
        let again = w
            .engine
            .add_token(AddToken::new(
                loc("sph"),
                w.token(demo::SPRINGFIELD_HIGH).content,
            ))
            .await;
        assert!(matches!(again, Err(EngineError::LocationExists(_))));
    }
}

#[tokio::test]
async fn onboarding_subscribes_notifications_with_a_webhook() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).webhook().start().await;
        let o = w.onboard("london", demo::ACME_LONDON).await;
        // The test webhook is plain http on loopback: the engine subscribes it
        // through vppkit-client's loopback opt-in, and the simulator accepts it.
        assert!(o.subscribed, "{:?}", o.subscription_error);
        assert!(o.claimed);
        assert_eq!(o.subscription_error, None);
        assert_eq!(o.account_type, Some(AccountType::Business));
        let rec = w.store.location(&loc("london")).await.unwrap().unwrap();
        assert_eq!(
            rec.notification.map(|n| n.url),
            w.hook.clone(),
            "the subscription is recorded on the location"
        );
        let info = w.sim.control().location(demo::ACME_LONDON).unwrap();
        assert_eq!(info.notification_url.as_deref(), w.hook.as_deref());
        assert_eq!(info.subscribed_notification_types.len(), 4);
    }
}

#[tokio::test]
async fn a_token_held_by_another_mdm_is_claimed_only_with_consent() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        let o = w.onboard("berlin", demo::ACME_BERLIN).await;
        assert!(!o.claimed);
        assert_eq!(o.token_state, TokenState::ClaimedElsewhere);
        assert_eq!(
            o.other_mdm.as_ref().map(|m| m.id.as_str()),
            Some(demo::OTHER_MDM_ID)
        );
        // Apple still has the other MDM's claim.
        let info = w.sim.control().location(demo::ACME_BERLIN).unwrap();
        assert_eq!(info.mdm_info.unwrap().id, demo::OTHER_MDM_ID);
        // Reads work, writes are stopped.
        let outcome = w
            .engine
            .sync(
                &loc("berlin"),
                vppkit_engine::SyncKind::Full,
                &vppkit_engine::ProgressReporter::none(),
            )
            .await
            .unwrap();
        assert!(outcome.succeeded());
        let report = w
            .engine
            .report(&loc("berlin"), vppkit_engine::ReportOptions::summary())
            .await
            .unwrap();
        assert!(!report.writes_allowed);
        assert!(
            report.foreign_users > 0,
            "the other MDM's users are reported"
        );
        // Without consent: refused. With consent: taken.
        let refused = w
            .engine
            .claim(&loc("berlin"), ClaimConsent::OnlyIfUnclaimed)
            .await;
        assert!(matches!(refused, Err(EngineError::ClaimedElsewhere { .. })));
        let state = w
            .engine
            .claim(&loc("berlin"), ClaimConsent::TakeOver)
            .await
            .unwrap();
        assert_eq!(state, TokenState::Valid);
        let info = w.sim.control().location(demo::ACME_BERLIN).unwrap();
        assert_eq!(info.mdm_info.unwrap().id, OUR_MDM_ID);
    }
}

#[tokio::test]
async fn a_second_token_for_the_same_location_is_a_duplicate() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let second = w
            .sim
            .control()
            .add_token(demo::SPRINGFIELD_HIGH, false)
            .unwrap();
        let o = w
            .engine
            .add_token(AddToken::new(loc("sph-2"), second.content.clone()))
            .await
            .unwrap();
        assert_eq!(o.token_state, TokenState::DuplicateLocation);
        assert!(!o.claimed);
        let report = w
            .engine
            .report(&loc("sph-2"), vppkit_engine::ReportOptions::summary())
            .await
            .unwrap();
        assert!(!report.writes_allowed);
        // The first location is untouched.
        let first = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(first.token_state, TokenState::Valid);
    }
}

#[tokio::test]
async fn a_malformed_token_is_a_typed_error_and_nothing_is_stored() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        let r = w
            .engine
            .add_token(AddToken::new(loc("bad"), "not a token file"))
            .await;
        assert!(matches!(r, Err(EngineError::Token(_))), "{r:?}");
        assert!(w.store.location(&loc("bad")).await.unwrap().is_none());
        let unknown =
            vppkit_core::ContentToken::encode_file("nobody", "2031-01-01T00:00:00+0000", "Nobody");
        let r = w
            .engine
            .add_token(AddToken::new(loc("unknown"), unknown.as_str()))
            .await;
        let err = r.unwrap_err();
        assert!(
            matches!(&err, EngineError::Apple(e) if e.token_problem().is_some()),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains(&unknown));
        assert!(w.store.location(&loc("unknown")).await.unwrap().is_none());
    }
}
