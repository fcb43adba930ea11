//! A fast, deterministic hasher for the simulator's internal maps (keys are
//! our own packed integers and ids; hash flooding is not a concern in a fake).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hasher with a splitmix64 finish, so packed keys spread well.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl MixHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// The splitmix64 finaliser: a cheap, well-mixing bijection on `u64`.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `out` with bytes derived deterministically from `(a, b)`.
pub(crate) fn derive_bytes(a: u64, b: u64, out: &mut [u8]) {
    let mut state = mix(a ^ mix(b.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    for chunk in out.chunks_mut(8) {
        state = mix(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// A `HashMap` with [`MixHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_deterministic_and_distinct() {
        let mut a = [0u8; 20];
        let mut b = [0u8; 20];
        derive_bytes(1, 2, &mut a);
        derive_bytes(1, 2, &mut b);
        assert_eq!(a, b);
        derive_bytes(1, 3, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn packed_keys_spread() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<MixHasher>::default();
        let mut low = std::collections::HashSet::new();
        for asset in 0u64..64 {
            low.insert(build.hash_one((asset << 32) | 7) & 0xfff);
        }
        assert!(low.len() > 50, "{}", low.len());
    }
}
