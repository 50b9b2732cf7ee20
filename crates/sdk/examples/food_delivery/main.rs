//! Runs one food-delivery order end to end against any Temporal-compatible server and prints the
//! final `getStatus` answer as one JSON line. The workflow is the one the `food-delivery` app
//! runs (`examples/food-delivery/src/order.rs`):
//!
//! ```sh
//! cargo run --release --example food_delivery -- --address 127.0.0.1:7233
//! ```

#[allow(dead_code)]
#[path = "../../../../examples/food-delivery/src/order.rs"]
mod order;

use std::time::Duration;

use order::{OrderRequest, OrderStatus};
use perdure_sdk::{Client, ClientOptions, StartOptions, Worker, WorkerOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut address = "127.0.0.1:7233".to_string();
    let mut namespace = "default".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--address" => address = args.next().ok_or("--address needs HOST:PORT")?,
            "--namespace" => namespace = args.next().ok_or("--namespace needs a name")?,
            other => return Err(format!("unknown argument {other}; usage: food_delivery [--address HOST:PORT] [--namespace NS]").into()),
        }
    }
    let client = Client::connect(ClientOptions::new(&address).namespace(namespace)).await?;
    let task_queue = format!("food-delivery-{}", uuid::Uuid::new_v4());
    let mut worker = Worker::new(client.clone(), WorkerOptions::new(&task_queue));
    order::register(&mut worker);
    let shutdown = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());

    let order = client
        .start_workflow(
            "order",
            (OrderRequest::new(3),),
            StartOptions::new(format!("order-{}", uuid::Uuid::new_v4()), &task_queue),
        )
        .await?;
    let wait_for = |want: &'static str| {
        let order = order.clone();
        async move {
            loop {
                let s: OrderStatus = order.query("getStatus", ()).await?;
                if s.state == want {
                    return Ok::<_, perdure_sdk::ClientError>(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for("Paid").await?; // after the server retried the failed charge
    order.signal("pickedUp", ()).await?;
    wait_for("Picked up").await?;
    order.signal("delivered", ()).await?;
    let _: OrderStatus = order.result().await?;
    let status: OrderStatus = order.query("getStatus", ()).await?;
    println!("{}", serde_json::to_string(&status)?);

    shutdown.shutdown();
    running.await??;
    Ok(())
}
