//! Activities: the commands that schedule and cancel them, dispatch, start, heartbeats,
//! completion, failure with retries, cancellation and timeouts.

use std::time::Duration;

use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, Payloads};
use perdure_proto::api::enums::v1::{RetryState, TimeoutType};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{Failure, ServerFailureInfo};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;

use crate::clock::convert::{dur, from_ts, pdur, ts};
use crate::retry;
use crate::state::*;

use super::{Effect, TimerKind, Tx, normal_queue, timeout_failure};

/// Validates an activity command and normalises its timeouts in place, as Temporal does:
/// schedule-to-start and start-to-close default to schedule-to-close and may not exceed it;
/// without schedule-to-close, it and schedule-to-start default to the run timeout; a run timeout
/// caps all three; the heartbeat timeout may not exceed start-to-close; the retry policy gets
/// its defaults and must be valid.
pub fn normalize_activity(
    a: &mut ScheduleActivityTaskCommandAttributes,
    run_timeout: Duration,
) -> Result<(), String> {
    if a.activity_id.is_empty() {
        return Err("ActivityId is not set on command.".into());
    }
    if a.activity_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return Err("ActivityType is not set on command.".into());
    }
    let mut s2c = dur(&a.schedule_to_close_timeout);
    let mut s2s = dur(&a.schedule_to_start_timeout);
    let mut st2c = dur(&a.start_to_close_timeout);
    let mut hb = dur(&a.heartbeat_timeout);
    if !s2c.is_zero() {
        s2s = if s2s.is_zero() { s2c } else { s2s.min(s2c) };
        st2c = if st2c.is_zero() { s2c } else { st2c.min(s2c) };
    } else if !st2c.is_zero() {
        s2c = run_timeout;
        if s2s.is_zero() {
            s2s = run_timeout;
        }
    } else {
        return Err(
            "A valid StartToCloseTimeout or ScheduleToCloseTimeout is not set on command.".into(),
        );
    }
    if !run_timeout.is_zero() {
        let cap = |d: Duration| {
            if d.is_zero() {
                run_timeout
            } else {
                d.min(run_timeout)
            }
        };
        s2c = cap(s2c);
        s2s = cap(s2s);
        st2c = cap(st2c);
    }
    hb = hb.min(st2c);
    a.retry_policy = Some(retry::normalize(a.retry_policy.take())?);
    a.schedule_to_close_timeout = Some(pdur(s2c));
    a.schedule_to_start_timeout = Some(pdur(s2s));
    a.start_to_close_timeout = Some(pdur(st2c));
    a.heartbeat_timeout = Some(pdur(hb));
    Ok(())
}

impl Tx<'_> {
    /// Applies a ScheduleActivityTask command: the Scheduled event, the pending activity and its
    /// dispatch and schedule-to-close timer.
    pub(super) fn schedule_activity(&mut self, a: ScheduleActivityTaskCommandAttributes, wtc: i64) {
        let task_queue = match a.task_queue.as_ref() {
            Some(q) if !q.name.is_empty() => q.name.clone(),
            _ => self.state.task_queue.clone(),
        };
        let id = self.append(A::ActivityTaskScheduledEventAttributes(
            ActivityTaskScheduledEventAttributes {
                activity_id: a.activity_id.clone(),
                activity_type: a.activity_type.clone(),
                task_queue: Some(normal_queue(&task_queue)),
                header: a.header.clone(),
                input: a.input.clone(),
                schedule_to_close_timeout: a.schedule_to_close_timeout,
                schedule_to_start_timeout: a.schedule_to_start_timeout,
                start_to_close_timeout: a.start_to_close_timeout,
                heartbeat_timeout: a.heartbeat_timeout,
                workflow_task_completed_event_id: wtc,
                retry_policy: a.retry_policy.clone(),
                use_workflow_build_id: a.use_workflow_build_id,
                priority: a.priority.clone(),
            },
        ));
        let st = ActivityState {
            scheduled_event_id: id,
            activity_id: a.activity_id,
            activity_type: a.activity_type.map(|t| t.name).unwrap_or_default(),
            task_queue,
            input: a.input,
            header: a.header,
            schedule_to_close: a.schedule_to_close_timeout,
            schedule_to_start: a.schedule_to_start_timeout,
            start_to_close: a.start_to_close_timeout,
            heartbeat_timeout: a.heartbeat_timeout,
            retry_policy: a.retry_policy,
            attempt: 1,
            scheduled_time: Some(ts(self.now)),
            current_attempt_scheduled_time: Some(ts(self.now)),
            priority: a.priority,
            ..Default::default()
        };
        self.arm_activity_dispatch(&st);
        let s2c = dur(&st.schedule_to_close);
        if !s2c.is_zero() {
            self.effects.push(Effect::Timer {
                at: self.now + s2c,
                kind: TimerKind::Activity {
                    scheduled_event_id: id,
                    attempt: 0,
                    timeout: TimeoutType::ScheduleToClose as i32,
                },
            });
        }
        self.state.activities.push(st);
    }

    /// Applies a RequestCancelActivityTask command: an activity that has not started is canceled at
    /// once (and needs a new workflow task); a started one is told at its next heartbeat.
    pub(super) fn request_cancel_activity(
        &mut self,
        r: RequestCancelActivityTaskCommandAttributes,
        wtc: i64,
    ) -> bool {
        let requested = self.append(A::ActivityTaskCancelRequestedEventAttributes(
            ActivityTaskCancelRequestedEventAttributes {
                scheduled_event_id: r.scheduled_event_id,
                workflow_task_completed_event_id: wtc,
            },
        ));
        let Some(i) = self
            .state
            .activities
            .iter()
            .position(|a| a.scheduled_event_id == r.scheduled_event_id)
        else {
            return false;
        };
        if self.state.activities[i].started_time.is_none() {
            let a = self.state.activities.remove(i);
            self.append(A::ActivityTaskCanceledEventAttributes(
                ActivityTaskCanceledEventAttributes {
                    details: None,
                    latest_cancel_requested_event_id: requested,
                    scheduled_event_id: a.scheduled_event_id,
                    started_event_id: 0,
                    identity: String::new(),
                    ..Default::default()
                },
            ));
            true
        } else {
            self.state.activities[i].cancel_requested_event_id = requested;
            false
        }
    }

    pub(super) fn arm_activity_dispatch(&mut self, a: &ActivityState) {
        let at = a
            .current_attempt_scheduled_time
            .as_ref()
            .map(from_ts)
            .unwrap_or(self.now);
        if at > self.now {
            self.effects.push(Effect::Timer {
                at,
                kind: TimerKind::ActivityRetry {
                    scheduled_event_id: a.scheduled_event_id,
                    attempt: a.attempt,
                },
            });
        } else {
            self.effects.push(Effect::DispatchActivity {
                scheduled_event_id: a.scheduled_event_id,
                attempt: a.attempt,
            });
        }
        let s2s = dur(&a.schedule_to_start);
        if !s2s.is_zero() {
            self.effects.push(Effect::Timer {
                at: at.max(self.now) + s2s,
                kind: TimerKind::Activity {
                    scheduled_event_id: a.scheduled_event_id,
                    attempt: a.attempt,
                    timeout: TimeoutType::ScheduleToStart as i32,
                },
            });
        }
    }

    pub fn activity_index(&self, scheduled_event_id: i64) -> Option<usize> {
        self.state
            .activities
            .iter()
            .position(|a| a.scheduled_event_id == scheduled_event_id)
    }

    /// Whether a queued task or retry timer for `attempt` may start now: the activity's current
    /// attempt, not running, not paused, and due (a task queued before a reset or an options
    /// update can be older than the attempt's backoff).
    pub fn activity_dispatchable(&self, i: usize, attempt: i32) -> bool {
        let a = &self.state.activities[i];
        a.attempt == attempt
            && a.started_time.is_none()
            && !a.paused
            && a.current_attempt_scheduled_time
                .as_ref()
                .is_none_or(|t| from_ts(t) <= self.now)
    }

    /// A poller took the activity's current attempt.
    pub fn start_activity(&mut self, i: usize, request_id: &str, identity: &str) {
        let now = self.now;
        self.changed = true;
        let a = &mut self.state.activities[i];
        // A reset asked of an earlier attempt is done with; its heartbeat details too if asked.
        a.reset_requested = false;
        if std::mem::take(&mut a.reset_heartbeats) {
            a.heartbeat_details = None;
            a.last_heartbeat_time = None;
        }
        a.started_time = Some(ts(now));
        a.request_id = request_id.to_string();
        a.started_identity = identity.to_string();
        a.last_worker_identity = identity.to_string();
        a.last_heartbeat_time = None;
        let (sched, attempt) = (a.scheduled_event_id, a.attempt);
        let st2c = dur(&a.start_to_close);
        let hb = dur(&a.heartbeat_timeout);
        if !st2c.is_zero() {
            self.effects.push(Effect::Timer {
                at: now + st2c,
                kind: TimerKind::Activity {
                    scheduled_event_id: sched,
                    attempt,
                    timeout: TimeoutType::StartToClose as i32,
                },
            });
        }
        if !hb.is_zero() {
            self.effects.push(Effect::Timer {
                at: now + hb,
                kind: TimerKind::Activity {
                    scheduled_event_id: sched,
                    attempt,
                    timeout: TimeoutType::Heartbeat as i32,
                },
            });
        }
    }

    /// Writes ActivityTaskStarted (if an attempt ever started) plus the final outcome event
    /// built by `outcome(started_event_id)`, then schedules a workflow task.
    fn activity_final(&mut self, i: usize, outcome: impl FnOnce(i64) -> A, prev_failure: bool) {
        let a = self.state.activities.remove(i);
        let ever_started = a.started_time.is_some() || a.attempt > 1;
        if ever_started {
            let started =
                A::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
                    scheduled_event_id: a.scheduled_event_id,
                    identity: a.started_identity.clone(),
                    request_id: a.request_id.clone(),
                    attempt: a.attempt,
                    last_failure: if prev_failure {
                        a.last_failure.clone()
                    } else {
                        None
                    },
                    ..Default::default()
                });
            let sid = self.add(started);
            let attrs = outcome(sid);
            self.add(attrs.clone());
            self.after_activity_final(a, attrs);
        } else {
            let attrs = outcome(0);
            self.add(attrs.clone());
            self.after_activity_final(a, attrs);
        }
    }

    /// A workflow activity's outcome needs a workflow task; a standalone activity's closes it.
    fn after_activity_final(&mut self, a: ActivityState, outcome: A) {
        if self.state.standalone.is_some() {
            self.close_standalone(a, &outcome);
        } else {
            self.schedule_wft();
        }
    }

    pub fn activity_completed(&mut self, i: usize, result: Option<Payloads>, identity: &str) {
        let sched = self.state.activities[i].scheduled_event_id;
        let identity = identity.to_string();
        self.activity_final(
            i,
            |sid| {
                A::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
                    result,
                    scheduled_event_id: sched,
                    started_event_id: sid,
                    identity,
                    ..Default::default()
                })
            },
            true,
        );
    }

    /// A completion whose result is over the blob limit fails the activity for good with
    /// `Complete result exceeds size limit.`, as Temporal does (a retry could only do the same).
    pub fn activity_completed_or_too_big(
        &mut self,
        i: usize,
        result: Option<Payloads>,
        identity: &str,
    ) {
        if self.limits.blob_fits(result.as_ref()) {
            return self.activity_completed(i, result, identity);
        }
        let failure = Failure {
            message: crate::limits::COMPLETE_RESULT_EXCEEDS_LIMIT.into(),
            failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
                non_retryable: true,
            })),
            ..Default::default()
        };
        self.activity_failed(i, Some(failure), None, identity);
    }

    /// A heartbeat whose details are over the blob limit fails the activity for good with
    /// `Heartbeat details exceed size limit.`, as Temporal does, and tells the worker to stop
    /// (cancel requested); otherwise an ordinary heartbeat.
    pub fn activity_heartbeat_or_too_big(
        &mut self,
        i: usize,
        details: Option<Payloads>,
    ) -> HeartbeatReply {
        if self.limits.blob_fits(details.as_ref()) {
            return self.activity_heartbeat(i, details);
        }
        let failure = Failure {
            message: crate::limits::HEARTBEAT_DETAILS_EXCEED_LIMIT.into(),
            failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
                non_retryable: true,
            })),
            ..Default::default()
        };
        self.activity_failed(i, Some(failure), None, "history-service");
        HeartbeatReply {
            cancel_requested: true,
            ..Default::default()
        }
    }

    /// A failed attempt: retried (no event) or final. Returns true when retried. A failure over
    /// the size limit is cut down first. A paused activity whose failure could be retried waits,
    /// attempt counted, for its unpause (even past its maximum attempts, as in Temporal).
    pub fn activity_failed(
        &mut self,
        i: usize,
        failure: Option<Failure>,
        details: Option<Payloads>,
        identity: &str,
    ) -> bool {
        let failure = failure.map(|f| self.limits.fit_failure(f));
        let details = details.filter(|d| self.limits.blob_fits(Some(d)));
        if details.is_some() {
            self.state.activities[i].heartbeat_details = details;
        }
        let decision = self.activity_retry_decision(i, failure.as_ref());
        match decision {
            Ok(delay) => {
                self.retry_activity(i, delay, failure);
                true
            }
            Err(state) => {
                let sched = self.state.activities[i].scheduled_event_id;
                let identity = identity.to_string();
                self.activity_final(
                    i,
                    |sid| {
                        A::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                            failure,
                            scheduled_event_id: sched,
                            started_event_id: sid,
                            identity,
                            retry_state: state as i32,
                            ..Default::default()
                        })
                    },
                    true,
                );
                false
            }
        }
    }

    fn activity_retry_decision(
        &self,
        i: usize,
        failure: Option<&Failure>,
    ) -> Result<Duration, RetryState> {
        let a = &self.state.activities[i];
        let p = retry::with_defaults(a.retry_policy.clone());
        if self.state.standalone.is_some() && a.cancel_requested_event_id != 0 {
            // A standalone activity asked to cancel is not retried (Temporal's rule).
            return Err(RetryState::CancelRequested);
        }
        if a.paused && retry::is_retryable(&p, failure) {
            return Ok(Duration::ZERO);
        }
        let s2c = dur(&a.schedule_to_close);
        let exp = (!s2c.is_zero())
            .then(|| a.scheduled_time.as_ref().map(|t| from_ts(t) + s2c))
            .flatten();
        retry::next_delay(&p, a.attempt, failure, self.now, exp)
    }

    fn retry_activity(&mut self, i: usize, delay: Duration, failure: Option<Failure>) {
        let now = self.now;
        self.changed = true;
        let a = &mut self.state.activities[i];
        a.last_failure = failure;
        a.attempt += 1;
        a.started_time = None;
        a.last_attempt_complete_time = Some(ts(now));
        if !a.paused {
            // A paused activity gets its attempt's time when it is unpaused.
            a.current_attempt_scheduled_time = Some(ts(now + delay));
        }
        a.reset_requested = false;
        if std::mem::take(&mut a.reset_heartbeats) {
            a.heartbeat_details = None;
            a.last_heartbeat_time = None;
        }
        let a = a.clone();
        if !a.paused {
            self.arm_activity_dispatch(&a);
        }
    }

    pub fn activity_canceled(&mut self, i: usize, details: Option<Payloads>, identity: &str) {
        let a = &self.state.activities[i];
        let (sched, requested) = (a.scheduled_event_id, a.cancel_requested_event_id);
        let identity = identity.to_string();
        self.activity_final(
            i,
            |sid| {
                A::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
                    details,
                    latest_cancel_requested_event_id: requested,
                    scheduled_event_id: sched,
                    started_event_id: sid,
                    identity,
                    ..Default::default()
                })
            },
            true,
        );
    }

    /// Records a heartbeat; returns what the worker must be told.
    pub fn activity_heartbeat(&mut self, i: usize, details: Option<Payloads>) -> HeartbeatReply {
        self.changed = true;
        let a = &mut self.state.activities[i];
        if details.is_some() {
            a.heartbeat_details = details;
        }
        a.last_heartbeat_time = Some(ts(self.now));
        if let Some(s) = self.state.standalone.as_mut() {
            s.total_heartbeat_count += 1;
        }
        let a = &self.state.activities[i];
        HeartbeatReply {
            cancel_requested: a.cancel_requested_event_id != 0,
            activity_paused: a.paused,
            activity_reset: a.reset_requested,
        }
    }

    /// An activity timer fired; returns whether anything changed. A paused activity's timers do
    /// nothing (unpausing arms them again); a timer that fires before its deadline (the
    /// deadline moved later: an options update, a reset) is armed again for the deadline.
    pub fn activity_timeout(&mut self, sched: i64, attempt: i32, tt: TimeoutType) -> bool {
        let Some(i) = self.activity_index(sched) else {
            return false;
        };
        let a = self.state.activities[i].clone();
        if a.paused {
            return false;
        }
        let now = self.now;
        let (from, limit) = match tt {
            TimeoutType::ScheduleToClose => (&a.scheduled_time, &a.schedule_to_close),
            TimeoutType::ScheduleToStart => {
                (&a.current_attempt_scheduled_time, &a.schedule_to_start)
            }
            TimeoutType::StartToClose => (&a.started_time, &a.start_to_close),
            TimeoutType::Heartbeat => (&None, &a.heartbeat_timeout),
            TimeoutType::Unspecified => return false,
        };
        if dur(limit).is_zero() {
            // Armed before an options update removed this timeout.
            return false;
        }
        let early = from
            .as_ref()
            .map(|t| from_ts(t) + dur(limit))
            .filter(|at| *at > now);
        match tt {
            TimeoutType::ScheduleToClose => {}
            TimeoutType::ScheduleToStart => {
                if a.attempt != attempt || a.started_time.is_some() {
                    return false;
                }
            }
            TimeoutType::StartToClose | TimeoutType::Heartbeat => {
                if a.attempt != attempt || a.started_time.is_none() {
                    return false;
                }
                if tt == TimeoutType::Heartbeat {
                    let last = a
                        .last_heartbeat_time
                        .as_ref()
                        .or(a.started_time.as_ref())
                        .map(from_ts)
                        .unwrap_or(now);
                    let due = last + dur(&a.heartbeat_timeout);
                    if due > now {
                        self.effects.push(Effect::Timer {
                            at: due,
                            kind: TimerKind::Activity {
                                scheduled_event_id: sched,
                                attempt,
                                timeout: tt as i32,
                            },
                        });
                        return false;
                    }
                }
            }
            TimeoutType::Unspecified => return false,
        }
        if let Some(at) = early {
            self.effects.push(Effect::Timer {
                at,
                kind: TimerKind::Activity {
                    scheduled_event_id: sched,
                    attempt,
                    timeout: tt as i32,
                },
            });
            return false;
        }
        // When the schedule-to-close deadline has passed too, that is the timeout that ends the
        // activity (Temporal reports it even when another timer fired first at the same time).
        let s2c_due = a
            .scheduled_time
            .as_ref()
            .map(from_ts)
            .zip(Some(dur(&a.schedule_to_close)).filter(|d| !d.is_zero()))
            .is_some_and(|(at, d)| at + d <= now);
        let tt = if s2c_due {
            TimeoutType::ScheduleToClose
        } else {
            tt
        };
        let failure = timeout_failure(
            "activity",
            tt,
            a.heartbeat_details.clone(),
            a.last_failure.clone(),
        );
        let retryable = matches!(tt, TimeoutType::StartToClose | TimeoutType::Heartbeat);
        let decision = if retryable {
            self.activity_retry_decision(i, Some(&failure))
        } else if tt == TimeoutType::ScheduleToClose {
            Err(RetryState::Timeout)
        } else {
            Err(RetryState::NonRetryableFailure)
        };
        match decision {
            Ok(delay) => self.retry_activity(i, delay, Some(failure)),
            Err(state) => {
                // A schedule-to-start timeout means the attempt never started.
                if tt == TimeoutType::ScheduleToStart && a.attempt == 1 {
                    self.state.activities[i].started_time = None;
                }
                self.activity_final(
                    i,
                    |sid| {
                        A::ActivityTaskTimedOutEventAttributes(
                            ActivityTaskTimedOutEventAttributes {
                                failure: Some(failure),
                                scheduled_event_id: sched,
                                started_event_id: sid,
                                retry_state: state as i32,
                            },
                        )
                    },
                    true,
                );
            }
        }
        true
    }
}

/// What a heartbeat's response tells the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub cancel_requested: bool,
    /// Paused by PauseActivity (the SDKs cancel the attempt with "paused").
    pub activity_paused: bool,
    /// Reset by ResetActivity while this attempt ran.
    pub activity_reset: bool,
}

/// The activity type of a pending activity as a proto.
pub fn activity_type(a: &ActivityState) -> ActivityType {
    ActivityType {
        name: a.activity_type.clone(),
    }
}
