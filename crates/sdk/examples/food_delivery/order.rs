//! The food-delivery order workflow and its activities, as in Temporal's TypeScript sample:
//! charge the card (the server retries a failure), wait up to a minute for "picked up", notify,
//! wait for "delivered", notify; `getStatus` answers at any time.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, RetryPolicy, WfContext, WorkflowResult,
};
use serde::{Deserialize, Serialize};

/// What `getStatus` answers and the workflow returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    pub product_id: u32,
}

/// The workflow input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub product_id: u32,
    /// How long to wait for the driver (default one minute).
    #[serde(default)]
    pub pickup_timeout_ms: Option<u64>,
}

pub async fn order(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    let status = Rc::new(RefCell::new(OrderStatus {
        state: "Charging card".into(),
        delivered_at: None,
        product_id: req.product_id,
    }));
    let is = |want: &'static str| {
        let s = status.clone();
        move || s.borrow().state == want
    };
    let s = status.clone();
    ctx.on_query("getStatus", move |_: ()| s.borrow().clone());
    let s = status.clone();
    ctx.on_signal("pickedUp", move |_: ()| {
        let mut s = s.borrow_mut();
        if s.state == "Paid" {
            s.state = "Picked up".into();
        }
    });
    let (s, clock) = (status.clone(), ctx.clone());
    ctx.on_signal("delivered", move |_: ()| {
        let mut s = s.borrow_mut();
        if s.state == "Picked up" {
            s.state = "Delivered".into();
            s.delivered_at = Some(rfc3339(clock.now()));
        }
    });

    let opts = ActivityOptions::start_to_close(Duration::from_secs(10)).retry(RetryPolicy {
        initial_interval: Some(Duration::from_millis(200)),
        maximum_attempts: 5,
        ..Default::default()
    });
    let notify = |msg: String| ctx.activity::<()>("sendPushNotification", (msg,), opts.clone());

    ctx.activity::<String>("chargeCustomer", (req.product_id,), opts.clone())
        .await?;
    status.borrow_mut().state = "Paid".into();

    let pickup = Duration::from_millis(req.pickup_timeout_ms.unwrap_or(60_000));
    if !ctx.condition_timeout(is("Picked up"), pickup).await? {
        status.borrow_mut().state = "Refunding".into();
        ctx.activity::<String>("refundOrder", (req.product_id,), opts.clone())
            .await?;
        notify(format!(
            "Order {} was not picked up in time; refunded",
            req.product_id
        ))
        .await?;
        status.borrow_mut().state = "Refunded".into();
        return Err(ApplicationFailure::non_retryable("Not picked up in time").into());
    }
    notify(format!("Order {} picked up", req.product_id)).await?;

    if !ctx
        .condition_timeout(is("Delivered"), Duration::from_secs(60))
        .await?
    {
        status.borrow_mut().state = "Refunding".into();
        ctx.activity::<String>("refundOrder", (req.product_id,), opts.clone())
            .await?;
        status.borrow_mut().state = "Refunded".into();
        return Err(ApplicationFailure::non_retryable("Not delivered in time").into());
    }
    notify(format!("Order {} delivered", req.product_id)).await?;
    let done = status.borrow().clone();
    Ok(done)
}

/// Charges the card; the payment service is down for the first attempt of every order.
pub async fn charge_customer(
    ctx: ActContext,
    product_id: u32,
) -> Result<String, ApplicationFailure> {
    if ctx.info().attempt == 1 {
        return Err(ApplicationFailure::new("payment service unreachable"));
    }
    Ok(format!("charged for product {product_id}"))
}

pub async fn refund_order(_ctx: ActContext, product_id: u32) -> Result<String, ApplicationFailure> {
    Ok(format!("refunded product {product_id}"))
}

pub async fn send_push_notification(
    _ctx: ActContext,
    msg: String,
) -> Result<(), ApplicationFailure> {
    tracing::info!("push notification: {msg}");
    Ok(())
}

/// Registers the workflow and its activities on a worker.
pub fn register(w: &mut perdure_sdk::Worker) {
    w.register_workflow("order", order)
        .register_activity("chargeCustomer", charge_customer)
        .register_activity("refundOrder", refund_order)
        .register_activity("sendPushNotification", send_push_notification);
}

/// `2026-11-25T10:00:00.123Z`
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}
