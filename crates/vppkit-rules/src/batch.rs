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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vppkit_core::{AssetKey, ClientUserId, Holder, SerialNumber};

use crate::ids::PolicyId;
use crate::limits::Limits;
use crate::plan::{
    AssetBatch, BatchTargets, ChangeReason, RetireBatch, RevokeBatch, UserBatch, UserRegistration,
};

/// One wanted change of one holding.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) asset: AssetKey,
    pub(crate) holder: Holder,
    pub(crate) reason: ChangeReason,
    pub(crate) policy: Option<PolicyId>,
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Packs items into associate or disassociate requests.
pub(crate) fn asset_batches(items: Vec<Item>, limits: &Limits) -> Vec<AssetBatch> {
    // Group by (reason, holder kind): a request has one reason and one kind of target.
    let mut groups: BTreeMap<(ChangeReason, bool), Vec<Item>> = BTreeMap::new();
    for it in items {
        groups
            .entry((it.reason, it.holder.is_device()))
            .or_default()
            .push(it);
    }
    let mut out = Vec::new();
    for ((reason, devices), items) in groups.into_iter().rev() {
        let max_targets = if devices {
            limits.max_serial_numbers
        } else {
            limits.max_client_user_ids
        };
        pack(
            items,
            reason,
            devices,
            max_targets,
            limits.max_assets,
            &mut out,
        );
    }
    out
}

fn pack(
    items: Vec<Item>,
    reason: ChangeReason,
    devices: bool,
    max_targets: usize,
    max_assets: usize,
    out: &mut Vec<AssetBatch>,
) {
    // Intern assets and holders in sorted order so indices compare like the values.
    let assets: Vec<AssetKey> = items
        .iter()
        .map(|i| &i.asset)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let holders: Vec<Holder> = items
        .iter()
        .map(|i| &i.holder)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let asset_ix: HashMap<&AssetKey, u32> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a, i as u32))
        .collect();
    let holder_ix: HashMap<&Holder, u32> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| (h, i as u32))
        .collect();

    let mut per_holder: Vec<Vec<u32>> = vec![Vec::new(); holders.len()];
    let mut per_asset: Vec<Vec<u32>> = vec![Vec::new(); assets.len()];
    let mut policy_of: HashMap<(u32, u32), &PolicyId> = HashMap::new();
    for it in &items {
        let a = asset_ix[&it.asset];
        let h = holder_ix[&it.holder];
        per_holder[h as usize].push(a);
        per_asset[a as usize].push(h);
        if let Some(p) = &it.policy {
            policy_of.insert((a, h), p);
        }
    }
    for v in per_holder.iter_mut().chain(per_asset.iter_mut()) {
        v.sort_unstable();
        v.dedup();
    }

    // Packing by holder: asset set -> holders.
    let mut by_holder: BTreeMap<&[u32], Vec<u32>> = BTreeMap::new();
    for (h, set) in per_holder.iter().enumerate() {
        by_holder.entry(set.as_slice()).or_default().push(h as u32);
    }
    // Packing by asset: holder set -> assets.
    let mut by_asset: BTreeMap<&[u32], Vec<u32>> = BTreeMap::new();
    for (a, set) in per_asset.iter().enumerate() {
        by_asset.entry(set.as_slice()).or_default().push(a as u32);
    }
    let cost = |rects: &mut dyn Iterator<Item = (usize, usize)>| -> usize {
        rects
            .map(|(na, nh)| ceil_div(na, max_assets) * ceil_div(nh, max_targets))
            .sum()
    };
    let cost_holder = cost(&mut by_holder.iter().map(|(a, h)| (a.len(), h.len())));
    let cost_asset = cost(&mut by_asset.iter().map(|(h, a)| (a.len(), h.len())));

    let rects: Vec<(Vec<u32>, Vec<u32>)> = if cost_asset < cost_holder {
        by_asset.into_iter().map(|(h, a)| (a, h.to_vec())).collect()
    } else {
        by_holder
            .into_iter()
            .map(|(a, h)| (a.to_vec(), h))
            .collect()
    };
    for (rect_assets, rect_holders) in rects {
        for achunk in rect_assets.chunks(max_assets) {
            for hchunk in rect_holders.chunks(max_targets) {
                let mut policies = BTreeSet::new();
                for &a in achunk {
                    for &h in hchunk {
                        if let Some(p) = policy_of.get(&(a, h)) {
                            policies.insert(*p);
                        }
                    }
                }
                let targets = if devices {
                    BatchTargets::SerialNumbers(
                        hchunk
                            .iter()
                            .filter_map(|&h| match &holders[h as usize] {
                                Holder::Device(s) => Some(s.clone()),
                                _ => None,
                            })
                            .collect(),
                    )
                } else {
                    BatchTargets::ClientUserIds(
                        hchunk
                            .iter()
                            .filter_map(|&h| match &holders[h as usize] {
                                Holder::User(u) => Some(u.clone()),
                                _ => None,
                            })
                            .collect(),
                    )
                };
                out.push(AssetBatch {
                    assets: achunk.iter().map(|&a| assets[a as usize].clone()).collect(),
                    targets,
                    reason,
                    policies: policies.into_iter().cloned().collect(),
                });
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

    fn key(n: u64) -> AssetKey {
        AssetKey::new(AdamId::from(n), PricingParam::Stdq)
    }

    fn dev(i: usize) -> Holder {
        Holder::Device(SerialNumber::new(format!("S{i:06}")).unwrap())
    }

    fn item(a: u64, h: Holder) -> Item {
        Item {
            asset: key(a),
            holder: h,
            reason: ChangeReason::Policy,
            policy: Some(PolicyId::new("p").unwrap()),
        }
    }

    #[test]
    fn one_app_to_many_devices_is_split_by_serial_limit() {
        let items: Vec<Item> = (0..2500).map(|i| item(1, dev(i))).collect();
        let b = asset_batches(items, &Limits::apple());
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].targets.len(), 1000);
        assert_eq!(b[2].targets.len(), 500);
        assert_eq!(b.iter().map(AssetBatch::task_count).sum::<usize>(), 2500);
    }

    #[test]
    fn same_asset_sets_share_requests() {
        // 30 assets to the same 10 devices: 2 requests (25 + 5 assets).
        let mut items = Vec::new();
        for a in 0..30 {
            for d in 0..10 {
                items.push(item(a + 1, dev(d)));
            }
        }
        let b = asset_batches(items, &Limits::apple());
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].assets.len(), 25);
        assert_eq!(b[1].assets.len(), 5);
    }

    #[test]
    fn packing_by_asset_wins_when_holder_sets_differ() {
        // Asset 1 to devices 0..100; asset 2 to devices 50..150: by holder gives 3 rectangles,
        // by asset gives 2.
        let mut items = Vec::new();
        for d in 0..100 {
            items.push(item(1, dev(d)));
        }
        for d in 50..150 {
            items.push(item(2, dev(d)));
        }
        let b = asset_batches(items, &Limits::apple());
        assert_eq!(b.len(), 2);
        let total: usize = b.iter().map(AssetBatch::task_count).sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn devices_and_users_never_share_a_request() {
        let items = vec![
            item(1, dev(1)),
            item(1, Holder::User(ClientUserId::new("u1").unwrap())),
        ];
        let b = asset_batches(items, &Limits::apple());
        assert_eq!(b.len(), 2);
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
