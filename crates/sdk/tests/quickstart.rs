//! The crate docs' quick start, run for real against a server (so the docs cannot rot).

mod common;

use std::time::Duration;

use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, Client, ClientOptions, StartOptions,
    WfContext, Worker, WorkerOptions, WorkflowResult,
};

async fn greet(ctx: WfContext, name: String) -> WorkflowResult<String> {
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
    let greeting: String = ctx.activity("compose", (name,), opts).await?;
    ctx.sleep(Duration::from_secs(1)).await?;
    Ok(greeting)
}

async fn compose(_ctx: ActContext, name: String) -> Result<String, ApplicationFailure> {
    Ok(format!("Hello, {name}!"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_runs() {
    let server = common::server().await;
    let task_queue = common::uid("greetings");
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let mut worker = Worker::new(client.clone(), WorkerOptions::new(&task_queue));
    worker
        .register_workflow("greet", greet)
        .register_activity("compose", compose);
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let greeting: String = client
        .execute_workflow(
            "greet",
            ("Ada",),
            StartOptions::new(common::uid("greet"), &task_queue),
        )
        .await
        .unwrap();
    assert_eq!(greeting, "Hello, Ada!");
    stop.shutdown();
    running.await.unwrap().unwrap();
}
