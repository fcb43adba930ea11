//! The demo: the whole story on the embedded defaults, against the simulator's demo
//! preset on a loopback port.
//!
//! 1. start the simulator (real-time clock, short event delay) and the manager's own
//!    notification webhook on loopback;
//! 2. open a fresh SQLite database and onboard the four demo tokens (one is held by
//!    another MDM and stays read-only);
//! 3. sync every location with progress bars;
//! 4. apply `examples/data/policies.json` to `examples/data/directory.json`;
//! 5. let the simulated world move: notifications arrive, invited users accept, a device
//!    asks for an Available app; apply again;
//! 6. print the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vppkit::core::{AssetKey, VppUserStatus};
use vppkit::engine::DesiredState;
use vppkit::rules::{Directory, Intent, PolicySet, Target};
use vppkit::store::SecretCipher;
use vppkit_sim::{Preset, SimClock, Simulator};

use super::app::{self, App, OpenOptions};
use super::apply;
use super::commands;
use super::error::{ManagerError, Result};
use super::progress::{self, Mode};
use super::report::{self, ManagerReport};
use super::serve;
use super::webhook::{self, Counters};

/// The example policies, built into the binary so the demo runs from any directory.
pub(crate) const POLICIES: &str = include_str!("../../../data/policies.json");
/// The example directory.
pub(crate) const DIRECTORY: &str = include_str!("../../../data/directory.json");

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct DemoOptions {
    /// A database URL; default a fresh SQLite file in the system temp directory.
    pub(crate) db: Option<String>,
    /// A policy file instead of the built-in one.
    pub(crate) policies: Option<PathBuf>,
    /// A directory file instead of the built-in one.
    pub(crate) directory: Option<PathBuf>,
    /// Print the report as JSON (and nothing else on stdout).
    pub(crate) json: bool,
    /// Print nothing (tests).
    pub(crate) quiet: bool,
}

/// One asset as the simulator knows it (Apple's ground truth).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TruthAsset {
    pub(crate) asset: AssetKey,
    pub(crate) total: u32,
    pub(crate) assigned: u32,
    pub(crate) available: u32,
    pub(crate) retired: u32,
    pub(crate) unlimited: bool,
}

/// One location as the simulator knows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TruthLocation {
    pub(crate) uid: String,
    pub(crate) name: String,
    pub(crate) assignments: usize,
    pub(crate) assets: Vec<TruthAsset>,
}

/// What the demo prints with `--json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DemoOutput {
    /// The database the demo wrote.
    pub(crate) database: String,
    /// Whether the demo made up a key (no `VPPKIT_SECRET_KEY`): the database then cannot
    /// be opened again.
    pub(crate) key_generated: bool,
    /// The manager's report.
    pub(crate) report: ManagerReport,
    /// The simulator's own state at the end, read through its control API (not
    /// through Apple's API): what the report must agree with.
    pub(crate) simulator: Vec<TruthLocation>,
}

struct Out {
    quiet: bool,
}

impl Out {
    fn step(&self, text: &str) {
        if !self.quiet {
            commands::out(&format!("\n== {text}\n"));
        }
    }
    fn line(&self, text: impl AsRef<str>) {
        if !self.quiet {
            let text = text.as_ref();
            let end = if text.ends_with('\n') { "" } else { "\n" };
            commands::out(&format!("{text}{end}"));
        }
    }
}

fn load(path: &Option<PathBuf>, built_in: &str) -> Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| ManagerError::file(p, e)),
        None => Ok(built_in.to_owned()),
    }
}

fn format_error(what: &str, source: vppkit::rules::FormatError) -> ManagerError {
    ManagerError::Format {
        path: what.to_owned(),
        source,
    }
}

fn demo_db() -> Result<String> {
    let path = std::env::temp_dir().join("vppkit-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ManagerError::file(p, e)),
        }
    }
    Ok(path.display().to_string())
}

/// Runs the demo and returns its report and the simulator's ground truth.
pub(crate) async fn run(options: DemoOptions) -> Result<DemoOutput> {
    let out = Out {
        quiet: options.quiet || options.json,
    };
    let policies_text = load(&options.policies, POLICIES)?;
    let directory_text = load(&options.directory, DIRECTORY)?;
    let policies = PolicySet::from_json(&policies_text).map_err(|e| format_error("policies", e))?;
    let directory =
        Directory::from_json(&directory_text).map_err(|e| format_error("directory", e))?;

    out.step("Starting the simulator of Apple's Apps and Books API (demo preset)");
    let key_generated = std::env::var_os(app::KEY_ENV).is_none();
    let cipher = match key_generated {
        false => app::cipher_from_env()?,
        true => {
            out.line(format!(
                "No {} set: generated a throwaway key for this demo database (tokens are stored encrypted).",
                app::KEY_ENV
            ));
            SecretCipher::from_base64(SecretCipher::generate_key_base64().expose())?
        }
    };
    let sim = Simulator::builder()
        .preset(Preset::Demo)
        .seed(2024)
        .page_size(250)
        .clock(SimClock::real_time(Duration::from_millis(100)))
        .allow_http_loopback_notifications(true)
        .start()
        .await?;
    out.line(format!("simulator at {}", sim.base_url()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| ManagerError::Net {
            what: "cannot listen for notifications on 127.0.0.1".into(),
            source,
        })?;
    let hook_addr = listener.local_addr().map_err(|source| ManagerError::Net {
        what: "no local address".into(),
        source,
    })?;
    let hook_url = format!("http://{hook_addr}{}", webhook::PATH);

    let db = match &options.db {
        Some(db) => db.clone(),
        None => demo_db()?,
    };
    let opened = App::open(
        OpenOptions {
            db: db.clone(),
            apple_url: sim.base_url(),
            webhook_url: Some(hook_url.clone()),
        },
        cipher,
    )
    .await?;
    if !opened.store.locations().await?.is_empty() {
        return Err(ManagerError::usage(format!(
            "the demo needs an empty database; {db} already has locations"
        )));
    }
    let app = Arc::new(opened);
    let counters = Arc::new(Counters::default());
    let router = webhook::router(app.engine.clone(), webhook::PATH, counters.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    out.line(format!("database {db}; notifications at {hook_url}"));

    let result = story(&app, &sim, &out, &options, policies, directory).await;
    let output = match result {
        Ok(()) => {
            let mut report = report::build(&app).await?;
            report.notifications = Some(counters.snapshot());
            Ok(DemoOutput {
                database: db,
                key_generated,
                report,
                simulator: truth(&sim)?,
            })
        }
        Err(e) => Err(e),
    };
    server.abort();
    sim.shutdown().await;
    output
}

async fn story(
    app: &App,
    sim: &vppkit_sim::RunningSimulator,
    out: &Out,
    options: &DemoOptions,
    policies: PolicySet,
    directory: Directory,
) -> Result<()> {
    out.step("Onboarding the demo content tokens");
    let mut tokens = sim.token_files();
    tokens.sort_by(|a, b| a.uid.cmp(&b.uid));
    for t in &tokens {
        let id = commands::location_id_from_file(Path::new(&t.file_name))?;
        let mut added =
            commands::add_token(app, id, t.content.clone(), false, &t.file_name).await?;
        if added.hint.is_some() {
            // The demo's token files live in the simulator only: no file to name.
            added.hint = Some(
                "read-only, the demo leaves it alone (with its token file, \
                 `manager token add FILE --claim` takes it over)"
                    .to_owned(),
            );
        }
        out.line(added.text());
    }

    out.step("Syncing every location (assets, users, assignments, metadata)");
    let mode = if out.quiet {
        Mode::Quiet
    } else {
        Mode::for_output(options.json)
    };
    let rows = commands::sync(app, None, false, &progress::reporter(mode)).await?;
    commands::sync_failures(&rows)?;
    if mode != Mode::Bars {
        out.line(commands::sync_text(&rows));
    }

    out.step("Applying examples/data/policies.json to examples/data/directory.json");
    let inputs = DesiredState::new(directory, policies);
    let applied = apply::apply(
        app,
        inputs.policies.clone(),
        inputs.directory.clone(),
        false,
        serve::stop_signal()?,
    )
    .await?;
    out.line(applied.text());

    out.step("Letting the simulated world move");
    let control = sim.control();
    control.flush_notifications(Duration::from_secs(10)).await;
    let accepted = accept_invitations(sim, &inputs)?;
    for (location, user) in &accepted {
        out.line(format!(
            "{user} accepted the Apps and Books invitation of {location} (USER_ASSOCIATED notification)"
        ));
    }
    control.flush_notifications(Duration::from_secs(10)).await;
    // What `serve` does by itself on USER_ASSOCIATED: a sync, then a reconcile pass.
    commands::sync(app, None, false, &progress::reporter(Mode::Quiet)).await?;
    let again = apply::reconcile(app, serve::stop_signal()?).await?;
    out.line(format!(
        "reconciled for the users who accepted: {}",
        again.text()
    ));
    if let Some((device, adam)) = self_service_example(&inputs) {
        match apply::request_install(app, &device, &adam, serve::stop_signal()?).await {
            Ok(r) => out.line(format!("self-service request: {}", r.explain)),
            Err(e) => out.line(format!("self-service request not served: {}", e.one_line())),
        }
    }
    control.flush_notifications(Duration::from_secs(10)).await;
    Ok(())
}

/// Accepts the pending invitations of the directory's users, all but the first one (so
/// the report still shows someone waiting for their invitation).
fn accept_invitations(
    sim: &vppkit_sim::RunningSimulator,
    inputs: &DesiredState,
) -> Result<Vec<(String, String)>> {
    let control = sim.control();
    let mut pending_all = Vec::new();
    for l in control.locations() {
        let pending: Vec<String> = control
            .users(l.uid.as_str())?
            .into_iter()
            .filter(|u| u.status == VppUserStatus::Registered)
            .map(|u| u.client_user_id.to_string())
            .filter(|id| inputs.directory.users().iter().any(|d| d.id.as_str() == id))
            .collect();
        pending_all.extend(
            pending
                .into_iter()
                .map(|u| (u, l.uid.clone(), l.name.clone())),
        );
    }
    pending_all.sort();
    let mut accepted = Vec::new();
    for (user, uid, name) in pending_all.into_iter().skip(1) {
        control.accept_invitation(uid.as_str(), &user)?;
        accepted.push((name, user));
    }
    Ok(accepted)
}

/// A device that an Available policy offers an app to: the first device of the first
/// user of the first Available policy's group.
fn self_service_example(inputs: &DesiredState) -> Option<(String, String)> {
    let dir = &inputs.directory;
    inputs
        .policies
        .policies
        .iter()
        .filter(|p| p.enabled && p.intent == Intent::Available)
        .find_map(|p| {
            let Target::Group(g) = &p.target else {
                return None;
            };
            let group = dir.group(g)?;
            let device = dir
                .devices()
                .iter()
                .find(|d| d.user.as_ref().is_some_and(|u| group.users.contains(u)))?;
            Some((device.serial_number.to_string(), p.adam_id.to_string()))
        })
}

fn truth(sim: &vppkit_sim::RunningSimulator) -> Result<Vec<TruthLocation>> {
    let control = sim.control();
    let mut out = Vec::new();
    for l in control.locations() {
        let uid = l.uid.to_string();
        let assets = control
            .assets(&uid)?
            .into_iter()
            .map(|a| TruthAsset {
                unlimited: a.counts.is_unlimited(),
                total: a.counts.total,
                assigned: a.counts.assigned,
                available: a.counts.available,
                retired: a.counts.retired,
                asset: a.key,
            })
            .collect();
        out.push(TruthLocation {
            assignments: control.assignment_count(&uid)?,
            name: l.name,
            uid,
            assets,
        });
    }
    out.sort_by(|a, b| a.uid.cmp(&b.uid));
    Ok(out)
}

/// Prints the demo's result.
pub(crate) fn print(output: &DemoOutput, json: bool) {
    if json {
        commands::emit(true, output, |_| String::new());
        return;
    }
    commands::out(&format!(
        "\n== Report\n\n{}",
        report::render(&output.report)
    ));
    let db = &output.database;
    commands::out(&if output.key_generated {
        format!(
            "\nThe database is {db}. To run the subcommands against it, set {} (base64, 32 bytes)\nbefore the demo, then for example:\n  cargo run -p vppkit-manager -- --db {db} report\n",
            app::KEY_ENV
        )
    } else {
        format!(
            "\nThe database is {db}; run the subcommands against it, for example:\n  cargo run -p vppkit-manager -- --db {db} report\n"
        )
    });
}
