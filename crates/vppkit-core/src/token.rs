//! The content token (`.vpptoken` file).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{parse_apple_datetime, Secret};

/// Largest `.vpptoken` file accepted (real ones are a few hundred bytes).
pub const MAX_TOKEN_FILE_LEN: usize = 64 * 1024;

/// Every way a `.vpptoken` file can be wrong. No variant carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file holds nothing but whitespace.
    #[error("the content token file is empty")]
    Empty,
    /// The file is larger than any real token.
    #[error("the content token file is {len} bytes, more than the {max} a token can be")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The file is not valid UTF-8 text.
    #[error("the content token file is not text")]
    NotText,
    /// The text is not one Base64 string.
    #[error("the content token file is not a Base64 string")]
    NotBase64,
    /// The decoded bytes are not a JSON object.
    #[error("the decoded content token is not a JSON object")]
    NotJson,
    /// A required field is missing or not a string.
    #[error("the decoded content token has no `{0}` string")]
    MissingField(&'static str),
    /// `expDate` is not a date Apple writes.
    #[error("the content token's expDate is not an ISO-8601 date-time")]
    BadExpiry,
}

#[derive(Deserialize)]
struct Decoded {
    token: Option<serde_json::Value>,
    #[serde(rename = "expDate")]
    exp_date: Option<serde_json::Value>,
    #[serde(rename = "orgName")]
    org_name: Option<serde_json::Value>,
}

/// A parsed content token. The bearer credential is the whole file content (the
/// outer Base64 string), not the inner `token` field.
#[derive(Clone)]
pub struct ContentToken {
    bearer: Secret,
    inner: Secret,
    expires_at: DateTime<Utc>,
    org_name: String,
}

impl ContentToken {
    /// Parses the content of a `.vpptoken` file: one Base64 string, surrounding and
    /// embedded whitespace and a UTF-8 BOM tolerated.
    pub fn parse(file: &str) -> Result<Self, TokenError> {
        Self::parse_bytes(file.as_bytes())
    }

    /// Parses the raw bytes of a `.vpptoken` file.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() > MAX_TOKEN_FILE_LEN {
            return Err(TokenError::TooLarge {
                len: bytes.len(),
                max: MAX_TOKEN_FILE_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| TokenError::NotText)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let bearer: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bearer = Secret::new(bearer);
        if bearer.is_empty() {
            return Err(TokenError::Empty);
        }
        let raw = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(bearer.expose()).ok())
            .ok_or(TokenError::NotBase64)?;
        let raw = zeroize::Zeroizing::new(raw);
        let decoded: Decoded = serde_json::from_slice(&raw).map_err(|_| TokenError::NotJson)?;
        let field = |v: Option<serde_json::Value>, name| match v {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(TokenError::MissingField(name)),
        };
        let inner = Secret::new(field(decoded.token, "token")?);
        let exp = field(decoded.exp_date, "expDate")?;
        let org_name = field(decoded.org_name, "orgName")?;
        let expires_at = parse_apple_datetime(&exp).map_err(|_| TokenError::BadExpiry)?;
        Ok(Self {
            bearer,
            inner,
            expires_at,
            org_name,
        })
    }

    /// Writes the content of a `.vpptoken` file (used by the simulator and tests).
    /// `exp_date` is written as given, so any of Apple's forms can be produced.
    pub fn encode_file(inner_token: &str, exp_date: &str, org_name: &str) -> String {
        let json = serde_json::json!({
            "expDate": exp_date,
            "orgName": org_name,
            "token": inner_token,
        });
        STANDARD.encode(json.to_string())
    }

    /// The bearer credential for `Authorization: Bearer ...` and the `itvt` cookie.
    pub fn bearer(&self) -> &Secret {
        &self.bearer
    }

    /// The inner `token` field (identifies the organisational unit; not a credential
    /// on its own: Apple answers 9622 to it).
    pub fn inner_token(&self) -> &Secret {
        &self.inner
    }

    /// When the token stops working (`expDate`).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The organisation's name (`orgName`).
    pub fn org_name(&self) -> &str {
        &self.org_name
    }

    /// Whether the token is past its expiry at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl fmt::Debug for ContentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentToken")
            .field("bearer", &self.bearer)
            .field("expires_at", &self.expires_at)
            .field("org_name", &self.org_name)
            .finish()
    }
}

impl fmt::Display for ContentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "content token for {:?} (expires {})",
            self.org_name,
            crate::format_apple_datetime(self.expires_at)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const APPLE_EXAMPLE: &str = r#"{"token":"U29tZU9wYXF1ZVRva2VuMTIz","expDate":"2031-03-01T10:00:00-0800","orgName":"Example School District"}"#;

    #[test]
    fn parses_apple_example_with_bom_and_newlines() {
        let b64 = STANDARD.encode(APPLE_EXAMPLE);
        let (a, b) = b64.split_at(20);
        let file = format!("\u{feff}  {a}\r\n{b}\n");
        let t = ContentToken::parse(&file).unwrap();
        assert_eq!(t.org_name(), "Example School District");
        assert_eq!(t.bearer().expose(), b64);
        assert_eq!(t.inner_token().expose(), "U29tZU9wYXF1ZVRva2VuMTIz");
        assert_eq!(
            t.expires_at(),
            parse_apple_datetime("2031-03-01T18:00:00Z").unwrap()
        );
    }

    #[test]
    fn every_expiry_form() {
        for exp in [
            "2030-11-08T22:33:22+0000",
            "2030-11-08T15:33:22-0700",
            "2030-11-09T00:33:22+02:00",
            "2030-11-08T22:33:22Z",
        ] {
            let t = ContentToken::parse(&ContentToken::encode_file("t", exp, "o")).unwrap();
            assert_eq!(
                t.expires_at(),
                parse_apple_datetime("2030-11-08T22:33:22Z").unwrap()
            );
        }
    }

    #[test]
    fn typed_errors() {
        let enc = |s: &str| STANDARD.encode(s);
        assert_eq!(ContentToken::parse(" \n").unwrap_err(), TokenError::Empty);
        assert_eq!(
            ContentToken::parse("%%%").unwrap_err(),
            TokenError::NotBase64
        );
        assert_eq!(
            ContentToken::parse_bytes(&[0xff, 0xfe]).unwrap_err(),
            TokenError::NotText
        );
        assert_eq!(
            ContentToken::parse(&enc("[1]")).unwrap_err(),
            TokenError::NotJson
        );
        assert_eq!(
            ContentToken::parse(&enc(r#"{"expDate":"2030-11-08T22:33:22Z","orgName":"o"}"#))
                .unwrap_err(),
            TokenError::MissingField("token")
        );
        assert_eq!(
            ContentToken::parse(&enc(r#"{"token":"t","orgName":"o","expDate":5}"#)).unwrap_err(),
            TokenError::MissingField("expDate")
        );
        assert_eq!(
            ContentToken::parse(&enc(r#"{"token":"t","expDate":"2030-11-08T22:33:22Z"}"#))
                .unwrap_err(),
            TokenError::MissingField("orgName")
        );
        assert_eq!(
            ContentToken::parse(&enc(r#"{"token":"t","orgName":"o","expDate":"soon"}"#))
                .unwrap_err(),
            TokenError::BadExpiry
        );
        let big = "A".repeat(MAX_TOKEN_FILE_LEN + 1);
        assert!(matches!(
            ContentToken::parse(&big).unwrap_err(),
            TokenError::TooLarge { .. }
        ));
    }

    #[test]
    fn secret_never_printed() {
        let file = ContentToken::encode_file("inner-secret", "2031-01-01T00:00:00Z", "Org");
        let t = ContentToken::parse(&file).unwrap();
        for out in [format!("{t:?}"), format!("{t}"), format!("{t:#?}")] {
            assert!(!out.contains(&file));
            assert!(!out.contains("inner-secret"));
        }
    }

    proptest! {
        #[test]
        fn round_trips_any_fields(inner in "[A-Za-z0-9+/=]{1,64}", org in "[^\"\\\\]{1,40}",
                                  secs in 0i64..4_000_000_000, ws in prop::collection::vec(0usize..3, 0..4)) {
            let exp = crate::format_apple_datetime(DateTime::from_timestamp(secs, 0).unwrap());
            let mut file = ContentToken::encode_file(&inner, &exp, &org);
            for (i, w) in ws.iter().enumerate() {
                let at = (i * 7 + 3).min(file.len());
                file.insert_str(at, [" ", "\n", "\r\n"][*w]);
            }
            let t = ContentToken::parse(&file).unwrap();
            prop_assert_eq!(t.inner_token().expose(), inner.as_str());
            prop_assert_eq!(t.org_name(), org.as_str());
            prop_assert_eq!(t.expires_at().timestamp(), secs);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = ContentToken::parse_bytes(&bytes);
        }
    }
}
