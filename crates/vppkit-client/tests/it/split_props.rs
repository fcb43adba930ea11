//! Property tests of request splitting: no request exceeds a limit, no item (or
//! asset x target pair) is dropped or duplicated, and the count is the fewest
//! the limits allow (with serials and users kept apart).

use std::collections::HashSet;

use proptest::prelude::*;
use vppkit_client::{split_manage_assets, split_revoke, split_users, Limits, RequestUser};
use vppkit_core::{AdamId, AssetKey, ClientUserId, PricingParam, SerialNumber};

fn limits() -> impl Strategy<Value = Limits> {
    (1u32..30, 1u32..40, 1u32..40, 1u32..20, 1u32..20, 1u32..20).prop_map(
        |(a, s, u, rs, ru, mu)| {
            let mut l = Limits::default();
            l.max_assets = a;
            l.max_serial_numbers = s;
            l.max_client_user_ids = u;
            l.max_revoke_serial_numbers = rs;
            l.max_revoke_client_user_ids = ru;
            l.max_users = mu;
            l
        },
    )
}

fn assets() -> impl Strategy<Value = Vec<AssetKey>> {
    prop::collection::vec((0u64..60, any::<bool>()), 0..80).prop_map(|v| {
        v.into_iter()
            .map(|(id, plus)| {
                AssetKey::new(
                    AdamId::from(id),
                    if plus {
                        PricingParam::Plus
                    } else {
                        PricingParam::Stdq
                    },
                )
            })
            .collect()
    })
}

fn serials() -> impl Strategy<Value = Vec<SerialNumber>> {
    prop::collection::vec(0u32..300, 0..250).prop_map(|v| {
        v.into_iter()
            .map(|i| SerialNumber::new(format!("S{i}")).unwrap())
            .collect()
    })
}

fn users() -> impl Strategy<Value = Vec<ClientUserId>> {
    prop::collection::vec(0u32..300, 0..250).prop_map(|v| {
        v.into_iter()
            .map(|i| ClientUserId::new(format!("u{i}")).unwrap())
            .collect()
    })
}

fn ceil(n: usize, d: u32) -> usize {
    n.div_ceil(d as usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn manage_assets_split(l in limits(), a in assets(), s in serials(), u in users()) {
        let reqs = split_manage_assets(&a, &s, &u, &l);
        let ua: HashSet<_> = a.iter().cloned().collect();
        let us: HashSet<_> = s.iter().cloned().collect();
        let uu: HashSet<_> = u.iter().cloned().collect();
        let mut pairs = HashSet::new();
        for r in &reqs {
            prop_assert!(!r.assets.is_empty());
            prop_assert!(r.assets.len() <= l.max_assets as usize);
            prop_assert!(r.serial_numbers.len() <= l.max_serial_numbers as usize);
            prop_assert!(r.client_user_ids.len() <= l.max_client_user_ids as usize);
            prop_assert!(r.serial_numbers.is_empty() != r.client_user_ids.is_empty());
            // No duplicates inside a request (Apple: 9703-9705).
            prop_assert_eq!(r.assets.iter().collect::<HashSet<_>>().len(), r.assets.len());
            prop_assert_eq!(r.serial_numbers.iter().collect::<HashSet<_>>().len(), r.serial_numbers.len());
            prop_assert_eq!(r.client_user_ids.iter().collect::<HashSet<_>>().len(), r.client_user_ids.len());
            for asset in &r.assets {
                for sn in &r.serial_numbers {
                    prop_assert!(pairs.insert((asset.clone(), format!("d:{sn}"))), "duplicate pair");
                }
                for cu in &r.client_user_ids {
                    prop_assert!(pairs.insert((asset.clone(), format!("u:{cu}"))), "duplicate pair");
                }
            }
        }
        prop_assert_eq!(pairs.len(), ua.len() * (us.len() + uu.len()));
        let fewest = if ua.is_empty() { 0 } else {
            ceil(ua.len(), l.max_assets) * (ceil(us.len(), l.max_serial_numbers) + ceil(uu.len(), l.max_client_user_ids))
        };
        prop_assert_eq!(reqs.len(), fewest);
    }

    #[test]
    fn revoke_split(l in limits(), s in serials(), u in users()) {
        let reqs = split_revoke(&s, &u, &l);
        let mut seen_s = HashSet::new();
        let mut seen_u = HashSet::new();
        for r in &reqs {
            prop_assert!(r.serial_numbers.len() <= l.max_revoke_serial_numbers as usize);
            prop_assert!(r.client_user_ids.len() <= l.max_revoke_client_user_ids as usize);
            prop_assert!(!(r.serial_numbers.is_empty() && r.client_user_ids.is_empty()));
            for x in &r.serial_numbers { prop_assert!(seen_s.insert(x.clone())); }
            for x in &r.client_user_ids { prop_assert!(seen_u.insert(x.clone())); }
        }
        prop_assert_eq!(seen_s, s.iter().cloned().collect::<HashSet<_>>());
        prop_assert_eq!(seen_u.clone(), u.iter().cloned().collect::<HashSet<_>>());
        let fewest = ceil(s.iter().collect::<HashSet<_>>().len(), l.max_revoke_serial_numbers)
            + ceil(seen_u.len(), l.max_revoke_client_user_ids);
        prop_assert_eq!(reqs.len(), fewest);
    }

    #[test]
    fn users_split(l in limits(), u in users()) {
        let input: Vec<RequestUser> = u.iter().cloned().map(RequestUser::new).collect();
        let reqs = split_users(&input, &l);
        let mut seen = HashSet::new();
        for r in &reqs {
            prop_assert!(!r.users.is_empty());
            prop_assert!(r.users.len() <= l.max_users as usize);
            for x in &r.users { prop_assert!(seen.insert(x.client_user_id.clone())); }
        }
        prop_assert_eq!(seen.len(), u.iter().collect::<HashSet<_>>().len());
        prop_assert_eq!(reqs.len(), ceil(seen.len(), l.max_users));
    }
}
