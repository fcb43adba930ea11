use std::sync::Arc;

use chrono::{Duration, Utc};
use vppkit_core::{MdmInfo, TokenState};
use vppkit_engine::{EngineError, ManualClock, ProgressReporter, ReportOptions, SyncKind};
use vppkit_rules::{Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target};
use vppkit_sim::demo;

use crate::support::*;

fn one_app_policy() -> PolicySet {
    PolicySet::new(
        Default::default(),
        vec![Policy::new(
            PolicyId::new("everyone").unwrap(),
            vppkit_core::AdamId::from(demo::SHORTAGE_APP),
            Target::AllDevices,
            Intent::Required,
            LicenceType::Device,
        )],
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_claimed_by_another_mdm_mid_run_stops_writes_not_reads() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let other = MdmInfo::new("someone-else", "Other MDM", "other.example").unwrap();
        w.sim
            .control()
            .set_mdm_info(demo::SPRINGFIELD_HIGH, Some(other))
            .unwrap();
        // Any answer shows the claim; the sync (a read) still works.
        let o = w
            .engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        assert!(o.succeeded());
        let rec = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(rec.token_state, TokenState::ClaimedElsewhere);
        // The transition is journaled.
        let journal = w
            .store
            .read_journal(&vppkit_store::JournalQuery::new(loc("sph"), 100_000))
            .await
            .unwrap();
        assert!(journal
            .iter()
            .any(|r| r.kind == "token" && r.body.to_string().contains("claimed_elsewhere")));
        // Writes stop.
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), Vec::new());
        let ctx = PlanContext::new(Utc::now());
        let before = w.truth(demo::SPRINGFIELD_HIGH);
        let (_, report) = w
            .engine
            .plan_and_apply(&dir, &one_app_policy(), &ctx)
            .await
            .unwrap();
        for l in &report.locations {
            assert!(
                l.skipped
                    .as_deref()
                    .unwrap_or("")
                    .contains("claimed_elsewhere"),
                "{l:?}"
            );
        }
        assert_eq!(before, w.truth(demo::SPRINGFIELD_HIGH), "nothing written");
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert!(!r.writes_allowed);
        assert_eq!(r.token_state, TokenState::ClaimedElsewhere);
    }
}

#[tokio::test]
async fn an_expiring_token_warns_and_an_expired_one_stops_everything() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let c2 = clock.clone();
        let expiry = Utc::now() + Duration::days(10);
        let w = WorldBuilder::new(backend)
            .sim(move |s| s.token_expiry(expiry))
            .engine(move |b| b.clock(c2))
            .start()
            .await;
        let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        assert_eq!(
            o.token_state,
            TokenState::Expiring,
            "10 days left, 30-day window"
        );
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert!(r.writes_allowed, "an expiring token still writes");
        assert!((r.token_expires_at - expiry).num_seconds().abs() < 2);

        // Past the date: expired on the next look, before asking Apple.
        clock.advance(Duration::days(11));
        let err = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::ReadsStopped {
                    state: TokenState::Expired,
                    ..
                }
            ),
            "{err:?}"
        );
        let rec = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(rec.token_state, TokenState::Expired);
        // The stored data is still readable.
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert_eq!(r.token_state, TokenState::Expired);
        assert!(!r.writes_allowed);

        // Renewed in place: everything kept, valid again.
        clock.set(Utc::now());
        let new = w
            .sim
            .control()
            .add_token(demo::SPRINGFIELD_HIGH, true)
            .unwrap();
        w.sim
            .control()
            .set_token_expiry(&new, Utc::now() + Duration::days(365))
            .unwrap();
        let state = w
            .engine
            .renew_token(&loc("sph"), new.content.clone())
            .await
            .unwrap();
        assert_eq!(state, TokenState::Valid);
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

#[tokio::test]
async fn apple_answering_9621_or_9625_sets_the_state() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.sim
            .control()
            .expire_token(&w.token(demo::SPRINGFIELD_HIGH))
            .unwrap();
        w.sim
            .control()
            .revoke_token(&w.token(demo::SPRINGFIELD_MIDDLE))
            .unwrap();
        for id in ["sph", "spm"] {
            let r = w
                .engine
                .sync(&loc(id), SyncKind::Full, &ProgressReporter::none())
                .await;
            assert!(r.is_err());
        }
        let sph = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(sph.token_state, TokenState::Expired);
        let spm = w.store.location(&loc("spm")).await.unwrap().unwrap();
        assert_eq!(spm.token_state, TokenState::Revoked);
        // The last sync's failure is in the report.
        let r = w
            .engine
            .report(&loc("spm"), ReportOptions::summary())
            .await
            .unwrap();
        let last = r.last_sync.unwrap();
        assert!(!last.succeeded);
        assert!(!last
            .message
            .unwrap_or_default()
            .contains(w.token(demo::SPRINGFIELD_MIDDLE).content.expose()));
    }
}
