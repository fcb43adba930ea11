//! The hash map of the planner's indexes and per-app scratch: keyed by ids and integers,
//! looked up millions of times a plan, with foldhash (hashbrown's default hasher, seeded per
//! process) instead of std's SipHash.

/// A `HashMap` hashed with foldhash.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
