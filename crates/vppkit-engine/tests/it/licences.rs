use vppkit_core::{
    AdamId, AssetKey, ClientUserId, Holder, HoldingStatus, Platform, PricingParam, SerialNumber,
    VppUserStatus,
};
use vppkit_engine::{ProgressReporter, ReportOptions, SyncKind};
use vppkit_rules::{
    DirectoryDevice, DirectoryUser, Group, GroupId, Intent, LicenceType, MdmCommand, OsVersion,
    PlanContext, Policy, PolicyId, PolicySet, ReleaseRules, Target,
};
use vppkit_sim::demo;

use crate::support::*;

fn device(prefix: &str, n: u32) -> DirectoryDevice {
    DirectoryDevice::new(
        SerialNumber::new(demo::device_serial(prefix, n)).unwrap(),
        Platform::Ios,
        OsVersion::parse("17.4").unwrap(),
    )
}

fn key(adam: u64) -> AssetKey {
    AssetKey::new(AdamId::from(adam), PricingParam::Stdq)
}

fn policies(list: Vec<Policy>) -> PolicySet {
    PolicySet::new(ReleaseRules::default(), list).unwrap()
}

#[tokio::test]
async fn shortage_waitlists_then_drains_when_licences_are_bought() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let app = key(demo::SHORTAGE_APP);
        let before = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(before.counts.available, 5);

        let group = Group::new(
            GroupId::new("lab").unwrap(),
            Vec::new(),
            (1..=60).map(|n| device("SPH", n).serial_number).collect(),
        );
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![group]);
        let set = policies(vec![Policy::new(
            PolicyId::new("lab-app").unwrap(),
            AdamId::from(demo::SHORTAGE_APP),
            Target::Group(GroupId::new("lab").unwrap()),
            Intent::Required,
            LicenceType::Device,
        )]);
        let ctx = PlanContext::new(chrono::Utc::now());
        let (plan, report) = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        assert!(!plan.waitlisted.is_empty(), "a shortage waitlists");
        let confirmed: usize = report.locations.iter().map(|l| l.confirmed).sum();
        assert!(
            confirmed <= 5,
            "never more than the free licences ({confirmed})"
        );
        let after = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert!(after.counts.assigned <= after.counts.total - after.counts.retired);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        // Installs go out only for confirmed licences.
        let installs = w
            .sink
            .taken()
            .into_iter()
            .filter(|c| matches!(c.command, MdmCommand::InstallApplication(_)))
            .count();
        assert_eq!(installs, confirmed);
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::with_installs())
            .await
            .unwrap();
        let a = r.apps.iter().find(|a| a.asset == app).unwrap();
        assert_eq!(a.free, 0);
        assert!(!a.waitlist.is_empty());
        assert_eq!(a.installs.len(), confirmed, "install status per holder");
        // Another engine on the same store (another process) reports the same
        // waitlist and blocked items: they are stored, not kept in memory.
        let (other, _) = w.another_engine(config(), |b| b).await;
        let other_report = other
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        let o = other_report.apps.iter().find(|x| x.asset == app).unwrap();
        assert_eq!(o.waitlist, a.waitlist);
        assert_eq!(o.blocked, a.blocked);

        // Buy licences; after a sync the waitlist drains.
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &app, 100)
            .unwrap();
        w.engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        let (plan, report) = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        let confirmed2: usize = report.locations.iter().map(|l| l.confirmed).sum();
        assert!(confirmed2 > 0);
        assert!(plan.waitlisted.is_empty(), "{:?}", plan.waitlisted.len());
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        // Planning again after the apply changes nothing.
        let again = w.engine.plan(&dir, &set, &ctx).await.unwrap();
        assert_eq!(again.apple_calls(), 0, "{:?}", again.explain());
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        let a = r.apps.iter().find(|a| a.asset == app).unwrap();
        assert!(a.waitlist.is_empty());
        // The other instance sees the drained waitlist too.
        let other_report = other
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        let o = other_report.apps.iter().find(|x| x.asset == app).unwrap();
        assert!(o.waitlist.is_empty());
    }
}

#[tokio::test]
async fn books_to_users_after_the_invitation_is_accepted() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let book = free_book(&w, demo::SPRINGFIELD_HIGH);
        let ana = ClientUserId::new("ana-new-user").unwrap();
        let users = vec![DirectoryUser::new(ana.clone()).with_email("ana@example.org")];
        let devices = vec![device("SPH", 1).with_user(ana.clone())];
        let readers = Group::new(
            GroupId::new("readers").unwrap(),
            vec![ana.clone()],
            Vec::new(),
        );
        let dir = demo_directory("SPH", 800, 600, users, devices, vec![readers]);
        let set = policies(vec![Policy::new(
            PolicyId::new("reading").unwrap(),
            book.adam_id.clone(),
            Target::Group(GroupId::new("readers").unwrap()),
            Intent::Required,
            LicenceType::User,
        )]);
        let ctx = PlanContext::new(chrono::Utc::now());
        let (plan, report) = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        assert_eq!(report.locations.len(), 1, "{:?}", plan.explain());
        let l = &report.locations[0];
        assert_eq!(l.users_created, 1, "{l:?}");
        // The user exists at Apple, Registered, and is ours.
        let apple_users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        let u = apple_users
            .iter()
            .find(|u| u.client_user_id == ana)
            .unwrap();
        assert_eq!(u.status, VppUserStatus::Registered);
        let stored = w.store.user(&loc("sph"), &ana).await.unwrap().unwrap();
        assert!(stored.managed_by_us);
        // The invitation went to the user's device.
        let sent = w.sink.taken();
        assert!(sent
            .iter()
            .any(|c| matches!(c.command, MdmCommand::InviteToProgram { .. })));

        // The user accepts; the next plan assigns the book and installs it.
        w.sim
            .control()
            .accept_invitation(demo::SPRINGFIELD_HIGH, ana.as_str())
            .unwrap();
        w.engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        let (_, report) = w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        assert_eq!(
            report.locations[0].confirmed, 1,
            "{:?}",
            report.locations[0]
        );
        let holder = Holder::User(ana.clone());
        assert!(w
            .truth(demo::SPRINGFIELD_HIGH)
            .contains(&(book.clone(), holder.clone())));
        let sent = w.sink.taken();
        assert!(sent
            .iter()
            .any(|c| matches!(c.command, MdmCommand::InstallMedia { .. })));
        let h = w
            .store
            .holding(&loc("sph"), &book.clone(), &holder)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h.status, HoldingStatus::Active);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

#[tokio::test]
async fn uninstall_removes_the_app_then_releases_the_licence() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.engine
            .sync(&loc("spm"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let owned = w.sim.control().assets(demo::SPRINGFIELD_MIDDLE).unwrap();
        let adam = owned
            .iter()
            .find(|a| {
                a.device_assignable
                    && a.revocable
                    && a.counts.available > 0
                    && !a.is_book()
                    && !a.counts.is_unlimited()
            })
            .expect("a device-assignable app with free licences")
            .key
            .adam_id
            .clone();
        let app = AssetKey::new(adam.clone(), PricingParam::Stdq);
        let d = device("SPM", 399);
        let serial = d.serial_number.clone();
        let holder = Holder::Device(serial.clone());
        let required = Policy::new(
            PolicyId::new("journal").unwrap(),
            adam.clone(),
            Target::Group(GroupId::new("one").unwrap()),
            Intent::Required,
            LicenceType::Device,
        );
        let one = Group::new(
            GroupId::new("one").unwrap(),
            Vec::new(),
            vec![serial.clone()],
        );
        let dir = |d: DirectoryDevice| {
            demo_directory("SPM", 400, 300, Vec::new(), vec![d], vec![one.clone()])
        };
        let ctx = PlanContext::new(chrono::Utc::now());
        let (plan, report) = w
            .engine
            .plan_and_apply(&dir(d.clone()), &policies(vec![required]), &ctx)
            .await
            .unwrap();
        if !w
            .truth(demo::SPRINGFIELD_MIDDLE)
            .contains(&(app.clone(), holder.clone()))
        {
            panic!(
                "the app was not assigned first: {:?} {report:?}",
                plan.explain()
            );
        }
        w.sink.taken();

        // Uninstall: first the removal command, then (once removed) the release.
        let uninstall = Policy::new(
            PolicyId::new("journal").unwrap(),
            adam.clone(),
            Target::Group(GroupId::new("one").unwrap()),
            Intent::Uninstall,
            LicenceType::Device,
        );
        let set = policies(vec![uninstall]);
        let installed = dir(d.clone().with_installed([adam.clone()]));
        w.engine
            .plan_and_apply(&installed, &set, &ctx)
            .await
            .unwrap();
        let sent = w.sink.taken();
        assert!(
            sent.iter()
                .any(|c| matches!(c.command, MdmCommand::RemoveApplication { .. })),
            "{sent:?}"
        );
        let removed = dir(d.with_installed(Vec::<AdamId>::new()));
        let (_, report) = w.engine.plan_and_apply(&removed, &set, &ctx).await.unwrap();
        assert_eq!(report.locations[0].released, 1, "{:?}", report.locations[0]);
        assert!(!w
            .truth(demo::SPRINGFIELD_MIDDLE)
            .contains(&(app.clone(), holder.clone())));
        assert!(w
            .store
            .holding(&loc("spm"), &app, &holder)
            .await
            .unwrap()
            .is_none());
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;
    }
}

/// Installs reported back: installed is recorded; an install abandoned (a
/// permanent failure) gives its device licence back; removing a location with
/// revoke takes back what this manager holds and leaves foreign holdings alone.
#[tokio::test]
async fn command_results_feed_the_report_and_abandoned_installs_release() {
    use vppkit_engine::{CommandResult, InstallStatus, RejectionReason};
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let app = key(demo::SHORTAGE_APP);
        let held: std::collections::BTreeSet<Holder> = w
            .truth(demo::SPRINGFIELD_HIGH)
            .into_iter()
            .filter(|(a, _)| *a == app)
            .map(|(_, h)| h)
            .collect();
        let lab: Vec<SerialNumber> = (1..=800)
            .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
            .filter(|s| !held.contains(&Holder::Device(s.clone())))
            .take(2)
            .collect();
        let group = Group::new(GroupId::new("lab").unwrap(), Vec::new(), lab.clone());
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![group]);
        let set = policies(vec![Policy::new(
            PolicyId::new("lab").unwrap(),
            app.adam_id.clone(),
            Target::Group(GroupId::new("lab").unwrap()),
            Intent::Required,
            LicenceType::Device,
        )]);
        let ctx = PlanContext::new(chrono::Utc::now());
        w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        let sent = w.sink.taken();
        assert_eq!(sent.len(), 2);
        let (ok, bad) = (&sent[0], &sent[1]);
        w.engine
            .command_result(&ok.reference.command_uuid, CommandResult::Installed)
            .await
            .unwrap();
        w.engine
            .command_result(
                &bad.reference.command_uuid,
                CommandResult::Failed(RejectionReason::AppStoreDisabled),
            )
            .await
            .unwrap();
        // The abandoned install's licence goes back once Apple confirms.
        for _ in 0..200 {
            if w.engine.poll_events(&loc("sph")).await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        let bad_holder = bad.reference.licence.clone().unwrap().1;
        let ok_holder = ok.reference.licence.clone().unwrap().1;
        let truth = w.truth(demo::SPRINGFIELD_HIGH);
        assert!(
            !truth.contains(&(app.clone(), bad_holder.clone())),
            "released"
        );
        assert!(truth.contains(&(app.clone(), ok_holder.clone())), "kept");
        let r = w
            .engine
            .report(&loc("sph"), ReportOptions::with_installs())
            .await
            .unwrap();
        let a = r.apps.iter().find(|a| a.asset == app).unwrap();
        let installed = a.installs.iter().find(|i| i.holder == ok_holder).unwrap();
        assert_eq!(installed.state, InstallStatus::Installed);
        assert!(
            a.installs.iter().all(|i| i.holder != bad_holder),
            "no licence, no install row"
        );
        let status = w
            .store
            .install_status(&loc("sph"), &bad_holder, &app)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.state, vppkit_store::InstallState::Failed);

        // Remove with revoke: our licence goes back, foreign ones stay.
        let before = w.truth(demo::SPRINGFIELD_HIGH).len();
        w.engine.remove_location(&loc("sph"), true).await.unwrap();
        let truth = w.truth(demo::SPRINGFIELD_HIGH);
        assert!(
            !truth.contains(&(app.clone(), ok_holder.clone())),
            "revoked"
        );
        assert_eq!(truth.len(), before - 1, "only our own licence was revoked");
        assert!(w.store.location(&loc("sph")).await.unwrap().is_none());
    }
}

/// Every user a plan retires or revokes at `sph`.
fn retired_or_revoked(plan: &vppkit_rules::Plan) -> Vec<ClientUserId> {
    let mut out = Vec::new();
    for lp in &plan.locations {
        for b in &lp.retire_users {
            out.extend(b.client_user_ids.iter().cloned());
        }
        for b in &lp.revoke {
            if let vppkit_rules::BatchTargets::ClientUserIds(ids) = &b.targets {
                out.extend(ids.iter().cloned());
            }
        }
    }
    out
}

#[tokio::test]
async fn users_of_another_mdm_missing_from_the_directory_are_kept_our_own_are_retired() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        // Our own user, created through a plan (a book for her group).
        let book = free_book(&w, demo::SPRINGFIELD_HIGH);
        let ana = ClientUserId::new("ana-our-user").unwrap();
        let readers = GroupId::new("readers").unwrap();
        let with_ana = demo_directory(
            "SPH",
            800,
            600,
            vec![DirectoryUser::new(ana.clone()).with_email("ana@example.org")],
            vec![device("SPH", 1).with_user(ana.clone())],
            vec![Group::new(readers.clone(), vec![ana.clone()], Vec::new())],
        );
        let reading = policies(vec![Policy::new(
            PolicyId::new("reading").unwrap(),
            book.adam_id.clone(),
            Target::Group(readers),
            Intent::Required,
            LicenceType::User,
        )]);
        let none = policies(Vec::new());
        let ctx = PlanContext::new(chrono::Utc::now());
        let (plan, report) = w
            .engine
            .plan_and_apply(&with_ana, &reading, &ctx)
            .await
            .unwrap();
        assert_eq!(report.locations[0].users_created, 1, "{:?}", plan.explain());
        assert!(retired_or_revoked(&plan).is_empty(), "{:?}", plan.explain());

        // The directory now lacks ana and the users after the 450th that predate us (the
        // simulator's demo users, created by another MDM).
        let foreign_gone = ClientUserId::new(demo::client_user_id("SPH", 500)).unwrap();
        let apple_users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        assert!(apple_users
            .iter()
            .any(|u| u.client_user_id == foreign_gone && u.status != VppUserStatus::Retired));
        let without = demo_directory("SPH", 800, 450, Vec::new(), Vec::new(), Vec::new());
        let (plan, _) = w
            .engine
            .plan_and_apply(&without, &none, &ctx)
            .await
            .unwrap();
        let acted_on = retired_or_revoked(&plan);
        assert!(acted_on.contains(&ana), "{:?}", plan.explain());
        assert!(
            acted_on.iter().all(|u| u == &ana),
            "only our own user is retired or revoked: {acted_on:?}"
        );
        let apple_users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        let status = |id: &ClientUserId| {
            apple_users
                .iter()
                .find(|u| &u.client_user_id == id)
                .map(|u| u.status)
        };
        assert_eq!(status(&ana), Some(VppUserStatus::Retired));
        assert_ne!(status(&foreign_gone), Some(VppUserStatus::Retired));
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// A device licence that predates onboarding (adopted) on a device the MDM
/// manages: an Uninstall removes the app, then releases the licence, and then
/// nothing is left to do.
#[tokio::test]
async fn uninstall_releases_a_device_licence_that_predates_onboarding() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.engine
            .sync(&loc("spm"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let assets = w.sim.control().assets(demo::SPRINGFIELD_MIDDLE).unwrap();
        let (app, serial) = w
            .truth(demo::SPRINGFIELD_MIDDLE)
            .into_iter()
            .find_map(|(a, h)| {
                let asset = assets.iter().find(|x| x.key == a)?;
                match h {
                    Holder::Device(s)
                        if asset.device_assignable && asset.revocable && !asset.is_book() =>
                    {
                        Some((a, s))
                    }
                    _ => None,
                }
            })
            .expect("a device licence from before onboarding");
        let holder = Holder::Device(serial.clone());
        let stored = w.store.holding(&loc("spm"), &app, &holder).await.unwrap();
        assert_eq!(stored.map(|h| h.status), Some(HoldingStatus::Adopted));

        let one = Group::new(
            GroupId::new("one").unwrap(),
            Vec::new(),
            vec![serial.clone()],
        );
        let d = DirectoryDevice::new(
            serial.clone(),
            Platform::Ios,
            OsVersion::parse("17.4").unwrap(),
        );
        let dir = |d: DirectoryDevice| {
            demo_directory("SPM", 400, 300, Vec::new(), vec![d], vec![one.clone()])
        };
        let set = policies(vec![Policy::new(
            PolicyId::new("retire-app").unwrap(),
            app.adam_id.clone(),
            Target::Group(GroupId::new("one").unwrap()),
            Intent::Uninstall,
            LicenceType::Device,
        )]);
        let ctx = PlanContext::new(chrono::Utc::now());
        // Installed: the removal command goes first.
        let installed = dir(d.clone().with_installed([app.adam_id.clone()]));
        w.engine
            .plan_and_apply(&installed, &set, &ctx)
            .await
            .unwrap();
        let sent = w.sink.taken();
        assert!(
            sent.iter()
                .any(|c| matches!(c.command, MdmCommand::RemoveApplication { .. })),
            "{sent:?}"
        );
        // Removed: the adopted licence is released.
        let removed = dir(d.with_installed(Vec::<AdamId>::new()));
        let (plan, report) = w.engine.plan_and_apply(&removed, &set, &ctx).await.unwrap();
        let l = report
            .locations
            .iter()
            .find(|l| l.location == Some(loc("spm")))
            .unwrap_or_else(|| panic!("{:?}", plan.explain()));
        assert_eq!(l.released, 1, "{l:?} {:?}", plan.explain());
        assert!(!w
            .truth(demo::SPRINGFIELD_MIDDLE)
            .contains(&(app.clone(), holder.clone())));
        assert!(w
            .store
            .holding(&loc("spm"), &app, &holder)
            .await
            .unwrap()
            .is_none());
        // Nothing left: no removal re-sent, no release asked again.
        let again = w.engine.plan(&removed, &set, &ctx).await.unwrap();
        assert!(again.is_empty(), "{:?}", again.explain());
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;
    }
}

/// Blocked items that name a location go to that location only; items no
/// location can take are kept apart. Both are read back by another instance.
#[tokio::test]
async fn blocked_items_are_attributed_and_stored() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        for (id, uid) in [
            ("sph", demo::SPRINGFIELD_HIGH),
            ("spm", demo::SPRINGFIELD_MIDDLE),
        ] {
            w.onboard(id, uid).await;
            w.engine
                .sync(&loc(id), SyncKind::Full, &ProgressReporter::none())
                .await
                .unwrap();
        }
        let held = |uid: &str| -> std::collections::BTreeSet<AdamId> {
            w.sim
                .control()
                .assets(uid)
                .unwrap()
                .into_iter()
                .map(|a| a.key.adam_id)
                .collect()
        };
        let both = held(demo::SPRINGFIELD_HIGH)
            .intersection(&held(demo::SPRINGFIELD_MIDDLE))
            .next()
            .cloned()
            .expect("an app both schools own");
        let blocked = |adam: &AdamId, reason: serde_json::Value| -> vppkit_rules::Blocked {
            serde_json::from_value(serde_json::json!({
                "adamId": adam,
                "holder": {"device": demo::device_serial("SPM", 1)},
                "policy": null,
                "reason": reason,
            }))
            .unwrap()
        };
        let kept = blocked(
            &both,
            serde_json::json!({"kind": "adoptedKept", "location": "spm"}),
        );
        let unowned = AdamId::from(9_999_999_001u64);
        let nowhere = blocked(
            &unowned,
            serde_json::json!({"kind": "noUserAffinity", "device": demo::device_serial("SPM", 1)}),
        );
        let mut plan = vppkit_rules::Plan::default();
        plan.blocked = vec![kept.clone(), nowhere.clone()];
        w.engine.apply(&plan).await.unwrap();

        let (other, _) = w.another_engine(config(), |b| b).await;
        let blocked_at = |r: &vppkit_engine::LocationReport| -> Vec<vppkit_rules::Blocked> {
            r.apps.iter().flat_map(|a| a.blocked.clone()).collect()
        };
        let spm = other
            .report(&loc("spm"), ReportOptions::summary())
            .await
            .unwrap();
        assert_eq!(blocked_at(&spm), vec![kept.clone()]);
        let sph = other
            .report(&loc("sph"), ReportOptions::summary())
            .await
            .unwrap();
        assert!(blocked_at(&sph).is_empty(), "the item names spm only");
        let unplaced = other.unplaced_plan_items().await.unwrap();
        assert_eq!(unplaced.blocked, vec![nowhere]);

        // The next plan replaces them.
        w.engine
            .apply(&vppkit_rules::Plan::default())
            .await
            .unwrap();
        let spm = other
            .report(&loc("spm"), ReportOptions::summary())
            .await
            .unwrap();
        assert!(blocked_at(&spm).is_empty());
        assert!(other
            .unplaced_plan_items()
            .await
            .unwrap()
            .blocked
            .is_empty());
    }
}
