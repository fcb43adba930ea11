//! The notification receiver inside an axum app: Apple POSTs to your MDM's HTTPS
//! endpoint; hand the headers and body to `Engine::handle_notification` and answer with
//! the status it gives (401 forged, 413 too large, 503 try again later, 200 applied).
//!
//! Runs against the simulator: `cargo run --example webhook_axum`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use vppkit::core::{AdamId, AssetKey, LocationId, MdmInfo, PricingParam, Secret};
use vppkit::engine::{AddToken, CommandSink, Engine, EngineConfig, QueuedCommand, SinkError};
use vppkit::engine::{
    NotificationOutcome, ProgressReporter, ReportOptions, SyncKind, WebhookConfig,
};
use vppkit::store::SecretCipher;
use vppkit::store_sqlite::SqliteStore;
use vppkit_sim::{demo, Preset, SimClock, Simulator};

/// The vppkit route of your MDM's web app.
async fn apple_vpp(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let status = match engine.handle_notification(headers, &body).await {
        Ok(outcome) => {
            let what = match &outcome {
                NotificationOutcome::Applied { location } => format!("applied to {location}"),
                NotificationOutcome::Duplicate => "a duplicate, nothing done".to_owned(),
                NotificationOutcome::Test => "a test notification".to_owned(),
                NotificationOutcome::Ignored(why) => format!("ignored: {why}"),
                NotificationOutcome::Deferred(why) => format!("deferred (answered 503): {why}"),
                _ => "accepted".to_owned(),
            };
            println!("  notification accepted: {what}");
            outcome.http_status()
        }
        Err(refused) => {
            println!("  notification refused: {refused}");
            refused.http_status()
        }
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

struct NoDevices;

#[async_trait::async_trait]
impl CommandSink for NoDevices {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::builder()
        .preset(Preset::Demo)
        .clock(SimClock::real_time(Duration::from_millis(50)))
        .allow_http_loopback_notifications(true) // Apple posts to https only
        .start()
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/apple/vpp", listener.local_addr()?);
    let secret = Secret::new(uuid::Uuid::new_v4().simple().to_string());

    let cipher = SecretCipher::from_base64(SecretCipher::generate_key_base64().expose())?;
    let store = Arc::new(SqliteStore::in_memory(cipher).await?);
    let mdm = MdmInfo::new("webhook-example", "vppkit example", "localhost")?;
    let config =
        EngineConfig::new(mdm).with_webhook(WebhookConfig::loopback_http(&url, secret.clone())?);
    let engine = Engine::builder(store, config)
        .sink(Arc::new(NoDevices))
        .apple_base_url(sim.base_url())
        .build()?;

    // Your MDM's app, with the vppkit route mounted next to its own.
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/apple/vpp", post(apple_vpp))
        .with_state(engine.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let token = sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::SPRINGFIELD_HIGH);
    let school = LocationId::new("springfield-high")?;
    println!("onboarding (the simulator sends a TEST_NOTIFICATION when subscribing):");
    let added = engine
        .add_token(AddToken::new(
            school.clone(),
            token.ok_or("no token")?.content,
        ))
        .await?;
    if !added.subscribed {
        return Err(format!(
            "subscribing failed: {}",
            added.subscription_error.unwrap_or_default()
        )
        .into());
    }
    engine
        .sync(&school, SyncKind::Full, &ProgressReporter::none())
        .await?;

    println!("a forged notification (wrong secret):");
    let forged = reqwest::Client::new()
        .post(&url)
        .bearer_auth("guess")
        .body("{}")
        .send()
        .await?;
    println!("  answered {}", forged.status());

    println!("Apple: 10 more licences of Chem Lab 3D bought (ASSET_COUNT):");
    let chem = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
    sim.control()
        .buy_licences(demo::SPRINGFIELD_HIGH, &chem, 10)?;
    sim.control()
        .flush_notifications(Duration::from_secs(5))
        .await;
    let report = engine.report(&school, ReportOptions::summary()).await?;
    let app = report
        .apps
        .iter()
        .find(|a| a.asset == chem)
        .ok_or("no Chem Lab 3D")?;
    println!(
        "Chem Lab 3D now: {} owned, {} used, {} free (no sync needed)",
        app.owned, app.used, app.free
    );
    sim.shutdown().await;
    Ok(())
}
