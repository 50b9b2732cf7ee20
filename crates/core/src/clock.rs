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
        UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.max(0) as u32)
    }
    pub fn ts_nanos(t: &Timestamp) -> i64 {
        t.seconds.saturating_mul(1_000_000_000) + t.nanos as i64
    }
    pub fn opt_ts_nanos(t: &Option<Timestamp>) -> i64 {
        t.as_ref().map(ts_nanos).unwrap_or(0)
    }
    /// A protobuf duration as std; negative or unset → zero.
    pub fn dur(d: &Option<PDuration>) -> Duration {
        match d {
            Some(d) if d.seconds > 0 || (d.seconds == 0 && d.nanos > 0) => {
                Duration::new(d.seconds as u64, d.nanos.max(0) as u32)
            }
            _ => Duration::ZERO,
        }
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
