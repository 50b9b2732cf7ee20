//! What a workflow knows about itself ([`WorkflowInfo`]) and the options of what it starts:
//! [`ActivityOptions`] (with [`ActivityCancellation`]) and [`ChildOptions`].

use std::time::Duration;

use crate::common::RetryPolicy;

/// Facts about the running workflow.
#[derive(Debug, Clone, Default)]
pub struct WorkflowInfo {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub attempt: i32,
    /// The run that started the chain (seeds randomness).
    pub first_execution_run_id: String,
    /// The run this one continued, if any.
    pub continued_run_id: String,
    /// Cron schedule, if any.
    pub cron_schedule: String,
}

/// Options of an activity call.
#[derive(Debug, Clone, Default)]
pub struct ActivityOptions {
    /// Limit on one attempt (this or `schedule_to_close_timeout` is required).
    pub start_to_close_timeout: Option<Duration>,
    /// Limit on all attempts together.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Limit on waiting in the queue.
    pub schedule_to_start_timeout: Option<Duration>,
    /// The activity must heartbeat at least this often.
    pub heartbeat_timeout: Option<Duration>,
    /// Retries (server default: unlimited, 1 s doubling up to 100 s).
    pub retry_policy: Option<RetryPolicy>,
    /// Another task queue (default: the workflow's).
    pub task_queue: Option<String>,
    /// How cancelling waits (default: resolve at once, `TryCancel`).
    pub cancellation: ActivityCancellation,
}

/// What cancelling an activity waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActivityCancellation {
    /// Resolve as cancelled at once; the server cancels the activity in the background.
    #[default]
    TryCancel,
    /// Wait until the activity acknowledges the cancellation (or completes).
    WaitCancellationCompleted,
}

impl ActivityOptions {
    /// Options with a start-to-close timeout.
    pub fn start_to_close(d: Duration) -> Self {
        ActivityOptions {
            start_to_close_timeout: Some(d),
            ..Default::default()
        }
    }

    /// Sets the retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry_policy = Some(p);
        self
    }

    /// Sets the heartbeat timeout.
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }
}

/// Options of a child workflow.
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    /// Its workflow id (default: `<parent id>-child-<n>`).
    pub workflow_id: Option<String>,
    /// Its task queue (default: the parent's).
    pub task_queue: Option<String>,
    pub execution_timeout: Option<Duration>,
    pub run_timeout: Option<Duration>,
    pub retry_policy: Option<RetryPolicy>,
    /// What happens to it when the parent closes (default: terminate).
    pub parent_close_policy: Option<temporalio_protos::temporal::api::enums::v1::ParentClosePolicy>,
}
