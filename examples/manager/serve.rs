//! `serve`: the long-running manager. The engine's scheduler syncs every location on its
//! interval and polls events in flight; an axum server receives Apple's notifications and
//! answers `GET /report`, `POST /sync` and `GET /healthz`. Runs until Ctrl-C.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use vppkit::engine::{ClaimConsent, SchedulerHandle, SyncKind};
use vppkit::store::SecretCipher;

use super::app::{self, App, OpenOptions};
use super::error::{ManagerError, Result};
use super::progress::{self, Mode};
use super::report;
use super::webhook::{self, Counters};

/// The path part of a URL (`/` when it has none).
fn url_path(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

#[derive(Clone)]
struct Admin {
    app: Arc<App>,
    scheduler: SchedulerHandle,
}

async fn get_report(State(admin): State<Admin>) -> Response {
    match report::build(&admin.app).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.one_line()).into_response(),
    }
}

async fn post_sync(State(admin): State<Admin>) -> StatusCode {
    if admin.scheduler.sync_now(None, SyncKind::Incremental) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Runs until Ctrl-C.
pub(crate) async fn run(
    mut options: OpenOptions,
    cipher: SecretCipher,
    listen: &str,
    json: bool,
) -> Result<()> {
    let webhook_url = match &options.webhook_url {
        Some(url) => url.clone(),
        None if app::is_loopback(&format!("http://{listen}")) => {
            format!("http://{listen}{}", webhook::PATH)
        }
        None => {
            return Err(ManagerError::usage(
                "Apple posts notifications only to https URLs: pass --webhook-url https://HOST/vpp/notifications and forward it to --listen",
            ))
        }
    };
    options.webhook_url = Some(webhook_url.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ManagerError::Net {
            what: format!("cannot listen on {listen}"),
            source,
        })?;
    let app = Arc::new(App::open(options, cipher).await?);
    let counters = Arc::new(Counters::default());
    let (scheduler, handle) = app.engine.scheduler(progress::reporter(if json {
        Mode::Quiet
    } else {
        Mode::Lines
    }));
    let admin = Router::new()
        .route("/report", get(get_report))
        .route("/sync", post(post_sync))
        .with_state(Admin {
            app: app.clone(),
            scheduler: handle,
        });
    let router = webhook::router(
        app.engine.clone(),
        &url_path(&webhook_url),
        counters.clone(),
    )
    .merge(admin)
    .route("/healthz", get(|| async { "ok" }));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });

    // Subscribe the tokens this manager holds to this webhook (Apple sends a test
    // notification first, so the server must already be up).
    for record in app.store.locations().await? {
        let subscribed = record
            .notification
            .as_ref()
            .is_some_and(|n| n.url == webhook_url);
        if subscribed || !record.token_state.allows_writes() {
            continue;
        }
        let claimed = app
            .engine
            .claim(&record.id, ClaimConsent::OnlyIfUnclaimed)
            .await;
        match claimed.map(|_| ()).map_err(ManagerError::from) {
            Ok(()) => eprintln!("{}: notifications subscribed at {webhook_url}", record.id),
            Err(e) => eprintln!(
                "{}: notifications not subscribed: {}",
                record.id,
                e.one_line()
            ),
        }
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(scheduler.run(async move {
        let _ = stopped.await;
    }));
    if json {
        println!(
            "{}",
            serde_json::json!({ "listening": listen, "webhook": webhook_url })
        );
    } else {
        println!(
            "serving on {listen}: notifications at {webhook_url}, GET /report, POST /sync, GET /healthz; Ctrl-C to stop"
        );
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|source| ManagerError::Net {
            what: "cannot wait for Ctrl-C".into(),
            source,
        })?;
    let _ = stop.send(());
    let scheduled = scheduler.await;
    server.abort();
    let n = counters.snapshot();
    if json {
        println!(
            "{}",
            serde_json::json!({ "stopped": true, "notifications": n })
        );
    } else {
        println!(
            "stopped; notifications: {} applied, {} duplicates, {} refused",
            n.applied, n.duplicate, n.refused
        );
    }
    match scheduled {
        Ok(r) => Ok(r?),
        Err(e) => Err(ManagerError::usage(format!("the scheduler stopped: {e}"))),
    }
}
