//! Per-run limits: a history that outgrows its limits (workflow tasks suggest continue-as-new
//! past the suggestion threshold; the next completion past the hard limit fails the task and
//! terminates the run, as Temporal does), and the caps on pending activities, children, outgoing
//! signals and cancellations.

use std::time::{Duration, SystemTime};

use perdure_core::limits::{HISTORY_COUNT_EXCEEDS_LIMIT, Limits};
use perdure_core::mutable::{SignalParams, StartParams, Tx, start_run};
use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::{EventType, WorkflowTaskFailedCause};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;

/// A freshly started run, its first workflow task scheduled.
fn new_run(now: SystemTime) -> perdure_core::mutable::NewRun {
    start_run(
        StartParams {
            namespace: "default".into(),
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            workflow_type: "t".into(),
            task_queue: "q".into(),
            attempt: 1,
            ..Default::default()
        },
        now,
    )
}

#[test]
fn past_the_count_limit_the_next_completion_terminates_the_run() {
    let limits = Limits {
        history_count_suggest_continue_as_new: 10,
        history_count: 30,
        ..Limits::default()
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let nr = new_run(now);
    let (mut state, mut history): (_, Vec<HistoryEvent>) = (nr.state, nr.events);
    macro_rules! step {
        ($f:expr) => {{
            let mut tx = Tx::with_limits(&mut state, now, &limits);
            #[allow(clippy::redundant_closure_call)]
            let r = ($f)(&mut tx);
            history.extend(tx.events);
            r
        }};
    }
    let started = |h: &[HistoryEvent]| {
        h.iter()
            .rev()
            .find_map(|e| match &e.attributes {
                Some(A::WorkflowTaskStartedEventAttributes(a)) => Some(a.suggest_continue_as_new),
                _ => None,
            })
            .unwrap()
    };
    let complete = RespondWorkflowTaskCompletedRequest {
        identity: "w".into(),
        ..Default::default()
    };
    step!(|tx: &mut Tx| tx.start_wft("r", "w"));
    assert!(!started(&history), "a short history suggests nothing");
    step!(|tx: &mut Tx| tx.complete_wft(&complete, &|_| None)).unwrap();
    // Signals grow the history past the suggestion threshold, then past the limit.
    for _ in 0..30 {
        step!(|tx: &mut Tx| {
            tx.signal(SignalParams {
                name: "s".into(),
                ..Default::default()
            })
        });
    }
    step!(|tx: &mut Tx| tx.start_wft("r", "w"));
    assert!(
        started(&history),
        "past 10 events, continue-as-new is suggested"
    );
    let refused = step!(|tx: &mut Tx| tx.complete_wft(&complete, &|_| None));
    assert_eq!(refused.unwrap_err().0, HISTORY_COUNT_EXCEEDS_LIMIT);
    let n = history.len();
    let Some(A::WorkflowTaskFailedEventAttributes(f)) = &history[n - 2].attributes else {
        panic!("expected WorkflowTaskFailed")
    };
    assert_eq!(f.cause, WorkflowTaskFailedCause::ForceCloseCommand as i32);
    let Some(A::WorkflowExecutionTerminatedEventAttributes(t)) = &history[n - 1].attributes else {
        panic!("expected WorkflowExecutionTerminated")
    };
    assert_eq!(t.reason, HISTORY_COUNT_EXCEEDS_LIMIT);
    assert_eq!(t.identity, "history-service");
    assert_eq!(
        history[n - 1].event_type,
        EventType::WorkflowExecutionTerminated as i32
    );
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.event_id, i as i64 + 1);
    }
}

#[test]
fn pending_work_is_capped_per_run() {
    let limits = Limits {
        pending_activities: 1,
        pending_children: 1,
        pending_signals: 1,
        pending_cancels: 1,
        ..Limits::default()
    };
    let activity = |id: &str| {
        CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: id.into(),
            activity_type: Some(ActivityType { name: "a".into() }),
            start_to_close_timeout: Some(perdure_proto::prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        })
    };
    let child = |id: &str| {
        CA::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: id.into(),
                workflow_type: Some(WorkflowType { name: "c".into() }),
                ..Default::default()
            },
        )
    };
    let signal = || {
        CA::SignalExternalWorkflowExecutionCommandAttributes(
            SignalExternalWorkflowExecutionCommandAttributes {
                execution: Some(WorkflowExecution {
                    workflow_id: "other".into(),
                    run_id: String::new(),
                }),
                signal_name: "s".into(),
                ..Default::default()
            },
        )
    };
    let cancel = || {
        CA::RequestCancelExternalWorkflowExecutionCommandAttributes(
            RequestCancelExternalWorkflowExecutionCommandAttributes {
                workflow_id: "other".into(),
                ..Default::default()
            },
        )
    };
    for (batch, message, cause) in [
        (
            vec![activity("a"), activity("b")],
            "the number of pending activities, 1, has reached the per-workflow limit of 1",
            WorkflowTaskFailedCause::PendingActivitiesLimitExceeded,
        ),
        (
            vec![child("c1"), child("c2")],
            "the number of pending child workflow executions, 1, has reached the per-workflow limit of 1",
            WorkflowTaskFailedCause::PendingChildWorkflowsLimitExceeded,
        ),
        (
            vec![signal(), signal()],
            "pending signals to external workflows",
            WorkflowTaskFailedCause::PendingSignalsLimitExceeded,
        ),
        (
            vec![cancel(), cancel()],
            "pending requests to cancel external workflows",
            WorkflowTaskFailedCause::PendingRequestCancelLimitExceeded,
        ),
    ] {
        let now = SystemTime::UNIX_EPOCH;
        let nr = new_run(now);
        let mut state = nr.state;
        let mut tx = Tx::with_limits(&mut state, now, &limits);
        tx.start_wft("r", "w");
        let req = RespondWorkflowTaskCompletedRequest {
            commands: batch
                .into_iter()
                .map(|a| Command {
                    attributes: Some(a),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let refused = tx.complete_wft(&req, &|_| None).unwrap_err();
        assert!(refused.0.contains(message), "{}", refused.0);
        let failed = tx
            .events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(A::WorkflowTaskFailedEventAttributes(f)) => Some(f.cause),
                _ => None,
            })
            .expect("the task fails");
        assert_eq!(failed, cause as i32);
    }
}
