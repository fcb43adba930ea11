//! Ledger micro-benchmarks at the scale of docs/architecture.md: one million reserve+confirm
//! pairs in memory, and a one-million-holding full snapshot reconciled page by page (pages of
//! 1,000, generated on the fly: the snapshot is never buffered), both when nothing changed and on
//! a first sync that adopts every holding. Baselines measured in the same run: the same pairs put
//! into a plain `HashMap`, and the same page-by-page lookups in it.
//!
//! Run: `cargo bench -p vppkit-ledger --bench ledger`. Memory figures (RSS from
//! /proc/self/status) are printed before the timings.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::collections::HashMap;
use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, Holder, HoldingStatus, LocationId, Platform,
    PricingParam, ProductType, SerialNumber,
};
use vppkit_ledger::{AppleHolding, Cause, Ledger};

const ASSETS: u32 = 1_000;
const HOLDERS_PER_ASSET: u32 = 1_000; // 1,000,000 holdings
const PAGE: u32 = 1_000;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn key(a: u32) -> AssetKey {
    AssetKey::new(AdamId::from(1_000_000 + u64::from(a)), PricingParam::Stdq)
}

fn device(d: u32) -> Holder {
    Holder::Device(SerialNumber::new(format!("C02{d:09}")).unwrap())
}

fn keys() -> Vec<AssetKey> {
    (0..ASSETS).map(key).collect()
}

fn devices() -> Vec<Holder> {
    (0..HOLDERS_PER_ASSET).map(device).collect()
}

fn empty_ledger() -> Ledger {
    let mut l = Ledger::new(LocationId::new("bench").unwrap());
    let assets: Vec<Asset> = (0..ASSETS)
        .map(|a| {
            Asset::new(
                key(a),
                ProductType::App,
                true,
                true,
                vec![Platform::Ios],
                AssetCounts::new(HOLDERS_PER_ASSET, 0, HOLDERS_PER_ASSET, 0),
            )
        })
        .collect();
    l.reconcile_assets(&assets, Cause::sync(None), now());
    l
}

/// 1,000,000 reserve + confirm pairs; the journal entries are dropped as the store would take
/// them.
fn reserve_confirm_all(l: &mut Ledger, keys: &[AssetKey], devices: &[Holder]) {
    let cause = Cause::policy("bench");
    for k in keys {
        for h in devices {
            black_box(l.reserve(k, h, cause.clone(), now()).unwrap());
            black_box(l.confirm(k, h, cause.clone(), now()).unwrap());
        }
    }
}

fn baseline_map(
    keys: &[AssetKey],
    devices: &[Holder],
) -> HashMap<(AssetKey, Holder), HoldingStatus> {
    let mut map = HashMap::new();
    for k in keys {
        for h in devices {
            map.insert((k.clone(), h.clone()), HoldingStatus::Reserved);
            *map.get_mut(&(k.clone(), h.clone())).unwrap() = HoldingStatus::Active;
        }
    }
    map
}

/// Walks a full snapshot of every holding, one page of 1,000 at a time.
fn walk(l: &mut Ledger, keys: &[AssetKey], devices: &[Holder]) -> usize {
    let token = l.begin_snapshot();
    let mut changes = 0;
    let mut page = Vec::with_capacity(PAGE as usize);
    for k in keys {
        for h in devices {
            page.push(AppleHolding::new(k.clone(), h.clone()));
            if page.len() == PAGE as usize {
                changes += l
                    .apply_snapshot_page(&token, &page, Cause::sync(None), now())
                    .unwrap()
                    .len();
                page.clear();
            }
        }
    }
    changes += l
        .apply_snapshot_page(&token, &page, Cause::sync(None), now())
        .unwrap()
        .len();
    changes
        + l.finish_snapshot(token, Cause::sync(None), now())
            .unwrap()
            .len()
}

fn baseline_walk(
    map: &HashMap<(AssetKey, Holder), HoldingStatus>,
    keys: &[AssetKey],
    devices: &[Holder],
) -> usize {
    let mut page = Vec::with_capacity(PAGE as usize);
    let mut seen = 0;
    for k in keys {
        for h in devices {
            page.push((k.clone(), h.clone()));
            if page.len() == PAGE as usize {
                seen += page.iter().filter(|p| map.contains_key(*p)).count();
                page.clear();
            }
        }
    }
    seen
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS (VmHWM) so the next reading is the peak of what follows.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn memory_report() {
    let keys = keys();
    let devices = devices();
    let start = status_kib("VmRSS:");
    let mut l = empty_ledger();
    reserve_confirm_all(&mut l, &keys, &devices);
    let ledger_rss = status_kib("VmRSS:");
    let peak_ok = reset_peak();
    let before_walk = status_kib("VmRSS:");
    let changes = walk(&mut l, &keys, &devices);
    let walk_peak = status_kib("VmHWM:");
    let map = baseline_map(&keys, &devices);
    let map_rss = status_kib("VmRSS:");
    eprintln!(
        "memory: ledger with {} holdings: {} MiB ({:.0} bytes/holding); \
         plain HashMap<(AssetKey, Holder), status> of the same pairs: {} MiB ({:.0} bytes/pair)",
        l.holding_count(),
        (ledger_rss - start) / 1024,
        (ledger_rss - start) as f64 * 1024.0 / f64::from(ASSETS * HOLDERS_PER_ASSET),
        (map_rss - ledger_rss) / 1024,
        (map_rss - ledger_rss) as f64 * 1024.0 / f64::from(ASSETS * HOLDERS_PER_ASSET),
    );
    if peak_ok {
        eprintln!(
            "memory: full snapshot walk ({changes} changes): peak RSS {} KiB above the ledger",
            walk_peak.saturating_sub(before_walk)
        );
    }
    drop(map);
}

fn benches(c: &mut Criterion) {
    memory_report();
    let keys = keys();
    let devices = devices();
    let mut g = c.benchmark_group("ledger_1m");
    g.sample_size(10);
    g.bench_function("reserve_confirm_1m", |b| {
        b.iter_batched(
            empty_ledger,
            |mut l| {
                reserve_confirm_all(&mut l, &keys, &devices);
                l
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("baseline_hashmap_insert_1m", |b| {
        b.iter_batched(
            || (),
            |()| baseline_map(&keys, &devices),
            BatchSize::PerIteration,
        )
    });
    let mut full = empty_ledger();
    reserve_confirm_all(&mut full, &keys, &devices);
    g.bench_function("snapshot_walk_1m_pages_of_1000", |b| {
        b.iter(|| assert_eq!(walk(&mut full, &keys, &devices), 0))
    });
    g.bench_function("first_sync_walk_1m_adopted_pages_of_1000", |b| {
        b.iter_batched(
            empty_ledger,
            |mut l| {
                assert_eq!(walk(&mut l, &keys, &devices), 1_000_000);
                l
            },
            BatchSize::PerIteration,
        )
    });
    let map = baseline_map(&keys, &devices);
    g.bench_function("baseline_hashmap_lookup_1m_pages_of_1000", |b| {
        b.iter(|| baseline_walk(&map, &keys, &devices))
    });
    g.finish();
}

criterion_group!(ledger, benches);
criterion_main!(ledger);
