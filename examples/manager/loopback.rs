//! Notifications to a plain-http loopback webhook, for the simulator.
//!
//! The engine accepts `http://127.0.0.1...` webhooks (`WebhookConfig::loopback_http`) and
//! the simulator delivers there, but `vppkit-client` refuses to send a `notificationUrl`
//! that is not `https`. Until the two agree, the manager subscribes such a webhook by
//! POSTing `client/config` itself (Apple's documented request, to the simulator only)
//! and records the subscription on the location. Against Apple (an https webhook) the
//! engine's own subscription is used and this module does nothing.

use serde_json::json;
use vppkit::core::LocationId;
use vppkit::store::{NotificationSettings, StoreExt};

use super::app::{self, App};
use super::error::{ManagerError, Result};

/// The notification types the engine works with.
const TYPES: [&str; 4] = [
    "ASSET_MANAGEMENT",
    "ASSET_COUNT",
    "USER_MANAGEMENT",
    "USER_ASSOCIATED",
];

/// Whether `webhook_url` is a plain-http loopback URL (which only the simulator accepts).
pub(crate) fn needed(webhook_url: &str) -> bool {
    webhook_url.starts_with("http://") && app::is_loopback(webhook_url)
}

/// Subscribes `location` to `webhook_url` (with the manager's notification secret) by
/// POSTing `client/config` to `apple_url`, then records it on the location.
pub(crate) async fn subscribe(
    app: &App,
    apple_url: &str,
    location: &LocationId,
    webhook_url: &str,
) -> Result<()> {
    if !needed(webhook_url) || !app::is_loopback(apple_url) {
        return Err(ManagerError::usage(
            "a plain-http notification URL works only with the simulator on loopback",
        ));
    }
    let record = app
        .store
        .location(location)
        .await?
        .ok_or_else(|| ManagerError::usage(format!("location {location} is not known")))?;
    let secret = app.identity.notification_secret.clone();
    let body = json!({
        "notificationUrl": webhook_url,
        "notificationAuthToken": secret.expose(),
        "notificationTypes": TYPES,
    });
    let answer = reqwest::Client::new()
        .post(format!("{apple_url}/client/config"))
        .bearer_auth(record.token.expose())
        .json(&body)
        .send()
        .await
        .map_err(|e| ManagerError::usage(format!("subscribing {location}: {e}")))?;
    let status = answer.status();
    let value: serde_json::Value = answer.json().await.unwrap_or_default();
    if !status.is_success() || value.get("errorNumber").is_some() {
        return Err(ManagerError::usage(format!(
            "subscribing {location}: HTTP {status}, error {} ({})",
            value["errorNumber"],
            value["errorMessage"].as_str().unwrap_or("no message")
        )));
    }
    let settings = NotificationSettings::new(
        webhook_url,
        secret,
        TYPES.iter().map(|t| (*t).to_owned()).collect(),
    );
    app.store
        .update_location(location, |r| r.notification = Some(settings.clone()))
        .await?;
    Ok(())
}
