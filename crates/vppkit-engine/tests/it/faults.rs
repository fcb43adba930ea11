use std::collections::BTreeMap;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, PricingParam};
use vppkit_engine::{ProgressReporter, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target,
};
use vppkit_sim::{demo, ServerErrorKind};

use crate::support::*;

/// Per asset, how many holdings Apple has.
fn per_asset(w: &World, uid: &str) -> BTreeMap<AssetKey, usize> {
    let mut m = BTreeMap::new();
    for (a, _) in w.truth(uid) {
        *m.entry(a).or_default() += 1;
    }
    m
}

/// `n` devices of Springfield High that do not hold `app` at Apple.
fn without(w: &World, app: &AssetKey, n: usize) -> Vec<vppkit_core::SerialNumber> {
    let held: std::collections::BTreeSet<_> = w
        .truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter(|(a, _)| a == app)
        .map(|(_, h)| h)
        .collect();
    (1..=800)
        .map(|i| vppkit_core::SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
        .filter(|s| !held.contains(&vppkit_core::Holder::Device(s.clone())))
        .take(n)
        .collect()
}

#[tokio::test]
async fn throttling_and_5xx_storms_are_survived_without_over_spending() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .engine(|b| {
                b.customize_client(|c| {
                    c.pacing(vppkit_client::Pacing::PerSecond(40))
                        .retry_policy(fast_retries())
                })
            })
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.sim.control().set_throttling(true);
        w.sim
            .control()
            .fail_next_requests(4, ServerErrorKind::Unavailable, 0);
        let results = w
            .engine
            .sync_all(SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        for (id, r) in &results {
            assert!(r.as_ref().is_ok_and(|o| o.succeeded()), "{id}: {r:?}");
        }
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;

        // A storm in the middle of an apply: whatever went through is accounted,
        // nothing is spent twice, and applying again converges.
        let app = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
        let lab = Group::new(
            GroupId::new("lab").unwrap(),
            Vec::new(),
            without(&w, &app, 20),
        );
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![lab]);
        let set = PolicySet::new(
            Default::default(),
            vec![Policy::new(
                PolicyId::new("lab").unwrap(),
                app.adam_id.clone(),
                Target::Group(GroupId::new("lab").unwrap()),
                Intent::Required,
                LicenceType::Device,
            )],
        )
        .unwrap();
        let ctx = PlanContext::new(Utc::now());
        w.sim
            .control()
            .fail_next_requests(3, ServerErrorKind::InternalError, 0);
        let _ = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        w.sim.control().set_throttling(false);
        for _ in 0..3 {
            w.engine
                .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
                .await
                .unwrap();
            let (plan, _) = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
            if plan.apple_calls() == 0 {
                break;
            }
        }
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert!(apple.counts.assigned <= apple.counts.holdable());
        assert_eq!(
            per_asset(&w, demo::SPRINGFIELD_HIGH)
                .get(&app)
                .copied()
                .unwrap_or(0) as u32,
            apple.counts.assigned
        );
        assert_eq!(apple.counts.available, 0, "the 5 free licences were used");
    }
}
