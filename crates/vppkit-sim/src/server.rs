//! HTTP: routing, method and content-type checks, auth, throttling, faults.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};
use vppkit_core::{format_apple_datetime, MdmInfo};

use crate::catalog::{lookup_entry, ARTWORK_PNG};
use crate::codes::{ApiError, Code, SERVICE_CONFIG_CODES};
use crate::control::ServerErrorKind;
use crate::control_http::CONTROL_PREFIX;
use crate::location::{Location, NotifyConfig, RateWindow};
use crate::notify::{lock, Outgoing};
use crate::query::Query;
use crate::sim::{page_size, read, token_now_expired, Shared, Simulator, INVITE_PATH, LOOKUP_PATH};
use crate::truth::EventType;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Notification types a client may subscribe to.
const SUBSCRIBABLE: &[&str] = &[
    "TEST_NOTIFICATION",
    "ASSET_MANAGEMENT",
    "USER_MANAGEMENT",
    "USER_ASSOCIATED",
    "ASSET_COUNT",
    "SUBSCRIPTION_MANAGEMENT",
    "SUBSCRIPTION_COUNT",
    "UNLIMITED_ASSET",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ServiceConfig,
    ClientConfig,
    Assets,
    Assignments,
    Associate,
    Disassociate,
    Revoke,
    Status,
    Users,
    CreateUsers,
    UpdateUsers,
    RetireUsers,
}

impl Endpoint {
    fn route(path: &str) -> Option<Self> {
        Some(match path.trim_end_matches('/') {
            "/service/config" => Endpoint::ServiceConfig,
            "/client/config" => Endpoint::ClientConfig,
            "/assets" => Endpoint::Assets,
            "/assignments" => Endpoint::Assignments,
            "/assets/associate" => Endpoint::Associate,
            "/assets/disassociate" => Endpoint::Disassociate,
            "/assets/revoke" => Endpoint::Revoke,
            "/status" => Endpoint::Status,
            "/users" => Endpoint::Users,
            "/users/create" => Endpoint::CreateUsers,
            "/users/update" => Endpoint::UpdateUsers,
            "/users/retire" => Endpoint::RetireUsers,
            _ => return None,
        })
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Endpoint::ClientConfig => method == Method::GET || method == Method::POST,
            Endpoint::ServiceConfig
            | Endpoint::Assets
            | Endpoint::Assignments
            | Endpoint::Status
            | Endpoint::Users => method == Method::GET,
            _ => method == Method::POST,
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_ok(body: Vec<u8>) -> Response<Bytes> {
    respond(200, "application/json;charset=UTF-8", body)
}

/// The HTTP status of 9622: 200 with the error body, as Apple's real service answers
/// (401 after [`Control::set_invalid_token_http_200`]`(false)`).
///
/// [`Control::set_invalid_token_http_200`]: crate::Control::set_invalid_token_http_200
fn invalid_token_status(shared: &Shared) -> u16 {
    if shared.invalid_token_http_200.load(Ordering::Relaxed) {
        200
    } else {
        401
    }
}

fn api_error(e: &ApiError) -> Response<Bytes> {
    respond(e.code.status(), "application/json;charset=UTF-8", e.body())
}

fn not_found() -> Response<Bytes> {
    respond(404, "text/plain; charset=utf-8", b"Not Found".to_vec())
}

/// The axum router: every path goes to [`Simulator::handle`].
pub(crate) fn router(sim: Simulator) -> axum::Router {
    axum::Router::new().fallback(move |req: Request<Body>| {
        let sim = sim.clone();
        async move {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                let (parts, body) = api_error(&ApiError::new(Code::InvalidArgument)).into_parts();
                return Response::from_parts(parts, Body::from(body));
            };
            let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
            let resp = sim.handle(Request::from_parts(parts, bytes)).await;
            // Never the query or headers: the itvt cookie and bearer are secrets.
            tracing::debug!(%method, path, status = resp.status().as_u16(), "request");
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, Body::from(body))
        }
    })
}

impl Simulator {
    /// Answers one HTTP request in process, exactly as the server would (the
    /// server is a thin adapter around this). Useful for benchmarks and for
    /// embedding the simulator behind another HTTP stack.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        let shared = &self.shared;
        if shared.config.control_api {
            // The control API is a test tool: no added latency, no faults.
            if let Some(rest) = req.uri().path().strip_prefix(CONTROL_PREFIX) {
                if rest.is_empty() || rest.starts_with('/') {
                    return crate::control_http::handle(
                        &self.control(),
                        req.method(),
                        rest,
                        req.uri().query(),
                        req.body(),
                    )
                    .await;
                }
            }
        }
        let latency = *lock(&shared.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let path = req.uri().path().to_owned();
        if let Some(rest) = path.strip_prefix("/mdm/v2") {
            if let Some(resp) = injected_fault(shared) {
                return resp;
            }
            let Some(ep) = Endpoint::route(rest) else {
                return not_found();
            };
            if !ep.allows(req.method()) {
                return api_error(&ApiError::new(Code::MethodNotSupported));
            }
            return match self.v2(ep, req).await {
                Ok(r) => r,
                Err(e) => e,
            };
        }
        if path == LOOKUP_PATH {
            return lookup(shared, &req);
        }
        if path == INVITE_PATH {
            return invite(shared, &req);
        }
        if path.starts_with("/artwork/") {
            return respond(200, "image/png", ARTWORK_PNG.to_vec());
        }
        not_found()
    }

    async fn v2(
        &self,
        ep: Endpoint,
        req: Request<Bytes>,
    ) -> Result<Response<Bytes>, Response<Bytes>> {
        let shared = &self.shared;
        if ep == Endpoint::ServiceConfig {
            return Ok(json_ok(service_config(shared)));
        }
        let (idx, token_exp) = authenticate(shared, req.headers())
            .map_err(|(e, status)| respond(status, "application/json;charset=UTF-8", e.body()))?;
        let loc_arc = shared.location(idx).ok_or_else(|| {
            let e = ApiError::new(Code::InvalidToken);
            respond(
                invalid_token_status(shared),
                "application/json;charset=UTF-8",
                e.body(),
            )
        })?;
        let limits = &shared.config.limits;
        let is_post = req.method() == Method::POST;
        let body: Value = {
            let mut loc = lock(&loc_arc);
            let out = loc.process_due(shared.clock.now(), false);
            let throttled = shared.throttle.load(Ordering::Relaxed)
                && over_limit(&mut loc, limits.max_request_per_second);
            drop(loc);
            shared.notifier.enqueue(out);
            if throttled {
                let mut r = api_error(&ApiError::new(Code::TooManyRequests));
                let secs = shared.throttle_retry_after.load(Ordering::Relaxed);
                if secs > 0 {
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        r.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                return Err(r);
            }
            if is_post {
                let ct = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !ct
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
                {
                    return Err(api_error(&ApiError::new(Code::ContentTypeNotSupported)));
                }
                serde_json::from_slice(req.body())
                    .map_err(|_| api_error(&ApiError::new(Code::InvalidArgument)))?
            } else {
                Value::Null
            }
        };
        let query = Query::parse(req.uri().query());
        let due = shared.clock.now() + shared.clock.event_delay();
        let page = page_size(shared);
        let result: Result<Vec<u8>, ApiError> = match ep {
            Endpoint::ClientConfig if is_post => {
                return self
                    .post_client_config(idx, &body, &token_exp)
                    .await
                    .map_err(|e| api_error(&e));
            }
            Endpoint::ClientConfig => Ok(lock(&loc_arc).client_config(&token_exp)),
            Endpoint::Assets => lock(&loc_arc).get_assets(&query, &token_exp, page),
            Endpoint::Assignments => lock(&loc_arc).get_assignments(&query, &token_exp, page),
            Endpoint::Users => lock(&loc_arc).get_users(&query, &token_exp, page),
            Endpoint::Status => lock(&loc_arc).get_status(&query, &token_exp),
            Endpoint::Associate | Endpoint::Disassociate => {
                let kind = if ep == Endpoint::Associate {
                    EventType::Associate
                } else {
                    EventType::Disassociate
                };
                let mut loc = lock(&loc_arc);
                loc.submit_manage(kind, &body, limits, due)
                    .map(|id| event_body(&loc, id, &token_exp))
            }
            Endpoint::Revoke => {
                let mut loc = lock(&loc_arc);
                loc.submit_revoke(&body, limits, due)
                    .map(|id| event_body(&loc, id, &token_exp))
            }
            Endpoint::CreateUsers | Endpoint::UpdateUsers | Endpoint::RetireUsers => {
                let kind = match ep {
                    Endpoint::CreateUsers => EventType::Create,
                    Endpoint::UpdateUsers => EventType::Update,
                    _ => EventType::Retire,
                };
                let mut loc = lock(&loc_arc);
                loc.submit_users(kind, &body, limits, due)
                    .map(|id| event_body(&loc, id, &token_exp))
            }
            Endpoint::ServiceConfig => Ok(service_config(shared)),
        };
        let list = match ep {
            Endpoint::Assets => Some("assets"),
            Endpoint::Assignments => Some("assignments"),
            Endpoint::Users => Some("users"),
            _ => None,
        };
        let result = match (result, list) {
            (Ok(bytes), Some(list)) if shared.unreadable_records.load(Ordering::Relaxed) => {
                Ok(with_unreadable_record(bytes, list))
            }
            (other, _) => other,
        };
        result.map(json_ok).map_err(|e| api_error(&e))
    }

    async fn post_client_config(
        &self,
        idx: u32,
        body: &Value,
        token_exp: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        let shared = &self.shared;
        let change = validate_client_config(body, shared)?;
        let loc_arc = shared
            .location(idx)
            .ok_or_else(|| ApiError::new(Code::InvalidToken))?;
        if let Some(Some(target)) = &change.notify {
            let test = {
                let mut loc = lock(&loc_arc);
                let id = loc.next_uuid();
                Outgoing::new(&loc.uid, id, "TEST_NOTIFICATION", json!({}), target.clone())
            };
            if !shared.notifier.send_now(&test).await {
                return Err(ApiError::new(Code::NotificationUrlUnreachable));
            }
        }
        let mut loc = lock(&loc_arc);
        if let Some(info) = change.mdm_info {
            loc.mdm_info = Some(info);
        }
        if let Some(notify) = change.notify {
            loc.notify = notify;
        }
        if let Some(types) = change.types {
            loc.subscribed = types;
        }
        Ok(json_ok(loc.client_config(token_exp)))
    }
}

fn event_body(loc: &Location, id: uuid::Uuid, token_exp: &str) -> Vec<u8> {
    crate::wire::to_vec(&crate::wire::EventOut {
        event_id: id.hyphenated().to_string(),
        mdm_info: crate::wire::MdmOut::of(loc.mdm_info.as_ref()),
        token_expiration_date: token_exp,
        u_id: loc.uid.as_str(),
    })
}

fn injected_fault(shared: &Shared) -> Option<Response<Bytes>> {
    let mut faults = lock(&shared.server_faults);
    let f = faults.as_mut()?;
    if f.remaining == 0 {
        *faults = None;
        return None;
    }
    f.remaining -= 1;
    let code = match f.kind {
        ServerErrorKind::Unavailable => Code::TemporarilyUnavailable,
        _ => Code::Internal,
    };
    let mut r = api_error(&ApiError::new(code));
    if let Ok(v) = HeaderValue::from_str(&f.retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(r)
}

fn over_limit(loc: &mut Location, per_second: u32) -> bool {
    let now = Instant::now();
    let w = loc.rate.get_or_insert(RateWindow {
        started: now,
        count: 0,
    });
    if now.duration_since(w.started).as_millis() >= 1000 {
        w.started = now;
        w.count = 0;
    }
    w.count += 1;
    w.count > per_second
}

/// Auth in Apple's order: 9601, 9722, 9622, 9625, 9621. The error comes with
/// its HTTP status (9622 may be 200 behind the quirk switch).
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(u32, String), (ApiError, u16)> {
    let fail = |code: Code| (ApiError::new(code), code.status());
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(fail(Code::LoginRequired));
    };
    let text = value.to_str().unwrap_or("");
    let token = match text.strip_prefix("Bearer ") {
        Some(t) if !t.trim().is_empty() => t.trim(),
        _ => return Err(fail(Code::BadAuthorizationHeader)),
    };
    let tokens = read(&shared.tokens);
    let Some(rec) = tokens.get(token) else {
        return Err((
            ApiError::new(Code::InvalidToken),
            invalid_token_status(shared),
        ));
    };
    if rec.revoked {
        return Err(fail(Code::TokenRevoked));
    }
    if token_now_expired(rec) {
        return Err(fail(Code::TokenExpired));
    }
    Ok((rec.location, format_apple_datetime(rec.expires_at)))
}

fn service_config(shared: &Shared) -> Vec<u8> {
    let root = shared.root();
    let base = format!("{root}/mdm/v2");
    let codes: Vec<Value> = SERVICE_CONFIG_CODES
        .iter()
        .map(|c| json!({"errorMessage": c.message(), "errorNumber": c.number()}))
        .collect();
    let body = json!({
        "errorCodes": codes,
        "limits": shared.config.limits.to_json(),
        "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"],
        "urls": {
            "associateAssets": format!("{base}/assets/associate"),
            "clientConfig": format!("{base}/client/config"),
            "contentMetadataLookup": format!("{root}{LOOKUP_PATH}"),
            "createUsers": format!("{base}/users/create"),
            "disassociateAssets": format!("{base}/assets/disassociate"),
            "eventStatus": format!("{base}/status"),
            "getAssets": format!("{base}/assets"),
            "getAssignments": format!("{base}/assignments"),
            "getUsers": format!("{base}/users"),
            "invitationEmail": format!("{root}{INVITE_PATH}?inviteCode=%25inviteCode%25&mt=8"),
            "retireUsers": format!("{base}/users/retire"),
            "revokeAssets": format!("{base}/assets/revoke"),
            "updateUsers": format!("{base}/users/update"),
        },
    });
    crate::wire::to_vec(&body)
}

/// A validated POST client/config.
#[derive(Debug)]
struct ConfigChange {
    mdm_info: Option<MdmInfo>,
    /// `Some(None)`: unsubscribe (both fields given empty).
    notify: Option<Option<NotifyConfig>>,
    types: Option<Vec<String>>,
}

/// Order: 9602 (shape), 9723, 9724, 9725, 9713, 9710, 9711, 9712, 9602 (types).
fn validate_client_config(body: &Value, shared: &Shared) -> Result<ConfigChange, ApiError> {
    if !body.is_object() {
        return Err(ApiError::new(Code::InvalidArgument));
    }
    let limits = &shared.config.limits;
    let mdm_info = match body.get("mdmInfo") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let field = |k: &str| match m.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                _ => Err(ApiError::new(Code::MdmInfoIncomplete)),
            };
            let (id, name, metadata) = (field("id")?, field("name")?, field("metadata")?);
            if id.chars().count() > limits.max_mdm_id_length {
                return Err(ApiError::new(Code::MdmIdTooLong));
            }
            if name.chars().count() > limits.max_mdm_name_length {
                return Err(ApiError::new(Code::MdmNameTooLong));
            }
            if metadata.chars().count() > limits.max_mdm_metadata_length {
                return Err(ApiError::new(Code::MdmMetadataTooLong));
            }
            Some(MdmInfo::new_unchecked(id, name, metadata))
        }
        Some(_) => return Err(ApiError::new(Code::MdmInfoIncomplete)),
    };
    let text = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(Code::InvalidArgument)),
    };
    let url = text("notificationUrl")?;
    let auth = text("notificationAuthToken")?;
    let notify = match (url, auth) {
        (None, None) => None,
        (Some(u), Some(a)) if u.is_empty() && a.is_empty() => Some(None),
        (Some(u), Some(a)) if !u.is_empty() && !a.is_empty() => {
            let max = limits.max_notification_length;
            if u.chars().count() > max || a.chars().count() > max {
                return Err(ApiError::new(Code::NotificationTooLong));
            }
            if !valid_notification_url(&u, shared.config.allow_http_loopback_notifications) {
                return Err(ApiError::new(Code::NotificationUrlInvalid));
            }
            Some(Some(NotifyConfig {
                url: u,
                auth: vppkit_core::Secret::new(a),
            }))
        }
        _ => return Err(ApiError::new(Code::NotificationPairing)),
    };
    let types = match body.get("notificationTypes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for t in items {
                match t.as_str() {
                    Some(s) if SUBSCRIBABLE.contains(&s) => {
                        if !out.iter().any(|o: &String| o == s) {
                            out.push(s.to_owned());
                        }
                    }
                    _ => return Err(ApiError::new(Code::InvalidArgument)),
                }
            }
            Some(out)
        }
        Some(_) => return Err(ApiError::new(Code::InvalidArgument)),
    };
    Ok(ConfigChange {
        mdm_info,
        notify,
        types,
    })
}

/// HTTPS with a host and no query or fragment; `http://` to a loopback host
/// when the simulator allows it.
pub(crate) fn valid_notification_url(text: &str, allow_http_loopback: bool) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let Some(host) = url.host() else {
        return false;
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return false;
    }
    match url.scheme() {
        "https" => true,
        "http" if allow_http_loopback => match host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        },
        _ => false,
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The legacy metadata lookup: `{"results": {"<adamId>": {...}}}`.
fn lookup(shared: &Arc<Shared>, req: &Request<Bytes>) -> Response<Bytes> {
    const FORBIDDEN: &str = "Invalid Stoken or Empty/Null ids Request Parameter";
    let forbidden = || {
        respond(
            403,
            "application/json;charset=UTF-8",
            crate::wire::to_vec(&json!({"errorMessage": FORBIDDEN, "status": 403})),
        )
    };
    if req.method() != Method::GET {
        return respond(
            405,
            "text/plain; charset=utf-8",
            b"Method Not Allowed".to_vec(),
        );
    }
    let q = Query::parse(req.uri().query());
    let ids: Vec<u64> = q
        .get("id")
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if ids.is_empty() {
        return forbidden();
    }
    // A custom (B2B) app is visible only with a valid token of a location owning it.
    let owner = match cookie(req.headers(), "itvt") {
        None => None,
        Some(token) => {
            let tokens = read(&shared.tokens);
            match tokens.get(token) {
                Some(rec) if !rec.revoked && !token_now_expired(rec) => Some(rec.location),
                _ => return forbidden(),
            }
        }
    };
    let owner_loc = owner.and_then(|i| shared.location(i));
    let cc = q.get("cc").unwrap_or("us").to_ascii_lowercase();
    let root = shared.root();
    let catalog = read(&shared.catalog);
    let mut results = serde_json::Map::new();
    for id in ids {
        let Some(entry) = catalog.get(id) else {
            continue;
        };
        if entry.custom {
            let owned = owner_loc.as_ref().is_some_and(|l| {
                let l = lock(l);
                [
                    vppkit_core::PricingParam::Stdq,
                    vppkit_core::PricingParam::Plus,
                ]
                .iter()
                .any(|p| l.asset_idx(id, *p).is_some())
            });
            if !owned {
                continue;
            }
        }
        results.insert(id.to_string(), lookup_entry(&root, id, entry, &cc));
    }
    json_ok(crate::wire::to_vec(&json!({ "results": results })))
}

/// The invitation link: accepting moves the user to Associated.
fn invite(shared: &Arc<Shared>, req: &Request<Bytes>) -> Response<Bytes> {
    let q = Query::parse(req.uri().query());
    let Some(code) = q.get("inviteCode") else {
        return respond(
            400,
            "text/plain; charset=utf-8",
            b"missing inviteCode".to_vec(),
        );
    };
    let locations: Vec<_> = read(&shared.locations).clone();
    for loc in locations {
        let out = {
            let mut l = lock(&loc);
            let Some(user) = l.user_by_invite(code) else {
                continue;
            };
            l.accept_invitation(&user)
        };
        return match out {
            Ok(n) => {
                shared.notifier.enqueue(n.into_iter().collect());
                respond(
                    200,
                    "text/html; charset=utf-8",
                    b"<html><body>Invitation accepted.</body></html>".to_vec(),
                )
            }
            Err(_) => not_found(),
        };
    }
    not_found()
}

/// A page with one more record in `list`, of a shape no client can read; on
/// an assets page, the first asset's own record in that shape too.
fn with_unreadable_record(bytes: Vec<u8>, list: &str) -> Vec<u8> {
    let Ok(mut page) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    let unreadable = json!({ "unexpected": true });
    match page.get_mut(list).and_then(Value::as_array_mut) {
        Some(items) => {
            if list == "assets" {
                if let Some(first) = items.first_mut() {
                    first["adamId"] = unreadable.clone();
                }
            }
            items.push(json!({ "adamId": unreadable }));
        }
        None => return bytes,
    }
    serde_json::to_vec(&page).unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_urls() {
        assert!(valid_notification_url(
            "https://mdm.example.org/vpp/notify",
            false
        ));
        assert!(!valid_notification_url(
            "https://mdm.example.org/n?x=1",
            false
        ));
        assert!(!valid_notification_url("http://127.0.0.1:8080/n", false));
        assert!(valid_notification_url("http://127.0.0.1:8080/n", true));
        assert!(valid_notification_url("http://localhost/n", true));
        assert!(!valid_notification_url("http://example.org/n", true));
        assert!(!valid_notification_url("not a url", true));
        assert!(!valid_notification_url("ftp://example.org/n", true));
    }
}
