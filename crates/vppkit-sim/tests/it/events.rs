//! Checklist 5 and 9: asynchronous events and `status`.

use std::time::Duration;

use serde_json::json;
use vppkit_sim::{demo, EventStatusKind, EventType, Preset, SimClock, Simulator};

use crate::support::{start, start_with};

const UID: &str = demo::SPRINGFIELD_HIGH;

#[tokio::test]
async fn accepted_write_returns_event_then_pending_then_complete() {
    let h = start(Preset::Demo).await;
    let r = h
        .post(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": "1200000006", "pricingParam": "STDQ"}, {"adamId": "1200000003"}],
                   "serialNumbers": ["SPH000000001", "SPH000000002"]}),
        )
        .await
        .ok();
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["eventId", "tokenExpirationDate", "uId"]);
    let id = r["eventId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let s = h.status(UID, id).await;
    assert_eq!(s["eventStatus"], "PENDING");
    assert_eq!(s["eventType"], "ASSOCIATE");
    assert_eq!(s["numRequested"], 4, "tasks = assets x targets");
    assert_eq!(s["numCompleted"], 0);
    // Nothing happens before the clock moves.
    let c = h.sim.control();
    c.advance(Duration::from_millis(500)).unwrap();
    assert_eq!(h.status(UID, id).await["eventStatus"], "PENDING");
    c.advance(Duration::from_millis(600)).unwrap();
    let s = h.status(UID, id).await;
    assert_eq!(s["eventStatus"], "COMPLETE");
    assert_eq!(s["numCompleted"], 4);
    assert!(s.get("failures").is_none());
}

#[tokio::test]
async fn shortage_is_async_9709_with_partial_success() {
    let h = start(Preset::Demo).await;
    // Chem Lab 3D: 50 licences, 45 used. Ask for 8 new devices.
    let serials: Vec<String> = (701..=708).map(|n| demo::device_serial("SPH", n)).collect();
    let free_before: Vec<String> = serials.clone();
    let id = h
        .submit(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": demo::SHORTAGE_APP.to_string(), "pricingParam": "STDQ"}], "serialNumbers": free_before}),
        )
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(s["eventStatus"], "FAILED");
    assert_eq!(s["numRequested"], 8);
    let held: usize = h
        .sim
        .control()
        .assignments(UID)
        .unwrap()
        .iter()
        .filter(|(k, holder)| {
            k.adam_id.as_u64() == demo::SHORTAGE_APP && serials.iter().any(|s| s == holder.id())
        })
        .count();
    // Some of the 8 serials may already hold it; the rest compete for 5 free.
    let completed = s["numCompleted"].as_u64().unwrap() as usize;
    assert_eq!(held, completed);
    let f = &s["failures"][0];
    assert_eq!(f["errorNumber"], 9709);
    assert_eq!(
        f["errorInfo"]["assets"][0]["adamId"],
        demo::SHORTAGE_APP.to_string()
    );
    let failed = f["errorInfo"]["serialNumbers"].as_array().unwrap().len();
    assert_eq!(failed + completed, 8);
    let asset = h
        .get(UID, &format!("/assets?adamId={}", demo::SHORTAGE_APP))
        .await
        .ok();
    assert_eq!(asset["assets"][0]["availableCount"], 0);
}

#[tokio::test]
async fn unknown_user_is_9609_in_failures() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": "1200000007", "pricingParam": "STDQ"}], "clientUserIds": ["sph-user-0001", "nobody"]}),
        )
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(s["eventStatus"], "FAILED");
    assert_eq!(s["numRequested"], 2);
    assert_eq!(s["numCompleted"], 1);
    assert_eq!(s["failures"][0]["errorNumber"], 9609);
    assert_eq!(
        s["failures"][0]["errorInfo"]["clientUserIds"],
        json!(["nobody"])
    );
    let events = h.sim.control().events(UID).unwrap();
    let e = events.last().unwrap();
    assert_eq!(
        (e.kind, e.status),
        (EventType::Associate, EventStatusKind::Failed)
    );
    assert_eq!(e.failures[0].error_number, 9609);
}

#[tokio::test]
async fn unknown_event_is_9708() {
    let h = start(Preset::Demo).await;
    h.get(UID, "/status?eventId=3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10")
        .await
        .assert_error(9708, 400);
    h.get(UID, "/status?eventId=garbage")
        .await
        .assert_error(9708, 400);
    h.get(UID, "/status").await.assert_error(9708, 400);
    // Another location's event is unknown here.
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "x1"}]}),
        )
        .await;
    h.get(demo::ACME_LONDON, &format!("/status?eventId={id}"))
        .await
        .assert_error(9708, 400);
}

#[tokio::test]
async fn real_time_clock_completes_on_its_own() {
    let h = start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::real_time(Duration::from_millis(50))),
    )
    .await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "rt-1", "email": "rt@example.org"}]}),
        )
        .await;
    assert_eq!(h.status(UID, &id).await["eventStatus"], "PENDING");
    let mut status = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = h.status(UID, &id).await["eventStatus"]
            .as_str()
            .unwrap()
            .to_owned();
        if status != "PENDING" {
            break;
        }
    }
    assert_eq!(status, "COMPLETE");
    assert!(h.sim.control().advance(Duration::from_secs(1)).is_err());
}
