//! Operator actions on pending activities, as Temporal's PauseActivity, UnpauseActivity,
//! ResetActivity and UpdateActivityOptions do them: they change only the run's mutable state
//! (no history event) and re-arm what the activity needs.
//!
//! - Paused: no attempt is dispatched and none of the activity's timers fires; a running attempt
//!   goes on, is told `activity_paused` at its next heartbeat, and its retryable failure counts
//!   the attempt but schedules nothing until the unpause.
//! - Unpaused: an activity that is not running is scheduled now (plus a jitter); every timer is
//!   armed again from the state (a deadline that passed meanwhile fires at once).
//! - Reset: attempt back to 1; a running attempt is told `activity_reset` at its next
//!   heartbeat; one that is not running is scheduled now, unless it stays paused.
//! - Options: merged by update mask, normalised as a ScheduleActivityTask command is, applied; a
//!   waiting activity gets its next attempt time again under the new retry policy.

use std::time::Duration;

use perdure_proto::api::activity::v1::ActivityOptions;
use perdure_proto::api::command::v1::ScheduleActivityTaskCommandAttributes;
use perdure_proto::api::common::v1::{Priority, RetryPolicy};
use perdure_proto::api::enums::v1::{TaskQueueKind, TimeoutType};
use perdure_proto::api::taskqueue::v1::TaskQueue;

use crate::clock::convert::{dur, from_ts, pdur, ts};
use crate::error::Error;
use crate::state::ActivityState;

use super::{Effect, TimerKind, Tx, normalize_activity};

/// Which pending activities an operation targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityMatch {
    /// The activity with this id.
    Id(String),
    /// Every pending activity of this type.
    Type(String),
    /// Every pending activity.
    All,
}

/// An UpdateActivityOptions request's options and mask (paths in snake or camel case).
#[derive(Debug, Clone, Default)]
pub struct ActivityOptionsUpdate {
    pub options: ActivityOptions,
    pub paths: Vec<String>,
}

/// Temporal's message for an activity id that names no pending activity.
pub fn activity_not_found() -> Error {
    Error::NotFound(
        "Can't find pending activity with such ID. Invalid activityID or activity already completed"
            .into(),
    )
}

/// Temporal's message for an operation on a run that already closed.
pub fn closed_error() -> Error {
    Error::NotFound("workflow execution already completed".into())
}

/// A mask path in the camel case Temporal compares against (`task_queue.name` →
/// `taskQueue.name`).
fn camel_path(path: &str) -> String {
    path.split('.')
        .map(|part| {
            let mut out = String::new();
            let mut upper = false;
            for c in part.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The mask paths an UpdateActivityOptions can apply (Temporal ignores others; the newer
/// UpdateActivityExecutionOptions refuses them).
pub const UPDATABLE_PATHS: &[&str] = &[
    "taskQueue.name",
    "scheduleToCloseTimeout",
    "scheduleToStartTimeout",
    "startToCloseTimeout",
    "heartbeatTimeout",
    "priority",
    "priority.priorityKey",
    "priority.fairnessKey",
    "priority.fairnessWeight",
    "retryPolicy",
    "retryPolicy.initialInterval",
    "retryPolicy.backoffCoefficient",
    "retryPolicy.maximumInterval",
    "retryPolicy.maximumAttempts",
    "startDelay",
];

/// Whether a mask path (snake or camel case) is one [`UPDATABLE_PATHS`] names.
pub fn is_updatable_path(path: &str) -> bool {
    UPDATABLE_PATHS.contains(&camel_path(path).as_str())
}

/// A pending activity's current options, as describe shows them (`activity_options`).
pub fn activity_options(a: &ActivityState) -> ActivityOptions {
    let p = a.retry_policy.clone().unwrap_or_default();
    ActivityOptions {
        task_queue: Some(TaskQueue {
            name: a.task_queue.clone(),
            kind: TaskQueueKind::Unspecified as i32,
            normal_name: a.task_queue.clone(),
        }),
        schedule_to_close_timeout: Some(a.schedule_to_close.unwrap_or_default()),
        schedule_to_start_timeout: Some(a.schedule_to_start.unwrap_or_default()),
        start_to_close_timeout: Some(a.start_to_close.unwrap_or_default()),
        heartbeat_timeout: Some(a.heartbeat_timeout.unwrap_or_default()),
        retry_policy: Some(RetryPolicy {
            initial_interval: p.initial_interval,
            backoff_coefficient: p.backoff_coefficient,
            maximum_interval: p.maximum_interval,
            maximum_attempts: p.maximum_attempts,
            non_retryable_error_types: Vec::new(),
        }),
        priority: Some(a.priority.clone().unwrap_or_default()),
        start_delay: None,
    }
}

/// Checks a retry policy as an update gives it (Temporal's `retrypolicy.Validate`: no defaults
/// are filled in).
fn validate_retry_policy(p: &RetryPolicy) -> Result<(), Error> {
    if p.maximum_attempts == 1 {
        return Ok(());
    }
    let bad = |m: &str| Err(Error::InvalidArgument(m.to_string()));
    if crate::clock::convert::is_negative(&p.initial_interval) {
        return bad("invalid InitialInterval set on retry policy: negative duration");
    }
    if p.backoff_coefficient.is_nan() || p.backoff_coefficient < 1.0 {
        return bad("BackoffCoefficient cannot be less than 1 on retry policy.");
    }
    if crate::clock::convert::is_negative(&p.maximum_interval) {
        return bad("invalid MaximumInterval set on retry policy: negative duration");
    }
    let max = dur(&p.maximum_interval);
    if !max.is_zero() && max < dur(&p.initial_interval) {
        return bad("MaximumInterval cannot be less than InitialInterval on retry policy.");
    }
    if p.maximum_attempts < 0 {
        return bad("MaximumAttempts cannot be negative on retry policy.");
    }
    Ok(())
}

/// Applies the masked fields of `from` to `into` (Temporal's `MergeActivityOptions`).
fn merge_options(
    into: &mut ActivityOptions,
    from: &ActivityOptions,
    paths: &[String],
) -> Result<(), Error> {
    let missing = |what: &str| Error::InvalidArgument(format!("{what} is not provided"));
    for path in paths.iter().map(|p| camel_path(p)) {
        match path.as_str() {
            "taskQueue.name" => {
                let q = from
                    .task_queue
                    .as_ref()
                    .ok_or_else(|| missing("TaskQueue"))?;
                into.task_queue.get_or_insert_with(Default::default).name = q.name.clone();
            }
            "scheduleToCloseTimeout" => {
                into.schedule_to_close_timeout = from.schedule_to_close_timeout
            }
            "scheduleToStartTimeout" => {
                into.schedule_to_start_timeout = from.schedule_to_start_timeout
            }
            "startToCloseTimeout" => into.start_to_close_timeout = from.start_to_close_timeout,
            "heartbeatTimeout" => into.heartbeat_timeout = from.heartbeat_timeout,
            "priority" => into.priority = from.priority.clone(),
            "priority.priorityKey" | "priority.fairnessKey" | "priority.fairnessWeight" => {
                let p = from.priority.as_ref().ok_or_else(|| missing("Priority"))?;
                let to = into.priority.get_or_insert_with(Priority::default);
                match path.as_str() {
                    "priority.priorityKey" => to.priority_key = p.priority_key,
                    "priority.fairnessKey" => to.fairness_key = p.fairness_key.clone(),
                    _ => to.fairness_weight = p.fairness_weight,
                }
            }
            "retryPolicy" => {
                into.retry_policy = Some(
                    from.retry_policy
                        .clone()
                        .ok_or_else(|| missing("RetryPolicy"))?,
                );
            }
            "retryPolicy.initialInterval"
            | "retryPolicy.backoffCoefficient"
            | "retryPolicy.maximumInterval"
            | "retryPolicy.maximumAttempts" => {
                let p = from
                    .retry_policy
                    .as_ref()
                    .ok_or_else(|| missing("RetryPolicy"))?;
                let to = into.retry_policy.get_or_insert_with(RetryPolicy::default);
                match path.as_str() {
                    "retryPolicy.initialInterval" => to.initial_interval = p.initial_interval,
                    "retryPolicy.backoffCoefficient" => {
                        to.backoff_coefficient = p.backoff_coefficient
                    }
                    "retryPolicy.maximumInterval" => to.maximum_interval = p.maximum_interval,
                    _ => to.maximum_attempts = p.maximum_attempts,
                }
            }
            "startDelay" => into.start_delay = from.start_delay,
            _ => {}
        }
    }
    Ok(())
}

impl Tx<'_> {
    /// The scheduled event ids of the pending activities `m` names (an id that matches nothing
    /// gives none).
    pub fn activity_matches(&self, m: &ActivityMatch) -> Vec<i64> {
        self.state
            .activities
            .iter()
            .filter(|a| match m {
                ActivityMatch::Id(id) => a.activity_id == *id,
                ActivityMatch::Type(t) => a.activity_type == *t,
                ActivityMatch::All => true,
            })
            .map(|a| a.scheduled_event_id)
            .collect()
    }

    fn activity_op_index(&self, sched: i64) -> Result<usize, Error> {
        self.activity_index(sched).ok_or_else(activity_not_found)
    }

    /// Every timer the activity needs in its current state: schedule-to-close; for a running
    /// attempt its start-to-close and heartbeat timeouts; for a waiting one (not paused) its
    /// dispatch and schedule-to-start timeout. Older timers are re-validated when they fire.
    fn arm_activity_timers(&mut self, i: usize) {
        let a = self.state.activities[i].clone();
        if a.paused {
            return;
        }
        let timer = |at, attempt, tt: TimeoutType| Effect::Timer {
            at,
            kind: TimerKind::Activity {
                scheduled_event_id: a.scheduled_event_id,
                attempt,
                timeout: tt as i32,
            },
        };
        let s2c = dur(&a.schedule_to_close);
        if !s2c.is_zero() {
            let first = a.scheduled_time.as_ref().map(from_ts).unwrap_or(self.now);
            self.effects
                .push(timer(first + s2c, 0, TimeoutType::ScheduleToClose));
        }
        match a.started_time.as_ref().map(from_ts) {
            None => self.arm_activity_dispatch(&a),
            Some(started) => {
                let st2c = dur(&a.start_to_close);
                if !st2c.is_zero() {
                    self.effects
                        .push(timer(started + st2c, a.attempt, TimeoutType::StartToClose));
                }
                let hb = dur(&a.heartbeat_timeout);
                if !hb.is_zero() {
                    let last = a
                        .last_heartbeat_time
                        .as_ref()
                        .map(from_ts)
                        .unwrap_or(started);
                    self.effects
                        .push(timer(last + hb, a.attempt, TimeoutType::Heartbeat));
                }
            }
        }
    }

    /// A waiting activity's next attempt becomes due at `at` (Temporal's "regenerate the retry
    /// task"): the last failure is dropped, a pending heartbeat reset is applied.
    fn reschedule_activity(&mut self, i: usize, at: std::time::SystemTime) {
        let a = &mut self.state.activities[i];
        a.current_attempt_scheduled_time = Some(ts(at));
        a.last_failure = None;
        a.reset_requested = false;
        if std::mem::take(&mut a.reset_heartbeats) {
            a.heartbeat_details = None;
            a.last_heartbeat_time = None;
        }
    }

    fn clear_pause(a: &mut ActivityState) {
        a.paused = false;
        a.pause_time = None;
        a.pause_identity.clear();
        a.pause_reason.clear();
        a.pause_request_id.clear();
    }

    /// PauseActivity for one activity. Pausing a paused activity again is a no-op with the same
    /// request id and FAILED_PRECONDITION otherwise, as in Temporal.
    pub fn pause_activity(
        &mut self,
        sched: i64,
        identity: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        if !self.is_running() {
            return Err(closed_error());
        }
        let i = self.activity_op_index(sched)?;
        let now = self.now;
        let a = &mut self.state.activities[i];
        if a.paused {
            if a.pause_request_id == request_id {
                return Ok(());
            }
            return Err(Error::FailedPrecondition(
                "activity is already paused".into(),
            ));
        }
        a.paused = true;
        a.pause_time = Some(ts(now));
        a.pause_identity = identity.to_string();
        a.pause_reason = reason.to_string();
        a.pause_request_id = request_id.to_string();
        self.changed = true;
        Ok(())
    }

    /// UnpauseActivity for one activity (a no-op unless paused): one that is not running is
    /// scheduled at `now + delay` (the caller's jitter), optionally from attempt 1 and without
    /// its heartbeat details; its timers are armed again.
    pub fn unpause_activity(
        &mut self,
        sched: i64,
        reset_attempts: bool,
        reset_heartbeat: bool,
        delay: Duration,
    ) -> Result<(), Error> {
        let i = self.activity_op_index(sched)?;
        let now = self.now;
        let a = &mut self.state.activities[i];
        if !a.paused {
            return Ok(());
        }
        Self::clear_pause(a);
        if reset_attempts {
            a.attempt = 1;
        }
        if reset_heartbeat {
            a.heartbeat_details = None;
            a.last_heartbeat_time = None;
        }
        let waiting = a.started_time.is_none();
        self.changed = true;
        if waiting {
            self.reschedule_activity(i, now + delay);
        }
        self.arm_activity_timers(i);
        Ok(())
    }

    /// ResetActivity for one activity: attempt 1; a running attempt is told at its next
    /// heartbeat; a paused activity is unpaused unless `keep_paused`; one that neither runs nor
    /// stays paused is scheduled at `now + delay`. `original` (restore_original_options) puts
    /// back the options of its ActivityTaskScheduled event.
    pub fn reset_activity(
        &mut self,
        sched: i64,
        reset_heartbeat: bool,
        keep_paused: bool,
        delay: Duration,
        original: Option<ActivityOptions>,
    ) -> Result<(), Error> {
        if !self.is_running() {
            return Err(closed_error());
        }
        let i = self.activity_op_index(sched)?;
        let now = self.now;
        if let Some(o) = original {
            self.set_activity_options(i, &o);
        }
        let a = &mut self.state.activities[i];
        a.attempt = 1;
        a.reset_requested = true;
        if reset_heartbeat {
            a.reset_heartbeats = true;
        }
        if a.paused && !keep_paused {
            Self::clear_pause(a);
        }
        let waiting = a.started_time.is_none() && !a.paused;
        self.changed = true;
        if waiting {
            self.reschedule_activity(i, now + delay);
        }
        self.arm_activity_timers(i);
        Ok(())
    }

    /// Stores options (already merged and normalised) on the activity. The retry policy's
    /// non-retryable error types stay as they were (Temporal keeps them apart).
    fn set_activity_options(&mut self, i: usize, o: &ActivityOptions) {
        let a = &mut self.state.activities[i];
        if let Some(q) = o.task_queue.as_ref().filter(|q| !q.name.is_empty()) {
            a.task_queue = q.name.clone();
        }
        a.schedule_to_close = o.schedule_to_close_timeout;
        a.schedule_to_start = o.schedule_to_start_timeout;
        a.start_to_close = o.start_to_close_timeout;
        a.heartbeat_timeout = o.heartbeat_timeout;
        a.priority = o.priority.clone();
        let p = o.retry_policy.clone().unwrap_or_default();
        let kept = a
            .retry_policy
            .as_ref()
            .map(|p| p.non_retryable_error_types.clone())
            .unwrap_or_default();
        a.retry_policy = Some(RetryPolicy {
            non_retryable_error_types: kept,
            ..p
        });
        self.changed = true;
    }

    /// Applies options to one activity and re-arms it: a waiting activity's next attempt is
    /// due again under the new retry policy (from the end of its last attempt), a running
    /// attempt's timeouts count from its start with the new values.
    fn apply_activity_options(&mut self, i: usize, o: &ActivityOptions) {
        self.set_activity_options(i, o);
        let a = &self.state.activities[i];
        if a.started_time.is_none() {
            let at = self.next_attempt_time(a);
            self.reschedule_activity(i, at);
        }
        self.arm_activity_timers(i);
    }

    /// When a waiting activity's current attempt is due (Temporal's `GetNextScheduledTime`):
    /// the first attempt keeps its time; a retry comes the policy's interval for that attempt
    /// after the last attempt ended.
    fn next_attempt_time(&self, a: &ActivityState) -> std::time::SystemTime {
        let current = a
            .current_attempt_scheduled_time
            .as_ref()
            .map(from_ts)
            .unwrap_or(self.now);
        if a.attempt <= 1 {
            return current;
        }
        let p = crate::retry::with_defaults(a.retry_policy.clone());
        let initial = dur(&p.initial_interval).as_secs_f64();
        let raw = initial
            * p.backoff_coefficient
                .max(1.0)
                .powi((a.attempt - 1).min(1000));
        let max = dur(&p.maximum_interval).as_secs_f64();
        let secs = if max > 0.0 && (raw.is_nan() || raw > max) {
            max
        } else {
            raw
        };
        let interval = Duration::from_secs_f64(
            secs.clamp(0.0, crate::clock::convert::MAX_DURATION.as_secs_f64()),
        );
        match a.last_attempt_complete_time.as_ref().map(from_ts) {
            Some(end) if !interval.is_zero() => end.checked_add(interval).unwrap_or(current),
            _ => current,
        }
    }

    /// UpdateActivityOptions for one activity: merges the masked fields into its options,
    /// checks and normalises them as a ScheduleActivityTask command's, applies them and
    /// returns the result.
    pub fn update_activity_options(
        &mut self,
        sched: i64,
        update: &ActivityOptionsUpdate,
    ) -> Result<ActivityOptions, Error> {
        let i = self.activity_op_index(sched)?;
        let a = &self.state.activities[i];
        let mut o = activity_options(a);
        if let Some(q) = o.task_queue.as_mut() {
            q.normal_name.clear();
        }
        merge_options(&mut o, &update.options, &update.paths)?;
        let camel: Vec<String> = update.paths.iter().map(|p| camel_path(p)).collect();
        if camel.iter().any(|p| p.starts_with("retryPolicy.")) {
            validate_retry_policy(o.retry_policy.as_ref().unwrap_or(&RetryPolicy::default()))?;
        }
        let o = self.normalize_options(a, o)?;
        self.apply_activity_options(i, &o);
        Ok(o)
    }

    /// UpdateActivityOptions with restore_original: the options of the activity's
    /// ActivityTaskScheduled event, as they were.
    pub fn restore_activity_options(
        &mut self,
        sched: i64,
        original: ActivityOptions,
    ) -> Result<ActivityOptions, Error> {
        let i = self.activity_op_index(sched)?;
        self.apply_activity_options(i, &original);
        Ok(original)
    }

    /// Temporal's checks of an activity's timeouts (those of a ScheduleActivityTask command):
    /// one of start-to-close and schedule-to-close is needed; the others default to and are
    /// capped by schedule-to-close and the run timeout; an empty task queue is the workflow's.
    fn normalize_options(
        &self,
        a: &ActivityState,
        mut o: ActivityOptions,
    ) -> Result<ActivityOptions, Error> {
        if dur(&o.schedule_to_close_timeout).is_zero() && dur(&o.start_to_close_timeout).is_zero() {
            return Err(Error::InvalidArgument(format!(
                "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId={} ActivityType={}",
                a.activity_id, a.activity_type
            )));
        }
        let mut cmd = ScheduleActivityTaskCommandAttributes {
            activity_id: a.activity_id.clone(),
            activity_type: Some(super::activity_type(a)),
            schedule_to_close_timeout: o.schedule_to_close_timeout,
            schedule_to_start_timeout: o.schedule_to_start_timeout,
            start_to_close_timeout: o.start_to_close_timeout,
            heartbeat_timeout: o.heartbeat_timeout,
            ..Default::default()
        };
        normalize_activity(&mut cmd, dur(&self.state.run_timeout))
            .map_err(Error::InvalidArgument)?;
        let queue = o
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.state.task_queue.clone());
        o.task_queue = Some(TaskQueue {
            name: queue,
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        });
        o.schedule_to_close_timeout = cmd.schedule_to_close_timeout;
        o.schedule_to_start_timeout = cmd.schedule_to_start_timeout;
        o.start_to_close_timeout = cmd.start_to_close_timeout;
        o.heartbeat_timeout = cmd.heartbeat_timeout.or(Some(pdur(Duration::ZERO)));
        o.priority = Some(o.priority.unwrap_or_default());
        Ok(o)
    }
}
