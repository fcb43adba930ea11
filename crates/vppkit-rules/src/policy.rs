//! The policy model: asset x target x intent x licence type x settings, shaped like
//! Intune's `mobileAppAssignment` with `iosVppAppAssignmentSettings`.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, LocationId, Platform, PricingParam};

use crate::directory::{DirectoryDevice, EnrollmentType, Ownership};
use crate::error::FormatError;
use crate::ids::{GroupId, PolicyId};
use crate::release::ReleaseRules;

/// What a policy wants for the holders it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Intent {
    /// Install now; a licence is taken at once.
    Required,
    /// Offer in self-service; a licence is taken only when the holder asks to install.
    Available,
    /// Remove the app or book; the licence is released per [`ReleaseRules::on_uninstall`].
    Uninstall,
}

impl Intent {
    /// Rank in the precedence between intents: lower wins.
    /// Required (0) beats Uninstall (1), which beats Available (2).
    pub fn precedence(self) -> u8 {
        match self {
            Intent::Required => 0,
            Intent::Uninstall => 1,
            Intent::Available => 2,
        }
    }

    /// Lower-case name as written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Required => "required",
            Intent::Available => "available",
            Intent::Uninstall => "uninstall",
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds the licence: the device (serial number) or the device's user (VPP user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LicenceType {
    /// Device licence: `assets/associate` with `serialNumbers`; no Apple Account needed.
    Device,
    /// User licence: `assets/associate` with `clientUserIds`; needs a VPP user who accepted
    /// the invitation and is signed in to the App Store.
    User,
}

impl LicenceType {
    /// Rank in the precedence between licence types: lower wins. Device (0) beats User (1).
    pub fn precedence(self) -> u8 {
        match self {
            LicenceType::Device => 0,
            LicenceType::User => 1,
        }
    }

    /// Lower-case name as written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenceType::Device => "device",
            LicenceType::User => "user",
        }
    }
}

impl fmt::Display for LicenceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a policy is aimed at.
///
/// In JSON: `{"group": "year-7"}`, `"allUsers"` or `"allDevices"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Target {
    /// The users and devices listed in one directory group.
    Group(GroupId),
    /// Every user of the directory (and, for device licences, their devices).
    AllUsers,
    /// Every device of the directory.
    AllDevices,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Group(g) => write!(f, "group {g}"),
            Target::AllUsers => f.write_str("all users"),
            Target::AllDevices => f.write_str("all devices"),
        }
    }
}

/// App settings of a policy (Intune's `iosVppAppAssignmentSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct AppSettings {
    /// The user may delete the app (`Attributes.Removable`, iOS/tvOS 14+). Default true.
    pub removable: bool,
    /// Remove the app when the device leaves management (`ManagementFlags` bit 1). Default true.
    pub uninstall_on_device_removal: bool,
    /// Keep the app's data out of backups (`ManagementFlags` bit 4). Default false.
    pub prevent_backup: bool,
    /// Do not update the app automatically. Default false. Carried on the command value;
    /// Apple's `InstallApplication` has no key for it.
    pub prevent_automatic_updates: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            removable: true,
            uninstall_on_device_removal: true,
            prevent_backup: false,
            prevent_automatic_updates: false,
        }
    }
}

impl AppSettings {
    /// Sets `removable`.
    pub fn with_removable(mut self, v: bool) -> Self {
        self.removable = v;
        self
    }

    /// Sets `uninstallOnDeviceRemoval`.
    pub fn with_uninstall_on_device_removal(mut self, v: bool) -> Self {
        self.uninstall_on_device_removal = v;
        self
    }

    /// Sets `preventBackup`.
    pub fn with_prevent_backup(mut self, v: bool) -> Self {
        self.prevent_backup = v;
        self
    }

    /// Sets `preventAutomaticUpdates`.
    pub fn with_prevent_automatic_updates(mut self, v: bool) -> Self {
        self.prevent_automatic_updates = v;
        self
    }
}

/// An operating-system version such as `17.4.1`, compared numerically part by part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OsVersion(Vec<u32>);

impl OsVersion {
    /// Parses `major[.minor[.patch...]]`.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let parts: Result<Vec<u32>, _> = text.trim().split('.').map(str::parse::<u32>).collect();
        match parts {
            Ok(p) if !p.is_empty() => Ok(Self(p)),
            _ => Err(FormatError::BadOsVersion {
                value: text.chars().take(40).collect(),
            }),
        }
    }

    /// The numeric parts.
    pub fn parts(&self) -> &[u32] {
        &self.0
    }

    /// Compares with a version given by its parts, as [`Ord`] does (missing parts are 0).
    pub(crate) fn cmp_parts(&self, other: &[u32]) -> Ordering {
        let n = self.0.len().max(other.len());
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

impl Ord for OsVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_parts(&other.0)
    }
}

impl PartialOrd for OsVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for OsVersion {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        Self::parse(s)
    }
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Serialize for OsVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An optional filter on the devices a policy reaches (like an Intune assignment filter).
/// Every given condition must hold; an absent condition matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceFilter {
    /// Only these platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<BTreeSet<Platform>>,
    /// Only devices at or above this OS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_os_version: Option<OsVersion>,
    /// Only devices at or below this OS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_os_version: Option<OsVersion>,
    /// Only corporate or only personal devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// Only these enrollment types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_types: Option<BTreeSet<EnrollmentType>>,
    /// Only supervised (true) or only unsupervised (false) devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<bool>,
}

impl DeviceFilter {
    /// A filter that matches every device.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these platforms.
    pub fn with_platforms(mut self, p: impl IntoIterator<Item = Platform>) -> Self {
        self.platforms = Some(p.into_iter().collect());
        self
    }

    /// Only at or above this OS version.
    pub fn with_min_os_version(mut self, v: OsVersion) -> Self {
        self.min_os_version = Some(v);
        self
    }

    /// Only at or below this OS version.
    pub fn with_max_os_version(mut self, v: OsVersion) -> Self {
        self.max_os_version = Some(v);
        self
    }

    /// Only this ownership.
    pub fn with_ownership(mut self, o: Ownership) -> Self {
        self.ownership = Some(o);
        self
    }

    /// Only these enrollment types.
    pub fn with_enrollment_types(mut self, e: impl IntoIterator<Item = EnrollmentType>) -> Self {
        self.enrollment_types = Some(e.into_iter().collect());
        self
    }

    /// Only supervised (true) or unsupervised (false) devices.
    pub fn with_supervised(mut self, s: bool) -> Self {
        self.supervised = Some(s);
        self
    }

    /// Whether the device passes every condition.
    pub fn matches(&self, device: &DirectoryDevice) -> bool {
        if let Some(p) = &self.platforms {
            if !p.contains(&device.platform) {
                return false;
            }
        }
        if let Some(min) = &self.min_os_version {
            if device.os_version < *min {
                return false;
            }
        }
        if let Some(max) = &self.max_os_version {
            if device.os_version > *max {
                return false;
            }
        }
        if let Some(o) = self.ownership {
            if device.ownership != o {
                return false;
            }
        }
        if let Some(e) = &self.enrollment_types {
            if !e.contains(&device.enrollment) {
                return false;
            }
        }
        if let Some(s) = self.supervised {
            if device.supervised != s {
                return false;
            }
        }
        true
    }
}

fn default_true() -> bool {
    true
}

/// One assignment policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// Unique id, used in explanations and journal causes.
    pub id: PolicyId,
    /// The app or book (adam id, as in Apple's API: a string of digits).
    pub adam_id: AdamId,
    /// Only this pricing (`STDQ` or `PLUS`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_param: Option<PricingParam>,
    /// Take licences from this location only; routed automatically when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationId>,
    /// Who the policy is aimed at.
    pub target: Target,
    /// Groups whose users and devices the policy never reaches (exclusion beats inclusion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<GroupId>,
    /// Optional device filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<DeviceFilter>,
    /// Required, Available or Uninstall.
    pub intent: Intent,
    /// Device or user licence.
    pub licence: LicenceType,
    /// App settings.
    #[serde(default)]
    pub settings: AppSettings,
    /// Higher wins among policies of the same intent and licence type, and is served first
    /// when licences run short. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// A disabled policy is kept in the file but ignored. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Policy {
    /// A policy with default settings, priority 0, no pin, no exclusions, no filter.
    pub fn new(
        id: PolicyId,
        adam_id: AdamId,
        target: Target,
        intent: Intent,
        licence: LicenceType,
    ) -> Self {
        Self {
            id,
            adam_id,
            pricing_param: None,
            location: None,
            target,
            exclude: Vec::new(),
            filter: None,
            intent,
            licence,
            settings: AppSettings::default(),
            priority: 0,
            enabled: true,
        }
    }

    /// Pins the policy to a location.
    pub fn with_location(mut self, location: LocationId) -> Self {
        self.location = Some(location);
        self
    }

    /// Restricts the policy to one pricing.
    pub fn with_pricing(mut self, pricing: PricingParam) -> Self {
        self.pricing_param = Some(pricing);
        self
    }

    /// Adds an exclusion group.
    pub fn excluding(mut self, group: GroupId) -> Self {
        self.exclude.push(group);
        self
    }

    /// Sets the device filter.
    pub fn with_filter(mut self, filter: DeviceFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Sets the app settings.
    pub fn with_settings(mut self, settings: AppSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

/// A policy file: release rules and policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicySet {
    /// What happens to licences that are no longer wanted.
    #[serde(default)]
    pub release: ReleaseRules,
    /// The policies.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

impl PolicySet {
    /// Builds a set and checks policy ids are unique.
    pub fn new(release: ReleaseRules, policies: Vec<Policy>) -> Result<Self, FormatError> {
        let set = Self { release, policies };
        set.check()?;
        Ok(set)
    }

    /// Parses a JSON policy file (format in `docs/policies.md`) and checks ids are unique.
    ///
    /// The top level must be a JSON object: anything else (an array, a string, ...) is
    /// [`FormatError::NotAnObject`] with its line and column.
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        FormatError::expect_object("policy file", text)?;
        let set: Self =
            serde_json::from_str(text).map_err(|e| FormatError::json("policy file", &e))?;
        set.check()?;
        Ok(set)
    }

    /// Renders the set as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), FormatError> {
        let mut seen = BTreeSet::new();
        for p in &self.policies {
            if !seen.insert(&p.id) {
                return Err(FormatError::Duplicate {
                    kind: "policy",
                    id: p.id.to_string(),
                });
            }
        }
        Ok(())
    }
}
