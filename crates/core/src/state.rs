//! The persisted mutable state of one workflow run: everything the engine needs besides the
//! append-only history (pending workflow task, activities, timers, children, buffered events).
//!
//! These are hand-written prost messages so that the state is stored as compact protobuf bytes and
//! can embed Temporal message types (payloads, failures, retry policies) unchanged.

use perdure_proto::api::common::v1::{
    Header, Memo, Payloads, Priority, RetryPolicy, SearchAttributes,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::sdk::v1::UserMetadata;
use perdure_proto::prost_types::{Duration, Timestamp};

/// One workflow run's mutable state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionState {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(string, tag = "5")]
    pub first_execution_run_id: String,
    #[prost(string, tag = "6")]
    pub workflow_type: String,
    #[prost(string, tag = "7")]
    pub task_queue: String,
    /// `temporal.api.enums.v1.WorkflowExecutionStatus`.
    #[prost(int32, tag = "8")]
    pub status: i32,
    /// Id the next persisted event gets.
    #[prost(int64, tag = "9")]
    pub next_event_id: i64,
    /// Started event id of the last completed workflow task (0 if none): the poll response's
    /// `previous_started_event_id`.
    #[prost(int64, tag = "10")]
    pub last_completed_wft_started_id: i64,
    #[prost(message, optional, tag = "11")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "12")]
    pub close_time: Option<Timestamp>,
    /// Start time plus the first workflow task backoff.
    #[prost(message, optional, tag = "13")]
    pub execution_time: Option<Timestamp>,
    #[prost(message, optional, tag = "14")]
    pub run_timeout: Option<Duration>,
    #[prost(message, optional, tag = "15")]
    pub execution_timeout: Option<Duration>,
    #[prost(message, optional, tag = "16")]
    pub task_timeout: Option<Duration>,
    /// When the whole chain (across retries and continue-as-new) must end; unset = never.
    #[prost(message, optional, tag = "17")]
    pub execution_expiration: Option<Timestamp>,
    /// When this run must end; unset = never.
    #[prost(message, optional, tag = "18")]
    pub run_expiration: Option<Timestamp>,
    #[prost(message, optional, tag = "19")]
    pub retry_policy: Option<RetryPolicy>,
    #[prost(int32, tag = "20")]
    pub attempt: i32,
    #[prost(string, tag = "21")]
    pub cron_schedule: String,
    #[prost(message, optional, tag = "22")]
    pub memo: Option<Memo>,
    #[prost(message, optional, tag = "23")]
    pub search_attributes: Option<SearchAttributes>,
    #[prost(message, optional, tag = "24")]
    pub parent: Option<ParentInfo>,
    #[prost(bool, tag = "25")]
    pub parent_notified: bool,
    /// Set on a standalone activity (started by a client, not a workflow): a run-like record in
    /// its namespace's activity id space whose one pending activity is the whole execution.
    #[prost(message, optional, tag = "53")]
    pub standalone: Option<StandaloneState>,
    #[prost(string, tag = "26")]
    pub start_request_id: String,
    /// Request ids of signals already applied (dedup), most recent last, bounded.
    #[prost(string, repeated, tag = "27")]
    pub signal_request_ids: Vec<String>,
    #[prost(bool, tag = "28")]
    pub cancel_requested: bool,
    #[prost(message, optional, tag = "29")]
    pub wft: Option<WorkflowTaskState>,
    /// Sticky queue of the worker that completed the last workflow task ("" = none).
    #[prost(string, tag = "30")]
    pub sticky_queue: String,
    #[prost(message, optional, tag = "31")]
    pub sticky_schedule_to_start: Option<Duration>,
    /// Events that arrived while a workflow task was started; they get ids when flushed.
    #[prost(message, repeated, tag = "32")]
    pub buffered_events: Vec<HistoryEvent>,
    #[prost(message, repeated, tag = "33")]
    pub activities: Vec<ActivityState>,
    #[prost(message, repeated, tag = "34")]
    pub timers: Vec<TimerState>,
    #[prost(message, repeated, tag = "35")]
    pub children: Vec<ChildState>,
    #[prost(message, repeated, tag = "36")]
    pub external_requests: Vec<ExternalRequestState>,
    #[prost(message, repeated, tag = "37")]
    pub updates: Vec<UpdateState>,
    #[prost(int64, tag = "38")]
    pub history_size_bytes: i64,
    #[prost(int64, tag = "39")]
    pub state_transition_count: i64,
    /// Set while the first workflow task waits for `first_workflow_task_backoff`.
    #[prost(message, optional, tag = "40")]
    pub first_wft_backoff_until: Option<Timestamp>,
    /// Input of the run, kept for workflow retries and cron.
    #[prost(message, optional, tag = "41")]
    pub input: Option<Payloads>,
    #[prost(message, optional, tag = "42")]
    pub header: Option<Header>,
    #[prost(string, tag = "43")]
    pub root_workflow_id: String,
    #[prost(string, tag = "44")]
    pub root_run_id: String,
    /// Run id of the run that replaced this one (continue-as-new, retry, cron).
    #[prost(string, tag = "45")]
    pub new_execution_run_id: String,
    #[prost(string, tag = "46")]
    pub identity: String,
    #[prost(message, optional, tag = "47")]
    pub priority: Option<Priority>,
    /// Request id of the last accepted cancel request.
    #[prost(string, tag = "48")]
    pub cancel_request_id: String,
    /// Whether the current run's chain was started by a child-workflow command and so on.
    #[prost(int32, tag = "49")]
    pub workflow_id_reuse_policy: i32,
    /// Id of the close event (0 while running).
    #[prost(int64, tag = "50")]
    pub close_event_id: i64,
    /// The result of the last successful run of a cron chain, handed to the next run.
    #[prost(message, optional, tag = "51")]
    pub last_completion_result: Option<Payloads>,
    /// The summary and details a client (or a parent's command) attached to the start; shown
    /// by describe and on the WorkflowExecutionStarted event.
    #[prost(message, optional, tag = "52")]
    pub user_metadata: Option<UserMetadata>,
    /// Worker versioning: the `VersioningBehavior` the last workflow task completion of a
    /// versioned worker declared (0 = unversioned).
    #[prost(int32, tag = "80")]
    pub versioning_behavior: i32,
    /// The deployment version of the versioned worker that completed the last workflow task.
    #[prost(message, optional, tag = "81")]
    pub deployment_version: Option<perdure_proto::api::deployment::v1::WorkerDeploymentVersion>,
    /// A client's `VersioningOverride` (start request or UpdateWorkflowExecutionOptions).
    #[prost(message, optional, tag = "82")]
    pub versioning_override: Option<perdure_proto::api::workflow::v1::VersioningOverride>,
}

/// The parent of a child workflow run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ParentInfo {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(int64, tag = "5")]
    pub initiated_event_id: i64,
}

/// The outstanding workflow task of a run (at most one).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTaskState {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    /// 0 until a poller took it.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(message, optional, tag = "4")]
    pub scheduled_time: Option<Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub started_time: Option<Timestamp>,
    /// Queue the task was dispatched to (the sticky queue or the normal one).
    #[prost(string, tag = "6")]
    pub task_queue: String,
    #[prost(bool, tag = "7")]
    pub sticky: bool,
    /// Scheduled and started events are not persisted (attempt > 1 after a failure).
    #[prost(bool, tag = "8")]
    pub transient: bool,
    #[prost(string, tag = "9")]
    pub request_id: String,
    #[prost(string, tag = "10")]
    pub identity: String,
    #[prost(message, optional, tag = "11")]
    pub original_scheduled_time: Option<Timestamp>,
    /// Bumped whenever the task is (re)dispatched, so stale queue entries and tokens are refused.
    #[prost(int64, tag = "12")]
    pub dispatch_seq: i64,
    /// Update ids whose request messages were delivered with this task.
    #[prost(string, repeated, tag = "13")]
    pub delivered_updates: Vec<String>,
}

/// A scheduled activity that has not reached its final outcome.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityState {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(string, tag = "2")]
    pub activity_id: String,
    #[prost(string, tag = "3")]
    pub activity_type: String,
    #[prost(string, tag = "4")]
    pub task_queue: String,
    #[prost(message, optional, tag = "5")]
    pub input: Option<Payloads>,
    #[prost(message, optional, tag = "6")]
    pub header: Option<Header>,
    #[prost(message, optional, tag = "7")]
    pub schedule_to_close: Option<Duration>,
    #[prost(message, optional, tag = "8")]
    pub schedule_to_start: Option<Duration>,
    #[prost(message, optional, tag = "9")]
    pub start_to_close: Option<Duration>,
    #[prost(message, optional, tag = "10")]
    pub heartbeat_timeout: Option<Duration>,
    #[prost(message, optional, tag = "11")]
    pub retry_policy: Option<RetryPolicy>,
    #[prost(int32, tag = "12")]
    pub attempt: i32,
    /// First schedule time (the schedule-to-close clock starts here).
    #[prost(message, optional, tag = "13")]
    pub scheduled_time: Option<Timestamp>,
    /// When the current attempt becomes (or became) dispatchable.
    #[prost(message, optional, tag = "14")]
    pub current_attempt_scheduled_time: Option<Timestamp>,
    /// Set while an attempt is running.
    #[prost(message, optional, tag = "15")]
    pub started_time: Option<Timestamp>,
    #[prost(string, tag = "16")]
    pub started_identity: String,
    #[prost(string, tag = "17")]
    pub request_id: String,
    #[prost(message, optional, tag = "18")]
    pub heartbeat_details: Option<Payloads>,
    #[prost(message, optional, tag = "19")]
    pub last_heartbeat_time: Option<Timestamp>,
    #[prost(message, optional, tag = "20")]
    pub last_failure: Option<Failure>,
    /// Id of ActivityTaskCancelRequested (0 = no cancel requested).
    #[prost(int64, tag = "21")]
    pub cancel_requested_event_id: i64,
    #[prost(message, optional, tag = "22")]
    pub priority: Option<Priority>,
    #[prost(string, tag = "23")]
    pub last_worker_identity: String,
    #[prost(message, optional, tag = "24")]
    pub last_attempt_complete_time: Option<Timestamp>,
    /// Paused by PauseActivity: no attempt is dispatched and no timer of the activity fires
    /// until UnpauseActivity (or ResetActivity); a running attempt learns of it at its next
    /// heartbeat, and its failure schedules no retry.
    #[prost(bool, tag = "25")]
    pub paused: bool,
    #[prost(message, optional, tag = "26")]
    pub pause_time: Option<Timestamp>,
    #[prost(string, tag = "27")]
    pub pause_identity: String,
    #[prost(string, tag = "28")]
    pub pause_reason: String,
    /// The request id of the pause: pausing again with the same id is a no-op.
    #[prost(string, tag = "29")]
    pub pause_request_id: String,
    /// ResetActivity while an attempt runs: its heartbeats answer `activity_reset` until it ends.
    #[prost(bool, tag = "30")]
    pub reset_requested: bool,
    /// ResetActivity with `reset_heartbeat` while an attempt runs (or stays paused): the
    /// heartbeat details are dropped before the next attempt.
    #[prost(bool, tag = "31")]
    pub reset_heartbeats: bool,
}

/// A started user timer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimerState {
    #[prost(string, tag = "1")]
    pub timer_id: String,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(message, optional, tag = "3")]
    pub fire_time: Option<Timestamp>,
}

/// A child workflow initiated by this run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildState {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub workflow_type: String,
    /// Set once the child started.
    #[prost(string, tag = "5")]
    pub run_id: String,
    /// ChildWorkflowExecutionStarted id; -1 while that event sits in the buffer.
    #[prost(int64, tag = "6")]
    pub started_event_id: i64,
    #[prost(int32, tag = "7")]
    pub parent_close_policy: i32,
    /// Encoded StartChildWorkflowExecutionInitiatedEventAttributes (to re-issue after a crash).
    #[prost(bytes = "vec", tag = "8")]
    pub initiated: Vec<u8>,
    /// The user metadata of the StartChildWorkflowExecution command, given to the child's start.
    #[prost(message, optional, tag = "9")]
    pub user_metadata: Option<UserMetadata>,
}

/// A signal-external or cancel-external request waiting for its outcome.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExternalRequestState {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    /// true = cancel request, false = signal.
    #[prost(bool, tag = "2")]
    pub cancel: bool,
    #[prost(string, tag = "3")]
    pub namespace: String,
    #[prost(string, tag = "4")]
    pub workflow_id: String,
    #[prost(string, tag = "5")]
    pub run_id: String,
    #[prost(bool, tag = "6")]
    pub child_workflow_only: bool,
    #[prost(string, tag = "7")]
    pub signal_name: String,
    #[prost(message, optional, tag = "8")]
    pub input: Option<Payloads>,
    #[prost(bytes = "vec", tag = "9")]
    pub control: Vec<u8>,
    #[prost(message, optional, tag = "10")]
    pub header: Option<Header>,
    #[prost(string, tag = "11")]
    pub reason: String,
}

/// One workflow update known to the run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateState {
    #[prost(string, tag = "1")]
    pub update_id: String,
    /// `temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage`.
    #[prost(int32, tag = "2")]
    pub stage: i32,
    /// Encoded `temporal.api.update.v1.Request`.
    #[prost(bytes = "vec", tag = "3")]
    pub request: Vec<u8>,
    /// Encoded `temporal.api.update.v1.Outcome` once completed (or rejected).
    #[prost(bytes = "vec", tag = "4")]
    pub outcome: Vec<u8>,
    #[prost(int64, tag = "5")]
    pub accepted_event_id: i64,
}

/// A namespace as stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceRecord {
    #[prost(message, optional, tag = "1")]
    pub info: Option<perdure_proto::api::namespace::v1::NamespaceInfo>,
    #[prost(message, optional, tag = "2")]
    pub config: Option<perdure_proto::api::namespace::v1::NamespaceConfig>,
    /// Custom search attributes: name -> `IndexedValueType`.
    #[prost(map = "string, int32", tag = "3")]
    pub search_attributes: std::collections::HashMap<String, i32>,
}

/// What a standalone activity keeps besides its one pending activity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StandaloneState {
    /// The namespace's own id (the record itself lives under a derived one).
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    /// When StartActivityExecution was accepted.
    #[prost(message, optional, tag = "2")]
    pub schedule_time: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub start_delay: Option<Duration>,
    /// The final outcome once closed.
    #[prost(message, optional, tag = "4")]
    pub outcome: Option<perdure_proto::api::activity::v1::ActivityExecutionOutcome>,
    #[prost(string, tag = "5")]
    pub canceled_reason: String,
    #[prost(string, tag = "6")]
    pub cancel_request_id: String,
    #[prost(string, tag = "7")]
    pub terminate_request_id: String,
    #[prost(int64, tag = "8")]
    pub total_heartbeat_count: i64,
    /// The activity as it was when it closed (describe still shows its attempt, times and
    /// options).
    #[prost(message, optional, tag = "9")]
    pub last: Option<ActivityState>,
}
