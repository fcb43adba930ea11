//! The report (`Engine::report`, `app_totals`) and the sync kind labels: Apple's total
//! and retired beside owned / used / free, an app under two tokens summed across them,
//! `Started` saying the kind that runs, and a token's days left agreeing with its state.

use std::sync::{Arc, Mutex};

use vppkit_core::{AdamId, AssetKey, PricingParam, TokenState};
use vppkit_engine::{app_totals, ProgressReporter, ReportOptions, SyncKind, SyncProgress};
use vppkit_sim::{demo, AssetSpec};

use crate::support::*;

/// An app bought 5 times, one licence retired.
const RETIRED_APP: u64 = 1_999_000_001;

#[tokio::test]
async fn the_report_shows_apples_total_and_retired_and_sums_apps_across_tokens() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.sim
            .control()
            .add_asset(
                demo::SPRINGFIELD_HIGH,
                AssetSpec::app(RETIRED_APP, 5).retired(1),
            )
            .unwrap();
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        let synced = w
            .engine
            .sync_all(SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(synced.iter().all(|(_, r)| r.is_ok()));
        let reports = w.engine.reports(ReportOptions::summary()).await.unwrap();

        let high = reports.iter().find(|r| r.location == loc("sph")).unwrap();
        let key = AssetKey::new(AdamId::from(RETIRED_APP), PricingParam::Stdq);
        let retired = high.apps.iter().find(|a| a.asset == key).unwrap();
        assert_eq!(
            (retired.total, retired.retired, retired.owned, retired.free),
            (5, 1, 4, 4),
            "Apple's total and retired beside owned"
        );
        let json = serde_json::to_value(retired).unwrap();
        assert_eq!(
            (json["total"].as_u64(), json["retired"].as_u64()),
            (Some(5), Some(1))
        );
        // Every app's numbers are Apple's.
        for uid in [demo::SPRINGFIELD_HIGH, demo::SPRINGFIELD_MIDDLE] {
            let report = reports
                .iter()
                .find(|r| r.uid.as_ref().map(|u| u.as_str()) == Some(uid))
                .unwrap();
            for apple in w.sim.control().assets(uid).unwrap() {
                let app = report.apps.iter().find(|a| a.asset == apple.key).unwrap();
                assert_eq!(app.total, u64::from(apple.counts.total), "{}", apple.key);
                assert_eq!(
                    app.retired,
                    u64::from(apple.counts.retired),
                    "{}",
                    apple.key
                );
                assert_eq!(app.owned, app.total - app.retired, "{}", apple.key);
            }
        }

        // Each location lists the app it holds; the totals sum it across both.
        let totals = app_totals(&reports);
        let shared: Vec<_> = totals.iter().filter(|t| t.locations.len() == 2).collect();
        assert!(!shared.is_empty(), "the two schools share apps");
        for t in &shared {
            let per_location: Vec<_> = reports
                .iter()
                .flat_map(|r| r.apps.iter().filter(|a| a.asset == t.asset))
                .collect();
            assert_eq!(per_location.len(), 2, "{}: listed once per token", t.asset);
            let sum = |f: fn(&vppkit_engine::AppReport) -> u64| {
                per_location.iter().map(|a| f(a)).sum::<u64>()
            };
            // An unlimited location's counts are placeholders, not added to the limited ones.
            let limited = |f: fn(&vppkit_engine::AppReport) -> u64| {
                per_location
                    .iter()
                    .filter(|a| !a.unlimited)
                    .map(|a| f(a))
                    .sum::<u64>()
            };
            assert_eq!(
                t.unlimited,
                per_location.iter().any(|a| a.unlimited),
                "{}",
                t.asset
            );
            assert_eq!(t.total, limited(|a| a.total), "{}", t.asset);
            assert_eq!(t.owned, limited(|a| a.owned), "{}", t.asset);
            assert_eq!(t.used, sum(|a| a.used), "{}", t.asset);
            assert_eq!(t.free, limited(|a| a.free), "{}", t.asset);
        }
        // Classroom Notes: 700 at the high school, 350 at the middle school.
        let notes = totals
            .iter()
            .find(|t| t.asset == AssetKey::new(AdamId::from(1_200_000_001u64), PricingParam::Stdq))
            .unwrap();
        assert_eq!(notes.owned, 1050);
        assert_eq!(totals.len(), {
            let mut keys: Vec<_> = reports
                .iter()
                .flat_map(|r| &r.apps)
                .map(|a| &a.asset)
                .collect();
            keys.sort();
            keys.dedup();
            keys.len()
        });
    }
}

fn started_kinds(seen: &Mutex<Vec<SyncProgress>>) -> Vec<SyncKind> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|p| match p {
            SyncProgress::Started { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_sync_starts_with_the_kind_it_runs() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let progress = ProgressReporter::callback(move |p| s2.lock().unwrap().push(p.clone()));
        // The first sync is asked as incremental, but nothing was walked yet: it is full,
        // and it says so when it starts.
        let first = w
            .engine
            .sync(&loc("sph"), SyncKind::Incremental, &progress)
            .await
            .unwrap();
        assert_eq!(first.kind, SyncKind::Full);
        assert_eq!(started_kinds(&seen), vec![SyncKind::Full]);
        let finished: Vec<SyncKind> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|p| match p {
                SyncProgress::Finished { outcome, .. } => Some(outcome.kind),
                _ => None,
            })
            .collect();
        assert_eq!(finished, vec![SyncKind::Full]);
        // Then an incremental one, both labels agreeing.
        let next = w
            .engine
            .sync(&loc("sph"), SyncKind::Incremental, &progress)
            .await
            .unwrap();
        assert_eq!(next.kind, SyncKind::Incremental);
        assert_eq!(
            started_kinds(&seen),
            vec![SyncKind::Full, SyncKind::Incremental]
        );
        // A full sync asked is full.
        let full = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &progress)
            .await
            .unwrap();
        assert_eq!(full.kind, SyncKind::Full);
        assert_eq!(started_kinds(&seen).last(), Some(&SyncKind::Full));
    }
}

#[tokio::test]
async fn an_expired_token_has_no_days_left() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        let valid = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert_eq!(valid.token_state, TokenState::Valid);
        let days = valid.token_days_left.expect("a valid token has days left");
        assert!(days > 30, "{days}");

        // Apple answers 9621 although the file's date is years away.
        w.sim
            .control()
            .expire_token(&w.token(demo::SPRINGFIELD_HIGH))
            .unwrap();
        let failed = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await;
        assert!(failed.is_err(), "an expired token cannot sync");
        let expired = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert_eq!(expired.token_state, TokenState::Expired);
        assert!(expired.token_expires_at > chrono::Utc::now());
        assert_eq!(expired.token_days_left, None, "no days left once expired");
        assert!(!expired.writes_allowed);
        let json = serde_json::to_value(&expired).unwrap();
        assert!(json["tokenDaysLeft"].is_null(), "{json}");

        // Revoked: no days left either.
        w.sim
            .control()
            .revoke_token(&w.token(demo::SPRINGFIELD_MIDDLE))
            .unwrap();
        let _ = w
            .engine
            .sync(&loc("spm"), SyncKind::Full, &ProgressReporter::none())
            .await;
        let revoked = w
            .engine
            .report(&loc("spm"), ReportOptions::summary())
            .await
            .unwrap();
        assert_eq!(revoked.token_state, TokenState::Revoked);
        assert_eq!(revoked.token_days_left, None);
    }
}
