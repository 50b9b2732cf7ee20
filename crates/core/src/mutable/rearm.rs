//! Re-arming after a restart: the timers and dispatches a run needs, rebuilt from its state;
//! and [`wake_at`], the earliest of them, which the store indexes so that an engine reads only
//! the runs that fall due soon.

use std::time::{SystemTime, UNIX_EPOCH};

use perdure_proto::api::enums::v1::TimeoutType;

use crate::clock::convert::{dur, from_ts};
use perdure_proto::api::enums::v1::WorkflowExecutionStatus as Status;
use perdure_proto::prost_types::Timestamp;

use crate::state::ExecutionState;

use super::{Effect, TimerKind, Tx};

/// When the run next needs its engine without a request: the earliest deadline [`Tx::rearm_all`]
/// would arm, or the Unix epoch while something waits to be dispatched (a workflow or activity
/// task, a child to start, a request to another run, a notice to the parent); `None` when only a
/// request can wake it. A pure function of the state, kept in step with `rearm_all` (checked
/// after every transition in debug builds).
pub fn wake_at(state: &ExecutionState) -> Option<SystemTime> {
    if state.status != Status::Running as i32 {
        let owes_parent = state.parent.is_some()
            && !state.parent_notified
            && state.new_execution_run_id.is_empty();
        return owes_parent.then_some(UNIX_EPOCH);
    }
    let at = |t: &Option<Timestamp>| t.as_ref().map(from_ts).unwrap_or(UNIX_EPOCH);
    let mut wake: Option<SystemTime> = None;
    let mut due = |t: SystemTime| wake = Some(wake.map_or(t, |w| w.min(t)));
    for t in [&state.run_expiration, &state.execution_expiration]
        .into_iter()
        .flatten()
    {
        due(from_ts(t));
    }
    if let Some(t) = &state.first_wft_backoff_until {
        due(from_ts(t));
    }
    for t in &state.timers {
        due(at(&t.fire_time));
    }
    for a in &state.activities {
        let s2c = dur(&a.schedule_to_close);
        if !s2c.is_zero() {
            due(at(&a.scheduled_time) + s2c);
        }
        match &a.started_time {
            // Waiting for its attempt's time (a retry), then for a poller.
            None => due(at(&a.current_attempt_scheduled_time)),
            Some(st) => {
                let st = from_ts(st);
                let st2c = dur(&a.start_to_close);
                if !st2c.is_zero() {
                    due(st + st2c);
                }
                let hb = dur(&a.heartbeat_timeout);
                if !hb.is_zero() {
                    let last = a.last_heartbeat_time.as_ref().map(from_ts).unwrap_or(st);
                    due(last + hb);
                }
            }
        }
    }
    if let Some(w) = &state.wft {
        if w.started_event_id != 0 {
            due(at(&w.started_time) + dur(&state.task_timeout));
        } else {
            due(UNIX_EPOCH);
        }
    }
    if state.children.iter().any(|c| c.run_id.is_empty()) || !state.external_requests.is_empty() {
        due(UNIX_EPOCH);
    }
    wake
}

/// The earliest time among what `rearm_all` arms for a copy of `state` at `now` (the epoch for a
/// dispatch): what [`wake_at`] must agree with.
#[cfg(debug_assertions)]
pub(crate) fn wake_by_rearming(
    state: &ExecutionState,
    now: SystemTime,
    limits: &crate::limits::Limits,
) -> Option<SystemTime> {
    let mut copy = state.clone();
    let mut tx = Tx::with_limits(&mut copy, now, limits);
    if tx.is_running() {
        tx.rearm_all();
    } else if tx.state.parent.is_some()
        && !tx.state.parent_notified
        && tx.state.new_execution_run_id.is_empty()
    {
        tx.effects.push(Effect::NotifyParent);
    }
    let changed = tx.changed;
    tx.effects
        .iter()
        .map(|e| match e {
            Effect::Timer { at, .. } => *at,
            _ => UNIX_EPOCH,
        })
        .chain(changed.then_some(UNIX_EPOCH))
        .min()
}

impl Tx<'_> {
    /// The timers of the run, rebuilt from its state, without its dispatches: armed again after
    /// one of its timers fired, in case the engine had left some of them to the store.
    pub fn rearm_timers(&mut self) {
        let mut effects = std::mem::take(&mut self.effects);
        let mut copy = self.state.clone();
        let mut tx = Tx::with_limits(&mut copy, self.now, self.limits);
        tx.rearm_all();
        effects.extend(
            tx.effects
                .into_iter()
                .filter(|e| matches!(e, Effect::Timer { .. })),
        );
        self.effects = effects;
    }

    /// Every timer the run needs armed, rebuilt from its state (after a restart).
    pub fn rearm_all(&mut self) {
        if !self.is_running() {
            return;
        }
        self.arm_workflow_timeout();
        if let Some(t) = &self.state.first_wft_backoff_until {
            self.effects.push(Effect::Timer {
                at: from_ts(t),
                kind: TimerKind::StartBackoff,
            });
        }
        for t in self.state.timers.clone() {
            self.effects.push(Effect::Timer {
                at: t.fire_time.as_ref().map(from_ts).unwrap_or(self.now),
                kind: TimerKind::User(t.started_event_id),
            });
        }
        for a in self.state.activities.clone() {
            let s2c = dur(&a.schedule_to_close);
            if !s2c.is_zero() {
                let first = a.scheduled_time.as_ref().map(from_ts).unwrap_or(self.now);
                self.effects.push(Effect::Timer {
                    at: first + s2c,
                    kind: TimerKind::Activity {
                        scheduled_event_id: a.scheduled_event_id,
                        attempt: 0,
                        timeout: TimeoutType::ScheduleToClose as i32,
                    },
                });
            }
            match &a.started_time {
                None => self.arm_activity_dispatch(&a),
                Some(st) => {
                    let st = from_ts(st);
                    let st2c = dur(&a.start_to_close);
                    if !st2c.is_zero() {
                        self.effects.push(Effect::Timer {
                            at: st + st2c,
                            kind: TimerKind::Activity {
                                scheduled_event_id: a.scheduled_event_id,
                                attempt: a.attempt,
                                timeout: TimeoutType::StartToClose as i32,
                            },
                        });
                    }
                    let hb = dur(&a.heartbeat_timeout);
                    if !hb.is_zero() {
                        let last = a.last_heartbeat_time.as_ref().map(from_ts).unwrap_or(st);
                        self.effects.push(Effect::Timer {
                            at: last + hb,
                            kind: TimerKind::Activity {
                                scheduled_event_id: a.scheduled_event_id,
                                attempt: a.attempt,
                                timeout: TimeoutType::Heartbeat as i32,
                            },
                        });
                    }
                }
            }
        }
        if let Some(w) = self.state.wft.clone() {
            if w.started_event_id != 0 {
                let started = w.started_time.as_ref().map(from_ts).unwrap_or(self.now);
                self.effects.push(Effect::Timer {
                    at: started + dur(&self.state.task_timeout),
                    kind: TimerKind::WorkflowTask {
                        dispatch_seq: w.dispatch_seq,
                        timeout: TimeoutType::StartToClose as i32,
                    },
                });
            } else {
                // A restarted server has no sticky pollers yet: use the normal queue.
                if w.sticky {
                    self.unstick();
                } else {
                    self.effects.push(Effect::DispatchWorkflowTask);
                }
            }
        }
        for c in self.state.children.clone() {
            if c.run_id.is_empty() {
                self.effects.push(Effect::StartChild {
                    initiated_event_id: c.initiated_event_id,
                });
            }
        }
        for r in self.state.external_requests.clone() {
            self.effects.push(Effect::External {
                initiated_event_id: r.initiated_event_id,
            });
        }
    }
}
