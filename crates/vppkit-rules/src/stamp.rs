//! Stamps: numbers from one process-wide counter that tell "the same content" cheaply.

/// A number no other value of the process was given (taken from
/// [`vppkit_ledger::next_holdings_version`], the counter behind holdings versions): a value
/// keeps its stamp when cloned and gets a new one when its content changes, so equal
/// stamps mean equal content. Stamps take no part in equality: two values built apart
/// with the same content are equal, with different stamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// The number.
    pub(crate) fn get(self) -> u64 {
        self.0
    }
}

impl Default for Stamp {
    /// A fresh stamp.
    fn default() -> Self {
        Self(vppkit_ledger::next_holdings_version())
    }
}

impl PartialEq for Stamp {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Stamp {}
