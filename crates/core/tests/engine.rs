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
    state: ExecutionState,
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
            state: nr.state,
            history: nr.events,
            now: t0(),
            effects: nr.effects,
        }
    }

    fn step<R>(&mut self, f: impl FnOnce(&mut Tx) -> R) -> R {
        let mut tx = Tx::new(&mut self.state, self.now);
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
    assert_eq!(r.state.last_completed_wft_started_id, 3);
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
    assert!(r.state.wft.as_ref().is_some_and(|w| w.attempt == 1));
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
fn coinciding_deadlines_report_the_schedule_to_close_timeout() {
    let mut r = Run::start();
    r.poll();
    // Only schedule-to-close: start-to-close is inferred from it, so both fall due together.
    let cmd = CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
        activity_id: "1".into(),
        activity_type: Some(ActivityType {
            name: "slow".into(),
        }),
        schedule_to_close_timeout: Some(pdur(Duration::from_secs(1))),
        ..Default::default()
    });
    r.complete(vec![cmd]).unwrap();
    let i = r.step(|tx| tx.activity_index(5)).unwrap();
    r.step(|tx| tx.start_activity(i, "req", "w"));
    r.advance(Duration::from_secs(1));
    // The start-to-close timer happens to fire first.
    assert!(r.step(|tx| tx.activity_timeout(5, 1, TimeoutType::StartToClose)));
    let Some(A::ActivityTaskTimedOutEventAttributes(t)) =
        &r.history[r.history.len() - 2].attributes
    else {
        panic!()
    };
    assert_eq!(t.retry_state, RetryState::Timeout as i32);
    assert_eq!(
        t.failure.as_ref().unwrap().message,
        "activity ScheduleToClose timeout"
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
    let seq = r.state.wft.as_ref().unwrap().dispatch_seq;
    r.advance(Duration::from_secs(11));
    assert!(r.step(|tx| tx.wft_timeout(seq, TimeoutType::StartToClose)));
    assert_eq!(*r.types().last().unwrap(), WorkflowTaskTimedOut);
    let n = r.history.len();
    let w = r.state.wft.clone().unwrap();
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
        r.state
            .wft
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
    r.state.cron_schedule = "*/5 * * * *".into();
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
    r.state.cron_schedule = "@every 10s".into();
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

// ---- Update protocol messages (Acceptance / Rejection / Response) ----

mod updates {
    use super::*;
    use perdure_proto::api::enums::v1::{
        UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowTaskFailedCause,
    };
    use perdure_proto::api::failure::v1::failure::FailureInfo;
    use perdure_proto::api::protocol::v1::Message;
    use perdure_proto::api::update::v1 as upd;
    use perdure_proto::prost_types::Any;

    const BAD: &str = "BadUpdateWorkflowExecutionMessage: ";

    fn request(id: &str) -> upd::Request {
        upd::Request {
            meta: Some(upd::Meta {
                update_id: id.into(),
                identity: "client".into(),
            }),
            input: Some(upd::Input {
                name: "set".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn any(name: &str, m: &impl prost::Message) -> Option<Any> {
        Some(Any {
            type_url: format!("type.googleapis.com/temporal.api.update.v1.{name}"),
            value: m.encode_to_vec(),
        })
    }

    /// An Acceptance as the SDKs send it, for the request sequenced at `seq`.
    fn accept(id: &str, seq: i64) -> Message {
        Message {
            id: format!("{id}/accept"),
            protocol_instance_id: id.into(),
            body: any(
                "Acceptance",
                &upd::Acceptance {
                    accepted_request_message_id: format!("{id}/request"),
                    accepted_request_sequencing_event_id: seq,
                    accepted_request: Some(request(id)),
                },
            ),
            sequencing_id: None,
        }
    }

    fn respond(id: &str) -> Message {
        Message {
            id: format!("{id}/complete"),
            protocol_instance_id: id.into(),
            body: any(
                "Response",
                &upd::Response {
                    meta: Some(upd::Meta {
                        update_id: id.into(),
                        identity: String::new(),
                    }),
                    outcome: Some(upd::Outcome {
                        value: Some(upd::outcome::Value::Success(Payloads::default())),
                    }),
                },
            ),
            sequencing_id: None,
        }
    }

    fn reject(id: &str, seq: i64) -> Message {
        Message {
            id: format!("{id}/reject"),
            protocol_instance_id: id.into(),
            body: any(
                "Rejection",
                &upd::Rejection {
                    rejected_request_message_id: format!("{id}/request"),
                    rejected_request_sequencing_event_id: seq,
                    rejected_request: Some(request(id)),
                    failure: Some(app_failure("invalid")),
                },
            ),
            sequencing_id: None,
        }
    }

    fn place(m: &Message) -> CA {
        CA::ProtocolMessageCommandAttributes(ProtocolMessageCommandAttributes {
            message_id: m.id.clone(),
        })
    }

    impl Run {
        fn complete_with(
            &mut self,
            commands: Vec<CA>,
            messages: Vec<Message>,
        ) -> Result<(), String> {
            let req = RespondWorkflowTaskCompletedRequest {
                commands: commands
                    .into_iter()
                    .map(|a| Command {
                        attributes: Some(a),
                        ..Default::default()
                    })
                    .collect(),
                messages,
                identity: "worker".into(),
                ..Default::default()
            };
            self.step(|tx| tx.complete_wft(&req, &|_| None))
                .map_err(|r| r.0)
        }

        /// Polls the next task and returns the sequencing event id of the delivered request of
        /// `id`.
        fn poll_update(&mut self, id: &str) -> i64 {
            let t = self.step(|tx| tx.start_wft("req", "worker"));
            let m = t
                .messages
                .iter()
                .find(|m| m.protocol_instance_id == id)
                .expect("update request delivered");
            match m.sequencing_id {
                Some(perdure_proto::api::protocol::v1::message::SequencingId::EventId(e)) => e,
                _ => panic!("no sequencing id"),
            }
        }

        fn stage(&self, id: &str) -> Option<i32> {
            self.state
                .updates
                .iter()
                .find(|u| u.update_id == id)
                .map(|u| u.stage)
        }

        /// A run past its first task with update `id` admitted and delivered with the next task.
        fn with_update(id: &str) -> (Run, i64) {
            let mut r = Run::start();
            r.poll();
            r.complete(vec![]).unwrap();
            assert!(r.step(|tx| tx.admit_update(&request(id))));
            let seq = r.poll_update(id);
            (r, seq)
        }

        /// Fires a signal so that a new workflow task is scheduled, and polls it.
        fn signal_and_poll(&mut self) {
            self.step(|tx| tx.signal(signal("poke")));
            self.poll();
        }

        fn last_failed(&self) -> (i32, Failure) {
            match &self.history.last().unwrap().attributes {
                Some(A::WorkflowTaskFailedEventAttributes(f)) => {
                    (f.cause, f.failure.clone().unwrap_or_default())
                }
                a => panic!("last event is not WorkflowTaskFailed: {a:?}"),
            }
        }

        fn count(&self, t: EventType) -> usize {
            self.types().iter().filter(|x| **x == t).count()
        }
    }

    /// Checks a bad-message failure as Temporal writes it, and that the retry is scheduled.
    fn assert_bad_message(r: &Run, err: &str, detail: &str) {
        assert_eq!(err, format!("{BAD}{detail}"));
        let (cause, failure) = r.last_failed();
        assert_eq!(
            cause,
            WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage as i32
        );
        assert_eq!(failure.message, err);
        assert_eq!(failure.source, "");
        assert!(matches!(
            failure.failure_info,
            Some(FailureInfo::ServerFailureInfo(_))
        ));
        assert!(r.state.wft.as_ref().is_some_and(|w| w.attempt == 2));
        assert!(r.ids_are_contiguous());
    }

    #[test]
    fn accept_and_complete_in_one_task() {
        let (mut r, seq) = Run::with_update("u1");
        let (a, c) = (accept("u1", seq), respond("u1"));
        r.complete_with(vec![place(&a), place(&c)], vec![a, c])
            .unwrap();
        let n = r.history.len();
        assert_eq!(
            r.types()[n - 3..],
            [
                WorkflowTaskCompleted,
                WorkflowExecutionUpdateAccepted,
                WorkflowExecutionUpdateCompleted
            ]
        );
        let Some(A::WorkflowExecutionUpdateAcceptedEventAttributes(acc)) =
            &r.history[n - 2].attributes
        else {
            panic!()
        };
        assert_eq!(acc.accepted_request_message_id, "u1/request");
        assert_eq!(acc.accepted_request_sequencing_event_id, seq);
        assert_eq!(r.stage("u1"), Some(Stage::Completed as i32));
    }

    #[test]
    fn acceptance_without_sequencing_event_id_fails_the_task_and_aborts_the_update() {
        let (mut r, _) = Run::with_update("u1");
        let a = accept("u1", 0);
        let err = r.complete_with(vec![place(&a)], vec![a]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid *update.Acceptance: accepted_request_sequencing_event_id is not set",
        );
        assert_eq!(r.count(WorkflowExecutionUpdateAccepted), 0);
        // The update the worker had seen is aborted: its callers get an error and a retried
        // request is admitted anew.
        assert_eq!(r.stage("u1"), None);
        assert!(r.effects.contains(&Effect::UpdatesChanged));
        assert!(r.step(|tx| tx.admit_update(&request("u1"))));
    }

    #[test]
    fn unplaced_acceptance_is_validated_too() {
        let (mut r, seq) = Run::with_update("u1");
        let mut a = accept("u1", seq);
        a.body = any(
            "Acceptance",
            &upd::Acceptance {
                accepted_request_sequencing_event_id: seq,
                ..Default::default()
            },
        );
        let err = r.complete_with(vec![], vec![a]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid *update.Acceptance: accepted_request_message_id is not set",
        );
    }

    #[test]
    fn duplicate_acceptance_in_one_task_fails_without_partial_state() {
        let (mut r, seq) = Run::with_update("u1");
        let a = accept("u1", seq);
        let mut again = accept("u1", seq);
        again.id = "again".into();
        let before = r.history.len();
        let err = r
            .complete_with(
                vec![timer("t", 5), place(&a), place(&again)],
                vec![a, again],
            )
            .unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid state transition attempted for Update u1: received *update.Acceptance message while in state ProvisionallyAccepted",
        );
        // Only the failure: no timer, no acceptance.
        assert_eq!(r.types()[before..], [WorkflowTaskFailed]);
        assert!(r.state.timers.is_empty());
    }

    #[test]
    fn acceptance_of_an_accepted_update_fails_the_task() {
        let (mut r, seq) = Run::with_update("u1");
        let a = accept("u1", seq);
        r.complete_with(vec![place(&a)], vec![a.clone()]).unwrap();
        assert_eq!(r.stage("u1"), Some(Stage::Accepted as i32));
        r.signal_and_poll();
        let err = r.complete_with(vec![place(&a)], vec![a]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid state transition attempted for Update u1: received *update.Acceptance message while in state Accepted",
        );
        assert_eq!(r.count(WorkflowExecutionUpdateAccepted), 1);
        // Accepted updates are not aborted.
        assert_eq!(r.stage("u1"), Some(Stage::Accepted as i32));
    }

    #[test]
    fn response_for_a_completed_update_fails_the_task() {
        let (mut r, seq) = Run::with_update("u1");
        let (a, c) = (accept("u1", seq), respond("u1"));
        r.complete_with(vec![place(&a), place(&c)], vec![a, c.clone()])
            .unwrap();
        r.signal_and_poll();
        let err = r.complete_with(vec![place(&c)], vec![c]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid state transition attempted for Update u1: received *update.Response message while in state Completed",
        );
        assert_eq!(r.count(WorkflowExecutionUpdateCompleted), 1);
    }

    #[test]
    fn response_before_acceptance_fails_the_task() {
        let (mut r, _) = Run::with_update("u1");
        let c = respond("u1");
        let err = r.complete_with(vec![place(&c)], vec![c]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid state transition attempted for Update u1: received *update.Response message while in state Sent",
        );
        assert_eq!(r.count(WorkflowExecutionUpdateCompleted), 0);
        assert_eq!(r.stage("u1"), None);
    }

    #[test]
    fn response_fields_are_required() {
        let (mut r, seq) = Run::with_update("u1");
        let a = accept("u1", seq);
        let mut c = respond("u1");
        c.body = any(
            "Response",
            &upd::Response {
                meta: Some(upd::Meta {
                    update_id: "u1".into(),
                    identity: String::new(),
                }),
                outcome: None,
            },
        );
        let err = r
            .complete_with(vec![place(&a), place(&c)], vec![a, c])
            .unwrap_err();
        assert_bad_message(&r, &err, "invalid *update.Response: outcome is not set");
        assert_eq!(r.count(WorkflowExecutionUpdateAccepted), 0);
    }

    #[test]
    fn rejection_of_an_accepted_update_fails_the_task() {
        let (mut r, seq) = Run::with_update("u1");
        let a = accept("u1", seq);
        r.complete_with(vec![place(&a)], vec![a]).unwrap();
        r.signal_and_poll();
        let err = r
            .complete_with(vec![], vec![reject("u1", seq)])
            .unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid state transition attempted for Update u1: received *update.Rejection message while in state Accepted",
        );
        assert_eq!(r.stage("u1"), Some(Stage::Accepted as i32));
    }

    #[test]
    fn protocol_message_command_for_an_absent_message_fails_the_task() {
        let (mut r, seq) = Run::with_update("u1");
        let a = accept("u1", seq);
        let err = r
            .complete_with(
                vec![CA::ProtocolMessageCommandAttributes(
                    ProtocolMessageCommandAttributes {
                        message_id: "nope/accept".into(),
                    },
                )],
                vec![a],
            )
            .unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "ProtocolMessageCommand referenced absent message ID nope/accept",
        );
    }

    #[test]
    fn message_for_an_unknown_or_unnamed_update_fails_the_task() {
        let (mut r, seq) = Run::with_update("u1");
        let mut a = accept("u1", seq);
        a.protocol_instance_id = "other".into();
        let err = r.complete_with(vec![place(&a)], vec![a]).unwrap_err();
        assert_bad_message(&r, &err, "update \"other\" not found");

        let (mut r, seq) = Run::with_update("u1");
        let mut a = accept("u1", seq);
        a.protocol_instance_id.clear();
        let err = r.complete_with(vec![place(&a)], vec![a]).unwrap_err();
        assert_bad_message(
            &r,
            &err,
            "invalid *protocol.Message: protocol_instance_id is not set",
        );
    }

    #[test]
    fn update_admitted_during_the_failed_task_is_kept_and_delivered_with_the_retry() {
        let (mut r, _) = Run::with_update("u1");
        assert!(r.step(|tx| tx.admit_update(&request("u2"))));
        let a = accept("u1", 0);
        r.complete_with(vec![place(&a)], vec![a]).unwrap_err();
        assert_eq!(r.stage("u1"), None);
        assert_eq!(r.stage("u2"), Some(Stage::Admitted as i32));
        let seq = r.poll_update("u2");
        let a = accept("u2", seq);
        r.complete_with(vec![place(&a)], vec![a]).unwrap();
        assert_eq!(r.stage("u2"), Some(Stage::Accepted as i32));
    }

    #[test]
    fn rejection_completes_the_update_without_an_event_placed_or_not() {
        for placed in [false, true] {
            let (mut r, _) = Run::with_update("u1");
            // Temporal needs no sequencing id on a rejection.
            let j = reject("u1", 0);
            let commands = if placed { vec![place(&j)] } else { vec![] };
            let before = r.history.len();
            r.complete_with(commands, vec![j]).unwrap();
            assert_eq!(r.types()[before..], [WorkflowTaskCompleted]);
            assert_eq!(r.stage("u1"), Some(Stage::Completed as i32));
        }
    }
}
