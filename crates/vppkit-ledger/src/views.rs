//! Read views: what the rules, the engine and the product's screens read from the ledger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vppkit_core::{
    AssetCounts, AssetKey, EventId, Holder, HoldingStatus, LocationId, ProductType, VppUser,
};

use crate::ledger::{AssetIdx, AssetSlot, Rec};
use crate::{AssetTally, Ledger};

/// One asset's licences as the product shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetView {
    /// The asset.
    pub key: AssetKey,
    /// App or Book.
    pub product_type: ProductType,
    /// Can be assigned to devices.
    pub device_assignable: bool,
    /// Licences can be taken back.
    pub revocable: bool,
    /// A free asset with unlimited licences.
    pub unlimited: bool,
    /// Licences owned (Apple's total).
    pub owned: u32,
    /// Licences retired (Apple's count; they cannot be held).
    pub retired: u32,
    /// Licences that can be held: owned - retired.
    pub holdable: u32,
    /// Holdings confirmed at Apple: active + releasing + adopted.
    pub used: u64,
    /// Holdings reserved for an operation in flight.
    pub reserved: u32,
    /// Holdings confirmed for our own operations.
    pub active: u32,
    /// Holdings being released.
    pub releasing: u32,
    /// Holdings found at Apple without our action.
    pub adopted: u32,
    /// Licences that can still be reserved: holdable - used - reserved, never negative.
    pub free: u64,
    /// Holdings beyond what can be held (Apple lowered the count under existing holdings).
    pub over_committed: u64,
    /// Apple's counts as last reported.
    pub apple: AssetCounts,
}

impl AssetView {
    pub(crate) fn from_slot(slot: &AssetSlot) -> Self {
        let t: AssetTally = slot.tally();
        let asset = &slot.asset;
        let holdable = asset.counts.holdable();
        Self {
            key: asset.key.clone(),
            product_type: asset.product_type,
            device_assignable: asset.device_assignable,
            revocable: asset.revocable,
            unlimited: asset.counts.is_unlimited(),
            owned: asset.counts.total,
            retired: asset.counts.retired,
            holdable,
            used: u64::from(t.active) + u64::from(t.releasing) + u64::from(t.adopted),
            reserved: t.reserved,
            active: t.active,
            releasing: t.releasing,
            adopted: t.adopted,
            free: t.free(),
            over_committed: if asset.counts.is_unlimited() {
                0
            } else {
                t.in_use().saturating_sub(u64::from(holdable))
            },
            apple: asset.counts,
        }
    }

    /// Holdings that use a licence: used + reserved.
    pub fn in_use(&self) -> u64 {
        self.used + u64::from(self.reserved)
    }

    /// Share of holdable licences in use (0.0 to 1.0 or more; 0.0 for unlimited assets or
    /// assets with nothing holdable and nothing held).
    pub fn used_ratio(&self) -> f64 {
        if self.unlimited {
            return 0.0;
        }
        match self.holdable {
            0 if self.in_use() == 0 => 0.0,
            0 => 1.0,
            holdable => self.in_use() as f64 / f64::from(holdable),
        }
    }
}

/// One holding as read views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HoldingView {
    /// The asset.
    pub asset: AssetKey,
    /// The holder.
    pub holder: Holder,
    /// Its status.
    pub status: HoldingStatus,
    /// The Apple operation in flight for it, if any.
    pub event: Option<EventId>,
}

/// Everything one holder has in the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HolderView {
    /// The holder.
    pub holder: Holder,
    /// The VPP user record, for a user Apple knows.
    pub user: Option<VppUser>,
    /// Its holdings in asset order.
    pub holdings: Vec<HoldingView>,
}

/// A low-availability rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Threshold {
    /// Alert when at least this percentage of holdable licences is in use (Intune: 50).
    UsedAtLeast(u8),
    /// Alert when at most this percentage of holdable licences is free (zentral: 20, then 10).
    FreeAtMost(u8),
}

impl Threshold {
    fn breached(self, view: &AssetView) -> bool {
        if view.unlimited {
            return false;
        }
        let holdable = u64::from(view.holdable);
        match self {
            // in_use / holdable >= p / 100, in integers.
            Threshold::UsedAtLeast(p) => view.in_use() * 100 >= u64::from(p) * holdable,
            Threshold::FreeAtMost(p) => view.free * 100 <= u64::from(p) * holdable,
        }
    }
}

/// An asset that breaches one or more thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UtilisationAlert {
    /// The asset's view.
    pub view: AssetView,
    /// Share of holdable licences in use.
    pub used_ratio: f64,
    /// The thresholds it breaches, in the order given.
    pub breached: Vec<Threshold>,
}

/// One asset across every location (token) that holds it: each location once, plus a sum
/// (Intune shows an app once per token and a total).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AcrossLocations {
    /// The asset.
    pub key: AssetKey,
    /// Each location's view, in the order the locations were given.
    pub locations: Vec<(LocationId, AssetView)>,
    /// The sum over the locations.
    pub sum: AssetSum,
}

/// Summed counts of one asset over several locations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetSum {
    /// Sum of owned licences (unlimited locations excluded; see `unlimited`).
    pub owned: u64,
    /// Sum of retired licences.
    pub retired: u64,
    /// Sum of confirmed holdings.
    pub used: u64,
    /// Sum of reservations in flight.
    pub reserved: u64,
    /// Sum of free licences (unlimited locations excluded).
    pub free: u64,
    /// At least one location has it as a free, unlimited asset.
    pub unlimited: bool,
}

/// Groups several locations' asset views by asset: one entry per asset, each location once and
/// a sum. `locations` pairs each location with its views (from [`Ledger::asset_views`]).
pub fn across_locations(locations: &[(LocationId, Vec<AssetView>)]) -> Vec<AcrossLocations> {
    let mut by_key: BTreeMap<&AssetKey, AcrossLocations> = BTreeMap::new();
    for (location, views) in locations {
        for view in views {
            let entry = by_key.entry(&view.key).or_insert_with(|| AcrossLocations {
                key: view.key.clone(),
                locations: Vec::new(),
                sum: AssetSum::default(),
            });
            if entry.locations.iter().any(|(l, _)| l == location) {
                continue; // a location is shown once
            }
            let sum = &mut entry.sum;
            if view.unlimited {
                sum.unlimited = true;
            } else {
                sum.owned += u64::from(view.owned);
                sum.free += view.free;
            }
            sum.retired += u64::from(view.retired);
            sum.used += view.used;
            sum.reserved += u64::from(view.reserved);
            entry.locations.push((location.clone(), view.clone()));
        }
    }
    by_key.into_values().collect()
}

impl Ledger {
    /// The view of one asset.
    pub fn asset_view(&self, key: &AssetKey) -> Option<AssetView> {
        let a = self.present_asset(key).ok()?;
        Some(AssetView::from_slot(&self.assets[a as usize]))
    }

    /// The asset as Apple last described it (properties, supported platforms, counts).
    pub fn asset(&self, key: &AssetKey) -> Option<&vppkit_core::Asset> {
        let a = self.present_asset(key).ok()?;
        Some(&self.assets[a as usize].asset)
    }

    /// Every asset's view, in asset order.
    pub fn asset_views(&self) -> Vec<AssetView> {
        let mut views: Vec<AssetView> = self
            .assets
            .iter()
            .filter(|s| s.present)
            .map(AssetView::from_slot)
            .collect();
        views.sort_by(|a, b| a.key.cmp(&b.key));
        views
    }

    /// The VPP user with this id, if Apple knows it.
    pub fn user(&self, id: &vppkit_core::ClientUserId) -> Option<&VppUser> {
        self.users.get(id)
    }

    /// Every VPP user, by id.
    pub fn users(&self) -> impl Iterator<Item = &VppUser> {
        self.users.values()
    }

    /// The status of one holding, if the holder holds the asset.
    pub fn holding(&self, asset: &AssetKey, holder: &Holder) -> Option<HoldingStatus> {
        let a = self.present_asset(asset).ok()?;
        self.rec(a, holder).map(|r| r.status)
    }

    fn holding_view(&self, a: AssetIdx, holder: &Holder, rec: Rec) -> HoldingView {
        HoldingView {
            asset: self.assets[a as usize].asset.key.clone(),
            holder: holder.clone(),
            status: rec.status,
            event: self.event_of(rec).map(|e| e.event_id),
        }
    }

    /// Everything one holder has.
    pub fn holder_view(&self, holder: &Holder) -> HolderView {
        let mut holdings: Vec<HoldingView> = self
            .holdings_of_holder_idx(holder)
            .map(|(a, rec)| self.holding_view(a, holder, rec))
            .collect();
        holdings.sort_by(|x, y| x.asset.cmp(&y.asset));
        let user = match holder {
            Holder::User(id) => self.users.get(id).cloned(),
            _ => None,
        };
        HolderView {
            holder: holder.clone(),
            user,
            holdings,
        }
    }

    /// The holders of one asset with their statuses (in the order holders were first seen).
    pub fn holders_of(&self, asset: &AssetKey) -> Vec<(Holder, HoldingStatus)> {
        let Ok(a) = self.present_asset(asset) else {
            return Vec::new();
        };
        self.holdings
            .range((a, 0)..=(a, u32::MAX))
            .map(|(&(_, h), rec)| (self.holders[h as usize].clone(), rec.status))
            .collect()
    }

    /// A number that changes whenever what [`Ledger::holders_of`] returns for `asset` may
    /// change; `None` for an asset the ledger does not list.
    ///
    /// Numbers come from one process-wide counter and are never handed out twice, so an
    /// equal version seen on this ledger, a clone of it or a ledger rebuilt from the
    /// journal means equal holders. A planner uses it to skip reading holdings that did not
    /// change (`vppkit_rules::LicenceView::holdings_version`).
    pub fn holdings_version(&self, asset: &AssetKey) -> Option<u64> {
        let a = self.present_asset(asset).ok()?;
        Some(self.assets[a as usize].holdings_version)
    }

    /// Every holding, grouped by asset: one pass for a reader that needs them all.
    pub fn holdings(&self) -> impl Iterator<Item = (&AssetKey, &Holder, HoldingStatus)> {
        self.holdings.iter().map(|(&(a, h), rec)| {
            (
                &self.assets[a as usize].asset.key,
                &self.holders[h as usize],
                rec.status,
            )
        })
    }

    /// How many holdings (of any status) the ledger has.
    pub fn holding_count(&self) -> usize {
        self.holdings.len()
    }

    /// Assets that breach any of the thresholds (for example `UsedAtLeast(50)`, or
    /// `FreeAtMost(20)` and `FreeAtMost(10)`), in asset order. Unlimited assets never do.
    pub fn low_availability(&self, thresholds: &[Threshold]) -> Vec<UtilisationAlert> {
        self.asset_views()
            .into_iter()
            .filter_map(|view| {
                let breached: Vec<Threshold> = thresholds
                    .iter()
                    .copied()
                    .filter(|t| t.breached(&view))
                    .collect();
                (!breached.is_empty()).then(|| UtilisationAlert {
                    used_ratio: view.used_ratio(),
                    view,
                    breached,
                })
            })
            .collect()
    }

    /// Holdings with an Apple operation in flight (reserved or releasing), with their event
    /// when one is recorded: after a restart, what to poll (`event` set) and what to check
    /// with Apple before any resend (`event` empty: the call may or may not have been sent).
    pub fn in_flight(&self) -> Vec<HoldingView> {
        self.holdings
            .iter()
            .filter(|(_, rec)| {
                matches!(
                    rec.status,
                    HoldingStatus::Reserved | HoldingStatus::Releasing
                )
            })
            .map(|(&(a, h), rec)| self.holding_view(a, &self.holders[h as usize], *rec))
            .collect()
    }

    /// The kind of an event the ledger has in flight, if it has it.
    pub fn event_in_flight(&self, event_id: &EventId) -> Option<crate::EventKind> {
        let slot = self.event_index.get(event_id)?;
        self.events.get(slot).map(|e| e.kind)
    }

    /// Untracked licences: holdings Apple has that no action of ours made (adopted on sync or
    /// from a notification).
    pub fn untracked(&self) -> Vec<HoldingView> {
        self.holdings
            .iter()
            .filter(|(_, rec)| rec.status == HoldingStatus::Adopted)
            .map(|(&(a, h), rec)| self.holding_view(a, &self.holders[h as usize], *rec))
            .collect()
    }

    /// Orphans: holdings of devices or users the MDM no longer knows (deleted), reserved ones
    /// included. `is_known` answers from the MDM's directory.
    pub fn orphans(&self, is_known: &dyn Fn(&Holder) -> bool) -> Vec<HoldingView> {
        let mut known: Vec<Option<bool>> = vec![None; self.holders.len()];
        self.holdings
            .iter()
            .filter(|(&(_, h), _)| {
                *known[h as usize].get_or_insert_with(|| !is_known(&self.holders[h as usize]))
            })
            .map(|(&(a, h), rec)| self.holding_view(a, &self.holders[h as usize], *rec))
            .collect()
    }
}
