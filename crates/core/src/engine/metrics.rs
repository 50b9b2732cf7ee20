//! The engine's metrics, recorded through the `metrics` facade (a no-op until a process installs
//! a recorder; `perdure-server`'s `metrics` module does, and its doc lists every name, type and
//! label). Engine files call these helpers in one line each; names follow Temporal's server where
//! it has a counterpart (`numshards_gauge`, `task_schedule_to_start_latency`,
//! `approximate_backlog_count`).

use ::metrics::{Gauge, counter, gauge, histogram};
use perdure_proto::api::workflowservice::v1::{
    PollActivityTaskQueueResponse, PollWorkflowTaskQueueResponse,
};
use perdure_proto::prost_types::Timestamp;

use crate::clock::convert::ts_nanos;
use crate::matching::QueueKind;
use crate::store::StoreError;

/// Gauge: shards this process owns (Temporal's history hosts report `numshards_gauge`).
pub(crate) const OWNED_SHARDS: &str = "numshards_gauge";
/// Gauge: the cluster's shard count, as this process's engine runs with it.
pub(crate) const CLUSTER_SHARDS: &str = "perdure_cluster_shards";
/// Gauge: 1 while this process's engine leads the cluster (runs schedules, batch jobs, worker
/// deployments and namespace changes), else 0.
pub(crate) const CLUSTER_LEADER: &str = "perdure_cluster_leader";
/// Counter: batches the store refused because this process no longer owns their shard.
pub(crate) const SHARD_OWNERSHIP_LOST: &str = "perdure_shard_ownership_lost_total";
/// Histogram (seconds): from a task's scheduling to its start by a poller.
pub(crate) const SCHEDULE_TO_START: &str = "task_schedule_to_start_latency";
/// Gauge: tasks queued in memory waiting for a poller.
pub(crate) const BACKLOG: &str = "approximate_backlog_count";
/// Gauge: long polls waiting on a queue for a task.
pub(crate) const WAITING_POLLERS: &str = "perdure_task_queue_waiting_pollers";

/// Gauge: workflow runs held in memory (the run cache).
pub(crate) const CACHED_RUNS: &str = "perdure_run_cache_runs";
/// Counter: idle runs evicted from the run cache because it was full.
pub(crate) const CACHE_EVICTIONS: &str = "perdure_run_cache_evictions_total";
/// Counter: tasks dropped from memory because the queued-task limit was reached (queued again
/// from the store once the backlog drains).
pub(crate) const TASKS_SPILLED: &str = "perdure_tasks_spilled_total";

/// Counts a task the matching dropped at its queued-task limit.
pub(crate) fn task_spilled() {
    counter!(TASKS_SPILLED).increment(1);
}

/// Records the run cache's size after a change, and the idle runs it just evicted.
pub(crate) fn record_run_cache(len: usize, evicted: usize) {
    gauge!(CACHED_RUNS).set(len as f64);
    if evicted > 0 {
        counter!(CACHE_EVICTIONS).increment(evicted as u64);
    }
}

/// Sets the number of shards this process owns.
pub(crate) fn record_owned_shards(n: usize, of: i32, leader: bool) {
    gauge!(OWNED_SHARDS).set(n as f64);
    gauge!(CLUSTER_SHARDS).set(of as f64);
    gauge!(CLUSTER_LEADER).set(if leader { 1.0 } else { 0.0 });
}

/// Counts a commit the store refused for lost shard ownership (other errors are not counted
/// here); for `Result::inspect_err` on a store commit.
pub(crate) fn commit_refused(e: &StoreError) {
    if matches!(e, StoreError::ShardOwnershipLost { .. }) {
        counter!(SHARD_OWNERSHIP_LOST).increment(1);
    }
}

/// `started - scheduled` in seconds (never negative), when both are set.
fn seconds_between(scheduled: Option<&Timestamp>, started: Option<&Timestamp>) -> Option<f64> {
    let nanos = ts_nanos(started?).saturating_sub(ts_nanos(scheduled?));
    Some(nanos.max(0) as f64 / 1e9)
}

/// Records the schedule-to-start latency of a workflow task handed to a poller (query tasks,
/// which are not scheduled in the run, are skipped) and returns the response unchanged. The
/// queue label is the run's normal queue, also for a task taken from a sticky queue.
pub(crate) fn workflow_task_started(
    namespace: &str,
    resp: PollWorkflowTaskQueueResponse,
) -> PollWorkflowTaskQueueResponse {
    if resp.query.is_none()
        && let Some(s) = seconds_between(resp.scheduled_time.as_ref(), resp.started_time.as_ref())
    {
        let queue = resp
            .workflow_execution_task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        histogram!(SCHEDULE_TO_START, "namespace" => namespace.to_string(),
            "taskqueue" => queue, "task_type" => "Workflow")
        .record(s);
    }
    resp
}

/// Records the schedule-to-start latency of an activity attempt handed to a poller (from the
/// attempt's own scheduled time, as Temporal does) and returns the response unchanged.
pub(crate) fn activity_task_started(
    namespace: &str,
    queue: &str,
    resp: PollActivityTaskQueueResponse,
) -> PollActivityTaskQueueResponse {
    let scheduled = resp
        .current_attempt_scheduled_time
        .as_ref()
        .or(resp.scheduled_time.as_ref());
    if let Some(s) = seconds_between(scheduled, resp.started_time.as_ref()) {
        histogram!(SCHEDULE_TO_START, "namespace" => namespace.to_string(),
            "taskqueue" => queue.to_string(), "task_type" => "Activity")
        .record(s);
    }
    resp
}

/// The backlog and waiting-poller gauges of one in-memory queue, registered once per queue so
/// an update is two atomic stores.
pub(crate) struct QueueGauges {
    backlog: Gauge,
    pollers: Gauge,
}

impl QueueGauges {
    pub(crate) fn new(namespace_id: &str, queue: &str, kind: QueueKind) -> QueueGauges {
        let task_type = match kind {
            QueueKind::Workflow => "Workflow",
            QueueKind::Activity => "Activity",
        };
        let labels = [
            ("namespace_id", namespace_id.to_string()),
            ("taskqueue", queue.to_string()),
            ("task_type", task_type.to_string()),
        ];
        QueueGauges {
            backlog: gauge!(BACKLOG, &labels),
            pollers: gauge!(WAITING_POLLERS, &labels),
        }
    }

    pub(crate) fn set(&self, backlog: usize, pollers: usize) {
        self.backlog.set(backlog as f64);
        self.pollers.set(pollers as f64);
    }
}
