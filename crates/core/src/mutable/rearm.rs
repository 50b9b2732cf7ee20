//! Re-arming after a restart: the timers and dispatches a run needs, rebuilt from its state.

use perdure_proto::api::enums::v1::TimeoutType;

use crate::clock::convert::{dur, from_ts};

use super::{Effect, TimerKind, Tx};

impl Tx<'_> {
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
