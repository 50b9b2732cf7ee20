//! The food-delivery order workflow (temporal-protocol.md §1.1 / §3.5), written on the official
//! Temporal Rust SDK. Names on the wire match the Python reference: workflow type `order`,
//! activities `charge_customer` and `send_push_notification`, signals `pickedUp` and `delivered`,
//! query `getStatus`.
#![allow(unreachable_pub)]

use std::{pin::pin, time::Duration};

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ApplicationFailure, CancellableFuture, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

/// How long the workflow waits for each signal before failing (the reference uses one minute).
pub const SIGNAL_WAIT: Duration = Duration::from_secs(60);

/// The workflow's result: `{"product_id":..,"state":"Delivered"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderResult {
    pub product_id: i64,
    pub state: String,
}

pub struct OrderActivities;

#[activities]
impl OrderActivities {
    /// Fails its first attempt with a retryable error; the server retries it after 100 ms.
    #[activity(name = "charge_customer")]
    pub async fn charge_customer(
        ctx: ActivityContext,
        product_id: i64,
    ) -> Result<String, ActivityError> {
        if ctx.info().attempt <= 1 {
            return Err(ApplicationFailure::builder(anyhow::anyhow!(
                "payment service unreachable"
            ))
            .type_name("RuntimeError".to_owned())
            .build()
            .into());
        }
        Ok(format!("charged-{product_id}"))
    }

    #[activity(name = "send_push_notification")]
    pub async fn send_push_notification(
        _ctx: ActivityContext,
        _message: String,
    ) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// Workflow state. Signals only set flags, so a signal that arrives before the workflow is ready
/// for it is kept (buffered) rather than dropped; the run method advances `state`.
#[workflow]
pub struct Order {
    state: String,
    picked_up: bool,
    delivered: bool,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            state: "Charging card".to_owned(),
            picked_up: false,
            delivered: false,
        }
    }
}

#[workflow_methods]
impl Order {
    #[run(name = "order")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        product_id: i64,
    ) -> WorkflowResult<OrderResult> {
        ctx.execute_activity(
            OrderActivities::charge_customer,
            product_id,
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                .retry_policy(
                    RetryPolicy::builder()
                        .initial_interval(Duration::from_millis(100))
                        .build(),
                )
                .build(),
        )
        .await?;
        ctx.state_mut(|s| s.state = "Paid".to_owned());

        wait_flag(ctx, |s| s.picked_up, "pickedUp").await?;
        ctx.state_mut(|s| s.state = "Picked up".to_owned());
        ctx.execute_activity(
            OrderActivities::send_push_notification,
            "picked up".to_owned(),
            ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
        )
        .await?;

        wait_flag(ctx, |s| s.delivered, "delivered").await?;
        ctx.state_mut(|s| s.state = "Delivered".to_owned());
        ctx.execute_activity(
            OrderActivities::send_push_notification,
            "delivered".to_owned(),
            ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
        )
        .await?;

        Ok(OrderResult {
            product_id,
            state: ctx.state(|s| s.state.clone()),
        })
    }

    #[signal(name = "pickedUp")]
    pub fn picked_up(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.picked_up = true;
    }

    #[signal(name = "delivered")]
    pub fn delivered(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.delivered = true;
    }

    #[query(name = "getStatus")]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> String {
        self.state.clone()
    }
}

/// `wait_condition(cond, timeout=60s)`: a durable timer raced against the condition. When the
/// condition wins the timer is cancelled (TimerStarted ... TimerCanceled in history, as in §3.5).
async fn wait_flag(
    ctx: &WorkflowContext<Order>,
    cond: fn(&Order) -> bool,
    what: &str,
) -> WorkflowResult<()> {
    if ctx.state(cond) {
        return Ok(()); // signal already received (buffered by the handler)
    }
    let mut timer = pin!(ctx.timer(SIGNAL_WAIT));
    let mut condition = pin!(ctx.wait_condition(cond));
    let met = temporalio_sdk::workflows::select! {
        _ = timer => false,
        r = condition => { r?; true }
    };
    if !met {
        return Err(ApplicationFailure::new(format!(
            "timed out after {}s waiting for signal {what}",
            SIGNAL_WAIT.as_secs()
        ))
        .into());
    }
    timer.cancel();
    Ok(())
}
