//! The Rust worker and workflow runtime on a real server (in-process Perdure, or Temporal's dev
//! server with `PERDURE_TEST_TARGET=temporal`): the order workflow with server retries, signals,
//! queries (running, completed, by replay), the Temporal history shape, the refund path, cache
//! eviction, a worker killed and replaced, and nondeterminism detection.

mod common;
#[allow(dead_code)]
#[path = "../../../examples/food-delivery/src/order.rs"]
mod order;

use std::time::Duration;

use common::*;
use order::{OrderRequest, OrderStatus};
use perdure_sdk::proto::enums::v1::{EventType, WorkflowTaskFailedCause};
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::{
    ActivityOptions, Client, ClientError, ClientOptions, StartOptions, WfContext, Worker,
    WorkerOptions, WorkflowHandle, WorkflowResult,
};

struct Running {
    shutdown: perdure_sdk::ShutdownHandle,
    task: tokio::task::JoinHandle<Result<(), ClientError>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.shutdown();
        self.task.await.unwrap().unwrap();
    }
    /// Like SIGKILL for an in-process worker: its tasks are dropped mid-flight.
    fn kill(self) {
        self.task.abort();
    }
}

fn start_worker(
    client: &Client,
    options: WorkerOptions,
    setup: impl FnOnce(&mut Worker),
) -> Running {
    let mut w = Worker::new(client.clone(), options);
    setup(&mut w);
    let shutdown = w.shutdown_handle();
    Running {
        shutdown,
        task: tokio::spawn(w.run()),
    }
}

async fn status(h: &WorkflowHandle) -> String {
    h.query::<OrderStatus>("getStatus", ()).await.unwrap().state
}

async fn count(h: &WorkflowHandle, t: EventType) -> usize {
    h.fetch_history()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == t as i32)
        .count()
}

/// Drives one order to delivery; signals only when the workflow waits for them, so that the
/// history has the same shape on every server.
async fn deliver(order: &WorkflowHandle) -> OrderStatus {
    eventually(30, "Paid", || async { status(order).await == "Paid" }).await;
    order.signal("pickedUp", ()).await.unwrap();
    eventually(30, "the second timer", || async {
        count(order, EventType::TimerStarted).await >= 2
    })
    .await;
    assert_eq!(status(order).await, "Picked up");
    order.signal("delivered", ()).await.unwrap();
    order.result().await.unwrap()
}

fn request(product_id: u32) -> (OrderRequest,) {
    (OrderRequest::new(product_id),)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_workflow_end_to_end() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-order");
    let worker = start_worker(&client, WorkerOptions::new(&tq), order::register);

    let h = client
        .start_workflow("order", request(3), StartOptions::new(uid("order"), &tq))
        .await
        .unwrap();
    let done = deliver(&h).await;
    assert_eq!(done.state, "Delivered");
    assert_eq!(done.product_id, 3);
    assert!(
        done.delivered_at
            .as_deref()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(h.query::<OrderStatus>("getStatus", ()).await.unwrap(), done);
    let history = h.fetch_history().await.unwrap();
    let types: Vec<i32> = history.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        EXPECTED.iter().map(|t| *t as i32).collect::<Vec<_>>()
    );
    match &history[5].attributes {
        Some(A::ActivityTaskStartedEventAttributes(s)) => {
            assert_eq!(s.attempt, 2, "the server retried the failed charge");
            assert_eq!(
                s.last_failure.as_ref().map(|f| f.message.as_str()),
                Some("Payment service unavailable (attempt 1), please retry")
            );
        }
        other => panic!("event 6 is {other:?}"),
    }
    match &history[9].attributes {
        Some(A::WorkflowTaskCompletedEventAttributes(c)) => assert_eq!(
            c.sdk_metadata.as_ref().map(|m| m.sdk_name.as_str()),
            Some("perdure-sdk")
        ),
        other => panic!("event 10 is {other:?}"),
    }
    worker.stop().await;

    // A new worker with an empty cache answers the query by replaying the history.
    let replayer = start_worker(
        &client,
        WorkerOptions {
            max_cached_workflows: 0,
            ..WorkerOptions::new(&tq)
        },
        order::register,
    );
    assert_eq!(h.query::<OrderStatus>("getStatus", ()).await.unwrap(), done);
    let unknown = h
        .query::<serde_json::Value>("noSuchQuery", ())
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ClientError::QueryFailed { message, .. } if message.contains("getStatus")),
        "{unknown:?}"
    );
    replayer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pickup_in_time_refunds() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-refund");
    let worker = start_worker(&client, WorkerOptions::new(&tq), order::register);
    let h = client
        .start_workflow(
            "order",
            (OrderRequest {
                product_id: 4,
                pickup_timeout_ms: Some(1500),
                ..Default::default()
            },),
            StartOptions::new(uid("refund"), &tq),
        )
        .await
        .unwrap();
    match h.result::<OrderStatus>().await {
        Err(e @ ClientError::WorkflowFailed { .. }) => {
            assert!(e.to_string().contains("Not picked up in time"), "{e}")
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(status(&h).await, "Refunded");
    let history = h.fetch_history().await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.event_type == EventType::TimerFired as i32)
    );
    let refunds = history
        .iter()
        .filter(|e| {
            matches!(&e.attributes, Some(A::ActivityTaskScheduledEventAttributes(a))
                if a.activity_type.as_ref().is_some_and(|t| t.name == "refundOrder"))
        })
        .count();
    assert_eq!(refunds, 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_replays_every_task_and_a_killed_worker_is_replaced() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();

    // Cache size 0: every workflow task replays the full history.
    let tq = uid("rust-nocache");
    let uncached = start_worker(
        &client,
        WorkerOptions {
            max_cached_workflows: 0,
            ..WorkerOptions::new(&tq)
        },
        order::register,
    );
    let h = client
        .start_workflow("order", request(5), StartOptions::new(uid("nocache"), &tq))
        .await
        .unwrap();
    assert_eq!(deliver(&h).await.state, "Delivered");
    uncached.stop().await;

    // A worker dies mid-workflow; a new one (empty cache) takes over from the history.
    let tq = uid("rust-kill");
    let first = start_worker(&client, WorkerOptions::new(&tq), order::register);
    let h = client
        .start_workflow("order", request(6), StartOptions::new(uid("kill"), &tq))
        .await
        .unwrap();
    eventually(30, "Paid", || async { status(&h).await == "Paid" }).await;
    first.kill();
    h.signal("pickedUp", ()).await.unwrap();
    let second = start_worker(&client, WorkerOptions::new(&tq), order::register);
    eventually(60, "the second timer", || async {
        count(&h, EventType::TimerStarted).await >= 2
    })
    .await;
    h.signal("delivered", ()).await.unwrap();
    let done: OrderStatus = h.result().await.unwrap();
    assert_eq!(done.state, "Delivered");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_complete_while_the_server_keeps_one_run_in_memory() {
    // Every transition but the one in progress finds its run evicted: the server reads it back
    // from the store, and the worker's sticky tasks get their new events read from the store.
    let server = server_with_run_cache(Some(1)).await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-evicted");
    let worker = start_worker(&client, WorkerOptions::new(&tq), order::register);
    let mut orders = Vec::new();
    for i in 0..6 {
        orders.push(
            client
                .start_workflow(
                    "order",
                    request(1 + i),
                    StartOptions::new(uid("evicted"), &tq),
                )
                .await
                .unwrap(),
        );
    }
    let done = futures::future::join_all(orders.iter().map(deliver)).await;
    for (i, (h, d)) in orders.iter().zip(&done).enumerate() {
        assert_eq!(d.state, "Delivered");
        assert_eq!(d.product_id, 1 + i as u32);
        let types: Vec<i32> = h
            .fetch_history()
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(
            types,
            EXPECTED.iter().map(|t| *t as i32).collect::<Vec<_>>()
        );
        assert_eq!(h.query::<OrderStatus>("getStatus", ()).await.unwrap(), *d);
    }
    worker.stop().await;
}

async fn v1(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let opts = ActivityOptions::start_to_close(Duration::from_secs(5));
    ctx.activity::<()>("sendPushNotification", ("v1",), opts)
        .await?;
    let go = std::rc::Rc::new(std::cell::Cell::new(false));
    let g = go.clone();
    ctx.on_signal("go", move |_: ()| g.set(true));
    ctx.condition(move || go.get()).await?;
    Ok("v1".into())
}

async fn v2(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    // Incompatible change: a timer where v1 had an activity.
    ctx.sleep(Duration::from_secs(1)).await?;
    Ok("v2".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_code_change_fails_the_workflow_task_with_nondeterminism() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-nd");
    let old = start_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("versioned", v1)
            .register_activity("sendPushNotification", order::send_push_notification);
    });
    let h = client
        .start_workflow("versioned", (), StartOptions::new(uid("nd"), &tq))
        .await
        .unwrap();
    eventually(30, "the activity to complete", || async {
        count(&h, EventType::ActivityTaskCompleted).await == 1
            && count(&h, EventType::WorkflowTaskCompleted).await == 2
    })
    .await;
    old.stop().await;

    let new = start_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("versioned", v2);
    });
    h.signal("go", ()).await.unwrap();
    eventually(30, "a failed workflow task", || async {
        count(&h, EventType::WorkflowTaskFailed).await >= 1
    })
    .await;
    let history = h.fetch_history().await.unwrap();
    let failed = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(A::WorkflowTaskFailedEventAttributes(f)) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        failed.cause,
        WorkflowTaskFailedCause::NonDeterministicError as i32
    );
    let msg = failed.failure.unwrap().message;
    assert!(
        msg.contains("ACTIVITY_TASK_SCHEDULED") && msg.contains("StartTimer"),
        "the error names the event and the code's command: {msg}"
    );
    // The workflow itself is still running: only the task failed.
    let d = h.describe().await.unwrap();
    assert_eq!(
        d.workflow_execution_info.unwrap().status,
        perdure_sdk::Status::Running as i32
    );
    new.stop().await;
    h.terminate("test over").await.unwrap();
}
