//! The embedder's side: MDM commands go out through a [`CommandSink`], and what
//! became of them comes back as a [`CommandResult`].

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vppkit_core::{AssetKey, Holder, LocationId, SerialNumber};
use vppkit_rules::{Channel, MdmCommand, PolicyId};

/// One MDM command for the embedder to queue for a device.
///
/// The engine hands out an install only once Apple confirmed the licence, and a
/// removal as Apple asks (after the disassociation when the licence is released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueuedCommand {
    /// Who the command is for and what it is about: keep it with the MDM
    /// command and pass it back to [`Engine::command_result`](crate::Engine::command_result).
    pub reference: CommandRef,
    /// The command (render it with [`MdmCommand::to_xml`]).
    pub command: MdmCommand,
    /// The policy that asked for it, if any.
    pub policy: Option<PolicyId>,
    /// Which MDM channel it goes on: the device channel, or the channel of the
    /// device's user (macOS users and Shared iPad users, where Apple's schema
    /// allows the command only there).
    #[serde(default)]
    pub channel: Channel,
}

impl QueuedCommand {
    /// Sets the MDM channel the command goes on.
    pub fn on_channel(mut self, channel: Channel) -> Self {
        self.channel = channel;
        self
    }

    /// Builds a queued command with a fresh command UUID.
    pub fn new(
        device: SerialNumber,
        command: MdmCommand,
        location: Option<LocationId>,
        licence: Option<(AssetKey, Holder)>,
        policy: Option<PolicyId>,
    ) -> Self {
        Self {
            reference: CommandRef {
                command_uuid: uuid::Uuid::new_v4().to_string(),
                device,
                request_type: command.request_type().to_owned(),
                location,
                licence,
            },
            command,
            policy,
            channel: Channel::Device,
        }
    }

    /// The command as the MDM protocol's XML plist, with its command UUID.
    pub fn to_xml(&self) -> String {
        self.command.to_xml(&self.reference.command_uuid)
    }
}

/// What identifies a command when its result comes back. Serializable so the MDM
/// can keep it with its own command queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandRef {
    /// The `CommandUUID` of the MDM command.
    pub command_uuid: String,
    /// The device it goes to.
    pub device: SerialNumber,
    /// `InstallApplication`, `RemoveApplication`, `InstallMedia`, ...
    pub request_type: String,
    /// The location whose licence the command uses, if any.
    pub location: Option<LocationId>,
    /// The asset and the licence holder (the device or its user), if any.
    pub licence: Option<(AssetKey, Holder)>,
}

/// The embedder could not queue the commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the MDM command sink failed: {message}")]
#[non_exhaustive]
pub struct SinkError {
    /// What went wrong (shown to operators; no secrets).
    pub message: String,
}

impl SinkError {
    /// A sink failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Where the engine sends MDM commands: implemented by the embedding MDM, which
/// queues them for its devices (APNs push, then the device fetches them).
///
/// `send` must be idempotent on [`CommandRef::command_uuid`]: after a crash the
/// engine may hand the same command again rather than lose it.
#[async_trait]
pub trait CommandSink: Send + Sync + 'static {
    /// Queues the commands. An error makes the engine keep them and retry later.
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError>;
}

/// Why a device refused a command (`RejectionReason` or `ErrorChain`), as the MDM
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RejectionReason {
    /// `AppAlreadyInstalled`.
    AppAlreadyInstalled,
    /// `AppAlreadyQueued`.
    AppAlreadyQueued,
    /// `AppStoreDisabled`.
    AppStoreDisabled,
    /// `CouldNotVerifyAppID`.
    CouldNotVerifyAppId,
    /// `CouldNotVerifyITunesStoreID`.
    CouldNotVerifyItunesStoreId,
    /// `NotSupported`.
    NotSupported,
    /// `PurchaseMethodNotSupported`.
    PurchaseMethodNotSupported,
    /// `PurchaseNotFound`: no licence in the user's purchase history.
    PurchaseNotFound,
    /// `WrongMediaType`.
    WrongMediaType,
    /// `DownloadInvalid`.
    DownloadInvalid,
    /// Apple's 9610, "License not found".
    LicenseNotFound,
    /// Any other reason, as reported.
    Other(String),
}

impl RejectionReason {
    const NAMED: &'static [(&'static str, RejectionReason)] = &[
        ("AppAlreadyInstalled", RejectionReason::AppAlreadyInstalled),
        ("AppAlreadyQueued", RejectionReason::AppAlreadyQueued),
        ("AppStoreDisabled", RejectionReason::AppStoreDisabled),
        ("CouldNotVerifyAppID", RejectionReason::CouldNotVerifyAppId),
        (
            "CouldNotVerifyITunesStoreID",
            RejectionReason::CouldNotVerifyItunesStoreId,
        ),
        ("NotSupported", RejectionReason::NotSupported),
        (
            "PurchaseMethodNotSupported",
            RejectionReason::PurchaseMethodNotSupported,
        ),
        ("PurchaseNotFound", RejectionReason::PurchaseNotFound),
        ("WrongMediaType", RejectionReason::WrongMediaType),
        ("DownloadInvalid", RejectionReason::DownloadInvalid),
        ("LicenseNotFound", RejectionReason::LicenseNotFound),
    ];

    /// The reason as the device names it.
    pub fn as_str(&self) -> &str {
        match self {
            RejectionReason::Other(s) => s,
            named => Self::NAMED
                .iter()
                .find(|(_, r)| r == named)
                .map(|(s, _)| *s)
                .unwrap_or("Other"),
        }
    }

    /// Whether trying again later can succeed (the licence is kept meanwhile).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RejectionReason::AppAlreadyQueued | RejectionReason::LicenseNotFound
        )
    }
}

impl FromStr for RejectionReason {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::NAMED
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| RejectionReason::Other(s.chars().take(200).collect())))
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an MDM command, as the MDM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandResult {
    /// The device acknowledged the command; the install is under way.
    Acknowledged,
    /// The device answered `NotNow`; the MDM will send it again.
    NotNow,
    /// The app or book is installed (managed).
    Installed,
    /// The device refused or the install failed.
    Failed(RejectionReason),
    /// The app or book was removed.
    Removed,
    /// The MDM gave up on the command (device gone, command expired, admin).
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam};

    #[test]
    fn rejection_reasons_round_trip() {
        for (name, r) in RejectionReason::NAMED {
            assert_eq!(name.parse::<RejectionReason>().unwrap(), *r);
            assert_eq!(r.as_str(), *name);
        }
        let other: RejectionReason = "SomethingNew".parse().unwrap();
        assert_eq!(other, RejectionReason::Other("SomethingNew".into()));
        assert_eq!(other.to_string(), "SomethingNew");
        assert!(RejectionReason::LicenseNotFound.is_transient());
        assert!(!RejectionReason::AppStoreDisabled.is_transient());
    }

    #[test]
    fn queued_command_reference() {
        let device = SerialNumber::new("C02000000001").unwrap();
        let adam = AdamId::from(409203825);
        let asset = AssetKey::new(adam.clone(), PricingParam::Stdq);
        let cmd = MdmCommand::InstallMedia { adam_id: adam };
        let a = QueuedCommand::new(
            device.clone(),
            cmd.clone(),
            None,
            Some((asset, Holder::Device(device.clone()))),
            None,
        );
        let b = QueuedCommand::new(device, cmd, None, None, None);
        assert_ne!(a.reference.command_uuid, b.reference.command_uuid);
        assert_eq!(a.reference.request_type, "InstallMedia");
        assert!(a.to_xml().contains(&a.reference.command_uuid));
        let json = serde_json::to_string(&a.reference).unwrap();
        let back: CommandRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a.reference);
    }

    #[test]
    fn the_channel_travels_with_the_command() {
        let device = SerialNumber::new("C02000000002").unwrap();
        let cmd = MdmCommand::InstallMedia {
            adam_id: AdamId::from(409203825),
        };
        let q = QueuedCommand::new(device, cmd, None, None, None);
        assert_eq!(q.channel, Channel::Device, "the device channel by default");
        let user = q.on_channel(Channel::User);
        let json = serde_json::to_value(&user).unwrap();
        let back: QueuedCommand = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.channel, Channel::User);
        // Commands stored before the channel existed read back on the device channel.
        let mut old = json;
        old.as_object_mut().unwrap().remove("channel");
        let back: QueuedCommand = serde_json::from_value(old).unwrap();
        assert_eq!(back.channel, Channel::Device);
    }
}
