//! Activities from workflow code: [`WfContext::activity`] schedules one, [`ActivityHandle`]
//! awaits or cancels it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::command::v1::{
    RequestCancelActivityTaskCommandAttributes, ScheduleActivityTaskCommandAttributes,
};
use temporalio_protos::temporal::api::common::v1::{ActivityType, Payloads};

use super::cancellation::Member;
use super::commands::CommandKind;
use super::state::State;
use super::{ActivityCancellation, ActivityOptions, WfContext};
use crate::common::{RetryPolicy, normal_task_queue, proto_duration};
use crate::failure::{ActivityError, cancelled_failure};
use crate::payload::{self, ToPayloads};

#[derive(Debug, Default)]
pub(crate) struct ActivitySlot {
    pub activity_type: String,
    pub result: Option<Result<Option<Payloads>, ActivityError>>,
    pub scheduled_event_id: i64,
    pub cancellation: ActivityCancellation,
    /// Cancelled from code; later events for it are ignored.
    pub cancelled: bool,
}

impl WfContext {
    /// Schedules an activity and returns a handle that resolves to its result.
    pub fn activity<O: DeserializeOwned>(
        &self,
        activity_type: &str,
        args: impl ToPayloads,
        options: ActivityOptions,
    ) -> ActivityHandle<O> {
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_activity;
            s.next_activity += 1;
            s.activities.insert(
                seq,
                ActivitySlot {
                    activity_type: activity_type.to_string(),
                    cancellation: options.cancellation,
                    ..Default::default()
                },
            );
            seq
        };
        let input = match args.to_payloads() {
            Ok(p) => Some(p).filter(|p| !p.payloads.is_empty()),
            Err(e) => {
                self.resolve_activity(seq, Err(e.into()));
                return ActivityHandle::new(self.clone(), seq);
            }
        };
        let task_queue = options
            .task_queue
            .clone()
            .unwrap_or_else(|| self.state.borrow().info.task_queue.clone());
        self.push_command(
            CommandKind::Activity(seq),
            CommandAttributes::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_id: seq.to_string(),
                    activity_type: Some(ActivityType {
                        name: activity_type.to_string(),
                    }),
                    task_queue: Some(normal_task_queue(task_queue)),
                    input,
                    schedule_to_close_timeout: options
                        .schedule_to_close_timeout
                        .map(proto_duration),
                    schedule_to_start_timeout: options
                        .schedule_to_start_timeout
                        .map(proto_duration),
                    start_to_close_timeout: options.start_to_close_timeout.map(proto_duration),
                    heartbeat_timeout: options.heartbeat_timeout.map(proto_duration),
                    retry_policy: options.retry_policy.as_ref().map(RetryPolicy::to_proto),
                    ..Default::default()
                },
            ),
        );
        self.enlist(Member::Activity(seq));
        ActivityHandle::new(self.clone(), seq)
    }

    pub(crate) fn resolve_activity(&self, seq: u32, r: Result<Option<Payloads>, ActivityError>) {
        let mut s = self.state.borrow_mut();
        if let Some(slot) = s.activities.get_mut(&seq)
            && slot.result.is_none()
        {
            slot.result = Some(r);
            s.progress += 1;
        }
    }

    pub(super) fn cancel_activity(&self, seq: u32) {
        let (wait, scheduled) = {
            let mut s = self.state.borrow_mut();
            let Some(slot) = s.activities.get_mut(&seq) else {
                return;
            };
            if slot.result.is_some() || slot.cancelled {
                return;
            }
            slot.cancelled = true;
            let wait = slot.cancellation == ActivityCancellation::WaitCancellationCompleted;
            (wait, slot.scheduled_event_id)
        };
        // Not sent yet: drop the schedule command instead of cancelling it.
        let unsent = {
            let mut s = self.state.borrow_mut();
            let before = s.commands.len();
            s.commands.retain(|c| c.kind != CommandKind::Activity(seq));
            s.commands.len() != before
        };
        if !unsent {
            self.push_command(
                CommandKind::CancelActivity(seq),
                CommandAttributes::RequestCancelActivityTaskCommandAttributes(
                    RequestCancelActivityTaskCommandAttributes {
                        scheduled_event_id: scheduled,
                    },
                ),
            );
        }
        if unsent || !wait {
            let failure = cancelled_failure("activity cancelled");
            self.resolve_activity(
                seq,
                Err(ActivityError::Cancelled {
                    failure: Box::new(failure),
                }),
            );
        }
    }
}

/// A scheduled activity: await it for the result, or [`cancel`](Self::cancel) it.
pub struct ActivityHandle<O> {
    ctx: WfContext,
    seq: u32,
    counted: bool,
    _out: PhantomData<fn() -> O>,
}

impl<O> ActivityHandle<O> {
    fn new(ctx: WfContext, seq: u32) -> Self {
        ActivityHandle {
            ctx,
            seq,
            counted: false,
            _out: PhantomData,
        }
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.ctx.cancel_activity(self.seq);
    }
}

impl<O: DeserializeOwned> Future for ActivityHandle<O> {
    type Output = Result<O, ActivityError>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        let this = &mut *self;
        poll_result(&this.ctx, &mut this.counted, |s| {
            s.activities.get(&seq).and_then(|a| a.result.clone())
        })
    }
}

/// Polls a recorded result: counts the first poll as progress (a task reached a new await
/// point), then decodes the result once it is there.
pub(super) fn poll_result<O: DeserializeOwned>(
    ctx: &WfContext,
    counted: &mut bool,
    get: impl Fn(&State) -> Option<Result<Option<Payloads>, ActivityError>>,
) -> Poll<Result<O, ActivityError>> {
    ctx.count_first_poll(counted);
    let r = get(&ctx.state.borrow());
    match r {
        Some(Ok(p)) => Poll::Ready(payload::from_payloads(p.as_ref()).map_err(Into::into)),
        Some(Err(e)) => Poll::Ready(Err(e)),
        None => Poll::Pending,
    }
}
