//! The assignment store: a million `(asset, holder)` pairs in a few tens of MB.
//!
//! Assets and holders are dense `u32` indexes (holders: device ids, or user ids
//! with [`USER_BIT`] set). Each asset keeps the list of its holders (the order
//! pages are served in), each holder the list of its assets, and one map gives
//! the position of a pair in its asset's list so removal is O(1).

use crate::hash::FastMap;

/// Set on a holder code that names a user (clear: a device).
pub(crate) const USER_BIT: u32 = 1 << 31;

/// Packs `(asset, holder)` into one key.
#[inline]
pub(crate) fn pack(asset: u32, holder: u32) -> u64 {
    (u64::from(asset) << 32) | u64::from(holder)
}

/// Unpacks a key made by [`pack`].
#[inline]
pub(crate) fn unpack(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// Every assignment of a location.
#[derive(Debug, Default)]
pub(crate) struct AssignmentStore {
    by_asset: Vec<Vec<u32>>,
    by_device: Vec<Vec<u32>>,
    by_user: Vec<Vec<u32>>,
    pos: FastMap<u64, u32>,
}

impl AssignmentStore {
    /// A store with room for `n` assignments.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            pos: FastMap::with_capacity_and_hasher(n, Default::default()),
            ..Self::default()
        }
    }

    /// Makes room for asset index `asset`.
    pub(crate) fn ensure_asset(&mut self, asset: u32) {
        if self.by_asset.len() <= asset as usize {
            self.by_asset.resize_with(asset as usize + 1, Vec::new);
        }
    }

    /// Number of assignments.
    pub(crate) fn len(&self) -> usize {
        self.pos.len()
    }

    /// Whether the pair exists.
    #[inline]
    pub(crate) fn contains(&self, asset: u32, holder: u32) -> bool {
        self.pos.contains_key(&pack(asset, holder))
    }

    /// Adds the pair; `false` when it already existed.
    pub(crate) fn insert(&mut self, asset: u32, holder: u32) -> bool {
        let key = pack(asset, holder);
        if self.pos.contains_key(&key) {
            return false;
        }
        self.ensure_asset(asset);
        let list = &mut self.by_asset[asset as usize];
        let at = u32::try_from(list.len()).expect("fewer than 2^32 holders per asset");
        list.push(holder);
        self.pos.insert(key, at);
        let side = self.holder_list_mut(holder);
        side.push(asset);
        true
    }

    /// Removes the pair; `false` when it did not exist.
    pub(crate) fn remove(&mut self, asset: u32, holder: u32) -> bool {
        let Some(at) = self.pos.remove(&pack(asset, holder)) else {
            return false;
        };
        let list = &mut self.by_asset[asset as usize];
        list.swap_remove(at as usize);
        if let Some(&moved) = list.get(at as usize) {
            self.pos.insert(pack(asset, moved), at);
        }
        let side = self.holder_list_mut(holder);
        if let Some(i) = side.iter().position(|a| *a == asset) {
            side.swap_remove(i);
        }
        true
    }

    /// Removes every assignment of `asset`, returning the holders it had.
    pub(crate) fn clear_asset(&mut self, asset: u32) -> Vec<u32> {
        let holders: Vec<u32> = self.asset_holders(asset).to_vec();
        for h in &holders {
            self.remove(asset, *h);
        }
        holders
    }

    fn holder_list_mut(&mut self, holder: u32) -> &mut Vec<u32> {
        let (lists, idx) = if holder & USER_BIT != 0 {
            (&mut self.by_user, (holder & !USER_BIT) as usize)
        } else {
            (&mut self.by_device, holder as usize)
        };
        if lists.len() <= idx {
            lists.resize_with(idx + 1, Vec::new);
        }
        &mut lists[idx]
    }

    /// The holders of `asset`, in page order.
    #[inline]
    pub(crate) fn asset_holders(&self, asset: u32) -> &[u32] {
        self.by_asset.get(asset as usize).map_or(&[], Vec::as_slice)
    }

    /// The assets of a holder.
    pub(crate) fn holder_assets(&self, holder: u32) -> &[u32] {
        let (lists, idx) = if holder & USER_BIT != 0 {
            (&self.by_user, (holder & !USER_BIT) as usize)
        } else {
            (&self.by_device, holder as usize)
        };
        lists.get(idx).map_or(&[], Vec::as_slice)
    }

    /// Approximate heap bytes used (for the memory figures).
    pub(crate) fn heap_bytes(&self) -> usize {
        let lists = |v: &Vec<Vec<u32>>| {
            v.capacity() * size_of::<Vec<u32>>() + v.iter().map(|l| l.capacity() * 4).sum::<usize>()
        };
        // hashbrown: one control byte plus the entry per bucket.
        let buckets = (self.pos.capacity() * 8 / 7).next_power_of_two();
        lists(&self.by_asset) + lists(&self.by_device) + lists(&self.by_user) + buckets * 17
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keep_indexes_consistent() {
        let mut s = AssignmentStore::default();
        assert!(s.insert(0, 1));
        assert!(s.insert(0, 2));
        assert!(s.insert(0, 3 | USER_BIT));
        assert!(s.insert(1, 2));
        assert!(!s.insert(0, 2));
        assert_eq!(s.len(), 4);
        assert!(s.remove(0, 1));
        assert!(!s.remove(0, 1));
        assert!(s.contains(0, 2) && s.contains(0, 3 | USER_BIT));
        // The moved holder can still be removed (its position was updated).
        assert!(s.remove(0, 3 | USER_BIT));
        assert_eq!(s.asset_holders(0), &[2]);
        assert_eq!(s.holder_assets(2), &[0, 1]);
        assert!(s.holder_assets(3 | USER_BIT).is_empty());
        assert_eq!(s.clear_asset(1), vec![2]);
        assert_eq!(s.holder_assets(2), &[0]);
        assert_eq!(unpack(pack(7, 9 | USER_BIT)), (7, 9 | USER_BIT));
    }
}
