//! One organisational unit: its assets, assignments, users, events and config.

mod exec;
mod read;
mod write;

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use uuid::Uuid;
use vppkit_core::{
    AccountType, Asset, AssetCounts, AssetKey, ClientUserId, EventId, Holder, MdmInfo, Platform,
    PricingParam, ProductType, SerialNumber, Uid, VppUser, VppUserStatus, UNLIMITED_COUNT,
};

use crate::changelog::ChangeLog;
use crate::codes::Code;
use crate::hash::{derive_bytes, FastMap};
use crate::intern::Interner;
use crate::notify::Outgoing;
use crate::spec::AssetSpec;
use crate::store::{AssignmentStore, USER_BIT};
use crate::truth::{EventFailure, EventRecord, EventStatusKind, EventType, LocationSummary};
use crate::SimError;

pub(crate) use write::UserRequest;

/// One asset as the location holds it.
#[derive(Debug)]
pub(crate) struct AssetRec {
    pub(crate) key: AssetKey,
    pub(crate) product_type: ProductType,
    pub(crate) device_assignable: bool,
    pub(crate) revocable: bool,
    pub(crate) platforms: Vec<Platform>,
    pub(crate) total: u32,
    pub(crate) retired: u32,
    pub(crate) removed: bool,
}

impl AssetRec {
    pub(crate) fn is_unlimited(&self) -> bool {
        self.total >= UNLIMITED_COUNT
    }
}

/// One user record (a `clientUserId` can have several: retired ones stay).
#[derive(Debug)]
pub(crate) struct UserRec {
    pub(crate) cuid: u32,
    pub(crate) status: VppUserStatus,
    /// Created with an email and no Managed Apple Account: has an invite code.
    pub(crate) invited: bool,
    /// Was ever Associated: has an `idHash`.
    pub(crate) has_id_hash: bool,
    pub(crate) email: Option<Box<str>>,
    pub(crate) managed_apple_id: Option<Box<str>>,
}

/// A unit of work waiting for its event to run.
#[derive(Debug)]
pub(crate) enum Work {
    Manage {
        assets: Vec<u32>,
        serials: Vec<String>,
        users: Vec<String>,
    },
    Revoke {
        serials: Vec<String>,
        users: Vec<String>,
    },
    Users(Vec<UserRequest>),
}

/// A group of failed tasks.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) asset: Option<u32>,
    pub(crate) serials: Vec<String>,
    pub(crate) users: Vec<String>,
}

/// An asynchronous event.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) kind: EventType,
    pub(crate) status: EventStatusKind,
    pub(crate) due: Duration,
    pub(crate) num_requested: u32,
    pub(crate) num_completed: u32,
    pub(crate) failures: Vec<Failure>,
    pub(crate) work: Option<Work>,
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub(crate) struct NotifyConfig {
    pub(crate) url: String,
    pub(crate) auth: vppkit_core::Secret,
}

/// A fixed one-second request window for throttling.
#[derive(Debug)]
pub(crate) struct RateWindow {
    pub(crate) started: std::time::Instant,
    pub(crate) count: u32,
}

/// A cached materialised list of assignment keys (for filtered walks).
#[derive(Debug)]
pub(crate) struct KeyCache {
    pub(crate) filter: String,
    pub(crate) version: u32,
    pub(crate) keys: std::sync::Arc<Vec<u64>>,
}

/// One organisational unit.
#[derive(Debug)]
pub(crate) struct Location {
    pub(crate) uid: Uid,
    pub(crate) name: String,
    pub(crate) org_name: String,
    pub(crate) country: String,
    pub(crate) account: AccountType,
    pub(crate) salt: u64,
    pub(crate) rng: StdRng,
    pub(crate) mdm_info: Option<MdmInfo>,
    pub(crate) notify: Option<NotifyConfig>,
    pub(crate) subscribed: Vec<String>,
    pub(crate) assets: Vec<AssetRec>,
    pub(crate) asset_index: FastMap<(u64, PricingParam), u32>,
    pub(crate) store: AssignmentStore,
    pub(crate) devices: Interner,
    pub(crate) user_ids: Interner,
    pub(crate) users: Vec<UserRec>,
    /// `clientUserId` id -> index of its latest user record.
    pub(crate) latest_user: FastMap<u32, u32>,
    pub(crate) events: FastMap<Uuid, Event>,
    pub(crate) event_order: Vec<Uuid>,
    pub(crate) pending: VecDeque<Uuid>,
    pub(crate) asset_version: u32,
    pub(crate) assignment_log: ChangeLog<u64>,
    pub(crate) user_log: ChangeLog<u32>,
    pub(crate) rate: Option<RateWindow>,
    pub(crate) key_cache: Option<KeyCache>,
}

impl Location {
    /// An empty location.
    pub(crate) fn new(
        uid: Uid,
        name: String,
        org_name: String,
        country: String,
        account: AccountType,
        salt: u64,
    ) -> Self {
        Self {
            uid,
            name,
            org_name,
            country,
            account,
            salt,
            rng: StdRng::seed_from_u64(salt),
            mdm_info: None,
            notify: None,
            subscribed: Vec::new(),
            assets: Vec::new(),
            asset_index: FastMap::default(),
            store: AssignmentStore::default(),
            devices: Interner::default(),
            user_ids: Interner::default(),
            users: Vec::new(),
            latest_user: FastMap::default(),
            events: FastMap::default(),
            event_order: Vec::new(),
            pending: VecDeque::new(),
            asset_version: 0,
            assignment_log: ChangeLog::default(),
            user_log: ChangeLog::default(),
            rate: None,
            key_cache: None,
        }
    }

    /// `defaultPlatform`.
    pub(crate) fn default_platform(&self) -> &'static str {
        match self.account {
            AccountType::Education => "volumestore",
            _ => "enterprisestore",
        }
    }

    /// `websiteURL`.
    pub(crate) fn website_url(&self) -> &'static str {
        match self.account {
            AccountType::Education => "https://school.apple.com",
            _ => "https://business.apple.com",
        }
    }

    /// A fresh random UUID from the location's seeded generator.
    pub(crate) fn next_uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Index of an asset by key (including removed ones).
    pub(crate) fn asset_idx(&self, adam: u64, pricing: PricingParam) -> Option<u32> {
        self.asset_index.get(&(adam, pricing)).copied()
    }

    /// Index of an owned (not removed) asset.
    pub(crate) fn live_asset(&self, key: &AssetKey) -> Option<u32> {
        self.asset_idx(key.adam_id.as_u64(), key.pricing_param)
            .filter(|i| !self.assets[*i as usize].removed)
    }

    /// Licences in use of asset `a`.
    pub(crate) fn assigned(&self, a: u32) -> u32 {
        self.store.asset_holders(a).len() as u32
    }

    /// Free licences of asset `a`.
    pub(crate) fn available(&self, a: u32) -> u32 {
        let rec = &self.assets[a as usize];
        rec.total
            .saturating_sub(rec.retired)
            .saturating_sub(self.assigned(a))
    }

    /// The counts of asset `a` as Apple reports them.
    pub(crate) fn counts(&self, a: u32) -> AssetCounts {
        let rec = &self.assets[a as usize];
        AssetCounts::new(rec.total, self.assigned(a), self.available(a), rec.retired)
    }

    /// The latest record of a `clientUserId`, if any.
    pub(crate) fn latest(&self, cuid: u32) -> Option<u32> {
        self.latest_user.get(&cuid).copied()
    }

    /// The active (Registered or Associated) record of a `clientUserId` text.
    pub(crate) fn active_user(&self, client_user_id: &str) -> Option<(u32, u32)> {
        let cuid = self.user_ids.get(client_user_id)?;
        let idx = self.latest(cuid)?;
        self.users[idx as usize]
            .status
            .is_active()
            .then_some((cuid, idx))
    }

    /// The 32-hex invite code of user record `idx`.
    pub(crate) fn invite_code(&self, idx: u32) -> String {
        let mut b = [0u8; 16];
        derive_bytes(self.salt ^ 0x1417_e000, u64::from(idx), &mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The 28-character Base64 `idHash` of user record `idx`.
    pub(crate) fn id_hash(&self, idx: u32) -> String {
        let mut b = [0u8; 20];
        derive_bytes(self.salt ^ 0x1d4a_5400, u64::from(idx), &mut b);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// Adds a user record directly (presets and control).
    pub(crate) fn push_user(
        &mut self,
        client_user_id: &str,
        email: Option<&str>,
        managed_apple_id: Option<&str>,
        status: VppUserStatus,
    ) -> u32 {
        let cuid = self.user_ids.intern(client_user_id);
        let idx = self.users.len() as u32;
        let associated = status == VppUserStatus::Associated;
        self.users.push(UserRec {
            cuid,
            status,
            invited: managed_apple_id.is_none(),
            has_id_hash: associated || managed_apple_id.is_some(),
            email: email.map(Into::into),
            managed_apple_id: managed_apple_id.map(Into::into),
        });
        self.latest_user.insert(cuid, idx);
        idx
    }

    /// Adds an asset (presets and control).
    pub(crate) fn add_asset(&mut self, spec: &AssetSpec) -> Result<u32, SimError> {
        let adam = spec.key.adam_id.as_u64();
        if let Some(existing) = self.asset_idx(adam, spec.key.pricing_param) {
            if !self.assets[existing as usize].removed {
                return Err(SimError::DuplicateAsset {
                    uid: self.uid.to_string(),
                    asset: spec.key.to_string(),
                });
            }
            let rec = &mut self.assets[existing as usize];
            *rec = asset_rec(spec);
            self.asset_version += 1;
            return Ok(existing);
        }
        let idx = self.assets.len() as u32;
        self.assets.push(asset_rec(spec));
        self.asset_index.insert((adam, spec.key.pricing_param), idx);
        self.store.ensure_asset(idx);
        self.asset_version += 1;
        Ok(idx)
    }

    /// Puts a new event in the queue and returns its id.
    pub(crate) fn new_event(
        &mut self,
        kind: EventType,
        num_requested: u32,
        work: Work,
        due: Duration,
    ) -> Uuid {
        let id = self.next_uuid();
        self.events.insert(
            id,
            Event {
                kind,
                status: EventStatusKind::Pending,
                due,
                num_requested,
                num_completed: 0,
                failures: Vec::new(),
                work: Some(work),
            },
        );
        self.event_order.push(id);
        self.pending.push_back(id);
        id
    }

    /// Builds a notification when the location subscribed to `kind`.
    pub(crate) fn notification(
        &mut self,
        kind: &'static str,
        payload: serde_json::Value,
    ) -> Option<Outgoing> {
        let target = self.notify.clone()?;
        if kind != "TEST_NOTIFICATION" && !self.subscribed.iter().any(|t| t == kind) {
            return None;
        }
        let id = self.next_uuid();
        Some(Outgoing::new(&self.uid, id, kind, payload, target))
    }

    /// Summary for the control API.
    pub(crate) fn info(&self) -> LocationSummary {
        LocationSummary {
            uid: self.uid.clone(),
            name: self.name.clone(),
            org_name: self.org_name.clone(),
            account: self.account,
            country: self.country.clone(),
            mdm_info: self.mdm_info.clone(),
            notification_url: self.notify.as_ref().map(|n| n.url.clone()),
            subscribed_notification_types: self.subscribed.clone(),
            assets: self.assets.iter().filter(|a| !a.removed).count(),
            assignments: self.store.len(),
            users: self.users.len(),
            pending_events: self.pending.len(),
        }
    }

    /// Ground truth: every owned asset with its counts.
    pub(crate) fn truth_assets(&self) -> Vec<Asset> {
        self.assets
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.removed)
            .map(|(i, a)| {
                Asset::new(
                    a.key.clone(),
                    a.product_type,
                    a.device_assignable,
                    a.revocable,
                    a.platforms.clone(),
                    self.counts(i as u32),
                )
            })
            .collect()
    }

    /// Ground truth: every assignment.
    pub(crate) fn truth_assignments(&self) -> Vec<(AssetKey, Holder)> {
        let mut out = Vec::with_capacity(self.store.len());
        for (i, a) in self.assets.iter().enumerate() {
            for &h in self.store.asset_holders(i as u32) {
                let holder = if h & USER_BIT != 0 {
                    ClientUserId::from_apple(self.user_ids.name(h & !USER_BIT)).map(Holder::User)
                } else {
                    SerialNumber::from_apple(self.devices.name(h)).map(Holder::Device)
                };
                if let Ok(holder) = holder {
                    out.push((a.key.clone(), holder));
                }
            }
        }
        out
    }

    /// Ground truth: every user record.
    pub(crate) fn truth_users(&self) -> Vec<VppUser> {
        self.users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| {
                let id = ClientUserId::new(self.user_ids.name(u.cuid)).ok()?;
                let mut user = VppUser::new(id, u.status);
                user.email = u.email.as_deref().map(str::to_owned);
                user.managed_apple_id = u.managed_apple_id.as_deref().map(str::to_owned);
                user.invite_code = u.invited.then(|| self.invite_code(i as u32));
                user.id_hash = u.has_id_hash.then(|| self.id_hash(i as u32));
                Some(user)
            })
            .collect()
    }

    /// Ground truth: every event, oldest first.
    pub(crate) fn truth_events(&self) -> Vec<EventRecord> {
        self.event_order
            .iter()
            .filter_map(|id| {
                let e = self.events.get(id)?;
                Some(EventRecord {
                    event_id: EventId::new(id.hyphenated().to_string()).ok()?,
                    kind: e.kind,
                    status: e.status,
                    num_requested: e.num_requested,
                    num_completed: e.num_completed,
                    failures: e
                        .failures
                        .iter()
                        .map(|f| EventFailure {
                            error_number: f.code.number(),
                            assets: f
                                .asset
                                .map(|a| vec![self.assets[a as usize].key.clone()])
                                .unwrap_or_default(),
                            client_user_ids: f.users.clone(),
                            serial_numbers: f.serials.clone(),
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// Approximate heap bytes of this location's state.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.store.heap_bytes()
            + self.assignment_log.heap_bytes()
            + self.user_log.heap_bytes()
            + self.devices.len() * 64
            + self.user_ids.len() * 64
            + self.users.capacity() * size_of::<UserRec>()
            + self
                .users
                .iter()
                .map(|u| {
                    u.email.as_ref().map_or(0, |e| e.len())
                        + u.managed_apple_id.as_ref().map_or(0, |e| e.len())
                })
                .sum::<usize>()
            + self.assets.capacity() * (size_of::<AssetRec>() + 48)
    }

    /// Changes the licence count of an asset (purchase > 0, refund < 0) and
    /// returns the `ASSET_COUNT` notification.
    pub(crate) fn change_count(
        &mut self,
        key: &AssetKey,
        delta: i64,
    ) -> Result<Option<Outgoing>, SimError> {
        let a = self.live_asset(key).ok_or_else(|| SimError::UnknownAsset {
            uid: self.uid.to_string(),
            asset: key.to_string(),
        })?;
        if delta < 0 {
            let want = u32::try_from(-delta).unwrap_or(u32::MAX);
            let available = self.available(a);
            if want > available {
                return Err(SimError::NotEnoughLicences {
                    asset: key.to_string(),
                    available,
                    requested: want,
                });
            }
            self.assets[a as usize].total -= want;
        } else {
            let rec = &mut self.assets[a as usize];
            let add = u32::try_from(delta).unwrap_or(u32::MAX);
            rec.total = rec.total.saturating_add(add).min(UNLIMITED_COUNT);
        }
        self.asset_version += 1;
        Ok(self.asset_count_notification(key, delta))
    }

    pub(crate) fn asset_count_notification(
        &mut self,
        key: &AssetKey,
        delta: i64,
    ) -> Option<Outgoing> {
        self.notification(
            "ASSET_COUNT",
            serde_json::json!({
                "adamId": key.adam_id.as_str(),
                "countDelta": delta,
                "pricingParam": key.pricing_param.as_str(),
            }),
        )
    }

    /// Removes an asset (transferred away): its assignments go, `ASSET_COUNT`
    /// reports the licences that left.
    pub(crate) fn remove_asset(&mut self, key: &AssetKey) -> Result<Option<Outgoing>, SimError> {
        let a = self.live_asset(key).ok_or_else(|| SimError::UnknownAsset {
            uid: self.uid.to_string(),
            asset: key.to_string(),
        })?;
        for h in self.store.clear_asset(a) {
            self.assignment_log.record(crate::store::pack(a, h));
        }
        self.assignment_log.commit();
        let rec = &mut self.assets[a as usize];
        rec.removed = true;
        let total = rec.total;
        self.asset_version += 1;
        Ok(self.asset_count_notification(key, -i64::from(total)))
    }

    /// Moves a Registered user to Associated (the invitation was accepted) and
    /// returns the `USER_ASSOCIATED` notification.
    pub(crate) fn accept_invitation(
        &mut self,
        client_user_id: &str,
    ) -> Result<Option<Outgoing>, SimError> {
        let (_, idx) = self
            .active_user(client_user_id)
            .ok_or_else(|| SimError::UnknownUser {
                uid: self.uid.to_string(),
                client_user_id: client_user_id.to_owned(),
            })?;
        let user = &mut self.users[idx as usize];
        if user.status != VppUserStatus::Registered {
            return Err(SimError::NotRegistered {
                client_user_id: client_user_id.to_owned(),
                status: user.status.to_string(),
            });
        }
        user.status = VppUserStatus::Associated;
        user.has_id_hash = true;
        self.user_log.record(idx);
        self.user_log.commit();
        let json = self.user_json(idx);
        Ok(self.notification(
            "USER_ASSOCIATED",
            serde_json::json!({ "associatedUsers": [json] }),
        ))
    }

    /// Finds a user by invite code (the invitation link).
    pub(crate) fn user_by_invite(&self, code: &str) -> Option<String> {
        self.users.iter().enumerate().find_map(|(i, u)| {
            (u.invited && u.status.is_active() && self.invite_code(i as u32) == code)
                .then(|| self.user_ids.name(u.cuid).to_owned())
        })
    }

    /// A ResponseUser as JSON (notifications).
    pub(crate) fn user_json(&self, idx: u32) -> serde_json::Value {
        let out = self.user_out(idx);
        serde_json::to_value(out).unwrap_or(serde_json::Value::Null)
    }

    /// A ResponseUser.
    pub(crate) fn user_out(&self, idx: u32) -> crate::wire::UserOut<'_> {
        let u = &self.users[idx as usize];
        crate::wire::UserOut {
            client_user_id: self.user_ids.name(u.cuid),
            email: u.email.as_deref(),
            id_hash: u.has_id_hash.then(|| self.id_hash(idx)),
            invite_code: u.invited.then(|| self.invite_code(idx)),
            status: u.status.as_str(),
        }
    }
}

fn asset_rec(spec: &AssetSpec) -> AssetRec {
    AssetRec {
        key: spec.key.clone(),
        product_type: spec.product_type,
        device_assignable: spec.device_assignable && spec.product_type != ProductType::Book,
        revocable: spec.revocable && spec.product_type != ProductType::Book,
        platforms: spec.platforms.clone(),
        total: spec.total,
        retired: spec.retired,
        removed: false,
    }
}
