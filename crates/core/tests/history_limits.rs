//! A history that outgrows its limits: workflow tasks suggest continue-as-new past the
//! suggestion threshold, and the next completion past the hard limit fails the task and
//! terminates the run (`Workflow history count exceeds limit.`), as Temporal does.

use std::time::{Duration, SystemTime};

use perdure_core::limits::{HISTORY_COUNT_EXCEEDS_LIMIT, Limits};
use perdure_core::mutable::{SignalParams, StartParams, Tx, start_run};
use perdure_proto::api::enums::v1::{EventType, WorkflowTaskFailedCause};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;

#[test]
fn past_the_count_limit_the_next_completion_terminates_the_run() {
    let limits = Limits {
        history_count_suggest_continue_as_new: 10,
        history_count: 30,
        ..Limits::default()
    };
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
            ..Default::default()
        },
        now,
    );
    let (mut ms, mut history): (_, Vec<HistoryEvent>) = (nr.state, nr.events);
    macro_rules! step {
        ($f:expr) => {{
            let mut tx = Tx::with_limits(&mut ms, now, &limits);
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
