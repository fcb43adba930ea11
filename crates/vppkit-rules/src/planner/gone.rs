//! Holders gone from the directory, users to retire, and the plan assembled from every app's output.

use super::*;

impl Run<'_> {
    /// Holders not in the directory (or retired there), per location: revoked when every
    /// revocable licence they hold is ours; otherwise only our licences are disassociated,
    /// asset by asset, and the adopted ones are kept (and reported when the holder is
    /// acted on).
    pub(super) fn gone_holders(&mut self) {
        for li in 0..self.loc_acc.len() {
            let gone = std::mem::take(&mut self.loc_acc[li].gone);
            for (holder, g) in gone {
                let reason = match holder {
                    Holder::Device(_) => ChangeReason::DeviceRemoved,
                    _ => ChangeReason::UserRetired,
                };
                if g.adopted.is_empty() {
                    match holder {
                        Holder::Device(sn) => {
                            self.loc_acc[li].revoke_devices.insert(sn, reason);
                        }
                        Holder::User(id) => {
                            self.loc_acc[li].revoke_users.insert(id, reason);
                        }
                        _ => {}
                    }
                    continue;
                }
                // An own VPP user holding an adopted licence is not retired (retiring
                // releases every revocable licence of the user).
                let mut acted_on = !g.ours.is_empty();
                if let Holder::User(id) = &holder {
                    acted_on |= self.snap.locs[li].users.contains_key(id);
                    self.loc_acc[li].keep_users.insert(id.clone());
                }
                if !g.ours.is_empty() {
                    let kind = if holder.is_device() { 0 } else { CODE_USER };
                    let code = CODE_GONE | kind | self.gone_holders.len() as u64;
                    self.gone_holders.push(holder.clone());
                    for s in g.ours {
                        self.loc_acc[li]
                            .disassociate
                            .push(Item::new(s as u32, code, reason, None));
                    }
                }
                if acted_on {
                    for s in g.adopted {
                        let slot = &self.snap.slots[s];
                        self.blocked.push(Blocked {
                            adam_id: slot.key.adam_id.clone(),
                            holder: holder.clone(),
                            policy: None,
                            reason: BlockReason::AdoptedKept {
                                location: self.snap.locs[li].id.clone(),
                            },
                        });
                    }
                }
            }
        }
    }

    /// Own VPP users that are retired or gone from the directory: retire (their licences
    /// are released per holding by `gone_holders`). Users another MDM created, and own
    /// users still holding an adopted licence, are left alone.
    pub(super) fn users_gone(&mut self) {
        if self.set.release.on_user_retired != GoneRelease::Release {
            return;
        }
        for (li, loc) in self.snap.locs.iter().enumerate() {
            if !loc.writable {
                continue;
            }
            for id in &loc.active_users {
                let gone = self.dir.user(id).is_none_or(|u| u.retired);
                if gone
                    && !self.loc_acc[li].keep_users.contains(id)
                    && self.view.is_own_user(&loc.id, id)
                {
                    self.loc_acc[li].retire.insert(id.clone());
                }
            }
        }
    }

    /// Gone holders and users across every app, then the plan.
    pub(crate) fn finish(mut self) -> Plan {
        self.gone_holders();
        self.users_gone();
        let limits = self.planner.limits;
        let mut locations = Vec::new();
        let accs = std::mem::take(&mut self.loc_acc);
        for (li, acc) in accs.into_iter().enumerate() {
            let mut lp = LocationPlan::new(self.snap.locs[li].id.clone());
            lp.create_users = user_batches(acc.create.into_values().collect(), &limits);
            lp.invitations = self
                .invitations
                .iter()
                .filter(|((l, _), _)| *l == li)
                .map(|(_, inv)| inv.clone())
                .collect();
            lp.associate = asset_batches(acc.associate, &limits, &self);
            lp.disassociate = asset_batches(acc.disassociate, &limits, &self);
            lp.revoke = revoke_batches(&acc.revoke_devices, &acc.revoke_users, &limits);
            lp.retire_users = retire_batches(acc.retire.into_iter().collect(), &limits);
            if !lp.is_empty() {
                locations.push(lp);
            }
        }
        // Sort the keys' positions, then permute the commands in place (no second copy of
        // them).
        let mut perm = sorted_positions(&std::mem::take(&mut self.command_keys), |k| *k);
        let mut commands = std::mem::take(&mut self.commands);
        const DONE: u32 = u32::MAX;
        for start in 0..perm.len() {
            let mut j = start;
            while perm[j] != DONE {
                let k = perm[j] as usize;
                perm[j] = DONE;
                if k == start {
                    break;
                }
                commands.swap(j, k);
                j = k;
            }
        }
        let mut blocked = self.blocked;
        blocked.sort_by(|a, b| (&a.adam_id, &a.holder).cmp(&(&b.adam_id, &b.holder)));
        let mut pending = self.pending;
        pending.sort_by(|a, b| {
            (&a.location, &a.asset, &a.holder).cmp(&(&b.location, &b.asset, &b.holder))
        });
        Plan {
            locations,
            commands,
            waitlisted: self.waitlisted,
            blocked,
            pending_releases: pending,
            invalid_policies: self.violations,
        }
    }
}

/// The positions of `items` in the order of their keys (ties in position order): `out[j]`
/// is the position of the `j`th smallest. Keys are (device rank, app, kind): counted into
/// one bucket per device rank, then each bucket sorted, which needs no copy of the keys (a
/// first plan has a million commands) when the ranks are dense; otherwise a plain sort of
/// (key, position) pairs.
pub(super) fn sorted_positions<T>(items: &[T], key: impl Fn(&T) -> (u32, u32, u8)) -> Vec<u32> {
    let n = items.len();
    let ranks = items
        .iter()
        .map(|t| key(t).0 as usize + 1)
        .max()
        .unwrap_or(0);
    if ranks > n.saturating_mul(4).max(1024) {
        let mut order: Vec<((u32, u32, u8), u32)> = items
            .iter()
            .enumerate()
            .map(|(i, t)| (key(t), i as u32))
            .collect();
        order.sort_unstable();
        return order.into_iter().map(|(_, i)| i).collect();
    }
    // start[r]: where rank r's bucket begins.
    let mut start = vec![0u32; ranks + 1];
    for t in items {
        start[key(t).0 as usize + 1] += 1;
    }
    for r in 0..ranks {
        start[r + 1] += start[r];
    }
    let mut next = start.clone();
    let mut out = vec![0u32; n];
    for (i, t) in items.iter().enumerate() {
        let r = key(t).0 as usize;
        out[next[r] as usize] = i as u32;
        next[r] += 1;
    }
    for r in 0..ranks {
        let bucket = &mut out[start[r] as usize..start[r + 1] as usize];
        if bucket.len() > 1 {
            bucket.sort_unstable_by_key(|&i| (key(&items[i as usize]), i));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sorted_positions;

    /// Both ways (dense ranks counted into buckets, sparse ranks sorted) give the order of
    /// a plain sort of (key, position).
    #[test]
    fn sorted_positions_is_a_sort_of_key_and_position() {
        let mut seed = 7u64;
        let mut rand = move |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for (n, rank_span) in [
            (0, 1),
            (1, 1),
            (50, 5),
            (2_000, 300),
            (300, 4_000_000),
            (5_000, 40),
        ] {
            let keys: Vec<(u32, u32, u8)> = (0..n)
                .map(|_| (rand(rank_span) as u32, rand(6) as u32, rand(3) as u8))
                .collect();
            let mut expected: Vec<((u32, u32, u8), u32)> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i as u32))
                .collect();
            expected.sort();
            let expected: Vec<u32> = expected.into_iter().map(|(_, i)| i).collect();
            assert_eq!(
                sorted_positions(&keys, |k| *k),
                expected,
                "n {n}, ranks {rank_span}"
            );
        }
    }
}
