//! The manager as an operator runs it, against a simulator this test starts:
//!
//! - hints and exit codes that tell the truth about another MDM's claim: `token add` of a
//!   location another MDM holds adds it read-only and says to use `--claim` (exit 4 when it
//!   was already added), and a `sync` that finds a new claim exits 4 with that hint;
//!   with `--json`, stdout holds one document either way;
//! - the report's text: Apple's total and retired, each app summed across tokens, the
//!   last sync with its date, no days left for an expired token, columns aligned with
//!   wide characters in names; the same in JSON;
//! - sync kind labels that agree (a first sync says "full" when it starts and ends);
//! - no Rust `Debug` formatting in any output;
//! - `completions SHELL` and `--log-format json`.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use vppkit::core::{AdamId, AssetKey, MdmInfo, PricingParam};
use vppkit::store::SecretCipher;
use vppkit_sim::{demo, AssetSpec, RunningSimulator};

mod support;
use support::manager_binary;

/// One manager database against one simulator.
struct Setup {
    sim: RunningSimulator,
    dir: tempfile::TempDir,
    key: String,
}

impl Setup {
    async fn new(customize: impl FnOnce(&RunningSimulator)) -> Self {
        let sim = support::demo_simulator().await;
        customize(&sim);
        let dir = tempfile::tempdir().unwrap();
        for t in sim.token_files() {
            std::fs::write(dir.path().join(&t.file_name), t.content.expose()).unwrap();
        }
        Self {
            sim,
            dir,
            key: SecretCipher::generate_key_base64().expose().to_owned(),
        }
    }

    fn token_file(&self, uid: &str) -> String {
        let t = self
            .sim
            .token_files()
            .into_iter()
            .find(|t| t.uid.as_str() == uid)
            .unwrap();
        self.dir.path().join(&t.file_name).display().to_string()
    }

    /// Runs the manager (blocking: the simulator runs on the test's runtime).
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(manager_binary());
        command
            .args(["--db", "m.db", "--apple-url", &self.sim.base_url()])
            .args(args)
            .current_dir(self.dir.path())
            .env("VPPKIT_SECRET_KEY", &self.key)
            .env_remove("VPPKIT_DB")
            .env_remove("VPPKIT_APPLE_URL")
            .env_remove("VPPKIT_WEBHOOK_URL")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || command.output().expect("the manager runs"))
            .await
            .unwrap();
        assert_no_debug(&out);
        out
    }

    async fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args, &[]).await;
        assert!(
            out.status.success(),
            "manager {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one JSON document on stdout (the output, or the error when there is no output).
fn json_values(out: &Output) -> Vec<Value> {
    let values: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(values.len(), 1, "one document: {}", text(&out.stdout));
    values
}

/// No Rust `Debug` formatting (`Some(..)`, `LocationId(..)`, `Full`, struct braces).
fn assert_no_debug(out: &Output) {
    for stream in [text(&out.stdout), text(&out.stderr)] {
        for needle in [
            "Some(",
            "None,",
            "LocationId(",
            "AdamId(",
            "Applied {",
            "(Incremental)",
            "(Full)",
        ] {
            assert!(
                !stream.contains(needle),
                "Debug output ({needle}): {stream}"
            );
        }
    }
}

/// Display width: 2 for East Asian wide characters, 1 otherwise.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = u32::from(c);
            let wide = (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFF00..=0xFF60).contains(&c);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_mdms_claim_gives_the_claim_hint_and_exit_status_4() {
    let s = Setup::new(|_| {}).await;
    let berlin = s.token_file(demo::ACME_BERLIN);
    let high = s.token_file(demo::SPRINGFIELD_HIGH);

    // Added while another MDM holds it: read-only (added: exit 0), and the hint names the
    // command.
    let out = s.ok(&["token", "add", &berlin]).await;
    let line = text(&out.stdout);
    assert!(line.contains("held by another MDM (Legacy MDM)"), "{line}");
    assert!(
        line.contains(&format!("manager token add {berlin} --claim")),
        "{line}"
    );
    let out = s.ok(&["--json", "token", "add", &high]).await;
    assert!(json_values(&out)[0]["hint"].is_null());

    // Added again without --claim: not "already exists" but how to take it over; exit 4.
    let out = s.run(&["--json", "token", "add", &berlin], &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let error = &json_values(&out)[0]["error"];
    assert_eq!(error["kind"], "claimedElsewhere", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("--claim") && message.contains("Legacy MDM"),
        "{message}"
    );
    // A location of ours added twice is a usage error that says what to do instead.
    let out = s.run(&["token", "add", &high], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("token renew"),
        "{}",
        text(&out.stderr)
    );

    // A known claim is not news: the sync succeeds.
    let out = s.ok(&["--json", "sync"]).await;
    let rows = &json_values(&out)[0];
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["claimedBy"].is_null()));

    // Another MDM takes Springfield High between two syncs: the sync says so and fails.
    let other = MdmInfo::new("other-mdm", "Other MDM", "other.example").unwrap();
    s.sim
        .control()
        .set_mdm_info(demo::SPRINGFIELD_HIGH, Some(other))
        .unwrap();
    let out = s.run(&["--json", "sync"], &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let values = json_values(&out);
    let row = values[0]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["location"] == "springfield-high-school")
        .unwrap()
        .clone();
    assert_eq!(row["succeeded"], true, "the read worked: {row}");
    assert_eq!(row["claimedBy"], "Other MDM");
    assert!(row["hint"].as_str().unwrap().contains("--claim"), "{row}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("springfield-high-school is now held by another MDM"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--name springfield-high-school --claim") || stderr.contains("--claim")
    );

    // Taking it back with the hint's command works.
    let out = s.ok(&["--json", "token", "add", &high, "--claim"]).await;
    assert_eq!(json_values(&out)[0]["tokenState"], "valid");
    let out = s.ok(&["sync"]).await;
    assert!(!text(&out.stdout).contains("now held"));
    s.sim.shutdown().await;
}

/// An app with a wide name, bought 5 times, one licence retired.
const WIDE_APP: u64 = 1_999_000_002;
const WIDE_NAME: &str = "数学クエスト";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_shows_apples_numbers_dates_and_sums_in_aligned_tables() {
    let s = Setup::new(|sim| {
        sim.control()
            .add_asset(
                demo::SPRINGFIELD_HIGH,
                AssetSpec::app(WIDE_APP, 5)
                    .retired(1)
                    .named(WIDE_NAME, None),
            )
            .unwrap();
    })
    .await;
    for uid in [demo::SPRINGFIELD_HIGH, demo::SPRINGFIELD_MIDDLE] {
        s.ok(&["token", "add", &s.token_file(uid)]).await;
    }
    // The first sync is full: it says so when it starts and when it ends.
    let out = s.ok(&["sync"]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains("springfield-high-school: started (full sync)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("springfield-high-school: done (full sync)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("springfield-high-school: full sync,"),
        "{stdout}"
    );
    let out = s.ok(&["sync", "springfield-high-school"]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stderr.contains("started (incremental sync)"), "{stderr}");
    assert!(
        stdout.contains("springfield-high-school: incremental sync,"),
        "{stdout}"
    );

    let report = text(&s.ok(&["report"]).await.stdout);
    // Dates: the last sync is a date and a time.
    let tokens: Vec<&str> = report
        .lines()
        .skip_while(|l| *l != "TOKENS")
        .skip(2)
        .take(2)
        .collect();
    for line in &tokens {
        let today = chrono::Utc::now().format("ok %Y-%m-%d ").to_string();
        assert!(line.contains(&today) && line.ends_with(" UTC"), "{line}");
    }
    // Apple's total and retired beside owned, the wide name aligned.
    let table: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("Springfield High School"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    let header: Vec<&str> = table[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "adamId", "name", "price", "type", "total", "retired", "owned", "used", "reserved",
            "free", "waiting", "blocked"
        ]
    );
    let wide = table
        .iter()
        .find(|l| l.contains(WIDE_NAME))
        .expect("the wide-named app");
    let cells: Vec<&str> = wide.split_whitespace().collect();
    assert_eq!(&cells[4..10], ["5", "1", "4", "0", "0", "4"], "{wide}");
    let widths: Vec<usize> = table.iter().map(|l| width(l)).collect();
    assert!(
        widths.iter().all(|w| *w == widths[0]),
        "columns aligned:\n{}\n{widths:?}",
        table.join("\n")
    );
    // Summed across tokens: Classroom Notes is held by both schools (700 + 350).
    let across: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("APPS ACROSS LOCATIONS"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let notes: Vec<&str> = across
        .iter()
        .find(|l| l.contains("Classroom Notes"))
        .expect("Classroom Notes summed")
        .split_whitespace()
        .collect();
    // adamId, name (two words), price, type, locations, total, retired, owned
    assert_eq!(&notes[5..9], ["2", "1050", "0", "1050"], "{notes:?}");

    let json = &json_values(&s.ok(&["--json", "report"]).await)[0];
    let totals = json["appTotals"].as_array().expect("appTotals");
    let key = AssetKey::new(AdamId::from(1_200_000_001u64), PricingParam::Stdq);
    let notes = totals
        .iter()
        .find(|t| t["asset"]["adamId"] == key.adam_id.to_string())
        .unwrap();
    assert_eq!(
        (
            notes["owned"].as_u64(),
            notes["locations"].as_array().map(Vec::len)
        ),
        (Some(1050), Some(2))
    );
    let high = json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location"] == "springfield-high-school")
        .unwrap();
    let wide_id = WIDE_APP.to_string();
    let wide = high["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["asset"]["adamId"] == wide_id.as_str())
        .unwrap();
    assert_eq!(
        (
            wide["total"].as_u64(),
            wide["retired"].as_u64(),
            wide["owned"].as_u64()
        ),
        (Some(5), Some(1), Some(4))
    );
    assert!(high["tokenDaysLeft"].as_i64().unwrap() > 30);

    // Apple says the middle school's token expired (its file says years from now).
    let t = s
        .sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::SPRINGFIELD_MIDDLE)
        .unwrap();
    s.sim.control().expire_token(&t).unwrap();
    let out = s.run(&["sync", "springfield-middle-school"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("expired"),
        "{}",
        text(&out.stderr)
    );
    let report = text(&s.ok(&["report"]).await.stdout);
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("springfield-middle-school"))
        .unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["expired", cells[2], "expired"], "{line}");
    assert!(line.contains("FAILED"), "{line}");
    let json = &json_values(&s.ok(&["--json", "report"]).await)[0];
    let middle = json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location"] == "springfield-middle-school")
        .unwrap();
    assert_eq!(middle["tokenState"], "expired");
    assert!(middle["tokenDaysLeft"].is_null(), "{middle}");

    // `token list` as a table, with the state in words.
    let list = text(&s.ok(&["token", "list"]).await.stdout);
    assert!(
        list.lines()
            .any(|l| l.contains("springfield-middle-school") && l.contains(" expired ")),
        "{list}"
    );

    // A date that passes after the last sync: `token list` and `report` both say expired
    // (not what was stored at the sync).
    let t = s
        .sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::SPRINGFIELD_HIGH)
        .unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    s.sim.control().set_token_expiry(&t, soon).unwrap();
    s.ok(&["sync", "springfield-high-school"]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let list = &json_values(&s.ok(&["--json", "token", "list"]).await)[0];
    let report = &json_values(&s.ok(&["--json", "report"]).await)[0];
    let state_in = |v: &Value, key: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|l| l["location"] == "springfield-high-school")
            .unwrap()[key]
            .clone()
    };
    assert_eq!(state_in(list, "tokenState"), "expired", "{list}");
    assert_eq!(state_in(&report["locations"], "tokenState"), "expired");
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_json_logs() {
    let s = Setup::new(|_| {}).await;
    for (shell, needle) in [
        ("bash", "_manager()"),
        ("zsh", "#compdef manager"),
        ("fish", "complete -c manager"),
    ] {
        let out = s.ok(&["completions", shell]).await;
        let script = text(&out.stdout);
        assert!(script.contains(needle), "{shell}: {script}");
        for word in ["token", "report", "serve", "completions"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = s.run(&["completions", "cmd"], &[]).await;
    assert_eq!(out.status.code(), Some(2));

    s.ok(&["token", "add", &s.token_file(demo::SPRINGFIELD_MIDDLE)])
        .await;
    let out = s
        .run(
            &["--json", "--log-format", "json", "sync"],
            &[("RUST_LOG", "vppkit_engine=info")],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = text(&out.stderr);
    let lines = json_lines(&logs);
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"] == "sync finished"),
        "{logs}"
    );

    // Text output: the manager's own progress lines and its error line are JSON too.
    let out = s
        .run(
            &["--log-format", "json", "sync", "springfield-middle-school"],
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_logged(&out, "INFO", "sync springfield-middle-school: started");
    let out = s
        .run(&["--log-format", "json", "sync", "no-such-place"], &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_logged(&out, "ERROR", "no-such-place");
    s.sim.shutdown().await;
}

/// Every stderr line is JSON, and one of the manager's own, at `level`, says `needle`.
fn assert_logged(out: &Output, level: &str, needle: &str) {
    let logs = text(&out.stderr);
    let found = json_lines(&logs).iter().any(|l| {
        l["target"] == "manager"
            && l["level"] == level
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
    });
    assert!(found, "{level} {needle:?} in {logs}");
}

/// Every non-empty line of `logs`, each of which must be a JSON object.
fn json_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

/// The blast-radius guard through the manager: an export that lost every
/// device would release 150 licences of a location (more than 100): `apply`
/// holds them, sends nothing, says how to confirm and exits 3; the same apply
/// with `--confirm-releases` releases them and exits 0. `apply --help`
/// documents the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_that_lost_every_device_is_held_until_confirm_releases() {
    const APP: u64 = 1_700_000_009;
    const UID: &str = "7300000000000808";
    let s = Setup::new(|sim| {
        sim.control()
            .add_location(
                vppkit_sim::LocationSpec::new("Guard School")
                    .uid(vppkit::core::Uid::new(UID).unwrap())
                    .asset(AssetSpec::app(APP, 300)),
            )
            .unwrap();
    })
    .await;
    let help = text(&s.ok(&["apply", "--help"]).await.stdout);
    assert!(help.contains("--confirm-releases"), "{help}");
    assert!(help.contains("exit status is 3"), "{help}");

    s.ok(&["token", "add", &s.token_file(UID)]).await;
    s.ok(&["sync"]).await;
    let serials: Vec<String> = (1..=150).map(|n| format!("GRD{n:06}")).collect();
    let directory = |listed: &[String]| {
        serde_json::json!({
            "users": [],
            "devices": listed.iter().map(|s| serde_json::json!({
                "serialNumber": s, "platform": "iOS", "osVersion": "17.4"
            })).collect::<Vec<_>>(),
            "groups": [{ "id": "cart", "devices": listed }],
        })
    };
    let write = |name: &str, value: &Value| {
        let path = s.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path.display().to_string()
    };
    let policies = write(
        "policies.json",
        &serde_json::json!({
            "release": { "onDeviceRemoved": "release" },
            "policies": [{
                "id": "cart", "adamId": APP.to_string(), "target": { "group": "cart" },
                "intent": "required", "licence": "device"
            }],
        }),
    );
    let full = write("full.json", &directory(&serials));
    let empty = write("empty.json", &directory(&[]));
    let held_at_apple = || {
        let key = AssetKey::new(AdamId::from(APP), PricingParam::Stdq);
        s.sim.control().asset(UID, &key).unwrap().counts.assigned
    };

    s.ok(&["apply", "--policies", &policies, "--directory", &full])
        .await;
    assert_eq!(held_at_apple(), 150);

    // The export lost every device: held, nothing sent, exit 3.
    let args = [
        "--json",
        "apply",
        "--policies",
        &policies,
        "--directory",
        &empty,
    ];
    let out = s.run(&args, &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = json_values(&out).remove(0);
    assert!(report["appleCallsHeld"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(held_at_apple(), 150, "nothing released");
    let out = s
        .run(
            &["apply", "--policies", &policies, "--directory", &empty],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(3));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("--confirm-releases"), "{said}");
    assert_eq!(held_at_apple(), 150, "nothing released");

    // Confirmed: released at Apple, exit 0.
    let confirmed = [
        "apply",
        "--policies",
        &policies,
        "--directory",
        &empty,
        "--confirm-releases",
    ];
    s.ok(&confirmed).await;
    assert_eq!(held_at_apple(), 0);
}
