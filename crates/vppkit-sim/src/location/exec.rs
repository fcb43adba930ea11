//! Running events: licence moves, user changes, failures, notifications.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use vppkit_core::VppUserStatus;

use super::{Failure, Location, UserRec, UserRequest, Work};
use crate::codes::Code;
use crate::hash::FastMap;
use crate::notify::Outgoing;
use crate::store::{pack, unpack, USER_BIT};
use crate::truth::{EventStatusKind, EventType};

/// At most this many items per notification (Apple's rule).
pub(crate) const NOTIFICATION_CHUNK: usize = 100;

/// Failures grouped by (error, asset), in first-seen order.
#[derive(Default)]
struct Failures {
    order: Vec<(Code, Option<u32>)>,
    groups: FastMap<(Code, Option<u32>), Failure>,
    count: u32,
}

impl Failures {
    fn add(&mut self, code: Code, asset: Option<u32>, serial: Option<&str>, user: Option<&str>) {
        self.count += 1;
        let group = self.groups.entry((code, asset)).or_insert_with(|| {
            self.order.push((code, asset));
            Failure {
                code,
                asset,
                serials: Vec::new(),
                users: Vec::new(),
            }
        });
        if let Some(s) = serial {
            group.serials.push(s.to_owned());
        }
        if let Some(u) = user {
            group.users.push(u.to_owned());
        }
    }

    fn into_vec(mut self) -> Vec<Failure> {
        self.order
            .iter()
            .filter_map(|k| self.groups.remove(k))
            .collect()
    }
}

impl Location {
    /// Runs every pending event that is due at `now` (all of them with
    /// `force`), oldest first; returns the notifications to deliver.
    pub(crate) fn process_due(&mut self, now: Duration, force: bool) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while let Some(id) = self.pending.front().copied() {
            let due = self.events.get(&id).map_or(Duration::ZERO, |e| e.due);
            if !force && due > now {
                break;
            }
            self.pending.pop_front();
            self.run_event(id, &mut out);
        }
        out
    }

    /// Whether any pending event is due at `now`.
    pub(crate) fn has_due(&self, now: Duration) -> bool {
        self.pending
            .front()
            .and_then(|id| self.events.get(id))
            .is_some_and(|e| e.due <= now)
    }

    fn run_event(&mut self, id: Uuid, out: &mut Vec<Outgoing>) {
        let Some(event) = self.events.get_mut(&id) else {
            return;
        };
        let kind = event.kind;
        let Some(work) = event.work.take() else {
            return;
        };
        let mut failures = Failures::default();
        let completed = match work {
            Work::Manage {
                assets,
                serials,
                users,
            } => self.run_manage(id, kind, &assets, &serials, &users, &mut failures, out),
            Work::Revoke { serials, users } => {
                self.run_revoke(id, &serials, &users, &mut failures, out)
            }
            Work::Users(users) => self.run_users(id, kind, &users, &mut failures, out),
        };
        let fail_list = failures.into_vec();
        self.emit_failures(id, kind, &fail_list, out);
        if let Some(event) = self.events.get_mut(&id) {
            event.num_completed = completed;
            event.status = if fail_list.is_empty() {
                EventStatusKind::Complete
            } else {
                EventStatusKind::Failed
            };
            event.failures = fail_list;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_manage(
        &mut self,
        id: Uuid,
        kind: EventType,
        assets: &[u32],
        serials: &[String],
        users: &[String],
        failures: &mut Failures,
        out: &mut Vec<Outgoing>,
    ) -> u32 {
        let associate = kind == EventType::Associate;
        let mut done: Vec<u64> = Vec::new();
        let mut changed = false;
        // Resolve targets once: devices (interned on associate: Apple accepts
        // serial numbers it has never seen), users (must be active: else 9609).
        let device_codes: Vec<Option<u32>> = serials
            .iter()
            .map(|s| {
                if associate {
                    Some(self.devices.intern(s))
                } else {
                    self.devices.get(s)
                }
            })
            .collect();
        let user_codes: Vec<Option<u32>> = users
            .iter()
            .map(|u| self.active_user(u).map(|(c, _)| c | USER_BIT))
            .collect();
        for &a in assets {
            for (i, code) in device_codes.iter().enumerate() {
                match code {
                    Some(h) => {
                        if self.apply_pair(a, *h, associate, &mut changed) {
                            done.push(pack(a, *h));
                        } else {
                            failures.add(Code::NotEnoughLicences, Some(a), Some(&serials[i]), None);
                        }
                    }
                    // Disassociating a device that holds nothing: a no-op success.
                    None => done.push(u64::MAX),
                }
            }
            for (i, code) in user_codes.iter().enumerate() {
                match code {
                    Some(h) => {
                        if self.apply_pair(a, *h, associate, &mut changed) {
                            done.push(pack(a, *h));
                        } else {
                            failures.add(Code::NotEnoughLicences, Some(a), None, Some(&users[i]));
                        }
                    }
                    None => failures.add(Code::UserNotFound, Some(a), None, Some(&users[i])),
                }
            }
        }
        self.commit_assignments();
        let completed = done.len() as u32;
        done.retain(|k| *k != u64::MAX);
        self.emit_assignments(id, kind, &done, out);
        completed
    }

    /// Another MDM's associate or disassociate on this location, done at once
    /// (its event is not ours to follow): counts move, the assignments'
    /// `versionId` changes and the change log records each pair, so an
    /// incremental read (`sinceVersionId`) sees it. All or nothing: an unknown
    /// asset or user, a shortage or a non-revocable asset changes nothing.
    /// Returns how many pairs changed.
    pub(crate) fn foreign_change(
        &mut self,
        key: &vppkit_core::AssetKey,
        serials: &[String],
        users: &[String],
        associate: bool,
    ) -> Result<usize, crate::SimError> {
        let a = self
            .live_asset(key)
            .ok_or_else(|| crate::SimError::UnknownAsset {
                uid: self.uid.to_string(),
                asset: key.to_string(),
            })?;
        if !associate && !self.assets[a as usize].revocable {
            return Err(crate::SimError::NotRevocable {
                asset: key.to_string(),
            });
        }
        let mut holders = Vec::with_capacity(serials.len() + users.len());
        for s in serials {
            let code = if associate {
                Some(self.devices.intern(s))
            } else {
                self.devices.get(s)
            };
            holders.extend(code);
        }
        for u in users {
            let (c, _) = self
                .active_user(u)
                .ok_or_else(|| crate::SimError::UnknownUser {
                    uid: self.uid.to_string(),
                    client_user_id: u.clone(),
                })?;
            holders.push(c | USER_BIT);
        }
        holders.sort_unstable();
        holders.dedup();
        if associate {
            let new = holders
                .iter()
                .filter(|&&h| !self.store.contains(a, h))
                .count();
            let available = self.available(a);
            if new as u64 > u64::from(available) {
                return Err(crate::SimError::NotEnoughLicences {
                    asset: key.to_string(),
                    available,
                    requested: new as u32,
                });
            }
        }
        let mut changed = false;
        let mut n = 0;
        for h in holders {
            let mut this = false;
            self.apply_pair(a, h, associate, &mut this);
            if this {
                n += 1;
                changed = true;
            }
        }
        if changed {
            self.commit_assignments();
        }
        Ok(n)
    }

    /// Associates or disassociates one pair. `false` only for a licence shortage.
    fn apply_pair(&mut self, a: u32, h: u32, associate: bool, changed: &mut bool) -> bool {
        if associate {
            if self.store.contains(a, h) {
                return true;
            }
            if self.available(a) == 0 {
                return false;
            }
            self.store.insert(a, h);
        } else if !self.store.remove(a, h) {
            return true;
        }
        self.assignment_log.record(pack(a, h));
        *changed = true;
        true
    }

    fn commit_assignments(&mut self) {
        self.assignment_log.commit();
        self.asset_version += 1;
    }

    fn run_revoke(
        &mut self,
        id: Uuid,
        serials: &[String],
        users: &[String],
        failures: &mut Failures,
        out: &mut Vec<Outgoing>,
    ) -> u32 {
        let mut completed = 0;
        let mut removed = Vec::new();
        for s in serials {
            if let Some(h) = self.devices.get(s) {
                self.revoke_holder(h, &mut removed);
            }
            completed += 1;
        }
        for u in users {
            match self.active_user(u) {
                Some((c, _)) => {
                    self.revoke_holder(c | USER_BIT, &mut removed);
                    completed += 1;
                }
                None => failures.add(Code::UserNotFound, None, None, Some(u)),
            }
        }
        self.commit_assignments();
        self.emit_assignments(id, EventType::Revoke, &removed, out);
        completed
    }

    /// Takes back every revocable licence of a holder.
    fn revoke_holder(&mut self, h: u32, removed: &mut Vec<u64>) {
        let assets: Vec<u32> = self.store.holder_assets(h).to_vec();
        for a in assets {
            if self.assets[a as usize].revocable && self.store.remove(a, h) {
                self.assignment_log.record(pack(a, h));
                removed.push(pack(a, h));
            }
        }
    }

    fn run_users(
        &mut self,
        id: Uuid,
        kind: EventType,
        users: &[UserRequest],
        failures: &mut Failures,
        out: &mut Vec<Outgoing>,
    ) -> u32 {
        let mut done: Vec<u32> = Vec::new();
        let mut revoked = Vec::new();
        for req in users {
            let active = self.active_user(&req.client_user_id);
            match (kind, active) {
                (EventType::Create, Some(_)) => {
                    failures.add(
                        Code::UserAlreadyExists,
                        None,
                        None,
                        Some(&req.client_user_id),
                    );
                }
                (EventType::Create, None) => {
                    let status = if req.managed_apple_id.is_some() {
                        VppUserStatus::Associated
                    } else {
                        VppUserStatus::Registered
                    };
                    let idx = self.push_user(
                        &req.client_user_id,
                        req.email.as_deref(),
                        req.managed_apple_id.as_deref(),
                        status,
                    );
                    done.push(idx);
                }
                (_, None) => {
                    failures.add(Code::UserNotFound, None, None, Some(&req.client_user_id));
                }
                (EventType::Retire, Some((cuid, idx))) => {
                    self.users[idx as usize].status = VppUserStatus::Retired;
                    // Revocable licences come back; books stay with the account.
                    self.revoke_holder(cuid | USER_BIT, &mut revoked);
                    done.push(idx);
                }
                (_, Some((_, idx))) => {
                    let user: &mut UserRec = &mut self.users[idx as usize];
                    if let Some(e) = &req.email {
                        user.email = Some(e.as_str().into());
                    }
                    if let Some(m) = &req.managed_apple_id {
                        user.managed_apple_id = Some(m.as_str().into());
                        user.status = VppUserStatus::Associated;
                        user.has_id_hash = true;
                    }
                    done.push(idx);
                }
            }
        }
        for idx in &done {
            self.user_log.record(*idx);
        }
        self.user_log.commit();
        if kind == EventType::Retire {
            self.commit_assignments();
        }
        let completed = done.len() as u32;
        let users_json: Vec<Value> = done.iter().map(|i| self.user_json(*i)).collect();
        for chunk in users_json.chunks(NOTIFICATION_CHUNK) {
            let payload = json!({
                "eventId": id.hyphenated().to_string(),
                "result": "SUCCESS",
                "type": kind.as_str(),
                "users": chunk,
            });
            out.extend(self.notification("USER_MANAGEMENT", payload));
        }
        completed
    }

    fn assignment_json(&self, key: u64) -> Value {
        let (a, h) = unpack(key);
        let rec = &self.assets[a as usize];
        let mut v = json!({
            "adamId": rec.key.adam_id.as_str(),
            "pricingParam": rec.key.pricing_param.as_str(),
        });
        if h & USER_BIT != 0 {
            v["clientUserId"] = json!(self.user_ids.name(h & !USER_BIT));
        } else {
            v["serialNumber"] = json!(self.devices.name(h));
        }
        v
    }

    fn emit_assignments(
        &mut self,
        id: Uuid,
        kind: EventType,
        keys: &[u64],
        out: &mut Vec<Outgoing>,
    ) {
        if self.notify.is_none() {
            return;
        }
        for chunk in keys.chunks(NOTIFICATION_CHUNK) {
            let items: Vec<Value> = chunk.iter().map(|k| self.assignment_json(*k)).collect();
            let payload = json!({
                "assignments": items,
                "eventId": id.hyphenated().to_string(),
                "result": "SUCCESS",
                "type": kind.as_str(),
            });
            out.extend(self.notification("ASSET_MANAGEMENT", payload));
        }
    }

    /// One FAILURE notification per failure group and chunk (one `error` each).
    fn emit_failures(
        &mut self,
        id: Uuid,
        kind: EventType,
        failures: &[Failure],
        out: &mut Vec<Outgoing>,
    ) {
        if self.notify.is_none() {
            return;
        }
        for f in failures {
            let error = json!({"errorMessage": f.code.message(), "errorNumber": f.code.number()});
            if kind.is_asset_event() {
                let mut items: Vec<Value> = Vec::new();
                let base = |l: &Location| {
                    f.asset.map(|a| {
                        let k = &l.assets[a as usize].key;
                        (k.adam_id.to_string(), k.pricing_param.as_str())
                    })
                };
                let (adam, pricing) = base(self).unwrap_or_default();
                for s in &f.serials {
                    items.push(json!({"adamId": adam, "pricingParam": pricing, "serialNumber": s}));
                }
                for u in &f.users {
                    if adam.is_empty() {
                        items.push(json!({"clientUserId": u}));
                    } else {
                        items.push(
                            json!({"adamId": adam, "clientUserId": u, "pricingParam": pricing}),
                        );
                    }
                }
                for chunk in items.chunks(NOTIFICATION_CHUNK) {
                    let payload = json!({
                        "assignments": chunk,
                        "error": error,
                        "eventId": id.hyphenated().to_string(),
                        "result": "FAILURE",
                        "type": kind.as_str(),
                    });
                    out.extend(self.notification("ASSET_MANAGEMENT", payload));
                }
            } else {
                let items: Vec<Value> =
                    f.users.iter().map(|u| json!({"clientUserId": u})).collect();
                for chunk in items.chunks(NOTIFICATION_CHUNK) {
                    let payload = json!({
                        "error": error,
                        "eventId": id.hyphenated().to_string(),
                        "result": "FAILURE",
                        "type": kind.as_str(),
                        "users": chunk,
                    });
                    out.extend(self.notification("USER_MANAGEMENT", payload));
                }
            }
        }
    }
}
