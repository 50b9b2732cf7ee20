//! User timers: the StartTimer and CancelTimer commands and the timer firing.

use perdure_proto::api::command::v1::*;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;

use crate::clock::convert::{dur, ts};
use crate::state::*;

use super::{Effect, TimerKind, Tx};

impl Tx<'_> {
    /// Applies a StartTimer command.
    pub(super) fn start_timer(&mut self, t: StartTimerCommandAttributes, wtc: i64) {
        let id = self.append(A::TimerStartedEventAttributes(
            TimerStartedEventAttributes {
                timer_id: t.timer_id.clone(),
                start_to_fire_timeout: t.start_to_fire_timeout,
                workflow_task_completed_event_id: wtc,
            },
        ));
        let fire = self.now + dur(&t.start_to_fire_timeout);
        self.state.timers.push(TimerState {
            timer_id: t.timer_id,
            started_event_id: id,
            fire_time: Some(ts(fire)),
        });
        self.effects.push(Effect::Timer {
            at: fire,
            kind: TimerKind::User(id),
        });
    }

    /// Applies a CancelTimer command.
    pub(super) fn cancel_timer(&mut self, t: CancelTimerCommandAttributes, wtc: i64) {
        let Some(i) = self
            .state
            .timers
            .iter()
            .position(|x| x.timer_id == t.timer_id)
        else {
            // Already fired (its TimerFired is in the buffer): nothing to cancel.
            return;
        };
        let timer = self.state.timers.remove(i);
        self.append(A::TimerCanceledEventAttributes(
            TimerCanceledEventAttributes {
                timer_id: timer.timer_id,
                started_event_id: timer.started_event_id,
                workflow_task_completed_event_id: wtc,
                identity: String::new(),
            },
        ));
    }

    /// A user timer fired.
    pub fn timer_fired(&mut self, started_event_id: i64) -> bool {
        let Some(i) = self
            .state
            .timers
            .iter()
            .position(|t| t.started_event_id == started_event_id)
        else {
            return false;
        };
        let t = self.state.timers.remove(i);
        self.add(A::TimerFiredEventAttributes(TimerFiredEventAttributes {
            timer_id: t.timer_id,
            started_event_id,
        }));
        self.schedule_wft();
        true
    }
}
