//! SIGTERM during `manager apply` (what systemd and container runtimes send): the reconcile
//! pass under way is finished, not cut, so no licence is left reserved and no operation
//! open; the store equals Apple's truth afterwards. `kill -9` during `apply`: the next
//! `apply` takes over the killed process's lease at once and converges. Another live
//! instance's lease: `apply` says it waits for it.

#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vppkit::store::SecretCipher;
use vppkit_sim::{demo, RunningSimulator};

mod support;
use support::manager_binary;

fn run(args: &[String], key: &str) -> Output {
    Command::new(manager_binary())
        .args(args)
        .env("VPPKIT_SECRET_KEY", key)
        .env_remove("VPPKIT_DB")
        .output()
        .expect("the manager runs")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// A simulator and a manager database with Springfield High added and synced.
struct Setup {
    sim: RunningSimulator,
    _dir: tempfile::TempDir,
    db: String,
    key: String,
    /// The location id the manager gave Springfield High.
    location: String,
}

impl Setup {
    async fn new() -> Self {
        let sim = support::demo_simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("manager.db").display().to_string();
        let key = SecretCipher::generate_key_base64().expose().to_owned();
        let t = sim
            .token_files()
            .into_iter()
            .find(|t| t.uid.as_str() == demo::SPRINGFIELD_HIGH)
            .unwrap();
        let path = dir.path().join(&t.file_name);
        std::fs::write(&path, t.content.expose()).unwrap();
        let mut s = Self {
            sim,
            _dir: dir,
            db,
            key,
            location: String::new(),
        };
        let added = json(&s.run(&["token", "add", &path.display().to_string()]));
        s.location = added["location"].as_str().unwrap().to_owned();
        json(&s.run(&["sync"]));
        s
    }

    /// The manager's arguments: `--json`, this database and simulator, then `args`.
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--json".into(),
            "--db".into(),
            self.db.clone(),
            "--apple-url".into(),
            self.sim.base_url(),
        ];
        v.extend(args.iter().map(|s| (*s).to_owned()));
        v
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&self.args(args), &self.key)
    }

    /// `apply` of the example policies and directory.
    fn apply_args(&self) -> Vec<String> {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        self.args(&[
            "apply",
            "--policies",
            &data.join("policies.json").display().to_string(),
            "--directory",
            &data.join("directory.json").display().to_string(),
        ])
    }

    /// `apply` in the background (its stdout to `output`, its stderr piped), once Apple
    /// answers slowly, and back when Apple has been asked for something (the pass is under
    /// way).
    async fn apply_under_way(&self, output: Stdio) -> Child {
        let before = self
            .sim
            .control()
            .events(demo::SPRINGFIELD_HIGH)
            .unwrap()
            .len();
        self.sim.control().set_latency(Duration::from_millis(300));
        let child = Command::new(manager_binary())
            .args(self.apply_args())
            .env("VPPKIT_SECRET_KEY", &self.key)
            .env_remove("VPPKIT_DB")
            .stdout(output)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .sim
            .control()
            .events(demo::SPRINGFIELD_HIGH)
            .unwrap()
            .len()
            == before
        {
            assert!(Instant::now() < deadline, "the apply never reached Apple");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child
    }

    /// Nothing reserved or releasing, nothing in flight, and every app's `used` equals
    /// Apple's assigned count.
    fn assert_converged(&self) {
        self.sim.control().set_latency(Duration::ZERO);
        let report = json(&self.run(&["report"]));
        let location = report["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["uid"] == demo::SPRINGFIELD_HIGH)
            .expect("the location");
        assert_eq!(location["operationsInFlight"], 0, "{location}");
        let truth = self.sim.control().assets(demo::SPRINGFIELD_HIGH).unwrap();
        for a in location["apps"].as_array().unwrap() {
            let n = |f: &str| a[f].as_u64().unwrap();
            assert_eq!(n("reserved") + n("releasing"), 0, "{a}");
            let adam = a["asset"]["adamId"].as_str().unwrap();
            let pricing = a["asset"]["pricingParam"].as_str().unwrap();
            let t = truth
                .iter()
                .find(|x| x.key.adam_id.as_str() == adam && x.key.pricing_param.as_str() == pricing)
                .expect("at Apple");
            assert_eq!(n("used"), u64::from(t.counts.assigned), "{adam}: used");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_apply_finishes_the_pass_and_leaves_no_reservation() {
    let s = Setup::new().await;
    let child = s.apply_under_way(Stdio::piped()).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SIGTERM: finishing the reconcile pass"),
        "{stderr}"
    );
    // The pass ended: its output is there (complete, or listing what is left, exit 3).
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{:?} {stderr}",
        out.status
    );
    let applied: Value = serde_json::from_slice(&out.stdout).expect("the pass's output");
    assert!(applied["desiredRevision"].as_u64().unwrap() >= 1);
    s.assert_converged();
    s.sim.shutdown().await;
}

/// `kill -9` of `manager apply` once Apple has been asked for something: the next `apply`
/// on this host takes over the killed process's lease at once (it names a process that no
/// longer runs) instead of waiting out its two minutes, finishes what it left open, and the
/// store equals Apple's truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_kill_9_the_next_apply_takes_over_at_once_and_converges() {
    let s = Setup::new().await;
    let mut child = s.apply_under_way(Stdio::null()).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    s.sim.control().set_latency(Duration::ZERO);

    // The lease the killed process held has most of its two minutes left.
    let started = Instant::now();
    let again = tokio::task::spawn_blocking({
        let (apply, key) = (s.apply_args(), s.key.clone());
        move || run(&apply, &key)
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let applied = json(&again);
    assert!(
        took < Duration::from_secs(60),
        "the next apply waited {took:?} for a dead process's lease: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(applied["complete"], true, "{applied}");
    s.assert_converged();
    s.sim.shutdown().await;
}

/// Another live instance holds the location: `apply` says on stderr that it waits for that
/// lease (it used to wait in silence), then does its work once the lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_says_when_it_waits_for_another_instances_lease() {
    use vppkit::store::LeaseStore as _;
    let s = Setup::new().await;
    // "Another instance" takes the location's lease for three seconds.
    let store = vppkit::store_sqlite::SqliteStore::connect(
        &format!("sqlite://{}", s.db),
        SecretCipher::from_base64(&s.key).unwrap(),
    )
    .await
    .unwrap();
    store
        .acquire_lease(
            &format!("vppkit-engine/location/{}", s.location),
            "another-instance",
            chrono::Duration::seconds(3),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking({
        let (apply, key) = (s.apply_args(), s.key.clone());
        move || run(&apply, &key)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another instance holds the location")
            && stderr.contains("another-instance"),
        "{stderr}"
    );
    let applied = json(&out);
    assert_eq!(applied["complete"], true, "{applied}");
    s.assert_converged();
    s.sim.shutdown().await;
}
