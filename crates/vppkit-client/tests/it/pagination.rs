//! Pagination: empty, one page, many pages, version changes, 9650, shrinking
//! walks, out-of-order pages, and the in-flight bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use vppkit_client::{AssignmentFilter, Error, ErrorNumber, VersionChangePolicy};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{apple_error, builder, client, server, with_envelope};

fn page(index: u32, total: u32, version: &str, items: usize) -> Value {
    let assignments: Vec<Value> = (0..items)
        .map(|i| json!({"adamId": "1200000001", "pricingParam": "STDQ", "serialNumber": format!("S{index}X{i}")}))
        .collect();
    let mut body = json!({
        "assignments": assignments, "currentPageIndex": index, "size": items,
        "totalPages": total, "versionId": version
    });
    if index + 1 < total {
        body["nextPageIndex"] = json!(index + 1);
    }
    with_envelope(body)
}

async fn mount_page(server: &MockServer, index: u32, body: Value, times: Option<u64>) {
    let mut m = Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .and(query_param("pageIndex", index.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body));
    if let Some(n) = times {
        m = m.up_to_n_times(n);
    }
    m.mount(server).await;
}

#[tokio::test]
async fn empty_location() {
    let server = server().await;
    mount_page(
        &server,
        0,
        with_envelope(json!({"assignments": [], "currentPageIndex": 0, "size": 0, "totalPages": 0, "versionId": "v0"})),
        None,
    )
    .await;
    let mut s = client(&server).assignments(AssignmentFilter::new());
    let p = s.next().await.unwrap().unwrap();
    assert!(p.items.is_empty() && p.is_last());
    assert!(s.next().await.is_none());
    assert_eq!(s.first_version_id().as_deref(), Some("v0"));
}

#[tokio::test]
async fn one_page() {
    let server = server().await;
    mount_page(&server, 0, page(0, 1, "v1", 3), None).await;
    let (items, v) = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(v.as_deref(), Some("v1"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_pages_in_order() {
    let server = server().await;
    for i in 0..12 {
        mount_page(&server, i, page(i, 12, "v1", 10), Some(1)).await;
    }
    let pages: Vec<_> = client(&server)
        .assignments(AssignmentFilter::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 12);
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p.index as usize, i);
        assert_eq!(p.walk, 0);
        assert_eq!(
            p.items[0].serial_number.as_ref().unwrap().as_str(),
            format!("S{i}X0")
        );
        assert_eq!(p.version_id.as_deref(), Some("v1"));
        assert!(p.envelope.uid.is_some());
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 12);
}

#[tokio::test]
async fn version_change_is_an_error_when_asked() {
    let server = server().await;
    mount_page(&server, 0, page(0, 3, "v1", 2), None).await;
    mount_page(&server, 1, page(1, 3, "v2", 2), None).await;
    mount_page(&server, 2, page(2, 3, "v2", 2), None).await;
    let c = client(&server).with_version_change_policy(VersionChangePolicy::Error);
    let mut s = c.assignments(AssignmentFilter::new());
    assert_eq!(s.next().await.unwrap().unwrap().index, 0);
    match s.next().await.unwrap() {
        Err(Error::VersionChanged {
            page,
            expected,
            found,
            ..
        }) => {
            assert_eq!(page, 1);
            assert_eq!(expected.as_deref(), Some("v1"));
            assert_eq!(found.as_deref(), Some("v2"));
        }
        other => panic!("expected VersionChanged, got {other:?}"),
    }
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn version_change_restarts_the_walk() {
    let server = server().await;
    // First walk: page 0 at v1, page 1 already at v2. Second walk: v2 throughout.
    mount_page(&server, 0, page(0, 2, "v1", 2), Some(1)).await;
    mount_page(&server, 0, page(0, 2, "v2", 3), None).await;
    mount_page(&server, 1, page(1, 2, "v2", 3), None).await;
    let c = builder(&server)
        .version_change_policy(VersionChangePolicy::Restart)
        .build()
        .unwrap();
    let mut s = c.assignments(AssignmentFilter::new());
    let mut seen = Vec::new();
    while let Some(p) = s.next().await {
        let p = p.unwrap();
        seen.push((p.walk, p.index, p.starts_restart()));
    }
    assert_eq!(seen, vec![(0, 0, false), (1, 0, true), (1, 1, false)]);
    assert_eq!(s.first_version_id().as_deref(), Some("v2"));
    // collect_all drops the first walk's records.
    let (items, v) = c
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(v.as_deref(), Some("v2"));
}

#[tokio::test]
async fn restarts_are_bounded() {
    let server = server().await;
    mount_page(&server, 0, page(0, 2, "v1", 1), None).await;
    mount_page(&server, 1, page(1, 2, "v-other", 1), None).await;
    let c = builder(&server).max_walk_restarts(2).build().unwrap();
    let e = c
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::VersionChanged { .. }), "{e:?}");
}

#[tokio::test]
async fn page_index_out_of_range() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(apple_error(9650, "page index out of range")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(e.error_number(), Some(ErrorNumber::PageIndexOutOfRange));
}

#[tokio::test]
async fn a_walk_that_shrinks_stops_at_the_page_without_next() {
    let server = server().await;
    // Page 0 promises 3 pages; page 1 turns out to be the last; page 2 (prefetched) is gone.
    mount_page(&server, 0, page(0, 3, "v1", 2), None).await;
    let mut last = page(1, 2, "v1", 2);
    last.as_object_mut().unwrap().remove("nextPageIndex");
    mount_page(&server, 1, last, None).await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .and(query_param("pageIndex", "2"))
        .respond_with(ResponseTemplate::new(400).set_body_json(apple_error(9650, "out of range")))
        .mount(&server)
        .await;
    let (items, _) = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(items.len(), 4);
}

#[tokio::test]
async fn a_walk_that_grows_follows_next_page_index() {
    let server = server().await;
    // Page 0 says 1 page in total yet names a next page: follow nextPageIndex.
    let mut p0 = page(0, 1, "v1", 1);
    p0["nextPageIndex"] = json!(1);
    mount_page(&server, 0, p0, None).await;
    mount_page(&server, 1, page(1, 2, "v1", 1), None).await;
    let (items, _) = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
}

#[tokio::test]
async fn next_page_index_must_follow() {
    let server = server().await;
    let mut p0 = page(0, 3, "v1", 1);
    p0["nextPageIndex"] = json!(2);
    mount_page(&server, 0, p0, None).await;
    let e = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Pagination { .. }), "{e:?}");
}

#[tokio::test]
async fn since_version_id_on_users_and_empty_incremental_page() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/users"))
        .and(query_param("sinceVersionId", "v7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(
            json!({"users": [], "currentPageIndex": 0, "size": 0, "totalPages": 1, "versionId": "v8"}),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let (users, v) = client(&server)
        .users(vppkit_client::UserFilter::new().since_version_id("v7"))
        .collect_all()
        .await
        .unwrap();
    assert!(users.is_empty());
    assert_eq!(v.as_deref(), Some("v8"));
}

/// A local axum server that counts requests in flight.
#[tokio::test]
async fn at_most_pages_in_flight() {
    use axum::extract::{Query, State};
    use axum::routing::get;
    use std::collections::HashMap;

    #[derive(Clone, Default)]
    struct Counters {
        now: Arc<AtomicUsize>,
        max: Arc<AtomicUsize>,
    }
    async fn handler(
        State(c): State<Counters>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<Value> {
        let n = c.now.fetch_add(1, Ordering::SeqCst) + 1;
        c.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.now.fetch_sub(1, Ordering::SeqCst);
        let i: u32 = q["pageIndex"].parse().unwrap();
        axum::Json(page(i, 20, "v", 1))
    }
    for limit in [1usize, 3, 5] {
        let counters = Counters::default();
        let app = axum::Router::new()
            .route("/mdm/v2/assignments", get(handler))
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = tokio::spawn(async move { axum::serve(listener, app).await });
        let c = vppkit_client::ClientBuilder::new(crate::support::token())
            .base_url(format!("http://{addr}/mdm/v2"))
            .pacing(vppkit_client::Pacing::Off)
            .pages_in_flight(limit)
            .build()
            .unwrap();
        let (items, _) = c
            .assignments(AssignmentFilter::new())
            .collect_all()
            .await
            .unwrap();
        assert_eq!(items.len(), 20);
        let max = counters.max.load(Ordering::SeqCst);
        assert!(max <= limit, "limit {limit}, saw {max}");
        if limit > 1 {
            assert!(
                max > 1,
                "limit {limit}: pages were not fetched concurrently"
            );
        }
        serve.abort();
    }
}
