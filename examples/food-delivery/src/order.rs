//! The food-delivery order workflow and its activities, as in Temporal's TypeScript sample:
//! charge the card (the payment service fails the first attempt, the server retries), wait up to
//! a minute for "picked up", notify, wait up to a minute for "delivered", notify; refund when the
//! driver does not come; `getStatus` answers at any time.
//!
//! This file is the one definition of the order: the `food-delivery` app, the SDK's
//! `food_delivery` example and the SDK's tests all use it. It depends only on `perdure-sdk`,
//! `serde`, `serde_json` and `tracing` so they can include it with `#[path]`. The TypeScript
//! worker in `examples/food-delivery/ts` implements the same workflow with the same strings.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, RetryPolicy, WfContext, WorkflowResult,
};
use serde::{Deserialize, Serialize};

/// Workflow type name.
pub const WORKFLOW_TYPE: &str = "order";
/// Default task queue of the Rust worker.
pub const TASK_QUEUE: &str = "food-delivery";
/// Default task queue of the TypeScript worker.
pub const TS_TASK_QUEUE: &str = "food-delivery-ts";
/// How long the driver has to pick up, then to deliver, unless the request says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The order states `getStatus` reports, in the order they happen.
pub mod state {
    pub const CHARGING: &str = "Charging card";
    pub const PAID: &str = "Paid";
    pub const PICKED_UP: &str = "Picked up";
    pub const DELIVERED: &str = "Delivered";
    pub const REFUNDING: &str = "Refunding";
    pub const REFUNDED: &str = "Refunded";
    pub const PAYMENT_FAILED: &str = "Payment failed";
    pub const FAILED: &str = "Failed";
}

/// One dish on the menu (`products.json`, shared with the TypeScript worker).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub id: u32,
    pub name: String,
    pub description: String,
    /// Price in cents.
    pub cents: u64,
    /// File name under `assets/products/`.
    pub image: String,
}

impl Product {
    /// `$14.00`
    pub fn price(&self) -> String {
        format!("${}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// The menu.
pub fn products() -> &'static [Product] {
    static PRODUCTS: OnceLock<Vec<Product>> = OnceLock::new();
    PRODUCTS.get_or_init(|| {
        serde_json::from_str(include_str!("../products.json")).expect("products.json is valid")
    })
}

/// The product with this id.
pub fn product(id: u32) -> Option<&'static Product> {
    products().iter().find(|p| p.id == id)
}

/// What `getStatus` answers and the workflow returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    pub product_id: u32,
}

/// The workflow input: `{"productId": 3}` with optional timeouts, or just the product id (`3`),
/// as Temporal's TypeScript sample takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawRequest")]
pub struct OrderRequest {
    pub product_id: u32,
    /// How long to wait for the driver to pick the order up (default one minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickup_timeout_ms: Option<u64>,
    /// How long to wait for the delivery once picked up (default one minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_timeout_ms: Option<u64>,
}

impl OrderRequest {
    /// An order of `product_id` with the default timeouts.
    pub fn new(product_id: u32) -> Self {
        OrderRequest {
            product_id,
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRequest {
    Id(u32),
    #[serde(rename_all = "camelCase")]
    Full {
        product_id: u32,
        #[serde(default)]
        pickup_timeout_ms: Option<u64>,
        #[serde(default)]
        delivery_timeout_ms: Option<u64>,
    },
}

impl From<RawRequest> for OrderRequest {
    fn from(raw: RawRequest) -> Self {
        match raw {
            RawRequest::Id(product_id) => OrderRequest::new(product_id),
            RawRequest::Full {
                product_id,
                pickup_timeout_ms,
                delivery_timeout_ms,
            } => OrderRequest {
                product_id,
                pickup_timeout_ms,
                delivery_timeout_ms,
            },
        }
    }
}

/// The order workflow.
pub async fn order(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    let status = Rc::new(RefCell::new(OrderStatus {
        state: state::CHARGING.into(),
        delivered_at: None,
        product_id: req.product_id,
    }));
    let is = |want: &'static str| {
        let s = status.clone();
        move || s.borrow().state == want
    };
    let set = |to: &str| status.borrow_mut().state = to.to_string();
    let s = status.clone();
    ctx.on_query("getStatus", move |_: ()| s.borrow().clone());
    let s = status.clone();
    ctx.on_signal("pickedUp", move |_: ()| {
        let mut s = s.borrow_mut();
        if s.state == state::PAID {
            s.state = state::PICKED_UP.into();
        }
    });
    let (s, clock) = (status.clone(), ctx.clone());
    ctx.on_signal("delivered", move |_: ()| {
        let mut s = s.borrow_mut();
        if s.state == state::PICKED_UP {
            s.state = state::DELIVERED.into();
            s.delivered_at = Some(rfc3339(clock.now()));
        }
    });

    let Some(product) = product(req.product_id) else {
        set(state::FAILED);
        return Err(ApplicationFailure::non_retryable(format!(
            "Product {} not found",
            req.product_id
        ))
        .with_type("UnknownProduct")
        .into());
    };
    let name = &product.name;
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10)).retry(RetryPolicy {
        initial_interval: Some(Duration::from_secs(1)),
        backoff_coefficient: 2.0,
        maximum_attempts: 5,
        ..Default::default()
    });
    let charge_opts = opts.clone().retry(RetryPolicy {
        initial_interval: Some(Duration::from_secs(1)),
        backoff_coefficient: 2.0,
        maximum_interval: Some(Duration::from_secs(10)),
        maximum_attempts: 10,
        ..Default::default()
    });
    let notify = |msg: String| ctx.activity::<()>("sendPushNotification", (msg,), opts.clone());
    if let Err(e) = ctx
        .activity::<String>("chargeCustomer", (product.id,), charge_opts)
        .await
    {
        set(state::PAYMENT_FAILED);
        notify(format!(
            "❌ We could not charge your card for your {name}. You have not been charged."
        ))
        .await?;
        tracing::debug!("charge failed: {e}");
        return Err(ApplicationFailure::non_retryable(format!(
            "Failed to charge customer for {name}"
        ))
        .with_type("PaymentFailed")
        .into());
    }
    set(state::PAID);

    let pickup = req
        .pickup_timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    if !ctx.condition_timeout(is(state::PICKED_UP), pickup).await? {
        let notice =
            format!("⚠️ No driver picked up your {name} in time. Your payment has been refunded.");
        refund(&ctx, &opts, &status, product, notice).await?;
        return Err(ApplicationFailure::non_retryable("Not picked up in time")
            .with_type("NotPickedUp")
            .into());
    }
    notify(format!("🛵 Your {name} is on its way.")).await?;

    let delivery = req
        .delivery_timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    if !ctx
        .condition_timeout(is(state::DELIVERED), delivery)
        .await?
    {
        let notice =
            format!("⚠️ Your {name} could not be delivered. Your payment has been refunded.");
        refund(&ctx, &opts, &status, product, notice).await?;
        return Err(ApplicationFailure::non_retryable("Not delivered in time")
            .with_type("NotDelivered")
            .into());
    }
    notify(format!("✅ Your {name} was delivered. Enjoy!")).await?;
    let done = status.borrow().clone();
    Ok(done)
}

/// Refunds the order and tells the customer: `Refunding`, then `Refunded`.
async fn refund(
    ctx: &WfContext,
    opts: &ActivityOptions,
    status: &RefCell<OrderStatus>,
    product: &Product,
    notice: String,
) -> WorkflowResult<()> {
    status.borrow_mut().state = state::REFUNDING.into();
    ctx.activity::<String>("refundOrder", (product.id,), opts.clone())
        .await?;
    ctx.activity::<()>("sendPushNotification", (notice,), opts.clone())
        .await?;
    status.borrow_mut().state = state::REFUNDED.into();
    Ok(())
}

/// A pretend payment service: it is unreachable on the first attempt of every charge (so the
/// server's retry shows in the history), and down altogether during a configured outage.
#[derive(Debug, Clone)]
pub struct PaymentService {
    outage_until: Option<Instant>,
}

impl Default for PaymentService {
    fn default() -> Self {
        PaymentService::new(Duration::ZERO)
    }
}

impl PaymentService {
    /// A service that is down for `outage` from now (zero: only the first attempts fail).
    pub fn new(outage: Duration) -> Self {
        PaymentService {
            outage_until: (!outage.is_zero()).then(|| {
                let now = Instant::now();
                now.checked_add(outage)
                    .unwrap_or(now + Duration::from_secs(86_400 * 365))
            }),
        }
    }

    /// Charges for `product` on `attempt` (1-based).
    pub fn charge(&self, product: &Product, attempt: i32) -> Result<String, ApplicationFailure> {
        if let Some(until) = self.outage_until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(ApplicationFailure::new(format!(
                    "Payment service is down for another {} s",
                    left.as_secs() + 1
                ))
                .with_type("PaymentUnavailable"));
            }
        }
        if attempt == 1 {
            return Err(ApplicationFailure::new(
                "Payment service unavailable (attempt 1), please retry",
            )
            .with_type("PaymentUnavailable"));
        }
        Ok(format!("Charged {} for {}", product.price(), product.name))
    }
}

fn known(product_id: u32) -> Result<&'static Product, ApplicationFailure> {
    product(product_id).ok_or_else(|| {
        ApplicationFailure::non_retryable(format!("Product {product_id} not found"))
            .with_type("UnknownProduct")
    })
}

/// Registers the workflow and its activities on a worker, with a payment service that fails
/// only first attempts.
pub fn register(w: &mut perdure_sdk::Worker) {
    register_with(w, PaymentService::default());
}

/// Registers the workflow and its activities on a worker, charging through `payment`.
pub fn register_with(w: &mut perdure_sdk::Worker, payment: PaymentService) {
    let payment = Arc::new(payment);
    w.register_workflow(WORKFLOW_TYPE, order)
        .register_activity("chargeCustomer", move |ctx: ActContext, id: u32| {
            let payment = payment.clone();
            async move { payment.charge(known(id)?, ctx.info().attempt) }
        })
        .register_activity("refundOrder", refund_order)
        .register_activity("sendPushNotification", send_push_notification);
}

/// Refunds the order's price.
pub async fn refund_order(_ctx: ActContext, product_id: u32) -> Result<String, ApplicationFailure> {
    let p = known(product_id)?;
    tracing::info!("refunded {} for {}", p.price(), p.name);
    Ok(format!("Refunded {} for {}", p.price(), p.name))
}

/// Tells the customer (here: the log).
pub async fn send_push_notification(
    _ctx: ActContext,
    msg: String,
) -> Result<(), ApplicationFailure> {
    tracing::info!("push notification: {msg}");
    Ok(())
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
