//! The timer service: an in-memory min-heap of deadlines driven by the injected clock, holding
//! only the timers that fall due soon (the engine leaves later ones to the store's index of wake
//! times and loads them as their time nears). Timers are durable because they are rebuilt from
//! mutable state; a firing is only a hint that the engine re-validates against the run's state.
//! A timer armed twice (re-armed from the store while already armed) is kept once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use crate::clock::SharedClock;
use crate::matching::RunKey;
use crate::mutable::TimerKind;

/// A due timer.
pub type Fired = (RunKey, TimerKind);

type Entry = (SystemTime, RunKey, TimerKind);

/// The armed timers: a min-heap, and the same entries as a set so none is armed twice.
#[derive(Default)]
struct Heap {
    heap: BinaryHeap<Reverse<Entry>>,
    armed: HashSet<Entry>,
}

impl Heap {
    fn peek(&self) -> Option<&Reverse<Entry>> {
        self.heap.peek()
    }

    fn pop(&mut self) -> Option<Reverse<Entry>> {
        let e = self.heap.pop()?;
        self.armed.remove(&e.0);
        Some(e)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

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

    /// Arms a timer (once: arming the same timer again does nothing).
    pub fn add(&self, at: SystemTime, run: RunKey, kind: TimerKind) {
        let earliest = {
            let mut h = self.heap.lock();
            let entry = (at, run, kind);
            if h.armed.contains(&entry) {
                return;
            }
            let earlier = h.peek().is_none_or(|Reverse((t, _, _))| at < *t);
            h.armed.insert(entry.clone());
            h.heap.push(Reverse(entry));
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

    #[tokio::test]
    async fn a_timer_armed_twice_fires_once() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = ManualClock::new(start);
        let (timers, mut rx) = Timers::start(Arc::new(clock.clone()));
        let run = RunKey {
            namespace_id: "n".into(),
            run_id: "r".into(),
        };
        let at = start + Duration::from_secs(60);
        timers.add(at, run.clone(), TimerKind::User(1));
        timers.add(at, run.clone(), TimerKind::User(1));
        timers.add(at, run.clone(), TimerKind::User(5));
        assert_eq!(timers.len(), 2);
        clock.advance(Duration::from_secs(61));
        let mut fired = Vec::new();
        for _ in 0..2 {
            let (_, k) = tokio::time::timeout(Duration::from_secs(1), rx.recv())
                .await
                .unwrap()
                .unwrap();
            fired.push(k);
        }
        fired.sort();
        assert_eq!(fired, [TimerKind::User(1), TimerKind::User(5)]);
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "the duplicate did not fire");
        // Once fired, the same timer may be armed again.
        timers.add(at, run, TimerKind::User(1));
        assert_eq!(timers.len(), 1);
    }
}
