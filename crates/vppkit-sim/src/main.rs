//! `vppkit-sim`: serve the simulator for an MDM written in any language.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use vppkit_sim::{Preset, SimClock, Simulator};

/// A faithful simulator of Apple's Apps and Books (VPP) API v2.
#[derive(Debug, Parser)]
#[command(name = "vppkit-sim", version)]
struct Args {
    /// Seeded scenario: empty, demo or scale.
    #[arg(long, default_value = "demo")]
    preset: Preset,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Write the accepted .vpptoken files into this directory.
    #[arg(long)]
    token_dir: Option<PathBuf>,
    /// Seed of generated ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Items per page.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// How long events stay PENDING, in milliseconds (of simulated time with
    /// --manual-clock).
    #[arg(long, default_value_t = 200)]
    event_delay_ms: u64,
    /// Accept http:// notification URLs on loopback hosts.
    #[arg(long)]
    allow_http_notifications: bool,
    /// Throttle at maxRequestPerSecond (9646, HTTP 429).
    #[arg(long)]
    throttle: bool,
    /// Simulated time moves only through the control API
    /// (POST /_sim/v1/clock/advance); events then stay PENDING until then.
    #[arg(long)]
    manual_clock: bool,
    /// Do not serve the control API (/_sim/v1): only Apple's paths.
    #[arg(long)]
    no_control_api: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let sim = Simulator::builder()
        .preset(args.preset)
        .seed(args.seed)
        .page_size(args.page_size)
        .clock(if args.manual_clock {
            SimClock::manual().with_event_delay(Duration::from_millis(args.event_delay_ms))
        } else {
            SimClock::real_time(Duration::from_millis(args.event_delay_ms))
        })
        .allow_http_loopback_notifications(args.allow_http_notifications)
        .throttle(args.throttle)
        .control_api(!args.no_control_api)
        .listen(args.listen)
        .start()
        .await?;
    println!("vppkit-sim serving preset {:?}", args.preset);
    println!("base URL:        {}", sim.base_url());
    println!("service config:  {}/service/config", sim.base_url());
    println!("metadata lookup: {}", sim.metadata_url());
    match sim.control_url() {
        Some(url) => println!("control API:     {url}"),
        None => println!("control API:     off"),
    }
    if let Some(dir) = &args.token_dir {
        std::fs::create_dir_all(dir)?;
    }
    for t in sim.token_files() {
        println!();
        println!("location {:?} (uId {})", t.location_name, t.uid);
        if let Some(dir) = &args.token_dir {
            let path = dir.join(&t.file_name);
            std::fs::write(&path, t.content.expose())?;
            println!("  token file: {}", path.display());
        }
        println!("  token: {}", t.content.expose());
    }
    println!();
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
