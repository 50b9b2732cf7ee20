//! The injected clock: every timer, timeout and event time in the engine reads time through
//! [`Clock`], so tests can run hours of workflow time in milliseconds with [`ManualClock`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Source of "now" and of sleeping until a given instant.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
    /// Resolves once `now() >= deadline` (or a little later).
    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<'static, ()>;
}

/// The wall clock.
#[derive(Debug, Default, Clone)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<'static, ()> {
        let wait = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<(Mutex<SystemTime>, Notify)>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self {
            inner: Arc::new((Mutex::new(start), Notify::new())),
        }
    }
    /// Moves time forward and wakes every sleeper.
    pub fn advance(&self, by: Duration) {
        *self.inner.0.lock() += by;
        self.inner.1.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.inner.0.lock()
    }
    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            loop {
                let notified = inner.1.notified();
                if *inner.0.lock() >= deadline {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Conversions between std time and protobuf time.
pub mod convert {
    use super::*;
    use perdure_proto::prost_types::{Duration as PDuration, Timestamp};

    pub fn ts(t: SystemTime) -> Timestamp {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
    pub fn from_ts(t: &Timestamp) -> SystemTime {
        if t.seconds < 0 {
            return UNIX_EPOCH;
        }
        let since = Duration::new(t.seconds as u64, t.nanos.clamp(0, 999_999_999) as u32);
        // The latest instant a protobuf timestamp can hold: 9999-12-31T23:59:59Z.
        UNIX_EPOCH + since.min(Duration::from_secs(253_402_300_799))
    }
    pub fn ts_nanos(t: &Timestamp) -> i64 {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(t.nanos as i64)
    }
    pub fn opt_ts_nanos(t: &Option<Timestamp>) -> i64 {
        t.as_ref().map(ts_nanos).unwrap_or(0)
    }
    /// The longest duration Temporal's server can hold (Go's `time.Duration`: signed 64-bit
    /// nanoseconds, about 292 years); longer protobuf durations saturate to it, as there.
    pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

    /// A protobuf duration as std; negative or unset → zero, longer than [`MAX_DURATION`] →
    /// [`MAX_DURATION`], so time arithmetic on client input can never overflow.
    pub fn dur(d: &Option<PDuration>) -> Duration {
        match d {
            Some(d) if d.seconds > 0 || (d.seconds == 0 && d.nanos > 0) => {
                Duration::new(d.seconds as u64, d.nanos.clamp(0, 999_999_999) as u32)
                    .min(MAX_DURATION)
            }
            _ => Duration::ZERO,
        }
    }

    /// Whether a protobuf duration is negative (seconds or nanos below zero).
    pub fn is_negative(d: &Option<PDuration>) -> bool {
        d.as_ref().is_some_and(|d| d.seconds < 0 || d.nanos < 0)
    }
    pub fn pdur(d: Duration) -> PDuration {
        PDuration {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
    /// `Some(d)` when non-zero.
    pub fn nz(d: Duration) -> Option<PDuration> {
        if d.is_zero() { None } else { Some(pdur(d)) }
    }
}
