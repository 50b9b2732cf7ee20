//! The activity operations in the functional core (`Tx::pause_activity`, `unpause_activity`,
//! `reset_activity`, `update_activity_options`) with a hand-moved clock: what they change in the
//! state, which dispatches and timers they ask for, and that they write no history event.

use std::time::{Duration, SystemTime};

use perdure_core::Error;
use perdure_core::clock::convert::{pdur, ts};
use perdure_core::mutable::{ActivityMatch, ActivityOptionsUpdate, Effect, StartParams, TimerKind};
use perdure_core::mutable::{Tx, start_run};
use perdure_core::state::ExecutionState;
use perdure_proto::api::activity::v1::ActivityOptions;
use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, Payload, Payloads, RetryPolicy};
use perdure_proto::api::enums::v1::{EventType, TimeoutType};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

const SCHED: i64 = 5;

struct Run {
    state: ExecutionState,
    history: Vec<HistoryEvent>,
    now: SystemTime,
    effects: Vec<Effect>,
}

impl Run {
    /// A run whose first workflow task scheduled activity "a1" (type "charge", event 5).
    fn with_activity(retry: RetryPolicy, s2c: Option<Duration>) -> Run {
        let nr = start_run(
            StartParams {
                namespace: "default".into(),
                namespace_id: "ns".into(),
                workflow_id: "wf".into(),
                run_id: "run-1".into(),
                workflow_type: "order".into(),
                task_queue: "q".into(),
                attempt: 1,
                ..Default::default()
            },
            t0(),
        );
        let mut r = Run {
            state: nr.state,
            history: nr.events,
            now: t0(),
            effects: nr.effects,
        };
        r.step(|tx| tx.start_wft("req", "worker"));
        let req = RespondWorkflowTaskCompletedRequest {
            commands: vec![Command {
                attributes: Some(CA::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes {
                        activity_id: "a1".into(),
                        activity_type: Some(ActivityType {
                            name: "charge".into(),
                        }),
                        start_to_close_timeout: Some(pdur(Duration::from_secs(10))),
                        schedule_to_close_timeout: s2c.map(pdur),
                        retry_policy: Some(retry),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }],
            identity: "worker".into(),
            ..Default::default()
        };
        r.step(|tx| tx.complete_wft(&req, &|_| None)).unwrap();
        assert_eq!(r.state.activities[0].scheduled_event_id, SCHED);
        r
    }

    fn step<R>(&mut self, f: impl FnOnce(&mut Tx) -> R) -> R {
        let mut tx = Tx::new(&mut self.state, self.now);
        let r = f(&mut tx);
        let (events, effects) = (tx.events, tx.effects);
        self.history.extend(events);
        self.effects = effects;
        r
    }

    /// Runs an operation and checks it wrote no history event.
    fn op<R>(&mut self, f: impl FnOnce(&mut Tx) -> R) -> R {
        let n = self.history.len();
        let r = self.step(f);
        assert_eq!(self.history.len(), n, "activity operations write no events");
        r
    }

    fn start(&mut self) {
        self.step(|tx| tx.start_activity(0, "req", "w"));
    }

    fn fail(&mut self) -> bool {
        let f = Failure {
            message: "boom".into(),
            ..Default::default()
        };
        self.step(|tx| tx.activity_failed(0, Some(f), None, "w"))
    }

    fn a(&self) -> &perdure_core::state::ActivityState {
        &self.state.activities[0]
    }

    fn dispatched(&self) -> Option<i32> {
        self.effects.iter().find_map(|e| match e {
            Effect::DispatchActivity { attempt, .. } => Some(*attempt),
            _ => None,
        })
    }

    fn timer_at(&self, kind: impl Fn(&TimerKind) -> bool) -> Option<SystemTime> {
        self.effects.iter().find_map(|e| match e {
            Effect::Timer { at, kind: k } if kind(k) => Some(*at),
            _ => None,
        })
    }

    fn retry_timer(&self) -> Option<SystemTime> {
        self.timer_at(|k| matches!(k, TimerKind::ActivityRetry { .. }))
    }
}

fn retry(initial_secs: u64) -> RetryPolicy {
    RetryPolicy {
        initial_interval: Some(pdur(Duration::from_secs(initial_secs))),
        backoff_coefficient: 2.0,
        ..Default::default()
    }
}

fn pause(tx: &mut Tx, request_id: &str) -> Result<(), Error> {
    tx.pause_activity(SCHED, "ops", "maintenance", request_id)
}

#[test]
fn a_paused_attempt_that_fails_waits_for_the_unpause() {
    let mut r = Run::with_activity(retry(1), None);
    r.start();
    r.op(|tx| pause(tx, "")).unwrap();
    assert!(r.a().paused);
    assert_eq!(r.a().pause_identity, "ops");
    assert_eq!(r.a().pause_reason, "maintenance");
    // The running attempt learns of the pause at its heartbeat.
    let reply = r.step(|tx| tx.activity_heartbeat(0, None));
    assert!(reply.activity_paused && !reply.activity_reset && !reply.cancel_requested);
    // Its failure counts the attempt but schedules nothing.
    assert!(r.fail());
    assert_eq!(r.a().attempt, 2);
    assert!(r.a().started_time.is_none());
    assert_eq!(r.dispatched(), None);
    assert_eq!(r.retry_timer(), None);
    // Nothing can start it: a stale queued task or retry timer is refused.
    r.now += Duration::from_secs(60);
    assert!(!r.step(|tx| tx.activity_dispatchable(0, 2)));
    // Unpause schedules attempt 2 now (plus the jitter the shell drew).
    let jitter = Duration::from_millis(300);
    r.op(|tx| tx.unpause_activity(SCHED, false, false, jitter))
        .unwrap();
    assert!(!r.a().paused);
    assert!(r.a().last_failure.is_none());
    assert_eq!(r.retry_timer(), Some(r.now + jitter));
    assert!(!r.step(|tx| tx.activity_dispatchable(0, 2)));
    r.now += jitter;
    assert!(r.step(|tx| tx.activity_dispatchable(0, 2)));
    r.start();
    r.step(|tx| tx.activity_completed(0, None, "w"));
    assert!(r.state.activities.is_empty());
    assert_eq!(
        EventType::try_from(r.history[r.history.len() - 2].event_type).unwrap(),
        EventType::ActivityTaskCompleted
    );
}

#[test]
fn pausing_twice_and_unknown_or_closed_targets() {
    let mut r = Run::with_activity(retry(1), None);
    r.op(|tx| pause(tx, "r1")).unwrap();
    // The same request again is a no-op; another one is refused.
    r.op(|tx| pause(tx, "r1")).unwrap();
    let again = r.op(|tx| pause(tx, "r2")).unwrap_err();
    assert!(matches!(again, Error::FailedPrecondition(m) if m == "activity is already paused"));
    assert!(r.step(|tx| {
        tx.activity_matches(&ActivityMatch::Id("nope".into()))
            .is_empty()
    }));
    assert_eq!(
        r.step(|tx| tx.activity_matches(&ActivityMatch::Type("charge".into()))),
        vec![SCHED]
    );
    // Unpausing an activity that is not paused changes nothing.
    r.op(|tx| tx.unpause_activity(SCHED, false, false, Duration::ZERO))
        .unwrap();
    r.op(|tx| tx.unpause_activity(SCHED, false, false, Duration::ZERO))
        .unwrap();
    assert_eq!(r.effects, vec![]);
    r.step(|tx| tx.terminate("done", None, "me"));
    let closed = r.op(|tx| pause(tx, "r3")).unwrap_err();
    assert!(matches!(closed, Error::NotFound(m) if m == "workflow execution already completed"));
}

#[test]
fn timers_of_a_paused_activity_do_nothing_until_the_unpause() {
    let mut r = Run::with_activity(retry(1), Some(Duration::from_secs(30)));
    r.op(|tx| pause(tx, "")).unwrap();
    r.now += Duration::from_secs(31);
    assert!(!r.step(|tx| tx.activity_timeout(SCHED, 0, TimeoutType::ScheduleToClose)));
    assert_eq!(r.state.activities.len(), 1);
    // Unpausing arms the schedule-to-close timer again; its deadline has passed.
    r.op(|tx| tx.unpause_activity(SCHED, false, false, Duration::ZERO))
        .unwrap();
    let at = r
        .timer_at(|k| {
            matches!(k, TimerKind::Activity { timeout, .. } if *timeout == TimeoutType::ScheduleToClose as i32)
        })
        .unwrap();
    assert_eq!(at, t0() + Duration::from_secs(30));
    assert!(r.step(|tx| tx.activity_timeout(SCHED, 0, TimeoutType::ScheduleToClose)));
    assert!(r.state.activities.is_empty());
    assert!(
        r.history
            .iter()
            .any(|e| e.event_type == EventType::ActivityTaskTimedOut as i32)
    );
}

#[test]
fn reset_starts_again_from_attempt_one() {
    let mut r = Run::with_activity(retry(30), None);
    // Two failed attempts: attempt 3 waits 60s.
    for _ in 0..2 {
        r.start();
        r.state.activities[0].heartbeat_details = Some(Payloads {
            payloads: vec![Payload::default()],
        });
        assert!(r.fail());
        r.now = r.retry_timer().unwrap();
    }
    r.now -= Duration::from_secs(59);
    assert_eq!(r.a().attempt, 3);
    r.op(|tx| tx.reset_activity(SCHED, true, false, Duration::ZERO, None))
        .unwrap();
    assert_eq!(r.a().attempt, 1);
    assert!(
        r.a().heartbeat_details.is_none(),
        "reset_heartbeat drops them"
    );
    assert_eq!(r.dispatched(), Some(1), "scheduled at once");
    // The old retry timer of attempt 3 no longer starts anything.
    assert!(!r.step(|tx| tx.activity_dispatchable(0, 3)));
    // A running attempt is told at its heartbeat; keep_paused keeps a paused one paused.
    r.start();
    r.op(|tx| pause(tx, "")).unwrap();
    r.op(|tx| tx.reset_activity(SCHED, false, true, Duration::ZERO, None))
        .unwrap();
    let reply = r.step(|tx| tx.activity_heartbeat(0, None));
    assert!(reply.activity_reset && reply.activity_paused);
    assert!(r.fail());
    assert!(r.a().paused);
    assert_eq!(r.a().attempt, 2, "the reset attempt 1 failed");
    assert_eq!(r.dispatched(), None);
    // A reset without keep_paused unpauses and schedules attempt 1 now.
    r.op(|tx| tx.reset_activity(SCHED, false, false, Duration::ZERO, None))
        .unwrap();
    assert!(!r.a().paused);
    assert_eq!(r.dispatched(), Some(1));
    r.start();
    let reply = r.step(|tx| tx.activity_heartbeat(0, None));
    assert!(!reply.activity_reset && !reply.activity_paused);
}

fn update(paths: &[&str], options: ActivityOptions) -> ActivityOptionsUpdate {
    ActivityOptionsUpdate {
        options,
        paths: paths.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn options_update_rearms_the_timeouts_and_the_retry() {
    let mut r = Run::with_activity(retry(30), None);
    r.start();
    // A shorter start-to-close for the running attempt: due 2s after its start.
    let started = r.now;
    r.now += Duration::from_secs(1);
    let o = r
        .op(|tx| {
            tx.update_activity_options(
                SCHED,
                &update(
                    &["start_to_close_timeout"],
                    ActivityOptions {
                        start_to_close_timeout: Some(pdur(Duration::from_secs(2))),
                        ..Default::default()
                    },
                ),
            )
        })
        .unwrap();
    assert_eq!(o.start_to_close_timeout, Some(pdur(Duration::from_secs(2))));
    assert_eq!(o.task_queue.unwrap().name, "q");
    let at = r.timer_at(|k| {
        matches!(k, TimerKind::Activity { timeout, .. } if *timeout == TimeoutType::StartToClose as i32)
    });
    assert_eq!(at, Some(started + Duration::from_secs(2)));
    r.now = started + Duration::from_secs(2);
    assert!(r.step(|tx| tx.activity_timeout(SCHED, 1, TimeoutType::StartToClose)));
    // Retried in 30s; a policy with a 1s interval brings the attempt forward (Temporal counts
    // the interval of the attempt now waiting: 1s * 2).
    assert_eq!(r.a().attempt, 2);
    let failed_at = r.now;
    assert_eq!(r.retry_timer(), Some(failed_at + Duration::from_secs(30)));
    let o = r
        .op(|tx| {
            tx.update_activity_options(
                SCHED,
                &update(
                    &["retryPolicy.initialInterval"],
                    ActivityOptions {
                        retry_policy: Some(RetryPolicy {
                            initial_interval: Some(pdur(Duration::from_secs(1))),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
            )
        })
        .unwrap();
    assert_eq!(
        o.retry_policy.unwrap().initial_interval,
        Some(pdur(Duration::from_secs(1)))
    );
    assert_eq!(r.retry_timer(), Some(failed_at + Duration::from_secs(2)));
    assert_eq!(
        r.a().current_attempt_scheduled_time,
        Some(ts(failed_at + Duration::from_secs(2)))
    );
    // The old start-to-close timer of the longer timeout (had it been armed) fires early and is
    // armed again instead of timing out: shown with a longer start-to-close.
    r.now = failed_at + Duration::from_secs(2);
    r.start();
    r.op(|tx| {
        tx.update_activity_options(
            SCHED,
            &update(
                &["start_to_close_timeout"],
                ActivityOptions {
                    start_to_close_timeout: Some(pdur(Duration::from_secs(20))),
                    ..Default::default()
                },
            ),
        )
    })
    .unwrap();
    r.now += Duration::from_secs(2);
    assert!(!r.step(|tx| tx.activity_timeout(SCHED, 2, TimeoutType::StartToClose)));
    assert_eq!(r.state.activities.len(), 1);
    // Invalid updates are refused with Temporal's messages and change nothing.
    let bad = r
        .op(|tx| {
            tx.update_activity_options(
                SCHED,
                &update(
                    &["retry_policy.backoff_coefficient"],
                    ActivityOptions {
                        retry_policy: Some(RetryPolicy {
                            backoff_coefficient: 0.5,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
            )
        })
        .unwrap_err();
    assert!(
        matches!(bad, Error::InvalidArgument(m) if m == "BackoffCoefficient cannot be less than 1 on retry policy.")
    );
    let bad = r
        .op(|tx| {
            tx.update_activity_options(
                SCHED,
                &update(&["start_to_close_timeout"], ActivityOptions::default()),
            )
        })
        .unwrap_err();
    assert!(
        matches!(bad, Error::InvalidArgument(m) if m.starts_with("a valid StartToCloseTimeout"))
    );
}
