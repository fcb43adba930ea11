//! End-to-end tests of the manager (`examples/manager`, package `vppkit-manager`):
//!
//! - the demo, run in-process (the manager's modules are compiled into this test), checked
//!   against the simulator's ground truth;
//! - the `manager` binary's `demo --json`, checked the same way, and its `report --json`
//!   on the database the demo left;
//! - the binary's subcommands (`token add`, `token list`, `sync`, `plan`, `apply`,
//!   `request-install`, `report`, errors) against a simulator this test runs.

#[allow(dead_code)]
#[path = "../src/manager/mod.rs"]
mod manager;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use vppkit::core::AssetCounts;
use vppkit::store::SecretCipher;
use vppkit_sim::{demo, Preset, Simulator};

/// Per location uId and asset `adamId/pricing`: Apple's counts.
type Truth = BTreeMap<(String, String), (u64, u64, u64, bool)>;

fn truth_from_json(simulator: &Value) -> Truth {
    let mut t = Truth::new();
    for l in simulator.as_array().expect("simulator section") {
        for a in l["assets"].as_array().expect("assets") {
            let key = format!(
                "{}/{}",
                a["asset"]["adamId"].as_str().unwrap(),
                a["asset"]["pricingParam"].as_str().unwrap()
            );
            let n = |f: &str| a[f].as_u64().unwrap();
            t.insert(
                (l["uid"].as_str().unwrap().to_owned(), key),
                (
                    n("total") - n("retired"),
                    n("assigned"),
                    n("available"),
                    a["unlimited"].as_bool().unwrap(),
                ),
            );
        }
    }
    t
}

/// Checks every app of every location of a JSON report against Apple's counts, and that
/// every asset Apple has is in the report. Returns the number of apps checked.
fn assert_report_matches(report: &Value, truth: &Truth) -> usize {
    let mut seen = 0;
    for l in report["locations"].as_array().expect("locations") {
        let uid = l["uid"].as_str().expect("uid").to_owned();
        assert_eq!(
            l["operationsInFlight"], 0,
            "{uid}: operations left in flight"
        );
        for a in l["apps"].as_array().expect("apps") {
            let key = format!(
                "{}/{}",
                a["asset"]["adamId"].as_str().unwrap(),
                a["asset"]["pricingParam"].as_str().unwrap()
            );
            let (owned, assigned, available, unlimited) = *truth
                .get(&(uid.clone(), key.clone()))
                .unwrap_or_else(|| panic!("{uid} {key}: not at Apple"));
            let n = |f: &str| a[f].as_u64().unwrap();
            assert_eq!(n("used"), assigned, "{uid} {key}: used");
            assert_eq!(n("reserved") + n("releasing"), 0, "{uid} {key}: reserved");
            assert_eq!(a["unlimited"].as_bool(), Some(unlimited), "{uid} {key}");
            if !unlimited {
                assert_eq!(n("owned"), owned, "{uid} {key}: owned");
                assert_eq!(n("free"), available, "{uid} {key}: free");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, truth.len(), "the report lists every asset Apple has");
    seen
}

/// Apple's counts before anything happened, from a fresh simulator of the same preset:
/// what the demo must not change (owned licences per asset).
async fn initial_owned() -> BTreeMap<(String, String), AssetCounts> {
    let sim = Simulator::builder()
        .preset(Preset::Demo)
        .start()
        .await
        .expect("simulator");
    let mut out = BTreeMap::new();
    for l in sim.control().locations() {
        for a in sim.control().assets(l.uid.as_str()).unwrap() {
            out.insert((l.uid.to_string(), a.key.to_string()), a.counts);
        }
    }
    sim.shutdown().await;
    out
}

fn demo_checks(report: &Value) {
    let locations = report["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 4);
    let by_uid = |uid: &str| {
        locations
            .iter()
            .find(|l| l["uid"] == uid)
            .unwrap_or_else(|| panic!("location {uid}"))
    };
    let berlin = by_uid(demo::ACME_BERLIN);
    assert_eq!(berlin["tokenState"], "claimed_elsewhere");
    assert_eq!(berlin["writesAllowed"], false);
    let high = by_uid(demo::SPRINGFIELD_HIGH);
    assert_eq!(high["tokenState"], "valid");
    let chem_id = demo::SHORTAGE_APP.to_string();
    let chem = high["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["asset"]["adamId"] == chem_id.as_str())
        .expect("Chem Lab 3D");
    assert_eq!(chem["free"], 0, "the shortage app is used up");
    let positions: Vec<u64> = chem["waitlist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=7).collect::<Vec<_>>(),
        "7 devices wait in order"
    );
    let plan = &report["lastPlan"];
    let blocked: Vec<&str> = plan["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"]["kind"].as_str().unwrap())
        .collect();
    for kind in ["noUserAffinity", "noAccountDetails", "awaitingInvitation"] {
        assert!(blocked.contains(&kind), "{kind} in {blocked:?}");
    }
    assert_eq!(
        plan["invalidPolicies"][0]["violation"]["kind"],
        "availableToDevices"
    );
    assert!(
        report["commandsSent"]["InstallApplication"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(report["commandsSent"]["InstallMedia"].as_u64().unwrap() > 0);
    assert!(report["commandsSent"]["InviteToProgram"].as_u64().unwrap() > 0);
    assert!(report["pendingRequests"].as_array().unwrap().is_empty());
}

fn check_owned_unchanged(report: &Value, initial: &BTreeMap<(String, String), AssetCounts>) {
    for l in report["locations"].as_array().unwrap() {
        let uid = l["uid"].as_str().unwrap();
        for a in l["apps"].as_array().unwrap() {
            let key = format!(
                "{}/{}",
                a["asset"]["adamId"].as_str().unwrap(),
                a["asset"]["pricingParam"].as_str().unwrap()
            );
            let before = initial[&(uid.to_owned(), key.clone())];
            if !before.is_unlimited() {
                assert_eq!(
                    a["owned"].as_u64().unwrap(),
                    u64::from(before.holdable()),
                    "{uid} {key}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_in_process_matches_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db").display().to_string();
    let output = manager::demo::run(manager::demo::DemoOptions {
        db: Some(db),
        quiet: true,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("demo: {}", e.one_line()));
    let json = serde_json::to_value(&output).unwrap();
    let truth = truth_from_json(&json["simulator"]);
    let checked = assert_report_matches(&json["report"], &truth);
    assert!(checked >= 40, "{checked} apps");
    demo_checks(&json["report"]);
    check_owned_unchanged(&json["report"], &initial_owned().await);
    let n = output.report.notifications.expect("webhook counts");
    assert!(n.applied > 0, "notifications arrived: {n:?}");
    assert_eq!(n.refused, 0);
}

mod support;
use support::manager_binary;

fn run(args: &[&str], key: &str) -> Output {
    Command::new(manager_binary())
        .args(args)
        .env("VPPKIT_SECRET_KEY", key)
        .env_remove("VPPKIT_DB")
        .env_remove("VPPKIT_APPLE_URL")
        .env_remove("VPPKIT_WEBHOOK_URL")
        .output()
        .expect("the manager runs")
}

async fn run_ok(args: Vec<String>, key: String) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&refs, &key);
        (args, out)
    })
    .await
    .unwrap();
    let (args, out) = out;
    assert!(
        out.status.success(),
        "manager {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "manager {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_binary_json_matches_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db").display().to_string();
    let key = SecretCipher::generate_key_base64().expose().to_owned();
    let started = std::time::Instant::now();
    let json = run_ok(
        ["demo", "--json", "--db", &db].map(String::from).to_vec(),
        key.clone(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the demo takes well under a minute ({:?})",
        started.elapsed()
    );
    let truth = truth_from_json(&json["simulator"]);
    assert_report_matches(&json["report"], &truth);
    demo_checks(&json["report"]);
    check_owned_unchanged(&json["report"], &initial_owned().await);

    // Another process reads the same database: same counts, waitlists and blocked items.
    let report = run_ok(
        ["report", "--json", "--db", &db].map(String::from).to_vec(),
        key.clone(),
    )
    .await;
    assert_report_matches(&report, &truth);
    demo_checks(&report);
    assert_eq!(
        report["mdmId"], json["report"]["mdmId"],
        "stable mdmInfo id"
    );

    // A wrong key is one clear line and a failure.
    let other = SecretCipher::generate_key_base64().expose().to_owned();
    let out = run(&["report", "--db", &db], &other);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("VPPKIT_SECRET_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subcommands_against_the_simulator() {
    let sim = support::demo_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db").display().to_string();
    let key = SecretCipher::generate_key_base64().expose().to_owned();
    let apple = sim.base_url();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let policies = data.join("policies.json").display().to_string();
    let directory = data.join("directory.json").display().to_string();
    let cmd = |args: &[&str]| {
        let mut v: Vec<String> = vec![
            "--json".into(),
            "--db".into(),
            db.clone(),
            "--apple-url".into(),
            apple.clone(),
        ];
        v.extend(args.iter().map(|s| (*s).to_owned()));
        v
    };

    for t in sim.token_files() {
        let path = dir.path().join(&t.file_name);
        std::fs::write(&path, t.content.expose()).unwrap();
        let added = run_ok(
            cmd(&["token", "add", &path.display().to_string()]),
            key.clone(),
        )
        .await;
        let expected = if t.uid.as_str() == demo::ACME_BERLIN {
            "claimed_elsewhere"
        } else {
            "valid"
        };
        assert_eq!(added["tokenState"], expected, "{}", t.location_name);
    }
    let list = run_ok(cmd(&["token", "list"]), key.clone()).await;
    assert_eq!(list.as_array().unwrap().len(), 4);

    let synced = run_ok(cmd(&["sync"]), key.clone()).await;
    assert!(synced
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["succeeded"] == true));

    let plan = run_ok(
        cmd(&["plan", "--policies", &policies, "--directory", &directory]),
        key.clone(),
    )
    .await;
    assert!(plan["appleCalls"].as_u64().unwrap() > 0);
    assert_eq!(plan["waitlisted"], 7);
    // A dry run changes nothing at Apple.
    let high = sim
        .control()
        .assignment_count(demo::SPRINGFIELD_HIGH)
        .unwrap();
    assert_eq!(high, 4095);

    let applied = run_ok(
        cmd(&["apply", "--policies", &policies, "--directory", &directory]),
        key.clone(),
    )
    .await;
    assert!(
        applied["commandsByType"]["InstallApplication"]
            .as_u64()
            .unwrap()
            > 0
    );

    let requested = run_ok(
        cmd(&["request-install", "SPH000000402", "1200000006"]),
        key.clone(),
    )
    .await;
    assert_eq!(requested["outcome"], "installing", "{requested}");

    let report = run_ok(cmd(&["report"]), key.clone()).await;
    let mut truth = Truth::new();
    for l in sim.control().locations() {
        for a in sim.control().assets(l.uid.as_str()).unwrap() {
            truth.insert(
                (l.uid.to_string(), a.key.to_string()),
                (
                    u64::from(a.counts.holdable()),
                    u64::from(a.counts.assigned),
                    u64::from(a.counts.available),
                    a.counts.is_unlimited(),
                ),
            );
        }
    }
    assert_report_matches(&report, &truth);

    // Errors: one line on stderr, a non-zero exit.
    let args = cmd(&["request-install", "SPH000000402", "1200000099"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&refs, &key);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
    let out = run(&["sync", "--db", &db, "--bogus"], &key);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );

    let removed = run_ok(
        cmd(&["token", "remove", "springfield-middle-school"]),
        key.clone(),
    )
    .await;
    assert_eq!(removed["removed"], true);
    let list = run_ok(cmd(&["token", "list"]), key.clone()).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    sim.shutdown().await;
}
