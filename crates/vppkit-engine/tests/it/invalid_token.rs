//! Apple answers an unknown token with 9622 and HTTP 200 (what real clients meet;
//! the simulator's default): the engine must read it as an invalid token, not as
//! a successful answer, stop writing, and recover once the token is renewed.

use vppkit_core::TokenState;
use vppkit_engine::{ProgressReporter, ReportOptions, SyncKind};
use vppkit_sim::demo;

use crate::support::*;

#[tokio::test]
async fn a_9622_answered_with_http_200_marks_the_token_invalid_and_renewing_recovers() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let old = w.token(demo::SPRINGFIELD_HIGH);
        w.sim.control().forget_token(&old).unwrap();

        let r = w
            .engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await;
        assert!(
            r.is_err(),
            "a 9622 body with HTTP 200 is not a success: {r:?}"
        );
        let rec = w.store.location(&loc("sph")).await.unwrap().unwrap();
        assert_eq!(rec.token_state, TokenState::Invalid);
        let report = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert!(!report.writes_allowed);
        assert!(!format!("{report:?}").contains(old.content.expose()));

        // A new token for the same location: valid again, data kept, in sync.
        let new = w
            .sim
            .control()
            .add_token(demo::SPRINGFIELD_HIGH, false)
            .unwrap();
        let state = w
            .engine
            .renew_token(&loc("sph"), new.content.clone())
            .await
            .unwrap();
        assert_eq!(state, TokenState::Valid);
        w.engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}
