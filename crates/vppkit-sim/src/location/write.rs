//! The write endpoints: validation in a fixed order, then an event.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use vppkit_core::{AdamId, PricingParam, SerialNumber};

use super::{Location, Work};
use crate::codes::{ApiError, AssetRef, Code};
use crate::config::Limits;
use crate::truth::EventType;

/// One user of a users/create, update or retire request.
#[derive(Debug, Clone)]
pub(crate) struct UserRequest {
    pub(crate) client_user_id: String,
    pub(crate) email: Option<String>,
    pub(crate) managed_apple_id: Option<String>,
}

/// A list of strings, `None` when absent or null; anything else is 9602.
pub(crate) fn str_list(body: &Value, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_owned()),
                _ => Err(ApiError::new(Code::InvalidArgument)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError::new(Code::InvalidArgument)),
    }
}

fn duplicates(items: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut dups: Vec<String> = Vec::new();
    for i in items {
        if !seen.insert(i.as_str()) && !dups.contains(i) {
            dups.push(i.clone());
        }
    }
    dups
}

/// The per-request target limits (9701/9702) of an associate, disassociate or revoke.
fn check_target_counts(
    users: &[String],
    serials: &[String],
    max_users: usize,
    max_serials: usize,
) -> Result<(), ApiError> {
    if users.len() > max_users {
        return Err(ApiError::new(Code::TooManyClientUserIds));
    }
    if serials.len() > max_serials {
        return Err(ApiError::new(Code::TooManySerialNumbers));
    }
    Ok(())
}

/// Repeated targets (9704/9705) of an associate, disassociate or revoke.
fn check_target_duplicates(users: &[String], serials: &[String]) -> Result<(), ApiError> {
    let dup_users = duplicates(users);
    if !dup_users.is_empty() {
        return Err(ApiError::users(Code::DuplicateClientUserIds, dup_users));
    }
    let dup_serials = duplicates(serials);
    if !dup_serials.is_empty() {
        return Err(ApiError::serials(Code::DuplicateSerialNumbers, dup_serials));
    }
    Ok(())
}

fn asset_ref(adam: &str, pricing: &str) -> AssetRef {
    AssetRef {
        adam_id: adam.to_owned(),
        pricing_param: pricing.to_owned(),
    }
}

/// A plausible email address: one `@`, something before, a dot after.
pub(crate) fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Location {
    /// `assets/associate` and `assets/disassociate`.
    ///
    /// Order: 9718, 9719, 9700-9702, 9703-9705, 9602 (malformed id or an asset
    /// the location does not own), 9707, 9706.
    pub(crate) fn submit_manage(
        &mut self,
        kind: EventType,
        body: &Value,
        limits: &Limits,
        due: Duration,
    ) -> Result<Uuid, ApiError> {
        let raw_assets: Vec<(String, String)> = match body.get("assets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let adam = match item.get("adamId") {
                        Some(Value::String(s)) => s.trim().to_owned(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    let pricing = match item.get("pricingParam") {
                        None | Some(Value::Null) => "STDQ".to_owned(),
                        Some(Value::String(s)) => s.trim().to_owned(),
                        Some(_) => String::new(),
                    };
                    (adam, pricing)
                })
                .collect(),
            Some(_) => return Err(ApiError::new(Code::InvalidArgument)),
        };
        let users = str_list(body, "clientUserIds")?.unwrap_or_default();
        let serials = str_list(body, "serialNumbers")?.unwrap_or_default();

        if raw_assets.is_empty() {
            return Err(ApiError::new(Code::NoAssets));
        }
        if users.is_empty() && serials.is_empty() {
            return Err(ApiError::new(Code::NoTargets));
        }
        if raw_assets.len() > limits.max_assets {
            return Err(ApiError::new(Code::TooManyAssets));
        }
        check_target_counts(
            &users,
            &serials,
            limits.max_client_user_ids,
            limits.max_serial_numbers,
        )?;
        let keys: Vec<String> = raw_assets.iter().map(|(a, p)| format!("{a}/{p}")).collect();
        let dup_assets = duplicates(&keys);
        if !dup_assets.is_empty() {
            let refs = dup_assets
                .iter()
                .filter_map(|k| k.split_once('/'))
                .map(|(a, p)| asset_ref(a, p))
                .collect();
            return Err(ApiError::assets(Code::DuplicateAssets, refs));
        }
        check_target_duplicates(&users, &serials)?;
        let bad_serials: Vec<String> = serials
            .iter()
            .filter(|s| SerialNumber::from_apple(s.as_str()).is_err())
            .cloned()
            .collect();
        if !bad_serials.is_empty() {
            return Err(ApiError::serials(Code::InvalidArgument, bad_serials));
        }
        if users.iter().any(String::is_empty) {
            return Err(ApiError::new(Code::InvalidArgument));
        }
        let mut assets = Vec::with_capacity(raw_assets.len());
        let mut unknown = Vec::new();
        for (adam, pricing) in &raw_assets {
            let idx = AdamId::new(adam.as_str()).ok().and_then(|id| {
                let p: PricingParam = pricing.parse().ok()?;
                self.asset_idx(id.as_u64(), p)
                    .filter(|i| !self.assets[*i as usize].removed)
            });
            match idx {
                Some(i) => assets.push(i),
                None => unknown.push(asset_ref(adam, pricing)),
            }
        }
        if !unknown.is_empty() {
            return Err(ApiError::assets(Code::InvalidArgument, unknown));
        }
        let refs_where = |pred: &dyn Fn(&super::AssetRec) -> bool| -> Vec<AssetRef> {
            assets
                .iter()
                .map(|i| &self.assets[*i as usize])
                .filter(|a| pred(a))
                .map(|a| asset_ref(a.key.adam_id.as_str(), a.key.pricing_param.as_str()))
                .collect()
        };
        if !serials.is_empty() {
            let not_device = refs_where(&|a| !a.device_assignable);
            if !not_device.is_empty() {
                return Err(ApiError::assets(Code::NotDeviceAssignable, not_device));
            }
        }
        if kind == EventType::Disassociate {
            let not_revocable = refs_where(&|a| !a.revocable);
            if !not_revocable.is_empty() {
                return Err(ApiError::assets(Code::NotRevocable, not_revocable));
            }
        }
        let tasks = assets.len() * (users.len() + serials.len());
        Ok(self.new_event(
            kind,
            u32::try_from(tasks).unwrap_or(u32::MAX),
            Work::Manage {
                assets,
                serials,
                users,
            },
            due,
        ))
    }

    /// `assets/revoke`. Order: 9719, 9701/9702 (revoke limits), 9704/9705, 9602.
    pub(crate) fn submit_revoke(
        &mut self,
        body: &Value,
        limits: &Limits,
        due: Duration,
    ) -> Result<Uuid, ApiError> {
        let users = str_list(body, "clientUserIds")?.unwrap_or_default();
        let serials = str_list(body, "serialNumbers")?.unwrap_or_default();
        if users.is_empty() && serials.is_empty() {
            return Err(ApiError::new(Code::NoTargets));
        }
        check_target_counts(
            &users,
            &serials,
            limits.max_revoke_client_user_ids,
            limits.max_revoke_serial_numbers,
        )?;
        check_target_duplicates(&users, &serials)?;
        if users.iter().any(String::is_empty)
            || serials
                .iter()
                .any(|s| SerialNumber::from_apple(s.as_str()).is_err())
        {
            return Err(ApiError::new(Code::InvalidArgument));
        }
        let tasks = users.len() + serials.len();
        Ok(self.new_event(
            EventType::Revoke,
            tasks as u32,
            Work::Revoke { serials, users },
            due,
        ))
    }

    /// `users/create`, `users/update`, `users/retire`.
    /// Order: 9720, 9714, 9602 (no clientUserId), 9715, 9717.
    pub(crate) fn submit_users(
        &mut self,
        kind: EventType,
        body: &Value,
        limits: &Limits,
        due: Duration,
    ) -> Result<Uuid, ApiError> {
        let items = match body.get("users") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(ApiError::new(Code::InvalidArgument)),
        };
        if items.is_empty() {
            return Err(ApiError::new(Code::NoUsers));
        }
        if items.len() > limits.max_users {
            return Err(ApiError::new(Code::TooManyUsers));
        }
        let text = |v: &Value, key: &str| -> Result<Option<String>, ApiError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(ApiError::new(Code::InvalidArgument)),
            }
        };
        let mut users = Vec::with_capacity(items.len());
        for item in &items {
            if !item.is_object() {
                return Err(ApiError::new(Code::InvalidArgument));
            }
            let client_user_id = text(item, "clientUserId")?
                .filter(|c| vppkit_core::ClientUserId::new(c.as_str()).is_ok())
                .ok_or_else(|| ApiError::new(Code::InvalidArgument))?;
            users.push(UserRequest {
                client_user_id,
                email: text(item, "email")?,
                managed_apple_id: text(item, "managedAppleId")?,
            });
        }
        let ids: Vec<String> = users.iter().map(|u| u.client_user_id.clone()).collect();
        let dups = duplicates(&ids);
        if !dups.is_empty() {
            return Err(ApiError::users(Code::DuplicateUsers, dups));
        }
        if kind != EventType::Retire {
            let bad: Vec<String> = users
                .iter()
                .filter(|u| u.email.as_deref().is_some_and(|e| !valid_email(e)))
                .map(|u| u.client_user_id.clone())
                .collect();
            if !bad.is_empty() {
                return Err(ApiError::users(Code::InvalidEmail, bad));
            }
        }
        let n = users.len() as u32;
        Ok(self.new_event(kind, n, Work::Users(users), due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(valid_email("ana@example.org"));
        for bad in [
            "",
            "ana",
            "@example.org",
            "ana@",
            "ana@example",
            "a b@x.org",
            "a@b@c.org",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn duplicate_detection() {
        let v: Vec<String> = ["a", "b", "a", "a"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(duplicates(&v), vec!["a".to_owned()]);
    }
}
