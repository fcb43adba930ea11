//! The planner's read view of the licence state: per location its token state, assets with
//! their free count, holdings and VPP users.
//!
//! [`LicenceView`] is what the planner reads; [`LicenceState`] is a plain value implementing
//! it (for tests, demos and dry runs), and `vppkit-ledger`'s read view implements it too.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vppkit_core::{
    Asset, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId, TokenState, VppUser,
    VppUserStatus, UNLIMITED_COUNT,
};

use crate::plan::Plan;

/// A location as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationInfo {
    /// Local id.
    pub id: LocationId,
    /// Its token's state; the planner sends nothing to a location that does not allow writes.
    pub token_state: TokenState,
}

impl LocationInfo {
    /// Builds a location.
    pub fn new(id: LocationId, token_state: TokenState) -> Self {
        Self { id, token_state }
    }
}

/// One asset of a location with the number of licences free to reserve now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetInfo {
    /// The asset and Apple's counts.
    pub asset: Asset,
    /// Licences free now: holdable minus held and reserved.
    pub free: u32,
    /// Bundle id from the content metadata, needed for `RemoveApplication`.
    pub bundle_id: Option<String>,
}

impl AssetInfo {
    /// Builds an asset view.
    pub fn new(asset: Asset, free: u32, bundle_id: Option<String>) -> Self {
        Self {
            asset,
            free,
            bundle_id,
        }
    }
}

/// What the planner reads. Implementations must be consistent for the duration of one
/// `plan` call (a snapshot).
pub trait LicenceView {
    /// Every location.
    fn locations(&self) -> Vec<LocationInfo>;
    /// The assets of a location.
    fn assets(&self, location: &LocationId) -> Vec<AssetInfo>;
    /// Every holding of one asset in one location, any status.
    fn holdings(&self, location: &LocationId, asset: &AssetKey) -> Vec<(Holder, HoldingStatus)>;
    /// The VPP users of a location, as Apple lists them (retired ones may appear beside an
    /// active one with the same id).
    fn users(&self, location: &LocationId) -> Vec<VppUser>;

    /// The id and status of each VPP user of a location, as [`LicenceView::users`] lists
    /// them: all the planner reads of them, on every call. The default takes them from
    /// `users`; a view that can give them without copying whole users (their e-mail,
    /// invitation code, ...) should.
    fn user_statuses(&self, location: &LocationId) -> Vec<(ClientUserId, VppUserStatus)> {
        self.users(location)
            .into_iter()
            .map(|u| (u.client_user_id, u.status))
            .collect()
    }

    /// Whether this manager created the VPP user `id` in `location` (its own
    /// `clientUserId`), so the planner may retire it and take back its licences when it is
    /// retired in, or missing from, the directory. Users created by another MDM (or by a
    /// person) are never retired, revoked or disassociated because of the directory.
    ///
    /// Required (no default): a view that forgot it would let the planner touch another
    /// MDM's users. [`LicenceState::set_user_owned`] and
    /// [`LedgerView::with_own_users`](crate::LedgerView::with_own_users) record ownership.
    fn is_own_user(&self, location: &LocationId, id: &ClientUserId) -> bool;

    /// A number that changes whenever what [`LicenceView::holdings`] returns for this asset
    /// may change, or `None` when the view cannot say (the default).
    ///
    /// [`PlanSession`](crate::PlanSession) skips reading and comparing the holdings of an
    /// asset whose version is the one it saw on its previous call, which is most of a
    /// re-plan's cost at district scale. An equal `Some` must mean equal holdings, on this
    /// view or any other the session may be given next: take the numbers from
    /// [`vppkit_ledger::next_holdings_version`] (one process-wide counter, as
    /// [`Ledger`](vppkit_ledger::Ledger), [`LedgerView`](crate::LedgerView) and
    /// [`LicenceState`] do), and take a new one on every change.
    fn holdings_version(&self, location: &LocationId, asset: &AssetKey) -> Option<u64> {
        let _ = (location, asset);
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssetState {
    asset: Asset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle_id: Option<String>,
    #[serde(default)]
    holdings: BTreeMap<Holder, HoldingStatus>,
    /// Changes with every change of `holdings` (not part of the state: equality and the
    /// serialized form ignore it).
    #[serde(skip)]
    version: HoldingsVersion,
}

impl AssetState {
    fn insert_holding(&mut self, holder: Holder, status: HoldingStatus) {
        self.holdings.insert(holder, status);
        self.version = HoldingsVersion::default();
    }

    fn remove_holding(&mut self, holder: &Holder) -> bool {
        let removed = self.holdings.remove(holder).is_some();
        if removed {
            self.version = HoldingsVersion::default();
        }
        removed
    }
}

/// A holdings version: a fresh one from the process-wide counter by default.
type HoldingsVersion = crate::stamp::Stamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationState {
    token_state: TokenState,
    #[serde(default)]
    assets: BTreeMap<AssetKey, AssetState>,
    #[serde(default)]
    users: BTreeMap<ClientUserId, VppUser>,
    /// Users this manager did not create (every other user is ours).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    foreign_users: BTreeSet<ClientUserId>,
}

/// A plain licence state implementing [`LicenceView`].
///
/// `free` is computed as `total - retired - holdings` (any status), or unlimited for free
/// assets. Every VPP user counts as created by this manager unless
/// [`LicenceState::set_user_owned`] says otherwise. [`LicenceState::apply`] plays a plan as if Apple accepted all of it, which is what
/// the property tests and dry runs use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceState {
    locations: BTreeMap<LocationId, LocationState>,
}

impl LicenceState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of any view.
    pub fn from_view(view: &dyn LicenceView) -> Self {
        let mut s = Self::new();
        for l in view.locations() {
            s.add_location(l.id.clone(), l.token_state);
            for a in view.assets(&l.id) {
                let key = a.asset.key.clone();
                s.add_asset(&l.id, a.asset, a.bundle_id);
                for (h, st) in view.holdings(&l.id, &key) {
                    if let Holder::User(id) = &h {
                        if !view.is_own_user(&l.id, id) {
                            s.set_user_owned(&l.id, id, false);
                        }
                    }
                    s.set_holding(&l.id, &key, h, st);
                }
            }
            for u in view.users(&l.id) {
                if !view.is_own_user(&l.id, &u.client_user_id) {
                    s.set_user_owned(&l.id, &u.client_user_id, false);
                }
                s.set_user(&l.id, u);
            }
        }
        s
    }

    /// Adds (or replaces the token state of) a location.
    pub fn add_location(&mut self, id: LocationId, token_state: TokenState) -> &mut Self {
        self.locations
            .entry(id)
            .and_modify(|l| l.token_state = token_state)
            .or_insert_with(|| LocationState {
                token_state,
                assets: BTreeMap::new(),
                users: BTreeMap::new(),
                foreign_users: BTreeSet::new(),
            });
        self
    }

    fn loc(&mut self, id: &LocationId) -> &mut LocationState {
        self.locations
            .entry(id.clone())
            .or_insert_with(|| LocationState {
                token_state: TokenState::Valid,
                assets: BTreeMap::new(),
                users: BTreeMap::new(),
                foreign_users: BTreeSet::new(),
            })
    }

    /// Adds an asset to a location (the location is created, valid, if missing).
    pub fn add_asset(
        &mut self,
        location: &LocationId,
        asset: Asset,
        bundle_id: Option<String>,
    ) -> &mut Self {
        let key = asset.key.clone();
        let holdings = self
            .loc(location)
            .assets
            .remove(&key)
            .map(|a| a.holdings)
            .unwrap_or_default();
        self.loc(location).assets.insert(
            key,
            AssetState {
                asset,
                bundle_id,
                holdings,
                version: HoldingsVersion::default(),
            },
        );
        self
    }

    /// Sets a holding. Ignored when the asset is not in the location.
    pub fn set_holding(
        &mut self,
        location: &LocationId,
        asset: &AssetKey,
        holder: Holder,
        status: HoldingStatus,
    ) -> &mut Self {
        if let Some(a) = self.loc(location).assets.get_mut(asset) {
            a.insert_holding(holder, status);
        }
        self
    }

    /// Removes a holding; returns whether it existed.
    pub fn remove_holding(
        &mut self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> bool {
        self.loc(location)
            .assets
            .get_mut(asset)
            .map(|a| a.remove_holding(holder))
            .unwrap_or(false)
    }

    /// Sets a VPP user (replacing one with the same id).
    pub fn set_user(&mut self, location: &LocationId, user: VppUser) -> &mut Self {
        self.loc(location)
            .users
            .insert(user.client_user_id.clone(), user);
        self
    }

    /// Says whether this manager created the VPP user `id` (default: yes). A user marked
    /// not owned (another MDM's, or one that predates onboarding) is never retired, revoked
    /// or disassociated by the planner because the directory does not list it; see
    /// [`LicenceView::is_own_user`]. The mark needs no [`VppUser`] entry: it also covers a
    /// holder that Apple lists only in assignments.
    pub fn set_user_owned(
        &mut self,
        location: &LocationId,
        id: &ClientUserId,
        owned: bool,
    ) -> &mut Self {
        let l = self.loc(location);
        if owned {
            l.foreign_users.remove(id);
        } else {
            l.foreign_users.insert(id.clone());
        }
        self
    }

    /// The holding status, if held.
    pub fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Option<HoldingStatus> {
        self.locations
            .get(location)?
            .assets
            .get(asset)?
            .holdings
            .get(holder)
            .copied()
    }

    /// Number of holdings of an asset in a location.
    pub fn holding_count(&self, location: &LocationId, asset: &AssetKey) -> usize {
        self.locations
            .get(location)
            .and_then(|l| l.assets.get(asset))
            .map_or(0, |a| a.holdings.len())
    }

    /// Free licences of an asset in a location.
    pub fn free(&self, location: &LocationId, asset: &AssetKey) -> u32 {
        self.locations
            .get(location)
            .and_then(|l| l.assets.get(asset))
            .map_or(0, Self::free_of)
    }

    fn free_of(a: &AssetState) -> u32 {
        if a.asset.counts.is_unlimited() {
            return UNLIMITED_COUNT;
        }
        let held = u32::try_from(a.holdings.len()).unwrap_or(u32::MAX);
        a.asset.counts.holdable().saturating_sub(held)
    }

    /// A VPP user of a location.
    pub fn user(&self, location: &LocationId, id: &ClientUserId) -> Option<&VppUser> {
        self.locations.get(location)?.users.get(id)
    }

    /// Plays a plan as if Apple accepted every request: users created (Associated with a
    /// Managed Apple Account, else Registered, and ours), associations Active,
    /// disassociations and revocations removed (revocable assets only), users retired.
    pub fn apply(&mut self, plan: &Plan) {
        for lp in &plan.locations {
            let loc = self.loc(&lp.location);
            for b in &lp.create_users {
                for u in &b.users {
                    let status = if u.associates_at_once() {
                        VppUserStatus::Associated
                    } else {
                        VppUserStatus::Registered
                    };
                    let mut user = VppUser::new(u.client_user_id.clone(), status);
                    user.email = u.email.clone();
                    user.managed_apple_id = u.managed_apple_id.clone();
                    loc.foreign_users.remove(&u.client_user_id);
                    loc.users.insert(u.client_user_id.clone(), user);
                }
            }
            for b in &lp.associate {
                for (asset, holder) in b.holdings() {
                    if let Some(a) = loc.assets.get_mut(&asset) {
                        a.insert_holding(holder, HoldingStatus::Active);
                    }
                }
            }
            for b in &lp.disassociate {
                for (asset, holder) in b.holdings() {
                    if let Some(a) = loc.assets.get_mut(&asset) {
                        a.remove_holding(&holder);
                    }
                }
            }
            for b in &lp.revoke {
                let holders = b.targets.holders();
                for a in loc.assets.values_mut() {
                    if a.asset.revocable && !a.asset.is_book() {
                        for h in &holders {
                            a.remove_holding(h);
                        }
                    }
                }
            }
            for b in &lp.retire_users {
                for id in &b.client_user_ids {
                    if let Some(u) = loc.users.get_mut(id) {
                        u.status = VppUserStatus::Retired;
                    }
                }
            }
        }
    }
}

impl LicenceView for LicenceState {
    fn locations(&self) -> Vec<LocationInfo> {
        self.locations
            .iter()
            .map(|(id, l)| LocationInfo::new(id.clone(), l.token_state))
            .collect()
    }

    fn assets(&self, location: &LocationId) -> Vec<AssetInfo> {
        self.locations.get(location).map_or_else(Vec::new, |l| {
            l.assets
                .values()
                .map(|a| AssetInfo::new(a.asset.clone(), Self::free_of(a), a.bundle_id.clone()))
                .collect()
        })
    }

    fn holdings_version(&self, location: &LocationId, asset: &AssetKey) -> Option<u64> {
        self.locations
            .get(location)
            .and_then(|l| l.assets.get(asset))
            .map(|a| a.version.get())
    }

    fn holdings(&self, location: &LocationId, asset: &AssetKey) -> Vec<(Holder, HoldingStatus)> {
        self.locations
            .get(location)
            .and_then(|l| l.assets.get(asset))
            .map_or_else(Vec::new, |a| {
                a.holdings.iter().map(|(h, s)| (h.clone(), *s)).collect()
            })
    }

    fn users(&self, location: &LocationId) -> Vec<VppUser> {
        self.locations
            .get(location)
            .map_or_else(Vec::new, |l| l.users.values().cloned().collect())
    }

    fn user_statuses(&self, location: &LocationId) -> Vec<(ClientUserId, VppUserStatus)> {
        self.locations.get(location).map_or_else(Vec::new, |l| {
            l.users
                .values()
                .map(|u| (u.client_user_id.clone(), u.status))
                .collect()
        })
    }

    fn is_own_user(&self, location: &LocationId, id: &ClientUserId) -> bool {
        self.locations
            .get(location)
            .is_none_or(|l| !l.foreign_users.contains(id))
    }
}
