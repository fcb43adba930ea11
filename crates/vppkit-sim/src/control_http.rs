//! The control API over HTTP: every [`Control`] hook and ground-truth read-out
//! under [`CONTROL_PREFIX`], JSON in and out, for tests written in any
//! language. A thin adapter: every route calls one `Control` method.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use vppkit_core::{
    format_apple_datetime, parse_apple_datetime, AccountType, AdamId, Asset, AssetKey, Holder,
    MdmInfo, Platform, PricingParam, ProductType, Uid, UNLIMITED_COUNT,
};

use crate::control::{Control, ServerErrorKind};
use crate::query::Query;
use crate::sim::{read, token_now_expired, LOOKUP_PATH};
use crate::spec::{AssetSpec, LocationSpec};
use crate::truth::{DeliveryOutcome, EventRecord, LocationSummary, NotificationRecord, TokenFile};
use crate::{NotificationFaults, SimError};

/// Where the control API is served. Apple's paths start with `/mdm/v2`,
/// `/WebObjects` or `/artwork`, so this cannot collide with them.
pub(crate) const CONTROL_PREFIX: &str = "/_sim/v1";

/// Longest wait `notifications/flush` accepts.
const MAX_FLUSH: Duration = Duration::from_secs(600);

/// A control API error: `{error, message}` with an HTTP status.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    error: &'static str,
    message: String,
    allow: Option<&'static str>,
}

impl HttpError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            allow: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn response(self) -> Response<Bytes> {
        let body = json!({ "error": self.error, "message": self.message });
        let mut r = respond(self.status, &body);
        if let Some(allow) = self.allow {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        r
    }
}

impl From<SimError> for HttpError {
    fn from(e: SimError) -> Self {
        let (status, error) = match &e {
            SimError::UnknownLocation(_) => (StatusCode::NOT_FOUND, "unknown_location"),
            SimError::UnknownAsset { .. } => (StatusCode::NOT_FOUND, "unknown_asset"),
            SimError::UnknownUser { .. } => (StatusCode::NOT_FOUND, "unknown_user"),
            SimError::UnknownToken => (StatusCode::NOT_FOUND, "unknown_token"),
            SimError::DuplicateLocation(_) => (StatusCode::CONFLICT, "duplicate_location"),
            SimError::DuplicateAsset { .. } => (StatusCode::CONFLICT, "duplicate_asset"),
            SimError::NotRegistered { .. } => (StatusCode::CONFLICT, "not_registered"),
            SimError::NotEnoughLicences { .. } => (StatusCode::CONFLICT, "not_enough_licences"),
            SimError::NotRevocable { .. } => (StatusCode::CONFLICT, "not_revocable"),
            SimError::ManualClockRequired => (StatusCode::CONFLICT, "manual_clock_required"),
            SimError::Bind { .. } | SimError::Io { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        // SimError's messages never carry a token (see its documentation).
        Self::new(status, error, e.to_string())
    }
}

type Answer = Result<Response<Bytes>, HttpError>;

fn respond(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(body: Value) -> Answer {
    Ok(respond(StatusCode::OK, &body))
}

fn created(body: Value) -> Answer {
    Ok(respond(StatusCode::CREATED, &body))
}

/// Decodes `%XX` escapes of one path segment.
fn decode_segment(raw: &str) -> Result<String, HttpError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| HttpError::bad_request("malformed percent escape in the path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::bad_request("the path is not UTF-8"))
}

/// A body as JSON; an empty body reads as `{}`.
fn body<T: DeserializeOwned>(raw: &[u8]) -> Result<T, HttpError> {
    let raw: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        raw
    };
    serde_json::from_slice(raw).map_err(|e| HttpError::bad_request(format!("invalid body: {e}")))
}

/// Every route of the control API (path after [`CONTROL_PREFIX`]).
#[derive(Debug)]
enum Route {
    Index,
    Locations,
    Location(String),
    AllTokens,
    Tokens(String),
    TokenAction(String, usize, TokenAction),
    TokenExpiry(String, usize),
    MdmInfo(String),
    Assets(String),
    Asset(String, String),
    AssetCount(String, String, bool),
    Foreign(String, String, bool),
    Assignments(String),
    AssignmentCount(String),
    Users(String),
    AcceptInvitation(String, String),
    Events(String),
    Notifications(String),
    HeapBytes(String),
    Advance,
    CompletePending,
    Throttling,
    ServerErrors,
    Latency,
    InvalidTokenHttp200,
    PageSize,
    NotificationFaults,
    Flush,
}

#[derive(Debug, Clone, Copy)]
enum TokenAction {
    Expire,
    Revoke,
    Restore,
}

impl Route {
    fn parse(rest: &str) -> Result<Option<Route>, HttpError> {
        let trimmed = rest.trim_matches('/');
        let segs = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed
                .split('/')
                .map(decode_segment)
                .collect::<Result<Vec<_>, _>>()?
        };
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let token_index = |n: &str| {
            n.parse::<usize>()
                .map_err(|_| HttpError::bad_request(format!("token index {n:?} is not a number")))
        };
        let o = |s: &str| s.to_owned();
        Ok(Some(match s.as_slice() {
            [] => Route::Index,
            ["locations"] => Route::Locations,
            ["locations", u] => Route::Location(o(u)),
            ["tokens"] => Route::AllTokens,
            ["locations", u, "tokens"] => Route::Tokens(o(u)),
            ["locations", u, "tokens", n, action] => {
                let action = match *action {
                    "expire" => TokenAction::Expire,
                    "revoke" => TokenAction::Revoke,
                    "restore" => TokenAction::Restore,
                    "expiration-date" => {
                        return Ok(Some(Route::TokenExpiry(o(u), token_index(n)?)))
                    }
                    _ => return Ok(None),
                };
                Route::TokenAction(o(u), token_index(n)?, action)
            }
            ["locations", u, "mdm-info"] => Route::MdmInfo(o(u)),
            ["locations", u, "assets"] => Route::Assets(o(u)),
            ["locations", u, "assets", a] => Route::Asset(o(u), o(a)),
            ["locations", u, "assets", a, "buy"] => Route::AssetCount(o(u), o(a), true),
            ["locations", u, "assets", a, "refund"] => Route::AssetCount(o(u), o(a), false),
            ["locations", u, "assets", a, "foreign-associate"] => Route::Foreign(o(u), o(a), true),
            ["locations", u, "assets", a, "foreign-disassociate"] => {
                Route::Foreign(o(u), o(a), false)
            }
            ["locations", u, "assignments"] => Route::Assignments(o(u)),
            ["locations", u, "assignments", "count"] => Route::AssignmentCount(o(u)),
            ["locations", u, "users"] => Route::Users(o(u)),
            ["locations", u, "users", c, "accept-invitation"] => {
                Route::AcceptInvitation(o(u), o(c))
            }
            ["locations", u, "events"] => Route::Events(o(u)),
            ["locations", u, "notifications"] => Route::Notifications(o(u)),
            ["locations", u, "heap-bytes"] => Route::HeapBytes(o(u)),
            ["clock", "advance"] => Route::Advance,
            ["events", "complete-pending"] => Route::CompletePending,
            ["throttling"] => Route::Throttling,
            ["server-errors"] => Route::ServerErrors,
            ["latency"] => Route::Latency,
            ["invalid-token-http-200"] => Route::InvalidTokenHttp200,
            ["page-size"] => Route::PageSize,
            ["notification-faults"] => Route::NotificationFaults,
            ["notifications", "flush"] => Route::Flush,
            _ => return Ok(None),
        }))
    }

    /// The methods the route answers (the `Allow` header of a 405).
    fn allowed(&self) -> &'static str {
        match self {
            Route::Index
            | Route::Location(_)
            | Route::AllTokens
            | Route::Assignments(_)
            | Route::AssignmentCount(_)
            | Route::Users(_)
            | Route::Events(_)
            | Route::Notifications(_)
            | Route::HeapBytes(_) => "GET",
            Route::Locations | Route::Tokens(_) | Route::Assets(_) => "GET, POST",
            Route::Asset(..) => "GET, DELETE",
            Route::MdmInfo(_) => "PUT, DELETE",
            Route::TokenExpiry(..)
            | Route::Throttling
            | Route::Latency
            | Route::InvalidTokenHttp200
            | Route::PageSize
            | Route::NotificationFaults => "PUT",
            Route::TokenAction(..)
            | Route::AssetCount(..)
            | Route::Foreign(..)
            | Route::AcceptInvitation(..)
            | Route::Advance
            | Route::CompletePending
            | Route::ServerErrors
            | Route::Flush => "POST",
        }
    }
}

/// Answers one control API request; `rest` is the path after
/// [`CONTROL_PREFIX`].
pub(crate) async fn handle(
    control: &Control,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    raw: &[u8],
) -> Response<Bytes> {
    let route = match Route::parse(rest) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return HttpError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no control route {CONTROL_PREFIX}{rest}"),
            )
            .response()
        }
        Err(e) => return e.response(),
    };
    let q = Query::parse(query);
    match dispatch(control, method, route, &q, raw).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

async fn dispatch(c: &Control, method: &Method, route: Route, q: &Query<'_>, raw: &[u8]) -> Answer {
    let m = method.as_str();
    match (m, route) {
        ("GET", Route::Index) => ok(index(c)),
        ("GET", Route::Locations) => ok(Value::Array(
            c.locations().iter().map(location_json).collect(),
        )),
        ("POST", Route::Locations) => {
            let spec = body::<LocationIn>(raw)?.into_spec()?;
            let token = c.add_location(spec)?;
            created(token_json(c, &token, 0))
        }
        ("GET", Route::Location(uid)) => ok(location_json(&c.location(&uid)?)),
        ("GET", Route::AllTokens) => {
            let mut seen: Vec<(Uid, usize)> = Vec::new();
            let all = c
                .token_files()
                .iter()
                .map(|t| {
                    let index = match seen.iter_mut().find(|(u, _)| u == &t.uid) {
                        Some((_, n)) => {
                            *n += 1;
                            *n
                        }
                        None => {
                            seen.push((t.uid.clone(), 0));
                            0
                        }
                    };
                    token_json(c, t, index)
                })
                .collect();
            ok(Value::Array(all))
        }
        ("GET", Route::Tokens(uid)) => {
            c.location(&uid)?;
            ok(Value::Array(
                tokens_of(c, &uid)
                    .iter()
                    .enumerate()
                    .map(|(i, t)| token_json(c, t, i))
                    .collect(),
            ))
        }
        ("POST", Route::Tokens(uid)) => {
            let input: AddTokenIn = body(raw)?;
            let token = c.add_token(&uid, input.revoke_previous)?;
            let index = tokens_of(c, &uid).len().saturating_sub(1);
            created(token_json(c, &token, index))
        }
        ("POST", Route::TokenAction(uid, n, action)) => {
            let token = token_at(c, &uid, n)?;
            match action {
                TokenAction::Expire => c.expire_token(&token)?,
                TokenAction::Revoke => c.revoke_token(&token)?,
                TokenAction::Restore => c.restore_token(&token)?,
            }
            ok(token_json(c, &token, n))
        }
        ("PUT", Route::TokenExpiry(uid, n)) => {
            let token = token_at(c, &uid, n)?;
            let input: ExpiryIn = body(raw)?;
            c.set_token_expiry(&token, parse_date(&input.expiration_date)?)?;
            ok(token_json(c, &token, n))
        }
        ("PUT", Route::MdmInfo(uid)) => {
            let input: MdmInfoIn = body(raw)?;
            let info = MdmInfo::new(input.id, input.name, input.metadata)
                .map_err(|e| HttpError::bad_request(e.to_string()))?;
            c.set_mdm_info(&uid, Some(info))?;
            ok(location_json(&c.location(&uid)?))
        }
        ("DELETE", Route::MdmInfo(uid)) => {
            c.set_mdm_info(&uid, None)?;
            ok(location_json(&c.location(&uid)?))
        }
        ("GET", Route::Assets(uid)) => ok(Value::Array(
            c.assets(&uid)?.iter().map(asset_json).collect(),
        )),
        ("POST", Route::Assets(uid)) => {
            let spec = body::<AssetIn>(raw)?.into_spec()?;
            let key = spec.key.clone();
            c.add_asset(&uid, spec)?;
            created(asset_json(&c.asset(&uid, &key)?))
        }
        ("GET", Route::Asset(uid, adam)) => {
            let key = asset_key(&adam, q)?;
            ok(asset_json(&c.asset(&uid, &key)?))
        }
        ("DELETE", Route::Asset(uid, adam)) => {
            let key = asset_key(&adam, q)?;
            c.remove_asset(&uid, &key)?;
            ok(json!({ "removed": key_json(&key) }))
        }
        ("POST", Route::AssetCount(uid, adam, buy)) => {
            let key = asset_key(&adam, q)?;
            let input: CountIn = body(raw)?;
            if buy {
                c.buy_licences(&uid, &key, input.count)?;
            } else {
                c.refund_licences(&uid, &key, input.count)?;
            }
            ok(asset_json(&c.asset(&uid, &key)?))
        }
        ("POST", Route::Foreign(uid, adam, associate)) => {
            let key = asset_key(&adam, q)?;
            let input: ForeignIn = body(raw)?;
            let serials: Vec<&str> = input.serial_numbers.iter().map(String::as_str).collect();
            let users: Vec<&str> = input.client_user_ids.iter().map(String::as_str).collect();
            let changed = if associate {
                c.foreign_associate(&uid, &key, &serials, &users)?
            } else {
                c.foreign_disassociate(&uid, &key, &serials, &users)?
            };
            ok(json!({ "changed": changed, "asset": asset_json(&c.asset(&uid, &key)?) }))
        }
        ("GET", Route::Assignments(uid)) => {
            let offset = q.u32("offset").map_err(|_| bad_number("offset"))?;
            let limit = q.u32("limit").map_err(|_| bad_number("limit"))?;
            let all = c.assignments(&uid)?;
            let total = all.len();
            let items: Vec<Value> = all
                .iter()
                .skip(offset.unwrap_or(0) as usize)
                .take(limit.map_or(usize::MAX, |l| l as usize))
                .map(|(k, h)| assignment_json(k, h))
                .collect();
            ok(json!({ "total": total, "assignments": items }))
        }
        ("GET", Route::AssignmentCount(uid)) => ok(json!({ "count": c.assignment_count(&uid)? })),
        ("GET", Route::Users(uid)) => ok(serde_json::to_value(c.users(&uid)?).map_err(|e| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?),
        ("POST", Route::AcceptInvitation(uid, client_user_id)) => {
            c.accept_invitation(&uid, &client_user_id)?;
            let user = c
                .users(&uid)?
                .into_iter()
                .rev()
                .find(|u| u.client_user_id.as_str() == client_user_id);
            ok(serde_json::to_value(user).unwrap_or(Value::Null))
        }
        ("GET", Route::Events(uid)) => ok(Value::Array(
            c.events(&uid)?.iter().map(event_json).collect(),
        )),
        ("GET", Route::Notifications(uid)) => {
            c.location(&uid)?;
            ok(Value::Array(
                c.notifications(&uid)
                    .iter()
                    .map(notification_json)
                    .collect(),
            ))
        }
        ("GET", Route::HeapBytes(uid)) => ok(json!({ "heapBytes": c.heap_bytes(&uid)? })),
        ("POST", Route::Advance) => {
            let by = body::<AdvanceIn>(raw)?.duration()?;
            c.advance(by)?;
            ok(clock_json(c))
        }
        ("POST", Route::CompletePending) => {
            c.complete_pending();
            ok(clock_json(c))
        }
        ("PUT", Route::Throttling) => {
            let input: ThrottlingIn = body(raw)?;
            c.set_throttling(input.enabled);
            c.set_throttle_retry_after(input.retry_after_seconds);
            ok(json!({ "enabled": input.enabled, "retryAfterSeconds": input.retry_after_seconds }))
        }
        ("POST", Route::ServerErrors) => {
            let input: ServerErrorsIn = body(raw)?;
            let kind = match input.kind.as_str() {
                "internal" => ServerErrorKind::InternalError,
                "unavailable" => ServerErrorKind::Unavailable,
                other => {
                    return Err(HttpError::bad_request(format!(
                    "kind {other:?} is not \"internal\" (500, 9603) or \"unavailable\" (503, 9729)"
                )))
                }
            };
            c.fail_next_requests(input.count, kind, input.retry_after_seconds);
            ok(json!({
                "count": input.count,
                "kind": input.kind,
                "retryAfterSeconds": input.retry_after_seconds,
            }))
        }
        ("PUT", Route::Latency) => {
            let input: MillisIn = body(raw)?;
            c.set_latency(Duration::from_millis(input.millis));
            ok(json!({ "millis": input.millis }))
        }
        ("PUT", Route::InvalidTokenHttp200) => {
            let input: EnabledIn = body(raw)?;
            c.set_invalid_token_http_200(input.enabled);
            ok(json!({ "enabled": input.enabled }))
        }
        ("PUT", Route::PageSize) => {
            let input: PageSizeIn = body(raw)?;
            if input.page_size == 0 {
                return Err(HttpError::bad_request("pageSize must be at least 1"));
            }
            c.set_page_size(input.page_size);
            ok(json!({ "pageSize": input.page_size }))
        }
        ("PUT", Route::NotificationFaults) => {
            let input: FaultsIn = body(raw)?;
            let mut faults = NotificationFaults::none();
            faults.drop = input.drop;
            faults.duplicate = input.duplicate;
            faults.reorder = input.reorder;
            c.set_notification_faults(faults);
            ok(
                json!({ "drop": input.drop, "duplicate": input.duplicate, "reorder": input.reorder }),
            )
        }
        ("POST", Route::Flush) => {
            let input: FlushIn = body(raw)?;
            let timeout = Duration::from_millis(input.timeout_millis).min(MAX_FLUSH);
            ok(json!({ "flushed": c.flush_notifications(timeout).await }))
        }
        (_, route) => Err(HttpError {
            allow: Some(route.allowed()),
            ..HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{m} is not allowed here (allowed: {})", route.allowed()),
            )
        }),
    }
}

fn bad_number(name: &str) -> HttpError {
    HttpError::bad_request(format!("{name} must be a non-negative integer"))
}

// ----- inputs -----

/// `adamId` as a JSON string or number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AdamIdIn {
    Number(u64),
    Text(String),
}

impl AdamIdIn {
    fn parse(self) -> Result<AdamId, HttpError> {
        match self {
            AdamIdIn::Number(n) => Ok(AdamId::from(n)),
            AdamIdIn::Text(t) => AdamId::new(t).map_err(|e| HttpError::bad_request(e.to_string())),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LocationIn {
    name: String,
    org_name: Option<String>,
    #[serde(rename = "uId")]
    uid: Option<String>,
    account: Option<AccountType>,
    country: Option<String>,
    #[serde(default)]
    assets: Vec<AssetIn>,
    mdm_info: Option<MdmInfoIn>,
}

impl LocationIn {
    fn into_spec(self) -> Result<LocationSpec, HttpError> {
        let mut spec = LocationSpec::new(self.name);
        if let Some(org) = self.org_name {
            spec = spec.org_name(org);
        }
        if let Some(uid) = self.uid {
            spec = spec.uid(Uid::new(uid).map_err(|e| HttpError::bad_request(e.to_string()))?);
        }
        if let Some(account) = self.account {
            spec = spec.account(account);
        }
        if let Some(country) = self.country {
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(HttpError::bad_request(format!(
                    "country {country:?} is not an ISO 3166-1 alpha-2 code"
                )));
            }
            spec = spec.country(country);
        }
        for a in self.assets {
            spec = spec.asset(a.into_spec()?);
        }
        if let Some(m) = self.mdm_info {
            spec = spec.claimed_by(
                MdmInfo::new(m.id, m.name, m.metadata)
                    .map_err(|e| HttpError::bad_request(e.to_string()))?,
            );
        }
        Ok(spec)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssetIn {
    adam_id: AdamIdIn,
    pricing_param: Option<PricingParam>,
    product_type: Option<ProductType>,
    total_count: Option<u32>,
    #[serde(default)]
    free: bool,
    retired_count: Option<u32>,
    device_assignable: Option<bool>,
    revocable: Option<bool>,
    supported_platforms: Option<Vec<Platform>>,
    name: Option<String>,
    bundle_id: Option<String>,
    version: Option<String>,
    #[serde(default)]
    custom: bool,
}

impl AssetIn {
    fn into_spec(self) -> Result<AssetSpec, HttpError> {
        let adam = self.adam_id.parse()?;
        let total = match (self.total_count, self.free) {
            (Some(_), true) => {
                return Err(HttpError::bad_request(
                    "give either totalCount or free: true, not both",
                ))
            }
            (Some(n), false) => n,
            (None, true) => UNLIMITED_COUNT,
            (None, false) => {
                return Err(HttpError::bad_request(
                    "an asset needs totalCount (or free: true)",
                ))
            }
        };
        let product_type = self.product_type.unwrap_or(ProductType::App);
        let mut spec = if product_type == ProductType::Book {
            AssetSpec::book(adam.as_u64(), total)
        } else {
            AssetSpec::app(adam.as_u64(), total)
        };
        spec.key = AssetKey::new(adam, self.pricing_param.unwrap_or_default());
        if let Some(r) = self.retired_count {
            if r > total {
                return Err(HttpError::bad_request(
                    "retiredCount cannot exceed totalCount",
                ));
            }
            spec = spec.retired(r);
        }
        if let Some(d) = self.device_assignable {
            if d && product_type == ProductType::Book {
                return Err(HttpError::bad_request("books are never device-assignable"));
            }
            spec = spec.device_assignable(d);
        }
        if let Some(r) = self.revocable {
            if r && product_type == ProductType::Book {
                return Err(HttpError::bad_request("books are never revocable"));
            }
            spec = spec.revocable(r);
        }
        if let Some(p) = self.supported_platforms {
            spec = spec.platforms(p);
        }
        if let Some(name) = self.name {
            spec.metadata.name = name;
        }
        if self.bundle_id.is_some() {
            spec.metadata.bundle_id = self.bundle_id;
        }
        if self.version.is_some() {
            spec.metadata.version = self.version;
        }
        Ok(spec.custom(self.custom))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MdmInfoIn {
    id: String,
    name: String,
    metadata: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddTokenIn {
    #[serde(default)]
    revoke_previous: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpiryIn {
    expiration_date: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountIn {
    count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForeignIn {
    #[serde(default)]
    serial_numbers: Vec<String>,
    #[serde(default)]
    client_user_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceIn {
    seconds: Option<f64>,
    millis: Option<u64>,
}

impl AdvanceIn {
    fn duration(&self) -> Result<Duration, HttpError> {
        match (self.seconds, self.millis) {
            (Some(s), None) => Duration::try_from_secs_f64(s)
                .map_err(|_| HttpError::bad_request("seconds must be a non-negative number")),
            (None, Some(ms)) => Ok(Duration::from_millis(ms)),
            _ => Err(HttpError::bad_request(
                "give exactly one of seconds or millis",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ThrottlingIn {
    enabled: bool,
    /// `Retry-After` on 429 answers; absent or null: none.
    #[serde(default)]
    retry_after_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnabledIn {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MillisIn {
    millis: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PageSizeIn {
    page_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServerErrorsIn {
    count: u32,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default = "default_retry_after")]
    retry_after_seconds: u32,
}

fn default_kind() -> String {
    "unavailable".to_owned()
}

fn default_retry_after() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsIn {
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    reorder: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FlushIn {
    #[serde(default = "default_flush_millis")]
    timeout_millis: u64,
}

fn default_flush_millis() -> u64 {
    5_000
}

/// Apple's `2030-01-01T00:00:00+0000` or RFC 3339.
fn parse_date(text: &str) -> Result<DateTime<Utc>, HttpError> {
    parse_apple_datetime(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|d| d.with_timezone(&Utc)))
        .map_err(|_| {
            HttpError::bad_request(format!(
                "expirationDate {text:?} is neither 2030-01-01T00:00:00+0000 nor RFC 3339"
            ))
        })
}

/// The asset named by a path segment and `?pricingParam=` (default `STDQ`).
fn asset_key(adam: &str, q: &Query<'_>) -> Result<AssetKey, HttpError> {
    let adam = AdamId::new(adam).map_err(|e| HttpError::bad_request(e.to_string()))?;
    let pricing = match q.get("pricingParam") {
        None => PricingParam::Stdq,
        Some(p) => p
            .parse()
            .map_err(|e: vppkit_core::ValueError| HttpError::bad_request(e.to_string()))?,
    };
    Ok(AssetKey::new(adam, pricing))
}

/// A location's token files, in creation order (index 0 is the first).
fn tokens_of(c: &Control, uid: &str) -> Vec<TokenFile> {
    c.token_files()
        .into_iter()
        .filter(|t| t.uid.as_str() == uid)
        .collect()
}

fn token_at(c: &Control, uid: &str, n: usize) -> Result<TokenFile, HttpError> {
    c.location(uid)?;
    tokens_of(c, uid).into_iter().nth(n).ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "unknown_token",
            format!("location {uid:?} has no token number {n}"),
        )
    })
}

// ----- outputs -----

fn index(c: &Control) -> Value {
    let root = c.shared.root();
    json!({
        "rootUrl": root,
        "baseUrl": format!("{root}/mdm/v2"),
        "controlUrl": format!("{root}{CONTROL_PREFIX}"),
        "metadataUrl": format!("{root}{LOOKUP_PATH}"),
        "clock": clock_json(c),
        "locations": c.locations().len(),
    })
}

fn clock_json(c: &Control) -> Value {
    let clock = &c.shared.clock;
    let pending: usize = c.locations().iter().map(|l| l.pending_events).sum();
    json!({
        "manual": clock.is_manual(),
        "nowMillis": u64::try_from(clock.now().as_millis()).unwrap_or(u64::MAX),
        "eventDelayMillis": u64::try_from(clock.event_delay().as_millis()).unwrap_or(u64::MAX),
        "pendingEvents": pending,
    })
}

fn location_json(l: &LocationSummary) -> Value {
    json!({
        "uId": l.uid.as_str(),
        "locationName": l.name,
        "orgName": l.org_name,
        "account": l.account.as_str(),
        "countryISO2ACode": l.country,
        "mdmInfo": l.mdm_info,
        "notificationUrl": l.notification_url,
        "notificationTypes": l.subscribed_notification_types,
        "assets": l.assets,
        "assignments": l.assignments,
        "users": l.users,
        "pendingEvents": l.pending_events,
    })
}

/// A token file with its state. The content is the bearer credential: the
/// control API hands it out on purpose (as the binary prints it), and it
/// never reaches a log.
fn token_json(c: &Control, t: &TokenFile, index: usize) -> Value {
    let state = read(&c.shared.tokens)
        .get(t.content.expose())
        .map(|r| (r.revoked, token_now_expired(r), r.expires_at));
    let (revoked, expired, reported) = state.unwrap_or((false, false, t.expires_at));
    json!({
        "index": index,
        "uId": t.uid.as_str(),
        "locationName": t.location_name,
        "orgName": t.org_name,
        "fileName": t.file_name,
        "content": t.content.expose(),
        "expDate": format_apple_datetime(t.expires_at),
        "tokenExpirationDate": format_apple_datetime(reported),
        "expired": expired,
        "revoked": revoked,
    })
}

fn key_json(k: &AssetKey) -> Value {
    json!({ "adamId": k.adam_id.as_str(), "pricingParam": k.pricing_param.as_str() })
}

fn asset_json(a: &Asset) -> Value {
    json!({
        "adamId": a.key.adam_id.as_str(),
        "pricingParam": a.key.pricing_param.as_str(),
        "productType": a.product_type.as_str(),
        "deviceAssignable": a.device_assignable,
        "revocable": a.revocable,
        "supportedPlatforms": a.supported_platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "totalCount": a.counts.total,
        "assignedCount": a.counts.assigned,
        "availableCount": a.counts.available,
        "retiredCount": a.counts.retired,
    })
}

fn assignment_json(k: &AssetKey, h: &Holder) -> Value {
    let field = if h.is_device() {
        "serialNumber"
    } else {
        "clientUserId"
    };
    json!({
        "adamId": k.adam_id.as_str(),
        "pricingParam": k.pricing_param.as_str(),
        field: h.id(),
    })
}

fn event_json(e: &EventRecord) -> Value {
    json!({
        "eventId": e.event_id.as_str(),
        "eventType": e.kind.as_str(),
        "eventStatus": e.status.as_str(),
        "numRequested": e.num_requested,
        "numCompleted": e.num_completed,
        "failures": e.failures.iter().map(|f| json!({
            "errorNumber": f.error_number,
            "assets": f.assets.iter().map(key_json).collect::<Vec<_>>(),
            "clientUserIds": f.client_user_ids,
            "serialNumbers": f.serial_numbers,
        })).collect::<Vec<_>>(),
    })
}

fn notification_json(n: &NotificationRecord) -> Value {
    let outcome = match n.outcome {
        DeliveryOutcome::Queued => json!({ "status": "queued" }),
        DeliveryOutcome::Delivered { attempts, copies } => {
            json!({ "status": "delivered", "attempts": attempts, "copies": copies })
        }
        DeliveryOutcome::Failed { attempts } => json!({ "status": "failed", "attempts": attempts }),
        DeliveryOutcome::Dropped => json!({ "status": "dropped" }),
    };
    json!({
        "uId": n.uid.as_str(),
        "notificationId": n.notification_id.as_str(),
        "notificationType": n.notification_type,
        "body": n.body,
        "outcome": outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(decode_segment("a%2Fb%20c").unwrap(), "a/b c");
        assert!(decode_segment("bad%2").is_err());
        assert!(decode_segment("bad%zz").is_err());
        assert!(decode_segment("%ff").is_err());
    }

    #[test]
    fn routes() {
        assert!(matches!(Route::parse("").unwrap(), Some(Route::Index)));
        assert!(matches!(Route::parse("/").unwrap(), Some(Route::Index)));
        assert!(matches!(
            Route::parse("/locations/73/tokens/1/revoke").unwrap(),
            Some(Route::TokenAction(_, 1, TokenAction::Revoke))
        ));
        assert!(matches!(
            Route::parse("/locations/73/tokens/0/expiration-date").unwrap(),
            Some(Route::TokenExpiry(_, 0))
        ));
        assert!(Route::parse("/locations/73/tokens/x/revoke").is_err());
        assert!(Route::parse("/locations/73/tokens/0/frobnicate")
            .unwrap()
            .is_none());
        assert!(Route::parse("/nothing").unwrap().is_none());
        match Route::parse("/locations/73/users/a%40b/accept-invitation").unwrap() {
            Some(Route::AcceptInvitation(u, c)) => {
                assert_eq!((u.as_str(), c.as_str()), ("73", "a@b"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dates_in_both_forms() {
        let a = parse_date("2030-01-02T03:04:05+0000").unwrap();
        let b = parse_date("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_date("tomorrow").is_err());
    }

    #[test]
    fn asset_inputs_are_checked() {
        let spec = serde_json::from_value::<AssetIn>(json!({"adamId": "42", "totalCount": 3}))
            .unwrap()
            .into_spec()
            .unwrap();
        assert_eq!(spec.total, 3);
        let free = serde_json::from_value::<AssetIn>(json!({"adamId": 42, "free": true}))
            .unwrap()
            .into_spec()
            .unwrap();
        assert!(free.is_unlimited());
        for bad in [
            json!({"adamId": "42"}),
            json!({"adamId": "42", "totalCount": 1, "free": true}),
            json!({"adamId": "x4", "totalCount": 1}),
            json!({"adamId": "42", "totalCount": 1, "retiredCount": 2}),
            json!({"adamId": "42", "totalCount": 1, "productType": "Book", "revocable": true}),
        ] {
            let parsed = serde_json::from_value::<AssetIn>(bad.clone());
            assert!(
                parsed
                    .map_err(|_| ())
                    .and_then(|a| a.into_spec().map_err(|_| ()))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_value::<AssetIn>(
            json!({"adamId": "1", "totalCount": 1, "typo": 1})
        )
        .is_err());
    }
}
