//! `serve`: the long-running manager. The engine's scheduler syncs every location on its
//! interval and polls events in flight; an HTTP/1.1 listener receives Apple's notifications
//! and answers `GET /healthz`, and, for an operator holding the admin credential,
//! `GET /report` and `POST /sync`. Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
//!
//! What the listener protects itself against (`docs/operations.md`, "The manager's listener"):
//!
//! - **Admin endpoints** need `Authorization: Bearer $VPPKIT_ADMIN_TOKEN` (compared in
//!   constant time); without the variable they are off (403), with a wrong or missing
//!   credential the answer is 401. The notification route has its own credential, the
//!   bearer secret Apple was given when the location was subscribed.
//! - **Slow clients**: a client has `--read-timeout` seconds to send a request's headers
//!   (hyper's header read timeout, which also closes idle keep-alive sockets) and again
//!   that long to send its body (408, connection closed).
//! - **Large bodies**: at most the engine's `max_notification_body` (256 KiB) is read; a
//!   larger body, announced or sent, is answered 413 and the connection closed.
//! - **Shutdown**: on SIGTERM or Ctrl-C it stops accepting, lets in-flight requests finish,
//!   stops the scheduler (a sync already running may finish), all within
//!   `--shutdown-timeout`, prints what it did and exits 0.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use vppkit::client::verify_notification_bearer;
use vppkit::core::Secret;
use vppkit::engine::{ClaimConsent, SchedulerHandle, SyncKind, DEFAULT_MAX_NOTIFICATION_BODY};
use vppkit::store::SecretCipher;

use super::app::{self, App, OpenOptions};
use super::error::{ManagerError, Result};
use super::progress::{self, Mode};
use super::report;
use super::status;
use super::webhook::{self, Counters};

/// The environment variable holding the admin endpoints' bearer credential.
pub(crate) const ADMIN_TOKEN_ENV: &str = "VPPKIT_ADMIN_TOKEN";
/// The shortest admin credential accepted (a guessable one is refused at start).
pub(crate) const ADMIN_TOKEN_MIN_LEN: usize = 24;
/// The largest request body read: the engine's largest notification.
pub(crate) const MAX_BODY: usize = DEFAULT_MAX_NOTIFICATION_BODY;

/// How `serve` runs, from the command line and the environment.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// The address to listen on (`127.0.0.1:0` picks a free port; the ready line says which).
    pub(crate) listen: String,
    /// How long a client has to send a request's headers, and again its body.
    pub(crate) read_timeout: Duration,
    /// How long in-flight requests and the scheduler get after SIGTERM or Ctrl-C.
    pub(crate) shutdown_timeout: Duration,
    /// The admin endpoints' credential; `None` turns them off. Redacted in `Debug`.
    pub(crate) admin_token: Option<Secret>,
}

/// The admin credential from `VPPKIT_ADMIN_TOKEN`: `None` when unset or empty, an error
/// when shorter than [`ADMIN_TOKEN_MIN_LEN`].
pub(crate) fn admin_token_from_env() -> Result<Option<Secret>> {
    let Ok(value) = std::env::var(ADMIN_TOKEN_ENV) else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() < ADMIN_TOKEN_MIN_LEN {
        return Err(ManagerError::usage(format!(
            "{ADMIN_TOKEN_ENV} must be at least {ADMIN_TOKEN_MIN_LEN} characters (e.g. `openssl rand -base64 32`)"
        )));
    }
    Ok(Some(Secret::new(value)))
}

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

/// A short text answer that also closes the connection (its request may be unread).
fn closing(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Lets a request through only with the admin credential.
async fn require_admin(State(token): State<Option<Secret>>, req: Request, next: Next) -> Response {
    let Some(token) = token else {
        return (
            StatusCode::FORBIDDEN,
            "the admin endpoints are off: start `manager serve` with VPPKIT_ADMIN_TOKEN set\n",
        )
            .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(|v| verify_notification_bearer(v, &token)) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "admin request without a valid credential");
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "send Authorization: Bearer <VPPKIT_ADMIN_TOKEN>\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"vppkit-manager admin\""),
    );
    response
}

/// Reads the whole body before any handler runs: at most [`MAX_BODY`] bytes (413 otherwise,
/// also when `Content-Length` announces more), all of it within the read timeout (408).
async fn read_body(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                tracing::warn!(path = %parts.uri.path(), "request body not received in time");
                return closing(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time\n",
                );
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return closing(StatusCode::BAD_REQUEST, "request body could not be read\n")
            }
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > MAX_BODY {
                    return closing(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(buf))).await
}

/// What the HTTP side did on shutdown.
#[derive(Debug, Clone, Copy, Default)]
struct Drained {
    /// Connections still open when the shutdown timeout ran out (cut at exit).
    cut: usize,
}

/// Accepts connections until `stop` completes, then stops accepting and gives the open
/// connections `grace` to finish their requests (idle ones close at once).
async fn serve_http(
    listener: TcpListener,
    router: Router,
    read_timeout: Duration,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> Drained {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let service = TowerToHyperService::new(router);
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let conn = http.serve_connection(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn);
                let open = open.clone();
                open.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => Drained { cut: 0 },
        Err(_) => Drained {
            cut: open.load(Ordering::Relaxed),
        },
    }
}

/// Completes on SIGTERM (systemd, container runtimes) or Ctrl-C / SIGINT, with its name.
pub(crate) type StopSignal = std::pin::Pin<Box<dyn Future<Output = &'static str> + Send>>;

/// A [`StopSignal`]. The handlers are installed when this is called, so a signal that
/// arrives while the manager is still starting is not lost.
pub(crate) fn stop_signal() -> Result<StopSignal> {
    let net = |source| ManagerError::Net {
        what: "cannot install the signal handlers".into(),
        source,
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(net)?;
        let mut int = signal(SignalKind::interrupt()).map_err(net)?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "Ctrl-C",
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = net;
        Ok(Box::pin(async move {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }))
    }
}

/// Runs until SIGTERM or Ctrl-C, then shuts down gracefully and returns `Ok`.
pub(crate) async fn run(
    mut options: OpenOptions,
    cipher: SecretCipher,
    serve: ServeOptions,
    json: bool,
) -> Result<()> {
    let signal = stop_signal()?;
    let listen = serve.listen.as_str();
    if options.webhook_url.is_none() && !app::is_loopback(&format!("http://{listen}")) {
        return Err(ManagerError::usage(
            "Apple posts notifications only to https URLs: pass --webhook-url https://HOST/vpp/notifications and forward it to --listen",
        ));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ManagerError::Net {
            what: format!("cannot listen on {listen}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ManagerError::Net {
        what: format!("cannot read the address bound for {listen}"),
        source,
    })?;
    let shared_db =
        options.db.starts_with("postgres://") || options.db.starts_with("postgresql://");
    if options.webhook_url.is_none() && shared_db {
        status::info(
            "notifications go to this instance's own address: with several instances on one \
             database, each subscribes the locations to itself and only the last one started \
             hears Apple; give every instance the same --webhook-url (your load balancer's)",
        );
    }
    let webhook_url = options
        .webhook_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}{}", webhook::PATH));
    options.webhook_url = Some(webhook_url.clone());
    let app = Arc::new(App::open(options, cipher).await?);
    let counters = Arc::new(Counters::default());
    let (scheduler, handle) = app.engine.scheduler(progress::reporter(if json {
        Mode::Quiet
    } else {
        Mode::Lines
    }));
    let admin_on = serve.admin_token.is_some();
    let admin = Router::new()
        .route("/report", get(get_report))
        .route("/sync", post(post_sync))
        .route_layer(middleware::from_fn_with_state(
            serve.admin_token.clone(),
            require_admin,
        ))
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
    .route("/healthz", get(|| async { "ok" }))
    .layer(middleware::from_fn_with_state(
        serve.read_timeout,
        read_body,
    ));
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_http(
        listener,
        router,
        serve.read_timeout,
        async move {
            let _ = http_stopped.await;
        },
        serve.shutdown_timeout,
    ));

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
            Ok(()) => status::info(&format!(
                "{}: notifications subscribed at {webhook_url}",
                record.id
            )),
            Err(e) => status::info(&format!(
                "{}: notifications not subscribed: {}",
                record.id,
                e.one_line()
            )),
        }
    }

    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut scheduler = tokio::spawn(scheduler.run(async move {
        let _ = scheduler_stopped.await;
    }));
    let admin_word = if admin_on {
        "on (bearer VPPKIT_ADMIN_TOKEN)"
    } else {
        "off (set VPPKIT_ADMIN_TOKEN)"
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "listening": local.to_string(),
                "webhook": webhook_url,
                "admin": admin_on,
            })
        );
    } else {
        println!(
            "serving on {local}: notifications at {webhook_url}, GET /healthz; admin GET /report, POST /sync {admin_word}; SIGTERM or Ctrl-C to stop"
        );
    }

    let signal_name = signal.await;
    status::info(&format!(
        "{signal_name}: stopping (no new connections; in-flight requests and the running sync get {} s)",
        serve.shutdown_timeout.as_secs()
    ));
    let started = tokio::time::Instant::now();
    let _ = stop_http.send(());
    let _ = stop_scheduler.send(());
    let drained = server.await.unwrap_or_default();
    let remaining = serve.shutdown_timeout.saturating_sub(started.elapsed());
    let (scheduled, interrupted) = match tokio::time::timeout(remaining, &mut scheduler).await {
        Ok(Ok(r)) => (r.map_err(ManagerError::from), false),
        Ok(Err(e)) => (
            Err(ManagerError::usage(format!("the scheduler stopped: {e}"))),
            false,
        ),
        Err(_) => {
            scheduler.abort();
            (Ok(()), true)
        }
    };
    let n = counters.snapshot();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "stopped": true,
                "signal": signal_name,
                "notifications": n,
                "connectionsCut": drained.cut,
                "syncInterrupted": interrupted,
            })
        );
    } else {
        println!(
            "stopped on {signal_name}; notifications: {} applied, {} duplicates, {} refused",
            n.applied, n.duplicate, n.refused
        );
        if drained.cut > 0 {
            println!(
                "{} connection(s) still open after {} s were cut",
                drained.cut,
                serve.shutdown_timeout.as_secs()
            );
        }
        if interrupted {
            println!(
                "the running sync was interrupted; the next sync resumes from its last stored page"
            );
        }
    }
    scheduled
}
