//! Checklist 4: validation of manage requests, in a fixed order, HTTP 400, no event.

use serde_json::{json, Value};
use vppkit_sim::{demo, Preset};

use crate::support::{start, Harness};

const UID: &str = demo::SPRINGFIELD_HIGH;

fn asset(adam: &str) -> Value {
    json!({"adamId": adam, "pricingParam": "STDQ"})
}

fn serials(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("SPH{i:09}")).collect()
}

async fn expect(h: &Harness, path: &str, body: Value, number: u64) {
    let before = h.sim.control().events(UID).unwrap().len();
    let r = h.post(UID, path, body.clone()).await;
    assert_eq!(
        r.error_number(),
        Some(number),
        "{path} {body} -> {}",
        r.body
    );
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert_eq!(
        h.sim.control().events(UID).unwrap().len(),
        before,
        "no event"
    );
}

#[tokio::test]
async fn each_manage_error() {
    let h = start(Preset::Demo).await;
    let a = "/assets/associate";
    expect(&h, a, json!({"serialNumbers": ["SPH000000001"]}), 9718).await;
    expect(
        &h,
        a,
        json!({"assets": [], "serialNumbers": ["SPH000000001"]}),
        9718,
    )
    .await;
    expect(&h, a, json!({"assets": [asset("1200000001")]}), 9719).await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "serialNumbers": [], "clientUserIds": []}),
        9719,
    )
    .await;
    let many: Vec<Value> = (0..26).map(|i| asset(&format!("12000001{i:02}"))).collect();
    expect(
        &h,
        a,
        json!({"assets": many, "serialNumbers": ["SPH000000001"]}),
        9700,
    )
    .await;
    let users: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "clientUserIds": users}),
        9701,
    )
    .await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "serialNumbers": serials(1001)}),
        9702,
    )
    .await;
    expect(&h, a, json!({"assets": [asset("1200000001"), asset("1200000001")], "serialNumbers": ["SPH000000001"]}), 9703).await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "clientUserIds": ["u1", "u1"]}),
        9704,
    )
    .await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "serialNumbers": ["SPH000000001", "SPH000000001"]}),
        9705,
    )
    .await;
    // Serial numbers with a user-only app.
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000021")], "serialNumbers": ["SPH000000001"]}),
        9707,
    )
    .await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1300000001")], "serialNumbers": ["SPH000000001"]}),
        9707,
    )
    .await;
    // Disassociating a book (not revocable) from a user.
    expect(
        &h,
        "/assets/disassociate",
        json!({"assets": [asset("1300000001")], "clientUserIds": ["sph-user-0001"]}),
        9706,
    )
    .await;
    // An asset the location does not own, or a malformed one.
    expect(
        &h,
        a,
        json!({"assets": [asset("1999999999")], "serialNumbers": ["SPH000000001"]}),
        9602,
    )
    .await;
    expect(
        &h,
        a,
        json!({"assets": [{"adamId": "12ab"}], "serialNumbers": ["SPH000000001"]}),
        9602,
    )
    .await;
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000001")], "serialNumbers": [""]}),
        9602,
    )
    .await;
}

/// Apple accepts made-up serial numbers (Fleet issue #20449): any non-empty text is
/// associated, and shows in the ground truth.
#[tokio::test]
async fn made_up_serial_numbers_are_accepted() {
    let h = start(Preset::Demo).await;
    let odd = ["sn.1", "F9FZ/ABC", "serial with space", &"S".repeat(80)];
    let r = h
        .post(
            UID,
            "/assets/associate",
            json!({"assets": [asset("1200000006")], "serialNumbers": odd}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    h.sim
        .control()
        .advance(std::time::Duration::from_secs(5))
        .unwrap();
    let truth = h.sim.control().assignments(UID).unwrap();
    for serial in odd {
        assert!(
            truth
                .iter()
                .any(|(k, holder)| k.adam_id.as_str() == "1200000006" && holder.id() == serial),
            "{serial} associated"
        );
    }
}

#[tokio::test]
async fn the_order_is_fixed() {
    let h = start(Preset::Demo).await;
    let a = "/assets/associate";
    // Empty assets beats missing targets.
    expect(&h, a, json!({"assets": []}), 9718).await;
    // Missing targets beats too many assets.
    let many: Vec<Value> = (0..30).map(|i| asset(&format!("12000001{i:02}"))).collect();
    expect(&h, a, json!({"assets": many}), 9719).await;
    // Too many assets beats duplicates.
    let mut dup_many = many.clone();
    dup_many.push(asset("1200000100"));
    expect(
        &h,
        a,
        json!({"assets": dup_many, "serialNumbers": ["A1", "A1"]}),
        9700,
    )
    .await;
    // Duplicate assets before duplicate users before duplicate serials.
    expect(&h, a, json!({"assets": [asset("1200000001"), asset("1200000001")], "clientUserIds": ["u", "u"], "serialNumbers": ["S", "S"]}), 9703).await;
    expect(&h, a, json!({"assets": [asset("1200000001")], "clientUserIds": ["u", "u"], "serialNumbers": ["S", "S"]}), 9704).await;
    // Duplicates before 9707.
    expect(
        &h,
        a,
        json!({"assets": [asset("1200000021")], "serialNumbers": ["S", "S"]}),
        9705,
    )
    .await;
    // 9707 before 9706 on disassociate of a book with serials.
    expect(
        &h,
        "/assets/disassociate",
        json!({"assets": [asset("1300000001")], "serialNumbers": ["S"]}),
        9707,
    )
    .await;
}

#[tokio::test]
async fn error_info_names_the_culprits() {
    let h = start(Preset::Demo).await;
    let r = h
        .post(
            UID,
            "/assets/associate",
            json!({"assets": [asset("1200000001")], "serialNumbers": ["X1", "X2", "X1"]}),
        )
        .await;
    assert_eq!(r.body["errorInfo"]["serialNumbers"], json!(["X1"]));
    let r = h
        .post(
            UID,
            "/assets/associate",
            json!({"assets": [asset("1200000021")], "serialNumbers": ["X1"]}),
        )
        .await;
    assert_eq!(
        r.body["errorInfo"]["assets"],
        json!([{"adamId": "1200000021", "pricingParam": "STDQ"}])
    );
}

#[tokio::test]
async fn revoke_and_users_validation() {
    let h = start(Preset::Demo).await;
    let r = "/assets/revoke";
    expect(&h, r, json!({}), 9719).await;
    let users: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    expect(&h, r, json!({"clientUserIds": users}), 9701).await;
    expect(&h, r, json!({"serialNumbers": serials(101)}), 9702).await;
    expect(&h, r, json!({"clientUserIds": ["a", "a"]}), 9704).await;
    expect(&h, r, json!({"serialNumbers": ["S1", "S1"]}), 9705).await;

    let c = "/users/create";
    expect(&h, c, json!({}), 9720).await;
    expect(&h, c, json!({"users": []}), 9720).await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"clientUserId": format!("n{i}")}))
        .collect();
    expect(&h, c, json!({"users": many}), 9714).await;
    expect(&h, c, json!({"users": [{"email": "a@b.org"}]}), 9602).await;
    expect(
        &h,
        c,
        json!({"users": [{"clientUserId": "d"}, {"clientUserId": "d"}]}),
        9715,
    )
    .await;
    expect(
        &h,
        c,
        json!({"users": [{"clientUserId": "e", "email": "not-an-email"}]}),
        9717,
    )
    .await;
    expect(
        &h,
        "/users/update",
        json!({"users": [{"clientUserId": "e", "email": "x@"}]}),
        9717,
    )
    .await;
    expect(&h, "/users/retire", json!({"users": []}), 9720).await;
}
