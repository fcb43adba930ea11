//! Compact change logs behind `versionId` / `sinceVersionId`.
//!
//! A log is one flat `Vec` of changed keys plus one `u32` mark per version, so
//! a million changes cost 8 MB (assignments, packed `u64` keys) or 4 MB (users).

use uuid::Uuid;

use crate::hash::mix;

/// Which endpoint family a version id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `GET assets`.
    Assets = 1,
    /// `GET assignments`.
    Assignments = 2,
    /// `GET users`.
    Users = 3,
}

/// The keys changed by each version.
#[derive(Debug)]
pub(crate) struct ChangeLog<K> {
    log: Vec<K>,
    /// `marks[v]` = `log.len()` when version `v` became current.
    marks: Vec<u32>,
}

impl<K: Copy> Default for ChangeLog<K> {
    fn default() -> Self {
        Self {
            log: Vec::new(),
            marks: vec![0],
        }
    }
}

impl<K: Copy> ChangeLog<K> {
    /// The current version number.
    pub(crate) fn current(&self) -> u32 {
        (self.marks.len() - 1) as u32
    }

    /// Records a key changed by the version being built.
    pub(crate) fn record(&mut self, key: K) {
        self.log.push(key);
    }

    /// Makes the recorded changes a new version and returns it.
    pub(crate) fn commit(&mut self) -> u32 {
        self.marks
            .push(u32::try_from(self.log.len()).expect("fewer than 2^32 changes"));
        self.current()
    }

    /// The keys changed after version `v` (recorded and committed), or `None`
    /// for a version that does not exist yet.
    pub(crate) fn since(&self, v: u32) -> Option<&[K]> {
        let start = *self.marks.get(v as usize)? as usize;
        let end = *self.marks.last().unwrap_or(&0) as usize;
        Some(&self.log[start..end])
    }

    /// Bytes used by the log (for the ground-truth read-out and benches).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.log.capacity() * size_of::<K>() + self.marks.capacity() * 4
    }
}

fn family_word(salt: u64, family: Family) -> u64 {
    mix(salt ^ (family as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The `versionId` string of `version` in a location (`salt`) and family: a
/// UUID that encodes the version number, so no map is needed to read it back.
pub(crate) fn version_id(salt: u64, family: Family, version: u32) -> String {
    let hi = family_word(salt, family);
    let lo = mix(hi) ^ u64::from(version);
    Uuid::from_u64_pair(hi, lo).hyphenated().to_string()
}

/// Reads a `versionId` back; `None` when it is not one of this family's ids.
pub(crate) fn parse_version_id(salt: u64, family: Family, text: &str) -> Option<u32> {
    let uuid = Uuid::parse_str(text.trim()).ok()?;
    let (hi, lo) = uuid.as_u64_pair();
    if hi != family_word(salt, family) {
        return None;
    }
    u32::try_from(lo ^ mix(hi)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_returns_later_changes() {
        let mut log = ChangeLog::<u64>::default();
        assert_eq!(log.current(), 0);
        log.record(1);
        log.record(2);
        assert_eq!(log.commit(), 1);
        log.record(3);
        assert_eq!(log.commit(), 2);
        assert_eq!(log.since(0).unwrap(), &[1, 2, 3]);
        assert_eq!(log.since(1).unwrap(), &[3]);
        assert!(log.since(2).unwrap().is_empty());
        assert!(log.since(3).is_none());
    }

    #[test]
    fn version_ids_round_trip_per_family_and_salt() {
        let id = version_id(42, Family::Assignments, 17);
        assert_eq!(id.len(), 36);
        assert_eq!(parse_version_id(42, Family::Assignments, &id), Some(17));
        assert_eq!(parse_version_id(42, Family::Users, &id), None);
        assert_eq!(parse_version_id(43, Family::Assignments, &id), None);
        assert_eq!(parse_version_id(42, Family::Assignments, "nope"), None);
        assert_ne!(id, version_id(42, Family::Assignments, 18));
    }
}
