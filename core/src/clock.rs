//! The injected clock. Evaluation reads time only through [`Clock`], so tests
//! and conformance runs can pin it.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock that returns a set time until told otherwise (for tests and vectors).
#[derive(Debug, Default)]
pub struct FixedClock {
    ms: AtomicI64,
}

impl FixedClock {
    /// A clock fixed at `ms` milliseconds since the epoch.
    pub fn new(ms: i64) -> Self {
        FixedClock { ms: AtomicI64::new(ms) }
    }
    /// Moves the clock to `ms`.
    pub fn set(&self, ms: i64) {
        self.ms.store(ms, Ordering::Relaxed);
    }
    /// Moves the clock forward by `delta_ms`.
    pub fn advance(&self, delta_ms: i64) {
        self.ms.fetch_add(delta_ms, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::Relaxed)
    }
}
