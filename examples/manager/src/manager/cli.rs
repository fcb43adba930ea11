//! The command line. Every error ends as one line on stderr and exit status 1 (2 for a
//! command line that cannot be parsed; 3 for an `apply` whose output lists what is left:
//! held releases, operations still open at Apple; 4 when another MDM holds a location, found
//! by `token add` of a location already added or by a `sync`: the line says how to take it
//! over with `--claim`); with `--json` the same error is also printed on stdout as
//! `{"error": {"kind": ..., "message": ...}}`, so a script reading stdout sees it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use super::app::{self, App, OpenOptions};
use super::apply;
use super::commands::{self, emit};
use super::demo::{self, DemoOptions};
use super::error::{ManagerError, Result};
use super::progress::{self, Mode};
use super::report;
use super::serve::{self, ServeOptions};
use super::status;

/// The environment the manager reads, for `--help` (the README lists the same).
const ENVIRONMENT: &str = "\
Environment:
  VPPKIT_SECRET_KEY   base64 32-byte key that encrypts content tokens at rest; required by every
                      command but `demo` (which makes one up when unset). Create it once with
                      `openssl rand -base64 32` and keep it: the database cannot be read without it.
  VPPKIT_DB           the database, as --db
  VPPKIT_APPLE_URL    Apple's API base, as --apple-url
  VPPKIT_WEBHOOK_URL  the notification URL, as --webhook-url
  VPPKIT_LISTEN       `serve`: the address to listen on, as --listen
  VPPKIT_ADMIN_TOKEN  `serve`: bearer credential for GET /report and POST /sync (at least 24
                      characters); unset, those endpoints answer 403
  RUST_LOG            log filter on stderr (e.g. `RUST_LOG=vppkit_engine=debug`)

Exit status: 0 done; 1 failed (a `sync` with failed locations names them, and any location
it found taken); 2 the command line does not parse; 3 `apply` left something undone (it lists
it); 4 another MDM holds a location: `sync` found it newly taken, or `token add` of a location
already added (`token add FILE --claim` takes it over; a first `token add` of such a location
adds it read-only, says so, and exits 0). With `--json`, stdout holds one document: the output,
or `{\"error\": ...}` when there is none.";

/// A licence manager for Apple Apps and Books (VPP), built from the vppkit crates.
///
/// With no command it runs the demo: a simulator of Apple's API, four content tokens, a
/// sync, the example policies applied, and a report.
#[derive(Debug, Parser)]
#[command(name = "manager", version, about, long_about = None, after_help = ENVIRONMENT)]
struct Cli {
    /// Database: a SQLite file path, `sqlite://PATH` (created when missing, as a path is) or
    /// `postgres://...` [default: vppkit-manager.db; the demo uses a fresh file in the temp
    /// directory].
    /// (`--help` hides the variable's value: a PostgreSQL URL may hold a password.)
    #[arg(
        long,
        global = true,
        env = "VPPKIT_DB",
        hide_env_values = true,
        value_name = "URL"
    )]
    db: Option<String>,
    /// Apple's Apps and Books API base (the simulator serves the same paths). Against a
    /// loopback URL event status is polled every 250 ms instead of Apple's 30 s.
    #[arg(long, global = true, env = "VPPKIT_APPLE_URL", value_name = "URL", default_value = app::APPLE_URL)]
    apple_url: String,
    /// Where Apple posts notifications: an https URL (or http://127.0.0.1... for the
    /// simulator). Tokens added with it are subscribed.
    #[arg(long, global = true, env = "VPPKIT_WEBHOOK_URL", value_name = "URL")]
    webhook_url: Option<String>,
    /// Print JSON (for scripts) instead of text; errors too, on stdout as
    /// `{"error": {"kind", "message"}}` (and as one line on stderr), with a non-zero exit.
    #[arg(long, global = true)]
    json: bool,
    /// How log lines on stderr are written: `text` for people, `json` (one object per line)
    /// for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The log format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans).
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Content tokens (one per location).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sync Apple's licence state into the database (all locations, or one).
    Sync {
        /// The location id (see `token list`).
        location: Option<String>,
        /// Everything from scratch instead of the changes since the last sync.
        #[arg(long)]
        full: bool,
    },
    /// Show what `apply` would do (a dry run: nothing is changed).
    Plan {
        /// The policy file (format: docs/policies.md).
        #[arg(long, value_name = "FILE")]
        policies: PathBuf,
        /// The directory file (users, devices, groups).
        #[arg(long, value_name = "FILE")]
        directory: PathBuf,
    },
    /// Store the policies and directory as the desired state, then reconcile once:
    /// licences at Apple, then MDM commands. `serve` keeps reconciling by itself.
    ///
    /// A plan that would release, disassociate or revoke more than 10% (or 100) of a
    /// location's held licences is held back (an empty or broken directory export must
    /// not take every licence back): it is listed, nothing of it is done, and the exit
    /// status is 3. Look at it, then run the same apply with --confirm-releases.
    /// Exit status 3 also when operations are still open at Apple after the pass.
    Apply {
        /// The policy file (format: docs/policies.md).
        #[arg(long, value_name = "FILE")]
        policies: PathBuf,
        /// The directory file (users, devices, groups).
        #[arg(long, value_name = "FILE")]
        directory: PathBuf,
        /// Let this desired state's releases through the blast-radius guard.
        #[arg(long)]
        confirm_releases: bool,
    },
    /// A device asks for an app an Available policy offers it (self-service), planned with
    /// the last applied policies and directory.
    RequestInstall {
        /// The device's serial number (or `device:SERIAL`).
        holder: String,
        /// The app's adam id.
        app: String,
    },
    /// Per location and app: owned, used, reserved, free; waitlists; blocked items; tokens.
    Report,
    /// Run the scheduler (syncs, event polling) and the HTTP listener until SIGTERM or Ctrl-C.
    ///
    /// The listener serves Apple's notifications (POST, at the --webhook-url path, checked
    /// against the bearer secret Apple was given), `GET /healthz`, and two admin endpoints,
    /// `GET /report` and `POST /sync` (an incremental sync of every location), which need
    /// `Authorization: Bearer $VPPKIT_ADMIN_TOKEN`: without that variable they answer 403,
    /// with a wrong or missing credential 401. A client gets --read-timeout seconds for a
    /// request's headers and again for its body (then 408 and the connection is closed);
    /// bodies over 256 KiB are answered 413. On SIGTERM or Ctrl-C it stops accepting, lets
    /// in-flight requests and the running sync finish within --shutdown-timeout, and exits 0.
    #[command(after_help = ENVIRONMENT)]
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port; the ready line says which).
        #[arg(
            long,
            env = "VPPKIT_LISTEN",
            default_value = "127.0.0.1:8086",
            value_name = "ADDR"
        )]
        listen: String,
        /// Seconds a client has to send a request's headers, and again its body.
        #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
        read_timeout: u64,
        /// Seconds in-flight requests and the running sync get after SIGTERM or Ctrl-C.
        #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=3600))]
        shutdown_timeout: u64,
    },
    /// Print a shell completion script on stdout, e.g.
    /// `manager completions bash > /etc/bash_completion.d/manager`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The whole demo against a simulator on loopback (the default command).
    Demo {
        /// A policy file instead of examples/data/policies.json.
        #[arg(long, value_name = "FILE")]
        policies: Option<PathBuf>,
        /// A directory file instead of examples/data/directory.json.
        #[arg(long, value_name = "FILE")]
        directory: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Add a content token (.vpptoken) as a new location.
    Add {
        /// The .vpptoken file.
        file: PathBuf,
        /// The location id [default: from the file name].
        #[arg(long)]
        name: Option<String>,
        /// Take the token even if another MDM holds it (it stops managing it).
        #[arg(long)]
        claim: bool,
    },
    /// List the tokens with their state and expiry.
    List,
    /// Replace a location's token with a renewed file (same organisational unit).
    Renew {
        /// The location id.
        id: String,
        /// The new .vpptoken file.
        file: PathBuf,
    },
    /// Remove a location and everything stored for it.
    Remove {
        /// The location id.
        id: String,
        /// First take back every revocable licence this manager assigned there.
        #[arg(long)]
        revoke: bool,
    },
}

/// Parses the command line, runs it, and turns an error into one line and an exit status.
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // The command line did not parse, so look for --json by hand.
            let json = std::env::args_os()
                .skip(1)
                .take_while(|a| a != "--")
                .any(|a| a == "--json");
            fail(json, "commandLine", &format!("{first} (see --help)"));
            return ExitCode::from(2);
        }
    };
    // Engine warnings matter to a long-running server; a one-shot command reports its
    // own failure in one line, and the engine's warnings (a wait for another instance's
    // lease, a lease taken over from a dead one). RUST_LOG overrides both.
    let default_filter = match cli.command {
        Some(Command::Serve { .. }) => "warn,vppkit_client=error",
        _ => "error,vppkit_engine=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    status::use_json(cli.log_format == LogFormat::Json);
    match cli.log_format {
        // Colours only on a terminal: a log file or a journal gets plain text.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            status::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The output (JSON or text) already shows it: one line on stderr, and stdout keeps
        // its one document.
        Err(ManagerError::Printed(e)) => {
            match &*e {
                ManagerError::Unfinished(left) => status::unfinished(left),
                e => status::error(&e.one_line()),
            }
            ExitCode::from(e.exit_status())
        }
        Err(e) => {
            fail(json, e.kind(), &e.one_line());
            ExitCode::from(e.exit_status())
        }
    }
}

/// Reports an error: one line on stderr, and with `--json` also a JSON object on stdout.
fn fail(json: bool, kind: &str, message: &str) {
    status::error(message);
    if json {
        let value = serde_json::json!({ "error": { "kind": kind, "message": message } });
        println!("{value}");
    }
}

fn options(cli: &Cli) -> OpenOptions {
    OpenOptions {
        db: cli.db.clone().unwrap_or_else(|| app::DEFAULT_DB.to_owned()),
        apple_url: cli.apple_url.trim_end_matches('/').to_owned(),
        webhook_url: cli.webhook_url.clone(),
    }
}

async fn open(cli: &Cli) -> Result<App> {
    App::open(options(cli), app::cipher_from_env()?).await
}

async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    let command = match &cli.command {
        Some(c) => c,
        None => &Command::Demo {
            policies: None,
            directory: None,
        },
    };
    match command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "manager", &mut script);
            commands::out(&String::from_utf8_lossy(&script));
        }
        Command::Demo {
            policies,
            directory,
        } => {
            let output = demo::run(DemoOptions {
                db: cli.db.clone(),
                policies: policies.clone(),
                directory: directory.clone(),
                json,
                quiet: false,
            })
            .await?;
            demo::print(&output, json);
        }
        Command::Token(t) => {
            let app = open(&cli).await?;
            match t {
                TokenCommand::Add { file, name, claim } => {
                    let added = commands::token_add(&app, file, name.clone(), *claim).await?;
                    emit(json, &added, |a| a.text());
                }
                TokenCommand::List => {
                    let rows = commands::token_list(&app).await?;
                    emit(json, &rows, |r| commands::token_list_text(r));
                }
                TokenCommand::Renew { id, file } => {
                    let state = commands::token_renew(&app, id, file).await?;
                    let value = serde_json::json!({ "location": id, "tokenState": state });
                    emit(json, &value, |_| format!("{id}: token renewed, {state}\n"));
                }
                TokenCommand::Remove { id, revoke } => {
                    commands::token_remove(&app, id, *revoke).await?;
                    let value =
                        serde_json::json!({ "location": id, "removed": true, "revoked": revoke });
                    emit(json, &value, |_| {
                        let how = if *revoke {
                            " (licences revoked first)"
                        } else {
                            ""
                        };
                        format!("{id}: removed{how}\n")
                    });
                }
            }
        }
        Command::Sync { location, full } => {
            let app = open(&cli).await?;
            let progress = progress::reporter(Mode::for_output(json));
            let rows = commands::sync(&app, location.as_deref(), *full, &progress).await?;
            emit(json, &rows, commands::sync_text);
            commands::sync_failures(&rows).map_err(ManagerError::printed)?;
        }
        Command::Plan {
            policies,
            directory,
        } => {
            let policies = apply::read_policies(policies)?;
            let directory = apply::read_directory(directory)?;
            let app = open(&cli).await?;
            let planned = apply::plan(&app, &policies, &directory).await?;
            emit(json, &planned, |p| p.text());
        }
        Command::Apply {
            policies,
            directory,
            confirm_releases,
        } => {
            let stop = serve::stop_signal()?;
            let policies = apply::read_policies(policies)?;
            let directory = apply::read_directory(directory)?;
            let app = open(&cli).await?;
            let applied = apply::apply(&app, policies, directory, *confirm_releases, stop).await?;
            emit(json, &applied, |a| a.text());
            if let Some(left) = applied.unfinished() {
                return Err(ManagerError::Unfinished(left).printed());
            }
        }
        Command::RequestInstall { holder, app: adam } => {
            let stop = serve::stop_signal()?;
            let app = open(&cli).await?;
            let r = apply::request_install(&app, holder, adam, stop).await?;
            emit(json, &r, |r| format!("{}: {}\n", r.outcome, r.explain));
        }
        Command::Report => {
            let app = open(&cli).await?;
            let r = report::build(&app).await?;
            emit(json, &r, report::render);
        }
        Command::Serve {
            listen,
            read_timeout,
            shutdown_timeout,
        } => {
            let serve_options = ServeOptions {
                listen: listen.clone(),
                read_timeout: Duration::from_secs(*read_timeout),
                shutdown_timeout: Duration::from_secs(*shutdown_timeout),
                admin_token: serve::admin_token_from_env()?,
            };
            serve::run(options(&cli), app::cipher_from_env()?, serve_options, json).await?;
        }
    }
    Ok(())
}
