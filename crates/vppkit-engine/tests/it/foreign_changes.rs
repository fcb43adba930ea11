//! Another MDM (or an administrator in Apple's portal) assigns and unassigns
//! licences between two syncs. The incremental sync (`sinceVersionId`) must leave
//! the store exactly as a full sync would, and equal to Apple's truth.

use std::collections::BTreeSet;

use vppkit_core::{AdamId, AssetKey, Holder, HoldingStatus, PricingParam};
use vppkit_engine::{ProgressReporter, SyncKind};
use vppkit_sim::demo;

use crate::support::*;

const APP: u64 = 1_200_000_006;

fn app() -> AssetKey {
    AssetKey::new(AdamId::from(APP), PricingParam::Stdq)
}

type Stored = BTreeSet<(AssetKey, Holder, HoldingStatus)>;

async fn stored(w: &World) -> Stored {
    w.stored_holdings("sph").await.into_iter().collect()
}

/// Devices of Springfield High that hold no licence of `APP` at Apple.
fn free_devices(w: &World, n: usize) -> Vec<String> {
    let held: BTreeSet<Holder> = w
        .truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter(|(a, _)| *a == app())
        .map(|(_, h)| h)
        .collect();
    (1..=800)
        .map(|i| demo::device_serial("SPH", i))
        .filter(|s| {
            let h = Holder::Device(vppkit_core::SerialNumber::new(s.as_str()).unwrap());
            !held.contains(&h)
        })
        .take(n)
        .collect()
}

/// Runs a sync of `kind` and returns the number of assignments it read.
async fn sync(w: &World, kind: SyncKind) -> (SyncKind, u64) {
    let o = w
        .engine
        .sync(&loc("sph"), kind, &ProgressReporter::none())
        .await
        .unwrap();
    assert!(o.succeeded(), "{:?}", o.error);
    (o.kind, o.assignments)
}

/// The store after the incremental sync is what a full sync then finds: a full
/// walk changes nothing, and both equal Apple.
async fn incremental_equals_full(w: &World) {
    let after_incremental = stored(w).await;
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    let (kind, _) = sync(w, SyncKind::Full).await;
    assert_eq!(kind, SyncKind::Full);
    let after_full = stored(w).await;
    let only_incremental: Vec<_> = after_incremental.difference(&after_full).take(5).collect();
    let only_full: Vec<_> = after_full.difference(&after_incremental).take(5).collect();
    assert!(
        only_incremental.is_empty() && only_full.is_empty(),
        "incremental sync left {only_incremental:?}, a full sync found {only_full:?}"
    );
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
}

#[tokio::test]
async fn another_mdm_assigning_between_syncs_is_read_incrementally() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let (kind, all) = sync(&w, SyncKind::Full).await;
        assert_eq!(kind, SyncKind::Full);
        assert!(all > 250, "several pages of assignments ({all})");

        // Another MDM assigns the app to two devices and a user.
        let devices = free_devices(&w, 2);
        let user = demo::client_user_id("SPH", 2);
        let added = w
            .sim
            .control()
            .foreign_associate(
                demo::SPRINGFIELD_HIGH,
                &app(),
                &[devices[0].as_str(), devices[1].as_str()],
                &[user.as_str()],
            )
            .unwrap();
        assert_eq!(added, 3);

        let (kind, read) = sync(&w, SyncKind::Incremental).await;
        assert_eq!(kind, SyncKind::Incremental);
        // Only the changes were read (sinceVersionId), not the whole location.
        assert_eq!(read, 3, "the incremental read returns the three new pairs");
        let now = stored(&w).await;
        for d in &devices {
            let h = Holder::Device(vppkit_core::SerialNumber::new(d.as_str()).unwrap());
            assert!(
                now.contains(&(app(), h.clone(), HoldingStatus::Adopted)),
                "{h} adopted"
            );
        }
        incremental_equals_full(&w).await;
    }
}

#[tokio::test]
async fn another_mdm_assigning_and_unassigning_between_syncs_converges_like_a_full_sync() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let c = w.sim.control();
        let devices = free_devices(&w, 2);
        let (holder_of_app, fresh) = (devices[0].clone(), devices[1].clone());
        c.foreign_associate(
            demo::SPRINGFIELD_HIGH,
            &app(),
            &[holder_of_app.as_str()],
            &[],
        )
        .unwrap();
        sync(&w, SyncKind::Full).await;

        // Assign to one device and unassign from another: Apple's assigned count
        // does not move, and the removal cannot show in an incremental read.
        let before = c.asset(demo::SPRINGFIELD_HIGH, &app()).unwrap().counts;
        c.foreign_associate(demo::SPRINGFIELD_HIGH, &app(), &[fresh.as_str()], &[])
            .unwrap();
        c.foreign_disassociate(
            demo::SPRINGFIELD_HIGH,
            &app(),
            &[holder_of_app.as_str()],
            &[],
        )
        .unwrap();
        assert_eq!(
            c.asset(demo::SPRINGFIELD_HIGH, &app())
                .unwrap()
                .counts
                .assigned,
            before.assigned
        );
        // And a user's licence of another app goes away.
        let (user_app, user) = w
            .truth(demo::SPRINGFIELD_HIGH)
            .into_iter()
            .find_map(|(a, h)| match h {
                Holder::User(u) if a != app() => Some((a, u.as_str().to_owned())),
                _ => None,
            })
            .expect("a user holds a licence at Apple");
        let user_app_revocable = c
            .asset(demo::SPRINGFIELD_HIGH, &user_app)
            .map(|a| a.revocable)
            .unwrap();
        if user_app_revocable {
            c.foreign_disassociate(demo::SPRINGFIELD_HIGH, &user_app, &[], &[user.as_str()])
                .unwrap();
        }

        let (kind, _) = sync(&w, SyncKind::Incremental).await;
        assert_eq!(kind, SyncKind::Incremental);
        let now = stored(&w).await;
        let gone = Holder::Device(vppkit_core::SerialNumber::new(holder_of_app.as_str()).unwrap());
        assert!(
            !now.iter().any(|(a, h, _)| *a == app() && *h == gone),
            "the licence another MDM took back is gone from the store"
        );
        let new = Holder::Device(vppkit_core::SerialNumber::new(fresh.as_str()).unwrap());
        assert!(now.iter().any(|(a, h, _)| *a == app() && *h == new));
        incremental_equals_full(&w).await;
    }
}

/// Another MDM takes licences of two apps back between syncs: the incremental read
/// cannot show a removal, so the sync walks those two apps again (`adamId`), not the
/// whole location, and ends where a full sync would.
#[tokio::test]
async fn a_removal_between_syncs_walks_only_the_apps_it_touched() {
    for backend in backends() {
        // Pages of 20: the location is many pages, each app a few.
        let w = WorldBuilder::new(backend)
            .sim(|s| s.page_size(20))
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let (_, all) = sync(&w, SyncKind::Full).await;
        let c = w.sim.control();
        let truth = w.truth(demo::SPRINGFIELD_HIGH);
        let mut taken = Vec::new();
        for (asset, holder) in &truth {
            if taken.len() == 2 {
                break;
            }
            let revocable = c.asset(demo::SPRINGFIELD_HIGH, asset).unwrap().revocable;
            if let (true, Holder::Device(s)) = (revocable, holder) {
                if !taken
                    .iter()
                    .any(|(a, _): &(AssetKey, String)| a.adam_id == asset.adam_id)
                {
                    c.foreign_disassociate(demo::SPRINGFIELD_HIGH, asset, &[s.as_str()], &[])
                        .unwrap();
                    taken.push((asset.clone(), s.as_str().to_owned()));
                }
            }
        }
        assert_eq!(taken.len(), 2);
        let (kind, read) = sync(&w, SyncKind::Incremental).await;
        assert_eq!(kind, SyncKind::Incremental);
        let apps: u64 = taken
            .iter()
            .map(|(a, _)| truth.iter().filter(|(b, _)| b.adam_id == a.adam_id).count() as u64 - 1)
            .sum();
        assert_eq!(read, apps, "only the two apps were read again (of {all})");
        let now = stored(&w).await;
        for (asset, serial) in &taken {
            let gone = Holder::Device(vppkit_core::SerialNumber::new(serial.as_str()).unwrap());
            assert!(!now.iter().any(|(a, h, _)| a == asset && *h == gone));
        }
        incremental_equals_full(&w).await;
    }
}

/// Apple sends a record of a shape the client cannot read on every page: the
/// sync reads the rest, counts what it left out, and concludes no removal
/// from a walk that did not read everything (a licence another MDM took back
/// meanwhile stays until a walk reads every record; no asset is emptied).
/// Once the pages are readable again, a full sync finds Apple's truth.
#[tokio::test]
async fn a_walk_that_left_records_out_concludes_no_removal() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let c = w.sim.control();
        let devices = free_devices(&w, 2);
        c.foreign_associate(
            demo::SPRINGFIELD_HIGH,
            &app(),
            &[devices[0].as_str(), devices[1].as_str()],
            &[],
        )
        .unwrap();
        sync(&w, SyncKind::Full).await;
        let before = stored(&w).await;
        let assets_before = w.store.assets(&loc("sph")).await.unwrap();

        c.foreign_disassociate(demo::SPRINGFIELD_HIGH, &app(), &[devices[0].as_str()], &[])
            .unwrap();
        c.set_unreadable_records(true);
        let o = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(o.succeeded(), "{:?}", o.error);
        // At least one record left out on each walk: assets, users, assignments.
        assert!(o.skipped_records >= 3, "{o:?}");
        assert_eq!(stored(&w).await, before, "no removal concluded");
        let assets = w.store.assets(&loc("sph")).await.unwrap();
        assert_eq!(assets.len(), assets_before.len());
        for (a, b) in assets.iter().zip(&assets_before) {
            assert_eq!(
                (&a.asset.key, a.asset.counts.total),
                (&b.asset.key, b.asset.counts.total),
                "no asset emptied"
            );
        }

        c.set_unreadable_records(false);
        let o = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert_eq!(o.skipped_records, 0);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let gone = Holder::Device(vppkit_core::SerialNumber::new(devices[0].as_str()).unwrap());
        assert!(!stored(&w)
            .await
            .iter()
            .any(|(a, h, _)| *a == app() && *h == gone));
    }
}
