//! Engine tests without network or database: the functional core ([`Tx`]) driven with canned
//! worker completions and a hand-moved clock, checking the events and effects it produces.

use std::time::{Duration, SystemTime};

use perdure_core::clock::convert::pdur;
use perdure_core::mutable::{Effect, SignalParams, StartParams, TimerKind, Tx, start_run};
use perdure_core::state::ExecutionState;
use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, Payloads, RetryPolicy};
use perdure_proto::api::enums::v1::{ContinueAsNewInitiator, EventType, RetryState, TimeoutType};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A run plus its full persisted history, driven step by step.
struct Run {
    ms: ExecutionState,
    history: Vec<HistoryEvent>,
    now: SystemTime,
    effects: Vec<Effect>,
}

impl Run {
    fn start() -> Run {
        let nr = start_run(
            StartParams {
                namespace: "default".into(),
                namespace_id: "ns".into(),
                workflow_id: "order-1".into(),
                run_id: "run-1".into(),
                workflow_type: "order".into(),
                task_queue: "q".into(),
                attempt: 1,
                ..Default::default()
            },
            t0(),
        );
        Run {
            ms: nr.state,
            history: nr.events,
            now: t0(),
            effects: nr.effects,
        }
    }

    fn step<R>(&mut self, f: impl FnOnce(&mut Tx) -> R) -> R {
        let mut tx = Tx::new(&mut self.ms, self.now);
        let r = f(&mut tx);
        let (events, effects) = (tx.events, tx.effects);
        self.history.extend(events);
        self.effects = effects;
        r
    }

    fn types(&self) -> Vec<EventType> {
        self.history
            .iter()
            .map(|e| EventType::try_from(e.event_type).unwrap())
            .collect()
    }

    fn poll(&mut self) -> i64 {
        self.step(|tx| tx.start_wft("req", "worker"))
            .started_event_id
    }

    fn complete(&mut self, commands: Vec<CA>) -> Result<(), String> {
        let req = RespondWorkflowTaskCompletedRequest {
            commands: commands
                .into_iter()
                .map(|a| Command {
                    attributes: Some(a),
                    ..Default::default()
                })
                .collect(),
            identity: "worker".into(),
            ..Default::default()
        };
        self.step(|tx| tx.complete_wft(&req, &|_| None))
            .map_err(|r| r.0)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn ids_are_contiguous(&self) -> bool {
        self.history
            .iter()
            .enumerate()
            .all(|(i, e)| e.event_id == i as i64 + 1)
    }
}

fn activity(id: &str, ty: &str, retry: Option<RetryPolicy>) -> CA {
    CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
        activity_id: id.into(),
        activity_type: Some(ActivityType { name: ty.into() }),
        start_to_close_timeout: Some(pdur(Duration::from_secs(10))),
        retry_policy: retry,
        ..Default::default()
    })
}

fn timer(id: &str, secs: u64) -> CA {
    CA::StartTimerCommandAttributes(StartTimerCommandAttributes {
        timer_id: id.into(),
        start_to_fire_timeout: Some(pdur(Duration::from_secs(secs))),
    })
}

fn complete_wf() -> CA {
    CA::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
        result: Some(Payloads::default()),
    })
}

fn signal(name: &str) -> SignalParams {
    SignalParams {
        name: name.into(),
        ..Default::default()
    }
}

fn app_failure(msg: &str) -> Failure {
    Failure {
        message: msg.into(),
        ..Default::default()
    }
}

use EventType::*;

#[test]
fn workflow_task_lifecycle_and_command_events_in_order() {
    let mut r = Run::start();
    assert_eq!(
        r.types(),
        vec![WorkflowExecutionStarted, WorkflowTaskScheduled]
    );
    assert!(r.effects.contains(&Effect::DispatchWorkflowTask));
    let started = r.poll();
    assert_eq!(started, 3);
    r.complete(vec![activity("1", "charge", None), timer("t", 60)])
        .unwrap();
    assert_eq!(
        r.types()[2..],
        [
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            ActivityTaskScheduled,
            TimerStarted
        ]
    );
    // Command events carry the completed event id and the server's retry defaults.
    let Some(A::ActivityTaskScheduledEventAttributes(a)) = &r.history[4].attributes else {
        panic!("not an activity")
    };
    assert_eq!(a.workflow_task_completed_event_id, 4);
    let p = a.retry_policy.as_ref().unwrap();
    assert_eq!(p.backoff_coefficient, 2.0);
    assert_eq!(p.maximum_interval, Some(pdur(Duration::from_secs(100))));
    assert_eq!(r.ms.last_completed_wft_started_id, 3);
    assert!(r.ids_are_contiguous());
}

#[test]
fn signals_during_a_started_task_are_buffered_and_flushed_after_commands() {
    let mut r = Run::start();
    r.poll();
    r.step(|tx| tx.signal(signal("pickedUp")));
    assert_eq!(
        r.history.len(),
        3,
        "buffered signal must not be written yet"
    );
    r.complete(vec![timer("1", 60)]).unwrap();
    assert_eq!(
        r.types()[3..],
        [
            WorkflowTaskCompleted,
            TimerStarted,
            WorkflowExecutionSignaled,
            WorkflowTaskScheduled
        ]
    );
    assert!(r.ids_are_contiguous());
}

#[test]
fn signal_while_task_only_scheduled_is_written_at_once() {
    let mut r = Run::start();
    r.step(|tx| tx.signal(signal("s")));
    assert_eq!(
        r.types(),
        vec![
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowExecutionSignaled
        ]
    );
}

#[test]
fn closing_with_an_unhandled_signal_is_rejected() {
    let mut r = Run::start();
    r.poll();
    r.step(|tx| tx.signal(signal("late")));
    let err = r.complete(vec![complete_wf()]).unwrap_err();
    assert_eq!(err, "UnhandledCommand");
    assert_eq!(
        r.types()[3..],
        [
            WorkflowTaskFailed,
            WorkflowExecutionSignaled,
            WorkflowTaskScheduled
        ]
    );
    assert!(r.ms.wft.as_ref().is_some_and(|w| w.attempt == 1));
    // The retry sees the signal and may now complete.
    r.poll();
    r.complete(vec![complete_wf()]).unwrap();
    assert_eq!(*r.types().last().unwrap(), WorkflowExecutionCompleted);
    assert!(r.ids_are_contiguous());
}

#[test]
fn activity_is_retried_by_the_server_without_events_then_completes() {
    let mut r = Run::start();
    r.poll();
    let retry = RetryPolicy {
        initial_interval: Some(pdur(Duration::from_millis(100))),
        ..Default::default()
    };
    r.complete(vec![activity("1", "charge", Some(retry))])
        .unwrap();
    let n = r.history.len();
    let i = r.step(|tx| tx.activity_index(5)).unwrap();
    r.step(|tx| tx.start_activity(i, "req", "w"));
    let retried = r.step(|tx| tx.activity_failed(i, Some(app_failure("unreachable")), None, "w"));
    assert!(retried);
    assert_eq!(r.history.len(), n, "a retried attempt leaves no events");
    assert!(r.effects.iter().any(|e| matches!(
        e,
        Effect::Timer {
            kind: TimerKind::ActivityRetry { attempt: 2, .. },
            ..
        }
    )));
    r.advance(Duration::from_millis(100));
    r.step(|tx| tx.start_activity(i, "req2", "w"));
    r.step(|tx| tx.activity_completed(i, None, "w"));
    assert_eq!(
        r.types()[n..],
        [
            ActivityTaskStarted,
            ActivityTaskCompleted,
            WorkflowTaskScheduled
        ]
    );
    let Some(A::ActivityTaskStartedEventAttributes(s)) = &r.history[n].attributes else {
        panic!()
    };
    assert_eq!(s.attempt, 2);
    assert_eq!(s.last_failure.as_ref().unwrap().message, "unreachable");
    let Some(A::ActivityTaskCompletedEventAttributes(c)) = &r.history[n + 1].attributes else {
        panic!()
    };
    assert_eq!(c.started_event_id, r.history[n].event_id);
}

#[test]
fn non_retryable_failure_and_max_attempts_end_the_activity() {
    let mut r = Run::start();
    r.poll();
    let retry = RetryPolicy {
        maximum_attempts: 1,
        ..Default::default()
    };
    r.complete(vec![activity("1", "a", Some(retry))]).unwrap();
    let i = r.step(|tx| tx.activity_index(5)).unwrap();
    r.step(|tx| tx.start_activity(i, "req", "w"));
    assert!(!r.step(|tx| tx.activity_failed(i, Some(app_failure("x")), None, "w")));
    let Some(A::ActivityTaskFailedEventAttributes(f)) = &r.history[r.history.len() - 2].attributes
    else {
        panic!()
    };
    assert_eq!(f.retry_state, RetryState::MaximumAttemptsReached as i32);
}

#[test]
fn start_to_close_timeout_with_a_manual_clock() {
    let mut r = Run::start();
    r.poll();
    let retry = RetryPolicy {
        maximum_attempts: 1,
        ..Default::default()
    };
    r.complete(vec![activity("1", "slow", Some(retry))])
        .unwrap();
    let i = r.step(|tx| tx.activity_index(5)).unwrap();
    r.step(|tx| tx.start_activity(i, "req", "w"));
    // Too early: nothing happens.
    r.advance(Duration::from_secs(5));
    assert!(!r.step(|tx| tx.activity_timeout(5, 2, TimeoutType::StartToClose)));
    r.advance(Duration::from_secs(6));
    assert!(r.step(|tx| tx.activity_timeout(5, 1, TimeoutType::StartToClose)));
    let Some(A::ActivityTaskTimedOutEventAttributes(t)) =
        &r.history[r.history.len() - 2].attributes
    else {
        panic!()
    };
    assert_eq!(t.retry_state, RetryState::MaximumAttemptsReached as i32);
    assert_eq!(
        t.failure.as_ref().unwrap().message,
        "activity StartToClose timeout"
    );
}

#[test]
fn user_timer_fires_and_cancelled_timer_does_not() {
    let mut r = Run::start();
    r.poll();
    r.complete(vec![timer("a", 60), timer("b", 3600)]).unwrap();
    let (a_id, b_id) = (5, 6);
    assert!(r.effects.iter().any(|e| matches!(e,
        Effect::Timer { at, kind: TimerKind::User(id) } if *id == a_id && *at == t0() + Duration::from_secs(60))));
    r.advance(Duration::from_secs(60));
    assert!(r.step(|tx| tx.timer_fired(a_id)));
    assert_eq!(
        r.types()[r.history.len() - 2..],
        [TimerFired, WorkflowTaskScheduled]
    );
    r.poll();
    r.complete(vec![CA::CancelTimerCommandAttributes(
        CancelTimerCommandAttributes {
            timer_id: "b".into(),
        },
    )])
    .unwrap();
    assert_eq!(*r.types().last().unwrap(), TimerCanceled);
    assert!(
        !r.step(|tx| tx.timer_fired(b_id)),
        "a cancelled timer must not fire"
    );
}

#[test]
fn workflow_task_timeout_retries_as_a_transient_task() {
    let mut r = Run::start();
    r.poll();
    let seq = r.ms.wft.as_ref().unwrap().dispatch_seq;
    r.advance(Duration::from_secs(11));
    assert!(r.step(|tx| tx.wft_timeout(seq, TimeoutType::StartToClose)));
    assert_eq!(*r.types().last().unwrap(), WorkflowTaskTimedOut);
    let n = r.history.len();
    let w = r.ms.wft.clone().unwrap();
    assert!(w.transient && w.attempt == 2);
    // The transient attempt's events come with the poll, not in history.
    let started = r.step(|tx| tx.start_wft("req", "w"));
    assert_eq!(r.history.len(), n);
    assert_eq!(started.transient_events.len(), 2);
    assert_eq!(started.started_event_id, n as i64 + 2);
    r.complete(vec![complete_wf()]).unwrap();
    assert_eq!(
        r.types()[n..],
        [
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            WorkflowExecutionCompleted
        ]
    );
    assert!(r.ids_are_contiguous());
}

#[test]
fn duplicate_timer_id_fails_the_workflow_task() {
    let mut r = Run::start();
    r.poll();
    let err = r.complete(vec![timer("x", 1), timer("x", 2)]).unwrap_err();
    assert!(err.starts_with("StartTimerDuplicateId"), "{err}");
    assert_eq!(*r.types().last().unwrap(), WorkflowTaskFailed);
    // The retry is a transient attempt 2: its events are not persisted yet.
    assert!(
        r.ms.wft
            .as_ref()
            .is_some_and(|w| w.transient && w.attempt == 2)
    );
}

#[test]
fn continue_as_new_starts_a_new_run_in_the_same_transition() {
    let mut r = Run::start();
    r.poll();
    let new_run = r.step(|tx| {
        let req = RespondWorkflowTaskCompletedRequest {
            commands: vec![Command {
                attributes: Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(
                    ContinueAsNewWorkflowExecutionCommandAttributes::default(),
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        tx.complete_wft(&req, &|_| None).unwrap();
        tx.new_run.clone()
    });
    let nr = new_run.expect("a new run");
    assert_eq!(*r.types().last().unwrap(), WorkflowExecutionContinuedAsNew);
    assert_eq!(nr.state.first_execution_run_id, "run-1");
    assert_eq!(nr.state.workflow_type, "order");
    let Some(A::WorkflowExecutionStartedEventAttributes(s)) = &nr.events[0].attributes else {
        panic!()
    };
    assert_eq!(s.continued_execution_run_id, "run-1");
    assert_eq!(s.original_execution_run_id, nr.state.run_id);
}

#[test]
fn cron_run_completes_into_the_next_run_at_the_next_tick() {
    let mut r = Run::start();
    r.ms.cron_schedule = "*/5 * * * *".into();
    r.poll();
    r.advance(Duration::from_secs(62)); // closes at 00:01:02 past a 5-minute boundary
    let new_run = r.step(|tx| {
        let req = RespondWorkflowTaskCompletedRequest {
            commands: vec![Command {
                attributes: Some(complete_wf()),
                ..Default::default()
            }],
            ..Default::default()
        };
        tx.complete_wft(&req, &|_| None).unwrap();
        tx.new_run.clone()
    });
    let nr = new_run.expect("the next cron run");
    let Some(A::WorkflowExecutionCompletedEventAttributes(c)) =
        &r.history.last().unwrap().attributes
    else {
        panic!("closes as completed")
    };
    assert_eq!(c.new_execution_run_id, nr.state.run_id);
    let Some(A::WorkflowExecutionStartedEventAttributes(s)) = &nr.events[0].attributes else {
        panic!()
    };
    assert_eq!(s.initiator, ContinueAsNewInitiator::CronSchedule as i32);
    assert_eq!(s.attempt, 1);
    assert_eq!(s.cron_schedule, "*/5 * * * *");
    assert_eq!(s.last_completion_result, Some(Payloads::default()));
    // t0 is 22:13:20 UTC; closing at 22:14:22 waits until 22:15:00.
    assert_eq!(
        s.first_workflow_task_backoff,
        Some(pdur(Duration::from_secs(38)))
    );
    assert_eq!(nr.events.len(), 1, "no workflow task before the tick");
}

#[test]
fn failed_cron_run_without_retry_policy_still_schedules_the_next_run() {
    let mut r = Run::start();
    r.ms.cron_schedule = "@every 10s".into();
    r.poll();
    let new_run = r.step(|tx| {
        let req = RespondWorkflowTaskCompletedRequest {
            commands: vec![Command {
                attributes: Some(CA::FailWorkflowExecutionCommandAttributes(
                    FailWorkflowExecutionCommandAttributes {
                        failure: Some(app_failure("boom")),
                    },
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        tx.complete_wft(&req, &|_| None).unwrap();
        tx.new_run.clone()
    });
    let nr = new_run.expect("the next cron run");
    let Some(A::WorkflowExecutionFailedEventAttributes(f)) = &r.history.last().unwrap().attributes
    else {
        panic!("closes as failed")
    };
    assert_eq!(f.retry_state, RetryState::RetryPolicyNotSet as i32);
    assert_eq!(f.new_execution_run_id, nr.state.run_id);
    let Some(A::WorkflowExecutionStartedEventAttributes(s)) = &nr.events[0].attributes else {
        panic!()
    };
    assert_eq!(
        s.continued_failure.as_ref().map(|f| f.message.as_str()),
        Some("boom")
    );
    assert_eq!(
        s.first_workflow_task_backoff,
        Some(pdur(Duration::from_secs(10)))
    );
}
