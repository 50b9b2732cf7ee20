//! Durable timers: [`WfContext::timer`] and [`WfContext::sleep`]; [`TimerHandle`] awaits or
//! cancels one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::command::v1::{
    CancelTimerCommandAttributes, StartTimerCommandAttributes,
};

use super::cancellation::Member;
use super::commands::CommandKind;
use super::{WfContext, WorkflowError, WorkflowResult};
use crate::common::proto_duration;

#[derive(Debug, Default)]
pub(crate) struct TimerSlot {
    pub fired: Option<bool>,
}

impl WfContext {
    /// Starts a durable timer.
    pub fn timer(&self, duration: Duration) -> TimerHandle {
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_timer;
            s.next_timer += 1;
            s.timers.insert(seq, TimerSlot::default());
            seq
        };
        self.push_command(
            CommandKind::Timer(seq),
            CommandAttributes::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: seq.to_string(),
                start_to_fire_timeout: Some(proto_duration(duration.max(Duration::from_millis(1)))),
            }),
        );
        self.enlist(Member::Timer(seq));
        TimerHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }

    pub(crate) fn resolve_timer(&self, seq: u32, fired: bool) {
        let mut s = self.state.borrow_mut();
        if let Some(t) = s.timers.get_mut(&seq)
            && t.fired.is_none()
        {
            t.fired = Some(fired);
            s.progress += 1;
        }
    }

    pub(super) fn cancel_timer(&self, seq: u32) {
        if self
            .state
            .borrow()
            .timers
            .get(&seq)
            .is_none_or(|t| t.fired.is_some())
        {
            return;
        }
        let unsent = {
            let mut s = self.state.borrow_mut();
            let before = s.commands.len();
            s.commands.retain(|c| c.kind != CommandKind::Timer(seq));
            s.commands.len() != before
        };
        if !unsent {
            self.push_command(
                CommandKind::CancelTimer(seq),
                CommandAttributes::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
                    timer_id: seq.to_string(),
                }),
            );
        }
        self.resolve_timer(seq, false);
    }

    /// Sleeps (a durable timer). Fails with [`WorkflowError::Cancelled`] if the workflow is
    /// cancelled meanwhile.
    pub async fn sleep(&self, duration: Duration) -> WorkflowResult<()> {
        if self.timer(duration).await {
            Ok(())
        } else {
            Err(WorkflowError::Cancelled)
        }
    }
}

/// A durable timer: resolves to `true` when it fires, `false` if cancelled.
pub struct TimerHandle {
    ctx: WfContext,
    seq: u32,
    counted: bool,
}

impl TimerHandle {
    /// Cancels the timer.
    pub fn cancel(&self) {
        self.ctx.cancel_timer(self.seq);
    }
}

impl Future for TimerHandle {
    type Output = bool;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<bool> {
        let this = &mut *self;
        this.ctx.count_first_poll(&mut this.counted);
        match self
            .ctx
            .state
            .borrow()
            .timers
            .get(&self.seq)
            .and_then(|t| t.fired)
        {
            Some(f) => Poll::Ready(f),
            None => Poll::Pending,
        }
    }
}
