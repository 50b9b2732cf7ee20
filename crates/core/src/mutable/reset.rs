//! Resetting a run: which event ids are valid reset points, and the new run a reset creates, whose
//! history is the base run's events up to the point, a WorkflowTaskFailed (cause
//! `ResetWorkflow`), the reapplied signals and a new workflow task, and whose state is rebuilt by
//! replaying those copied events.

use std::time::SystemTime;

use perdure_proto::api::enums::v1::{
    EventType, UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{Failure, ResetWorkflowFailureInfo};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use prost::Message as _;

use crate::clock::convert::{dur, from_ts, ts};
use crate::state::*;

use super::{NewRun, Tx};

/// Identity Temporal writes on the WorkflowTaskFailed of a reset.
pub const RESET_TASK_IDENTITY: &str = "history-service";
/// Identity Temporal writes on the termination of the run a reset replaces.
pub const RESET_TERMINATE_IDENTITY: &str = "history-resetter";

/// Where a reset cuts the base run's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPoint {
    /// Events `1..=copy_to` are copied into the new run.
    pub copy_to: i64,
    /// The workflow task the reset fails.
    pub scheduled_event_id: i64,
    /// Its started event, or `None` when it was only scheduled at `copy_to` (a started event is
    /// then written for it, as Temporal does).
    pub started_event_id: Option<i64>,
}

fn kind(e: &HistoryEvent) -> EventType {
    EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified)
}

/// Checks `finish_event_id` against the base run's history (all of it, from event 1) the way
/// Temporal does: the state is rebuilt up to the event before it, which must end a workflow task
/// batch (a WorkflowTaskStarted, or a WorkflowTaskScheduled followed by this task's events).
pub fn reset_point(history: &[HistoryEvent], finish_event_id: i64) -> Result<ResetPoint, String> {
    let last = history.len() as i64;
    if finish_event_id <= 1 || finish_event_id > last {
        return Err("Workflow task finish ID must be > 1 && <= workflow last event ID.".into());
    }
    let boundary = || {
        format!(
            "StateRebuilder unable to Rebuild mutable state to event ID: {}, version: 0, this event must be at the boundary",
            finish_event_id - 1
        )
    };
    let finish = &history[(finish_event_id - 1) as usize];
    let prev = &history[(finish_event_id - 2) as usize];
    let finishes_task = matches!(
        kind(finish),
        EventType::WorkflowTaskCompleted
            | EventType::WorkflowTaskFailed
            | EventType::WorkflowTaskTimedOut
            | EventType::WorkflowTaskStarted
    );
    if !finishes_task {
        return Err(boundary());
    }
    match (kind(prev), &prev.attributes) {
        (_, Some(A::WorkflowTaskStartedEventAttributes(s))) => Ok(ResetPoint {
            copy_to: prev.event_id,
            scheduled_event_id: s.scheduled_event_id,
            started_event_id: Some(prev.event_id),
        }),
        (EventType::WorkflowTaskScheduled, _) => Ok(ResetPoint {
            copy_to: prev.event_id,
            scheduled_event_id: prev.event_id,
            started_event_id: None,
        }),
        _ => Err(boundary()),
    }
}

/// What a reset needs besides the base run.
#[derive(Debug, Clone)]
pub struct ResetParams {
    pub new_run_id: String,
    pub reason: String,
    pub point: ResetPoint,
    /// Events of the base run after the point to apply again (signals), in order.
    pub reapply: Vec<HistoryEvent>,
}

/// Builds the run a reset creates from the base run's state and its events `1..=copy_to`.
pub fn reset_run(
    base: &ExecutionState,
    copied: Vec<HistoryEvent>,
    p: ResetParams,
    now: SystemTime,
) -> NewRun {
    let mut state = ExecutionState {
        namespace_id: base.namespace_id.clone(),
        namespace: base.namespace.clone(),
        workflow_id: base.workflow_id.clone(),
        run_id: p.new_run_id.clone(),
        first_execution_run_id: base.first_execution_run_id.clone(),
        workflow_type: base.workflow_type.clone(),
        task_queue: base.task_queue.clone(),
        status: Status::Running as i32,
        next_event_id: 1,
        start_time: Some(ts(now)),
        execution_time: Some(ts(now)),
        run_timeout: base.run_timeout,
        execution_timeout: base.execution_timeout,
        task_timeout: base.task_timeout,
        execution_expiration: base.execution_expiration,
        run_expiration: (!dur(&base.run_timeout).is_zero())
            .then(|| ts(now + dur(&base.run_timeout))),
        retry_policy: base.retry_policy.clone(),
        attempt: base.attempt,
        cron_schedule: base.cron_schedule.clone(),
        parent: base.parent.clone(),
        // Like Temporal, the new run answers to the original start's request id.
        start_request_id: base.start_request_id.clone(),
        input: base.input.clone(),
        header: base.header.clone(),
        root_workflow_id: base.root_workflow_id.clone(),
        root_run_id: if base.root_run_id == base.run_id {
            p.new_run_id.clone()
        } else {
            base.root_run_id.clone()
        },
        identity: base.identity.clone(),
        priority: base.priority.clone(),
        workflow_id_reuse_policy: base.workflow_id_reuse_policy,
        last_completion_result: base.last_completion_result.clone(),
        ..Default::default()
    };
    for e in &copied {
        replay(&mut state, e, now);
        state.next_event_id = e.event_id + 1;
        state.history_size_bytes += e.encoded_len() as i64;
    }
    // The reset fails the workflow task outstanding at the point.
    state.wft = None;
    let mut tx = Tx::new(&mut state, now);
    tx.rearm_all();
    let started = match p.point.started_event_id {
        Some(id) => id,
        None => {
            let size = tx.state.history_size_bytes;
            tx.append(A::WorkflowTaskStartedEventAttributes(
                WorkflowTaskStartedEventAttributes {
                    scheduled_event_id: p.point.scheduled_event_id,
                    identity: RESET_TASK_IDENTITY.into(),
                    request_id: "emptyUuid".into(),
                    history_size_bytes: size,
                    ..Default::default()
                },
            ))
        }
    };
    tx.append(A::WorkflowTaskFailedEventAttributes(
        WorkflowTaskFailedEventAttributes {
            scheduled_event_id: p.point.scheduled_event_id,
            started_event_id: started,
            cause: Cause::ResetWorkflow as i32,
            failure: Some(Failure {
                message: p.reason.clone(),
                failure_info: Some(FailureInfo::ResetWorkflowFailureInfo(
                    ResetWorkflowFailureInfo::default(),
                )),
                ..Default::default()
            }),
            identity: RESET_TASK_IDENTITY.into(),
            base_run_id: base.run_id.clone(),
            new_run_id: p.new_run_id.clone(),
            ..Default::default()
        },
    ));
    for e in p.reapply {
        if let Some(a @ A::WorkflowExecutionSignaledEventAttributes(_)) = e.attributes {
            tx.append(a);
        }
    }
    tx.schedule_wft();
    let (events, effects) = (tx.events, tx.effects);
    NewRun {
        state,
        events: copied.into_iter().chain(events).collect(),
        effects,
    }
}

/// Applies one copied event to the state being rebuilt: what is pending (workflow task,
/// activities, timers, children, requests to other runs, updates) and what events change (search
/// attributes, memo, cancel request).
fn replay(state: &mut ExecutionState, e: &HistoryEvent, now: SystemTime) {
    let Some(a) = &e.attributes else { return };
    let id = e.event_id;
    match a {
        A::WorkflowExecutionStartedEventAttributes(s) => {
            state.memo = s.memo.clone();
            state.search_attributes = s.search_attributes.clone();
            state.user_metadata = e.user_metadata.clone();
        }
        A::WorkflowTaskScheduledEventAttributes(s) => {
            state.wft = Some(WorkflowTaskState {
                scheduled_event_id: id,
                attempt: s.attempt.max(1),
                scheduled_time: e.event_time,
                original_scheduled_time: e.event_time,
                task_queue: state.task_queue.clone(),
                ..Default::default()
            });
        }
        A::WorkflowTaskStartedEventAttributes(_) => {
            if let Some(w) = state.wft.as_mut() {
                w.started_event_id = id;
                w.started_time = e.event_time;
            }
        }
        A::WorkflowTaskCompletedEventAttributes(c) => {
            state.wft = None;
            state.last_completed_wft_started_id = c.started_event_id;
        }
        A::WorkflowTaskFailedEventAttributes(_) | A::WorkflowTaskTimedOutEventAttributes(_) => {
            state.wft = None;
        }
        A::ActivityTaskScheduledEventAttributes(s) => {
            state.activities.push(ActivityState {
                scheduled_event_id: id,
                activity_id: s.activity_id.clone(),
                activity_type: s
                    .activity_type
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                task_queue: s
                    .task_queue
                    .as_ref()
                    .map(|q| q.name.clone())
                    .unwrap_or_else(|| state.task_queue.clone()),
                input: s.input.clone(),
                header: s.header.clone(),
                schedule_to_close: s.schedule_to_close_timeout,
                schedule_to_start: s.schedule_to_start_timeout,
                start_to_close: s.start_to_close_timeout,
                heartbeat_timeout: s.heartbeat_timeout,
                retry_policy: s.retry_policy.clone(),
                attempt: 1,
                scheduled_time: e.event_time,
                // The new run dispatches it again now.
                current_attempt_scheduled_time: Some(ts(now)),
                priority: s.priority.clone(),
                ..Default::default()
            });
        }
        A::ActivityTaskCancelRequestedEventAttributes(c) => {
            if let Some(x) = state
                .activities
                .iter_mut()
                .find(|x| x.scheduled_event_id == c.scheduled_event_id)
            {
                x.cancel_requested_event_id = id;
            }
        }
        A::ActivityTaskCompletedEventAttributes(x) => remove_activity(state, x.scheduled_event_id),
        A::ActivityTaskFailedEventAttributes(x) => remove_activity(state, x.scheduled_event_id),
        A::ActivityTaskTimedOutEventAttributes(x) => remove_activity(state, x.scheduled_event_id),
        A::ActivityTaskCanceledEventAttributes(x) => remove_activity(state, x.scheduled_event_id),
        A::TimerStartedEventAttributes(t) => {
            let start = e.event_time.as_ref().map(from_ts).unwrap_or(now);
            state.timers.push(TimerState {
                timer_id: t.timer_id.clone(),
                started_event_id: id,
                fire_time: Some(ts(start + dur(&t.start_to_fire_timeout))),
            });
        }
        A::TimerFiredEventAttributes(t) => state.timers.retain(|x| x.timer_id != t.timer_id),
        A::TimerCanceledEventAttributes(t) => state.timers.retain(|x| x.timer_id != t.timer_id),
        A::StartChildWorkflowExecutionInitiatedEventAttributes(s) => {
            state.children.push(ChildState {
                initiated_event_id: id,
                namespace: s.namespace.clone(),
                workflow_id: s.workflow_id.clone(),
                workflow_type: s
                    .workflow_type
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                run_id: String::new(),
                started_event_id: 0,
                parent_close_policy: s.parent_close_policy,
                initiated: s.encode_to_vec(),
                user_metadata: e.user_metadata.clone(),
            });
        }
        A::ChildWorkflowExecutionStartedEventAttributes(s) => {
            if let Some(c) = state
                .children
                .iter_mut()
                .find(|c| c.initiated_event_id == s.initiated_event_id)
            {
                c.run_id = s
                    .workflow_execution
                    .as_ref()
                    .map(|x| x.run_id.clone())
                    .unwrap_or_default();
                c.started_event_id = id;
            }
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::ChildWorkflowExecutionCompletedEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::ChildWorkflowExecutionFailedEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(x) => {
            remove_child(state, x.initiated_event_id)
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(s) => {
            let exec = s.workflow_execution.clone().unwrap_or_default();
            state.external_requests.push(ExternalRequestState {
                initiated_event_id: id,
                cancel: false,
                namespace: s.namespace.clone(),
                workflow_id: exec.workflow_id,
                run_id: exec.run_id,
                child_workflow_only: s.child_workflow_only,
                signal_name: s.signal_name.clone(),
                input: s.input.clone(),
                control: s.control.clone().into_bytes(),
                header: s.header.clone(),
                reason: String::new(),
            });
        }
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(s) => {
            let exec = s.workflow_execution.clone().unwrap_or_default();
            state.external_requests.push(ExternalRequestState {
                initiated_event_id: id,
                cancel: true,
                namespace: s.namespace.clone(),
                workflow_id: exec.workflow_id,
                run_id: exec.run_id,
                child_workflow_only: s.child_workflow_only,
                control: s.control.clone().into_bytes(),
                reason: s.reason.clone(),
                ..Default::default()
            });
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(x) => {
            remove_external(state, x.initiated_event_id)
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(x) => {
            remove_external(state, x.initiated_event_id)
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(x) => {
            remove_external(state, x.initiated_event_id)
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(x) => {
            remove_external(state, x.initiated_event_id)
        }
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => state.cancel_requested = true,
        A::UpsertWorkflowSearchAttributesEventAttributes(u) => {
            let cur = state.search_attributes.get_or_insert_with(Default::default);
            for (k, v) in u.search_attributes.iter().flat_map(|s| &s.indexed_fields) {
                if v.data.is_empty() || v.data == b"null" {
                    cur.indexed_fields.remove(k);
                } else {
                    cur.indexed_fields.insert(k.clone(), v.clone());
                }
            }
        }
        A::WorkflowPropertiesModifiedEventAttributes(m) => {
            let cur = state.memo.get_or_insert_with(Default::default);
            for (k, v) in m.upserted_memo.iter().flat_map(|m| &m.fields) {
                if v.data.is_empty() || v.data == b"null" {
                    cur.fields.remove(k);
                } else {
                    cur.fields.insert(k.clone(), v.clone());
                }
            }
        }
        A::WorkflowExecutionUpdateAcceptedEventAttributes(u) => {
            state.updates.push(UpdateState {
                update_id: u.protocol_instance_id.clone(),
                stage: Stage::Accepted as i32,
                request: u
                    .accepted_request
                    .as_ref()
                    .map(|r| r.encode_to_vec())
                    .unwrap_or_default(),
                outcome: Vec::new(),
                accepted_event_id: id,
            });
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(c) => {
            if let Some(u) = state
                .updates
                .iter_mut()
                .find(|u| u.accepted_event_id == c.accepted_event_id)
            {
                u.stage = Stage::Completed as i32;
                u.outcome = c.outcome.clone().unwrap_or_default().encode_to_vec();
            }
        }
        _ => {}
    }
}

fn remove_activity(state: &mut ExecutionState, scheduled_event_id: i64) {
    state
        .activities
        .retain(|a| a.scheduled_event_id != scheduled_event_id);
}

fn remove_child(state: &mut ExecutionState, initiated_event_id: i64) {
    state
        .children
        .retain(|c| c.initiated_event_id != initiated_event_id);
}

fn remove_external(state: &mut ExecutionState, initiated_event_id: i64) {
    state
        .external_requests
        .retain(|r| r.initiated_event_id != initiated_event_id);
}
