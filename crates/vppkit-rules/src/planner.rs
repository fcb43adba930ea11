//! Desired state and the plan against the licence view.
//!
//! The rules, in the order they are applied (`docs/policies.md` says the same for people):
//!
//! 1. **Validation.** A policy that breaks a rule ([`Violation`]) is left out.
//! 2. **Reach.** A policy reaches the users and devices of its target, minus its exclusion
//!    groups (a device is also excluded when its user is), minus retired users and devices,
//!    minus devices failing its filter. A device licence goes to each reached device (the
//!    devices of reached users included); a user licence goes to the user of each reached
//!    device (the device's user affinity).
//! 3. **Precedence** per device and app: Required beats Uninstall beats Available; then
//!    device licence beats user licence; then the higher `priority`; then the smaller
//!    policy id.
//! 4. **Scarcity.** Wanted licences are served Required first, then Available requests (in
//!    the order they were asked), each by policy priority (higher first), then by holder
//!    (devices before users, by serial number or id). The rest are waitlisted in that order.
//! 5. **Routing.** A holder that already holds the app keeps it where it is (one holder's
//!    licences of one app are never split across locations). A new licence comes from the
//!    policy's pinned location, else from the writable location with the most free
//!    licences, ties by location id; for a user licence, locations where the user is
//!    already associated come first.
//! 6. **Release** per [`ReleaseRules`](crate::ReleaseRules); books and non-revocable apps are
//!    never released.
//! 7. **Gone holders** (retired in, or missing from, the directory) lose only what vppkit
//!    gave them. A holder whose revocable licences in a location are all ours (reserved or
//!    active) is revoked (`assets/revoke`). Adopted licences (found at Apple: another MDM, a
//!    person, before onboarding) are never released: a holder that also has some is not
//!    revoked (a revoke takes every revocable licence), its own licences are disassociated
//!    asset by asset, and a VPP user holding one is not retired. VPP users this manager did
//!    not create ([`LicenceView::is_own_user`]) are never retired, revoked or disassociated
//!    for being gone.

mod app;
mod effects;
mod gone;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::fast_map::FastMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{
    AdamId, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId, Platform, ProductType,
    SerialNumber, VppUserStatus,
};

use crate::batch::{
    asset_batches, retire_batches, revoke_batches, user_batches, Item, Resolve, CODE_GONE,
    CODE_USER,
};
use crate::command::{InstallApplication, MdmCommand};
use crate::directory::Directory;
use crate::error::PlanError;
use crate::ids::PolicyId;
use crate::limits::Limits;
use crate::plan::{
    BlockReason, Blocked, ChangeReason, DeviceCommand, Invitation, LocationPlan, PendingRelease,
    Plan, PolicyViolation, Precondition, UserRegistration, Violation, Waitlisted,
};
use crate::policy::{Intent, LicenceType, Policy, PolicySet, Target};
use crate::release::{GoneRelease, ScopeRelease, UninstallRelease};
use crate::schema::{command_channel, CommandKind};
use crate::view::LicenceView;

/// Apple's (uncertain) cap of devices one user licence covers.
pub const DEFAULT_MAX_DEVICES_PER_USER_LICENCE: usize = 5;

/// A self-service request: the user of a device asked to install an `Available` app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstallRequest {
    /// The device asking.
    pub device: SerialNumber,
    /// The app or book.
    pub adam_id: AdamId,
}

impl InstallRequest {
    /// Builds a request.
    pub fn new(device: SerialNumber, adam_id: AdamId) -> Self {
        Self { device, adam_id }
    }
}

/// Identifies one holding across locations: the location, the asset and the holder (the
/// store's `HoldingKey` is the same without the location, within one location).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationHoldingKey {
    /// Where.
    pub location: LocationId,
    /// The asset.
    pub asset: AssetKey,
    /// The holder.
    pub holder: Holder,
}

impl LocationHoldingKey {
    /// Builds a key.
    pub fn new(location: LocationId, asset: AssetKey, holder: Holder) -> Self {
        Self {
            location,
            asset,
            holder,
        }
    }
}

/// What the planner needs besides the directory, the policies and the view.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanContext {
    /// Now, for grace periods.
    pub now: DateTime<Utc>,
    /// Pending self-service requests, oldest first. Drop a request once its install
    /// command was sent.
    pub requests: Vec<InstallRequest>,
    /// When holdings left scope, from the previous plans' [`PendingRelease`]s. A holding not
    /// listed left scope `now`.
    pub out_of_scope_since: BTreeMap<LocationHoldingKey, DateTime<Utc>>,
}

impl PlanContext {
    /// A context with no requests and no grace history.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            requests: Vec::new(),
            out_of_scope_since: BTreeMap::new(),
        }
    }

    /// Sets the requests.
    pub fn with_requests(mut self, requests: Vec<InstallRequest>) -> Self {
        self.requests = requests;
        self
    }

    /// Records the previous plan's pending releases.
    pub fn with_pending(mut self, pending: &[PendingRelease]) -> Self {
        for p in pending {
            self.out_of_scope_since.insert(
                LocationHoldingKey::new(p.location.clone(), p.asset.clone(), p.holder.clone()),
                p.out_of_scope_since,
            );
        }
        self
    }
}

/// Plans with given limits.
///
/// ```
/// use chrono::Utc;
/// use vppkit_rules::{Directory, LicenceState, PlanContext, Planner, PolicySet};
///
/// let plan = Planner::new().plan(
///     &Directory::default(),
///     &PolicySet::default(),
///     &LicenceState::new(),
///     &PlanContext::new(Utc::now()),
/// )?;
/// assert!(plan.is_empty());
/// # Ok::<(), vppkit_rules::PlanError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    limits: Limits,
    max_devices_per_user_licence: usize,
}

impl Default for Planner {
    fn default() -> Self {
        Self::new()
    }
}

impl Planner {
    /// Apple's limits, 5 devices per user licence.
    pub fn new() -> Self {
        Self {
            limits: Limits::apple(),
            max_devices_per_user_licence: DEFAULT_MAX_DEVICES_PER_USER_LICENCE,
        }
    }

    /// Uses the limits from `service/config`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how many devices one user licence covers.
    pub fn with_max_devices_per_user_licence(mut self, n: usize) -> Self {
        self.max_devices_per_user_licence = n;
        self
    }

    /// The limits in use.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks every enabled policy against the rules; the policies returned are left out of
    /// a plan.
    pub fn validate(
        &self,
        directory: &Directory,
        policies: &PolicySet,
        view: &dyn LicenceView,
    ) -> Vec<PolicyViolation> {
        let snap = Snapshot::read(view);
        let mut out = Vec::new();
        for p in sorted_policies(policies) {
            out.extend(validate_policy(p, directory, &snap));
        }
        out
    }

    /// Plans.
    pub fn plan(
        &self,
        directory: &Directory,
        policies: &PolicySet,
        view: &dyn LicenceView,
        ctx: &PlanContext,
    ) -> Result<Plan, PlanError> {
        self.limits.validate()?;
        if self.max_devices_per_user_licence == 0 {
            return Err(PlanError::ZeroDevicesPerUserLicence);
        }
        let snap = Snapshot::read(view);
        let idx = Arc::new(DirIndex::new(directory, Orders::of(directory)));
        let mut run = Run::new(self, directory, policies, &snap, view, ctx, idx);
        run.validate_all();
        run.requests();
        for (i, adam) in run.adam_ids().iter().enumerate() {
            let out = run.plan_app(adam, None);
            run.merge(adam, out, i as u32 + 1);
        }
        Ok(run.finish())
    }

    pub(crate) fn check(&self) -> Result<(), PlanError> {
        self.limits.validate()?;
        if self.max_devices_per_user_licence == 0 {
            return Err(PlanError::ZeroDevicesPerUserLicence);
        }
        Ok(())
    }
}

fn sorted_policies(set: &PolicySet) -> Vec<&Policy> {
    let mut v: Vec<&Policy> = set.policies.iter().filter(|p| p.enabled).collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

// ---------------------------------------------------------------------------------------
// Snapshot of the view.

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SlotMeta {
    pub(crate) loc: usize,
    pub(crate) key: AssetKey,
    book: bool,
    /// The product type when it is not one vppkit knows (no command can be rendered).
    unknown_type: Option<ProductType>,
    device_assignable: bool,
    revocable: bool,
    platforms: Vec<Platform>,
    free: u64,
    bundle_id: Option<String>,
}

pub(crate) struct LocSnap {
    pub(crate) id: LocationId,
    pub(crate) writable: bool,
    /// Active VPP users (Registered or Associated).
    pub(crate) users: FastMap<ClientUserId, VppUserStatus>,
    /// Every active VPP user id, sorted.
    pub(crate) active_users: Vec<ClientUserId>,
    /// Users Apple lists only with a status vppkit does not know: they exist at
    /// Apple, so they are neither created again nor given licences.
    pub(crate) unknown_status: FastMap<ClientUserId, VppUserStatus>,
}

pub(crate) struct Snapshot {
    pub(crate) locs: Vec<LocSnap>,
    loc_index: BTreeMap<LocationId, usize>,
    pub(crate) slots: Vec<SlotMeta>,
    catalog: BTreeMap<AdamId, Vec<usize>>,
}

impl Snapshot {
    pub(crate) fn read(view: &dyn LicenceView) -> Self {
        let mut infos = view.locations();
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        infos.dedup_by(|a, b| a.id == b.id);
        let mut locs = Vec::new();
        let mut loc_index = BTreeMap::new();
        let mut slots = Vec::new();
        let mut catalog: BTreeMap<AdamId, Vec<usize>> = BTreeMap::new();
        for (li, info) in infos.into_iter().enumerate() {
            let mut users = FastMap::default();
            let mut unknown_status = FastMap::default();
            // In the view's order (views list users by id, so the sort below finds them
            // sorted), not the map's.
            let mut active_users: Vec<ClientUserId> = Vec::new();
            for (id, status) in view.user_statuses(&info.id) {
                if !status.is_known() {
                    unknown_status.insert(id.clone(), status);
                }
                if status.is_active() {
                    match users.entry(id) {
                        std::collections::hash_map::Entry::Vacant(e) => {
                            active_users.push(e.key().clone());
                            e.insert(status);
                        }
                        // Associated wins over Registered if Apple lists both.
                        std::collections::hash_map::Entry::Occupied(mut e) => {
                            if status == VppUserStatus::Associated {
                                e.insert(status);
                            }
                        }
                    }
                }
            }
            active_users.sort();
            let mut assets = view.assets(&info.id);
            assets.sort_by(|a, b| a.asset.key.cmp(&b.asset.key));
            assets.dedup_by(|a, b| a.asset.key == b.asset.key);
            for a in assets {
                let book = a.asset.is_book();
                let si = slots.len();
                catalog
                    .entry(a.asset.key.adam_id.clone())
                    .or_default()
                    .push(si);
                slots.push(SlotMeta {
                    loc: li,
                    key: a.asset.key.clone(),
                    book,
                    unknown_type: (!a.asset.product_type.is_known())
                        .then_some(a.asset.product_type),
                    device_assignable: a.asset.device_assignable && !book,
                    revocable: a.asset.revocable && !book,
                    platforms: a.asset.supported_platforms.clone(),
                    free: u64::from(a.free),
                    bundle_id: a.bundle_id.clone(),
                });
            }
            loc_index.insert(info.id.clone(), li);
            locs.push(LocSnap {
                id: info.id,
                writable: info.token_state.allows_writes(),
                users,
                active_users,
                unknown_status,
            });
        }
        Self {
            locs,
            loc_index,
            slots,
            catalog,
        }
    }

    /// The slots a policy may take licences from (ignoring token state).
    fn candidate_slots(&self, p: &Policy) -> Vec<usize> {
        let pin = p
            .location
            .as_ref()
            .and_then(|l| self.loc_index.get(l).copied());
        self.catalog.get(&p.adam_id).map_or_else(Vec::new, |v| {
            v.iter()
                .copied()
                .filter(|&s| {
                    let slot = &self.slots[s];
                    p.pricing_param
                        .is_none_or(|pp| slot.key.pricing_param == pp)
                        && pin.is_none_or(|l| slot.loc == l)
                })
                .collect()
        })
    }
}

fn validate_policy(p: &Policy, dir: &Directory, snap: &Snapshot) -> Vec<PolicyViolation> {
    let mut out = Vec::new();
    let mut v = |violation: Violation| {
        out.push(PolicyViolation::new(
            p.id.clone(),
            p.adam_id.clone(),
            violation,
        ));
    };
    let mut device_target = matches!(p.target, Target::AllDevices);
    if let Target::Group(g) = &p.target {
        match dir.group(g) {
            Some(group) => device_target = group.is_device_group(),
            None => v(Violation::UnknownGroup { group: g.clone() }),
        }
    }
    for g in &p.exclude {
        if dir.group(g).is_none() {
            v(Violation::UnknownGroup { group: g.clone() });
        }
    }
    if let Some(l) = &p.location {
        if !snap.loc_index.contains_key(l) {
            v(Violation::UnknownLocation {
                location: l.clone(),
            });
        }
    }
    let slots = snap.candidate_slots(p);
    if slots.is_empty() {
        match &p.location {
            Some(l) if snap.loc_index.contains_key(l) && snap.catalog.contains_key(&p.adam_id) => {
                v(Violation::AssetNotInLocation {
                    location: l.clone(),
                })
            }
            Some(l) if snap.loc_index.contains_key(l) => v(Violation::AssetNotFound),
            Some(_) => {}
            None => v(Violation::AssetNotFound),
        }
        return out;
    }
    let book = slots.iter().any(|&s| snap.slots[s].book);
    if book && p.licence == LicenceType::Device {
        v(Violation::BookWithDeviceLicence);
    }
    if book && device_target {
        v(Violation::BookToDevices {
            target: p.target.clone(),
        });
    }
    if p.intent == Intent::Available && device_target {
        v(Violation::AvailableToDevices {
            target: p.target.clone(),
        });
    }
    if !book
        && p.licence == LicenceType::Device
        && p.intent != Intent::Uninstall
        && !slots.iter().any(|&s| snap.slots[s].device_assignable)
    {
        v(Violation::NotDeviceAssignable);
    }
    if let Some(allowed) = p.filter.as_ref().and_then(|f| f.platforms.as_ref()) {
        let supported: BTreeSet<Platform> = slots
            .iter()
            .flat_map(|&s| snap.slots[s].platforms.iter().copied())
            .collect();
        if !supported.is_empty() && !allowed.iter().any(|pl| supported.contains(pl)) {
            v(Violation::NoSupportedPlatform);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// One planning run.

/// Where a device's winning policy comes from.
#[derive(Clone, Copy)]
struct Winner {
    rank: (u8, u8, i64, u32),
    policy: u32,
    /// The licence user of the device for this policy (user licences).
    user: Option<u32>,
}

/// A device's want under a user licence.
#[derive(Clone, Copy)]
struct UserDeviceWant {
    device: u32,
    class: u8,
    priority: i32,
    policy: u32,
    seq: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum HRef {
    Dev(u32),
    User(u32),
}

struct Demand {
    holder: HRef,
    class: u8,
    priority: i32,
    seq: usize,
    policy: u32,
    /// For user licences: the devices to install on.
    devices: Vec<u32>,
}

#[derive(Default)]
struct LocAcc {
    associate: Vec<Item>,
    disassociate: Vec<Item>,
    revoke_devices: BTreeMap<SerialNumber, ChangeReason>,
    revoke_users: BTreeMap<ClientUserId, ChangeReason>,
    create: BTreeMap<ClientUserId, UserRegistration>,
    retire: BTreeSet<ClientUserId>,
    /// Revocable, releasable holdings of holders not in the directory, by holder.
    gone: BTreeMap<Holder, GoneHoldings>,
    /// Gone own users that keep an adopted licence here: never retired.
    keep_users: BTreeSet<ClientUserId>,
}

/// The holdings of one gone holder in one location that a release rule would take back.
#[derive(Default)]
struct GoneHoldings {
    /// Reserved or active: ours (slots).
    ours: Vec<usize>,
    /// Adopted: never released (slots).
    adopted: Vec<usize>,
}

/// One thing an app's planning emitted into the blocked list, in order: a block, or a
/// user registration (whether it is new, and its invitation's blocks, is decided when the
/// apps' outputs are merged in adam id order: the first app to register a user wins).
#[derive(Clone)]
pub(crate) enum BlockEntry {
    Block(Blocked),
    Register { li: usize, user: u32, policy: u32 },
}

/// Everything the planning of one app (adam id) emits. An app's output depends only on its
/// own inputs (its slots, their holdings, its policies, the holders they reach, its
/// requests, grace records of its holdings, and `now` when `uses_now`), never on another
/// app's output: the outputs are merged afterwards in adam id order ([`Run::merge`]).
#[derive(Clone, Default)]
pub(crate) struct AppOut {
    pub(crate) associate: Vec<(usize, Item)>,
    pub(crate) disassociate: Vec<(usize, Item)>,
    /// Holdings of gone holders: (location, holder, slot, adopted).
    pub(crate) gone: Vec<(usize, Holder, usize, bool)>,
    /// Commands, and beside each (same position) its key: (device rank, request kind); the
    /// app's position is added on merge. Kept apart so the commands move as one block.
    pub(crate) commands: Vec<DeviceCommand>,
    pub(crate) command_keys: Vec<(u32, u8)>,
    pub(crate) waitlisted: Vec<Waitlisted>,
    pub(crate) blocked: Vec<BlockEntry>,
    pub(crate) pending: Vec<PendingRelease>,
    /// Whether the output depends on `PlanContext::now`.
    pub(crate) uses_now: bool,
}

impl AppOut {
    /// The size of the work it asks for (Apple items and commands): large after a change of
    /// many holders, small once a plan was applied. Used to keep large outputs out of a cache.
    pub(crate) fn weight(&self) -> usize {
        self.associate.len() + self.disassociate.len() + self.gone.len() + self.commands.len()
    }
}

/// Devices in serial number order and users in id order (positions in the directory).
#[derive(Clone)]
pub(crate) struct Orders {
    pub(crate) devices: Vec<u32>,
    pub(crate) users: Vec<u32>,
}

impl Orders {
    pub(crate) fn of(dir: &Directory) -> Self {
        let (devices, users) = (dir.devices(), dir.users());
        let mut order: Vec<u32> = (0..devices.len() as u32).collect();
        order.sort_by(|&a, &b| {
            devices[a as usize]
                .serial_number
                .cmp(&devices[b as usize].serial_number)
        });
        let mut uorder: Vec<u32> = (0..users.len() as u32).collect();
        uorder.sort_by(|&a, &b| users[a as usize].id.cmp(&users[b as usize].id));
        Self {
            devices: order,
            users: uorder,
        }
    }
}

/// What a run derives from the directory's devices and users: their ranks, each device's
/// licence user, each user's devices.
pub(crate) struct People {
    /// Device and user positions by rank.
    pub(crate) orders: Orders,
    /// Device rank in serial order; user rank in id order.
    dev_rank: Vec<u32>,
    user_rank: Vec<u32>,
    /// Licence user of each device (not retired, not a shared iPad).
    dev_user: Vec<Option<u32>>,
    /// Non-retired devices of each user, by serial.
    user_devs: Vec<Vec<u32>>,
}

impl People {
    /// The people of `dir`, whose devices and users are in `orders`.
    fn new(dir: &Directory, orders: Orders) -> Self {
        let devices = dir.devices();
        let users = dir.users();
        let mut dev_rank = vec![0; devices.len()];
        for (r, &d) in orders.devices.iter().enumerate() {
            dev_rank[d as usize] = r as u32;
        }
        let mut user_rank = vec![0; users.len()];
        for (r, &u) in orders.users.iter().enumerate() {
            user_rank[u as usize] = r as u32;
        }
        let mut dev_user = vec![None; devices.len()];
        let mut user_devs = vec![Vec::new(); users.len()];
        for &d in &orders.devices {
            let dev = &devices[d as usize];
            if dev.retired {
                continue;
            }
            if let Some(u) = dev.licence_user().and_then(|u| dir.user_pos(u)) {
                if !users[u].retired {
                    dev_user[d as usize] = Some(u as u32);
                    user_devs[u].push(d);
                }
            }
        }
        Self {
            orders,
            dev_rank,
            user_rank,
            dev_user,
            user_devs,
        }
    }
}

/// What a run derives from the directory alone: its [`People`] and each group's members.
/// Built once per directory; a [`PlanSession`](crate::PlanSession) keeps it while it is
/// given the same directory (or a clone of it), and keeps its people when only groups
/// changed.
pub(crate) struct DirIndex {
    pub(crate) people: Arc<People>,
    /// Non-retired members of each group: (users, devices).
    group_members: Vec<(Vec<u32>, Vec<u32>)>,
}

impl DirIndex {
    /// The index of `dir`, whose devices and users are in `orders`.
    pub(crate) fn new(dir: &Directory, orders: Orders) -> Self {
        Self::with_people(dir, Arc::new(People::new(dir, orders)))
    }

    /// The index of `dir`, whose devices and users are the ones `people` was built from.
    pub(crate) fn with_people(dir: &Directory, people: Arc<People>) -> Self {
        let (devices, users) = (dir.devices(), dir.users());
        let group_members = dir
            .groups()
            .iter()
            .map(|g| {
                let us = g
                    .users
                    .iter()
                    .filter_map(|u| dir.user_pos(u))
                    .filter(|&u| !users[u].retired)
                    .map(|u| u as u32)
                    .collect();
                let ds = g
                    .devices
                    .iter()
                    .filter_map(|d| dir.device_pos(d))
                    .filter(|&d| !devices[d].retired)
                    .map(|d| d as u32)
                    .collect();
                (us, ds)
            })
            .collect();
        Self {
            people,
            group_members,
        }
    }
}

/// One slot's holdings, sorted.
pub(crate) type Holdings = Vec<(Holder, HoldingStatus)>;

pub(crate) struct Run<'a> {
    planner: &'a Planner,
    dir: &'a Directory,
    set: &'a PolicySet,
    snap: &'a Snapshot,
    view: &'a dyn LicenceView,
    ctx: &'a PlanContext,

    policies: Vec<&'a Policy>,
    /// Candidate slots of each policy (pin and pricing applied).
    candidates: Vec<Vec<usize>>,
    by_adam: BTreeMap<AdamId, Vec<u32>>,

    /// What the directory alone gives (ranks, licence users, group members).
    idx: Arc<DirIndex>,

    /// Requests by adam id: (device, seq).
    requests: BTreeMap<AdamId, Vec<(u32, usize)>>,

    // Scratch, reset per app via stamps.
    stamp: u32,
    dev_stamp: Vec<u32>,
    dev_win: Vec<Winner>,
    dev_scope: Vec<u32>,
    user_scope: Vec<u32>,
    uninstall_users: Vec<u32>,
    excl_dev: Vec<u32>,
    excl_user: Vec<u32>,
    seen_dev: Vec<u32>,
    pstamp: u32,

    // Output.
    loc_acc: Vec<LocAcc>,
    commands: Vec<DeviceCommand>,
    /// Beside each command (same position): (device rank, app position, request kind).
    command_keys: Vec<(u32, u32, u8)>,
    waitlisted: Vec<Waitlisted>,
    blocked: Vec<Blocked>,
    pending: Vec<PendingRelease>,
    violations: Vec<PolicyViolation>,
    invitations: BTreeMap<(usize, ClientUserId), Invitation>,
    /// Holders not in the directory that get per-asset disassociations (code `CODE_GONE`).
    gone_holders: Vec<Holder>,
    /// The output of the app being planned.
    out: AppOut,
}

impl Resolve for Run<'_> {
    fn asset(&self, slot: u32) -> AssetKey {
        self.snap.slots[slot as usize].key.clone()
    }

    fn holder(&self, code: u64) -> Holder {
        let rank = (code & 0xFFFF_FFFF) as usize;
        if code & CODE_GONE != 0 {
            self.gone_holders[rank].clone()
        } else if code & CODE_USER == 0 {
            Holder::Device(self.serial(self.idx.people.orders.devices[rank]).clone())
        } else {
            Holder::User(self.user_id(self.idx.people.orders.users[rank]).clone())
        }
    }

    fn policy(&self, index: u32) -> PolicyId {
        self.policies[index as usize].id.clone()
    }
}

const CLASS_REQUIRED: u8 = 0;
const CLASS_AVAILABLE: u8 = 1;

impl<'a> Run<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        planner: &'a Planner,
        dir: &'a Directory,
        set: &'a PolicySet,
        snap: &'a Snapshot,
        view: &'a dyn LicenceView,
        ctx: &'a PlanContext,
        idx: Arc<DirIndex>,
    ) -> Self {
        let policies = sorted_policies(set);
        let nd = dir.devices().len();
        let nu = dir.users().len();
        Self {
            planner,
            dir,
            set,
            snap,
            view,
            ctx,
            candidates: policies.iter().map(|p| snap.candidate_slots(p)).collect(),
            policies,
            by_adam: BTreeMap::new(),
            idx,
            requests: BTreeMap::new(),
            stamp: 0,
            dev_stamp: vec![0; nd],
            dev_win: vec![
                Winner {
                    rank: (0, 0, 0, 0),
                    policy: 0,
                    user: None,
                };
                nd
            ],
            dev_scope: vec![0; nd],
            user_scope: vec![0; nu],
            uninstall_users: Vec::new(),
            excl_dev: vec![0; nd],
            excl_user: vec![0; nu],
            seen_dev: vec![0; nd],
            pstamp: 0,
            loc_acc: snap.locs.iter().map(|_| LocAcc::default()).collect(),
            commands: Vec::new(),
            command_keys: Vec::new(),
            waitlisted: Vec::new(),
            blocked: Vec::new(),
            pending: Vec::new(),
            violations: Vec::new(),
            invitations: BTreeMap::new(),
            gone_holders: Vec::new(),
            out: AppOut::default(),
        }
    }

    /// The directory index this run was built with.
    pub(crate) fn index(&self) -> Arc<DirIndex> {
        Arc::clone(&self.idx)
    }

    /// Every app to plan, in adam id order: the catalog's and the valid policies'.
    pub(crate) fn adam_ids(&self) -> Vec<AdamId> {
        let set: BTreeSet<&AdamId> = self
            .snap
            .catalog
            .keys()
            .chain(self.by_adam.keys())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// The requests of each app: devices, oldest request first.
    pub(crate) fn request_devices(&self) -> BTreeMap<AdamId, Vec<u32>> {
        self.requests
            .iter()
            .map(|(a, v)| (a.clone(), v.iter().map(|&(d, _)| d).collect()))
            .collect()
    }

    /// The valid policies (indices) of each app.
    pub(crate) fn by_adam(&self) -> &BTreeMap<AdamId, Vec<u32>> {
        &self.by_adam
    }

    /// Plans one app; its output is returned, not yet merged. `holdings`: every slot's
    /// holdings, sorted, when the caller read them already (the session); otherwise the app
    /// reads its own from the view.
    pub(crate) fn plan_app(&mut self, adam: &AdamId, holdings: Option<&[Holdings]>) -> AppOut {
        self.app(adam, holdings);
        std::mem::take(&mut self.out)
    }

    /// Adds one app's output; `seq` is the app's position in adam id order, from 1.
    pub(crate) fn merge(&mut self, adam: &AdamId, mut out: AppOut, seq: u32) {
        for (li, it) in out.associate {
            self.loc_acc[li].associate.push(it);
        }
        for (li, it) in out.disassociate {
            self.loc_acc[li].disassociate.push(it);
        }
        for (li, holder, slot, adopted) in out.gone {
            let g = self.loc_acc[li].gone.entry(holder).or_default();
            if adopted {
                g.adopted.push(slot);
            } else {
                g.ours.push(slot);
            }
        }
        self.commands.append(&mut out.commands);
        self.command_keys.extend(
            out.command_keys
                .into_iter()
                .map(|(rank, kind)| (rank, seq, kind)),
        );
        self.waitlisted.extend(out.waitlisted);
        for e in out.blocked {
            match e {
                BlockEntry::Block(b) => self.blocked.push(b),
                BlockEntry::Register { li, user, policy } => self.register(li, user, adam, policy),
            }
        }
        self.pending.extend(out.pending);
    }

    pub(crate) fn validate_all(&mut self) {
        for (i, p) in self.policies.iter().enumerate() {
            let v = validate_policy(p, self.dir, self.snap);
            if v.is_empty() {
                self.by_adam
                    .entry(p.adam_id.clone())
                    .or_default()
                    .push(i as u32);
            } else {
                self.violations.extend(v);
            }
        }
    }

    pub(crate) fn requests(&mut self) {
        for (seq, r) in self.ctx.requests.iter().enumerate() {
            match self.dir.device_pos(&r.device) {
                Some(d) if !self.dir.devices()[d].retired => {
                    let list = self.requests.entry(r.adam_id.clone()).or_default();
                    if !list.iter().any(|&(x, _)| x == d as u32) {
                        list.push((d as u32, seq));
                    }
                }
                _ => self.blocked.push(Blocked {
                    adam_id: r.adam_id.clone(),
                    holder: Holder::Device(r.device.clone()),
                    policy: None,
                    reason: BlockReason::UnknownDevice {
                        device: r.device.clone(),
                    },
                }),
            }
        }
    }

    fn serial(&self, d: u32) -> &'a SerialNumber {
        &self.dir.devices()[d as usize].serial_number
    }

    fn user_id(&self, u: u32) -> &'a ClientUserId {
        &self.dir.users()[u as usize].id
    }

    fn holder(&self, h: HRef) -> Holder {
        match h {
            HRef::Dev(d) => Holder::Device(self.serial(d).clone()),
            HRef::User(u) => Holder::User(self.user_id(u).clone()),
        }
    }

    /// A holder code for batching: its order is the holder order.
    fn hcode(&self, h: HRef) -> u64 {
        match h {
            HRef::Dev(d) => u64::from(self.idx.people.dev_rank[d as usize]),
            HRef::User(u) => CODE_USER | u64::from(self.idx.people.user_rank[u as usize]),
        }
    }

    fn holder_rank(&self, h: HRef) -> (u8, u32) {
        match h {
            HRef::Dev(d) => (0, self.idx.people.dev_rank[d as usize]),
            HRef::User(u) => (1, self.idx.people.user_rank[u as usize]),
        }
    }

    fn block(&mut self, adam: &AdamId, holder: Holder, policy: Option<u32>, reason: BlockReason) {
        let policy = policy.map(|p| self.policies[p as usize].id.clone());
        self.out.blocked.push(BlockEntry::Block(Blocked {
            adam_id: adam.clone(),
            holder,
            policy,
            reason,
        }));
    }

    /// Marks the devices a policy reaches and calls `visit(device, licence user)` once per
    /// device; also marks users in scope (`on_user`).
    fn reach(
        &mut self,
        pi: u32,
        mut visit: impl FnMut(&mut Self, u32, Option<u32>),
        mut on_user: impl FnMut(&mut Self, u32),
    ) {
        let p = self.policies[pi as usize];
        self.pstamp += 1;
        let ps = self.pstamp;
        for g in &p.exclude {
            if let Some(gi) = self.dir.group_pos(g) {
                let (us, ds) = &self.idx.group_members[gi];
                for &u in us {
                    self.excl_user[u as usize] = ps;
                }
                for &d in ds {
                    self.excl_dev[d as usize] = ps;
                }
            }
        }
        let devices = self.dir.devices();
        let users = self.dir.users();
        let (direct_users, direct_devices): (Vec<u32>, Vec<u32>) = match &p.target {
            Target::Group(g) => match self.dir.group_pos(g) {
                Some(gi) => self.idx.group_members[gi].clone(),
                None => (Vec::new(), Vec::new()),
            },
            Target::AllUsers => (
                (0..users.len() as u32)
                    .filter(|&u| !users[u as usize].retired)
                    .collect(),
                Vec::new(),
            ),
            Target::AllDevices => (
                Vec::new(),
                (0..devices.len() as u32)
                    .filter(|&d| !devices[d as usize].retired)
                    .collect(),
            ),
        };
        let filter = p.filter.as_ref();
        let excluded_dev = |s: &Self, d: u32| {
            s.excl_dev[d as usize] == ps
                || s.idx.people.dev_user[d as usize].is_some_and(|u| s.excl_user[u as usize] == ps)
                || filter.is_some_and(|f| !f.matches(&devices[d as usize]))
        };
        let idx = Arc::clone(&self.idx);
        for &u in &direct_users {
            if self.excl_user[u as usize] == ps {
                continue;
            }
            on_user(self, u);
            for &d in &idx.people.user_devs[u as usize] {
                if self.seen_dev[d as usize] != ps && !excluded_dev(self, d) {
                    self.seen_dev[d as usize] = ps;
                    visit(self, d, Some(u));
                }
            }
        }
        for &d in &direct_devices {
            if self.seen_dev[d as usize] != ps && !excluded_dev(self, d) {
                self.seen_dev[d as usize] = ps;
                let u = self.idx.people.dev_user[d as usize];
                if let Some(u) = u {
                    on_user(self, u);
                }
                visit(self, d, u);
            }
        }
    }
}
