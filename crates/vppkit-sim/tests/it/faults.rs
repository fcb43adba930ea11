//! Checklist 12: throttling, 5xx bursts with Retry-After, latency.

use std::time::{Duration, Instant};

use vppkit_sim::{demo, Preset, ServerErrorKind};

use crate::support::start;

const UID: &str = demo::SPRINGFIELD_HIGH;

#[tokio::test]
async fn throttling_at_max_request_per_second() {
    let h = start(Preset::Demo).await;
    h.sim.control().set_throttling(true);
    let mut statuses = Vec::new();
    let started = Instant::now();
    for _ in 0..40 {
        let r = h.get(UID, "/client/config").await;
        statuses.push((
            r.status.as_u16(),
            r.error_number(),
            r.headers.get("retry-after").is_some(),
        ));
    }
    // Whatever the machine's speed: 40 quick requests meet the limit, and
    // every throttled answer is 9646 without Retry-After (Apple documents the
    // header for 5xx answers only).
    let throttled: Vec<_> = statuses.iter().filter(|s| s.0 == 429).collect();
    assert!(!throttled.is_empty(), "{statuses:?}");
    assert!(
        throttled.iter().all(|s| **s == (429, Some(9646), false)),
        "{statuses:?}"
    );
    // Within one second (the budget's window), exactly the first 15 pass.
    if started.elapsed() < Duration::from_millis(900) {
        assert!(statuses[..15].iter().all(|s| s.0 == 200), "{statuses:?}");
        assert!(statuses[15..].iter().all(|s| s.0 == 429), "{statuses:?}");
    }
    // Other locations have their own budget.
    h.get(demo::ACME_LONDON, "/client/config").await.ok();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.get(UID, "/client/config").await.ok();
    h.sim.control().set_throttling(false);
    for _ in 0..30 {
        h.get(UID, "/client/config").await.ok();
    }
}

#[tokio::test]
async fn retry_after_on_429_only_when_asked() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    c.set_throttling(true);
    c.set_throttle_retry_after(Some(2));
    let mut seen = None;
    for _ in 0..40 {
        let r = h.get(UID, "/client/config").await;
        if r.status.as_u16() == 429 {
            seen = r
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            break;
        }
    }
    assert_eq!(
        seen.as_deref(),
        Some("2"),
        "a 429 within 40 quick requests carries the header"
    );
    c.set_throttling(false);
}

#[tokio::test]
async fn server_error_bursts_carry_retry_after() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    c.fail_next_requests(2, ServerErrorKind::InternalError, 120);
    for _ in 0..2 {
        let r = h.get(UID, "/assets").await;
        r.assert_error(9603, 500);
        assert_eq!(r.headers.get("retry-after").unwrap(), "120");
    }
    h.get(UID, "/assets").await.ok();
    c.fail_next_requests(1, ServerErrorKind::Unavailable, 5);
    let r = h.get(UID, "/assets").await;
    r.assert_error(9729, 503);
    assert_eq!(r.headers.get("retry-after").unwrap(), "5");
    h.get(UID, "/assets").await.ok();
}

#[tokio::test]
async fn added_latency() {
    let h = start(Preset::Demo).await;
    h.sim.control().set_latency(Duration::from_millis(150));
    let t = Instant::now();
    h.get(UID, "/client/config").await.ok();
    assert!(t.elapsed() >= Duration::from_millis(150));
    h.sim.control().set_latency(Duration::ZERO);
}
