//! Assignment rules and a licence-aware planner for Apple Apps and Books (VPP). Pure: no
//! I/O, no async; functions over values, deterministic.
//!
//! - [`PolicySet`] and [`Directory`]: the policies (Intune-style assignments) and the MDM's
//!   users, devices and groups, both readable from hand-written JSON (`docs/policies.md`).
//! - [`LicenceView`]: the read view of the licence state (implemented by [`LicenceState`]
//!   and by `vppkit-ledger`'s view).
//! - [`Plan`]: user registrations and invitations, associate / disassociate / revoke batches
//!   per location split by [`Limits`], [`MdmCommand`]s, waitlisted and blocked items. Every
//!   item has an `explain()` sentence.
//! - [`PlanSession`]: the same plans, incrementally: it keeps each app's output and plans
//!   again only the apps whose inputs changed since its previous call (a reconciler that
//!   re-plans on every purchase, accepted invitation or directory edit).
//!
//! # Quick start
//!
//! ```
//! use chrono::Utc;
//! use vppkit_core::{AdamId, Asset, AssetCounts, AssetKey, LocationId, Platform, PricingParam, ProductType};
//! use vppkit_rules::{Directory, LicenceState, PlanContext, Planner, PolicySet};
//!
//! let directory = Directory::from_json(r#"{
//!   "devices": [{"serialNumber": "DMPCART00001", "platform": "iOS", "osVersion": "17.5"}],
//!   "groups": [{"id": "cart", "devices": ["DMPCART00001"]}]
//! }"#)?;
//! let policies = PolicySet::from_json(r#"{"policies": [
//!   {"id": "keynote", "adamId": "409183694", "target": {"group": "cart"},
//!    "intent": "required", "licence": "device"}
//! ]}"#)?;
//! let mut licences = LicenceState::new();
//! licences.add_asset(
//!     &LocationId::new("school")?,
//!     Asset::new(
//!         AssetKey::new(AdamId::new("409183694")?, PricingParam::Stdq),
//!         ProductType::App,
//!         true,
//!         true,
//!         vec![Platform::Ios],
//!         AssetCounts::new(30, 0, 30, 0),
//!     ),
//!     Some("com.apple.Keynote".into()),
//! );
//! let plan = Planner::new().plan(&directory, &policies, &licences, &PlanContext::new(Utc::now()))?;
//! assert_eq!(plan.apple_calls(), 1);
//! assert_eq!(
//!     plan.explain()[0],
//!     "Associate 1 asset with 1 device in location school, because a policy asks for it."
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The formats, the rules and three complete examples are in `docs/policies.md`.
//!
//! # Error model
//!
//! Input that cannot be read is an `Err` ([`FormatError`], [`PlanError`]). A policy that
//! breaks a rule, a holder that cannot get a licence, a holder waiting for one: these are
//! decisions, returned as data in the plan ([`PolicyViolation`], [`Blocked`], [`Waitlisted`]).

mod batch;
mod command;
mod directory;
mod error;
mod fast_map;
mod ids;
mod ledger_view;
mod limits;
mod plan;
mod planner;
mod policy;
mod release;
mod schema;
mod session;
mod stamp;
mod view;

pub use command::{
    invitation_link, InstallApplication, MdmCommand, CLOUD_VPP_PROGRAM_ID, FLAG_PREVENT_BACKUP,
    FLAG_REMOVE_WITH_MDM,
};
pub use directory::{Directory, DirectoryDevice, DirectoryUser, EnrollmentType, Group, Ownership};
pub use error::{FormatError, PlanError};
pub use ids::{GroupId, PolicyId};
pub use ledger_view::LedgerView;
pub use limits::Limits;
pub use plan::{
    AssetBatch, BatchTargets, BlockReason, Blocked, ChangeReason, DeviceCommand, Invitation,
    LocationPlan, PendingRelease, Plan, PolicyViolation, Precondition, RetireBatch, RevokeBatch,
    UserBatch, UserRegistration, Violation, Waitlisted,
};
pub use planner::{
    InstallRequest, LocationHoldingKey, PlanContext, Planner, DEFAULT_MAX_DEVICES_PER_USER_LICENCE,
};
pub use policy::{
    AppSettings, DeviceFilter, Intent, LicenceType, OsVersion, Policy, PolicySet, Target,
};
pub use release::{GoneRelease, ReleaseRules, ScopeRelease, UninstallRelease};
pub use schema::{
    command_channel, platform_rule, Channel, CommandKind, CommandRefusal, PlatformRule,
};
pub use session::{PlanSession, ReplanStats};
pub use view::{AssetInfo, LicenceState, LicenceView, LocationInfo};
