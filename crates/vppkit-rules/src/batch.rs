//! Grouping holdings into the fewest Apple requests.
//!
//! An associate or disassociate request applies every asset to every target, so a request
//! can only carry a rectangle `assets x targets` of wanted changes. Two packings are
//! computed and the one with fewer requests wins (ties: by holder):
//!
//! - **by holder**: holders wanting exactly the same set of assets share requests;
//! - **by asset**: assets wanted by exactly the same set of holders share requests.
//!
//! Each rectangle is then cut by `maxAssets` and `maxSerialNumbers` / `maxClientUserIds`.
//! One app to 100,000 devices is `ceil(100000 / 1000)` = 100 requests.

use std::collections::{BTreeMap, BTreeSet};

use vppkit_core::{AssetKey, ClientUserId, Holder, SerialNumber};

use crate::ids::PolicyId;
use crate::limits::Limits;
use crate::plan::{
    AssetBatch, BatchTargets, ChangeReason, RetireBatch, RevokeBatch, UserBatch, UserRegistration,
};

/// One wanted change of one holding, in the planner's integer ids: `asset` is a slot (its
/// order is the asset key order within a location), the holder a code whose order is the
/// holder order (devices, then users, each by id), the policy a policy index. Packed into
/// 16 bytes (a first plan holds a million of them): the holder code's flag bits apart from
/// its 32-bit index, no policy as `u32::MAX`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) asset: u32,
    holder_index: u32,
    policy: u32,
    holder_flags: u8,
    pub(crate) reason: ChangeReason,
}

const NO_POLICY: u32 = u32::MAX;

impl Item {
    pub(crate) fn new(asset: u32, holder: u64, reason: ChangeReason, policy: Option<u32>) -> Self {
        debug_assert!(
            holder >> 32 <= u64::from(u8::MAX),
            "holder code flags fit a byte"
        );
        debug_assert!(policy != Some(NO_POLICY));
        Self {
            asset,
            holder_index: holder as u32,
            policy: policy.unwrap_or(NO_POLICY),
            holder_flags: (holder >> 32) as u8,
            reason,
        }
    }

    /// The holder code.
    pub(crate) fn holder(&self) -> u64 {
        u64::from(self.holder_flags) << 32 | u64::from(self.holder_index)
    }

    /// The policy index, if a policy asked for the change.
    pub(crate) fn policy(&self) -> Option<u32> {
        (self.policy != NO_POLICY).then_some(self.policy)
    }
}

/// Turns the integer ids back into values.
pub(crate) trait Resolve {
    fn asset(&self, slot: u32) -> AssetKey;
    fn holder(&self, code: u64) -> Holder;
    fn policy(&self, index: u32) -> PolicyId;
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Holder code bit: a user (else a device).
pub(crate) const CODE_USER: u64 = 1 << 32;
/// Holder code bit: a holder that is not in the directory (retired or gone); the low 32
/// bits then index the planner's table of such holders, in holder order.
pub(crate) const CODE_GONE: u64 = 1 << 33;

/// Whether a holder code is a device.
pub(crate) fn code_is_device(code: u64) -> bool {
    code & CODE_USER == 0
}

/// Packs items into associate or disassociate requests.
pub(crate) fn asset_batches(
    mut items: Vec<Item>,
    limits: &Limits,
    resolve: &dyn Resolve,
) -> Vec<AssetBatch> {
    // A request has one reason and one kind of target: Policy first, devices before users.
    items.sort_unstable_by_key(|i| (i.reason, !code_is_device(i.holder()), i.holder(), i.asset));
    items.dedup_by_key(|i| (i.holder(), i.asset));
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let (reason, devices) = (items[start].reason, code_is_device(items[start].holder()));
        let end = start
            + items[start..]
                .iter()
                .take_while(|i| i.reason == reason && code_is_device(i.holder()) == devices)
                .count();
        let max_targets = if devices {
            limits.max_serial_numbers
        } else {
            limits.max_client_user_ids
        };
        pack(
            &items[start..end],
            reason,
            devices,
            max_targets,
            limits.max_assets,
            resolve,
            &mut out,
        );
        start = end;
    }
    out
}

/// `items` are sorted by (holder, asset) and unique.
fn pack(
    items: &[Item],
    reason: ChangeReason,
    devices: bool,
    max_targets: usize,
    max_assets: usize,
    resolve: &dyn Resolve,
    out: &mut Vec<AssetBatch>,
) {
    // Packing by holder: each holder's run of assets is its asset set.
    let assets_flat: Vec<u32> = items.iter().map(|i| i.asset).collect();
    let mut by_holder: BTreeMap<&[u32], Vec<(u64, usize)>> = BTreeMap::new();
    let mut i = 0;
    while i < items.len() {
        let h = items[i].holder();
        let n = items[i..].iter().take_while(|x| x.holder() == h).count();
        by_holder
            .entry(&assets_flat[i..i + n])
            .or_default()
            .push((h, i));
        i += n;
    }
    // Packing by asset: each asset's run of holders is its holder set.
    let mut by_asset_order: Vec<usize> = (0..items.len()).collect();
    by_asset_order.sort_unstable_by_key(|&k| (items[k].asset, items[k].holder()));
    let holders_flat: Vec<u64> = by_asset_order.iter().map(|&k| items[k].holder()).collect();
    let mut by_asset: BTreeMap<&[u64], Vec<(u32, usize)>> = BTreeMap::new();
    let mut i = 0;
    while i < by_asset_order.len() {
        let a = items[by_asset_order[i]].asset;
        let n = by_asset_order[i..]
            .iter()
            .take_while(|&&k| items[k].asset == a)
            .count();
        by_asset
            .entry(&holders_flat[i..i + n])
            .or_default()
            .push((a, i));
        i += n;
    }
    let cost_holder: usize = by_holder
        .iter()
        .map(|(a, h)| ceil_div(a.len(), max_assets) * ceil_div(h.len(), max_targets))
        .sum();
    let cost_asset: usize = by_asset
        .iter()
        .map(|(h, a)| ceil_div(a.len(), max_assets) * ceil_div(h.len(), max_targets))
        .sum();

    let mut emit = |assets: &[u32], holders: &[u64], policies: BTreeSet<u32>| {
        let targets = if devices {
            BatchTargets::SerialNumbers(
                holders
                    .iter()
                    .filter_map(|&h| match resolve.holder(h) {
                        Holder::Device(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            BatchTargets::ClientUserIds(
                holders
                    .iter()
                    .filter_map(|&h| match resolve.holder(h) {
                        Holder::User(u) => Some(u),
                        _ => None,
                    })
                    .collect(),
            )
        };
        out.push(AssetBatch {
            assets: assets.iter().map(|&a| resolve.asset(a)).collect(),
            targets,
            reason,
            policies: policies.into_iter().map(|p| resolve.policy(p)).collect(),
        });
    };

    if cost_asset < cost_holder {
        for (holders, assets) in &by_asset {
            let asset_ids: Vec<u32> = assets.iter().map(|&(a, _)| a).collect();
            for (ac, achunk) in asset_ids.chunks(max_assets).enumerate() {
                for (hc, hchunk) in holders.chunks(max_targets).enumerate() {
                    let mut policies = BTreeSet::new();
                    for &(_, run) in &assets[ac * max_assets..ac * max_assets + achunk.len()] {
                        let from = run + hc * max_targets;
                        for &k in &by_asset_order[from..from + hchunk.len()] {
                            policies.extend(items[k].policy());
                        }
                    }
                    emit(achunk, hchunk, policies);
                }
            }
        }
    } else {
        for (assets, holders) in &by_holder {
            let holder_ids: Vec<u64> = holders.iter().map(|&(h, _)| h).collect();
            for (ac, achunk) in assets.chunks(max_assets).enumerate() {
                for (hc, hchunk) in holder_ids.chunks(max_targets).enumerate() {
                    let mut policies = BTreeSet::new();
                    for &(_, run) in &holders[hc * max_targets..hc * max_targets + hchunk.len()] {
                        let from = run + ac * max_assets;
                        for it in &items[from..from + achunk.len()] {
                            policies.extend(it.policy());
                        }
                    }
                    emit(achunk, hchunk, policies);
                }
            }
        }
    }
}

/// Revoke requests: serial numbers, then client user ids, each chunked by its limit.
pub(crate) fn revoke_batches(
    serials: &BTreeMap<SerialNumber, ChangeReason>,
    users: &BTreeMap<ClientUserId, ChangeReason>,
    limits: &Limits,
) -> Vec<RevokeBatch> {
    let mut out = Vec::new();
    let mut by_reason: BTreeMap<ChangeReason, Vec<SerialNumber>> = BTreeMap::new();
    for (s, r) in serials {
        by_reason.entry(*r).or_default().push(s.clone());
    }
    for (reason, v) in by_reason {
        for c in v.chunks(limits.max_revoke_serial_numbers) {
            out.push(RevokeBatch {
                targets: BatchTargets::SerialNumbers(c.to_vec()),
                reason,
            });
        }
    }
    let mut by_reason: BTreeMap<ChangeReason, Vec<ClientUserId>> = BTreeMap::new();
    for (u, r) in users {
        by_reason.entry(*r).or_default().push(u.clone());
    }
    for (reason, v) in by_reason {
        for c in v.chunks(limits.max_revoke_client_user_ids) {
            out.push(RevokeBatch {
                targets: BatchTargets::ClientUserIds(c.to_vec()),
                reason,
            });
        }
    }
    out
}

/// `users/create` requests.
pub(crate) fn user_batches(users: Vec<UserRegistration>, limits: &Limits) -> Vec<UserBatch> {
    users
        .chunks(limits.max_users)
        .map(|c| UserBatch { users: c.to_vec() })
        .collect()
}

/// `users/retire` requests.
pub(crate) fn retire_batches(users: Vec<ClientUserId>, limits: &Limits) -> Vec<RetireBatch> {
    users
        .chunks(limits.max_users)
        .map(|c| RetireBatch {
            client_user_ids: c.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam};

    struct Ids;

    impl Resolve for Ids {
        fn asset(&self, slot: u32) -> AssetKey {
            AssetKey::new(AdamId::from(u64::from(slot) + 1), PricingParam::Stdq)
        }
        fn holder(&self, code: u64) -> Holder {
            if code_is_device(code) {
                Holder::Device(SerialNumber::new(format!("S{code:06}")).unwrap())
            } else {
                Holder::User(ClientUserId::new(format!("u{}", code & 0xFFFF_FFFF)).unwrap())
            }
        }
        fn policy(&self, index: u32) -> PolicyId {
            PolicyId::new(format!("p{index}")).unwrap()
        }
    }

    fn item(a: u32, h: u64) -> Item {
        Item::new(a, h, ChangeReason::Policy, Some(0))
    }

    /// The packed item gives back the holder code (flag bits and index) and the policy.
    #[test]
    fn an_item_keeps_its_holder_code_and_policy() {
        for code in [
            0,
            7,
            u64::from(u32::MAX),
            CODE_USER | 42,
            CODE_GONE | CODE_USER | 3,
        ] {
            for policy in [None, Some(0), Some(u32::MAX - 1)] {
                let i = Item::new(9, code, ChangeReason::GraceExpired, policy);
                assert_eq!((i.asset, i.holder(), i.policy()), (9, code, policy));
            }
        }
        assert_eq!(size_of::<Item>(), 16);
    }

    fn batches(items: Vec<Item>) -> Vec<AssetBatch> {
        asset_batches(items, &Limits::apple(), &Ids)
    }

    #[test]
    fn one_app_to_many_devices_is_split_by_serial_limit() {
        let b = batches((0..2500).map(|i| item(0, i)).collect());
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].targets.len(), 1000);
        assert_eq!(b[2].targets.len(), 500);
        assert_eq!(b.iter().map(AssetBatch::task_count).sum::<usize>(), 2500);
        assert_eq!(b[0].policies, vec![PolicyId::new("p0").unwrap()]);
    }

    #[test]
    fn same_asset_sets_share_requests() {
        // 30 assets to the same 10 devices: 2 requests (25 + 5 assets).
        let mut items = Vec::new();
        for a in 0..30 {
            for d in 0..10 {
                items.push(item(a, d));
            }
        }
        let b = batches(items);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].assets.len(), 25);
        assert_eq!(b[1].assets.len(), 5);
        assert_eq!(b[0].task_count() + b[1].task_count(), 300);
    }

    #[test]
    fn packing_by_asset_wins_when_holder_sets_differ() {
        // Asset 0 to devices 0..100; asset 1 to devices 50..150: by holder gives 3 rectangles,
        // by asset gives 2.
        let mut items: Vec<Item> = (0..100).map(|d| item(0, d)).collect();
        items.extend((50..150).map(|d| item(1, d)));
        let b = batches(items);
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().map(AssetBatch::task_count).sum::<usize>(), 200);
    }

    #[test]
    fn devices_and_users_never_share_a_request_and_policies_are_kept() {
        let u = Item::new(0, 1 << 32, ChangeReason::Policy, Some(7));
        let b = batches(vec![item(0, 1), u]);
        assert_eq!(b.len(), 2);
        assert!(matches!(b[0].targets, BatchTargets::SerialNumbers(_)));
        assert_eq!(b[1].policies, vec![PolicyId::new("p7").unwrap()]);
    }

    #[test]
    fn every_item_lands_in_exactly_one_request() {
        // A staircase of asset sets: whichever packing wins, the tasks are exactly the items.
        let mut items = Vec::new();
        for d in 0..300u64 {
            for a in 0..(d % 7) as u32 {
                items.push(item(a, d));
            }
        }
        let want: BTreeSet<(AssetKey, Holder)> = items
            .iter()
            .map(|i| (Ids.asset(i.asset), Ids.holder(i.holder())))
            .collect();
        let b = batches(items);
        let got: Vec<(AssetKey, Holder)> = b.iter().flat_map(AssetBatch::holdings).collect();
        assert_eq!(got.len(), want.len());
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    }

    #[test]
    fn revoke_and_user_chunks() {
        let serials: BTreeMap<SerialNumber, ChangeReason> = (0..250)
            .map(|i| {
                (
                    SerialNumber::new(format!("S{i:04}")).unwrap(),
                    ChangeReason::DeviceRemoved,
                )
            })
            .collect();
        let b = revoke_batches(&serials, &BTreeMap::new(), &Limits::apple());
        assert_eq!(
            b.iter().map(|b| b.targets.len()).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let users: Vec<ClientUserId> = (0..101)
            .map(|i| ClientUserId::new(format!("u{i}")).unwrap())
            .collect();
        assert_eq!(retire_batches(users, &Limits::apple()).len(), 2);
    }
}
