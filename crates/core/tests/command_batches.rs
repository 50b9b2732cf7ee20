//! Random command batches, signals, timer firings and activity outcomes driven through the
//! functional core: no input panics, and every history stays contiguous, with each command event
//! pointing back at the workflow task completion that issued it.

use std::time::{Duration, SystemTime};

use perdure_core::mutable::{SignalParams, StartParams, Tx, start_run};
use perdure_core::state::ExecutionState;
use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, Payload, Payloads, RetryPolicy};
use perdure_proto::api::enums::v1::TimeoutType;
use perdure_proto::api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;
use perdure_proto::prost_types::Duration as PDuration;
use proptest::prelude::*;

fn secs(s: i64) -> Option<PDuration> {
    Some(PDuration {
        seconds: s,
        nanos: 0,
    })
}

/// Durations a careless or hostile client may send.
fn duration() -> impl Strategy<Value = Option<PDuration>> {
    prop_oneof![
        Just(None),
        Just(secs(0)),
        Just(secs(-1)),
        Just(secs(1)),
        Just(secs(60)),
        Just(secs(1_000_000_000_000)),
        Just(secs(i64::MAX)),
        Just(Some(PDuration {
            seconds: 1,
            nanos: -5
        })),
    ]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(String::new())
    ]
}

fn retry() -> impl Strategy<Value = Option<RetryPolicy>> {
    (
        duration(),
        duration(),
        prop_oneof![Just(0.0), Just(0.5), Just(2.0), Just(f64::NAN)],
        -1i32..3,
    )
        .prop_map(|(i, m, b, a)| {
            Some(RetryPolicy {
                initial_interval: i,
                maximum_interval: m,
                backoff_coefficient: b,
                maximum_attempts: a,
                ..Default::default()
            })
        })
}

fn attributes() -> impl Strategy<Value = CA> {
    prop_oneof![
        (id(), duration(), duration(), duration(), retry()).prop_map(|(id, s2c, st2c, hb, r)| {
            CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                activity_id: id,
                activity_type: Some(ActivityType { name: "a".into() }),
                schedule_to_close_timeout: s2c,
                start_to_close_timeout: st2c,
                heartbeat_timeout: hb,
                retry_policy: r,
                ..Default::default()
            })
        }),
        (id(), duration()).prop_map(|(id, d)| {
            CA::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: id,
                start_to_fire_timeout: d,
            })
        }),
        id().prop_map(
            |id| CA::CancelTimerCommandAttributes(CancelTimerCommandAttributes { timer_id: id })
        ),
        (0i64..12).prop_map(|e| {
            CA::RequestCancelActivityTaskCommandAttributes(
                RequestCancelActivityTaskCommandAttributes {
                    scheduled_event_id: e,
                },
            )
        }),
        Just(CA::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: None }
        )),
        Just(CA::FailWorkflowExecutionCommandAttributes(
            FailWorkflowExecutionCommandAttributes {
                failure: Some(Failure::default())
            }
        )),
        (duration(), duration()).prop_map(|(run, task)| {
            CA::ContinueAsNewWorkflowExecutionCommandAttributes(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: Some(Default::default()),
                    workflow_run_timeout: run,
                    workflow_task_timeout: task,
                    backoff_start_interval: run,
                    ..Default::default()
                },
            )
        }),
        Just(CA::RecordMarkerCommandAttributes(
            RecordMarkerCommandAttributes {
                marker_name: "m".into(),
                ..Default::default()
            }
        )),
    ]
}

/// A command, sometimes with a command type that does not match its attributes.
fn command() -> impl Strategy<Value = Command> {
    (attributes(), prop_oneof![Just(0i32), 0i32..18]).prop_map(|(a, t)| Command {
        command_type: t,
        attributes: Some(a),
        ..Default::default()
    })
}

#[derive(Debug, Clone)]
enum Step {
    Complete(Vec<Command>),
    Signal,
    FireTimer(usize),
    ActivityCompleted(usize),
    ActivityFailed(usize, Option<PDuration>),
    WorkflowTaskTimeout,
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(command(), 0..5).prop_map(Step::Complete),
        1 => Just(Step::Signal),
        1 => (0usize..3).prop_map(Step::FireTimer),
        1 => (0usize..3).prop_map(Step::ActivityCompleted),
        1 => ((0usize..3), duration()).prop_map(|(i, d)| Step::ActivityFailed(i, d)),
        1 => Just(Step::WorkflowTaskTimeout),
        1 => (0u64..100_000).prop_map(Step::Advance),
    ]
}

struct Run {
    state: ExecutionState,
    history: Vec<HistoryEvent>,
    now: SystemTime,
}

impl Run {
    fn tx<R>(&mut self, f: impl FnOnce(&mut Tx) -> R) -> R {
        let mut tx = Tx::new(&mut self.state, self.now);
        let r = f(&mut tx);
        self.history.extend(tx.events);
        r
    }

    fn apply(&mut self, s: Step) {
        if self.state.status != 1 {
            return;
        }
        match s {
            Step::Complete(commands) => {
                if self.state.wft.is_none() {
                    return;
                }
                if self
                    .state
                    .wft
                    .as_ref()
                    .is_some_and(|w| w.started_event_id == 0)
                {
                    self.tx(|tx| tx.start_wft("r", "w"));
                }
                let req = RespondWorkflowTaskCompletedRequest {
                    commands,
                    identity: "w".into(),
                    ..Default::default()
                };
                let _ = self.tx(|tx| tx.complete_wft(&req, &|_| None));
            }
            Step::Signal => self.tx(|tx| {
                tx.signal(SignalParams {
                    name: "s".into(),
                    input: Some(Payloads {
                        payloads: vec![Payload::default()],
                    }),
                    ..Default::default()
                })
            }),
            Step::FireTimer(i) => {
                if let Some(t) = self.state.timers.get(i).map(|t| t.started_event_id) {
                    self.tx(|tx| tx.timer_fired(t));
                }
            }
            Step::ActivityCompleted(i) | Step::ActivityFailed(i, _)
                if i < self.state.activities.len() =>
            {
                if self.state.activities[i].started_time.is_none() {
                    self.tx(|tx| tx.start_activity(i, "r", "w"));
                }
                if i >= self.state.activities.len() {
                    return;
                }
                match s {
                    Step::ActivityFailed(_, delay) => {
                        let f = Failure {
                            message: "x".into(),
                            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                                ApplicationFailureInfo {
                                    next_retry_delay: delay,
                                    ..Default::default()
                                },
                            )),
                            ..Default::default()
                        };
                        self.tx(|tx| tx.activity_failed(i, Some(f), None, "w"));
                    }
                    _ => self.tx(|tx| tx.activity_completed(i, None, "w")),
                }
            }
            Step::ActivityCompleted(_) | Step::ActivityFailed(..) => {}
            Step::WorkflowTaskTimeout => {
                if let Some(seq) = self.state.wft.as_ref().map(|w| w.dispatch_seq) {
                    self.tx(|tx| tx.wft_timeout(seq, TimeoutType::StartToClose));
                }
            }
            Step::Advance(s) => self.now += Duration::from_secs(s),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_keep_histories_contiguous(
        steps in prop::collection::vec(step(), 1..25),
        run_timeout in duration(),
    ) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let nr = start_run(
            StartParams {
                namespace: "default".into(),
                namespace_id: "ns".into(),
                workflow_id: "wf".into(),
                run_id: "run".into(),
                workflow_type: "t".into(),
                task_queue: "q".into(),
                attempt: 1,
                run_timeout: perdure_core::clock::convert::dur(&run_timeout),
                ..Default::default()
            },
            now,
        );
        let mut run = Run { state: nr.state, history: nr.events, now };
        for s in steps {
            run.apply(s);
            for (i, e) in run.history.iter().enumerate() {
                prop_assert_eq!(e.event_id, i as i64 + 1);
            }
        }
        for e in &run.history {
            let issued_by = match &e.attributes {
                Some(A::ActivityTaskScheduledEventAttributes(a)) => a.workflow_task_completed_event_id,
                Some(A::TimerStartedEventAttributes(a)) => a.workflow_task_completed_event_id,
                Some(A::TimerCanceledEventAttributes(a)) => a.workflow_task_completed_event_id,
                Some(A::MarkerRecordedEventAttributes(a)) => a.workflow_task_completed_event_id,
                Some(A::WorkflowExecutionCompletedEventAttributes(a)) => a.workflow_task_completed_event_id,
                _ => continue,
            };
            let wtc = run.history.get((issued_by - 1).max(0) as usize);
            prop_assert!(
                wtc.is_some_and(|w| matches!(w.attributes, Some(A::WorkflowTaskCompletedEventAttributes(_)))),
                "event {} points at {} which is not a WorkflowTaskCompleted", e.event_id, issued_by
            );
        }
    }
}
