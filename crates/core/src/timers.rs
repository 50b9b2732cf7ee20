//! The timer service: an in-memory min-heap of deadlines driven by the injected clock. Timers are
//! durable because they are rebuilt from mutable state at start-up; a firing is only a hint that
//! the engine re-validates against the run's state.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use crate::clock::SharedClock;
use crate::matching::RunKey;
use crate::mutable::TimerKind;

/// A due timer.
pub type Fired = (RunKey, TimerKind);

type Heap = BinaryHeap<Reverse<(SystemTime, RunKey, TimerKind)>>;

/// Handle to the timer task.
#[derive(Clone)]
pub struct Timers {
    heap: Arc<Mutex<Heap>>,
    wake: Arc<Notify>,
}

impl Timers {
    /// Starts the timer task; due timers are sent on the returned channel.
    pub fn start(clock: SharedClock) -> (Self, mpsc::UnboundedReceiver<Fired>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let t = Timers {
            heap: Default::default(),
            wake: Arc::new(Notify::new()),
        };
        let me = t.clone();
        tokio::spawn(async move {
            loop {
                let notified = me.wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let next = me.heap.lock().peek().map(|Reverse((at, _, _))| *at);
                let now = clock.now();
                match next {
                    Some(at) if at <= now => {
                        let Some(Reverse((_, run, kind))) = me.heap.lock().pop() else {
                            continue;
                        };
                        if tx.send((run, kind)).is_err() {
                            return;
                        }
                    }
                    Some(at) => {
                        tokio::select! {
                            _ = clock.sleep_until(at) => {}
                            _ = &mut notified => {}
                        }
                    }
                    None => notified.await,
                }
            }
        });
        (t, rx)
    }

    /// Arms a timer.
    pub fn add(&self, at: SystemTime, run: RunKey, kind: TimerKind) {
        let earliest = {
            let mut h = self.heap.lock();
            let earlier = h.peek().is_none_or(|Reverse((t, _, _))| at < *t);
            h.push(Reverse((at, run, kind)));
            earlier
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.heap.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_in_deadline_order_with_a_manual_clock() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = ManualClock::new(start);
        let (timers, mut rx) = Timers::start(Arc::new(clock.clone()));
        let run = RunKey {
            namespace_id: "n".into(),
            run_id: "r".into(),
        };
        timers.add(
            start + Duration::from_secs(3600),
            run.clone(),
            TimerKind::User(2),
        );
        timers.add(
            start + Duration::from_secs(60),
            run.clone(),
            TimerKind::User(1),
        );
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "nothing is due yet");
        clock.advance(Duration::from_secs(61));
        let (_, k) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k, TimerKind::User(1));
        assert!(rx.try_recv().is_err());
        clock.advance(Duration::from_secs(3600));
        let (_, k) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k, TimerKind::User(2));
    }
}
