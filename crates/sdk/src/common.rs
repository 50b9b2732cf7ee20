//! What the client and workflow code share: the retry policy and the conversions of durations and
//! task queue names to their wire forms.

use std::time::Duration;

use temporalio_protos::temporal::api::common::v1::RetryPolicy as ProtoRetryPolicy;
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

/// A retry policy for workflows (and activities).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry (server default 1 s).
    pub initial_interval: Option<Duration>,
    /// Growth of the wait per attempt (server default 2.0).
    pub backoff_coefficient: f64,
    /// Cap on the wait (server default 100 × the initial interval).
    pub maximum_interval: Option<Duration>,
    /// Attempts in all, 0 for unlimited.
    pub maximum_attempts: i32,
    /// Application failure types that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: None,
            backoff_coefficient: 0.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The wire form.
    pub fn to_proto(&self) -> ProtoRetryPolicy {
        ProtoRetryPolicy {
            initial_interval: self.initial_interval.map(proto_duration),
            backoff_coefficient: self.backoff_coefficient,
            maximum_interval: self.maximum_interval.map(proto_duration),
            maximum_attempts: self.maximum_attempts,
            non_retryable_error_types: self.non_retryable_error_types.clone(),
        }
    }
}

/// A duration in its wire form.
pub(crate) fn proto_duration(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A normal (not sticky) task queue called `name`.
pub(crate) fn normal_task_queue(name: String) -> TaskQueue {
    TaskQueue {
        name,
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}
