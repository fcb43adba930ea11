//! The read endpoints: assets, assignments, users, status, client config.

use std::sync::Arc;

use vppkit_core::{PricingParam, ProductType};

use super::{KeyCache, Location};
use crate::changelog::{parse_version_id, version_id, Family};
use crate::codes::{ApiError, Code, ErrorBody, ErrorInfo};
use crate::query::{PageBounds, Query};
use crate::store::{pack, unpack, USER_BIT};
use crate::wire::{
    to_vec, AssetOut, AssignmentOut, ClientConfigOut, MdmOut, PageOut, UnlimitedAssetOut, UserOut,
};

fn parse_enum<T: std::str::FromStr>(q: &Query<'_>, key: &str) -> Result<Option<T>, ApiError> {
    q.get(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::new(Code::InvalidArgument))
        })
        .transpose()
}

fn parse_adam(q: &Query<'_>) -> Result<Option<u64>, ApiError> {
    q.get("adamId")
        .map(|v| {
            vppkit_core::AdamId::new(v.trim())
                .map(|a| a.as_u64())
                .map_err(|_| ApiError::new(Code::InvalidArgument))
        })
        .transpose()
}

impl Location {
    fn page_out<'a>(&'a self, token_exp: &'a str, b: PageBounds, version: String) -> PageOut<'a> {
        PageOut {
            assets: None,
            assignments: None,
            current_page_index: b.index,
            mdm_info: MdmOut::of(self.mdm_info.as_ref()),
            next_page_index: b.next(),
            size: b.end - b.start,
            token_expiration_date: token_exp,
            total_pages: b.total_pages,
            u_id: self.uid.as_str(),
            unlimited_assets: None,
            users: None,
            version_id: version,
        }
    }

    /// `GET assets`.
    pub(crate) fn get_assets(
        &self,
        q: &Query<'_>,
        token_exp: &str,
        page_size: usize,
    ) -> Result<Vec<u8>, ApiError> {
        let index = q.page_index()?;
        let product: Option<ProductType> = parse_enum(q, "productType")?;
        // Apple knows only App and Book here: anything else is a bad argument.
        if product.is_some_and(|p| !p.is_known()) {
            return Err(ApiError::new(Code::InvalidArgument));
        }
        let pricing: Option<PricingParam> = parse_enum(q, "pricingParam")?;
        let revocable = q.bool("revocable")?;
        let device_assignable = q.bool("deviceAssignable")?;
        let min_avail = q.u32("minAvailableCount")?;
        let max_avail = q.u32("maxAvailableCount")?;
        let min_assigned = q.u32("minAssignedCount")?;
        let max_assigned = q.u32("maxAssignedCount")?;
        let adam = parse_adam(q)?;
        let unlimited = q.bool("unlimited")?;
        let in_range = |v: u32, lo: Option<u32>, hi: Option<u32>| {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        };
        let matches: Vec<u32> = (0..self.assets.len() as u32)
            .filter(|&i| {
                let a = &self.assets[i as usize];
                !a.removed
                    && product.is_none_or(|p| a.product_type == p)
                    && pricing.is_none_or(|p| a.key.pricing_param == p)
                    && revocable.is_none_or(|r| a.revocable == r)
                    && device_assignable.is_none_or(|d| a.device_assignable == d)
                    && adam.is_none_or(|id| a.key.adam_id.as_u64() == id)
                    && !(unlimited == Some(false) && a.is_unlimited())
                    && in_range(self.available(i), min_avail, max_avail)
                    && in_range(self.assigned(i), min_assigned, max_assigned)
            })
            .collect();
        let b = PageBounds::new(matches.len(), page_size, index)?;
        let mut assets = Vec::new();
        let mut unlimited_assets = Vec::new();
        for &i in &matches[b.start..b.end] {
            let a = &self.assets[i as usize];
            let platforms = a.platforms.iter().map(|p| p.as_str()).collect();
            if unlimited == Some(true) && a.is_unlimited() {
                unlimited_assets.push(UnlimitedAssetOut {
                    adam_id: a.key.adam_id.as_str(),
                    assigned_count: self.assigned(i),
                    device_assignable: a.device_assignable,
                    pricing_param: a.key.pricing_param.as_str(),
                    product_type: a.product_type.as_str(),
                    revocable: a.revocable,
                    supported_platforms: platforms,
                });
            } else {
                let c = self.counts(i);
                assets.push(AssetOut {
                    adam_id: a.key.adam_id.as_str(),
                    assigned_count: c.assigned,
                    available_count: c.available,
                    device_assignable: a.device_assignable,
                    pricing_param: a.key.pricing_param.as_str(),
                    product_type: a.product_type.as_str(),
                    retired_count: c.retired,
                    revocable: a.revocable,
                    supported_platforms: platforms,
                    total_count: c.total,
                });
            }
        }
        let version = version_id(self.salt, Family::Assets, self.asset_version);
        let mut page = self.page_out(token_exp, b, version);
        page.assets = Some(assets);
        if unlimited == Some(true) {
            page.unlimited_assets = Some(unlimited_assets);
        }
        Ok(to_vec(&page))
    }

    fn since(&self, q: &Query<'_>, family: Family, current: u32) -> Result<Option<u32>, ApiError> {
        match q.get("sinceVersionId") {
            None => Ok(None),
            Some(text) => parse_version_id(self.salt, family, text)
                .filter(|v| *v <= current)
                .map(Some)
                .ok_or_else(|| ApiError::new(Code::InvalidVersionId)),
        }
    }

    fn user_active_code(&self, holder: u32) -> bool {
        holder & USER_BIT == 0
            || self
                .latest(holder & !USER_BIT)
                .is_some_and(|i| self.users[i as usize].status.is_active())
    }

    /// `GET assignments`.
    pub(crate) fn get_assignments(
        &mut self,
        q: &Query<'_>,
        token_exp: &str,
        page_size: usize,
    ) -> Result<Vec<u8>, ApiError> {
        let index = q.page_index()?;
        let adam = parse_adam(q)?;
        let pricing: Option<PricingParam> = parse_enum(q, "pricingParam")?;
        let serial = q.get("serialNumber");
        let cuid = q.get("clientUserId");
        let exclude_inactive = q.bool("excludeInactiveUsers")?.unwrap_or(false);
        let include_state = q.bool("includeUserState")?.unwrap_or(false);
        let version = self.assignment_log.current();
        let since = self.since(q, Family::Assignments, version)?;

        let asset_ok = |l: &Location, a: u32| {
            let rec = &l.assets[a as usize];
            !rec.removed
                && adam.is_none_or(|id| rec.key.adam_id.as_u64() == id)
                && pricing.is_none_or(|p| rec.key.pricing_param == p)
        };
        // Holder filter: Some(None) means "a holder nobody has": empty result.
        let holder: Option<Option<u32>> = match (serial, cuid) {
            (Some(s), _) => Some(self.devices.get(s)),
            (None, Some(u)) => Some(self.user_ids.get(u).map(|c| c | USER_BIT)),
            (None, None) => None,
        };
        if let (Some(_), Some(_)) = (serial, cuid) {
            // Both filters: a device and a user never match the same row.
            let b = PageBounds::new(0, page_size, index)?;
            let v = version_id(self.salt, Family::Assignments, version);
            let mut page = self.page_out(token_exp, b, v);
            page.assignments = Some(Vec::new());
            return Ok(to_vec(&page));
        }

        let candidate_assets: Vec<u32> = match adam {
            Some(id) => [PricingParam::Stdq, PricingParam::Plus]
                .iter()
                .filter_map(|p| self.asset_idx(id, *p))
                .filter(|a| asset_ok(self, *a))
                .collect(),
            None => (0..self.assets.len() as u32)
                .filter(|a| asset_ok(self, *a))
                .collect(),
        };

        let streaming = since.is_none() && holder.is_none() && !exclude_inactive;
        let (b, rows): (PageBounds, Vec<u64>) = if streaming {
            let total: usize = candidate_assets
                .iter()
                .map(|a| self.store.asset_holders(*a).len())
                .sum();
            let b = PageBounds::new(total, page_size, index)?;
            let mut rows = Vec::with_capacity(b.end - b.start);
            let mut skip = b.start;
            let mut want = b.end - b.start;
            for &a in &candidate_assets {
                if want == 0 {
                    break;
                }
                let holders = self.store.asset_holders(a);
                if skip >= holders.len() {
                    skip -= holders.len();
                    continue;
                }
                let take = (holders.len() - skip).min(want);
                rows.extend(holders[skip..skip + take].iter().map(|h| pack(a, *h)));
                want -= take;
                skip = 0;
            }
            (b, rows)
        } else {
            let filter =
                format!("{adam:?}|{pricing:?}|{serial:?}|{cuid:?}|{since:?}|{exclude_inactive}");
            let keys = match &self.key_cache {
                Some(c) if c.filter == filter && c.version == version => Arc::clone(&c.keys),
                _ => {
                    let mut keys: Vec<u64> = match (since, holder) {
                        (Some(v), _) => {
                            let mut k = self.assignment_log.since(v).unwrap_or(&[]).to_vec();
                            k.sort_unstable();
                            k.dedup();
                            k.retain(|key| {
                                let (a, h) = unpack(*key);
                                self.store.contains(a, h)
                                    && asset_ok(self, a)
                                    && holder.is_none_or(|want| want == Some(h))
                            });
                            k
                        }
                        (None, Some(Some(h))) => {
                            let mut k: Vec<u64> = self
                                .store
                                .holder_assets(h)
                                .iter()
                                .filter(|a| asset_ok(self, **a))
                                .map(|a| pack(*a, h))
                                .collect();
                            k.sort_unstable();
                            k
                        }
                        (None, Some(None)) => Vec::new(),
                        (None, None) => candidate_assets
                            .iter()
                            .flat_map(|a| self.store.asset_holders(*a).iter().map(|h| pack(*a, *h)))
                            .collect(),
                    };
                    if exclude_inactive {
                        keys.retain(|k| self.user_active_code(unpack(*k).1));
                    }
                    let keys = Arc::new(keys);
                    self.key_cache = Some(KeyCache {
                        filter,
                        version,
                        keys: Arc::clone(&keys),
                    });
                    keys
                }
            };
            let b = PageBounds::new(keys.len(), page_size, index)?;
            (b, keys[b.start..b.end].to_vec())
        };

        let mut out = Vec::with_capacity(rows.len());
        for key in rows {
            let (a, h) = unpack(key);
            let rec = &self.assets[a as usize];
            let is_user = h & USER_BIT != 0;
            let (user_status, id_hash) = if include_state && is_user {
                match self.latest(h & !USER_BIT) {
                    Some(i) => {
                        let u = &self.users[i as usize];
                        (
                            Some(u.status.as_str()),
                            u.has_id_hash.then(|| self.id_hash(i)),
                        )
                    }
                    None => (None, None),
                }
            } else {
                (None, None)
            };
            out.push(AssignmentOut {
                adam_id: rec.key.adam_id.as_str(),
                client_user_id: is_user.then(|| self.user_ids.name(h & !USER_BIT)),
                id_hash,
                pricing_param: rec.key.pricing_param.as_str(),
                serial_number: (!is_user).then(|| self.devices.name(h)),
                user_status,
            });
        }
        let v = version_id(self.salt, Family::Assignments, version);
        let mut page = self.page_out(token_exp, b, v);
        page.assignments = Some(out);
        Ok(to_vec(&page))
    }

    /// `GET users`.
    pub(crate) fn get_users(
        &self,
        q: &Query<'_>,
        token_exp: &str,
        page_size: usize,
    ) -> Result<Vec<u8>, ApiError> {
        let index = q.page_index()?;
        let mut active_only = q.bool("activeOnly")?.unwrap_or(false);
        let retired_only = q.bool("retiredOnly")?.unwrap_or(false);
        if q.bool("includeRetired")? == Some(false) {
            active_only = true;
        }
        let cuid = q.get("clientUserId");
        let managed = q.get("managedAppleId");
        let version = self.user_log.current();
        let since = self.since(q, Family::Users, version)?;
        let cuid_id = cuid.map(|c| self.user_ids.get(c));
        let keep = |i: u32| {
            let u = &self.users[i as usize];
            (!active_only || u.status.is_active())
                && (!retired_only || !u.status.is_active())
                && cuid_id.is_none_or(|c| c == Some(u.cuid))
                && managed.is_none_or(|m| u.managed_apple_id.as_deref() == Some(m))
        };
        let rows: Vec<u32> = match since {
            Some(v) => {
                let mut k = self.user_log.since(v).unwrap_or(&[]).to_vec();
                k.sort_unstable();
                k.dedup();
                k.retain(|i| keep(*i));
                k
            }
            None => (0..self.users.len() as u32).filter(|i| keep(*i)).collect(),
        };
        let b = PageBounds::new(rows.len(), page_size, index)?;
        let users: Vec<UserOut<'_>> = rows[b.start..b.end]
            .iter()
            .map(|i| self.user_out(*i))
            .collect();
        let v = version_id(self.salt, Family::Users, version);
        let mut page = self.page_out(token_exp, b, v);
        page.users = Some(users);
        Ok(to_vec(&page))
    }

    /// `GET status`.
    pub(crate) fn get_status(&self, q: &Query<'_>, token_exp: &str) -> Result<Vec<u8>, ApiError> {
        let id = q
            .get("eventId")
            .and_then(|t| uuid::Uuid::parse_str(t.trim()).ok())
            .ok_or_else(|| ApiError::new(Code::EventNotFound))?;
        let e = self
            .events
            .get(&id)
            .ok_or_else(|| ApiError::new(Code::EventNotFound))?;
        let failures: Vec<serde_json::Value> = e
            .failures
            .iter()
            .map(|f| {
                let info = ErrorInfo {
                    assets: f
                        .asset
                        .map(|a| {
                            let k = &self.assets[a as usize].key;
                            vec![crate::codes::AssetRef {
                                adam_id: k.adam_id.to_string(),
                                pricing_param: k.pricing_param.to_string(),
                            }]
                        })
                        .unwrap_or_default(),
                    client_user_ids: f.users.clone(),
                    serial_numbers: f.serials.clone(),
                };
                let info = (!info.is_empty()).then_some(info);
                serde_json::to_value(ErrorBody::new(f.code, info.as_ref()))
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect();
        let mut body = serde_json::json!({
            "eventStatus": e.status.as_str(),
            "eventType": e.kind.as_str(),
            "numCompleted": e.num_completed,
            "numRequested": e.num_requested,
            "tokenExpirationDate": token_exp,
            "uId": self.uid.as_str(),
        });
        if !failures.is_empty() {
            body["failures"] = serde_json::Value::Array(failures);
        }
        if let Some(m) = MdmOut::of(self.mdm_info.as_ref()) {
            body["mdmInfo"] = serde_json::to_value(m).unwrap_or_default();
        }
        Ok(to_vec(&body))
    }

    /// `GET client/config` (and the answer of a POST).
    pub(crate) fn client_config(&self, token_exp: &str) -> Vec<u8> {
        to_vec(&ClientConfigOut {
            country: &self.country,
            default_platform: self.default_platform(),
            location_name: &self.name,
            mdm_info: MdmOut::of(self.mdm_info.as_ref()),
            notification_auth_token: self.notify.as_ref().map(|n| n.auth.expose()),
            notification_url: self.notify.as_ref().map(|n| n.url.as_str()),
            subscribed: &self.subscribed,
            token_expiration_date: token_exp,
            u_id: self.uid.as_str(),
            website_url: self.website_url(),
        })
    }
}
