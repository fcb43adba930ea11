//! Client-side pacing: requests of one token spaced at `1 / maxRequestPerSecond`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How a client paces its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pacing {
    /// `maxRequestPerSecond` from service config (15 until it has been read).
    #[default]
    FromServiceConfig,
    /// A fixed number of requests per second.
    PerSecond(u32),
    /// No pacing (tests, benchmarks, a local simulator).
    Off,
}

/// Hands out request slots at least `interval` apart; shared by a client's clones.
#[derive(Debug)]
pub(crate) struct Pacer {
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new() -> Self {
        Self {
            next: Mutex::new(None),
        }
    }

    /// Reserves the next slot and waits for it. `per_second == 0` means no pacing.
    pub(crate) async fn wait(&self, per_second: u32) {
        if per_second == 0 {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / f64::from(per_second));
        let slot = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests() {
        let pacer = std::sync::Arc::new(Pacer::new());
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..10 {
            let p = pacer.clone();
            handles.push(tokio::spawn(async move {
                p.wait(5).await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap() - start);
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            assert_eq!(*t, Duration::from_millis(200) * i as u32, "slot {i}");
        }
        // Off: no wait at all.
        let before = Instant::now();
        pacer.wait(0).await;
        assert_eq!(Instant::now(), before);
    }
}
