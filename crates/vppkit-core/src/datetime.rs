//! Apple's date-time forms.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

/// A date-time string that matches none of the forms Apple uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO-8601 date-time with an offset: {input:?}")]
pub struct DateTimeError {
    /// The rejected text (never a secret: dates only).
    pub input: String,
}

/// Parses every date-time form seen in Apple's answers and content tokens:
/// `2030-11-08T22:33:22+0000`, `...-0700`, `...+02:00`, `...Z`, with or without
/// fractional seconds. The result is in UTC.
///
/// ```
/// use vppkit_core::parse_apple_datetime;
/// let a = parse_apple_datetime("2031-03-01T10:00:00-0800").unwrap();
/// let b = parse_apple_datetime("2031-03-01T18:00:00Z").unwrap();
/// assert_eq!(a, b);
/// ```
pub fn parse_apple_datetime(input: &str) -> Result<DateTime<Utc>, DateTimeError> {
    let s = input.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
    ] {
        if let Ok(dt) = DateTime::<FixedOffset>::parse_from_str(s, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    // A bare UTC time without offset (seen in hand-made fixtures): read as UTC.
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(naive.and_utc());
        }
    }
    Err(DateTimeError {
        input: input.chars().take(64).collect(),
    })
}

/// Formats a date-time the way Apple writes it: `2031-03-01T18:00:00+0000`.
pub fn format_apple_datetime(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        let want = parse_apple_datetime("2030-11-08T22:33:22+0000").unwrap();
        for s in [
            "2030-11-08T22:33:22Z",
            "2030-11-08T22:33:22+00:00",
            "2030-11-08T15:33:22-0700",
            "2030-11-09T00:33:22+02:00",
            "2030-11-08T22:33:22.000+0000",
            " 2030-11-08T22:33:22+0000\n",
        ] {
            assert_eq!(parse_apple_datetime(s).unwrap(), want, "{s}");
        }
        assert_eq!(format_apple_datetime(want), "2030-11-08T22:33:22+0000");
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "tomorrow", "2030-13-08T22:33:22Z", "2030-11-08"] {
            assert!(parse_apple_datetime(s).is_err(), "{s}");
        }
    }
}
