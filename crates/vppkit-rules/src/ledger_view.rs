//! [`LicenceView`] over `vppkit-ledger` ledgers (one per location).

use std::collections::{BTreeMap, BTreeSet};

use vppkit_core::{
    Asset, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId, Platform, TokenState,
    VppUser, VppUserStatus,
};
use vppkit_ledger::Ledger;

use crate::view::{AssetInfo, LicenceView, LocationInfo};

/// The planner's view of several locations' ledgers.
///
/// The ledger does not keep supported platforms or bundle ids; give them with
/// [`LedgerView::with_asset_details`] (from the assets sync and the metadata lookup). Without
/// them the planner skips the platform check and cannot send `RemoveApplication`.
///
/// The ledger does not know which VPP users this manager created either: give them per
/// location with [`LedgerView::with_own_users`]. For a location without that list every
/// user counts as ours (the [`LicenceView::is_own_user`] default).
///
/// ```
/// use vppkit_core::{LocationId, TokenState};
/// use vppkit_ledger::Ledger;
/// use vppkit_rules::{LedgerView, LicenceView};
///
/// let ledger = Ledger::new(LocationId::new("school-a")?);
/// let view = LedgerView::new().with_location(&ledger, TokenState::Valid);
/// assert_eq!(view.locations().len(), 1);
/// # Ok::<(), vppkit_core::ValueError>(())
/// ```
#[derive(Debug, Default)]
pub struct LedgerView<'a> {
    ledgers: Vec<(&'a Ledger, TokenState)>,
    details: BTreeMap<AssetKey, (Vec<Platform>, Option<String>)>,
    own_users: BTreeMap<LocationId, BTreeSet<ClientUserId>>,
}

impl<'a> LedgerView<'a> {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one location's ledger with its token state.
    pub fn with_location(mut self, ledger: &'a Ledger, token_state: TokenState) -> Self {
        self.ledgers.push((ledger, token_state));
        self
    }

    /// Supported platforms and bundle id of an asset (the same in every location).
    pub fn with_asset_details(
        mut self,
        key: AssetKey,
        platforms: Vec<Platform>,
        bundle_id: Option<String>,
    ) -> Self {
        self.details.insert(key, (platforms, bundle_id));
        self
    }

    /// The VPP users this manager created in a location (its own `clientUserId`s). Once
    /// given for a location, every other user there is foreign: the planner never retires
    /// it nor takes back its licences because the directory does not list it. Calling it
    /// again for the same location adds to the list.
    pub fn with_own_users(
        mut self,
        location: LocationId,
        users: impl IntoIterator<Item = ClientUserId>,
    ) -> Self {
        self.own_users.entry(location).or_default().extend(users);
        self
    }

    fn ledger(&self, location: &LocationId) -> Option<&'a Ledger> {
        self.ledgers
            .iter()
            .find(|(l, _)| l.location() == location)
            .map(|(l, _)| *l)
    }
}

impl LicenceView for LedgerView<'_> {
    fn locations(&self) -> Vec<LocationInfo> {
        self.ledgers
            .iter()
            .map(|(l, s)| LocationInfo::new(l.location().clone(), *s))
            .collect()
    }

    fn assets(&self, location: &LocationId) -> Vec<AssetInfo> {
        let Some(ledger) = self.ledger(location) else {
            return Vec::new();
        };
        ledger
            .asset_views()
            .into_iter()
            .map(|v| {
                let (platforms, bundle_id) = self.details.get(&v.key).cloned().unwrap_or_default();
                let asset = Asset::new(
                    v.key.clone(),
                    v.product_type,
                    v.device_assignable,
                    v.revocable,
                    platforms,
                    v.apple,
                );
                AssetInfo::new(asset, u32::try_from(v.free).unwrap_or(u32::MAX), bundle_id)
            })
            .collect()
    }

    fn holdings(&self, location: &LocationId, asset: &AssetKey) -> Vec<(Holder, HoldingStatus)> {
        self.ledger(location)
            .map_or_else(Vec::new, |l| l.holders_of(asset))
    }

    fn holdings_version(&self, location: &LocationId, asset: &AssetKey) -> Option<u64> {
        self.ledger(location)?.holdings_version(asset)
    }

    fn users(&self, location: &LocationId) -> Vec<VppUser> {
        self.ledger(location)
            .map_or_else(Vec::new, |l| l.users().cloned().collect())
    }

    fn user_statuses(&self, location: &LocationId) -> Vec<(ClientUserId, VppUserStatus)> {
        self.ledger(location).map_or_else(Vec::new, |l| {
            l.users()
                .map(|u| (u.client_user_id.clone(), u.status))
                .collect()
        })
    }

    fn is_own_user(&self, location: &LocationId, id: &ClientUserId) -> bool {
        self.own_users
            .get(location)
            .is_none_or(|own| own.contains(id))
    }
}
