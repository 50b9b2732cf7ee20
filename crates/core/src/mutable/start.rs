//! Creating a run: the parameters of a new run and its first events, state and timers.

use std::time::{Duration, SystemTime};

use perdure_proto::api::common::v1::{Payloads, SearchAttributes, WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::WorkflowExecutionStatus as Status;
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::sdk::v1::UserMetadata;

use crate::clock::convert::{nz, pdur, ts};
use crate::state::*;

use super::{
    DEFAULT_TASK_TIMEOUT, Effect, MAX_TASK_TIMEOUT, NewRun, SignalParams, TimerKind, Tx,
    normal_queue,
};

/// Everything needed to create a run.
#[derive(Debug, Clone, Default)]
pub struct StartParams {
    pub namespace: String,
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Option<Payloads>,
    pub header: Option<perdure_proto::api::common::v1::Header>,
    pub run_timeout: Duration,
    pub execution_timeout: Duration,
    pub task_timeout: Duration,
    pub retry_policy: Option<perdure_proto::api::common::v1::RetryPolicy>,
    pub cron_schedule: String,
    pub memo: Option<perdure_proto::api::common::v1::Memo>,
    pub search_attributes: Option<SearchAttributes>,
    pub identity: String,
    pub request_id: String,
    pub parent: Option<ParentInfo>,
    pub root_workflow_id: String,
    pub root_run_id: String,
    pub first_execution_run_id: String,
    pub attempt: i32,
    pub initiator: i32,
    pub continued_execution_run_id: String,
    pub continued_failure: Option<Failure>,
    pub last_completion_result: Option<Payloads>,
    pub backoff: Duration,
    pub execution_expiration: Option<SystemTime>,
    pub priority: Option<perdure_proto::api::common::v1::Priority>,
    pub reuse_policy: i32,
    pub parent_close_policy: i32,
    /// Signal-with-start: the signal written right after the start event.
    pub signal: Option<SignalParams>,
    /// Summary and details shown for the run (on its started event and by describe).
    pub user_metadata: Option<UserMetadata>,
    /// A client's versioning override (start request), or one a continue-as-new carries over.
    pub versioning_override: Option<perdure_proto::api::workflow::v1::VersioningOverride>,
    /// The pinned version the run starts on, inherited from the run that continued as new (or
    /// its parent); its first workflow task goes there.
    pub inherited_pinned_version:
        Option<perdure_proto::api::deployment::v1::WorkerDeploymentVersion>,
}

/// Creates a run: its state, WorkflowExecutionStarted (+ signal), and the first workflow task
/// unless it is delayed by a backoff.
pub fn start_run(p: StartParams, now: SystemTime) -> NewRun {
    let task_timeout = if p.task_timeout.is_zero() {
        DEFAULT_TASK_TIMEOUT
    } else {
        p.task_timeout.min(MAX_TASK_TIMEOUT)
    };
    let mut run_timeout = p.run_timeout;
    if !p.execution_timeout.is_zero()
        && (run_timeout.is_zero() || run_timeout > p.execution_timeout)
    {
        run_timeout = p.execution_timeout;
    }
    let execution_expiration = p
        .execution_expiration
        .or_else(|| (!p.execution_timeout.is_zero()).then(|| now + p.execution_timeout));
    let first_execution_run_id = if p.first_execution_run_id.is_empty() {
        p.run_id.clone()
    } else {
        p.first_execution_run_id.clone()
    };
    let mut state = ExecutionState {
        namespace_id: p.namespace_id.clone(),
        namespace: p.namespace.clone(),
        workflow_id: p.workflow_id.clone(),
        run_id: p.run_id.clone(),
        first_execution_run_id: first_execution_run_id.clone(),
        workflow_type: p.workflow_type.clone(),
        task_queue: p.task_queue.clone(),
        status: Status::Running as i32,
        next_event_id: 1,
        start_time: Some(ts(now)),
        execution_time: Some(ts(now + p.backoff)),
        run_timeout: nz(run_timeout),
        execution_timeout: nz(p.execution_timeout),
        task_timeout: Some(pdur(task_timeout)),
        execution_expiration: execution_expiration.map(ts),
        run_expiration: (!run_timeout.is_zero()).then(|| ts(now + p.backoff + run_timeout)),
        retry_policy: p.retry_policy.clone(),
        attempt: p.attempt.max(1),
        cron_schedule: p.cron_schedule.clone(),
        last_completion_result: p.last_completion_result.clone(),
        memo: p.memo.clone(),
        search_attributes: p.search_attributes.clone(),
        parent: p.parent.clone(),
        start_request_id: p.request_id.clone(),
        input: p.input.clone(),
        header: p.header.clone(),
        root_workflow_id: if p.root_workflow_id.is_empty() {
            p.workflow_id.clone()
        } else {
            p.root_workflow_id.clone()
        },
        root_run_id: if p.root_run_id.is_empty() {
            p.run_id.clone()
        } else {
            p.root_run_id.clone()
        },
        identity: p.identity.clone(),
        priority: p.priority.clone(),
        workflow_id_reuse_policy: p.reuse_policy,
        user_metadata: p.user_metadata.clone(),
        versioning_override: p.versioning_override.clone(),
        // An inherited pinned version routes the run like a pinned worker's until its first
        // workflow task completes and its own worker declares its behavior.
        versioning_behavior: if p.inherited_pinned_version.is_some() {
            perdure_proto::api::enums::v1::VersioningBehavior::Pinned as i32
        } else {
            0
        },
        deployment_version: p.inherited_pinned_version.clone(),
        ..Default::default()
    };
    let mut tx = Tx::new(&mut state, now);
    let parent = p.parent.as_ref();
    tx.append_with_metadata(
        p.user_metadata.clone(),
        A::WorkflowExecutionStartedEventAttributes(WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(WorkflowType {
                name: p.workflow_type.clone(),
            }),
            parent_workflow_namespace: parent.map(|x| x.namespace.clone()).unwrap_or_default(),
            parent_workflow_namespace_id: parent
                .map(|x| x.namespace_id.clone())
                .unwrap_or_default(),
            parent_workflow_execution: parent.map(|x| WorkflowExecution {
                workflow_id: x.workflow_id.clone(),
                run_id: x.run_id.clone(),
            }),
            parent_initiated_event_id: parent.map(|x| x.initiated_event_id).unwrap_or_default(),
            task_queue: Some(normal_queue(&p.task_queue)),
            input: p.input.clone(),
            workflow_execution_timeout: nz(p.execution_timeout),
            workflow_run_timeout: nz(run_timeout),
            workflow_task_timeout: Some(pdur(task_timeout)),
            continued_execution_run_id: p.continued_execution_run_id.clone(),
            initiator: p.initiator,
            continued_failure: p.continued_failure.clone(),
            last_completion_result: p.last_completion_result.clone(),
            original_execution_run_id: p.run_id.clone(),
            identity: p.identity.clone(),
            first_execution_run_id,
            retry_policy: p.retry_policy.clone(),
            attempt: p.attempt.max(1),
            workflow_execution_expiration_time: execution_expiration.map(ts),
            cron_schedule: p.cron_schedule.clone(),
            first_workflow_task_backoff: nz(p.backoff),
            memo: p.memo.clone(),
            search_attributes: p.search_attributes.clone(),
            header: p.header.clone(),
            workflow_id: p.workflow_id.clone(),
            root_workflow_execution: Some(WorkflowExecution {
                workflow_id: tx.state.root_workflow_id.clone(),
                run_id: tx.state.root_run_id.clone(),
            }),
            priority: p.priority.clone(),
            versioning_override: p.versioning_override.clone(),
            inherited_pinned_version: p.inherited_pinned_version.clone(),
            ..Default::default()
        }),
    );
    if let Some(s) = p.signal {
        tx.signal(s);
    }
    if p.backoff.is_zero() {
        tx.schedule_wft();
    } else {
        let until = now + p.backoff;
        tx.state.first_wft_backoff_until = Some(ts(until));
        tx.effects.push(Effect::Timer {
            at: until,
            kind: TimerKind::StartBackoff,
        });
    }
    tx.arm_workflow_timeout();
    let (events, effects) = (tx.events, tx.effects);
    NewRun {
        state,
        events,
        effects,
    }
}
