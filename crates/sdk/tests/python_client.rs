//! Cross-language, the other way round: a Python-SDK client starts, queries and signals the Rust
//! SDK's order workflow run by a Rust worker, and the results decode on both sides.

mod common;
#[allow(dead_code)]
#[path = "../../../examples/food-delivery/src/order.rs"]
mod order;

use std::process::Command;

use common::*;
use perdure_sdk::{Client, ClientOptions, Worker, WorkerOptions};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_drives_a_rust_workflow() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("py-drives-rust");
    let mut w = Worker::new(client.clone(), WorkerOptions::new(&tq));
    order::register(&mut w);
    let shutdown = w.shutdown_handle();
    let running = tokio::spawn(w.run());

    let id = uid("py-order");
    let (address, tq2, id2) = (server.address.clone(), tq.clone(), id.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(repo().join("tests/python/drive_rust_order.py"))
            .args([&address, &tq2, &id2])
            .output()
            .expect("run the Python client")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["result"]["state"], "Delivered");
    assert_eq!(line["result"]["productId"], 7);
    assert!(
        line["result"]["deliveredAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        line["status"], line["result"],
        "query after completion = result"
    );
    let seen: Vec<&str> = line["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(seen.last(), Some(&"Picked up"));
    assert!(seen.contains(&"Paid"));

    // The Rust client reads the same run.
    let h = client.workflow_handle(&id, None);
    let status: order::OrderStatus = h.query("getStatus", ()).await.unwrap();
    assert_eq!(status.state, "Delivered");
    assert_eq!(status.product_id, 7);
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}
