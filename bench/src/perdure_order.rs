//! The same food-delivery order workflow as `workflow.rs`, written on Perdure's own Rust SDK
//! (`perdure-sdk`, path dependency `../crates/sdk`). The wire names, inputs, outputs, retry policy
//! and timers are the same, so a server sees the same commands and events from either SDK:
//! workflow type `order` (input: the product id), activities `charge_customer` (its first attempt
//! fails with a retryable `RuntimeError`; the server retries it after 100 ms) and
//! `send_push_notification`, signals `pickedUp` and `delivered` (they only set flags), query
//! `getStatus`, and each signal waited for with a 60 s timer that is cancelled when it arrives.
#![allow(unreachable_pub)]

use std::{cell::RefCell, rc::Rc, time::Duration};

use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, RetryPolicy, WfContext, Worker, WorkflowResult,
};
use serde::{Deserialize, Serialize};

/// How long the workflow waits for each signal before failing.
pub const SIGNAL_WAIT: Duration = Duration::from_secs(60);

/// The workflow's result: `{"product_id":..,"state":"Delivered"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderResult {
    pub product_id: i64,
    pub state: String,
}

#[derive(Default)]
struct Flags {
    state: String,
    picked_up: bool,
    delivered: bool,
}

pub async fn order(ctx: WfContext, product_id: i64) -> WorkflowResult<OrderResult> {
    let s = Rc::new(RefCell::new(Flags {
        state: "Charging card".to_owned(),
        ..Default::default()
    }));
    let q = s.clone();
    ctx.on_query("getStatus", move |_: ()| q.borrow().state.clone());
    let f = s.clone();
    ctx.on_signal("pickedUp", move |_: ()| f.borrow_mut().picked_up = true);
    let f = s.clone();
    ctx.on_signal("delivered", move |_: ()| f.borrow_mut().delivered = true);

    let charge = ActivityOptions::start_to_close(Duration::from_secs(10)).retry(RetryPolicy {
        initial_interval: Some(Duration::from_millis(100)),
        ..Default::default()
    });
    ctx.activity::<String>("charge_customer", (product_id,), charge)
        .await?;
    s.borrow_mut().state = "Paid".to_owned();

    let notify = ActivityOptions::start_to_close(Duration::from_secs(10));
    let f = s.clone();
    wait_flag(&ctx, move || f.borrow().picked_up, "pickedUp").await?;
    s.borrow_mut().state = "Picked up".to_owned();
    ctx.activity::<()>("send_push_notification", ("picked up",), notify.clone())
        .await?;

    let f = s.clone();
    wait_flag(&ctx, move || f.borrow().delivered, "delivered").await?;
    s.borrow_mut().state = "Delivered".to_owned();
    ctx.activity::<()>("send_push_notification", ("delivered",), notify)
        .await?;

    let state = s.borrow().state.clone();
    Ok(OrderResult { product_id, state })
}

/// `wait_condition(cond, timeout=60s)`: no timer if the signal already came; otherwise a timer
/// raced against the condition and cancelled when the condition wins (as in `workflow.rs`).
async fn wait_flag(
    ctx: &WfContext,
    cond: impl Fn() -> bool + Unpin,
    what: &str,
) -> WorkflowResult<()> {
    if cond() {
        return Ok(());
    }
    if !ctx.condition_timeout(cond, SIGNAL_WAIT).await? {
        return Err(ApplicationFailure::new(format!(
            "timed out after {}s waiting for signal {what}",
            SIGNAL_WAIT.as_secs()
        ))
        .into());
    }
    Ok(())
}

/// Fails its first attempt with a retryable error; the server retries it after 100 ms.
pub async fn charge_customer(
    ctx: ActContext,
    product_id: i64,
) -> Result<String, ApplicationFailure> {
    if ctx.info().attempt <= 1 {
        return Err(
            ApplicationFailure::new("payment service unreachable").with_type("RuntimeError")
        );
    }
    Ok(format!("charged-{product_id}"))
}

pub async fn send_push_notification(
    _ctx: ActContext,
    _message: String,
) -> Result<(), ApplicationFailure> {
    Ok(())
}

/// Registers the workflow and its activities on a worker.
pub fn register(w: &mut Worker) {
    w.register_workflow("order", order)
        .register_activity("charge_customer", charge_customer)
        .register_activity("send_push_notification", send_push_notification);
}
