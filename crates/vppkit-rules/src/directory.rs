//! The MDM's directory (users, devices, groups), handed to the rules as a value.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::fast_map::FastMap;

use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, ClientUserId, Platform, SerialNumber};

use crate::error::FormatError;
use crate::ids::GroupId;
use crate::policy::OsVersion;

/// Who owns a device.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Ownership {
    /// Owned by the organisation. Default.
    #[default]
    Corporate,
    /// Owned by the person (BYOD).
    Personal,
}

/// How a device was enrolled.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum EnrollmentType {
    /// Profile-based Device Enrollment. Default.
    #[default]
    Device,
    /// Automated Device Enrollment (ADE / DEP).
    Automated,
    /// User Enrollment (BYOD, Managed Apple Account).
    User,
    /// Shared iPad: several users, no single user affinity.
    SharedIpad,
}

impl EnrollmentType {
    /// Lower-case name as written in directory files.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentType::Device => "device",
            EnrollmentType::Automated => "automated",
            EnrollmentType::User => "user",
            EnrollmentType::SharedIpad => "sharedIpad",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A person in the MDM's directory. Their `id` is also their VPP `clientUserId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DirectoryUser {
    /// Stable id of the user; used as the VPP `clientUserId` (Apple advises a GUID, not an email).
    pub id: ClientUserId,
    /// Email for a VPP user created with an invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Managed Apple Account: the VPP user is associated at once, no invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_apple_id: Option<String>,
    /// Retired (left the organisation). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retired: bool,
}

impl DirectoryUser {
    /// A user with no email and no Managed Apple Account.
    pub fn new(id: ClientUserId) -> Self {
        Self {
            id,
            email: None,
            managed_apple_id: None,
            retired: false,
        }
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the Managed Apple Account.
    pub fn with_managed_apple_id(mut self, id: impl Into<String>) -> Self {
        self.managed_apple_id = Some(id.into());
        self
    }

    /// Marks the user retired.
    pub fn retired(mut self) -> Self {
        self.retired = true;
        self
    }
}

/// A device in the MDM's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DirectoryDevice {
    /// Serial number (the device-licence holder id).
    pub serial_number: SerialNumber,
    /// Platform.
    pub platform: Platform,
    /// OS version, e.g. `"17.4.1"`.
    pub os_version: OsVersion,
    /// User affinity: the device's primary user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ClientUserId>,
    /// Corporate (default) or personal.
    #[serde(default)]
    pub ownership: Ownership,
    /// Enrollment type (default `device`).
    #[serde(default)]
    pub enrollment: EnrollmentType,
    /// Supervised. Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub supervised: bool,
    /// Whether the App Store is allowed on the device. Default true.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub app_store_allowed: bool,
    /// The adam ids of managed apps and books the device reports installed; absent when
    /// the MDM has no inventory for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<BTreeSet<AdamId>>,
    /// Retired (wiped, lost, sold). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retired: bool,
}

impl DirectoryDevice {
    /// A corporate, profile-enrolled, unsupervised device with the App Store allowed,
    /// no user and no inventory.
    pub fn new(serial_number: SerialNumber, platform: Platform, os_version: OsVersion) -> Self {
        Self {
            serial_number,
            platform,
            os_version,
            user: None,
            ownership: Ownership::Corporate,
            enrollment: EnrollmentType::Device,
            supervised: false,
            app_store_allowed: true,
            installed: None,
            retired: false,
        }
    }

    /// Sets the user affinity.
    pub fn with_user(mut self, user: ClientUserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Sets the enrollment type.
    pub fn with_enrollment(mut self, e: EnrollmentType) -> Self {
        self.enrollment = e;
        self
    }

    /// Sets the ownership.
    pub fn with_ownership(mut self, o: Ownership) -> Self {
        self.ownership = o;
        self
    }

    /// Sets supervision.
    pub fn supervised(mut self, s: bool) -> Self {
        self.supervised = s;
        self
    }

    /// Sets whether the App Store is allowed.
    pub fn with_app_store(mut self, allowed: bool) -> Self {
        self.app_store_allowed = allowed;
        self
    }

    /// Sets the installed inventory.
    pub fn with_installed(mut self, installed: impl IntoIterator<Item = AdamId>) -> Self {
        self.installed = Some(installed.into_iter().collect());
        self
    }

    /// Marks the device retired.
    pub fn retired(mut self) -> Self {
        self.retired = true;
        self
    }

    /// The user a user licence would go to: the affinity user, except on a Shared iPad.
    pub fn licence_user(&self) -> Option<&ClientUserId> {
        match self.enrollment {
            EnrollmentType::SharedIpad => None,
            _ => self.user.as_ref(),
        }
    }

    /// Whether the inventory is known and lists the adam id (`None` when unknown).
    pub fn has_installed(&self, adam_id: &AdamId) -> Option<bool> {
        self.installed.as_ref().map(|s| s.contains(adam_id))
    }
}

/// A directory group: users and devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Group {
    /// Id referenced by policies.
    pub id: GroupId,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Member users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<ClientUserId>,
    /// Member devices. A group with any device is a device group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<SerialNumber>,
}

impl Group {
    /// A group of users and devices.
    pub fn new(id: GroupId, users: Vec<ClientUserId>, devices: Vec<SerialNumber>) -> Self {
        Self {
            id,
            name: None,
            users,
            devices,
        }
    }

    /// Whether the group lists devices (then `Available` and books may not target it).
    pub fn is_device_group(&self) -> bool {
        !self.devices.is_empty()
    }
}

/// The whole directory. Construct with [`Directory::new`] or [`Directory::from_json`]; both
/// check that ids are unique and that every reference names a known user or device.
///
/// A directory never changes once built, and a clone shares it (a reference count): passing
/// clones of one directory to a [`PlanSession`](crate::PlanSession) costs nothing to copy and
/// lets it tell the directory unchanged at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    inner: Arc<Data>,
}

impl Serialize for Directory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

#[derive(Debug, Default, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    users: Vec<DirectoryUser>,
    devices: Vec<DirectoryDevice>,
    groups: Vec<Group>,
    #[serde(skip)]
    user_index: FastMap<ClientUserId, usize>,
    #[serde(skip)]
    device_index: FastMap<SerialNumber, usize>,
    #[serde(skip)]
    group_index: FastMap<GroupId, usize>,
}

/// Equal people and groups (the indexes follow from them).
impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users && self.devices == other.devices && self.groups == other.groups
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    users: Vec<DirectoryUser>,
    #[serde(default)]
    devices: Vec<DirectoryDevice>,
    #[serde(default)]
    groups: Vec<Group>,
}

impl<'de> Deserialize<'de> for Directory {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = DirectoryFile::deserialize(d)?;
        Directory::new(f.users, f.devices, f.groups).map_err(serde::de::Error::custom)
    }
}

impl Directory {
    /// Builds and checks a directory.
    pub fn new(
        users: Vec<DirectoryUser>,
        devices: Vec<DirectoryDevice>,
        groups: Vec<Group>,
    ) -> Result<Self, FormatError> {
        let mut user_index = FastMap::with_capacity_and_hasher(users.len(), Default::default());
        for (i, u) in users.iter().enumerate() {
            if user_index.insert(u.id.clone(), i).is_some() {
                return Err(FormatError::Duplicate {
                    kind: "user",
                    id: u.id.to_string(),
                });
            }
        }
        let mut device_index = FastMap::with_capacity_and_hasher(devices.len(), Default::default());
        for (i, d) in devices.iter().enumerate() {
            if device_index.insert(d.serial_number.clone(), i).is_some() {
                return Err(FormatError::Duplicate {
                    kind: "device",
                    id: d.serial_number.to_string(),
                });
            }
            if let Some(u) = &d.user {
                if !user_index.contains_key(u) {
                    return Err(FormatError::UnknownReference {
                        from: format!("device {}", d.serial_number),
                        kind: "user",
                        id: u.to_string(),
                    });
                }
            }
        }
        let mut group_index = FastMap::with_capacity_and_hasher(groups.len(), Default::default());
        for (i, g) in groups.iter().enumerate() {
            if group_index.insert(g.id.clone(), i).is_some() {
                return Err(FormatError::Duplicate {
                    kind: "group",
                    id: g.id.to_string(),
                });
            }
            if let Some(u) = g.users.iter().find(|u| !user_index.contains_key(*u)) {
                return Err(FormatError::UnknownReference {
                    from: format!("group {}", g.id),
                    kind: "user",
                    id: u.to_string(),
                });
            }
            if let Some(d) = g.devices.iter().find(|d| !device_index.contains_key(*d)) {
                return Err(FormatError::UnknownReference {
                    from: format!("group {}", g.id),
                    kind: "device",
                    id: d.to_string(),
                });
            }
        }
        Ok(Self {
            inner: Arc::new(Data {
                users,
                devices,
                groups,
                user_index,
                device_index,
                group_index,
            }),
        })
    }

    /// Whether `other` is this directory or a clone of it (a cheap check: `false` says
    /// nothing, two directories built apart may still be equal).
    pub(crate) fn is_clone_of(&self, other: &Directory) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Parses a JSON directory file (format in `docs/policies.md`).
    ///
    /// The top level must be a JSON object: anything else (an array, a string, ...) is
    /// [`FormatError::NotAnObject`] with its line and column.
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        FormatError::expect_object("directory file", text)?;
        let f: DirectoryFile =
            serde_json::from_str(text).map_err(|e| FormatError::json("directory file", &e))?;
        Self::new(f.users, f.devices, f.groups)
    }

    /// Renders the directory as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// All users, in file order.
    pub fn users(&self) -> &[DirectoryUser] {
        &self.inner.users
    }

    /// All devices, in file order.
    pub fn devices(&self) -> &[DirectoryDevice] {
        &self.inner.devices
    }

    /// All groups, in file order.
    pub fn groups(&self) -> &[Group] {
        &self.inner.groups
    }

    /// A user by id.
    pub fn user(&self, id: &ClientUserId) -> Option<&DirectoryUser> {
        self.inner.user_index.get(id).map(|&i| &self.inner.users[i])
    }

    /// A device by serial number.
    pub fn device(&self, serial: &SerialNumber) -> Option<&DirectoryDevice> {
        self.inner
            .device_index
            .get(serial)
            .map(|&i| &self.inner.devices[i])
    }

    /// A group by id.
    pub fn group(&self, id: &GroupId) -> Option<&Group> {
        self.inner
            .group_index
            .get(id)
            .map(|&i| &self.inner.groups[i])
    }

    pub(crate) fn group_pos(&self, id: &GroupId) -> Option<usize> {
        self.inner.group_index.get(id).copied()
    }

    pub(crate) fn user_pos(&self, id: &ClientUserId) -> Option<usize> {
        self.inner.user_index.get(id).copied()
    }

    pub(crate) fn device_pos(&self, serial: &SerialNumber) -> Option<usize> {
        self.inner.device_index.get(serial).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_references() {
        let d = Directory::from_json(
            r#"{"users":[{"id":"u1","email":"a@example.org"}],
                "devices":[{"serialNumber":"C1","platform":"iOS","osVersion":"17.4","user":"u1"}],
                "groups":[{"id":"g","users":["u1"],"devices":["C1"]}]}"#,
        )
        .unwrap();
        let dev = &d.devices()[0];
        assert!(dev.app_store_allowed);
        assert_eq!(dev.enrollment, EnrollmentType::Device);
        assert!(d
            .group(&GroupId::new("g").unwrap())
            .unwrap()
            .is_device_group());

        let err =
            Directory::from_json(r#"{"groups":[{"id":"g","users":["nobody"]}]}"#).unwrap_err();
        assert!(matches!(
            err,
            FormatError::UnknownReference { kind: "user", .. }
        ));
        let err = Directory::from_json(
            r#"{"devices":[{"serialNumber":"C1","platform":"iOS","osVersion":"17"},
                           {"serialNumber":"C1","platform":"iOS","osVersion":"17"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, FormatError::Duplicate { kind: "device", .. }));
        let err = Directory::from_json(r#"{"users":[{"id":"u1","mail":"x"}]}"#).unwrap_err();
        assert!(matches!(err, FormatError::Json { .. }), "{err}");
        let via_serde: Result<Directory, _> =
            serde_json::from_str(r#"{"groups":[{"id":"g","devices":["X9"]}]}"#);
        assert!(via_serde.is_err());
    }

    #[test]
    fn shared_ipad_has_no_licence_user() {
        let u = ClientUserId::new("u1").unwrap();
        let d = DirectoryDevice::new(
            SerialNumber::new("C1").unwrap(),
            Platform::Ios,
            OsVersion::parse("17").unwrap(),
        )
        .with_user(u.clone());
        assert_eq!(d.licence_user(), Some(&u));
        assert_eq!(
            d.with_enrollment(EnrollmentType::SharedIpad).licence_user(),
            None
        );
    }
}
