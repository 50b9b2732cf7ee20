//! Waiting on workflow state: [`WfContext::condition`] and [`WfContext::condition_timeout`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{WfContext, WorkflowError, WorkflowResult};

impl WfContext {
    /// Waits until `pred` holds (checked whenever workflow state may have changed).
    pub async fn condition(&self, pred: impl Fn() -> bool + Unpin) -> WorkflowResult<()> {
        Condition {
            ctx: self.clone(),
            pred,
            counted: false,
        }
        .await
    }

    /// Waits until `pred` holds or `timeout` passes; true if `pred` held. Like the TypeScript
    /// SDK's `condition(fn, timeout)`, it starts a timer and cancels it when `pred` wins.
    pub async fn condition_timeout(
        &self,
        pred: impl Fn() -> bool + Unpin,
        timeout: Duration,
    ) -> WorkflowResult<bool> {
        let timer = self.timer(timeout);
        let mut cond = std::pin::pin!(Condition {
            ctx: self.clone(),
            pred,
            counted: false,
        });
        let mut timer = std::pin::pin!(timer);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = cond.as_mut().poll(cx) {
                timer.as_ref().get_ref().cancel();
                return Poll::Ready(r.map(|_| true));
            }
            if let Poll::Ready(fired) = timer.as_mut().poll(cx) {
                return Poll::Ready(if fired {
                    Ok(false)
                } else {
                    Err(WorkflowError::Cancelled)
                });
            }
            Poll::Pending
        })
        .await
    }
}

struct Condition<F> {
    ctx: WfContext,
    pred: F,
    counted: bool,
}

impl<F: Fn() -> bool + Unpin> Future for Condition<F> {
    type Output = WorkflowResult<()>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.ctx.count_first_poll(&mut this.counted);
        if (this.pred)() {
            return Poll::Ready(Ok(()));
        }
        if this.ctx.is_cancel_requested() || this.ctx.scope_cancelled() {
            return Poll::Ready(Err(WorkflowError::Cancelled));
        }
        Poll::Pending
    }
}
