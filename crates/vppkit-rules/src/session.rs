//! Incremental planning: [`PlanSession`] re-plans only the apps a change can affect.
//!
//! A plan is the merge, in adam id order, of one output per app (adam id); the output of an
//! app is a function of that app's own inputs only (its slots and their holdings, its valid
//! policies, the holders those policies reach and the holders holding it, the VPP users of
//! those holders, its self-service requests, the grace records of its holdings, and `now`
//! when a grace period was consulted). The cross-app parts (which app registers a user
//! first, gone holders, users to retire, batching, the order of commands and blocked items)
//! are recomputed on every call from the outputs.
//!
//! A session keeps the inputs of its previous call and each app's output. On the next call
//! it reads the new inputs, compares them with the kept ones, and plans again only the apps
//! whose inputs differ; the other apps' outputs are reused. It needs no description of the
//! change: it finds it. When the integer ids the outputs are written in would change (a
//! device or user added or removed, an asset added or removed, a policy added, removed,
//! enabled or disabled, a location's token state, the release rules or the limits), it
//! plans everything again. The result is the same plan [`Planner::plan`] returns for the
//! same inputs (property test `incremental_plan_equals_full_plan`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vppkit_core::{AdamId, ClientUserId, Holder, HoldingStatus, SerialNumber, VppUserStatus};

use crate::directory::Directory;
use crate::error::PlanError;
use crate::ids::GroupId;
use crate::plan::Plan;
use crate::planner::{
    AppOut, DirIndex, LocationHoldingKey, Orders, PlanContext, Planner, Run, SlotMeta, Snapshot,
};
use crate::policy::{LicenceType, Policy, PolicySet, Target};
use crate::release::ReleaseRules;
use crate::view::LicenceView;

/// App outputs larger than this (commands, items, blocked entries...) are not kept: the app
/// is planned again next time. Keeps a first plan's million commands out of the session.
const KEEP_AT_MOST: usize = 4_096;

/// What the last [`PlanSession::plan`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplanStats {
    /// Everything was planned (first call, or a change of the ids outputs are written in).
    pub full: bool,
    /// Apps (adam ids) in the plan.
    pub apps: usize,
    /// Apps planned in this call; the others' outputs were reused.
    pub replanned: usize,
}

/// A planner that keeps its previous call's per-app outputs and plans again only the apps
/// whose inputs changed. Each call returns exactly what [`Planner::plan`] returns for the
/// same arguments.
///
/// ```
/// use chrono::Utc;
/// use vppkit_rules::{Directory, LicenceState, PlanContext, PlanSession, Planner, PolicySet};
///
/// let mut session = PlanSession::new(Planner::new());
/// let (dir, policies, view) = (Directory::default(), PolicySet::default(), LicenceState::new());
/// let ctx = PlanContext::new(Utc::now());
/// let first = session.plan(&dir, &policies, &view, &ctx)?;
/// let again = session.plan(&dir, &policies, &view, &ctx)?;
/// assert_eq!(first, again);
/// assert_eq!(session.last().replanned, 0);
/// # Ok::<(), vppkit_rules::PlanError>(())
/// ```
pub struct PlanSession {
    planner: Planner,
    prev: Option<Prev>,
    last: ReplanStats,
}

impl std::fmt::Debug for PlanSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanSession")
            .field("planner", &self.planner)
            .field("kept_apps", &self.prev.as_ref().map_or(0, |p| p.apps.len()))
            .field("last", &self.last)
            .finish()
    }
}

/// The inputs of the previous call, and each app's output.
struct Prev {
    dir: Directory,
    /// The directory's index (ranks, licence users, group members).
    index: Arc<DirIndex>,
    release: ReleaseRules,
    /// Enabled policies, sorted by id (the policy indices of the outputs).
    sorted: Vec<Policy>,
    locs: Vec<(vppkit_core::LocationId, bool)>,
    slots: Vec<SlotMeta>,
    fp: Fingerprint,
    by_adam: BTreeMap<AdamId, Vec<u32>>,
    now: DateTime<Utc>,
    out_of_scope: BTreeMap<LocationHoldingKey, DateTime<Utc>>,
    /// `None`: the output was too large to keep.
    apps: BTreeMap<AdamId, Option<AppOut>>,
}

/// The view's inputs not in the snapshot, read on every call.
struct Fingerprint {
    /// Holdings of each slot, sorted.
    holdings: Vec<Vec<(Holder, HoldingStatus)>>,
    /// The view's version of each slot's holdings, when it gives one.
    versions: Vec<Option<u64>>,
    /// Each slot's user holders that are not in the directory, or retired there.
    gone: Vec<Vec<ClientUserId>>,
    /// Per location: every active, unknown-status or holding user id, with its active
    /// status, unknown status and whether it is ours.
    users: Vec<Vec<(ClientUserId, UserFp)>>,
    requests: BTreeMap<AdamId, Vec<u32>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct UserFp {
    active: Option<VppUserStatus>,
    unknown: Option<VppUserStatus>,
    own: bool,
}

impl Fingerprint {
    /// Reads the fingerprint; the holdings of a slot whose version is the one `prev` saw
    /// at the same position are moved out of `prev` instead of read again (and, with the
    /// same directory users, their gone users too).
    fn read(
        snap: &Snapshot,
        view: &dyn LicenceView,
        run: &Run<'_>,
        dir: &Directory,
        people_equal: bool,
        mut prev: Option<&mut Prev>,
    ) -> Self {
        let gone_of = |hs: &[(Holder, HoldingStatus)]| -> Vec<ClientUserId> {
            hs.iter()
                .filter_map(|(h, _)| match h {
                    Holder::User(id) if dir.user(id).is_none_or(|u| u.retired) => Some(id.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut versions = Vec::with_capacity(snap.slots.len());
        let mut gone = Vec::with_capacity(snap.slots.len());
        let holdings: Vec<Vec<(Holder, HoldingStatus)>> = snap
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let location = &snap.locs[s.loc].id;
                let version = view.holdings_version(location, &s.key);
                versions.push(version);
                if let (Some(v), Some(prev)) = (version, prev.as_deref_mut()) {
                    if let Some(kept) = prev.kept_holdings(i, location, &s.key, v) {
                        // Whether a user is gone depends on the directory's users only.
                        gone.push(if people_equal {
                            std::mem::take(&mut prev.fp.gone[i])
                        } else {
                            gone_of(&kept)
                        });
                        return kept;
                    }
                }
                let mut hs = view.holdings(location, &s.key);
                hs.sort();
                gone.push(gone_of(&hs));
                hs
            })
            .collect();
        // Ownership is read for active users, and for holders that are not (or retired) in
        // the directory (gone holders).
        let users: Vec<Vec<(ClientUserId, UserFp)>> = snap
            .locs
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let mut ids: Vec<&ClientUserId> = l
                    .active_users
                    .iter()
                    .chain(l.unknown_status.keys())
                    .collect();
                for (s, ids_gone) in snap.slots.iter().zip(&gone) {
                    if s.loc == li {
                        ids.extend(ids_gone);
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter()
                    .map(|id| {
                        let fp = UserFp {
                            active: l.users.get(id).copied(),
                            unknown: l.unknown_status.get(id).copied(),
                            own: view.is_own_user(&l.id, id),
                        };
                        (id.clone(), fp)
                    })
                    .collect()
            })
            .collect();
        Self {
            holdings,
            versions,
            gone,
            users,
            requests: run.request_devices(),
        }
    }
}

impl PlanSession {
    /// A session planning with `planner` (limits, devices per user licence).
    pub fn new(planner: Planner) -> Self {
        Self {
            planner,
            prev: None,
            last: ReplanStats::default(),
        }
    }

    /// The planner in use.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// What the last call did.
    pub fn last(&self) -> ReplanStats {
        self.last
    }

    /// Forgets the kept outputs: the next call plans everything.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// Plans, reusing the previous call's outputs of every app whose inputs did not change.
    /// Returns exactly what [`Planner::plan`] returns for the same arguments.
    pub fn plan(
        &mut self,
        directory: &Directory,
        policies: &PolicySet,
        view: &dyn LicenceView,
        ctx: &PlanContext,
    ) -> Result<Plan, PlanError> {
        self.planner.check()?;
        let snap = Snapshot::read(view);
        // The same devices and users as last time (only groups may differ).
        let people_equal = self.prev.as_ref().is_some_and(|prev| {
            directory.is_clone_of(&prev.dir)
                || (prev.dir.users() == directory.users()
                    && prev.dir.devices() == directory.devices())
        });
        let index = match &self.prev {
            // The same directory (or a clone of it): the same index.
            Some(prev) if directory.is_clone_of(&prev.dir) => Arc::clone(&prev.index),
            Some(prev) if people_equal => Arc::new(DirIndex::with_people(
                directory,
                Arc::clone(&prev.index.people),
            )),
            // Devices and users at the same positions with the same ids: the same orders.
            Some(prev) if same_people(&prev.dir, directory) => {
                Arc::new(DirIndex::new(directory, prev.index.people.orders.clone()))
            }
            _ => Arc::new(DirIndex::new(directory, Orders::of(directory))),
        };
        let mut run = Run::new(&self.planner, directory, policies, &snap, view, ctx, index);
        run.validate_all();
        run.requests();
        let fp = Fingerprint::read(
            &snap,
            view,
            &run,
            directory,
            people_equal,
            self.prev.as_mut(),
        );
        let sorted: Vec<Policy> = {
            let mut v: Vec<&Policy> = policies.policies.iter().filter(|p| p.enabled).collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v.into_iter().cloned().collect()
        };
        let locs: Vec<(vppkit_core::LocationId, bool)> = snap
            .locs
            .iter()
            .map(|l| (l.id.clone(), l.writable))
            .collect();
        let by_adam = run.by_adam().clone();
        let adams = run.adam_ids();
        let dirty = self.prev.take().and_then(|prev| {
            let dirty = prev.dirty(
                directory,
                people_equal,
                policies,
                &sorted,
                &locs,
                &snap.slots,
                &fp,
                &by_adam,
                ctx,
            )?;
            Some((prev.apps, dirty))
        });
        let full = dirty.is_none();
        let (mut kept, dirty) = dirty.unwrap_or_default();
        let mut apps = BTreeMap::new();
        let mut replanned = 0;
        for (i, adam) in adams.iter().enumerate() {
            let reuse = if full || dirty.contains(adam) {
                None
            } else {
                kept.remove(adam).flatten()
            };
            let out = match reuse {
                Some(out) => out,
                None => {
                    replanned += 1;
                    run.plan_app(adam, Some(&fp.holdings))
                }
            };
            let keep = (out.weight() <= KEEP_AT_MOST).then(|| out.clone());
            apps.insert(adam.clone(), keep);
            run.merge(adam, out, i as u32 + 1);
        }
        let index = run.index();
        let plan = run.finish();
        self.last = ReplanStats {
            full,
            apps: adams.len(),
            replanned,
        };
        self.prev = Some(Prev {
            // The directory the index was built from (a clone shares it: no copy).
            dir: directory.clone(),
            index,
            release: policies.release,
            sorted,
            locs,
            slots: snap.slots,
            fp,
            by_adam,
            now: ctx.now,
            out_of_scope: ctx.out_of_scope_since.clone(),
            apps,
        });
        Ok(plan)
    }
}

impl Prev {
    /// Moves out the holdings this call saw for slot `i` when that slot was the same asset
    /// of the same location with holdings version `version`.
    fn kept_holdings(
        &mut self,
        i: usize,
        location: &vppkit_core::LocationId,
        asset: &vppkit_core::AssetKey,
        version: u64,
    ) -> Option<Vec<(Holder, HoldingStatus)>> {
        let slot = self.slots.get(i)?;
        let same = slot.key == *asset
            && self
                .locs
                .get(slot.loc)
                .is_some_and(|(id, _)| id == location)
            && self.fp.versions.get(i) == Some(&Some(version));
        same.then(|| std::mem::take(&mut self.fp.holdings[i]))
    }

    /// The apps whose inputs changed, or `None` when everything must be planned again.
    #[allow(clippy::too_many_arguments)]
    fn dirty(
        &self,
        dir: &Directory,
        people_equal: bool,
        policies: &PolicySet,
        sorted: &[Policy],
        locs: &[(vppkit_core::LocationId, bool)],
        slots: &[SlotMeta],
        fp: &Fingerprint,
        by_adam: &BTreeMap<AdamId, Vec<u32>>,
        ctx: &PlanContext,
    ) -> Option<BTreeSet<AdamId>> {
        // The ids the outputs are written in: slots, policy indices, device and user
        // positions and ranks.
        let same_ids = policies.release == self.release
            && locs == self.locs.as_slice()
            && slots.len() == self.slots.len()
            && slots
                .iter()
                .zip(&self.slots)
                .all(|(a, b)| a.loc == b.loc && a.key == b.key)
            && sorted.len() == self.sorted.len()
            && sorted.iter().zip(&self.sorted).all(|(a, b)| a.id == b.id)
            && (people_equal || same_people(&self.dir, dir));
        if !same_ids {
            return None;
        }
        let mut dirty: BTreeSet<AdamId> = BTreeSet::new();
        // Assets: counts, flags, bundle id, holdings.
        for (i, (a, b)) in slots.iter().zip(&self.slots).enumerate() {
            // Equal versions: the holdings were moved over from this call's fingerprint.
            let same_holdings = (fp.versions[i].is_some() && fp.versions[i] == self.fp.versions[i])
                || fp.holdings[i] == self.fp.holdings[i];
            if a != b || !same_holdings {
                dirty.insert(a.key.adam_id.clone());
            }
        }
        // Policies: an edited policy's old and new app; any app whose valid policies differ.
        for (a, b) in sorted.iter().zip(&self.sorted) {
            if a != b {
                dirty.insert(a.adam_id.clone());
                dirty.insert(b.adam_id.clone());
            }
        }
        for adam in by_adam.keys().chain(self.by_adam.keys()) {
            if by_adam.get(adam) != self.by_adam.get(adam) {
                dirty.insert(adam.clone());
            }
        }
        // Self-service requests.
        for adam in fp.requests.keys().chain(self.fp.requests.keys()) {
            if fp.requests.get(adam) != self.fp.requests.get(adam) {
                dirty.insert(adam.clone());
            }
        }
        // Grace records and the clock.
        for (k, v) in &ctx.out_of_scope_since {
            if self.out_of_scope.get(k) != Some(v) {
                dirty.insert(k.asset.adam_id.clone());
            }
        }
        for k in self.out_of_scope.keys() {
            if !ctx.out_of_scope_since.contains_key(k) {
                dirty.insert(k.asset.adam_id.clone());
            }
        }
        if ctx.now != self.now {
            for (adam, out) in &self.apps {
                if out.as_ref().is_none_or(|o| o.uses_now) {
                    dirty.insert(adam.clone());
                }
            }
        }
        // The same directory (or a clone of it): nothing below can differ.
        let cloned = dir.is_clone_of(&self.dir);
        // Groups whose members changed: the apps of every policy naming them.
        let mut groups: BTreeSet<&GroupId> = BTreeSet::new();
        if !cloned {
            let old_groups: HashMap<&GroupId, _> =
                self.dir.groups().iter().map(|g| (&g.id, g)).collect();
            for g in dir.groups() {
                if old_groups.get(&g.id) != Some(&g) {
                    groups.insert(&g.id);
                }
            }
            for g in self.dir.groups() {
                if dir.group(&g.id).is_none() {
                    groups.insert(&g.id);
                }
            }
        }
        if !groups.is_empty() {
            for p in sorted.iter().chain(&self.sorted) {
                let named = matches!(&p.target, Target::Group(g) if groups.contains(g))
                    || p.exclude.iter().any(|g| groups.contains(g));
                if named {
                    dirty.insert(p.adam_id.clone());
                }
            }
        }
        // Holders whose directory entry changed, with their related holders (a changed
        // device's users, old and new; a changed user's devices, old and new): any app that
        // may reach them, holds them or was asked for by them.
        let mut devices: BTreeSet<usize> = BTreeSet::new();
        let mut users: BTreeSet<usize> = BTreeSet::new();
        if !cloned && !people_equal {
            for (i, (a, b)) in dir.devices().iter().zip(self.dir.devices()).enumerate() {
                if a != b {
                    devices.insert(i);
                }
            }
            for (i, (a, b)) in dir.users().iter().zip(self.dir.users()).enumerate() {
                if a != b {
                    users.insert(i);
                }
            }
        }
        for &d in &devices.clone() {
            for directory in [dir, &self.dir] {
                if let Some(u) = directory.devices()[d]
                    .user
                    .as_ref()
                    .and_then(|u| directory.user_pos(u))
                {
                    users.insert(u);
                }
            }
        }
        self.devices_of(dir, people_equal, &users, &mut devices);
        self.holders_dirty(
            dir,
            sorted,
            slots,
            fp,
            &devices,
            &users,
            &BTreeSet::new(),
            false,
            &mut dirty,
        );
        // Holders whose VPP user changed (status, unknown status, ours or not), directory
        // unchanged: a VPP user is read only for a user licence (wanted or held), so only
        // user-licensed policies that may reach the user and the apps the user holds.
        let mut vpp_users: BTreeSet<usize> = BTreeSet::new();
        let mut other_users: BTreeSet<ClientUserId> = BTreeSet::new();
        for (new, old) in fp.users.iter().zip(&self.fp.users) {
            if new == old {
                continue;
            }
            for id in changed_ids(new, old) {
                match dir.user_pos(id) {
                    Some(u) if !users.contains(&u) => {
                        vpp_users.insert(u);
                    }
                    Some(_) => {}
                    None => {
                        other_users.insert(id.clone());
                    }
                }
            }
        }
        if !vpp_users.is_empty() || !other_users.is_empty() {
            let mut vpp_devices = BTreeSet::new();
            self.devices_of(dir, people_equal, &vpp_users, &mut vpp_devices);
            self.holders_dirty(
                dir,
                sorted,
                slots,
                fp,
                &vpp_devices,
                &vpp_users,
                &other_users,
                true,
                &mut dirty,
            );
        }
        Some(dirty)
    }

    /// Adds the devices of `users` (in the new and the old directory) to `devices`.
    fn devices_of(
        &self,
        dir: &Directory,
        people_equal: bool,
        users: &BTreeSet<usize>,
        devices: &mut BTreeSet<usize>,
    ) {
        if users.is_empty() {
            return;
        }
        for directory in new_and_old(dir, &self.dir, people_equal) {
            // The users' ids here (a device names its user by id).
            let ids: BTreeSet<&ClientUserId> = users
                .iter()
                .filter_map(|&u| directory.users().get(u).map(|u| &u.id))
                .collect();
            for (d, dev) in directory.devices().iter().enumerate() {
                if dev.user.as_ref().is_some_and(|u| ids.contains(u)) {
                    devices.insert(d);
                }
            }
        }
    }

    /// Marks the apps that may read these holders: policies that may reach them (broad
    /// targets, groups listing them, in the new or the old directory; with `user_licence_only`
    /// only user-licensed policies, and only the users' holdings), apps they hold (before or
    /// now) and apps their devices asked for.
    #[allow(clippy::too_many_arguments)]
    fn holders_dirty(
        &self,
        dir: &Directory,
        sorted: &[Policy],
        slots: &[SlotMeta],
        fp: &Fingerprint,
        devices: &BTreeSet<usize>,
        users: &BTreeSet<usize>,
        other_users: &BTreeSet<ClientUserId>,
        user_licence_only: bool,
        dirty: &mut BTreeSet<AdamId>,
    ) {
        if devices.is_empty() && users.is_empty() && other_users.is_empty() {
            return;
        }
        let serials: BTreeSet<&SerialNumber> = devices
            .iter()
            .map(|&d| &dir.devices()[d].serial_number)
            .collect();
        let ids: BTreeSet<&ClientUserId> = users
            .iter()
            .map(|&u| &dir.users()[u].id)
            .chain(other_users.iter())
            .collect();
        let mut reaching: BTreeSet<&GroupId> = BTreeSet::new();
        for directory in new_and_old(dir, &self.dir, dir.is_clone_of(&self.dir)) {
            for g in directory.groups() {
                if g.devices.iter().any(|s| serials.contains(s))
                    || g.users.iter().any(|u| ids.contains(u))
                {
                    reaching.insert(&g.id);
                }
            }
        }
        for p in sorted.iter().chain(&self.sorted) {
            if user_licence_only && p.licence != LicenceType::User {
                continue;
            }
            let reaches = match &p.target {
                Target::AllUsers | Target::AllDevices => true,
                Target::Group(g) => reaching.contains(g),
            };
            if reaches {
                dirty.insert(p.adam_id.clone());
            }
        }
        // The holders to look for; a few are found by binary search in each slot's sorted
        // holdings, many by one pass over them.
        let wanted: Vec<Holder> = serials
            .iter()
            .filter(|_| !user_licence_only)
            .map(|&sn| Holder::Device(sn.clone()))
            .chain(ids.iter().map(|&id| Holder::User(id.clone())))
            .collect();
        let few = wanted.len() <= 16;
        for (i, s) in slots.iter().enumerate() {
            let holds = |hs: &Vec<(Holder, HoldingStatus)>| {
                if few {
                    return wanted.iter().any(|w| {
                        let at = hs.partition_point(|(h, _)| h < w);
                        hs.get(at).is_some_and(|(h, _)| h == w)
                    });
                }
                hs.iter().any(|(h, _)| match h {
                    Holder::Device(sn) => !user_licence_only && serials.contains(sn),
                    Holder::User(id) => ids.contains(id),
                    _ => false,
                })
            };
            if holds(&fp.holdings[i]) || holds(&self.fp.holdings[i]) {
                dirty.insert(s.key.adam_id.clone());
            }
        }
        if !user_licence_only {
            for requests in [&fp.requests, &self.fp.requests] {
                for (adam, list) in requests {
                    if list.iter().any(|&d| devices.contains(&(d as usize))) {
                        dirty.insert(adam.clone());
                    }
                }
            }
        }
    }
}

/// The new directory, then the old one unless `same` (it lists the same things).
fn new_and_old<'a>(
    new: &'a Directory,
    old: &'a Directory,
    same: bool,
) -> impl Iterator<Item = &'a Directory> {
    std::iter::once(new).chain((!same).then_some(old))
}

/// The ids whose entry differs between two lists sorted by id.
fn changed_ids<'a, T: PartialEq>(
    new: &'a [(ClientUserId, T)],
    old: &'a [(ClientUserId, T)],
) -> Vec<&'a ClientUserId> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < new.len() || j < old.len() {
        match (new.get(i), old.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    out.push(&a.0);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(&a.0);
                i += 1;
            }
            (Some(a), None) => {
                out.push(&a.0);
                i += 1;
            }
            (_, Some(b)) => {
                out.push(&b.0);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Whether both directories list the same device serial numbers and user ids at the same
/// positions (the planner's device and user ids and ranks are then the same).
fn same_people(old: &Directory, new: &Directory) -> bool {
    if old.is_clone_of(new) {
        return true;
    }
    old.devices().len() == new.devices().len()
        && old
            .devices()
            .iter()
            .zip(new.devices())
            .all(|(a, b)| a.serial_number == b.serial_number)
        && old.users().len() == new.users().len()
        && old
            .users()
            .iter()
            .zip(new.users())
            .all(|(a, b)| a.id == b.id)
}
