//! Apple's schema facts for the MDM commands vppkit renders: on which operating
//! systems each command exists, whether User Enrollment and Shared iPad allow it,
//! and on which channel (device or user) it goes.
//!
//! Transcribed from Apple's `apple/device-management` schema (`mdm/commands/`,
//! release iOS 18.1 / macOS 15.1): `application.install.yaml`,
//! `application.remove.yaml`, `application.invitetoprogram.yaml`,
//! `media.install.yaml`, `media.remove.yaml`. The crate's tests parse those YAML
//! files and check this table and every rendered command against them.
//!
//! Two readings of the schema, kept in one place:
//! - a platform block without `userenrollment` does not restrict User Enrollment;
//! - a platform block without `devicechannel`/`userchannel` has only the device
//!   channel (iOS, tvOS, watchOS and visionOS have no user channel outside Shared iPad).

use std::fmt;

use serde::{Deserialize, Serialize};
use vppkit_core::Platform;

use crate::directory::EnrollmentType;
use crate::policy::OsVersion;

/// The MDM commands vppkit renders, by `RequestType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandKind {
    /// `InstallApplication`.
    InstallApplication,
    /// `RemoveApplication`.
    RemoveApplication,
    /// `InstallMedia`.
    InstallMedia,
    /// `RemoveMedia`.
    RemoveMedia,
    /// `InviteToProgram`.
    InviteToProgram,
}

impl CommandKind {
    /// Every kind.
    pub const ALL: &'static [CommandKind] = &[
        CommandKind::InstallApplication,
        CommandKind::RemoveApplication,
        CommandKind::InstallMedia,
        CommandKind::RemoveMedia,
        CommandKind::InviteToProgram,
    ];

    /// The `RequestType` value.
    pub fn request_type(self) -> &'static str {
        match self {
            CommandKind::InstallApplication => "InstallApplication",
            CommandKind::RemoveApplication => "RemoveApplication",
            CommandKind::InstallMedia => "InstallMedia",
            CommandKind::RemoveMedia => "RemoveMedia",
            CommandKind::InviteToProgram => "InviteToProgram",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.request_type())
    }
}

/// The MDM channel a command goes on.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Channel {
    /// The device channel (the only one on iOS outside Shared iPad, tvOS, watchOS
    /// and visionOS).
    #[default]
    Device,
    /// The user channel (macOS users, Shared iPad users).
    User,
}

impl Channel {
    /// The channel's name, as it is serialised: `device` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Device => "device",
            Channel::User => "user",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why Apple's schema does not allow a command on a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum CommandRefusal {
    /// The command does not exist on this operating system.
    NotOnPlatform,
    /// The device's OS version is older than the one the command came with.
    OsTooOld {
        /// The first version with the command (`major.minor`).
        introduced: String,
    },
    /// Not allowed under User Enrollment on this operating system.
    UserEnrollment,
    /// Not allowed on a Shared iPad (or Shared iPad mode on an OS that has none).
    SharedIpad,
}

impl fmt::Display for CommandRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandRefusal::NotOnPlatform => {
                f.write_str("Apple does not offer it on this platform")
            }
            CommandRefusal::OsTooOld { introduced } => {
                write!(f, "it needs OS version {introduced} or later")
            }
            CommandRefusal::UserEnrollment => f.write_str("Apple forbids it under User Enrollment"),
            CommandRefusal::SharedIpad => f.write_str("Apple does not allow it on a Shared iPad"),
        }
    }
}

/// One command on one operating system, as Apple's schema says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformRule {
    /// The first version with the command (`major`, `minor`).
    pub introduced: (u32, u32),
    /// Whether User Enrollment allows it.
    pub user_enrollment: bool,
    /// On Shared iPad: `Some((device channel, user channel))` when allowed.
    pub shared_ipad: Option<(bool, bool)>,
    /// Whether it goes on the device channel.
    pub device_channel: bool,
    /// Whether it goes on the user channel.
    pub user_channel: bool,
}

const fn on(major: u32, minor: u32, user_enrollment: bool) -> PlatformRule {
    PlatformRule {
        introduced: (major, minor),
        user_enrollment,
        shared_ipad: None,
        device_channel: true,
        user_channel: false,
    }
}

const fn ios(major: u32, minor: u32, user_enrollment: bool, shared: (bool, bool)) -> PlatformRule {
    PlatformRule {
        shared_ipad: Some(shared),
        ..on(major, minor, user_enrollment)
    }
}

const fn macos(
    major: u32,
    minor: u32,
    user_enrollment: bool,
    device_channel: bool,
    user_channel: bool,
) -> PlatformRule {
    PlatformRule {
        device_channel,
        user_channel,
        ..on(major, minor, user_enrollment)
    }
}

/// Apple's rule for a command on a platform; `None` where the command does not exist.
pub fn platform_rule(kind: CommandKind, platform: Platform) -> Option<PlatformRule> {
    use CommandKind as K;
    use Platform as P;
    Some(match (kind, platform) {
        (K::InstallApplication, P::Ios) => ios(5, 0, true, (true, false)),
        (K::InstallApplication, P::MacOs) => macos(10, 9, true, true, true),
        (K::InstallApplication, P::TvOs) => on(10, 2, true),
        (K::InstallApplication, P::VisionOs) => on(1, 1, true),
        (K::InstallApplication, P::WatchOs) => on(10, 0, true),
        (K::RemoveApplication, P::Ios) => ios(5, 0, true, (true, false)),
        (K::RemoveApplication, P::MacOs) => macos(11, 0, false, true, false),
        (K::RemoveApplication, P::TvOs) => on(10, 2, true),
        (K::RemoveApplication, P::VisionOs) => on(1, 1, true),
        (K::RemoveApplication, P::WatchOs) => on(10, 0, true),
        (K::InviteToProgram, P::Ios) => ios(7, 0, false, (false, true)),
        (K::InviteToProgram, P::MacOs) => macos(10, 9, false, false, true),
        (K::InstallMedia, P::Ios) => ios(8, 0, true, (true, false)),
        (K::InstallMedia, P::MacOs) => macos(10, 9, false, false, true),
        (K::RemoveMedia, P::Ios) => ios(8, 0, true, (true, false)),
        _ => return None,
    })
}

/// Whether Apple allows a command on a device, and on which channel it goes.
///
/// `user_licensed` picks the channel where both are open (macOS): a user licence
/// goes on the user channel, anything else on the device channel. An empty
/// `os_version` (unknown) skips the version check.
pub fn command_channel(
    kind: CommandKind,
    platform: Platform,
    enrollment: EnrollmentType,
    os_version: &OsVersion,
    user_licensed: bool,
) -> Result<Channel, CommandRefusal> {
    let rule = platform_rule(kind, platform).ok_or(CommandRefusal::NotOnPlatform)?;
    if !os_version.parts().is_empty() {
        let (mut major, mut minor) = rule.introduced;
        // A VPP licence install needs `Options` (`PurchaseMethod` 1), which Apple's schema
        // gives from iOS 7.0 (`InstallApplication` itself from 5.0).
        if kind == CommandKind::InstallApplication && platform == Platform::Ios {
            (major, minor) = (major, minor).max((7, 0));
        }
        if os_version.cmp_parts(&[major, minor]).is_lt() {
            return Err(CommandRefusal::OsTooOld {
                introduced: format!("{major}.{minor}"),
            });
        }
    }
    let (device, user) = match enrollment {
        EnrollmentType::User if !rule.user_enrollment => {
            return Err(CommandRefusal::UserEnrollment)
        }
        EnrollmentType::SharedIpad => rule.shared_ipad.ok_or(CommandRefusal::SharedIpad)?,
        _ => (rule.device_channel, rule.user_channel),
    };
    match (device, user) {
        (true, true) if user_licensed => Ok(Channel::User),
        (true, _) => Ok(Channel::Device),
        (false, true) => Ok(Channel::User),
        // No channel at all: Apple lists the mode as allowed but names no channel.
        (false, false) => Err(if enrollment == EnrollmentType::SharedIpad {
            CommandRefusal::SharedIpad
        } else {
            CommandRefusal::NotOnPlatform
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> OsVersion {
        OsVersion::parse(s).unwrap()
    }

    #[test]
    fn a_channel_is_shown_as_it_is_serialised() {
        for c in [Channel::Device, Channel::User] {
            assert_eq!(
                serde_json::json!(c.to_string()),
                serde_json::to_value(c).unwrap()
            );
        }
        assert_eq!(Channel::User.to_string(), "user");
    }

    #[test]
    fn the_issue_cases() {
        use CommandKind as K;
        use EnrollmentType as E;
        assert_eq!(
            command_channel(K::InstallMedia, Platform::MacOs, E::User, &v("14"), true),
            Err(CommandRefusal::UserEnrollment)
        );
        assert_eq!(
            command_channel(K::InviteToProgram, Platform::Ios, E::User, &v("17"), true),
            Err(CommandRefusal::UserEnrollment)
        );
        assert_eq!(
            command_channel(K::RemoveMedia, Platform::MacOs, E::Device, &v("14"), true),
            Err(CommandRefusal::NotOnPlatform)
        );
        assert_eq!(
            command_channel(K::InstallMedia, Platform::MacOs, E::Device, &v("14"), true),
            Ok(Channel::User)
        );
        assert_eq!(
            command_channel(
                K::InviteToProgram,
                Platform::Ios,
                E::SharedIpad,
                &v("17"),
                true
            ),
            Ok(Channel::User)
        );
        assert_eq!(
            command_channel(
                K::InstallApplication,
                Platform::Ios,
                E::SharedIpad,
                &v("17"),
                true
            ),
            Ok(Channel::Device)
        );
        assert_eq!(
            command_channel(
                K::InstallApplication,
                Platform::MacOs,
                E::Device,
                &v("14"),
                false
            ),
            Ok(Channel::Device)
        );
        assert_eq!(
            command_channel(
                K::RemoveApplication,
                Platform::MacOs,
                E::Device,
                &v("10.15"),
                false
            ),
            Err(CommandRefusal::OsTooOld {
                introduced: "11.0".into()
            })
        );
        assert_eq!(
            command_channel(
                K::RemoveApplication,
                Platform::MacOs,
                E::Device,
                &OsVersion::default(),
                false
            ),
            Ok(Channel::Device)
        );
    }
}
