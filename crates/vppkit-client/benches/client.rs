//! Micro-benchmarks of vppkit-client.
//!
//! - `parse_assignments_page`: one 1,000-item `GET assignments` page into typed,
//!   validated values; baseline: the same bytes into an untyped `serde_json::Value`.
//! - `stream_pages`: a 1,000-page walk (100 assignments a page) from a local axum
//!   server through `Client::assignments` (5 pages in flight, no pacing); baseline:
//!   plain reqwest fetching the same 1,000 pages, 5 at a time, bodies unparsed.
//!
//! Run: `cargo bench -p vppkit-client --bench client`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use vppkit_client::{parse_assignments_page, AssignmentFilter, ClientBuilder, Pacing};
use vppkit_core::Secret;

fn page_json(index: u32, total: u32, items: usize) -> Vec<u8> {
    let assignments: Vec<Value> = (0..items)
        .map(|i| {
            if i % 4 == 3 {
                json!({"adamId": format!("{}", 1_200_000_000 + (i % 50)), "pricingParam": "STDQ",
                       "clientUserId": format!("2b0e5c1a-7d7e-4f0a-9c1e-{:012}", i)})
            } else {
                json!({"adamId": format!("{}", 1_200_000_000 + (i % 50)), "pricingParam": "STDQ",
                       "serialNumber": format!("C02{:09}", u64::from(index) * 10_000 + i as u64)})
            }
        })
        .collect();
    let mut body = json!({
        "assignments": assignments, "currentPageIndex": index, "size": items,
        "totalPages": total, "versionId": "9a44c2d0-0f3d-11f0-8b9e-0242ac120002",
        "tokenExpirationDate": "2031-03-01T18:00:00+0000", "uId": "7300112233445566"
    });
    if index + 1 < total {
        body["nextPageIndex"] = json!(index + 1);
    }
    serde_json::to_vec(&body).expect("serialises")
}

fn parse(c: &mut Criterion) {
    let bytes = page_json(0, 1, 1000);
    let mut g = c.benchmark_group("parse_assignments_page");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(std::hint::black_box(&bytes)).expect("json");
            v
        })
    });
    g.bench_function("vppkit_typed_page", |b| {
        b.iter(|| parse_assignments_page(std::hint::black_box(&bytes)).expect("page"))
    });
    g.finish();
}

const PAGES: u32 = 1000;
const PER_PAGE: usize = 100;

fn stream(c: &mut Criterion) {
    use axum::extract::{Query, State};
    use axum::routing::get;
    use std::collections::HashMap;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pages: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..PAGES)
            .map(|i| bytes::Bytes::from(page_json(i, PAGES, PER_PAGE)))
            .collect(),
    );
    async fn handler(
        State(pages): State<Arc<Vec<bytes::Bytes>>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> ([(&'static str, &'static str); 1], bytes::Bytes) {
        let i: usize = q.get("pageIndex").and_then(|s| s.parse().ok()).unwrap_or(0);
        (
            [("content-type", "application/json")],
            pages[i.min(pages.len() - 1)].clone(),
        )
    }
    let addr = rt.block_on(async {
        let app = axum::Router::new()
            .route("/mdm/v2/assignments", get(handler))
            .with_state(pages);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let base = format!("http://{addr}/mdm/v2");
    let client = ClientBuilder::new(Secret::new("bench-token"))
        .base_url(&base)
        .pacing(Pacing::Off)
        .build()
        .expect("client");
    let http = reqwest::Client::new();

    let mut g = c.benchmark_group("stream_1000_pages");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(u64::from(PAGES)));
    g.bench_function("baseline_reqwest_bytes_5_in_flight", |b| {
        b.to_async(&rt).iter_batched(
            || (),
            |()| {
                let http = http.clone();
                let base = base.clone();
                async move {
                    let total: usize = futures::stream::iter(0..PAGES)
                        .map(|i| {
                            let http = http.clone();
                            let url = format!("{base}/assignments?pageIndex={i}");
                            async move {
                                http.get(url)
                                    .header("authorization", "Bearer bench-token")
                                    .send()
                                    .await
                                    .expect("send")
                                    .bytes()
                                    .await
                                    .expect("body")
                                    .len()
                            }
                        })
                        .buffered(5)
                        .fold(0, |a, n| async move { a + n })
                        .await;
                    assert!(total > 0);
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("vppkit_client_assignments_stream", |b| {
        b.to_async(&rt).iter(|| {
            let client = client.clone();
            async move {
                let items = client
                    .assignments(AssignmentFilter::new())
                    .try_fold(0usize, |n, page| async move { Ok(n + page.items.len()) })
                    .await
                    .expect("walk");
                assert_eq!(items, PAGES as usize * PER_PAGE);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, parse, stream);
criterion_main!(benches);
