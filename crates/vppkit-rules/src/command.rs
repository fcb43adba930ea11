//! MDM commands the plan asks the MDM to send, with their plist rendering.

use plist::{Dictionary, Value};
use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, Platform};

use crate::directory::{DirectoryDevice, EnrollmentType};
use crate::policy::AppSettings;
use crate::schema::CommandKind;

/// `ProgramID` of the Apps and Books invitation (`InviteToProgram`).
pub const CLOUD_VPP_PROGRAM_ID: &str = "com.apple.cloudvpp";

/// `ManagementFlags` bit: remove the app when the MDM profile is removed.
pub const FLAG_REMOVE_WITH_MDM: u64 = 1;
/// `ManagementFlags` bit: prevent backup of the app's data.
pub const FLAG_PREVENT_BACKUP: u64 = 4;

/// One MDM command, as a typed value. [`MdmCommand::to_plist`] renders the `Command`
/// dictionary; [`MdmCommand::to_xml`] renders the whole command property list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "requestType")]
#[non_exhaustive]
pub enum MdmCommand {
    /// `InstallApplication` of a VPP app (`PurchaseMethod` 1).
    InstallApplication(InstallApplication),
    /// `RemoveApplication` by bundle id.
    RemoveApplication {
        /// Bundle id of the managed app.
        identifier: String,
        /// The app's adam id (not sent; kept for explanations and journals).
        adam_id: AdamId,
    },
    /// `InstallMedia` of a store book (user-licensed).
    InstallMedia {
        /// The book's adam id, sent as the integer `iTunesStoreID`.
        adam_id: AdamId,
    },
    /// `RemoveMedia` of a store book.
    RemoveMedia {
        /// The book's adam id, sent as the **string** `iTunesStoreID` (Apple's schema
        /// types it `<string>` here, `<integer>` in `InstallMedia`).
        adam_id: AdamId,
    },
    /// `InviteToProgram` for the Apps and Books programme (`com.apple.cloudvpp`).
    InviteToProgram {
        /// The invitation URL (Apple's `invitationEmail` template with the user's invite code).
        invitation_url: String,
    },
}

/// The keys of an `InstallApplication` command for a VPP app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstallApplication {
    /// The adam id, sent as the integer `iTunesStoreID`.
    pub adam_id: AdamId,
    /// `ManagementFlags` (bit OR of [`FLAG_REMOVE_WITH_MDM`] and [`FLAG_PREVENT_BACKUP`]);
    /// omitted when `None`.
    pub management_flags: Option<u64>,
    /// `Attributes.Removable` (iOS and tvOS 14+); omitted when `None`.
    pub removable: Option<bool>,
    /// `InstallAsManaged` (macOS 11+); omitted when false.
    pub install_as_managed: bool,
    /// `ChangeManagementState` = `Managed` (take over a user-installed copy); omitted when false.
    pub take_management: bool,
    /// The policy asked to prevent automatic updates. Apple's `InstallApplication` has no key
    /// for it, so it is not rendered; embedders apply it with their own mechanism.
    pub prevent_automatic_updates: bool,
}

impl InstallApplication {
    /// A bare install: `iTunesStoreID` and `PurchaseMethod` 1, nothing else.
    pub fn new(adam_id: AdamId) -> Self {
        Self {
            adam_id,
            management_flags: None,
            removable: None,
            install_as_managed: false,
            take_management: false,
            prevent_automatic_updates: false,
        }
    }

    /// The install for one device, from a policy's settings and the device's platform,
    /// enrollment and OS version (a key is left out where Apple's schema says the device's OS version
    /// predates it; an empty version, unknown, leaves every key in):
    ///
    /// - `ManagementFlags`: 1 when `uninstallOnDeviceRemoval`, plus 4 when `preventBackup`
    ///   (left out on macOS before 11.0, and on macOS with User Enrollment, where Apple
    ///   forbids the key);
    /// - `Attributes.Removable` = false when the policy says the app is not removable
    ///   (iOS and tvOS 14.0 and later only);
    /// - `InstallAsManaged` on macOS 11.0 and later (Apple requires it for flag 1);
    /// - `ChangeManagementState` = `Managed` except under User Enrollment, where Apple
    ///   forbids it, and before iOS 9.0 and macOS 11.0.
    pub fn for_device(adam_id: AdamId, settings: &AppSettings, device: &DirectoryDevice) -> Self {
        let (platform, os) = (device.platform, &device.os_version);
        let user_enrollment = device.enrollment == EnrollmentType::User;
        let mut flags = 0;
        if settings.uninstall_on_device_removal {
            flags |= FLAG_REMOVE_WITH_MDM;
        }
        if settings.prevent_backup {
            flags |= FLAG_PREVENT_BACKUP;
        }
        // An unknown (empty) version is not checked, as in `command_channel`.
        let since = |version: &[u32]| os.parts().is_empty() || os.cmp_parts(version).is_ge();
        let macos = platform == Platform::MacOs;
        // Key-level versions from Apple's schema (application.install.yaml).
        let macos_11 = macos && since(&[11, 0]);
        let management_flags = if flags == 0 || (macos && (user_enrollment || !macos_11)) {
            None
        } else {
            Some(flags)
        };
        let removable = match platform {
            Platform::Ios | Platform::TvOs if !settings.removable && since(&[14, 0]) => Some(false),
            _ => None,
        };
        let take_management = !user_enrollment
            && match platform {
                Platform::Ios => since(&[9, 0]),
                Platform::MacOs => macos_11,
                _ => true,
            };
        Self {
            adam_id,
            management_flags,
            removable,
            install_as_managed: macos_11 && !user_enrollment,
            take_management,
            prevent_automatic_updates: settings.prevent_automatic_updates,
        }
    }
}

impl MdmCommand {
    /// The `RequestType` value.
    pub fn request_type(&self) -> &'static str {
        self.kind().request_type()
    }

    /// Which command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            MdmCommand::InstallApplication(_) => CommandKind::InstallApplication,
            MdmCommand::RemoveApplication { .. } => CommandKind::RemoveApplication,
            MdmCommand::InstallMedia { .. } => CommandKind::InstallMedia,
            MdmCommand::RemoveMedia { .. } => CommandKind::RemoveMedia,
            MdmCommand::InviteToProgram { .. } => CommandKind::InviteToProgram,
        }
    }

    /// The adam id the command is about, if any.
    pub fn adam_id(&self) -> Option<&AdamId> {
        match self {
            MdmCommand::InstallApplication(i) => Some(&i.adam_id),
            MdmCommand::RemoveApplication { adam_id, .. }
            | MdmCommand::InstallMedia { adam_id }
            | MdmCommand::RemoveMedia { adam_id } => Some(adam_id),
            MdmCommand::InviteToProgram { .. } => None,
        }
    }

    /// The `Command` dictionary of the MDM command.
    pub fn to_plist(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("RequestType".into(), Value::from(self.request_type()));
        match self {
            MdmCommand::InstallApplication(i) => {
                d.insert("iTunesStoreID".into(), Value::from(i.adam_id.as_u64()));
                let mut options = Dictionary::new();
                options.insert("PurchaseMethod".into(), Value::from(1u64));
                d.insert("Options".into(), Value::Dictionary(options));
                if let Some(flags) = i.management_flags {
                    d.insert("ManagementFlags".into(), Value::from(flags));
                }
                if let Some(removable) = i.removable {
                    let mut attrs = Dictionary::new();
                    attrs.insert("Removable".into(), Value::Boolean(removable));
                    d.insert("Attributes".into(), Value::Dictionary(attrs));
                }
                if i.install_as_managed {
                    d.insert("InstallAsManaged".into(), Value::Boolean(true));
                }
                if i.take_management {
                    d.insert("ChangeManagementState".into(), Value::from("Managed"));
                }
            }
            MdmCommand::RemoveApplication { identifier, .. } => {
                d.insert("Identifier".into(), Value::from(identifier.as_str()));
            }
            MdmCommand::InstallMedia { adam_id } => {
                d.insert("MediaType".into(), Value::from("Book"));
                d.insert("iTunesStoreID".into(), Value::from(adam_id.as_u64()));
            }
            MdmCommand::RemoveMedia { adam_id } => {
                d.insert("MediaType".into(), Value::from("Book"));
                d.insert("iTunesStoreID".into(), Value::from(adam_id.as_str()));
            }
            MdmCommand::InviteToProgram { invitation_url } => {
                d.insert("ProgramID".into(), Value::from(CLOUD_VPP_PROGRAM_ID));
                d.insert("InvitationURL".into(), Value::from(invitation_url.as_str()));
            }
        }
        d
    }

    /// The whole command as an XML property list: `{Command: ..., CommandUUID: ...}`.
    pub fn to_xml(&self, command_uuid: &str) -> String {
        let mut outer = Dictionary::new();
        outer.insert("Command".into(), Value::Dictionary(self.to_plist()));
        outer.insert("CommandUUID".into(), Value::from(command_uuid));
        let mut buf = Vec::new();
        // Writing a dictionary of strings, integers and booleans into memory cannot fail.
        if let Err(e) = plist::to_writer_xml(&mut buf, &Value::Dictionary(outer)) {
            unreachable!("in-memory plist rendering failed: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// One sentence saying what the command does.
    pub fn explain(&self) -> String {
        match self {
            MdmCommand::InstallApplication(i) => format!(
                "Install app {} with its VPP licence (PurchaseMethod 1){}.",
                i.adam_id,
                match i.management_flags {
                    Some(f) => format!(", ManagementFlags {f}"),
                    None => String::new(),
                }
            ),
            MdmCommand::RemoveApplication {
                identifier,
                adam_id,
            } => format!("Remove app {adam_id} ({identifier}) from the device."),
            MdmCommand::InstallMedia { adam_id } => {
                format!("Install book {adam_id} from the user's VPP licence.")
            }
            MdmCommand::RemoveMedia { adam_id } => {
                format!("Remove book {adam_id} from the device.")
            }
            MdmCommand::InviteToProgram { .. } => {
                "Invite the device's user to the Apps and Books programme.".to_owned()
            }
        }
    }
}

/// Builds an invitation link from Apple's `urls.invitationEmail` template and a user's
/// `inviteCode` (replaces `%25inviteCode%25`, or `%inviteCode%` in a decoded template).
pub fn invitation_link(template: &str, invite_code: &str) -> String {
    template
        .replace("%25inviteCode%25", invite_code)
        .replace("%inviteCode%", invite_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::OsVersion;
    use vppkit_core::SerialNumber;

    fn adam() -> AdamId {
        AdamId::new("1200000001").unwrap()
    }

    fn device(platform: Platform, enrollment: EnrollmentType, version: &str) -> DirectoryDevice {
        DirectoryDevice::new(
            SerialNumber::new("D1").unwrap(),
            platform,
            OsVersion::parse(version).unwrap(),
        )
        .with_enrollment(enrollment)
    }

    #[test]
    fn install_application_renders_purchase_method_and_flags() {
        let settings = AppSettings::default();
        let cmd = MdmCommand::InstallApplication(InstallApplication::for_device(
            adam(),
            &settings,
            &device(Platform::Ios, EnrollmentType::Device, "17.5"),
        ));
        let d = cmd.to_plist();
        assert_eq!(
            d.get("RequestType").and_then(Value::as_string),
            Some("InstallApplication")
        );
        assert_eq!(
            d.get("iTunesStoreID").and_then(Value::as_unsigned_integer),
            Some(1_200_000_001)
        );
        let options = d.get("Options").and_then(Value::as_dictionary).unwrap();
        assert_eq!(
            options
                .get("PurchaseMethod")
                .and_then(Value::as_unsigned_integer),
            Some(1)
        );
        assert_eq!(
            d.get("ManagementFlags")
                .and_then(Value::as_unsigned_integer),
            Some(1)
        );
        assert_eq!(
            d.get("ChangeManagementState").and_then(Value::as_string),
            Some("Managed")
        );
        assert!(d.get("Attributes").is_none());
        assert!(d.get("InstallAsManaged").is_none());
    }

    #[test]
    fn settings_map_to_keys() {
        let settings = AppSettings {
            removable: false,
            uninstall_on_device_removal: true,
            prevent_backup: true,
            prevent_automatic_updates: true,
        };
        let ios = InstallApplication::for_device(
            adam(),
            &settings,
            &device(Platform::Ios, EnrollmentType::User, "17.5"),
        );
        assert_eq!(ios.management_flags, Some(5));
        assert_eq!(ios.removable, Some(false));
        assert!(!ios.take_management, "not allowed under User Enrollment");
        let mac = InstallApplication::for_device(
            adam(),
            &settings,
            &device(Platform::MacOs, EnrollmentType::Automated, "14.5"),
        );
        assert!(mac.install_as_managed);
        assert_eq!(mac.removable, None);
        let mac_ue = InstallApplication::for_device(
            adam(),
            &settings,
            &device(Platform::MacOs, EnrollmentType::User, "14.5"),
        );
        assert_eq!(mac_ue.management_flags, None);
        assert!(!mac_ue.install_as_managed);
    }

    /// Keys an OS version predates are left out (Apple's key-level `introduced`).
    #[test]
    fn keys_follow_the_devices_os_version() {
        let settings = AppSettings {
            removable: false,
            uninstall_on_device_removal: true,
            prevent_backup: true,
            prevent_automatic_updates: false,
        };
        let at = |platform, version: &str| {
            InstallApplication::for_device(
                adam(),
                &settings,
                &device(platform, EnrollmentType::Automated, version),
            )
        };
        let old_mac = at(Platform::MacOs, "10.15.7");
        assert_eq!(old_mac.management_flags, None);
        assert!(!old_mac.install_as_managed && !old_mac.take_management);
        let mac = at(Platform::MacOs, "11.0");
        assert_eq!(mac.management_flags, Some(5));
        assert!(mac.install_as_managed && mac.take_management);
        assert_eq!(at(Platform::Ios, "13.7").removable, None);
        assert_eq!(at(Platform::Ios, "14").removable, Some(false));
        assert_eq!(at(Platform::TvOs, "13.4").removable, None);
        assert!(!at(Platform::Ios, "8.4").take_management);
        assert!(at(Platform::Ios, "9.0").take_management);
        assert_eq!(at(Platform::Ios, "8.4").management_flags, Some(5));
        // Unknown version: every key, as before versions were checked.
        let unknown = InstallApplication::for_device(
            adam(),
            &settings,
            &DirectoryDevice::new(
                SerialNumber::new("D1").unwrap(),
                Platform::MacOs,
                OsVersion::default(),
            ),
        );
        assert_eq!(unknown.management_flags, Some(5));
        assert!(unknown.install_as_managed && unknown.take_management);
    }

    #[test]
    fn xml_rendering() {
        let remove = MdmCommand::RemoveMedia { adam_id: adam() }.to_plist();
        assert_eq!(
            remove.get("iTunesStoreID").and_then(Value::as_string),
            Some("1200000001"),
            "RemoveMedia's iTunesStoreID is a string in Apple's schema"
        );
        let xml = MdmCommand::InstallMedia { adam_id: adam() }.to_xml("cmd-1");
        assert!(xml.contains("<key>MediaType</key>"));
        assert!(xml.contains("<string>Book</string>"));
        assert!(xml.contains("<integer>1200000001</integer>"));
        assert!(xml.contains("<string>cmd-1</string>"));
        let invite = MdmCommand::InviteToProgram {
            invitation_url: invitation_link(
                "https://buy.example/assoc?inviteCode=%25inviteCode%25&mt=8",
                "abc",
            ),
        };
        let d = invite.to_plist();
        assert_eq!(
            d.get("ProgramID").and_then(Value::as_string),
            Some(CLOUD_VPP_PROGRAM_ID)
        );
        assert_eq!(
            d.get("InvitationURL").and_then(Value::as_string),
            Some("https://buy.example/assoc?inviteCode=abc&mt=8")
        );
        let remove = MdmCommand::RemoveApplication {
            identifier: "com.example.app".into(),
            adam_id: adam(),
        };
        assert_eq!(
            remove
                .to_plist()
                .get("Identifier")
                .and_then(Value::as_string),
            Some("com.example.app")
        );
        assert!(remove.explain().ends_with('.'));
    }
}
