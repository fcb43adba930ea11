//! Splitting large writes into the fewest requests Apple's limits allow.
//!
//! Pure functions. Inputs are de-duplicated (keeping first occurrences, since a
//! duplicate would make Apple refuse the whole request with 9703-9705 or 9715);
//! every remaining item, or (asset, target) pair, lands in exactly one request and
//! no request exceeds a limit. Serial numbers and clientUserIds never share a
//! request: Apple's examples mix them, but at least one client reports Apple takes
//! one or the other (API reference, section 15), and keeping them apart costs at
//! most one request per asset chunk.

use std::collections::HashSet;
use std::hash::Hash;

use vppkit_core::{AssetKey, ClientUserId, SerialNumber};

use crate::{Limits, ManageAssetsRequest, ManageUsersRequest, RequestUser, RevokeAssetsRequest};

fn dedup<T: Clone + Eq + Hash>(items: &[T]) -> Vec<T> {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().filter(|i| seen.insert(*i)).cloned().collect()
}

fn size(limit: u32) -> usize {
    (limit as usize).max(1)
}

/// Splits an associate or disassociate of `assets` to `serial_numbers` and
/// `client_user_ids` into requests within `maxAssets`, `maxSerialNumbers` and
/// `maxClientUserIds`. Empty assets or no target give no request.
pub fn split_manage_assets(
    assets: &[AssetKey],
    serial_numbers: &[SerialNumber],
    client_user_ids: &[ClientUserId],
    limits: &Limits,
) -> Vec<ManageAssetsRequest> {
    let assets = dedup(assets);
    let serials = dedup(serial_numbers);
    let users = dedup(client_user_ids);
    let mut out = Vec::new();
    for asset_chunk in assets.chunks(size(limits.max_assets)) {
        for chunk in serials.chunks(size(limits.max_serial_numbers)) {
            out.push(ManageAssetsRequest::devices(
                asset_chunk.to_vec(),
                chunk.to_vec(),
            ));
        }
        for chunk in users.chunks(size(limits.max_client_user_ids)) {
            out.push(ManageAssetsRequest::users(
                asset_chunk.to_vec(),
                chunk.to_vec(),
            ));
        }
    }
    out
}

/// Splits a revoke into requests within `maxRevokeSerialNumbers` and
/// `maxRevokeClientUserIds`.
pub fn split_revoke(
    serial_numbers: &[SerialNumber],
    client_user_ids: &[ClientUserId],
    limits: &Limits,
) -> Vec<RevokeAssetsRequest> {
    let serials = dedup(serial_numbers);
    let users = dedup(client_user_ids);
    let mut out = Vec::new();
    for chunk in serials.chunks(size(limits.max_revoke_serial_numbers)) {
        out.push(RevokeAssetsRequest::new(Vec::new(), chunk.to_vec()));
    }
    for chunk in users.chunks(size(limits.max_revoke_client_user_ids)) {
        out.push(RevokeAssetsRequest::new(chunk.to_vec(), Vec::new()));
    }
    out
}

/// Splits a create/update/retire into requests within `maxUsers`. Users are
/// de-duplicated on `clientUserId` (the first entry wins).
pub fn split_users(users: &[RequestUser], limits: &Limits) -> Vec<ManageUsersRequest> {
    let mut seen = HashSet::with_capacity(users.len());
    let unique: Vec<RequestUser> = users
        .iter()
        .filter(|u| seen.insert(&u.client_user_id))
        .cloned()
        .collect();
    unique
        .chunks(size(limits.max_users))
        .map(|c| ManageUsersRequest::new(c.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam};

    fn key(n: u64) -> AssetKey {
        AssetKey::new(AdamId::from(n), PricingParam::Stdq)
    }

    #[test]
    fn fewest_requests() {
        let limits = Limits::default();
        let assets: Vec<_> = (0..30).map(key).collect();
        let serials: Vec<_> = (0..2500)
            .map(|i| SerialNumber::new(format!("S{i}")).unwrap())
            .collect();
        let users: Vec<_> = (0..10)
            .map(|i| ClientUserId::new(format!("u{i}")).unwrap())
            .collect();
        let reqs = split_manage_assets(&assets, &serials, &users, &limits);
        // 2 asset chunks x (3 serial chunks + 1 user chunk)
        assert_eq!(reqs.len(), 8);
        assert!(split_manage_assets(&[], &serials, &users, &limits).is_empty());
        assert!(split_manage_assets(&assets, &[], &[], &limits).is_empty());
        assert_eq!(split_revoke(&serials, &users, &limits).len(), 26);
    }

    #[test]
    fn zero_limits_do_not_panic() {
        let limits = Limits {
            max_assets: 0,
            max_serial_numbers: 0,
            ..Limits::default()
        };
        let reqs = split_manage_assets(
            &[key(1), key(2)],
            &[SerialNumber::new("A").unwrap()],
            &[],
            &limits,
        );
        assert_eq!(reqs.len(), 2);
    }
}
