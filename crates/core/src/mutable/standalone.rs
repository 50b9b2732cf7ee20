//! Standalone activities (started by a client, not by a workflow): a run-like record whose
//! state holds exactly one pending activity and no workflow task. The whole activity machinery
//! (dispatch, timeouts, retries, heartbeats, pause/reset/options, re-arming) runs on it
//! unchanged; the activity's final outcome closes the record instead of scheduling a workflow
//! task. The record writes the activity's events (ActivityTaskScheduled, ..., its outcome) to
//! its own history, which no client reads but which keeps the scheduled options for
//! `restore_original`.

use std::time::{Duration, SystemTime};

use perdure_proto::api::activity::v1::{ActivityExecutionOutcome, activity_execution_outcome};
use perdure_proto::api::command::v1::ScheduleActivityTaskCommandAttributes;
use perdure_proto::api::common::v1::{Payloads, SearchAttributes};
use perdure_proto::api::enums::v1::{
    ActivityExecutionStatus, RetryState, TimeoutType, WorkflowExecutionStatus as Status,
};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{CanceledFailureInfo, Failure, TerminatedFailureInfo};
use perdure_proto::api::history::v1::ActivityTaskCancelRequestedEventAttributes;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::sdk::v1::UserMetadata;

use crate::clock::convert::{dur, pdur, ts};
use crate::state::*;

use super::{Effect, NewRun, TimerKind, Tx};

/// Everything a new standalone activity is made of (validated and normalised by the shell).
#[derive(Debug, Clone)]
pub struct StandaloneStart {
    pub namespace: String,
    /// The namespace's own id.
    pub namespace_id: String,
    /// The derived id the record lives under (see `engine::standalone::record_namespace_id`).
    pub record_namespace_id: String,
    pub run_id: String,
    pub request_id: String,
    pub identity: String,
    /// Normalised (`normalize_activity`) with a task queue.
    pub activity: ScheduleActivityTaskCommandAttributes,
    pub start_delay: Duration,
    pub search_attributes: Option<SearchAttributes>,
    pub user_metadata: Option<UserMetadata>,
}

/// The record of a new standalone activity, its ActivityTaskScheduled event, and its first
/// dispatch (after the start delay) and schedule-to-close timer as effects.
pub fn start_standalone(p: StandaloneStart, now: SystemTime) -> NewRun {
    let activity_type = p
        .activity
        .activity_type
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let task_queue = p
        .activity
        .task_queue
        .as_ref()
        .map(|q| q.name.clone())
        .unwrap_or_default();
    let first = now + p.start_delay;
    let mut state = ExecutionState {
        namespace_id: p.record_namespace_id,
        namespace: p.namespace,
        workflow_id: p.activity.activity_id.clone(),
        run_id: p.run_id.clone(),
        first_execution_run_id: p.run_id,
        workflow_type: activity_type,
        task_queue,
        status: Status::Running as i32,
        next_event_id: 1,
        start_time: Some(ts(now)),
        execution_time: Some(ts(first)),
        search_attributes: p.search_attributes,
        start_request_id: p.request_id,
        identity: p.identity,
        priority: p.activity.priority.clone(),
        header: p.activity.header.clone(),
        input: p.activity.input.clone(),
        root_workflow_id: String::new(),
        user_metadata: p.user_metadata,
        attempt: 1,
        standalone: Some(StandaloneState {
            namespace_id: p.namespace_id,
            schedule_time: Some(ts(now)),
            start_delay: (!p.start_delay.is_zero()).then(|| pdur(p.start_delay)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut tx = Tx::new(&mut state, now);
    tx.schedule_activity(p.activity, 0);
    // The start delay moves the first attempt, and with it the schedule-to-close clock (as in
    // Temporal: its expiration is schedule time + start delay + schedule-to-close).
    if first > now {
        tx.effects.clear();
        let a = &mut tx.state.activities[0];
        a.scheduled_time = Some(ts(first));
        a.current_attempt_scheduled_time = Some(ts(first));
        let a = a.clone();
        tx.arm_activity_dispatch(&a);
        let s2c = dur(&a.schedule_to_close);
        if !s2c.is_zero() {
            tx.effects.push(Effect::Timer {
                at: first + s2c,
                kind: TimerKind::Activity {
                    scheduled_event_id: a.scheduled_event_id,
                    attempt: 0,
                    timeout: TimeoutType::ScheduleToClose as i32,
                },
            });
        }
    }
    let Tx {
        events, effects, ..
    } = tx;
    state.state_transition_count = 1;
    NewRun {
        state,
        events,
        effects,
    }
}

/// The failure a canceled standalone activity's outcome carries.
fn canceled_failure(details: Option<Payloads>, identity: &str) -> Failure {
    Failure {
        message: "Activity canceled".into(),
        failure_info: Some(FailureInfo::CanceledFailureInfo(CanceledFailureInfo {
            details,
            identity: identity.to_string(),
        })),
        ..Default::default()
    }
}

/// A standalone activity's status as Temporal reports it (its record keeps a workflow status).
pub fn activity_status(state: &ExecutionState) -> ActivityExecutionStatus {
    use ActivityExecutionStatus as S;
    match Status::try_from(state.status).unwrap_or(Status::Unspecified) {
        Status::Running => {
            if state.activities.first().is_some_and(|a| a.paused) {
                S::Paused
            } else {
                S::Running
            }
        }
        Status::Completed => S::Completed,
        Status::Failed => S::Failed,
        Status::Canceled => S::Canceled,
        Status::Terminated => S::Terminated,
        Status::TimedOut => S::TimedOut,
        _ => S::Unspecified,
    }
}

impl Tx<'_> {
    /// The activity reached its final outcome (the event just written): the record closes with
    /// the matching status and keeps the outcome and the activity's last state.
    pub(super) fn close_standalone(&mut self, a: ActivityState, outcome: &A) {
        let (status, value, retry_state) = match outcome {
            A::ActivityTaskCompletedEventAttributes(c) => (
                Status::Completed,
                activity_execution_outcome::Value::Result(c.result.clone().unwrap_or_default()),
                RetryState::Unspecified,
            ),
            A::ActivityTaskFailedEventAttributes(f) => (
                Status::Failed,
                activity_execution_outcome::Value::Failure(f.failure.clone().unwrap_or_default()),
                RetryState::try_from(f.retry_state).unwrap_or_default(),
            ),
            A::ActivityTaskTimedOutEventAttributes(t) => (
                Status::TimedOut,
                activity_execution_outcome::Value::Failure(t.failure.clone().unwrap_or_default()),
                RetryState::try_from(t.retry_state).unwrap_or_default(),
            ),
            A::ActivityTaskCanceledEventAttributes(c) => (
                Status::Canceled,
                activity_execution_outcome::Value::Failure(canceled_failure(
                    c.details.clone(),
                    &c.identity,
                )),
                RetryState::Unspecified,
            ),
            _ => return,
        };
        self.finish_standalone(
            status,
            a,
            ActivityExecutionOutcome {
                value: Some(value),
                retry_state: retry_state as i32,
            },
        );
    }

    fn finish_standalone(
        &mut self,
        status: Status,
        a: ActivityState,
        outcome: ActivityExecutionOutcome,
    ) {
        self.changed = true;
        self.state.status = status as i32;
        self.state.close_time = Some(ts(self.now));
        self.state.close_event_id = self.state.next_event_id - 1;
        self.state.activities.clear();
        if let Some(s) = self.state.standalone.as_mut() {
            s.outcome = Some(outcome);
            s.last = Some(a);
        }
        self.effects.push(Effect::Closed);
    }

    /// RequestCancelActivityExecution: an activity not running now is canceled at once; a
    /// running attempt learns of it at its next heartbeat (and its failure is not retried).
    /// Asking again is a no-op.
    pub fn cancel_standalone(&mut self, reason: &str, request_id: &str, identity: &str) {
        if self.state.activities.is_empty() {
            return;
        }
        let a = &self.state.activities[0];
        if a.cancel_requested_event_id != 0 {
            return;
        }
        let sched = a.scheduled_event_id;
        let requested = self.append(A::ActivityTaskCancelRequestedEventAttributes(
            ActivityTaskCancelRequestedEventAttributes {
                scheduled_event_id: sched,
                workflow_task_completed_event_id: 0,
            },
        ));
        if let Some(s) = self.state.standalone.as_mut() {
            s.canceled_reason = reason.to_string();
            s.cancel_request_id = request_id.to_string();
        }
        self.state.activities[0].cancel_requested_event_id = requested;
        if self.state.activities[0].started_time.is_none() {
            self.activity_canceled(0, None, identity);
        }
    }

    /// TerminateActivityExecution: closes at once; a running attempt's heartbeats and
    /// completion are then refused as not found.
    pub fn terminate_standalone(&mut self, reason: &str, request_id: &str, identity: &str) {
        if !self.is_running() || self.state.activities.is_empty() {
            return;
        }
        let a = self.state.activities.remove(0);
        if let Some(s) = self.state.standalone.as_mut() {
            s.terminate_request_id = request_id.to_string();
        }
        let failure = Failure {
            message: reason.to_string(),
            source: String::new(),
            failure_info: Some(FailureInfo::TerminatedFailureInfo(TerminatedFailureInfo {
                identity: identity.to_string(),
            })),
            ..Default::default()
        };
        self.finish_standalone(
            Status::Terminated,
            a,
            ActivityExecutionOutcome {
                value: Some(activity_execution_outcome::Value::Failure(failure)),
                retry_state: RetryState::Unspecified as i32,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perdure_proto::api::common::v1::ActivityType;
    use perdure_proto::api::taskqueue::v1::TaskQueue;

    fn start(delay: Duration) -> (NewRun, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut activity = ScheduleActivityTaskCommandAttributes {
            activity_id: "a1".into(),
            activity_type: Some(ActivityType { name: "Foo".into() }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            start_to_close_timeout: Some(pdur(Duration::from_secs(10))),
            schedule_to_close_timeout: Some(pdur(Duration::from_secs(60))),
            ..Default::default()
        };
        super::super::normalize_activity(&mut activity, Duration::ZERO).unwrap();
        let run = start_standalone(
            StandaloneStart {
                namespace: "default".into(),
                namespace_id: "ns".into(),
                record_namespace_id: "ns#activity".into(),
                run_id: "r1".into(),
                request_id: "req".into(),
                identity: "me".into(),
                activity,
                start_delay: delay,
                search_attributes: None,
                user_metadata: None,
            },
            now,
        );
        (run, now)
    }

    #[test]
    fn start_dispatches_at_once_or_after_the_delay() {
        let (run, now) = start(Duration::ZERO);
        assert_eq!(run.state.activities.len(), 1);
        assert!(run.state.wft.is_none());
        assert!(
            run.effects
                .iter()
                .any(|e| matches!(e, Effect::DispatchActivity { attempt: 1, .. }))
        );
        let (run, _) = start(Duration::from_secs(5));
        assert!(
            !run.effects
                .iter()
                .any(|e| matches!(e, Effect::DispatchActivity { .. }))
        );
        assert!(run.effects.iter().any(|e| matches!(
            e,
            Effect::Timer { at, kind: TimerKind::ActivityRetry { .. } } if *at == now + Duration::from_secs(5)
        )));
        assert!(run.effects.iter().any(|e| matches!(
            e,
            Effect::Timer { at, kind: TimerKind::Activity { attempt: 0, .. } } if *at == now + Duration::from_secs(65)
        )));
    }

    #[test]
    fn completion_closes_the_record_with_the_outcome() {
        let (mut run, now) = start(Duration::ZERO);
        let mut tx = Tx::new(&mut run.state, now);
        tx.start_activity(0, "req", "worker");
        tx.activity_completed(0, Some(Payloads::default()), "worker");
        assert!(tx.state.wft.is_none());
        assert_eq!(tx.state.status, Status::Completed as i32);
        let s = tx.state.standalone.as_ref().unwrap();
        assert!(matches!(
            s.outcome.as_ref().unwrap().value,
            Some(activity_execution_outcome::Value::Result(_))
        ));
        assert_eq!(s.last.as_ref().unwrap().started_identity, "worker");
        assert_eq!(
            activity_status(tx.state),
            ActivityExecutionStatus::Completed
        );
    }

    #[test]
    fn a_failure_retries_then_fails_for_good_after_cancel_was_requested() {
        let (mut run, now) = start(Duration::ZERO);
        let mut tx = Tx::new(&mut run.state, now);
        tx.start_activity(0, "req", "worker");
        assert!(tx.activity_failed(0, Some(Failure::default()), None, "worker"));
        assert_eq!(tx.state.activities[0].attempt, 2);
        tx.start_activity(0, "req", "worker");
        tx.cancel_standalone("why", "c1", "client");
        assert!(tx.is_running(), "a running attempt is only told");
        assert!(tx.activity_heartbeat(0, None).cancel_requested);
        assert!(!tx.activity_failed(0, Some(Failure::default()), None, "worker"));
        assert_eq!(tx.state.status, Status::Failed as i32);
        let o = tx
            .state
            .standalone
            .as_ref()
            .unwrap()
            .outcome
            .clone()
            .unwrap();
        assert_eq!(o.retry_state, RetryState::CancelRequested as i32);
    }

    #[test]
    fn cancel_before_start_and_terminate_close_at_once() {
        let (mut run, now) = start(Duration::ZERO);
        let mut tx = Tx::new(&mut run.state, now);
        tx.cancel_standalone("why", "c1", "client");
        assert_eq!(tx.state.status, Status::Canceled as i32);
        assert_eq!(tx.state.standalone.as_ref().unwrap().canceled_reason, "why");

        let (mut run, now) = start(Duration::ZERO);
        let mut tx = Tx::new(&mut run.state, now);
        tx.start_activity(0, "req", "worker");
        tx.terminate_standalone("enough", "t1", "client");
        assert_eq!(tx.state.status, Status::Terminated as i32);
        assert!(tx.state.activities.is_empty());
        assert_eq!(
            activity_status(tx.state),
            ActivityExecutionStatus::Terminated
        );
    }
}
