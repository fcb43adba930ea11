//! String interning: serial numbers and client user ids become dense `u32`s.

use crate::hash::FastMap;

/// Maps strings to dense `u32` ids and back.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    index: FastMap<Box<str>, u32>,
}

impl Interner {
    /// An interner with room for `n` names.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            names: Vec::with_capacity(n),
            index: FastMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// The id of `name`, if known.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The id of `name`, adding it when new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^31 ids");
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    /// The name of `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// How many names are known.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut i = Interner::default();
        let a = i.intern("C02000000000");
        let b = i.intern("DMPZQ1ABCDEF");
        assert_eq!(i.intern("C02000000000"), a);
        assert_ne!(a, b);
        assert_eq!(i.name(b), "DMPZQ1ABCDEF");
        assert_eq!(i.get("nope"), None);
        assert_eq!(i.len(), 2);
    }
}
