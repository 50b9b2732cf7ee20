//! The Rust client drives Python-SDK workflows (a real worker process) on Perdure, or on Temporal's
//! dev server with `PERDURE_TEST_TARGET=temporal`: start, query, signal, result, describe, history,
//! list, count, updates, signal-with-start, cancel, terminate, continue-as-new and typed errors.

mod common;

use std::time::Duration;

use common::*;
use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::{Client, ClientError, ClientOptions, StartOptions, Status};
use serde_json::{Value, json};

async fn count_events(h: &perdure_sdk::WorkflowHandle, t: EventType) -> usize {
    h.fetch_history()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == t as i32)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_drives_python_workflows() {
    let server = server().await;
    let tq = uid("rust-client");
    let _worker = python_worker(&server.address, &tq);
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();

    // --- the order workflow: query while running, signals, result, query after completion ----
    let id = uid("order");
    let order = client
        .start_workflow("order", (3,), StartOptions::new(&id, &tq))
        .await
        .unwrap();
    eventually(20, "state Paid", || async {
        order.query::<String>("getStatus", ()).await.unwrap() == "Paid"
    })
    .await;
    order.signal("pickedUp", ()).await.unwrap();
    eventually(20, "the second timer", || async {
        count_events(&order, EventType::TimerStarted).await >= 2
    })
    .await;
    assert_eq!(
        order.query::<String>("getStatus", ()).await.unwrap(),
        "Picked up"
    );
    order.signal("delivered", ()).await.unwrap();
    let result: Value = order.result().await.unwrap();
    assert_eq!(result, json!({"product_id": 3, "state": "Delivered"}));
    assert_eq!(
        order.query::<String>("getStatus", ()).await.unwrap(),
        "Delivered"
    );
    let history = order.fetch_history().await.unwrap();
    let types: Vec<i32> = history.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        EXPECTED.iter().map(|t| *t as i32).collect::<Vec<_>>()
    );
    let d = order.describe().await.unwrap();
    let info = d.workflow_execution_info.unwrap();
    assert_eq!(info.status, Status::Completed as i32);
    assert_eq!(info.history_length, EXPECTED.len() as i64);
    assert_eq!(
        info.execution.as_ref().unwrap().run_id,
        order.first_execution_run_id().unwrap()
    );

    // --- typed errors ----------------------------------------------------------------------
    let dup = client
        .start_workflow(
            "order",
            (3,),
            StartOptions::new(&id, &tq)
                .tap(|o| o.id_reuse_policy = Some(perdure_sdk::IdReusePolicy::RejectDuplicate)),
        )
        .await
        .unwrap_err();
    match dup {
        ClientError::WorkflowAlreadyStarted {
            workflow_id,
            run_id,
        } => {
            assert_eq!(workflow_id, id);
            assert_eq!(run_id, order.first_execution_run_id().unwrap());
        }
        other => panic!("expected WorkflowAlreadyStarted, got {other:?}"),
    }
    let missing = client.workflow_handle(uid("nope"), None);
    assert!(matches!(
        missing.signal("x", ()).await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        order.query::<Value>("noSuchQuery", ()).await,
        Err(ClientError::QueryFailed { .. })
    ));
    let elsewhere = Client::connect(ClientOptions::new(&server.address).namespace("no-such-ns"))
        .await
        .unwrap();
    let e = elsewhere
        .start_workflow("order", (1,), StartOptions::new(uid("x"), &tq))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::NamespaceNotFound(ref n) if n == "no-such-ns"),
        "{e:?}"
    );
    let e = client
        .start_workflow("order", (1,), StartOptions::new("", &tq))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument(_)));

    // --- list and count (visibility may lag on Temporal) --------------------------------------
    eventually(20, "the order in list()", || async {
        let rows = client
            .list_workflows(&format!("WorkflowId = '{id}'"))
            .await
            .unwrap();
        rows.len() == 1 && rows[0].status == Status::Completed as i32
    })
    .await;
    let c = client
        .count_workflows(&format!("WorkflowId = '{id}' GROUP BY ExecutionStatus"))
        .await
        .unwrap();
    assert_eq!(c.count, 1);
    assert_eq!(c.groups, vec![(vec![json!("Completed")], 1)]);
    assert!(matches!(
        client.count_workflows("NoSuchAttribute = 1").await,
        Err(ClientError::InvalidArgument(_))
    ));

    // --- updates and signal-with-start ------------------------------------------------------
    let wid = uid("waiter");
    let waiter = client
        .signal_with_start(
            "waiter",
            (),
            "sig",
            ("first",),
            StartOptions::new(&wid, &tq),
        )
        .await
        .unwrap();
    assert_eq!(waiter.update::<i64>("add", (5,)).await.unwrap(), 5);
    assert_eq!(waiter.update::<i64>("add", (2,)).await.unwrap(), 7);
    let rejected = waiter.update::<i64>("add", (-1,)).await.unwrap_err();
    assert!(
        matches!(rejected, ClientError::UpdateFailed { .. }),
        "{rejected:?}"
    );
    let again = client
        .signal_with_start("waiter", (), "sig", ("done",), StartOptions::new(&wid, &tq))
        .await
        .unwrap();
    assert_eq!(
        again.first_execution_run_id(),
        waiter.first_execution_run_id()
    );
    let signals: Vec<String> = waiter.result().await.unwrap();
    assert_eq!(signals, vec!["first", "done"]);

    // --- cancel and terminate ----------------------------------------------------------------
    let sleeper = client
        .start_workflow("sleeper", (), StartOptions::new(uid("sleeper"), &tq))
        .await
        .unwrap();
    eventually(20, "the sleeper's timer", || async {
        count_events(&sleeper, EventType::TimerStarted).await == 1
    })
    .await;
    sleeper.cancel("no longer needed").await.unwrap();
    assert!(matches!(
        sleeper.result::<Value>().await,
        Err(ClientError::WorkflowCanceled)
    ));
    let sleeper = client
        .start_workflow("sleeper", (), StartOptions::new(uid("sleeper"), &tq))
        .await
        .unwrap();
    sleeper.terminate("bye").await.unwrap();
    match sleeper.result::<Value>().await {
        Err(ClientError::WorkflowTerminated { reason }) => assert_eq!(reason, "bye"),
        other => panic!("expected termination, got {other:?}"),
    }

    // --- continue-as-new, and a failure with its cause chain ----------------------------------
    let counter = client
        .start_workflow("counter", (0,), StartOptions::new(uid("counter"), &tq))
        .await
        .unwrap();
    assert_eq!(counter.result::<i64>().await.unwrap(), 3);
    let first = client.workflow_handle(
        counter.workflow_id(),
        counter.first_execution_run_id().map(String::from),
    );
    assert!(matches!(
        first.result_with::<i64>(false).await,
        Err(ClientError::WorkflowContinuedAsNew { .. })
    ));
    let failing = client
        .start_workflow("child", (-1,), StartOptions::new(uid("child"), &tq))
        .await
        .unwrap();
    match failing.result::<i64>().await {
        Err(e @ ClientError::WorkflowFailed { .. }) => {
            assert!(e.to_string().contains("negative"), "{e}")
        }
        other => panic!("expected a workflow failure, got {other:?}"),
    }
    let short = client
        .start_workflow(
            "sleeper",
            (),
            StartOptions::new(uid("short"), &tq)
                .tap(|o| o.run_timeout = Some(Duration::from_secs(1))),
        )
        .await
        .unwrap();
    assert!(matches!(
        short.result::<Value>().await,
        Err(ClientError::WorkflowTimedOut)
    ));
}

/// Small builder helper for options in expressions.
trait Tap: Sized {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
impl Tap for StartOptions {}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = ClientOptions::new(format!("127.0.0.1:{port}"));
    o.connect_timeout = Duration::from_secs(2);
    match Client::connect(o).await {
        Err(e @ ClientError::Unreachable { .. }) => {
            assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}")
        }
        other => panic!("expected Unreachable, got {:?}", other.map(|_| ())),
    }
}
