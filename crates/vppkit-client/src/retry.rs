//! Retries as a policy: which failures are retried, how long to wait, when to stop.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::{Error, ErrorNumber};

/// How the client retries a failed call.
///
/// - Throttling (9646 or HTTP 429): exponential backoff with jitter; a
///   `Retry-After` header, when present, is a floor.
/// - Apple's transient errors (9603, 9729, 9644) and HTTP 5xx: the `Retry-After`
///   header (seconds or an HTTP date) when present, else the backoff.
/// - Transport failures: reads (GET) are retried; a write (POST) is retried only
///   when the connection was never made. Any other lost answer to a write comes
///   back as [`Error::OutcomeUnknown`] and is never resent.
/// - Bounded by `max_attempts` (first try included) and `max_elapsed` (a wait
///   that would cross it is not started).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Total time budget of one call, waits included.
    pub max_elapsed: Duration,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Growth factor of the backoff.
    pub multiplier: f64,
    /// Randomise each backoff in `[d/2, d]` so many clients do not retry in step.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, 2 minutes in all, backoff 1 s doubling up to 60 s, with jitter.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

/// What kind of request failed, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A read: safe to repeat.
    Read,
    /// A write: repeat only when Apple certainly did not act.
    Write,
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the number of attempts (first included; at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the total time budget.
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }

    /// Sets the backoff: first wait, ceiling, growth factor.
    pub fn backoff(mut self, initial: Duration, max: Duration, multiplier: f64) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self.multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
            multiplier
        } else {
            1.0
        };
        self
    }

    /// Turns jitter on or off.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The backoff before retry number `retry` (1 = the first retry), jitter included.
    pub fn backoff_for(&self, retry: u32) -> Duration {
        let exp = self.multiplier.powi(retry.saturating_sub(1).min(64) as i32);
        let secs = (self.initial_backoff.as_secs_f64() * exp).min(self.max_backoff.as_secs_f64());
        let d = Duration::from_secs_f64(secs.max(0.0));
        if self.jitter && !d.is_zero() {
            let half = d / 2;
            let extra = rand::thread_rng().gen_range(0..=(d - half).as_nanos() as u64);
            half + Duration::from_nanos(extra)
        } else {
            d
        }
    }

    /// The wait before the next attempt, or `None` to give up. `attempts` is how
    /// many attempts were made so far, `elapsed` the time since the first.
    pub(crate) fn next_delay(
        &self,
        attempts: u32,
        elapsed: Duration,
        error: &Error,
        kind: RequestKind,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let backoff = || self.backoff_for(attempts);
        let delay = match error {
            Error::Api {
                error,
                status,
                retry_after,
                ..
            } => {
                if error.number == ErrorNumber::TooManyRequests || *status == 429 {
                    backoff().max(retry_after.unwrap_or_default())
                } else if error.number.is_retryable() || *status >= 500 {
                    // A synchronous Apple error starts no asynchronous work: safe for writes.
                    retry_after.unwrap_or_else(backoff)
                } else {
                    return None;
                }
            }
            Error::Http {
                status,
                retry_after,
                ..
            } => {
                if *status == 429 {
                    backoff().max(retry_after.unwrap_or_default())
                } else if (500..600).contains(status) && kind == RequestKind::Read {
                    retry_after.unwrap_or_else(backoff)
                } else {
                    return None;
                }
            }
            Error::Transport { source, .. } if kind == RequestKind::Read || source.is_connect() => {
                backoff()
            }
            _ => return None,
        };
        if elapsed.saturating_add(delay) > self.max_elapsed {
            return None;
        }
        Some(delay)
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    fn api(number: i32, status: u16, retry_after: Option<Duration>) -> Error {
        Error::Api {
            method: "GET",
            path: "/assets".into(),
            status,
            error: Box::new(ApiError::new(number, "m")),
            retry_after,
        }
    }

    fn http(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Http {
            method: "GET",
            path: "/assets".into(),
            status,
            retry_after,
            body: String::new(),
        }
    }

    fn fixed() -> RetryPolicy {
        RetryPolicy::new()
            .backoff(Duration::from_secs(1), Duration::from_secs(8), 2.0)
            .jitter(false)
    }

    #[test]
    fn exponential_backoff_is_capped() {
        let p = fixed();
        let got: Vec<_> = (1..=6).map(|r| p.backoff_for(r).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = fixed().jitter(true);
        for r in 1..=5 {
            let d = p.backoff_for(r);
            let full = fixed().backoff_for(r);
            assert!(d >= full / 2 && d <= full, "{d:?} {full:?}");
        }
    }

    #[test]
    fn throttling_uses_backoff_with_retry_after_floor() {
        let p = fixed();
        let r = RequestKind::Read;
        assert_eq!(
            p.next_delay(1, Duration::ZERO, &api(9646, 429, None), r),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.next_delay(3, Duration::ZERO, &api(9646, 429, None), r),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            p.next_delay(
                1,
                Duration::ZERO,
                &http(429, Some(Duration::from_secs(7))),
                r
            ),
            Some(Duration::from_secs(7))
        );
        // 9646 on a write is a refusal: safe to retry.
        assert!(p
            .next_delay(1, Duration::ZERO, &api(9646, 429, None), RequestKind::Write)
            .is_some());
    }

    #[test]
    fn server_errors_honour_retry_after() {
        let p = fixed();
        let r = RequestKind::Read;
        assert_eq!(
            p.next_delay(
                1,
                Duration::ZERO,
                &http(503, Some(Duration::from_secs(120))),
                r
            ),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            p.next_delay(2, Duration::ZERO, &api(9603, 500, None), r),
            Some(Duration::from_secs(2))
        );
        // A bare 5xx on a write may hide an accepted write: no retry.
        assert_eq!(
            p.next_delay(1, Duration::ZERO, &http(502, None), RequestKind::Write),
            None
        );
        // An Apple 5xx error body on a write is a synchronous refusal: retried.
        assert!(p
            .next_delay(1, Duration::ZERO, &api(9729, 503, None), RequestKind::Write)
            .is_some());
    }

    #[test]
    fn permanent_errors_and_bounds() {
        let p = fixed().max_attempts(3);
        let r = RequestKind::Read;
        assert_eq!(
            p.next_delay(1, Duration::ZERO, &api(9718, 400, None), r),
            None
        );
        assert_eq!(
            p.next_delay(1, Duration::ZERO, &api(9621, 401, None), r),
            None
        );
        assert_eq!(p.next_delay(1, Duration::ZERO, &http(404, None), r), None);
        assert_eq!(
            p.next_delay(3, Duration::ZERO, &api(9646, 429, None), r),
            None
        );
        let p = fixed().max_elapsed(Duration::from_secs(10));
        assert_eq!(
            p.next_delay(
                1,
                Duration::from_secs(5),
                &http(503, Some(Duration::from_secs(6))),
                r
            ),
            None
        );
        assert!(RetryPolicy::none()
            .next_delay(1, Duration::ZERO, &api(9646, 429, None), r)
            .is_none());
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
