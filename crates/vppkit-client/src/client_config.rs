//! `GET`/`POST client/config`: location details, `mdmInfo`, notification settings.

use serde::Serialize;
use vppkit_core::{AccountType, MdmInfo, Secret};

use crate::envelope::enveloped;
use crate::{ApiResponse, DecodeError, NotificationType};

/// The answer of `GET`/`POST client/config` (without the envelope fields, which
/// are in [`ApiResponse::envelope`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `countryISO2ACode`, e.g. `US`: the storefront for metadata lookups.
    pub country_iso2a_code: Option<String>,
    /// `defaultPlatform`: `volumestore` (education) or `enterprisestore` (business).
    pub default_platform: Option<String>,
    /// `locationName`: the organisational unit's name.
    pub location_name: Option<String>,
    /// `notificationUrl`.
    pub notification_url: Option<String>,
    /// `notificationAuthToken` (Apple returns it; kept secret).
    pub notification_auth_token: Option<Secret>,
    /// `subscribedNotificationTypes`.
    pub subscribed_notification_types: Vec<NotificationType>,
    /// `websiteURL`: `https://business.apple.com` or `https://school.apple.com`.
    pub website_url: Option<String>,
}

impl ClientConfig {
    /// Business or education, from `defaultPlatform` (or `websiteURL`).
    pub fn account_type(&self) -> Option<AccountType> {
        self.default_platform
            .as_deref()
            .and_then(AccountType::from_default_platform)
            .or_else(|| match self.website_url.as_deref() {
                Some(u) if u.contains("school.apple.com") => Some(AccountType::Education),
                Some(u) if u.contains("business.apple.com") => Some(AccountType::Business),
                _ => None,
            })
    }

    /// The storefront for metadata lookups: the country code, lower case.
    pub fn storefront(&self) -> Option<String> {
        self.country_iso2a_code
            .as_deref()
            .map(str::to_ascii_lowercase)
    }
}

enveloped! {
    struct RawClientConfig {
        #[serde(rename = "countryISO2ACode", default)]
        country_iso2a_code: Option<String>,
        #[serde(default)]
        default_platform: Option<String>,
        #[serde(default)]
        location_name: Option<String>,
        #[serde(default)]
        notification_url: Option<String>,
        #[serde(default, deserialize_with = "crate::serde_util::opt_secret")]
        notification_auth_token: Option<Secret>,
        #[serde(default)]
        subscribed_notification_types: Option<Vec<NotificationType>>,
        #[serde(rename = "websiteURL", default)]
        website_url: Option<String>,
    }
}

/// Parses a `client/config` answer (exposed for tests and recorded payloads).
pub fn parse_client_config(body: &[u8]) -> Result<ApiResponse<ClientConfig>, DecodeError> {
    let mut raw: RawClientConfig = serde_json::from_slice(body).map_err(DecodeError::new)?;
    let envelope = raw.take_envelope();
    Ok(ApiResponse::new(
        ClientConfig {
            country_iso2a_code: raw.country_iso2a_code,
            default_platform: raw.default_platform,
            location_name: raw.location_name,
            notification_url: raw.notification_url,
            notification_auth_token: raw.notification_auth_token,
            subscribed_notification_types: raw.subscribed_notification_types.unwrap_or_default(),
            website_url: raw.website_url,
        },
        envelope,
    ))
}

/// The body of `POST client/config`. Apple treats `notificationTypes` as the
/// complete set; the open-source clients always send every field together.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientConfigRequest {
    /// Our claim on the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mdm_info: Option<MdmInfo>,
    /// HTTPS webhook URL (given together with the auth token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    /// The shared secret Apple sends as `Authorization: Bearer` to the webhook.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::serde_util::ser_opt_secret"
    )]
    pub notification_auth_token: Option<Secret>,
    /// The complete set of notification types to subscribe to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_types: Option<Vec<NotificationType>>,
    /// Accept a plain `http://` notification URL whose host is a loopback
    /// address (`127.0.0.0/8`, `::1`, `localhost`). Only for a simulator on the
    /// same machine: Apple itself requires HTTPS. Not sent.
    #[serde(skip)]
    pub allow_http_loopback: bool,
}

impl ClientConfigRequest {
    /// An empty request; add parts with the `with_*` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims the token with our `mdmInfo`.
    pub fn with_mdm_info(mut self, mdm_info: MdmInfo) -> Self {
        self.mdm_info = Some(mdm_info);
        self
    }

    /// Sets the webhook URL, its auth token and the types to subscribe to.
    pub fn with_notifications(
        mut self,
        url: impl Into<String>,
        auth_token: Secret,
        types: Vec<NotificationType>,
    ) -> Self {
        self.notification_url = Some(url.into());
        self.notification_auth_token = Some(auth_token);
        self.notification_types = Some(types);
        self
    }

    /// Allows a plain `http://` notification URL on a loopback host (for a
    /// simulator on this machine). Every other URL must still be HTTPS.
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }

    /// Checks Apple's documented rules against the given limits before sending:
    /// URL and token together (9710), lengths (9711), HTTPS without query (9712;
    /// `http` to a loopback host only with [`ClientConfigRequest::allow_http_loopback`]),
    /// `mdmInfo` fields (9723, 9724, 9725, 9713).
    pub fn validate(&self, limits: &crate::Limits) -> Result<(), crate::Error> {
        let bad = |m: String| Err(crate::Error::InvalidRequest(m));
        if let Some(info) = &self.mdm_info {
            if let Err(e) = info.validate(
                limits.max_mdm_id_length as usize,
                limits.max_mdm_name_length as usize,
                limits.max_mdm_metadata_length as usize,
            ) {
                return bad(e.to_string());
            }
        }
        if self.notification_url.is_some() != self.notification_auth_token.is_some() {
            return bad("notificationUrl and notificationAuthToken must be given together".into());
        }
        let max = limits.max_notification_length as usize;
        if let Some(token) = &self.notification_auth_token {
            if token.expose().chars().count() > max {
                return bad(format!("notificationAuthToken is longer than {max}"));
            }
        }
        if let Some(u) = &self.notification_url {
            if u.chars().count() > max {
                return bad(format!("notificationUrl is longer than {max}"));
            }
            let acceptable = match url::Url::parse(u) {
                Ok(parsed) if parsed.query().is_none() && parsed.host().is_some() => {
                    match parsed.scheme() {
                        "https" => true,
                        "http" => self.allow_http_loopback && is_loopback_host(&parsed),
                        _ => false,
                    }
                }
                _ => false,
            };
            if !acceptable {
                return bad("notificationUrl must be an HTTPS URL without a query".into());
            }
        }
        Ok(())
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_sends_secret_but_debug_hides_it() {
        let req = ClientConfigRequest::new()
            .with_mdm_info(MdmInfo::new("id", "ExampleMDM", "mdm.example.org").unwrap())
            .with_notifications(
                "https://mdm.example.org/vpp/notify",
                Secret::new("s3cret-value"),
                NotificationType::MANAGEMENT.to_vec(),
            );
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["notificationAuthToken"], "s3cret-value");
        assert_eq!(json["mdmInfo"]["name"], "ExampleMDM");
        assert_eq!(json["notificationTypes"][1], "ASSET_COUNT");
        assert!(!format!("{req:?}").contains("s3cret-value"));
        req.validate(&crate::Limits::default()).unwrap();
    }

    #[test]
    fn validation() {
        let l = crate::Limits::default();
        let mut r = ClientConfigRequest::new();
        r.notification_url = Some("https://x.example/notify".into());
        assert!(r.validate(&l).is_err());
        r.notification_auth_token = Some(Secret::new("t"));
        assert!(r.validate(&l).is_ok());
        r.notification_url = Some("http://x.example/notify".into());
        assert!(r.validate(&l).is_err());
        r.notification_url = Some("https://x.example/notify?a=1".into());
        assert!(r.validate(&l).is_err());
        r.notification_url = Some(format!("https://x.example/{}", "a".repeat(600)));
        assert!(r.validate(&l).is_err());
    }

    #[test]
    fn http_only_for_loopback_and_only_when_allowed() {
        let l = crate::Limits::default();
        let with = |url: &str, allow: bool| {
            ClientConfigRequest::new()
                .with_notifications(url, Secret::new("t"), Vec::new())
                .allow_http_loopback(allow)
        };
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://127.1.2.3/hook",
            "http://[::1]:9000/hook",
            "http://localhost:8080/hook",
            "http://LOCALHOST/hook",
        ] {
            assert!(
                with(url, false).validate(&l).is_err(),
                "{url} without opt-in"
            );
            assert!(with(url, true).validate(&l).is_ok(), "{url} with opt-in");
        }
        for url in [
            "http://x.example/hook",
            "http://10.0.0.1/hook",
            "http://[::2]/hook",
            "http://localhost.example.org/hook",
            "http://127.0.0.1/hook?q=1",
            "ftp://127.0.0.1/hook",
        ] {
            assert!(with(url, true).validate(&l).is_err(), "{url} refused");
        }
        assert!(with("https://x.example/hook", true).validate(&l).is_ok());
        let json = serde_json::to_value(with("http://127.0.0.1/h", true)).unwrap();
        assert!(json.get("allowHttpLoopback").is_none());
    }
}
