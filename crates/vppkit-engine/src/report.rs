//! What the engine reports: per location and per app. Serialised in camelCase,
//! like Apple's and `vppkit-rules`' formats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{AccountType, AssetKey, Holder, LocationId, ProductType, TokenState, Uid};
use vppkit_rules::{Blocked, Waitlisted};

use crate::sink::RejectionReason;

/// One location: its token, its last sync and its apps and books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationReport {
    /// The location.
    pub location: LocationId,
    /// Apple's name of the organisational unit.
    pub name: String,
    /// Apple's `uId`.
    pub uid: Option<Uid>,
    /// Storefront country (`countryISO2ACode`).
    pub country: Option<String>,
    /// Business or education.
    pub account_type: Option<AccountType>,
    /// The Apple account the operator says the token came from.
    pub apple_account_name: Option<String>,
    /// The token's state.
    pub token_state: TokenState,
    /// When the token expires.
    pub token_expires_at: DateTime<Utc>,
    /// Whole days until [`token_expires_at`](Self::token_expires_at) when the report
    /// was made; `None` when the token cannot be used whatever its date says
    /// (expired, revoked or invalid: Apple can refuse a token as expired before
    /// the date in its file).
    pub token_days_left: Option<i64>,
    /// Whether writes to Apple are allowed (the token state allows them).
    pub writes_allowed: bool,
    /// The last sync and how it ended.
    pub last_sync: Option<LastSync>,
    /// Apps and books, in asset key order.
    pub apps: Vec<AppReport>,
    /// VPP users created by another MDM on this location (never modified).
    pub foreign_users: u64,
    /// VPP users this manager created.
    pub own_users: u64,
    /// Apple operations still in flight.
    pub operations_in_flight: u64,
}

/// When the last sync of a location ended and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LastSync {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// What went wrong, or a summary (never a secret).
    pub message: Option<String>,
}

/// One app or book of a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppReport {
    /// `(adamId, pricingParam)`.
    pub asset: AssetKey,
    /// App or book.
    pub product_type: ProductType,
    /// Name from the metadata lookup, once known.
    pub name: Option<String>,
    /// Apple's `totalCount`: every licence bought, retired ones included.
    pub total: u64,
    /// Apple's `retiredCount`: licences no longer usable (refunds, retired
    /// pricing); never held, never free.
    pub retired: u64,
    /// Licences owned and usable: `total - retired`.
    pub owned: u64,
    /// Licences held and confirmed by Apple (ours and foreign).
    pub used: u64,
    /// Licences reserved for operations in flight.
    pub reserved: u64,
    /// Licences being released.
    pub releasing: u64,
    /// Licences free: `owned - used - reserved - releasing`.
    pub free: u64,
    /// Holdings found at Apple that this manager did not make (another MDM, a person).
    pub foreign: u64,
    /// Whether Apple offers unlimited licences (free apps and books).
    pub unlimited: bool,
    /// Holders waiting for a licence, in order, from the last plan.
    pub waitlist: Vec<Waitlisted>,
    /// Holders that cannot get it, with the reason, from the last plan.
    pub blocked: Vec<Blocked>,
    /// Install status per holder (only when asked for; see [`ReportOptions`]).
    pub installs: Vec<InstallReport>,
}

/// One app or book summed over every location that holds it (the same
/// `(adamId, pricingParam)` bought under several content tokens). Each location
/// still lists it in its own [`AppReport`]; this is the organisation's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppTotal {
    /// `(adamId, pricingParam)`.
    pub asset: AssetKey,
    /// App or book.
    pub product_type: ProductType,
    /// Name from the metadata lookup of any location, once known.
    pub name: Option<String>,
    /// The locations that hold it, in report order.
    pub locations: Vec<LocationId>,
    /// Sum of Apple's `totalCount`.
    pub total: u64,
    /// Sum of Apple's `retiredCount`.
    pub retired: u64,
    /// Sum of the licences owned and usable (`total - retired`).
    pub owned: u64,
    /// Sum of the licences held.
    pub used: u64,
    /// Sum of the licences reserved for operations in flight.
    pub reserved: u64,
    /// Sum of the licences being released.
    pub releasing: u64,
    /// Sum of the free licences.
    pub free: u64,
    /// Whether any location has it with unlimited licences (`total`, `retired`,
    /// `owned` and `free` then add only the other locations).
    pub unlimited: bool,
    /// Holders waiting for it, over every location.
    pub waiting: u64,
    /// Holders that cannot get it, over every location.
    pub blocked: u64,
}

/// Sums each app over the locations of `reports` (one [`AppTotal`] per
/// `(adamId, pricingParam)`, in asset key order). Two tokens of one Apple location
/// (the same `uId`) hold the same licences: both are listed in
/// [`AppTotal::locations`], their counts added once (those of the token that is not
/// the duplicate; an app only the duplicate's report lists is listed with none of its
/// counts). The counts of a location where the app is unlimited say nothing of a
/// limit: `total`, `retired`, `owned` and `free` add only the locations where it is
/// limited, and [`AppTotal::unlimited`] says there are others.
pub fn app_totals(reports: &[LocationReport]) -> Vec<AppTotal> {
    // The report counted for each Apple location: the first that is not a duplicate.
    let mut counted: std::collections::HashMap<&Uid, usize> = Default::default();
    for (i, l) in reports.iter().enumerate() {
        let Some(uid) = &l.uid else { continue };
        let slot = counted.entry(uid).or_insert(i);
        let duplicate = |j: usize| reports[j].token_state == TokenState::DuplicateLocation;
        if duplicate(*slot) && !duplicate(i) {
            *slot = i;
        }
    }
    let mut totals: std::collections::BTreeMap<&AssetKey, AppTotal> = Default::default();
    for (i, l) in reports.iter().enumerate() {
        let counts = l.uid.as_ref().is_none_or(|u| counted.get(u) == Some(&i));
        for a in &l.apps {
            let t = totals.entry(&a.asset).or_insert_with(|| AppTotal {
                asset: a.asset.clone(),
                product_type: a.product_type,
                name: None,
                locations: Vec::new(),
                total: 0,
                retired: 0,
                owned: 0,
                used: 0,
                reserved: 0,
                releasing: 0,
                free: 0,
                unlimited: false,
                waiting: 0,
                blocked: 0,
            });
            if t.name.is_none() {
                t.name.clone_from(&a.name);
            }
            if !t.locations.contains(&l.location) {
                t.locations.push(l.location.clone());
            }
            if !counts {
                continue;
            }
            if a.unlimited {
                t.unlimited = true;
            } else {
                t.total += a.total;
                t.retired += a.retired;
                t.owned += a.owned;
                t.free += a.free;
            }
            t.used += a.used;
            t.reserved += a.reserved;
            t.releasing += a.releasing;
            t.waiting += a.waitlist.len() as u64;
            t.blocked += a.blocked.len() as u64;
        }
    }
    totals.into_values().collect()
}

/// Where one holder's install of one app stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstallReport {
    /// The licence holder.
    pub holder: Holder,
    /// The app or book.
    pub asset: AssetKey,
    /// The state.
    pub state: InstallStatus,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The install status of an app for a holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum InstallStatus {
    /// The command was handed to the MDM.
    Queued,
    /// The device acknowledged it.
    Acknowledged,
    /// The device said `NotNow`.
    NotNow,
    /// Installed.
    Installed,
    /// Failed, with the device's reason.
    Failed(RejectionReason),
    /// Removed.
    Removed,
}

/// What the last applied plan said about waitlists and blocked items that are
/// not attributed to any location (for example a policy for an app no location
/// owns). Attributed items are in each [`AppReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PlanItems {
    /// Holders waiting for a licence.
    pub waitlisted: Vec<Waitlisted>,
    /// Holders that cannot get the asset, with the reason.
    pub blocked: Vec<Blocked>,
    /// Policies the plan left out because they break a rule (in the items of
    /// no location only).
    #[serde(default)]
    pub invalid_policies: Vec<vppkit_rules::PolicyViolation>,
    /// When the plan was applied.
    #[serde(default)]
    pub planned_at: Option<DateTime<Utc>>,
}

/// What to include in a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportOptions {
    /// Include the install status of every holder of every app (reads every
    /// holding: costly for very large locations).
    pub include_installs: bool,
}

impl ReportOptions {
    /// Counts, waitlists and blocked items only.
    pub fn summary() -> Self {
        Self::default()
    }

    /// Everything, install statuses included.
    pub fn with_installs() -> Self {
        Self {
            include_installs: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam, SerialNumber};

    fn app(adam: u64, total: u64, retired: u64, used: u64) -> AppReport {
        AppReport {
            asset: AssetKey::new(AdamId::from(adam), PricingParam::Stdq),
            product_type: ProductType::App,
            name: Some(format!("app {adam}")),
            total,
            retired,
            owned: total - retired,
            used,
            reserved: 0,
            releasing: 0,
            free: total - retired - used,
            foreign: 0,
            unlimited: false,
            waitlist: Vec::new(),
            blocked: Vec::new(),
            installs: Vec::new(),
        }
    }

    fn location(id: &str, apps: Vec<AppReport>) -> LocationReport {
        LocationReport {
            location: LocationId::new(id).unwrap(),
            name: id.to_owned(),
            uid: None,
            country: None,
            account_type: None,
            apple_account_name: None,
            token_state: TokenState::Valid,
            token_expires_at: Utc::now(),
            token_days_left: Some(0),
            writes_allowed: true,
            last_sync: None,
            apps,
            foreign_users: 0,
            own_users: 0,
            operations_in_flight: 0,
        }
    }

    #[test]
    fn an_app_under_two_tokens_is_summed_once() {
        let reports = [
            location("a", vec![app(1, 5, 1, 2), app(2, 10, 0, 10)]),
            location("b", vec![app(1, 20, 3, 7)]),
        ];
        let totals = app_totals(&reports);
        assert_eq!(totals.len(), 2);
        let one = &totals[0];
        assert_eq!(one.asset.adam_id, AdamId::from(1u64));
        assert_eq!(one.locations.len(), 2);
        assert_eq!(
            (one.total, one.retired, one.owned, one.used, one.free),
            (25, 4, 21, 9, 12)
        );
        let two = &totals[1];
        assert_eq!((two.total, two.owned, two.free), (10, 10, 0));
        assert_eq!(two.locations, vec![LocationId::new("a").unwrap()]);
        let json = serde_json::to_value(one).unwrap();
        assert_eq!(json["retired"], 4, "{json}");
        assert_eq!(json["locations"], serde_json::json!(["a", "b"]));
    }

    /// Two tokens of one Apple location hold the same licences: listed under both, counted
    /// once, from the token that is not the duplicate, whichever comes first.
    #[test]
    fn two_tokens_of_one_apple_location_are_counted_once() {
        let uid = Uid::new("4100000000000101").unwrap();
        let mut first = location("a", vec![app(1, 10, 3, 2)]);
        first.uid = Some(uid.clone());
        first.token_state = TokenState::DuplicateLocation;
        let mut second = location("b", vec![app(1, 10, 3, 4)]);
        second.uid = Some(uid);
        let other = location("c", vec![app(1, 5, 0, 1)]);
        let totals = app_totals(&[first, second, other]);
        let one = &totals[0];
        assert_eq!(one.locations.len(), 3);
        assert_eq!(
            (one.total, one.retired, one.owned, one.used, one.free),
            (15, 3, 12, 5, 7),
            "b's counts and c's, not a's: {one:?}"
        );
    }

    /// An unlimited location's placeholder counts are not added to the limited ones.
    #[test]
    fn unlimited_counts_are_not_added() {
        let mut free_app = app(1, 2_147_483_647, 0, 800);
        free_app.unlimited = true;
        let totals = app_totals(&[
            location("a", vec![free_app.clone()]),
            location("b", vec![free_app]),
            location("c", vec![app(1, 10, 0, 4)]),
        ]);
        let one = &totals[0];
        assert!(one.unlimited);
        assert_eq!(
            (one.total, one.owned, one.free, one.used),
            (10, 10, 6, 1604)
        );
    }

    #[test]
    fn reports_serialise_in_camel_case() {
        let r = InstallReport {
            holder: Holder::Device(SerialNumber::new("SPH000000001").unwrap()),
            asset: AssetKey::new(AdamId::from(1u64), PricingParam::Stdq),
            state: InstallStatus::NotNow,
            updated_at: Utc::now(),
        };
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("updatedAt").is_some(), "{json}");
        assert_eq!(json["state"], "notNow");
        let back: InstallReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let items = serde_json::to_value(PlanItems::default()).unwrap();
        assert!(items.get("waitlisted").is_some());
    }
}
