//! The functional core of the engine: a [`Tx`] applies one input (a command batch from a worker,
//! a signal, an activity outcome, a timer firing, ...) to a run's [`ExecutionState`] and yields
//! the new history events and the [`Effect`]s the shell must carry out after the commit. No IO,
//! no wall clock: time comes in as `now`.
//!
//! This file holds the types and the event-writing primitives; each concern adds its own
//! `impl Tx` in a submodule: `start` (new runs), `workflow_task` (schedule, start, fail, time out,
//! complete; buffered events), `commands` (validating and applying a completion's commands),
//! `activities`, `activity_ops` (pause, unpause, reset and options of pending activities),
//! `timers`, `children` (children and requests to other runs), `updates`,
//! `signals` (signals and cancel requests), `close` (close, retry, cron, continue-as-new,
//! timeouts, termination), `rearm` (timers and dispatches rebuilt after a restart) and `reset`
//! (reset points, and the new run a reset builds by replaying the copied events).

mod activities;
mod activity_ops;
mod children;
mod close;
mod commands;
mod rearm;
mod reset;
mod signals;
mod standalone;
mod start;
mod timers;
mod updates;
mod versioning;
mod workflow_task;

pub use activities::{HeartbeatReply, activity_type, normalize_activity};
pub use activity_ops::{
    ActivityMatch, ActivityOptionsUpdate, activity_not_found, activity_options, closed_error,
    is_updatable_path,
};
pub use rearm::wake_at;
#[cfg(debug_assertions)]
pub(crate) use rearm::wake_by_rearming;
pub use reset::{
    RESET_TASK_IDENTITY, RESET_TERMINATE_IDENTITY, ResetParams, ResetPoint, reset_point, reset_run,
};
pub use signals::SignalParams;
pub use standalone::{StandaloneStart, activity_status, start_standalone};
pub use start::{StartParams, start_run};
pub use versioning::{
    completion_version, normalize_override, parse_version_string, pinned_version, version_string,
    versioning_info,
};

use crate::limits::Limits;
use std::time::{Duration, SystemTime};

use perdure_proto::api::common::v1::Payloads;
use perdure_proto::api::enums::v1::{
    TaskQueueKind, TimeoutType, WorkflowExecutionStatus as Status, WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{Failure, TimeoutFailureInfo};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::protocol::v1::Message;
use perdure_proto::api::sdk::v1::UserMetadata;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use prost::Message as _;

use crate::clock::convert::ts;
use crate::events::event_type;
use crate::state::*;

/// Default workflow task start-to-close timeout.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest workflow task timeout accepted.
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(120);

/// Durable timers the shell must arm. Each firing is re-validated against the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// A user timer, by TimerStarted id.
    User(i64),
    /// An activity timeout for one attempt.
    Activity {
        scheduled_event_id: i64,
        attempt: i32,
        timeout: i32,
    },
    /// An activity retry becoming dispatchable.
    ActivityRetry {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// Workflow task start-to-close or sticky schedule-to-start.
    WorkflowTask { dispatch_seq: i64, timeout: i32 },
    /// Run or execution timeout.
    Workflow,
    /// The end of `first_workflow_task_backoff`.
    StartBackoff,
}

/// What the shell does after the transition commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The run's workflow task (as in `state.wft`) must be put on its task queue.
    DispatchWorkflowTask,
    /// The activity's current attempt must be put on its task queue (now, or at its retry time).
    DispatchActivity {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// Arm a timer.
    Timer { at: SystemTime, kind: TimerKind },
    /// Start the child workflow recorded under this initiated event.
    StartChild { initiated_event_id: i64 },
    /// Deliver the signal or cancel request recorded under this initiated event.
    External { initiated_event_id: i64 },
    /// Report this closed run to its parent.
    NotifyParent,
    /// Apply parent close policies to these children.
    ParentClosePolicy(Vec<ChildState>),
    /// Update waiters must re-read the update states.
    UpdatesChanged,
    /// The run closed.
    Closed,
}

/// A run created by this transition (continue-as-new, retry, cron), committed in the same batch.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub state: ExecutionState,
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
}

/// A workflow task handed to a poller.
#[derive(Debug, Clone)]
pub struct StartedTask {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub attempt: i32,
    /// Scheduled+Started events of a transient task, to append to the poll response.
    pub transient_events: Vec<HistoryEvent>,
    /// Update requests delivered with this task.
    pub messages: Vec<Message>,
}

/// Why a workflow task completion was refused (the WFT was failed; the state must still be
/// committed, then this error returned to the worker as INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected(pub String);

/// One transition of one run.
pub struct Tx<'a> {
    pub state: &'a mut ExecutionState,
    pub now: SystemTime,
    /// Newly persisted events, with ids.
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
    pub new_run: Option<NewRun>,
    /// The state changed and must be committed.
    pub changed: bool,
    /// Size and count limits the transition enforces.
    pub limits: &'a Limits,
}

/// The limits used by [`Tx::new`]: Temporal's defaults.
static DEFAULT_LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);

pub(crate) fn normal_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_string(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}

/// The failure the server writes for a timeout.
pub fn timeout_failure(
    what: &str,
    tt: TimeoutType,
    details: Option<Payloads>,
    cause: Option<Failure>,
) -> Failure {
    let name = match tt {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    };
    Failure {
        message: format!("{what} {name} timeout"),
        source: "Server".into(),
        cause: cause.map(Box::new),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: tt as i32,
            last_heartbeat_details: details,
        })),
        ..Default::default()
    }
}

/// Short camel-case cause name used in error messages (`BadSearchAttributes`).
pub fn cause_name(c: Cause) -> String {
    let s = c
        .as_str_name()
        .trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_");
    s.split('_')
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_string() + &cs.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

impl<'a> Tx<'a> {
    pub fn new(state: &'a mut ExecutionState, now: SystemTime) -> Self {
        Self::with_limits(state, now, &DEFAULT_LIMITS)
    }

    pub fn with_limits(state: &'a mut ExecutionState, now: SystemTime, limits: &'a Limits) -> Self {
        Tx {
            state,
            now,
            events: Vec::new(),
            effects: Vec::new(),
            new_run: None,
            changed: false,
            limits,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state.status == Status::Running as i32
    }

    fn make(&self, a: A) -> HistoryEvent {
        HistoryEvent {
            event_id: 0,
            event_time: Some(ts(self.now)),
            event_type: event_type(&a) as i32,
            attributes: Some(a),
            ..Default::default()
        }
    }

    /// Persists an event now and returns its id.
    pub fn append(&mut self, a: A) -> i64 {
        self.append_with_metadata(None, a)
    }

    /// Persists an event carrying a client's or a command's summary and details.
    pub fn append_with_metadata(&mut self, user_metadata: Option<UserMetadata>, a: A) -> i64 {
        let mut e = self.make(a);
        e.user_metadata = user_metadata;
        e.event_id = self.state.next_event_id;
        e.task_id = e.event_id;
        self.state.next_event_id += 1;
        self.state.history_size_bytes += e.encoded_len() as i64;
        self.events.push(e);
        self.changed = true;
        self.state.next_event_id - 1
    }
}
