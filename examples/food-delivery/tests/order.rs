//! The order workflow against an in-process Perdure server: the paths the browser tests do not
//! take (an unknown product, the bare product id input of Temporal's sample, a payment outage
//! that the server's retries outlast), and the input and payment service units.

use std::time::Duration;

use food_delivery::order::{self, OrderRequest, OrderStatus, PaymentService, product, state};
use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::{Client, ClientError, ClientOptions, StartOptions, Worker, WorkerOptions};

/// An in-process server on a free port; stopped when the test's runtime ends.
async fn server() -> Client {
    let listener = perdure_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(perdure_server::run(
        perdure_server::ServerConfig::default(),
        listener,
        std::future::pending(),
    ));
    for _ in 0..100 {
        if let Ok(c) = Client::connect(ClientOptions::new(&address)).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

fn worker(client: &Client, tq: &str, payment: PaymentService) -> perdure_sdk::ShutdownHandle {
    let mut w = Worker::new(client.clone(), WorkerOptions::new(tq));
    order::register_with(&mut w, payment);
    let stop = w.shutdown_handle();
    tokio::spawn(w.run());
    stop
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn state_of(h: &perdure_sdk::WorkflowHandle) -> String {
    h.query::<OrderStatus>("getStatus", ())
        .await
        .map(|s| s.state)
        .unwrap_or_default()
}

async fn wait_for(h: &perdure_sdk::WorkflowHandle, want: &str) {
    for _ in 0..300 {
        if state_of(h).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order never reached {want}; it is {}", state_of(h).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_product_id_of_temporals_sample_is_an_order() {
    let client = server().await;
    let stop = worker(&client, "bare", PaymentService::default());
    // `temporal workflow start --type order --input 5`: the input is just the product id.
    let h = client
        .start_workflow("order", (5,), StartOptions::new(id("order"), "bare"))
        .await
        .unwrap();
    wait_for(&h, state::PAID).await;
    h.signal("pickedUp", ()).await.unwrap();
    wait_for(&h, state::PICKED_UP).await;
    h.signal("delivered", ()).await.unwrap();
    let done: OrderStatus = h.result().await.unwrap();
    assert_eq!(done.state, state::DELIVERED);
    assert_eq!(done.product_id, 5);
    stop.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_fails_the_order_at_once() {
    let client = server().await;
    let stop = worker(&client, "unknown", PaymentService::default());
    let h = client
        .start_workflow(
            "order",
            (OrderRequest::new(99),),
            StartOptions::new(id("order"), "unknown"),
        )
        .await
        .unwrap();
    match h.result::<OrderStatus>().await {
        Err(e @ ClientError::WorkflowFailed { .. }) => {
            assert!(e.to_string().contains("Product 99 not found"), "{e}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(state_of(&h).await, state::FAILED);
    let history = h.fetch_history().await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| e.event_type == EventType::ActivityTaskScheduled as i32),
        "nothing was charged"
    );
    stop.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_retries_the_charge_through_a_payment_outage() {
    let client = server().await;
    // The payment service is down for 2 s after the worker starts.
    let stop = worker(
        &client,
        "outage",
        PaymentService::new(Duration::from_secs(2)),
    );
    let h = client
        .start_workflow(
            "order",
            (OrderRequest::new(1),),
            StartOptions::new(id("order"), "outage"),
        )
        .await
        .unwrap();
    wait_for(&h, state::PAID).await;
    let history = h.fetch_history().await.unwrap();
    let started = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(A::ActivityTaskStartedEventAttributes(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("the charge started");
    // Attempt 1 (t=0) fails anyway; attempt 2 (t=1 s) falls in the outage unless the first
    // attempt started late on a slow machine. Either way the server retried until it was paid.
    assert!(
        started.attempt >= 2,
        "retried by the server: {}",
        started.attempt
    );
    assert!(
        started
            .last_failure
            .as_ref()
            .is_some_and(|f| f.message.starts_with("Payment service is down")),
        "{:?}",
        started.last_failure
    );
    h.terminate("done").await.unwrap();
    stop.shutdown();
}

#[test]
fn order_requests_read_both_input_shapes() {
    let bare: OrderRequest = serde_json::from_str("3").unwrap();
    assert_eq!(bare, OrderRequest::new(3));
    let full: OrderRequest =
        serde_json::from_str(r#"{"productId":4,"pickupTimeoutMs":1500,"deliveryTimeoutMs":null}"#)
            .unwrap();
    assert_eq!(full.product_id, 4);
    assert_eq!(full.pickup_timeout_ms, Some(1500));
    assert_eq!(full.delivery_timeout_ms, None);
    assert_eq!(
        serde_json::to_string(&OrderRequest::new(2)).unwrap(),
        r#"{"productId":2}"#
    );
    assert!(serde_json::from_str::<OrderRequest>(r#"{"product":1}"#).is_err());
}

#[test]
fn the_payment_service_fails_first_attempts_and_outages() {
    let pizza = product(1).unwrap();
    let ok = PaymentService::default();
    let e = ok.charge(pizza, 1).unwrap_err();
    assert!(e.to_string().contains("Payment service unavailable"), "{e}");
    assert_eq!(
        ok.charge(pizza, 2).unwrap(),
        "Charged $14.00 for Margherita pizza"
    );
    let down = PaymentService::new(Duration::from_secs(60));
    let e = down.charge(pizza, 5).unwrap_err();
    assert!(e.to_string().contains("down for another"), "{e}");
}

#[test]
fn the_menu_is_complete() {
    let menu = order::products();
    assert_eq!(menu.len(), 8);
    for (i, p) in menu.iter().enumerate() {
        assert_eq!(p.id as usize, i + 1);
        assert!(p.cents > 0 && !p.name.is_empty() && p.image.ends_with(".svg"));
    }
    assert_eq!(product(3).unwrap().price(), "$18.90");
    assert!(product(0).is_none());
}
