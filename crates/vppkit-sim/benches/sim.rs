//! Micro-benchmarks of the simulator's own work.
//!
//! - `page/assignments_1000`: one `GET assignments` page of 1,000 items from
//!   the scale preset (1,000,000 assignments), answered in process through
//!   `Simulator::handle` (routing, auth, paging, JSON), no socket. Baseline:
//!   `serde_json` encoding 1,000 ready-made assignment objects, the floor of
//!   any answer of that size.
//! - `build/scale_preset`: building and seeding the scale preset. Baseline:
//!   inserting 1,000,000 `u64` pairs into a `std::collections::HashSet`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::collections::HashSet;
use std::time::Duration;

use axum::http::{Method, Request};
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use vppkit_sim::{scale, Preset, SimClock, Simulator};

fn page(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = Simulator::builder()
        .preset(Preset::Scale)
        .clock(SimClock::manual())
        .build()
        .expect("scale preset");
    let token = sim.token_files()[0].content.expose().to_owned();
    let request = |index: usize| {
        Request::builder()
            .method(Method::GET)
            .uri(format!("/mdm/v2/assignments?pageIndex={index}"))
            .header("Authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .expect("request")
    };
    let first = rt.block_on(sim.handle(request(0)));
    assert!(first.status().is_success());
    let items: Vec<serde_json::Value> = (0..1000)
        .map(|i| json!({"adamId": format!("{}", scale::FIRST_ADAM_ID + i), "pricingParam": "STDQ", "serialNumber": scale::device_serial(i as u32 + 1)}))
        .collect();

    let mut group = c.benchmark_group("page");
    group.bench_function("baseline_serde_json_1000_items", |b| {
        b.iter(|| serde_json::to_vec(black_box(&items)).expect("json"))
    });
    let mut index = 0;
    group.bench_function("assignments_1000", |b| {
        b.to_async(&rt).iter(|| {
            index = (index + 337) % 1000;
            let req = request(index);
            let sim = &sim;
            async move { black_box(sim.handle(req).await) }
        })
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("baseline_hashset_1m_pairs", |b| {
        b.iter(|| {
            let mut set = HashSet::with_capacity(scale::ASSIGNMENTS);
            for d in 0..u64::from(scale::DEVICES) {
                for k in 0..7 {
                    set.insert(((d * 7 + k) % 4000) << 32 | d);
                }
            }
            for u in 0..u64::from(scale::USERS) {
                for k in 0..6 {
                    set.insert((4000 + (u * 6 + k) % 1000) << 32 | u | 1 << 31);
                }
            }
            black_box(set.len())
        })
    });
    group.bench_function("scale_preset", |b| {
        b.iter(|| {
            Simulator::builder()
                .preset(Preset::Scale)
                .clock(SimClock::manual())
                .build()
                .expect("scale preset")
        })
    });
    group.finish();
}

criterion_group!(benches, page, build);
criterion_main!(benches);
