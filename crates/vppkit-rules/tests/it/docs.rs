//! The examples in docs/policies.md parse, and example 1 does what the page says.
//!
//! The page is the workspace's `docs/policies.md`; the crate carries a copy
//! (`crates/vppkit-rules/docs/policies.md`) so these tests also run from the published
//! package, and [`the_packaged_copy_is_the_workspace_page`] keeps the two identical.

use vppkit_core::{
    Asset, AssetCounts, HoldingStatus, Platform, ProductType, VppUser, VppUserStatus,
};
use vppkit_rules::{BlockReason, Directory, PlanContext, Planner, PolicySet};

use crate::fixture::*;

const PAGE: &str = include_str!("../../docs/policies.md");

#[test]
fn the_packaged_copy_is_the_workspace_page() {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policies.md");
    // From the published package there is no workspace: nothing to compare.
    if let Ok(page) = std::fs::read_to_string(workspace) {
        assert!(
            page == PAGE,
            "docs/policies.md changed: copy it to crates/vppkit-rules/docs/policies.md"
        );
    }
}

/// The ```json blocks of the page, in order.
fn json_blocks() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut rest = PAGE;
    while let Some(i) = rest.find("```json\n") {
        let body = &rest[i + 8..];
        let end = body.find("```").expect("unclosed block");
        out.push(&body[..end]);
        rest = &body[end + 3..];
    }
    out
}

#[test]
fn every_example_file_parses() {
    let blocks = json_blocks();
    assert_eq!(
        blocks.len(),
        6,
        "three examples, each a directory and a policy file"
    );
    for (i, b) in blocks.iter().enumerate() {
        // Each file also survives a round trip through `to_json`.
        if i % 2 == 0 {
            let d = Directory::from_json(b).unwrap_or_else(|e| panic!("directory block {i}: {e}"));
            assert_eq!(Directory::from_json(&d.to_json()).unwrap(), d);
        } else {
            let p = PolicySet::from_json(b).unwrap_or_else(|e| panic!("policy block {i}: {e}"));
            assert_eq!(PolicySet::from_json(&p.to_json()).unwrap(), p);
        }
    }
}

fn asset(adam: u64, product: ProductType, total: u32) -> Asset {
    let app = product == ProductType::App;
    Asset::new(
        vppkit_core::AssetKey::new(
            vppkit_core::AdamId::from(adam),
            vppkit_core::PricingParam::Stdq,
        ),
        product,
        app,
        app,
        vec![Platform::Ios, Platform::MacOs],
        AssetCounts::new(total, 0, total, 0),
    )
}

#[test]
fn format_errors_say_where() {
    let err = PolicySet::from_json(
        r#"{"policies": [{"id": "p", "adamId": "1", "target": "allUsers",
        "intent": "required", "licence": "user", "exlcude": []}]}"#,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 2") && text.contains("exlcude"),
        "{text}"
    );
    let err = PolicySet::from_json(
        r#"{"policies": [{"id": "p", "adamId": "1", "target": "allUsers",
        "intent": "required", "licence": "user"}, {"id": "p", "adamId": "2", "target": "allUsers",
        "intent": "required", "licence": "user"}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "policy \"p\" is listed twice");
    assert!(Directory::from_json(
        r#"{"devices": [{"serialNumber": "C1", "platform": "iOS", "osVersion": "seventeen"}]}"#
    )
    .is_err());
}

#[test]
fn example_one_does_what_the_page_says() {
    let blocks = json_blocks();
    let dir = Directory::from_json(blocks[0]).unwrap();
    let set = PolicySet::from_json(blocks[1]).unwrap();
    let mut state = vppkit_rules::LicenceState::new();
    let school = loc("school");
    state.add_location(school.clone(), vppkit_core::TokenState::Valid);
    for (adam, product) in [
        (409_183_694, ProductType::App),
        (361_309_726, ProductType::App),
        (1_516_372_311, ProductType::Book),
        (1_493_426_981, ProductType::App),
        (1_234_500_001, ProductType::App),
    ] {
        state.add_asset(
            &school,
            asset(adam, product, 50),
            Some(format!("com.example.{adam}")),
        );
    }
    state.set_user(
        &school,
        VppUser::new(uid("d4c3b2a1-former-dan"), VppUserStatus::Associated),
    );
    state.set_holding(
        &school,
        &key(361_309_726),
        user_holder("d4c3b2a1-former-dan"),
        HoldingStatus::Active,
    );
    let plan = Planner::new()
        .plan(&dir, &set, &state, &PlanContext::new(now()))
        .unwrap();
    assert!(
        plan.invalid_policies.is_empty(),
        "{:?}",
        plan.invalid_policies
    );
    let got: Vec<String> = associations(&plan)
        .into_iter()
        .map(|(_, a, h)| format!("{} {h}", a.adam_id))
        .collect();
    assert_eq!(
        got,
        vec![
            "361309726 user:7d1c7a64-teacher-ana",
            "409183694 device:DMPCART00001",
            "409183694 device:DMPCART00002",
            "409183694 device:DMPSHARED001",
        ]
    );
    let lp = plan.location(&school).unwrap();
    let created: Vec<String> = lp.create_users[0]
        .users
        .iter()
        .map(|u| u.client_user_id.to_string())
        .collect();
    assert_eq!(
        created,
        vec![
            "7d1c7a64-teacher-ana",
            "a3b2f0e1-teacher-ben",
            "c9e8d7f6-pupil-cleo"
        ]
    );
    let invited: Vec<(String, usize)> = lp
        .invitations
        .iter()
        .map(|i| (i.client_user_id.to_string(), i.devices.len()))
        .collect();
    assert_eq!(
        invited,
        vec![
            ("a3b2f0e1-teacher-ben".into(), 2),
            ("c9e8d7f6-pupil-cleo".into(), 1)
        ]
    );
    let waiting = plan
        .blocked
        .iter()
        .filter(|b| matches!(b.reason, BlockReason::AwaitingInvitation { .. }))
        .count();
    assert_eq!(
        waiting, 2,
        "Ben's Pages and Cleo's book wait for the invitations"
    );
    assert_eq!(lp.revoke.len(), 1, "Dan's licences are revoked");
    assert_eq!(
        lp.retire_users[0].client_user_ids,
        vec![uid("d4c3b2a1-former-dan")]
    );
    // Nobody asked for the drawing app; the old exam app is not installed anywhere known.
    assert!(plan
        .commands
        .iter()
        .all(|c| c.command.adam_id().map(|a| a.as_u64()) != Some(1_493_426_981)));
}
