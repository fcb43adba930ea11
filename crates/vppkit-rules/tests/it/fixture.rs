//! Small worlds for the planner tests.

use chrono::{DateTime, TimeZone, Utc};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId,
    Platform, PricingParam, ProductType, SerialNumber, TokenState, VppUser, VppUserStatus,
};
use vppkit_rules::{
    Directory, DirectoryDevice, DirectoryUser, Group, GroupId, Intent, LicenceState, LicenceType,
    OsVersion, Plan, PlanContext, Planner, Policy, PolicyId, PolicySet, ReleaseRules, Target,
};

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub(crate) fn loc(s: &str) -> LocationId {
    LocationId::new(s).unwrap()
}

pub(crate) fn adam(n: u64) -> AdamId {
    AdamId::from(n)
}

pub(crate) fn key(n: u64) -> AssetKey {
    AssetKey::new(adam(n), PricingParam::Stdq)
}

pub(crate) fn serial(s: &str) -> SerialNumber {
    SerialNumber::new(s).unwrap()
}

pub(crate) fn uid(s: &str) -> ClientUserId {
    ClientUserId::new(s).unwrap()
}

pub(crate) fn dev_holder(s: &str) -> Holder {
    Holder::Device(serial(s))
}

pub(crate) fn user_holder(s: &str) -> Holder {
    Holder::User(uid(s))
}

pub(crate) fn gid(s: &str) -> GroupId {
    GroupId::new(s).unwrap()
}

pub(crate) fn pid(s: &str) -> PolicyId {
    PolicyId::new(s).unwrap()
}

/// An iOS/macOS app, device-assignable and revocable, with `total` licences.
pub(crate) fn app(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::App,
        true,
        true,
        vec![Platform::Ios, Platform::MacOs],
        AssetCounts::new(total, 0, total, 0),
    )
}

pub(crate) fn user_only_app(n: u64, total: u32) -> Asset {
    let mut a = app(n, total);
    a.device_assignable = false;
    a
}

pub(crate) fn mac_app(n: u64, total: u32) -> Asset {
    let mut a = app(n, total);
    a.supported_platforms = vec![Platform::MacOs];
    a
}

pub(crate) fn book(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::Book,
        false,
        false,
        vec![Platform::Ios, Platform::MacOs],
        AssetCounts::new(total, 0, total, 0),
    )
}

pub(crate) fn ios(s: &str) -> DirectoryDevice {
    DirectoryDevice::new(serial(s), Platform::Ios, OsVersion::parse("17.4").unwrap())
}

pub(crate) fn user(s: &str) -> DirectoryUser {
    DirectoryUser::new(uid(s)).with_managed_apple_id(format!("{s}@corp.example.org"))
}

pub(crate) fn group(id: &str, users: &[&str], devices: &[&str]) -> Group {
    Group::new(
        gid(id),
        users.iter().map(|u| uid(u)).collect(),
        devices.iter().map(|d| serial(d)).collect(),
    )
}

pub(crate) fn policy(
    id: &str,
    adam_id: u64,
    target: Target,
    intent: Intent,
    licence: LicenceType,
) -> Policy {
    Policy::new(pid(id), adam(adam_id), target, intent, licence)
}

pub(crate) fn to_group(g: &str) -> Target {
    Target::Group(gid(g))
}

/// A builder for a whole world.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) users: Vec<DirectoryUser>,
    pub(crate) devices: Vec<DirectoryDevice>,
    pub(crate) groups: Vec<Group>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) release: ReleaseRules,
    pub(crate) state: LicenceState,
    pub(crate) ctx: PlanContext,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub(crate) fn new() -> Self {
        Self {
            users: Vec::new(),
            devices: Vec::new(),
            groups: Vec::new(),
            policies: Vec::new(),
            release: ReleaseRules::default(),
            state: LicenceState::new(),
            ctx: PlanContext::new(now()),
        }
    }

    pub(crate) fn location(mut self, id: &str, assets: Vec<Asset>) -> Self {
        self.state.add_location(loc(id), TokenState::Valid);
        for a in assets {
            let bundle = Some(format!("com.example.app{}", a.key.adam_id));
            self.state.add_asset(&loc(id), a, bundle);
        }
        self
    }

    pub(crate) fn hold(mut self, l: &str, n: u64, h: Holder) -> Self {
        self.state
            .set_holding(&loc(l), &key(n), h, HoldingStatus::Active);
        self
    }

    pub(crate) fn vpp_user(mut self, l: &str, id: &str, status: VppUserStatus) -> Self {
        self.state.set_user(&loc(l), VppUser::new(uid(id), status));
        self
    }

    pub(crate) fn users(mut self, u: Vec<DirectoryUser>) -> Self {
        self.users.extend(u);
        self
    }

    pub(crate) fn devices(mut self, d: Vec<DirectoryDevice>) -> Self {
        self.devices.extend(d);
        self
    }

    pub(crate) fn groups(mut self, g: Vec<Group>) -> Self {
        self.groups.extend(g);
        self
    }

    pub(crate) fn policy(mut self, p: Policy) -> Self {
        self.policies.push(p);
        self
    }

    pub(crate) fn release(mut self, r: ReleaseRules) -> Self {
        self.release = r;
        self
    }

    pub(crate) fn directory(&self) -> Directory {
        Directory::new(
            self.users.clone(),
            self.devices.clone(),
            self.groups.clone(),
        )
        .unwrap()
    }

    pub(crate) fn policy_set(&self) -> PolicySet {
        PolicySet::new(self.release, self.policies.clone()).unwrap()
    }

    pub(crate) fn plan_with(&self, planner: &Planner) -> Plan {
        planner
            .plan(
                &self.directory(),
                &self.policy_set(),
                &self.state,
                &self.ctx,
            )
            .unwrap()
    }

    pub(crate) fn plan(&self) -> Plan {
        self.plan_with(&Planner::new())
    }
}

/// Every (location, asset, holder) the plan associates.
pub(crate) fn associations(plan: &Plan) -> Vec<(String, AssetKey, Holder)> {
    let mut v = Vec::new();
    for l in &plan.locations {
        for b in &l.associate {
            for (a, h) in b.holdings() {
                v.push((l.location.to_string(), a, h));
            }
        }
    }
    v.sort();
    v
}

/// Every (location, asset, holder) the plan disassociates.
pub(crate) fn disassociations(plan: &Plan) -> Vec<(String, AssetKey, Holder)> {
    let mut v = Vec::new();
    for l in &plan.locations {
        for b in &l.disassociate {
            for (a, h) in b.holdings() {
                v.push((l.location.to_string(), a, h));
            }
        }
    }
    v.sort();
    v
}

/// (device, request type) of every command.
pub(crate) fn commands(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.commands
        .iter()
        .map(|c| (c.device.to_string(), c.command.request_type()))
        .collect()
}
