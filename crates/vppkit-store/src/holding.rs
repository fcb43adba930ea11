//! Holdings: one licence of one asset held by one holder in one location.

use chrono::{DateTime, Utc};
use vppkit_core::{AssetKey, Holder, HoldingStatus, LocationId};

/// A holding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldingRecord {
    /// The location.
    pub location: LocationId,
    /// The asset.
    pub asset: AssetKey,
    /// Who holds it.
    pub holder: Holder,
    /// Its state.
    pub status: HoldingStatus,
    /// The operation that reserved or is releasing it, if any.
    pub operation_id: Option<String>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// The key of a holding inside a location, and the position of paged reads.
///
/// Paged reads order holdings by `(adamId, pricingParam, holder)` compared as
/// bytes of their text forms (`pricingParam` as `"PLUS"`/`"STDQ"`, holder as
/// `"device:SERIAL"`/`"user:ID"`), like SQL `COLLATE "C"`/`BINARY`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HoldingKey {
    /// The asset.
    pub asset: AssetKey,
    /// The holder.
    pub holder: Holder,
}

impl HoldingKey {
    /// Builds a key.
    pub fn new(asset: AssetKey, holder: Holder) -> Self {
        Self { asset, holder }
    }

    /// The sort key paged reads use (bytes of the text forms).
    pub fn sort_key(&self) -> (String, &'static str, String) {
        sort_key(&self.asset, &self.holder)
    }
}

/// The byte-wise sort key of `(asset, holder)`, as documented on [`HoldingKey`].
pub fn sort_key(asset: &AssetKey, holder: &Holder) -> (String, &'static str, String) {
    (
        asset.adam_id.as_str().to_owned(),
        asset.pricing_param.as_str(),
        holder.to_string(),
    )
}

impl HoldingRecord {
    /// A record from an upsert.
    pub fn from_upsert(
        location: LocationId,
        upsert: HoldingUpsert,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            location,
            asset: upsert.asset,
            holder: upsert.holder,
            status: upsert.status,
            operation_id: upsert.operation_id,
            updated_at,
        }
    }

    /// Its key.
    pub fn key(&self) -> HoldingKey {
        HoldingKey::new(self.asset.clone(), self.holder.clone())
    }
}

/// A holding to insert or overwrite (sync pages and direct writes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldingUpsert {
    /// The asset (must exist in the location).
    pub asset: AssetKey,
    /// The holder.
    pub holder: Holder,
    /// The new status.
    pub status: HoldingStatus,
    /// The operation it belongs to, if any.
    pub operation_id: Option<String>,
}

impl HoldingUpsert {
    /// Builds an upsert with no operation id.
    pub fn new(asset: AssetKey, holder: Holder, status: HoldingStatus) -> Self {
        Self {
            asset,
            holder,
            status,
            operation_id: None,
        }
    }

    /// Sets the operation id.
    pub fn with_operation(mut self, operation_id: impl Into<String>) -> Self {
        self.operation_id = Some(operation_id.into());
        self
    }
}

/// How many holdings of one asset are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldingCounts {
    /// Reserved, not yet confirmed by Apple.
    pub reserved: u64,
    /// Confirmed by Apple, held on our behalf.
    pub active: u64,
    /// Being released.
    pub releasing: u64,
    /// Found at Apple and adopted.
    pub adopted: u64,
}

impl HoldingCounts {
    /// Every holding: each one uses a licence until it is deleted.
    pub fn total(&self) -> u64 {
        self.reserved + self.active + self.releasing + self.adopted
    }

    /// Adds one holding of the given status.
    pub fn add(&mut self, status: HoldingStatus, n: u64) {
        match status {
            HoldingStatus::Reserved => self.reserved += n,
            HoldingStatus::Active => self.active += n,
            HoldingStatus::Releasing => self.releasing += n,
            _ => self.adopted += n,
        }
    }
}

/// An atomic, all-or-nothing reservation of one licence of `asset` for each holder.
///
/// It succeeds only if `holdable` (Apple's `total - retired` stored on the asset)
/// minus every existing holding of the asset (whatever its status) leaves room for
/// all holders, and none of them already holds the asset. The new holdings are
/// [`HoldingStatus::Reserved`] with the operation id; the journal records are
/// appended in the same transaction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reservation {
    /// The location.
    pub location: LocationId,
    /// The asset.
    pub asset: AssetKey,
    /// One licence for each (no duplicates).
    pub holders: Vec<Holder>,
    /// The operation the reservation belongs to.
    pub operation_id: String,
    /// When (stored as the holdings' `updated_at`).
    pub at: DateTime<Utc>,
    /// Journal records written with the reservation.
    pub journal: Vec<crate::NewJournalRecord>,
    /// The writer's lease: the reservation is refused when it is no longer held.
    pub fence: Option<crate::Fence>,
}

impl Reservation {
    /// Builds a reservation with no journal records.
    pub fn new(
        location: LocationId,
        asset: AssetKey,
        holders: Vec<Holder>,
        operation_id: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            location,
            asset,
            holders,
            operation_id: operation_id.into(),
            at,
            journal: Vec::new(),
            fence: None,
        }
    }

    /// Refuses the reservation unless `fence` still holds its lease.
    pub fn with_fence(mut self, fence: Option<crate::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Adds journal records written in the same transaction.
    pub fn with_journal(mut self, journal: Vec<crate::NewJournalRecord>) -> Self {
        self.journal = journal;
        self
    }

    /// The rules every backend applies to a reservation, under its asset lock: no holder twice,
    /// none that already holds the asset (`is_held`), and no more holders than the licences
    /// left (`holdable - held`, invariant 1). Returns how many are left after it.
    pub fn check(
        &self,
        holdable: u64,
        held: u64,
        mut is_held: impl FnMut(&Holder) -> bool,
    ) -> crate::Result<u32> {
        let mut seen = std::collections::HashSet::new();
        for h in &self.holders {
            if !seen.insert(h) {
                return Err(crate::StoreError::invalid(
                    "holders",
                    format!("{h} appears more than once"),
                ));
            }
            if is_held(h) {
                return Err(crate::StoreError::AlreadyHeld {
                    asset: self.asset.clone(),
                    holder: h.clone(),
                });
            }
        }
        let available = holdable.saturating_sub(held);
        let requested = self.holders.len() as u64;
        if requested > available {
            return Err(crate::StoreError::InsufficientLicences {
                asset: self.asset.clone(),
                requested: u32::try_from(requested).unwrap_or(u32::MAX),
                available: u32::try_from(available).unwrap_or(u32::MAX),
            });
        }
        Ok(u32::try_from(available - requested).unwrap_or(u32::MAX))
    }
}

/// A change to one existing holding: a new status, or its deletion (release done).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldingTransition {
    /// Which holding.
    pub key: HoldingKey,
    /// Only apply if its status is this one (else a version mismatch).
    pub expected: Option<HoldingStatus>,
    /// The new status, or `None` to delete the holding.
    pub new_status: Option<HoldingStatus>,
    /// Replaces the operation id when set.
    pub operation_id: Option<String>,
}

impl HoldingTransition {
    /// Sets a new status.
    pub fn set(key: HoldingKey, status: HoldingStatus) -> Self {
        Self {
            key,
            expected: None,
            new_status: Some(status),
            operation_id: None,
        }
    }

    /// Deletes the holding (its licence is free again).
    pub fn delete(key: HoldingKey) -> Self {
        Self {
            key,
            expected: None,
            new_status: None,
            operation_id: None,
        }
    }

    /// Only apply if the stored status is `status`.
    pub fn expecting(mut self, status: HoldingStatus) -> Self {
        self.expected = Some(status);
        self
    }

    /// Replaces the operation id.
    pub fn with_operation(mut self, operation_id: impl Into<String>) -> Self {
        self.operation_id = Some(operation_id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use vppkit_core::{AdamId, PricingParam, SerialNumber};

    fn reservation(serials: &[&str]) -> Reservation {
        let holders = serials
            .iter()
            .map(|s| Holder::Device(SerialNumber::new(*s).unwrap()))
            .collect();
        Reservation::new(
            LocationId::new("loc").unwrap(),
            AssetKey::new(AdamId::new("1").unwrap(), PricingParam::Stdq),
            holders,
            "op",
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    #[test]
    fn check_applies_the_reservation_rules() {
        let r = reservation(&["A1", "B2"]);
        assert_eq!(r.check(5, 1, |_| false).unwrap(), 2);
        assert_eq!(r.check(3, 1, |_| false).unwrap(), 0);
        let short = r.check(3, 2, |_| false).unwrap_err();
        assert!(matches!(
            short,
            crate::StoreError::InsufficientLicences {
                requested: 2,
                available: 1,
                ..
            }
        ));
        let held = r.check(5, 0, |h| h.to_string().contains("B2")).unwrap_err();
        assert!(matches!(held, crate::StoreError::AlreadyHeld { .. }));
        let twice = reservation(&["A1", "A1"])
            .check(5, 0, |_| false)
            .unwrap_err();
        assert_eq!(twice.kind(), ErrorKind::Invalid);
    }
}
