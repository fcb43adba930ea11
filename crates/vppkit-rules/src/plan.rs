//! The plan: ordered, batched steps from today's state to the desired one, with the items
//! that cannot be done (blocked) or must wait for a licence (waitlisted), each explainable.
//!
//! # Executing a plan
//!
//! For each [`LocationPlan`], in this order: `create_users` (then, once a user exists, its
//! [`Invitation`]s), `associate`, `disassociate`, `revoke`, `retire_users`. Then the
//! [`DeviceCommand`]s, each once its [`Precondition`] holds. Every batch already respects
//! the [`Limits`](crate::Limits) it was planned with.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, AssetKey, ClientUserId, Holder, LocationId, Platform, SerialNumber};

use crate::command::{invitation_link, MdmCommand};
use crate::directory::EnrollmentType;
use crate::ids::{GroupId, PolicyId};
use crate::policy::{Intent, Target};
use crate::schema::{Channel, CommandKind, CommandRefusal};

/// Why a licence is associated or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ChangeReason {
    /// A Required policy, or an Available policy the holder asked to install from.
    Policy,
    /// An Uninstall policy.
    Uninstall,
    /// The holder left every policy's scope and the release rule says release.
    OutOfScope,
    /// The out-of-scope grace period is over.
    GraceExpired,
    /// The device is retired or no longer in the directory.
    DeviceRemoved,
    /// The user is retired or no longer in the directory.
    UserRetired,
}

impl ChangeReason {
    fn phrase(self) -> &'static str {
        match self {
            ChangeReason::Policy => "a policy asks for it",
            ChangeReason::Uninstall => "an Uninstall policy applies",
            ChangeReason::OutOfScope => "the holder left every policy's scope",
            ChangeReason::GraceExpired => "the out-of-scope grace period is over",
            ChangeReason::DeviceRemoved => "the device is retired or gone from the directory",
            ChangeReason::UserRetired => "the user is retired or gone from the directory",
        }
    }
}

/// The reason in words ("the device is retired or gone from the directory").
impl fmt::Display for ChangeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

/// The targets of one Apple request: serial numbers or client user ids, never both (Apple's
/// behaviour with both in one call is uncertain, so the planner does not mix them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum BatchTargets {
    /// `serialNumbers`.
    SerialNumbers(Vec<SerialNumber>),
    /// `clientUserIds`.
    ClientUserIds(Vec<ClientUserId>),
}

impl BatchTargets {
    /// Number of targets.
    pub fn len(&self) -> usize {
        match self {
            BatchTargets::SerialNumbers(v) => v.len(),
            BatchTargets::ClientUserIds(v) => v.len(),
        }
    }

    /// Whether there is no target.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets as holders.
    pub fn holders(&self) -> Vec<Holder> {
        match self {
            BatchTargets::SerialNumbers(v) => v.iter().cloned().map(Holder::Device).collect(),
            BatchTargets::ClientUserIds(v) => v.iter().cloned().map(Holder::User).collect(),
        }
    }

    fn noun(&self) -> &'static str {
        match (self, self.len()) {
            (BatchTargets::SerialNumbers(_), 1) => "device",
            (BatchTargets::SerialNumbers(_), _) => "devices",
            (BatchTargets::ClientUserIds(_), 1) => "user",
            (BatchTargets::ClientUserIds(_), _) => "users",
        }
    }
}

/// One `assets/associate` or `assets/disassociate` request: every asset to (or from) every
/// target, so `assets.len() x targets.len()` holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetBatch {
    /// At most `maxAssets`, sorted.
    pub assets: Vec<AssetKey>,
    /// At most `maxSerialNumbers` or `maxClientUserIds`, sorted.
    pub targets: BatchTargets,
    /// Why.
    pub reason: ChangeReason,
    /// The policies behind it (sorted, for journal causes); empty for releases of holders
    /// that no policy reaches.
    pub policies: Vec<PolicyId>,
}

impl AssetBatch {
    /// Every `(asset, holder)` pair the request creates or removes.
    pub fn holdings(&self) -> Vec<(AssetKey, Holder)> {
        let holders = self.targets.holders();
        let mut out = Vec::with_capacity(self.assets.len() * holders.len());
        for a in &self.assets {
            for h in &holders {
                out.push((a.clone(), h.clone()));
            }
        }
        out
    }

    /// Apple's task count for the request (assets x targets).
    pub fn task_count(&self) -> usize {
        self.assets.len() * self.targets.len()
    }

    fn describe(&self, verb: &str, prep: &str, location: &LocationId) -> String {
        format!(
            "{verb} {} asset{} {prep} {} {} in location {location}, because {}.",
            self.assets.len(),
            if self.assets.len() == 1 { "" } else { "s" },
            self.targets.len(),
            self.targets.noun(),
            self.reason.phrase()
        )
    }
}

/// One `assets/revoke` request: takes back every revocable licence of the targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RevokeBatch {
    /// At most `maxRevokeSerialNumbers` or `maxRevokeClientUserIds`, sorted.
    pub targets: BatchTargets,
    /// Why.
    pub reason: ChangeReason,
}

/// A VPP user to create (`users/create`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserRegistration {
    /// The user's `clientUserId`.
    pub client_user_id: ClientUserId,
    /// Email (user must accept an invitation).
    pub email: Option<String>,
    /// Managed Apple Account (user is associated at once; preferred when both are known).
    pub managed_apple_id: Option<String>,
}

impl UserRegistration {
    /// Whether Apple associates the user at once (created with a Managed Apple Account).
    pub fn associates_at_once(&self) -> bool {
        self.managed_apple_id.is_some()
    }
}

/// One `users/create` request (at most `maxUsers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserBatch {
    /// The users, sorted by id.
    pub users: Vec<UserRegistration>,
}

/// One `users/retire` request (at most `maxUsers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RetireBatch {
    /// The users, sorted.
    pub client_user_ids: Vec<ClientUserId>,
}

/// An invitation to join the Apps and Books programme, for a user created with an email.
/// Send [`Invitation::command`] to each device (`InviteToProgram`), or mail the link when
/// the user has no device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Invitation {
    /// The invited user.
    pub client_user_id: ClientUserId,
    /// Their email.
    pub email: Option<String>,
    /// Devices with this user's affinity where Apple allows `InviteToProgram` (devices
    /// under User Enrollment, and platforms without the command, are left out and
    /// reported as blocked).
    pub devices: Vec<SerialNumber>,
    /// The channel for each of [`Invitation::devices`], in the same order (the user
    /// channel on macOS and Shared iPad).
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// The invite code when the user already exists at Apple; `None` for a user created in
    /// this plan (take it from the create event's result).
    pub invite_code: Option<String>,
}

impl Invitation {
    /// The invitation link from Apple's `urls.invitationEmail` template and an invite code.
    pub fn link(template: &str, invite_code: &str) -> String {
        invitation_link(template, invite_code)
    }

    /// The `InviteToProgram` command for a given invitation URL.
    pub fn command(&self, invitation_url: impl Into<String>) -> MdmCommand {
        MdmCommand::InviteToProgram {
            invitation_url: invitation_url.into(),
        }
    }

    /// The `InviteToProgram` command for each device, on its channel.
    pub fn commands(&self, invitation_url: &str) -> Vec<DeviceCommand> {
        self.devices
            .iter()
            .enumerate()
            .map(|(i, device)| DeviceCommand {
                device: device.clone(),
                command: self.command(invitation_url),
                channel: self.channels.get(i).copied().unwrap_or_default(),
                after: Precondition::None,
                policy: None,
            })
            .collect()
    }

    /// One sentence.
    pub fn explain(&self) -> String {
        if self.devices.is_empty() {
            format!(
                "Mail user {} the invitation link to join Apps and Books (the user has no enrolled device).",
                self.client_user_id
            )
        } else {
            format!(
                "Invite user {} to Apps and Books with InviteToProgram on {} device{}.",
                self.client_user_id,
                self.devices.len(),
                if self.devices.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// Everything to send to Apple for one location, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationPlan {
    /// The location.
    pub location: LocationId,
    /// `users/create` requests.
    pub create_users: Vec<UserBatch>,
    /// Invitations for users created with an email.
    pub invitations: Vec<Invitation>,
    /// `assets/associate` requests.
    pub associate: Vec<AssetBatch>,
    /// `assets/disassociate` requests.
    pub disassociate: Vec<AssetBatch>,
    /// `assets/revoke` requests.
    pub revoke: Vec<RevokeBatch>,
    /// `users/retire` requests.
    pub retire_users: Vec<RetireBatch>,
}

impl LocationPlan {
    /// An empty plan for a location.
    pub fn new(location: LocationId) -> Self {
        Self {
            location,
            create_users: Vec::new(),
            invitations: Vec::new(),
            associate: Vec::new(),
            disassociate: Vec::new(),
            revoke: Vec::new(),
            retire_users: Vec::new(),
        }
    }

    /// Number of Apple requests (invitations are MDM commands, not Apple calls).
    pub fn apple_calls(&self) -> usize {
        self.create_users.len()
            + self.associate.len()
            + self.disassociate.len()
            + self.revoke.len()
            + self.retire_users.len()
    }

    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.apple_calls() == 0 && self.invitations.is_empty()
    }

    /// One sentence per step.
    pub fn explain(&self) -> Vec<String> {
        let loc = &self.location;
        let mut out = Vec::new();
        for b in &self.create_users {
            let at_once = b.users.iter().filter(|u| u.associates_at_once()).count();
            out.push(format!(
                "Create {} VPP user{} in location {loc} ({at_once} with a Managed Apple Account, {} to invite by email).",
                b.users.len(),
                if b.users.len() == 1 { "" } else { "s" },
                b.users.len() - at_once
            ));
        }
        out.extend(self.invitations.iter().map(Invitation::explain));
        out.extend(
            self.associate
                .iter()
                .map(|b| b.describe("Associate", "with", loc)),
        );
        out.extend(
            self.disassociate
                .iter()
                .map(|b| b.describe("Disassociate", "from", loc)),
        );
        for b in &self.revoke {
            out.push(format!(
                "Revoke every revocable licence of {} {} in location {loc}, because {}.",
                b.targets.len(),
                b.targets.noun(),
                b.reason.phrase()
            ));
        }
        for b in &self.retire_users {
            out.push(format!(
                "Retire {} VPP user{} in location {loc}, because they are retired or gone from the directory.",
                b.client_user_ids.len(),
                if b.client_user_ids.len() == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

/// When an MDM command may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Precondition {
    /// Now.
    None,
    /// Once Apple confirmed the association of this holding (event complete or
    /// `ASSET_MANAGEMENT` success), as Apple asks.
    Associated {
        /// Location of the holding.
        location: LocationId,
        /// The asset.
        asset: AssetKey,
        /// The holder (the device, or the device's user).
        holder: Holder,
    },
}

/// An MDM command for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceCommand {
    /// The device.
    pub device: SerialNumber,
    /// The command.
    pub command: MdmCommand,
    /// The MDM channel to send it on, as Apple's schema says for the device's OS and
    /// enrollment: the device channel, or the channel of the device's user (macOS,
    /// Shared iPad).
    #[serde(default)]
    pub channel: Channel,
    /// When it may be sent.
    pub after: Precondition,
    /// The policy behind it.
    pub policy: Option<PolicyId>,
}

impl DeviceCommand {
    /// One sentence.
    pub fn explain(&self) -> String {
        let what = self.command.explain();
        let what = what.trim_end_matches('.');
        let what = match self.channel {
            Channel::User => format!("{what} (on the user channel)"),
            _ => what.to_owned(),
        };
        let policy = match &self.policy {
            Some(p) => format!(" (policy {p})"),
            None => String::new(),
        };
        match &self.after {
            Precondition::None => format!("On device {}: {what}{policy}.", self.device),
            Precondition::Associated {
                location, holder, ..
            } => format!(
                "On device {}: {what}{policy}, once Apple confirms the licence for {holder} in location {location}.",
                self.device
            ),
        }
    }
}

/// A holder that wants a licence none is free for; it gets the next one that frees up, in
/// `position` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Waitlisted {
    /// The app or book.
    pub adam_id: AdamId,
    /// The pinned location, or `None` when any location holding the asset may serve it.
    pub location: Option<LocationId>,
    /// Who waits.
    pub holder: Holder,
    /// 1-based place in the queue of this adam id (and pin).
    pub position: usize,
    /// The policy that wants it.
    pub policy: PolicyId,
    /// Required, or Available (a self-service request).
    pub intent: Intent,
}

impl Waitlisted {
    /// One sentence.
    pub fn explain(&self) -> String {
        let why = match self.intent {
            Intent::Available => "asked to install it",
            _ => "is required to have it",
        };
        let place = match &self.location {
            Some(l) => format!(" in location {l}"),
            None => String::new(),
        };
        format!(
            "{} {why} by policy {} but no licence of {} is free{place}; it is number {} in line for the next one.",
            self.holder, self.policy, self.adam_id, self.position
        )
    }
}

/// Why a holder cannot get (or give back) a licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum BlockReason {
    /// A user licence on a device with no user affinity (shared iPad, or an ADE device
    /// enrolled without a user).
    NoUserAffinity {
        /// The device.
        device: SerialNumber,
    },
    /// A user licence on a device where the App Store is disabled: it cannot work.
    AppStoreDisabled {
        /// The device.
        device: SerialNumber,
    },
    /// More devices under one user licence than the cap (5).
    TooManyDevices {
        /// The device left out.
        device: SerialNumber,
        /// The cap.
        limit: usize,
    },
    /// The asset does not run on the device's platform.
    PlatformNotSupported {
        /// The device.
        device: SerialNumber,
        /// Its platform.
        platform: Platform,
    },
    /// The VPP user has not accepted the invitation yet; the licence is taken once they do.
    AwaitingInvitation {
        /// Where the user is registered.
        location: LocationId,
    },
    /// The user has neither an email nor a Managed Apple Account, so no VPP user can be made.
    NoAccountDetails,
    /// A release of this holding is in flight; it can be taken again once that completes.
    ReleaseInFlight {
        /// Where.
        location: LocationId,
    },
    /// Every location that holds the asset has a token that does not allow writes.
    NoWritableLocation,
    /// The VPP user was created by another MDM (or by a person) in this location: vppkit
    /// never gives it a licence, never releases its licences and never retires it,
    /// whatever the policies say.
    ForeignUser {
        /// Where the user belongs to another MDM.
        location: LocationId,
    },
    /// The licence cannot be taken back (the asset is not revocable, or is a book).
    NotRevocable {
        /// Where the licence stays.
        location: LocationId,
    },
    /// The holder is retired in, or gone from, the directory, but this licence was found at
    /// Apple without vppkit's action (adopted: another MDM, a person, or before onboarding),
    /// so it is never released. The holder's own licences are disassociated one asset at a
    /// time instead of with `assets/revoke` (which would take this one too), and a VPP user
    /// still holding such a licence is not retired (retiring releases its licences).
    AdoptedKept {
        /// Where the licence stays.
        location: LocationId,
    },
    /// The app's bundle id is unknown, so `RemoveApplication` cannot be sent.
    BundleIdUnknown {
        /// The device.
        device: SerialNumber,
    },
    /// An Uninstall policy reaches a device that reports no inventory while its licence is
    /// kept, so the planner cannot tell whether the app is still there; nothing is sent.
    InventoryUnknown {
        /// The device.
        device: SerialNumber,
    },
    /// A self-service request from a device that is not in the directory.
    UnknownDevice {
        /// The device.
        device: SerialNumber,
    },
    /// A self-service request for an asset no Available policy offers to the device.
    NotOffered {
        /// The device.
        device: SerialNumber,
    },
    /// Apple's MDM schema does not allow the command this would need on the device
    /// (its OS, its enrollment type, Shared iPad); nothing is sent and, for an install,
    /// no licence is taken.
    CommandNotAllowed {
        /// The device.
        device: SerialNumber,
        /// The command.
        command: CommandKind,
        /// The device's platform.
        platform: Platform,
        /// The device's enrollment type.
        enrollment: EnrollmentType,
        /// Why Apple does not allow it.
        refusal: CommandRefusal,
    },
    /// The asset's product type is one vppkit does not know (Apple added it after this
    /// version), so no command for it can be rendered.
    UnknownProductType {
        /// The product type as Apple sent it.
        product_type: String,
    },
    /// Apple lists the VPP user only with a status vppkit does not know (Apple added
    /// it after this version): the user is neither created again nor given a licence.
    UnknownUserStatus {
        /// Where.
        location: LocationId,
        /// The status as Apple sent it.
        status: String,
    },
}

/// An item the plan cannot do, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Blocked {
    /// The app or book.
    pub adam_id: AdamId,
    /// The holder concerned (a device, or a user).
    pub holder: Holder,
    /// The policy concerned.
    pub policy: Option<PolicyId>,
    /// Why.
    pub reason: BlockReason,
}

impl Blocked {
    /// One sentence.
    pub fn explain(&self) -> String {
        let a = &self.adam_id;
        let h = &self.holder;
        let by = match &self.policy {
            Some(p) => format!(" (policy {p})"),
            None => String::new(),
        };
        match &self.reason {
            BlockReason::NoUserAffinity { device } => format!(
                "Device {device} cannot use a user licence of {a}{by}: it has no single user (shared iPad or enrolled without a user); use device licensing."
            ),
            BlockReason::AppStoreDisabled { device } => format!(
                "Device {device} cannot use a user licence of {a}{by}: the App Store is disabled on it; use device licensing instead."
            ),
            BlockReason::TooManyDevices { device, limit } => format!(
                "Device {device} is left out of {h}'s licence of {a}{by}: one user licence covers at most {limit} devices."
            ),
            BlockReason::PlatformNotSupported { device, platform } => format!(
                "Device {device} runs {platform}, which {a} does not support{by}."
            ),
            BlockReason::AwaitingInvitation { location } => format!(
                "{h} gets {a}{by} once they accept the Apps and Books invitation of location {location}."
            ),
            BlockReason::NoAccountDetails => format!(
                "{h} cannot get a user licence of {a}{by}: the directory gives neither an email nor a Managed Apple Account."
            ),
            BlockReason::ReleaseInFlight { location } => format!(
                "{h}'s licence of {a} in location {location} is being released; it can be assigned again once that completes{by}."
            ),
            BlockReason::ForeignUser { location } => format!(
                "{h} is left alone for {a}{by}: this VPP user of location {location} was created by another MDM, and vppkit never gives, releases or retires another MDM's users."
            ),
            BlockReason::NoWritableLocation => format!(
                "{h} cannot get {a}{by}: every location holding it has a token that does not allow changes."
            ),
            BlockReason::NotRevocable { location } => format!(
                "{h} keeps its licence of {a} in location {location}{by}: books and non-revocable apps are never released."
            ),
            BlockReason::AdoptedKept { location } => format!(
                "{h} is retired or gone from the directory but keeps its licence of {a} in location {location}: vppkit did not assign it (another MDM, a person, or before onboarding), so it is never released; only the licences vppkit assigned are taken back, one asset at a time instead of a revoke, and a VPP user is not retired while it holds such a licence."
            ),
            BlockReason::BundleIdUnknown { device } => format!(
                "{a} cannot be removed from device {device}{by}: its bundle id is not known yet (fetch its metadata)."
            ),
            BlockReason::InventoryUnknown { device } => format!(
                "{a} is not removed from device {device}{by}: the device reports no app inventory and its licence is kept, so vppkit cannot tell whether the app is still there."
            ),
            BlockReason::UnknownDevice { device } => format!(
                "The install request for {a} from device {device} is ignored: the device is not in the directory."
            ),
            BlockReason::NotOffered { device } => format!(
                "The install request for {a} from device {device} is ignored: no Available policy offers it to that device."
            ),
            BlockReason::CommandNotAllowed {
                device,
                command,
                platform,
                enrollment,
                refusal,
            } => format!(
                "{command} for {a} is not sent to device {device} ({platform}, {} enrollment){by}: {refusal}.",
                enrollment.as_str()
            ),
            BlockReason::UnknownProductType { product_type } => format!(
                "{h} does not get {a}{by}: its product type {product_type:?} is not one vppkit knows how to install."
            ),
            BlockReason::UnknownUserStatus { location, status } => format!(
                "{h} does not get {a}{by}: Apple lists this VPP user of location {location} with status {status:?}, which vppkit does not know, so it is neither created again nor given a licence."
            ),
        }
    }
}

/// A holding out of scope, released once its grace period ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PendingRelease {
    /// Where.
    pub location: LocationId,
    /// The asset.
    pub asset: AssetKey,
    /// The holder.
    pub holder: Holder,
    /// When it left scope (give it back in the next [`PlanContext`](crate::PlanContext)).
    pub out_of_scope_since: DateTime<Utc>,
    /// When it will be released.
    pub release_at: DateTime<Utc>,
}

impl PendingRelease {
    /// One sentence.
    pub fn explain(&self) -> String {
        format!(
            "{}'s licence of {} in location {} is out of every policy's scope since {}; it is released after {} unless it comes back into scope.",
            self.holder,
            self.asset,
            self.location,
            self.out_of_scope_since.format("%Y-%m-%d %H:%M UTC"),
            self.release_at.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// A rule a policy breaks. The policy is left out of the plan; the rest goes ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum Violation {
    /// `Available` aimed at devices (a device group or all devices): self-service is per user.
    AvailableToDevices {
        /// The target.
        target: Target,
    },
    /// A book aimed at devices: books are licensed to users only.
    BookToDevices {
        /// The target.
        target: Target,
    },
    /// A book with device licensing.
    BookWithDeviceLicence,
    /// Device licensing for an asset that is not device-assignable in any location.
    NotDeviceAssignable,
    /// No location holds the asset (with the pricing, if given).
    AssetNotFound,
    /// The pinned location is not known.
    UnknownLocation {
        /// The pin.
        location: LocationId,
    },
    /// The pinned location does not hold the asset.
    AssetNotInLocation {
        /// The pin.
        location: LocationId,
    },
    /// The target or an exclusion names a group that is not in the directory.
    UnknownGroup {
        /// The group.
        group: GroupId,
    },
    /// The device filter allows only platforms the asset does not support.
    NoSupportedPlatform,
}

/// A policy that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PolicyViolation {
    /// The policy.
    pub policy: PolicyId,
    /// Its adam id.
    pub adam_id: AdamId,
    /// The rule it breaks.
    pub violation: Violation,
}

impl PolicyViolation {
    /// Builds a violation.
    pub fn new(policy: PolicyId, adam_id: AdamId, violation: Violation) -> Self {
        Self {
            policy,
            adam_id,
            violation,
        }
    }

    /// One sentence.
    pub fn explain(&self) -> String {
        let p = &self.policy;
        let a = &self.adam_id;
        match &self.violation {
            Violation::AvailableToDevices { target } => format!(
                "Policy {p} is ignored: Available (self-service) cannot target devices ({target}); target users instead."
            ),
            Violation::BookToDevices { target } => format!(
                "Policy {p} is ignored: book {a} cannot target devices ({target}); books are licensed to users."
            ),
            Violation::BookWithDeviceLicence => format!(
                "Policy {p} is ignored: book {a} cannot use device licensing; books are licensed to users only."
            ),
            Violation::NotDeviceAssignable => format!(
                "Policy {p} is ignored: {a} is not device-assignable, so it needs user licensing."
            ),
            Violation::AssetNotFound => format!(
                "Policy {p} is ignored: no location owns licences of {a}."
            ),
            Violation::UnknownLocation { location } => format!(
                "Policy {p} is ignored: it is pinned to location {location}, which is not known."
            ),
            Violation::AssetNotInLocation { location } => format!(
                "Policy {p} is ignored: it is pinned to location {location}, which owns no licences of {a}."
            ),
            Violation::UnknownGroup { group } => format!(
                "Policy {p} is ignored: group {group} is not in the directory."
            ),
            Violation::NoSupportedPlatform => format!(
                "Policy {p} is ignored: its device filter allows only platforms that {a} does not support."
            ),
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

/// The plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Plan {
    /// Apple requests per location, sorted by location id; locations with nothing to do are left out.
    pub locations: Vec<LocationPlan>,
    /// MDM commands, sorted by device then adam id.
    pub commands: Vec<DeviceCommand>,
    /// Holders waiting for a licence.
    pub waitlisted: Vec<Waitlisted>,
    /// Items that cannot be done.
    pub blocked: Vec<Blocked>,
    /// Out-of-scope holdings in their grace period.
    pub pending_releases: Vec<PendingRelease>,
    /// Policies left out because they break a rule.
    pub invalid_policies: Vec<PolicyViolation>,
}

impl Plan {
    /// Whether the plan has no action: no Apple request, invitation or MDM command.
    /// (Blocked, waitlisted and pending items are reports, not actions.)
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.locations.iter().all(LocationPlan::is_empty)
    }

    /// Number of Apple requests in the plan.
    pub fn apple_calls(&self) -> usize {
        self.locations.iter().map(LocationPlan::apple_calls).sum()
    }

    /// The plan of one location.
    pub fn location(&self, id: &LocationId) -> Option<&LocationPlan> {
        self.locations.iter().find(|l| &l.location == id)
    }

    /// One sentence per item: Apple requests, commands, waitlist, blocked, pending releases,
    /// invalid policies.
    pub fn explain(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .invalid_policies
            .iter()
            .map(PolicyViolation::explain)
            .collect();
        for l in &self.locations {
            out.extend(l.explain());
        }
        out.extend(self.commands.iter().map(DeviceCommand::explain));
        out.extend(self.waitlisted.iter().map(Waitlisted::explain));
        out.extend(self.blocked.iter().map(Blocked::explain));
        out.extend(self.pending_releases.iter().map(PendingRelease::explain));
        out
    }
}
