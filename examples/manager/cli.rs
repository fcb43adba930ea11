//! The command line. Every error ends as one line on stderr and exit status 1 (2 for a
//! command line that cannot be parsed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::app::{self, App, OpenOptions};
use super::apply;
use super::commands::{self, emit};
use super::demo::{self, DemoOptions};
use super::error::Result;
use super::progress::{self, Mode};
use super::report;
use super::serve;

/// A licence manager for Apple Apps and Books (VPP), built from the vppkit crates.
///
/// With no command it runs the demo: a simulator of Apple's API, four content tokens, a
/// sync, the example policies applied, and a report.
#[derive(Debug, Parser)]
#[command(name = "manager", version, about, long_about = None)]
struct Cli {
    /// Database: a SQLite file path, `sqlite://PATH?mode=rwc` or `postgres://...`
    /// [default: vppkit-manager.db; the demo uses a fresh file in the temp directory].
    #[arg(long, global = true, env = "VPPKIT_DB", value_name = "URL")]
    db: Option<String>,
    /// Apple's Apps and Books API base (the simulator serves the same paths). Against a
    /// loopback URL event status is polled every 250 ms instead of Apple's 30 s.
    #[arg(long, global = true, env = "VPPKIT_APPLE_URL", value_name = "URL", default_value = app::APPLE_URL)]
    apple_url: String,
    /// Where Apple posts notifications: an https URL (or http://127.0.0.1... for the
    /// simulator). Tokens added with it are subscribed.
    #[arg(long, global = true, env = "VPPKIT_WEBHOOK_URL", value_name = "URL")]
    webhook_url: Option<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Plan and apply: licences at Apple, then MDM commands.
    Apply {
        /// The policy file (format: docs/policies.md).
        #[arg(long, value_name = "FILE")]
        policies: PathBuf,
        /// The directory file (users, devices, groups).
        #[arg(long, value_name = "FILE")]
        directory: PathBuf,
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
    /// Run the scheduler (syncs, event polling) and the notification webhook until Ctrl-C.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8086", value_name = "ADDR")]
        listen: String,
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
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    // Engine warnings matter to a long-running server; a one-shot command reports its
    // own failure in one line. RUST_LOG overrides both.
    let default_filter = match cli.command {
        Some(Command::Serve { .. }) => "warn,vppkit_client=error",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
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
                    emit(json, &rows, commands::token_list_text);
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
            commands::sync_failures(&rows)?;
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
        } => {
            let policies = apply::read_policies(policies)?;
            let directory = apply::read_directory(directory)?;
            let app = open(&cli).await?;
            let applied = apply::apply(&app, policies, directory).await?;
            emit(json, &applied, |a| a.text());
        }
        Command::RequestInstall { holder, app: adam } => {
            let app = open(&cli).await?;
            let r = apply::request_install(&app, holder, adam).await?;
            emit(json, &r, |r| format!("{}: {}\n", r.outcome, r.explain));
        }
        Command::Report => {
            let app = open(&cli).await?;
            let r = report::build(&app).await?;
            emit(json, &r, report::render);
        }
        Command::Serve { listen } => {
            serve::run(options(&cli), app::cipher_from_env()?, listen, json).await?;
        }
    }
    Ok(())
}
