//! Checklist 7: users.

use serde_json::{json, Value};
use vppkit_sim::{demo, Preset};

use crate::support::{start, start_notifying, subscribe, Harness, Receiver};

const UID: &str = demo::ACME_LONDON;

async fn user(h: &Harness, id: &str) -> Vec<Value> {
    let r = h.get(UID, &format!("/users?clientUserId={id}")).await.ok();
    r["users"].as_array().unwrap().clone()
}

#[tokio::test]
async fn create_with_email_or_managed_apple_id() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "new-1", "email": "ana@example.org"},
                             {"clientUserId": "new-2", "email": "bo@example.org", "managedAppleId": "bo@appleid.example.org"}]}),
        )
        .await;
    assert!(
        user(&h, "new-1").await.is_empty(),
        "nothing before the event completes"
    );
    let s = h.finish(UID, &id).await;
    assert_eq!(
        (s["eventType"].as_str(), s["eventStatus"].as_str()),
        (Some("CREATE"), Some("COMPLETE"))
    );
    let ana = &user(&h, "new-1").await[0];
    assert_eq!(ana["status"], "Registered");
    let code = ana["inviteCode"].as_str().unwrap();
    assert_eq!(code.len(), 32);
    assert!(code.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(ana.get("idHash").is_none());
    assert_eq!(ana["email"], "ana@example.org");
    let bo = &user(&h, "new-2").await[0];
    assert_eq!(bo["status"], "Associated");
    assert_eq!(bo["idHash"].as_str().unwrap().len(), 28);
}

#[tokio::test]
async fn accepting_the_invitation_fires_user_associated() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "inv-1", "email": "inv@example.org"}]}),
        )
        .await;
    h.finish(UID, &id).await;
    let c = h.sim.control();
    c.accept_invitation(UID, "inv-1").unwrap();
    assert!(
        c.flush_notifications(std::time::Duration::from_secs(10))
            .await
    );
    let u = &user(&h, "inv-1").await[0];
    assert_eq!(u["status"], "Associated");
    assert_eq!(u["idHash"].as_str().unwrap().len(), 28);
    let n = r.of_type("USER_ASSOCIATED");
    assert_eq!(n.len(), 1);
    let au = &n[0]["notification"]["associatedUsers"][0];
    assert_eq!(au["clientUserId"], "inv-1");
    assert_eq!(au["status"], "Associated");
    assert!(
        au["inviteCode"].is_string(),
        "Apple's example keeps the invite code"
    );
    // A second acceptance is refused.
    assert!(c.accept_invitation(UID, "inv-1").is_err());
    let m = r.of_type("USER_MANAGEMENT");
    assert_eq!(m[0]["notification"]["type"], "CREATE");
    assert_eq!(m[0]["notification"]["users"][0]["status"], "Registered");
}

#[tokio::test]
async fn the_invitation_link_accepts_too() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "link-1", "email": "l@example.org"}]}),
        )
        .await;
    h.finish(UID, &id).await;
    let code = user(&h, "link-1").await[0]["inviteCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let cfg = h
        .raw(reqwest::Method::GET, "/service/config", None, None, None)
        .await
        .ok();
    let link = cfg["urls"]["invitationEmail"]
        .as_str()
        .unwrap()
        .replace("%25inviteCode%25", &code);
    let resp = h.http.get(&link).send().await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(user(&h, "link-1").await[0]["status"], "Associated");
}

#[tokio::test]
async fn retire_duplicates_and_recreate() {
    let h = start(Preset::Demo).await;
    // Creating an active duplicate fails asynchronously with 9716.
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "acl-user-0001", "email": "dup@example.org"}]}),
        )
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(s["eventStatus"], "FAILED");
    assert_eq!(s["failures"][0]["errorNumber"], 9716);
    assert_eq!(
        s["failures"][0]["errorInfo"]["clientUserIds"],
        json!(["acl-user-0001"])
    );
    // Retire: status Retired, revocable licences come back.
    let held_before = h
        .sim
        .control()
        .assignments(UID)
        .unwrap()
        .iter()
        .filter(|(_, x)| x.id() == "acl-user-0001")
        .count();
    assert!(held_before > 0);
    let id = h
        .submit(
            UID,
            "/users/retire",
            json!({"users": [{"clientUserId": "acl-user-0001"}]}),
        )
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(
        (s["eventType"].as_str(), s["eventStatus"].as_str()),
        (Some("RETIRE"), Some("COMPLETE"))
    );
    let after = h.sim.control().assignments(UID).unwrap();
    let kept: Vec<_> = after
        .iter()
        .filter(|(_, x)| x.id() == "acl-user-0001")
        .collect();
    assert!(
        kept.iter()
            .all(|(k, _)| k.adam_id.as_str().starts_with("13")),
        "only books stay: {kept:?}"
    );
    // Books of retired users are hidden with excludeInactiveUsers.
    let all = h
        .get(UID, "/assignments?clientUserId=acl-user-0001")
        .await
        .ok();
    let active = h
        .get(
            UID,
            "/assignments?clientUserId=acl-user-0001&excludeInactiveUsers=true",
        )
        .await
        .ok();
    assert_eq!(all["assignments"].as_array().unwrap().len(), kept.len());
    assert!(active["assignments"].as_array().unwrap().is_empty());
    // Re-create: the retired record stays beside the new one.
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "acl-user-0001", "email": "back@example.org"}]}),
        )
        .await;
    assert_eq!(h.finish(UID, &id).await["eventStatus"], "COMPLETE");
    let records = user(&h, "acl-user-0001").await;
    let statuses: Vec<&str> = records
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Retired", "Registered"]);
    let active = h
        .get(UID, "/users?clientUserId=acl-user-0001&activeOnly=true")
        .await
        .ok();
    assert_eq!(active["users"].as_array().unwrap().len(), 1);
    let retired = h.get(UID, "/users?retiredOnly=true").await.ok();
    assert!(retired["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["status"] == "Retired"));
    // Retiring or updating an unknown user: 9609.
    let id = h
        .submit(
            UID,
            "/users/retire",
            json!({"users": [{"clientUserId": "ghost"}]}),
        )
        .await;
    assert_eq!(h.finish(UID, &id).await["failures"][0]["errorNumber"], 9609);
    let id = h
        .submit(
            UID,
            "/users/update",
            json!({"users": [{"clientUserId": "ghost", "email": "g@example.org"}]}),
        )
        .await;
    assert_eq!(h.finish(UID, &id).await["failures"][0]["errorNumber"], 9609);
}

#[tokio::test]
async fn update_changes_email_and_links_a_managed_apple_id() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "up-1", "email": "old@example.org"}]}),
        )
        .await;
    h.finish(UID, &id).await;
    let id = h
        .submit(UID, "/users/update", json!({"users": [{"clientUserId": "up-1", "email": "new@example.org", "managedAppleId": "up@appleid.example.org"}]}))
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(
        (s["eventType"].as_str(), s["eventStatus"].as_str()),
        (Some("UPDATE"), Some("COMPLETE"))
    );
    let u = &user(&h, "up-1").await[0];
    assert_eq!(u["email"], "new@example.org");
    assert_eq!(u["status"], "Associated");
}

#[tokio::test]
async fn assigning_to_a_user_with_state() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(UID, "/assets/associate", json!({"assets": [{"adamId": "1200000014", "pricingParam": "STDQ"}], "clientUserIds": ["acl-user-0450"]}))
        .await;
    assert_eq!(h.finish(UID, &id).await["eventStatus"], "COMPLETE");
    let r = h
        .get(
            UID,
            "/assignments?clientUserId=acl-user-0450&includeUserState=true&adamId=1200000014",
        )
        .await
        .ok();
    let a = &r["assignments"][0];
    assert_eq!(a["clientUserId"], "acl-user-0450");
    assert!(a["userStatus"].is_string());
    assert!(a.get("serialNumber").is_none());
}
