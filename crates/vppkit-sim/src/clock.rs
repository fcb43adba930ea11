//! The clock that moves asynchronous events from `PENDING` to done.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The simulator's clock. Every accepted write becomes an event that completes
/// `event_delay` after it was accepted, in simulated time:
///
/// - [`SimClock::real_time`]: simulated time is wall time since the simulator
///   started; a background task completes events as they fall due (the default,
///   with a 200 ms delay, so demos are quick).
/// - [`SimClock::manual`]: time only moves when a test calls
///   [`Control::advance`](crate::Control::advance); nothing completes on its own
///   ([`Control::complete_pending`](crate::Control::complete_pending) finishes
///   everything at once).
#[derive(Debug, Clone)]
pub struct SimClock {
    mode: Arc<Mode>,
    delay: Duration,
}

#[derive(Debug)]
enum Mode {
    Manual(Mutex<Duration>),
    RealTime(Instant),
}

impl SimClock {
    /// A clock that moves only when told to; events complete one second of
    /// simulated time after they were accepted.
    pub fn manual() -> Self {
        Self {
            mode: Arc::new(Mode::Manual(Mutex::new(Duration::ZERO))),
            delay: Duration::from_secs(1),
        }
    }

    /// Wall-clock time; events complete `event_delay` after they were accepted.
    pub fn real_time(event_delay: Duration) -> Self {
        Self {
            mode: Arc::new(Mode::RealTime(Instant::now())),
            delay: event_delay,
        }
    }

    /// The same clock with another event delay.
    pub fn with_event_delay(mut self, event_delay: Duration) -> Self {
        self.delay = event_delay;
        self
    }

    /// How long an event stays `PENDING`.
    pub fn event_delay(&self) -> Duration {
        self.delay
    }

    /// Whether time moves only through [`Control::advance`](crate::Control::advance).
    pub fn is_manual(&self) -> bool {
        matches!(*self.mode, Mode::Manual(_))
    }

    /// Simulated time since the simulator started.
    pub fn now(&self) -> Duration {
        match &*self.mode {
            Mode::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
            Mode::RealTime(start) => start.elapsed(),
        }
    }

    /// Moves a manual clock forward; returns `false` (and does nothing) for a
    /// real-time clock.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        match &*self.mode {
            Mode::Manual(t) => {
                *t.lock().unwrap_or_else(|e| e.into_inner()) += by;
                true
            }
            Mode::RealTime(_) => false,
        }
    }
}

impl Default for SimClock {
    /// Real time with a 200 ms event delay.
    fn default() -> Self {
        Self::real_time(Duration::from_millis(200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_moves_only_when_advanced() {
        let c = SimClock::manual();
        assert!(c.is_manual());
        assert_eq!(c.now(), Duration::ZERO);
        assert!(c.advance(Duration::from_secs(3)));
        assert_eq!(c.now(), Duration::from_secs(3));
        let r = SimClock::default();
        assert!(!r.is_manual());
        assert!(!r.advance(Duration::from_secs(3)));
        assert_eq!(r.event_delay(), Duration::from_millis(200));
    }
}
