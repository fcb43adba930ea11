//! Domain values shared by the ledger, the store, the rules and the engine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{open_wire_enum, wire_enum};
use crate::{AssetKey, ClientUserId, Platform, ProductType, ValueError};

/// Apple's `totalCount` for free (unlimited) apps and books.
pub const UNLIMITED_COUNT: u32 = 2_147_483_647;

/// Apple's licence counts for one asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetCounts {
    /// Licences owned (`totalCount`).
    pub total: u32,
    /// Licences in use (`assignedCount`).
    pub assigned: u32,
    /// Licences free (`availableCount`).
    pub available: u32,
    /// Licences no longer usable (`retiredCount`).
    pub retired: u32,
}

impl AssetCounts {
    /// Builds counts as Apple reports them.
    pub fn new(total: u32, assigned: u32, available: u32, retired: u32) -> Self {
        Self {
            total,
            assigned,
            available,
            retired,
        }
    }

    /// Whether this is a free asset with unlimited licences.
    pub fn is_unlimited(&self) -> bool {
        self.total >= UNLIMITED_COUNT
    }

    /// How many licences can be held at once: `total - retired`.
    pub fn holdable(&self) -> u32 {
        self.total.saturating_sub(self.retired)
    }
}

/// One asset of a location with its properties and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Asset {
    /// `(adamId, pricingParam)`.
    pub key: AssetKey,
    /// App or Book.
    pub product_type: ProductType,
    /// Can be assigned to serial numbers (never for books).
    pub device_assignable: bool,
    /// Licences can be taken back (never for books).
    pub revocable: bool,
    /// Platforms the product runs on.
    pub supported_platforms: Vec<Platform>,
    /// Apple's counts.
    pub counts: AssetCounts,
}

impl Asset {
    /// Builds an asset.
    pub fn new(
        key: AssetKey,
        product_type: ProductType,
        device_assignable: bool,
        revocable: bool,
        supported_platforms: Vec<Platform>,
        counts: AssetCounts,
    ) -> Self {
        Self {
            key,
            product_type,
            device_assignable,
            revocable,
            supported_platforms,
            counts,
        }
    }

    /// Whether it is a book.
    pub fn is_book(&self) -> bool {
        self.product_type == ProductType::Book
    }
}

/// Display metadata of an asset from the content metadata lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetMetadata {
    /// Product name.
    pub name: String,
    /// Bundle id (apps only).
    pub bundle_id: Option<String>,
    /// Artwork URL template (`{w}`, `{h}`, `{f}`).
    pub artwork_url: Option<String>,
    /// Version shown in the store.
    pub version: Option<String>,
    /// Device families or platforms named by the store.
    pub platforms: Vec<String>,
}

impl AssetMetadata {
    /// Builds metadata with a name; set the other fields directly.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

wire_enum!(
    /// What state one holding (one licence of one asset held by one holder) is in.
    HoldingStatus, "holding status", "reserved, active, releasing, adopted", {
        /// Reserved locally for an Apple operation not yet confirmed.
        Reserved = "reserved",
        /// Confirmed by Apple, held on our behalf.
        Active = "active",
        /// A release (disassociate or revoke) is in flight.
        Releasing = "releasing",
        /// Found at Apple without our action (another MDM, a person, a sync) and adopted.
        Adopted = "adopted",
    }
);

impl HoldingStatus {
    /// Whether Apple has confirmed it (active, releasing or adopted).
    pub fn is_confirmed(self) -> bool {
        !matches!(self, HoldingStatus::Reserved)
    }
}

open_wire_enum!(
    /// Apple's status of a VPP user. A status Apple adds later (its "Managing users"
    /// page names more states than the four documented values) is kept as
    /// [`VppUserStatus::Other`].
    VppUserStatus, {
        /// Created, no Apple Account linked yet; has an invite code.
        Registered = "Registered",
        /// Linked to an Apple Account; has an `idHash`.
        Associated = "Associated",
        /// Retired by the MDM.
        Retired = "Retired",
        /// Legacy: retired and moved to a newer user with the same id.
        Deleted = "Deleted",
    }
);

impl VppUserStatus {
    /// Registered or Associated.
    pub fn is_active(self) -> bool {
        matches!(self, VppUserStatus::Registered | VppUserStatus::Associated)
    }
}

/// A VPP user as Apple knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VppUser {
    /// The MDM's id of the user.
    pub client_user_id: ClientUserId,
    /// Email the invitation goes to.
    pub email: Option<String>,
    /// Managed Apple Account, when the user was created with one.
    pub managed_apple_id: Option<String>,
    /// Invitation code (Registered users).
    pub invite_code: Option<String>,
    /// Hash of the linked Apple Account (Associated users).
    pub id_hash: Option<String>,
    /// Status at Apple.
    pub status: VppUserStatus,
}

impl VppUser {
    /// Builds a user with a status and no optional fields.
    pub fn new(client_user_id: ClientUserId, status: VppUserStatus) -> Self {
        Self {
            client_user_id,
            email: None,
            managed_apple_id: None,
            invite_code: None,
            id_hash: None,
            status,
        }
    }
}

wire_enum!(
    /// The state of a location's content token.
    TokenState, "token state", "valid, expiring, expired, revoked, invalid, claimed_elsewhere, duplicate_location", {
        /// Works, not near expiry.
        Valid = "valid",
        /// Works, expires inside the warning window.
        Expiring = "expiring",
        /// Past `expDate`, or Apple answered 9621.
        Expired = "expired",
        /// Apple answered 9625.
        Revoked = "revoked",
        /// Apple answered 9622, 9601 or 9722.
        Invalid = "invalid",
        /// Another MDM's `mdmInfo` is on the token.
        ClaimedElsewhere = "claimed_elsewhere",
        /// Another token of this manager has the same `uId`.
        DuplicateLocation = "duplicate_location",
    }
);

impl TokenState {
    /// Whether writes to Apple are allowed in this state.
    pub fn allows_writes(self) -> bool {
        matches!(self, TokenState::Valid | TokenState::Expiring)
    }

    /// Whether reads from Apple can still work in this state.
    pub fn allows_reads(self) -> bool {
        matches!(
            self,
            TokenState::Valid
                | TokenState::Expiring
                | TokenState::ClaimedElsewhere
                | TokenState::DuplicateLocation
        )
    }
}

wire_enum!(
    /// Apple Business Manager or Apple School Manager, from `websiteURL` / `defaultPlatform`.
    AccountType, "account type", "business, education", {
        /// Apple Business (`enterprisestore`).
        Business = "business",
        /// Apple School Manager (`volumestore`).
        Education = "education",
    }
);

impl AccountType {
    /// Reads `defaultPlatform` from client config.
    pub fn from_default_platform(platform: &str) -> Option<Self> {
        match platform {
            "enterprisestore" => Some(AccountType::Business),
            "volumestore" => Some(AccountType::Education),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = AssetCounts::new(10, 3, 6, 1);
        assert_eq!(c.holdable(), 9);
        assert!(!c.is_unlimited());
        assert!(AssetCounts::new(UNLIMITED_COUNT, 0, UNLIMITED_COUNT, 0).is_unlimited());
    }

    #[test]
    fn statuses_round_trip() {
        for s in HoldingStatus::ALL {
            assert_eq!(s.as_str().parse::<HoldingStatus>().unwrap(), *s);
        }
        for s in TokenState::ALL {
            assert_eq!(s.as_str().parse::<TokenState>().unwrap(), *s);
        }
        assert!(TokenState::Expiring.allows_writes());
        assert!(!TokenState::ClaimedElsewhere.allows_writes());
        assert!(TokenState::ClaimedElsewhere.allows_reads());
        assert!(!TokenState::Revoked.allows_reads());
        let u: VppUserStatus = serde_json::from_str("\"Associated\"").unwrap();
        assert!(u.is_active());
        assert_eq!(
            AccountType::from_default_platform("volumestore"),
            Some(AccountType::Education)
        );
    }
}
